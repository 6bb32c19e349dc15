package main

import (
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// --gate-listen may be repeated and comma-separated; the drop and
// recovery flags reach the simulator's config.
func TestSimulateGateFlags(t *testing.T) {
	t.Parallel()
	m, _, _ := testMain(map[string]string{"TIYN_SIMULATE_TOKEN": testTokenSecret, "TIYN_MONETIX_PROJECTS": "1=" + testProjectSecret})
	var f simFlags
	fs := m.FlagSet("simulate")
	f.define(fs)
	if err := fs.Parse([]string{"--gate-listen", "127.0.0.1:1, [::1]:2", "--gate-listen", "localhost:3",
		"--drop-callbacks", "0.05", "--recovery-timeout", "90s"}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.1:1", "[::1]:2", "localhost:3"}; !slices.Equal(f.gateListen, want) {
		t.Errorf("gate listen %q, want %q", f.gateListen, want)
	}
	cfg, err := f.config(m, map[string]bool{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DropShare != 0.05 || cfg.RecoveryTimeout != 90*time.Second {
		t.Errorf("config: drop %v, recovery %s", cfg.DropShare, cfg.RecoveryTimeout)
	}
}

// The Gate listens on loopback only, and a listener opened before a bad
// address is closed again.
func TestListenGates(t *testing.T) {
	t.Parallel()
	lns, err := listenGates([]string{"127.0.0.1:0", "127.0.0.1:0"})
	if err != nil || len(lns) != 2 {
		t.Fatalf("two loopback listeners: %v %v", lns, err)
	}
	for _, ln := range lns {
		if !ln.Addr().(*net.TCPAddr).IP.IsLoopback() {
			t.Errorf("listening on %s", ln.Addr())
		}
		_ = ln.Close()
	}
	first, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := first.Addr().String()
	_ = first.Close()
	for _, bad := range [][]string{{"0.0.0.0:0"}, {":0"}, {"192.0.2.1:80"}, {"example.com:80"}, {"127.0.0.1"}, {free, "0.0.0.0:0"}} {
		if lns, err := listenGates(bad); err == nil {
			for _, ln := range lns {
				_ = ln.Close()
			}
			t.Errorf("%q: accepted", bad)
		} else if !strings.Contains(err.Error(), "--gate-listen") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	// The listener opened for the good address of the last case was closed.
	ln, err := net.Listen("tcp", free)
	if err != nil {
		t.Fatalf("the first listener of a refused list is still open: %v", err)
	}
	_ = ln.Close()
}

// Dropped callbacks need the Gate: a usage error, before anything runs.
func TestSimulateDropsNeedTheGate(t *testing.T) {
	t.Parallel()
	m, _, stderr := testMain(map[string]string{"TIYN_SIMULATE_TOKEN": testTokenSecret, "TIYN_MONETIX_PROJECTS": "1=" + testProjectSecret})
	code, err := runBounded(t, m, "simulate", "--url", "http://127.0.0.1:1", "--drop-callbacks", "0.1", "--no-progress")
	if code != exitUsage || err == nil || !strings.Contains(err.Error(), "need the Gate") {
		t.Fatalf("exit %d, %v, stderr %s", code, err, stderr)
	}
	m, _, _ = testMain(map[string]string{"TIYN_SIMULATE_TOKEN": testTokenSecret, "TIYN_MONETIX_PROJECTS": "1=" + testProjectSecret})
	if code, err := runBounded(t, m, "simulate", "--url", "http://127.0.0.1:1", "--gate-listen", "0.0.0.0:0"); code != exitUsage {
		t.Fatalf("a Gate on every interface: exit %d, %v", code, err)
	}
}
