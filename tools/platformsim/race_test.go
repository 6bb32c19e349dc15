//go:build race

package platformsim_test

// raceEnabled: the race detector slows the pure-Go SQLite driver by an
// order of magnitude, so the runs against the real Tiyn are scaled down.
const raceEnabled = true
