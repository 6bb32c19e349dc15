// Package e2e_test drives the real tiyn binary end to end (docs/architecture.md §7):
// TestMain builds it once, every test starts `tiyn serve` on a free
// loopback port over SQLite and over PostgreSQL, and talks to it only
// through HTTP and the other subcommands — the way the Monetix platform,
// the merchant's back office and an operator would.
package e2e_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/tiyn/tiyn/tests/testkit"
)

// EnvRace set to "0" builds the server without the race detector even when
// the tests run with -race (it is on by default then: a data race in the
// server under the simulator's load then fails the suite).
const EnvRace = "TIYN_E2E_RACE"

// tiynBin is the binary built by TestMain.
var tiynBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	build := &testkit.Build{Race: testkit.RaceEnabled && os.Getenv(EnvRace) != "0"}
	defer func() { _ = build.Remove() }()
	bin, err := build.Path()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	tiynBin = bin
	return m.Run()
}
