//go:build race

package e2e_test

// raceEnabled: this test binary runs with -race, so the server is built
// with it too.
const raceEnabled = true
