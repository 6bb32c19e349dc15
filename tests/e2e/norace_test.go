//go:build !race

package e2e_test

// raceEnabled: this test binary runs without -race.
const raceEnabled = false
