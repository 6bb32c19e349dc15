//go:build race

package testkit

// RaceEnabled reports whether this test binary runs with -race (so a suite
// can build the server under test with it too).
const RaceEnabled = true
