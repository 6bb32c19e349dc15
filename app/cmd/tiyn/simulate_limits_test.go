package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestSimulateHonoursProjectLimits: against a project with its own limits
// (10.00–100.00 KZT) every payment simulate draws lies within them, so
// every check_deposit is accepted and every balance comes out as expected.
func TestSimulateHonoursProjectLimits(t *testing.T) {
	t.Parallel()
	projects := "4321=" + testProjectSecret + ";min=10.00;max=100.00"
	env := sqliteEnv(t)
	env["TIYN_API_TOKENS"] = "sim:write:" + testTokenSecret
	env["TIYN_MONETIX_PROJECTS"] = projects
	s := startServe(t, env)

	m, stdout, stderr := testMain(map[string]string{"TIYN_MONETIX_PROJECTS": projects, "TIYN_SIMULATE_TOKEN": testTokenSecret})
	code, err := runBounded(t, m, "simulate", "--url", "http://"+s.addr, "--payments", "150", "--customers", "4",
		"--concurrency", "2", "--no-progress", "--json", "--duplicates", "0.1", "--declines", "0.05")
	if code != exitOK || err != nil {
		t.Fatalf("simulate: exit %d err %v\nstdout %s\nstderr %s", code, err, stdout, stderr)
	}
	var report map[string]any
	if err := json.Unmarshal([]byte(stdout.String()), &report); err != nil {
		t.Fatalf("report %s: %v", stdout, err)
	}
	if report["errors"] != float64(0) {
		t.Fatalf("report errors: %s", stdout)
	}
	s.stop(t)
}

// TestSimulateProjectLimitsFromTheList: the limits come from the projects
// list whether the project is picked from it or named with --project and
// --secret; a project without limits draws within kassa24's.
func TestSimulateProjectLimitsFromTheList(t *testing.T) {
	t.Parallel()
	list := "1=" + testProjectSecret + ",2=" + testProjectSecret + ";min=10.00;max=100.00"
	for _, tc := range []struct {
		env      map[string]string
		args     []string
		min, max int64
	}{
		{map[string]string{"TIYN_MONETIX_PROJECTS": "2=" + testProjectSecret + ";min=10.00;max=100.00"}, nil, 1000, 10_000},
		{map[string]string{"TIYN_MONETIX_PROJECTS": list}, []string{"--project", "2"}, 1000, 10_000},
		{map[string]string{"TIYN_MONETIX_PROJECTS": list}, []string{"--project", "2", "--secret", "x"}, 1000, 10_000},
		{map[string]string{"TIYN_MONETIX_PROJECTS": list, "TIYN_SIMULATE_PROJECT": "2", "TIYN_SIMULATE_SECRET": "x"}, nil, 1000, 10_000},
		{map[string]string{"TIYN_MONETIX_PROJECTS": list}, []string{"--project", "1"}, 0, 0},
		{map[string]string{}, []string{"--project", "2", "--secret", "x"}, 0, 0},
	} {
		tc.env["TIYN_SIMULATE_TOKEN"] = testTokenSecret
		m, _, _ := testMain(tc.env)
		var f simFlags
		fs := m.FlagSet("simulate")
		f.define(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		cfg, err := f.config(m, map[string]bool{})
		if err != nil {
			t.Errorf("%v %v: %v", tc.env, tc.args, err)
			continue
		}
		if cfg.AmountMinMinor != tc.min || cfg.AmountMaxMinor != tc.max {
			t.Errorf("%v %v: amounts %d–%d, want %d–%d", tc.env, strings.Join(tc.args, " "), cfg.AmountMinMinor, cfg.AmountMaxMinor, tc.min, tc.max)
		}
	}
}
