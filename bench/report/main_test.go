package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBaselineCheck(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		bad  int
		want string
	}{
		{"100|100|5000|5000\n", 0, "ok: 100 credits"},
		{"100|99|5000|5000", 1, "MISMATCH"},
		{"100|100|5000|4999", 1, "MISMATCH"},
		{"psql: error: connection refused", 1, "unreadable"},
		{"", 1, "unreadable"},
	} {
		got, bad := baselineCheck(c.in)
		if bad != c.bad || !strings.Contains(got, c.want) {
			t.Errorf("baselineCheck(%q) = %q, %d; want %q, %d", c.in, got, bad, c.want, c.bad)
		}
	}
}

// writeRun lays out a run directory as bench/run.sh does.
func writeRun(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const simFull = `{"mode":"full","concurrency":16,"payments":8000,"callbacks":9600,"effects":{"credited":7600},
"errors":0,"mismatches":[],"elapsed_seconds":8,"payments_per_sec":1000,"callbacks_per_sec":1200,
"latency":{"verify":{"count":8000,"p50_ms":1,"p95_ms":3,"p99_ms":12}}}`

const simCallbacks = `{"mode":"callbacks","concurrency":16,"payments":16000,"callbacks":19200,"effects":{"credited":16000},
"errors":0,"mismatches":[{"customer_id":"x"}],"elapsed_seconds":8,"payments_per_sec":2000,"callbacks_per_sec":2400,"latency":{}}`

func TestLoadComputesRatiosAndVerdicts(t *testing.T) {
	t.Parallel()
	dir := writeRun(t, map[string]string{
		"machine.txt":                           "stamp=x\ncores=2\n",
		"baseline-c16.pgbench.txt":              "number of failed transactions: 0 (0.000%)\nlatency average = 10.0 ms\ntps = 1000.5 (without initial connection time)\n",
		"baseline-c16.check.txt":                "10|10|7|7\n",
		"baseline-c64.pgbench.txt":              "pgbench: error: client 3 script 0 aborted in command 2\ntps = 900\n",
		"pg-pgdriver-gc-full-c16.sim.json":      simFull,
		"pg-pgdriver-gc-full-c16.meta":          "cpu_seconds=8.0\nrss_hwm_kib=40960\nexit_code=0\n",
		"pg-pgdriver-gc-callbacks-c16.sim.json": simCallbacks,
		"pg-pgdriver-gc-callbacks-c16.meta":     "cpu_seconds=9\nrss_hwm_kib=51200\nexit_code=1\n",
		"sqlite-gc-full-c16.sim.json":           "tiyn: connection refused",
		"sqlite-gc-full-c16.meta":               "exit_code=1\n",
	})
	res, err := load(dir)
	if err != nil {
		t.Fatal(err)
	}
	pg := find(res.Rows, "pg-pgdriver-gc", 16)
	if pg == nil {
		t.Fatalf("no pg row in %+v", res.Rows)
	}
	// 16000 credits in 8 s = 2000/s against 1000.5 tps.
	if pg.BaselineTPS != 1000.5 || pg.RatioCredits < 1.998 || pg.RatioCredits > 1.9991 {
		t.Errorf("ratio = %v over %v", pg.RatioCredits, pg.BaselineTPS)
	}
	if pg.RatioCallbacks <= pg.RatioCredits {
		t.Errorf("callbacks ratio %v should exceed credits ratio %v", pg.RatioCallbacks, pg.RatioCredits)
	}
	if pg.RSSMiB != 50 || pg.CPUPer1000 != 1 || pg.Mismatches != 1 {
		t.Errorf("rss %v cpu/1k %v mismatches %d", pg.RSSMiB, pg.CPUPer1000, pg.Mismatches)
	}
	if sq := find(res.Rows, "sqlite-gc", 16); sq == nil || sq.Errors != 1 {
		t.Errorf("a simulate with no report must count as an error: %+v", sq)
	}
	if b := find(res.Rows, "baseline", 64); b == nil || b.Errors != 1 {
		t.Errorf("an aborted pgbench must count as an error: %+v", b)
	}
	// Targets, in order: PG c16, PG c64, SQLite c16, verify p99, RSS, errors.
	wants := []struct{ known, met bool }{
		{true, true},   // credits ratio 2.0 ≥ 1.0
		{false, false}, // no pg row at c64
		{true, false},  // SQLite's simulate failed: 0 payments/s
		{true, false},  // verify p99 12 ms
		{true, true},   // 50 MiB
		{true, false},  // a mismatch and errors
	}
	if len(res.Targets) != len(wants) {
		t.Fatalf("%d targets, want %d", len(res.Targets), len(wants))
	}
	for i, want := range wants {
		if v := res.Targets[i]; v.Known != want.known || v.Met != want.met {
			t.Errorf("%s: known %v met %v, want %v %v", v.Target, v.Known, v.Met, want.known, want.met)
		}
	}
	var out bytes.Buffer
	if err := writeTable(&out, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pg-pgdriver-gc", "2.00×", "baseline (pgbench)", "MISSED", "not measured"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}
