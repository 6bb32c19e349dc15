package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/tests/pgtest"
	"github.com/tiyn/tiyn/tests/testkit"
	"github.com/tiyn/tiyn/tools/platformsim"
)

// Lost callbacks recovered by the status poller, end to end: `tiyn
// simulate` never delivers the callbacks of a share of the payments and
// plays the Gate; `tiyn serve`, pointed at it, asks about every deposit
// still pending after TIYN_STATUS_POLL_AFTER and settles it from the
// answer. Nothing may be lost or doubled, and the Gate must never see an
// instance ask faster than TIYN_STATUS_POLL_RATE.
const (
	RecoveryCustomers = 15
	// RecoveryPollAfter is the shortest TIYN_STATUS_POLL_AFTER allowed.
	RecoveryPollAfter = "10s"
	// RecoveryTimeout bounds the simulator's wait for the poller.
	RecoveryTimeout = 90 * time.Second
	// RecoverySimTimeout bounds the whole `tiyn simulate` process.
	RecoverySimTimeout = RecoveryTimeout + 60*time.Second
)

// freeLoopbackAddr is a loopback address nobody listens on, for a Gate the
// servers must know before the simulator starts.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestSimulateRecoversDroppedCallbacks runs the binary against the
// simulator with dropped callbacks on SQLite, on PostgreSQL, and with two
// `tiyn serve` instances on one PostgreSQL, each polling its own Gate
// listener (so each instance's rate is measured on its own).
func TestSimulateRecoversDroppedCallbacks(t *testing.T) {
	t.Parallel()
	// The rates are low enough that one request held up by a loaded
	// machine cannot make two of them land in one window's slack. With two
	// instances more payments are dropped than one round claims
	// (app.DefaultPollBatch), so both must ask.
	pg := func(t *testing.T) string { return pgtest.URL(t) }
	cases := []struct {
		name      string
		url       func(t *testing.T) string
		instances int
		rate      int // TIYN_STATUS_POLL_RATE of each instance
		payments  int
		drop      string
	}{
		{"sqlite", stores[0].url, 1, 5, 300, "0.1"},
		{"postgres", pg, 1, 5, 300, "0.1"},
		{"postgres-two-instances", pg, 2, 4, 600, "0.15"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dbURL := tc.url(t)
			var servers []*server
			var gates []string
			for range tc.instances {
				gate := freeLoopbackAddr(t)
				gates = append(gates, gate)
				servers = append(servers, startServer(t, dbURL,
					"TIYN_MONETIX_GATE_URL=http://"+gate,
					"TIYN_MONETIX_GATE_REQUIRE_SIGNATURE=true",
					"TIYN_STATUS_POLL_AFTER="+RecoveryPollAfter,
					"TIYN_STATUS_POLL_RATE="+strconv.Itoa(tc.rate),
				))
			}
			args := []string{"--customers", strconv.Itoa(RecoveryCustomers), "--payments", strconv.Itoa(tc.payments),
				"--concurrency", "8", "--drop-callbacks", tc.drop, "--recovery-timeout", RecoveryTimeout.String(),
				"--declines", "0.1", "--late-success", "0.1", "--intermediate", "0.15"}
			for _, g := range gates {
				args = append(args, "--gate-listen", g)
			}
			r := runSimulateFor(t, servers[0], RecoverySimTimeout, args...)
			checkRecovery(t, servers, r, tc.payments, tc.rate)
		})
	}
}

