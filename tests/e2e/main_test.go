// Package e2e_test drives the real tiyn binary end to end (docs/architecture.md §7):
// TestMain builds it once, every test starts `tiyn serve` on a free
// loopback port over SQLite and over PostgreSQL, and talks to it only
// through HTTP and the other subcommands — the way the Monetix platform,
// the merchant's back office and an operator would.
package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BuildTimeout bounds the one `go build` of the binary (a cold cache with
// -race can take a minute on two cores).
const BuildTimeout = 5 * time.Minute

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
	dir, err := os.MkdirTemp("", "tiyn-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	bin, err := buildTiyn(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	tiynBin = bin
	return m.Run()
}

// buildTiyn builds ./app/cmd/tiyn from the module root into dir, with the
// race detector when this test binary has it (see EnvRace).
func buildTiyn(dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "tiyn")
	args := []string{"build", "-o", bin}
	if raceEnabled && os.Getenv(EnvRace) != "0" {
		args = append(args, "-race")
	}
	args = append(args, "./app/cmd/tiyn")
	ctx, cancel := context.WithTimeout(context.Background(), BuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %v in %s: %w\n%s", args, root, err, out)
	}
	return bin, nil
}

// moduleRoot walks up from the working directory (the package's folder
// under go test) to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
