//go:build !race

package platformsim_test

// raceEnabled: see race_test.go.
const raceEnabled = false