// checkRecovery holds the run to the promise: every dropped payment
// settled as the platform did by its status answer, none lost, none
// doubled, every balance right, and each instance's polling within its
// rate.
func checkRecovery(t *testing.T, servers []*server, r platformsim.Report, payments, rate int) {
	t.Helper()
	s := servers[0]
	// The simulator's own verdict.
	if !r.OK() || r.Errors != 0 || len(r.Mismatches) != 0 || r.Lost != 0 {
		t.Fatalf("simulation: %d errors %q, %d mismatches %v, %d lost", r.Errors, r.ErrorSamples, len(r.Mismatches), r.Mismatches, r.Lost)
	}
	if r.CallbacksDropped == 0 || r.Recovered != r.CallbacksDropped || r.RecoveredSucceeded == 0 {
		t.Fatalf("dropped %d, recovered %d (%d credited): the run proves nothing", r.CallbacksDropped, r.Recovered, r.RecoveredSucceeded)
	}
	if r.Payments != payments || r.Failed != 0 || r.Uncertain != 0 || r.Succeeded+r.Declined+r.Recovered != r.Payments {
		t.Fatalf("%d payments: %d succeeded, %d declined, %d recovered, %d failed, %d uncertain",
			r.Payments, r.Succeeded, r.Declined, r.Recovered, r.Failed, r.Uncertain)
	}
	if r.BalancesChecked != RecoveryCustomers || r.ExpectedMinor != r.ActualMinor {
		t.Fatalf("%d balances checked, expected %d, actual %d", r.BalancesChecked, r.ExpectedMinor, r.ActualMinor)
	}

	// Independently, through the REST API: 0 doubled (one credit transfer
	// per successful payment, no duplicate), 0 lost (no success without
	// its credit, nothing pending).
	check := requireHealthy(t, s)
	credits := int64(r.Succeeded + r.RecoveredSucceeded)
	if check.Transfers != credits || check.DuplicateCredits != 0 || check.SucceededWithoutCredit != 0 {
		t.Fatalf("ledger: %d transfers for %d successful payments (%+v)", check.Transfers, credits, check)
	}
	succeeded := listAll[depositJSON](t, s, "/v1/deposits?status=succeeded")
	declined := listAll[depositJSON](t, s, "/v1/deposits?status=declined")
	pending := listAll[depositJSON](t, s, "/v1/deposits?status=pending")
	if int64(len(succeeded)) != credits || len(declined) != r.Declined+r.RecoveredDeclined || len(pending) != 0 {
		t.Fatalf("deposits: %d succeeded, %d declined, %d pending; the simulator: %d credited, %d declined",
			len(succeeded), len(declined), len(pending), credits, r.Declined+r.RecoveredDeclined)
	}
	// Per account: its balance is the sum of its succeeded deposits, and
	// the total is what the simulator expected from its record.
	want := map[string]int64{}
	for _, d := range succeeded {
		want[d.CustomerID] += d.AmountMinor
	}
	var total int64
	accounts := listAll[accountJSON](t, s, "/v1/accounts")
	for _, a := range accounts {
		if a.BalanceMinor != want[a.CustomerID] {
			t.Errorf("account of %s: balance %d, its succeeded deposits total %d", a.CustomerID, a.BalanceMinor, want[a.CustomerID])
		}
		total += a.BalanceMinor
	}
	if len(accounts) != RecoveryCustomers || total != r.ExpectedMinor || total != check.CustomerBalanceTotal {
		t.Fatalf("%d accounts, balances total %d, the simulator expected %d, ledger check %d",
			len(accounts), total, r.ExpectedMinor, check.CustomerBalanceTotal)
	}
	// Each recovered payment was settled once, by its status answer: the
	// inbox holds the delivered callbacks and, from the poller, one
	// credited or declined answer per recovered payment.
	polled := map[string]int{}
	for _, c := range listAll[callbackJSON](t, s, "/v1/callbacks?source=status_poll") {
		if c.Source != "status_poll" {
			t.Fatalf("source filter answered %+v", c)
		}
		polled[c.Outcome]++
	}
	if polled["credited"] != r.RecoveredSucceeded || polled["declined"] != r.RecoveredDeclined || polled["exception"] != 0 {
		t.Fatalf("status answers in the inbox %v; recovered %d credited, %d declined", polled, r.RecoveredSucceeded, r.RecoveredDeclined)
	}
	if n := len(listAll[callbackJSON](t, s, "/v1/callbacks?source=callback")); n != r.Callbacks {
		t.Fatalf("inbox holds %d callbacks, the simulator delivered %d", n, r.Callbacks)
	}
	if n := len(s.exceptions(t)); n != 0 {
		t.Fatalf("%d exceptions", n)
	}

	// The rate: no instance asked faster than TIYN_STATUS_POLL_RATE (one
	// request of slack for a window's edge), and every request was well
	// signed and about a payment the platform made.
	if len(r.Gate) != len(servers) {
		t.Fatalf("%d gate reports for %d instances", len(r.Gate), len(servers))
	}
	var answered int64
	var split []string
	for i, g := range r.Gate {
		if g.PeakSaturated || g.PeakPerSecond > rate+1 {
			t.Errorf("instance %d: the Gate saw a peak of %d requests per second, TIYN_STATUS_POLL_RATE is %d", i, g.PeakPerSecond, rate)
		}
		if g.Refused != 0 || g.NotFound != 0 {
			t.Errorf("instance %d: %d requests refused, %d about unknown payments", i, g.Refused, g.NotFound)
		}
		answered += g.Answered
		split = append(split, fmt.Sprintf("instance %d: %d requests, peak %d/s", i, g.Requests, g.PeakPerSecond))
	}
	if answered < int64(r.Recovered) {
		t.Errorf("the Gate answered %d requests for %d recovered payments", answered, r.Recovered)
	}
	// Several instances share the work: one round claims at most
	// app.DefaultPollBatch deposits and, at its rate, asks about them for
	// seconds; the other instance's round, a second apart at most, claims
	// the rest.
	if len(servers) > 1 && r.CallbacksDropped > app.DefaultPollBatch {
		for i, g := range r.Gate {
			if g.Requests == 0 {
				t.Errorf("instance %d never asked, with %d dropped payments (more than one round's %d)", i, r.CallbacksDropped, app.DefaultPollBatch)
			}
		}
	}
	t.Logf("%s: dropped %d, recovered %d (%d credited, %d declined), lost %d, doubled %d; recovery %.1f s (longest %.1f s); rate %d/s per instance; %v", t.Name(),
		r.CallbacksDropped, r.Recovered, r.RecoveredSucceeded, r.RecoveredDeclined, r.Lost, check.DuplicateCredits,
		r.RecoverySeconds, r.LongestRecoverySeconds, rate, split)
}

