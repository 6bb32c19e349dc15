package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/tiyn/tiyn/tests/testkit"
	"github.com/tiyn/tiyn/tools/platformsim"
)

// The simulation of TestSimulate: a few hundred payments at concurrency 16
// with every kind of trouble the platform causes, in generous shares so
// each kind occurs many times.
const (
	SimCustomers   = 25
	SimPayments    = 400
	SimConcurrency = 16
	// SimTimeout bounds the `tiyn simulate` process.
	SimTimeout = 90 * time.Second
)

// TestSimulate runs `tiyn simulate --json` against the real server on each
// store and checks, through the simulator's report and then independently
// through the REST API, that every successful payment was credited exactly
// once and nothing was lost.
func TestSimulate(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *server) {
		r := runSimulate(t, s,
			"--customers", strconv.Itoa(SimCustomers),
			"--payments", strconv.Itoa(SimPayments),
			"--concurrency", strconv.Itoa(SimConcurrency),
			"--duplicates", "0.2",
			"--concurrent-duplicates", "0.15",
			"--declines", "0.1",
			"--late-success", "0.1",
			"--intermediate", "0.15",
			"--unknown-verify", "0.1",
		)

		// The simulator's own verdict.
		if r.Errors != 0 || len(r.Mismatches) != 0 || !r.OK() {
			t.Fatalf("simulation: %d errors %v, %d mismatches %v", r.Errors, r.ErrorSamples, len(r.Mismatches), r.Mismatches)
		}
		if r.Payments != SimPayments || r.Failed != 0 || r.Uncertain != 0 || r.Succeeded+r.Declined != SimPayments {
			t.Fatalf("report: %d payments (%d succeeded, %d declined, %d failed, %d uncertain), want %d all settled",
				r.Payments, r.Succeeded, r.Declined, r.Failed, r.Uncertain, SimPayments)
		}
		if r.BalancesChecked != SimCustomers || r.ExpectedMinor != r.ActualMinor {
			t.Fatalf("report: %d balances checked, expected total %d, actual %d", r.BalancesChecked, r.ExpectedMinor, r.ActualMinor)
		}
		// Every trouble actually happened, or the run proves little.
		for _, effect := range []string{"credited", "declined", "replay", "recorded"} {
			if r.Effects[effect] == 0 {
				t.Errorf("no %q effect in %d callbacks: the shares did not produce that case (%v)", effect, r.Callbacks, r.Effects)
			}
		}
		if r.LateSuccesses == 0 {
			t.Errorf("no late success among %d payments", r.Payments)
		}
		// Each success credited once: as many "credited" answers as
		// successful payments, and nothing answered "exception".
		if r.Effects["credited"] != r.Succeeded || r.Effects["exception"] != 0 {
			t.Fatalf("effects %v for %d successful payments: want exactly one credit each and no exception", r.Effects, r.Succeeded)
		}

		// Independently, through the REST API.
		check := requireHealthy(t, s)
		succeeded := listAll[depositJSON](t, s, "/v1/deposits?status=succeeded")
		declined := listAll[depositJSON](t, s, "/v1/deposits?status=declined")
		pending := listAll[depositJSON](t, s, "/v1/deposits?status=pending")
		if len(succeeded) != r.Succeeded || len(declined) != r.Declined || len(pending) != 0 {
			t.Fatalf("deposits: %d succeeded, %d declined, %d pending; report: %d succeeded, %d declined",
				len(succeeded), len(declined), len(pending), r.Succeeded, r.Declined)
		}
		// No debit was made, so every transfer is one deposit's credit.
		if check.Transfers != int64(r.Succeeded) {
			t.Fatalf("ledger holds %d transfers for %d successful payments", check.Transfers, r.Succeeded)
		}
		var credited int64
		for _, d := range succeeded {
			credited += d.AmountMinor
		}
		var balances int64
		for _, a := range listAll[accountJSON](t, s, "/v1/accounts") {
			balances += a.BalanceMinor
		}
		if credited != balances || balances != check.CustomerBalanceTotal || balances != r.ActualMinor {
			t.Fatalf("succeeded deposits total %d, account balances total %d, ledger check %d, report %d: want all equal",
				credited, balances, check.CustomerBalanceTotal, r.ActualMinor)
		}
		// Every callback the simulator delivered is in the inbox.
		if n := len(s.callbacks(t, "")); n != r.Callbacks {
			t.Fatalf("inbox holds %d callbacks, the simulator delivered %d", n, r.Callbacks)
		}
		if n := len(s.exceptions(t)); n != 0 {
			t.Fatalf("%d exceptions after a clean simulation", n)
		}
	})
}

// runSimulate runs `tiyn simulate --json` against s with the suite's
// credentials (from the environment, as an operator would) and returns its
// report. A non-zero exit fails the test.
func runSimulate(t *testing.T, s *server, args ...string) platformsim.Report {
	t.Helper()
	return runSimulateFor(t, s, SimTimeout, args...)
}

// runSimulateFor is runSimulate with its own bound on the process.
func runSimulateFor(t *testing.T, s *server, timeout time.Duration, args ...string) platformsim.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args = append([]string{"simulate", "--url", s.base, "--project", projectPlain, "--json", "--no-progress"}, args...)
	cmd := exec.CommandContext(ctx, tiynBin, args...)
	cmd.Env = append(testkit.CleanEnv(), "TIYN_SIMULATE_TOKEN="+apiToken, "TIYN_SIMULATE_SECRET="+secretPlain)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	testkit.TieToParent(cmd)
	err := cmd.Run()
	var r platformsim.Report
	if jerr := json.Unmarshal(stdout.Bytes(), &r); jerr != nil {
		t.Fatalf("tiyn simulate: %v; no JSON report (%v):\nstdout: %s\nstderr: %s", err, jerr, stdout.Bytes(), stderr.Bytes())
	}
	if err != nil {
		t.Fatalf("tiyn simulate exited with %v:\nreport: %+v\nstderr: %s", err, r, stderr.Bytes())
	}
	t.Logf("simulate: %d payments, %d callbacks, %.0f payments/s, effects %v", r.Payments, r.Callbacks, r.PaymentsPerSec, r.Effects)
	return r
}