// TestSimulateFailsOnLostPayments: a dropped payment Tiyn has not settled
// when the recovery wait ends fails the run (exit status 1), and the
// report names it lost. Here the wait (2 s) ends before the poller may ask
// (TIYN_STATUS_POLL_AFTER, 10 s).
func TestSimulateFailsOnLostPayments(t *testing.T) {
	t.Parallel()
	gate := freeLoopbackAddr(t)
	s := startServer(t, stores[0].url(t), "TIYN_MONETIX_GATE_URL=http://"+gate, "TIYN_STATUS_POLL_AFTER="+RecoveryPollAfter)
	ctx, cancel := context.WithTimeout(context.Background(), SimTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tiynBin, "simulate", "--url", s.base, "--project", projectPlain, "--json", "--no-progress",
		"--customers", "5", "--payments", "60", "--drop-callbacks", "0.3", "--gate-listen", gate, "--recovery-timeout", "2s")
	cmd.Env = append(testkit.CleanEnv(), "TIYN_SIMULATE_TOKEN="+apiToken, "TIYN_SIMULATE_SECRET="+secretPlain)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	testkit.TieToParent(cmd)
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("tiyn simulate: %v, want exit status 1\nstderr: %s", err, stderr.Bytes())
	}
	var r platformsim.Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("report: %v\n%s", err, stdout.Bytes())
	}
	if r.CallbacksDropped == 0 || r.Lost != r.CallbacksDropped || r.Recovered != 0 || r.OK() || len(r.Mismatches) != 0 {
		t.Fatalf("dropped %d, lost %d, recovered %d, OK %v, mismatches %v", r.CallbacksDropped, r.Lost, r.Recovered, r.OK(), r.Mismatches)
	}
	if !strings.Contains(stderr.String(), fmt.Sprintf("%d lost payments", r.Lost)) {
		t.Fatalf("stderr does not name the lost payments: %s", stderr.Bytes())
	}
	// They stay pending: nothing was credited for them behind the simulator's back.
	if n := len(listAll[depositJSON](t, s, "/v1/deposits?status=pending")); n != r.Lost {
		t.Fatalf("%d deposits pending, %d lost", n, r.Lost)
	}
}
