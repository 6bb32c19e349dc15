package platformsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/tools/platformsim"
)

// requireOK fails the test with the report when the run found problems.
func requireOK(t *testing.T, r platformsim.Report, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !r.OK() {
		var b bytes.Buffer
		_ = r.WriteText(&b)
		t.Fatalf("run not OK:\n%s", b.String())
	}
}

func TestFullRunAgainstTiyn(t *testing.T) {
	t.Parallel()
	srv := serve(t, tiynHandler(t))
	cfg := baseConfig(srv.URL)
	r, err := run(t, cfg)
	requireOK(t, r, err)

	if r.Payments != cfg.Payments || r.Failed != 0 || r.Uncertain != 0 {
		t.Errorf("payments %d failed %d uncertain %d, want %d/0/0", r.Payments, r.Failed, r.Uncertain, cfg.Payments)
	}
	if r.Succeeded+r.Declined != r.Payments {
		t.Errorf("succeeded %d + declined %d != payments %d", r.Succeeded, r.Declined, r.Payments)
	}
	if r.LateSuccesses == 0 || r.Declined == 0 {
		t.Errorf("late successes %d, declines %d: the plan should produce both", r.LateSuccesses, r.Declined)
	}
	// Every success credits exactly once; the rest of the deliveries are
	// replays, declines or recorded intermediates.
	if got := r.Effects["credited"]; got != r.Succeeded {
		t.Errorf("credited effects %d, want one per success (%d)", got, r.Succeeded)
	}
	for _, eff := range []string{"replay", "declined", "recorded"} {
		if r.Effects[eff] == 0 {
			t.Errorf("no %q effect in %v", eff, r.Effects)
		}
	}
	if r.Effects["exception"] != 0 {
		t.Errorf("exceptions: %v", r.Effects)
	}
	if r.BalancesChecked != cfg.Customers || r.ExpectedMinor != r.ActualMinor || r.ExpectedMinor <= 0 {
		t.Errorf("checked %d, expected %d, actual %d", r.BalancesChecked, r.ExpectedMinor, r.ActualMinor)
	}
	for _, k := range []string{"verify", "check_deposit", "callback"} {
		p, ok := r.Latency[k]
		if !ok || p.Count == 0 || p.P50 <= 0 || p.P50 > p.P95 || p.P95 > p.P99 || p.P99 > p.Max {
			t.Errorf("latency %s = %+v", k, p)
		}
	}
	if got := r.Latency["check_deposit"].Count; got != cfg.Payments {
		t.Errorf("check_deposit count %d, want %d", got, cfg.Payments)
	}
	if r.Callbacks <= r.Payments || r.PaymentsPerSec <= 0 || r.CallbacksPerSec <= 0 {
		t.Errorf("callbacks %d, rates %v %v", r.Callbacks, r.PaymentsPerSec, r.CallbacksPerSec)
	}
}

func TestCallbacksModeAgainstTiyn(t *testing.T) {
	t.Parallel()
	srv := serve(t, tiynHandler(t))
	cfg := baseConfig(srv.URL)
	cfg.Mode = platformsim.ModeCallbacks
	cfg.Payments = scaled(150)
	r, err := run(t, cfg)
	requireOK(t, r, err)
	if r.Payments != cfg.Payments || r.Succeeded+r.Declined != r.Payments {
		t.Errorf("payments %d, succeeded %d, declined %d", r.Payments, r.Succeeded, r.Declined)
	}
	if r.Effects["credited"] != r.Succeeded {
		t.Errorf("credited %d, succeeded %d", r.Effects["credited"], r.Succeeded)
	}
}

func TestSameSeedSamePlan(t *testing.T) {
	t.Parallel()
	srv := serve(t, tiynHandler(t))
	cfg := baseConfig(srv.URL)
	cfg.Payments = scaled(60)
	a, errA := run(t, cfg)
	requireOK(t, a, errA)
	b, errB := run(t, cfg)
	requireOK(t, b, errB)
	if a.CustomerPrefix == b.CustomerPrefix {
		t.Errorf("two runs share the customer prefix %q", a.CustomerPrefix)
	}
	if a.ExpectedMinor != b.ExpectedMinor || a.Succeeded != b.Succeeded || a.Callbacks != b.Callbacks {
		t.Errorf("same seed, different plans: %d/%d/%d vs %d/%d/%d",
			a.ExpectedMinor, a.Succeeded, a.Callbacks, b.ExpectedMinor, b.Succeeded, b.Callbacks)
	}
	cfg.Seed++
	c, errC := run(t, cfg)
	requireOK(t, c, errC)
	if c.ExpectedMinor == a.ExpectedMinor {
		t.Errorf("another seed gave the same total %d", c.ExpectedMinor)
	}
}

func TestDetectsDoubleCredit(t *testing.T) {
	t.Parallel()
	fake := &fakeTiyn{creditEveryCallback: true}
	srv := serve(t, fake.handler())
	cfg := baseConfig(srv.URL)
	cfg.DuplicateShare = 0.5
	r, err := run(t, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(r.Mismatches) == 0 || r.OK() {
		t.Fatalf("a server crediting replays went unnoticed: %+v", r)
	}
	for _, m := range r.Mismatches {
		if m.Got <= m.Want || !strings.HasPrefix(m.CustomerID, r.CustomerPrefix) {
			t.Errorf("mismatch %+v: a double credit must show more than expected", m)
		}
	}
	if r.ActualMinor <= r.ExpectedMinor {
		t.Errorf("actual %d <= expected %d", r.ActualMinor, r.ExpectedMinor)
	}
}

func TestHonestFakePasses(t *testing.T) {
	t.Parallel()
	// The same fake without the fault: proves the mismatch above comes
	// from the fault, not from the fake.
	srv := serve(t, (&fakeTiyn{}).handler())
	r, err := run(t, baseConfig(srv.URL))
	requireOK(t, r, err)
}

func TestDetectsWrongAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		fake   *fakeTiyn
		sample string
		failed bool
	}{
		{"verify of an unknown customer answered 0", &fakeTiyn{verifyUnknownOK: true}, "want 404", false},
		{"check_deposit without payment_id", &fakeTiyn{omitPaymentID: true}, "without a payment_id", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := serve(t, tc.fake.handler())
			cfg := baseConfig(srv.URL)
			cfg.Payments = 40
			cfg.UnknownVerifyShare = 0.5
			r, err := run(t, cfg)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if r.Errors == 0 || r.OK() || len(r.ErrorSamples) == 0 {
				t.Fatalf("not detected: errors %d, samples %v", r.Errors, r.ErrorSamples)
			}
			if !strings.Contains(strings.Join(r.ErrorSamples, "\n"), tc.sample) {
				t.Errorf("samples %q lack %q", r.ErrorSamples, tc.sample)
			}
			if len(r.ErrorSamples) > 10 {
				t.Errorf("%d samples kept, want at most 10", len(r.ErrorSamples))
			}
			if tc.failed && (r.Failed != r.Payments || r.Callbacks != 0) {
				t.Errorf("failed %d of %d, callbacks %d", r.Failed, r.Payments, r.Callbacks)
			}
		})
	}
}

func TestPlatformModeRetries503(t *testing.T) {
	t.Parallel()
	const k = 25
	h, seen := failFirstCallbacks(k, tiynHandler(t))
	srv := serve(t, h)
	cfg := baseConfig(srv.URL)
	cfg.Payments = scaled(100)
	cfg.Platform = true
	r, err := run(t, cfg)
	requireOK(t, r, err)
	if r.Retries < k {
		t.Errorf("retries %d, want >= %d", r.Retries, k)
	}
	if got := seen.Load(); got < int64(r.Callbacks+k) {
		t.Errorf("server saw %d callbacks, want >= %d", got, r.Callbacks+k)
	}
	if r.Uncertain != 0 || r.Effects["credited"] != r.Succeeded {
		t.Errorf("uncertain %d, credited %d, succeeded %d", r.Uncertain, r.Effects["credited"], r.Succeeded)
	}
}

func TestWithoutPlatformMode503IsAnError(t *testing.T) {
	t.Parallel()
	const k = 10
	h, _ := failFirstCallbacks(k, tiynHandler(t))
	srv := serve(t, h)
	cfg := baseConfig(srv.URL)
	cfg.Payments = scaled(60)
	r, err := run(t, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if r.Errors != k || r.Retries != 0 || r.OK() {
		t.Errorf("errors %d (want %d), retries %d", r.Errors, k, r.Retries)
	}
	// Refused success callbacks are uncertain, not mismatches: nothing
	// was credited and the balance check allows for that.
	if len(r.Mismatches) != 0 {
		t.Errorf("mismatches %+v", r.Mismatches)
	}
	if !strings.Contains(strings.Join(r.ErrorSamples, "\n"), "HTTP 503") {
		t.Errorf("samples %q", r.ErrorSamples)
	}
}

func TestPlatformModeSurvivesRestart(t *testing.T) {
	t.Parallel()
	var restartedAt atomic.Bool
	var callbacksAfter atomic.Int64
	tiyn := tiynHandler(t)
	rs := newRestartableServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if restartedAt.Load() && r.URL.Path == monetix.CallbacksPath {
			callbacksAfter.Add(1)
		}
		tiyn.ServeHTTP(w, r)
	}))
	cfg := baseConfig(rs.url())
	cfg.Payments = 0
	cfg.Duration = 1500 * time.Millisecond
	cfg.Rate = 200
	cfg.Platform = true
	cfg.RequestTimeout = time.Second

	restarted := make(chan error, 1)
	go func() {
		time.Sleep(400 * time.Millisecond)
		rs.stop()
		time.Sleep(300 * time.Millisecond)
		restartedAt.Store(true)
		restarted <- rs.start()
	}()
	r, err := run(t, cfg)
	if rerr := <-restarted; rerr != nil {
		t.Fatal(rerr)
	}
	requireOK(t, r, err)
	if r.Retries == 0 {
		t.Errorf("no retries: the server was down for 300 ms")
	}
	if callbacksAfter.Load() == 0 {
		t.Errorf("no callback reached the restarted server")
	}
}

func TestDurationAndRateBoundTheRun(t *testing.T) {
	t.Parallel()
	srv := serve(t, tiynHandler(t))
	cfg := baseConfig(srv.URL)
	cfg.Payments = 0
	cfg.Duration = 500 * time.Millisecond
	cfg.Rate = 40
	start := time.Now()
	r, err := run(t, cfg)
	requireOK(t, r, err)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("run took %s", took)
	}
	// 40/s for 0.5 s starts payments at 0, 25 ms, …, 500 ms: at most 21,
	// however fast the machine. How few a loaded machine manages is not a
	// property of the simulator (make test runs this beside -race builds).
	if r.Payments < 1 || r.Payments > 21 {
		t.Errorf("%d payments at 40/s in 0.5 s", r.Payments)
	}
}

func TestCancelStopsTheRun(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel once the run is well under way: at the 20th callback.
	var seen atomic.Int64
	var cancelledAt atomic.Int64
	tiyn := tiynHandler(t)
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == monetix.CallbacksPath && seen.Add(1) == 20 {
			cancelledAt.Store(time.Now().UnixNano())
			cancel()
		}
		tiyn.ServeHTTP(w, r)
	}))
	cfg := baseConfig(srv.URL)
	cfg.Payments = 0
	cfg.Duration = time.Minute
	r, err := platformsim.Run(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the context's", err)
	}
	if took := time.Since(time.Unix(0, cancelledAt.Load())); took > 5*time.Second {
		t.Errorf("the run took %s to stop after cancel", took)
	}
	if r.Payments == 0 || r.BalancesChecked != cfg.Customers {
		t.Errorf("payments %d, balances checked %d: the partial run should still be checked", r.Payments, r.BalancesChecked)
	}
	if len(r.Mismatches) != 0 {
		t.Errorf("mismatches after cancel: %+v", r.Mismatches)
	}
}

func TestSetupAndConfigErrors(t *testing.T) {
	t.Parallel()
	srv := serve(t, (&fakeTiyn{}).handler())
	tests := []struct {
		name string
		edit func(*platformsim.Config)
		want error
		text string
	}{
		{"wrong token", func(c *platformsim.Config) { c.APIToken = "wrong-token-0123456789" }, platformsim.ErrSetup, "HTTP 401"},
		{"nothing listening", func(c *platformsim.Config) { c.BaseURL = "http://127.0.0.1:1" }, platformsim.ErrSetup, "refused"},
		{"remote host", func(c *platformsim.Config) { c.BaseURL = "http://192.0.2.1:8080" }, platformsim.ErrConfig, "loopback"},
		{"unbounded", func(c *platformsim.Config) { c.Payments = 0 }, platformsim.ErrConfig, "bounded"},
		{"callbacks mode too large", func(c *platformsim.Config) {
			c.Mode = platformsim.ModeCallbacks
			c.Payments = platformsim.MaxPreparedPayments + 1
		}, platformsim.ErrConfig, "in memory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := baseConfig(srv.URL)
			cfg.RequestTimeout = time.Second
			tc.edit(&cfg)
			_, err := run(t, cfg)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.want, tc.text)
			}
		})
	}
}

func TestReportJSON(t *testing.T) {
	t.Parallel()
	srv := serve(t, tiynHandler(t))
	cfg := baseConfig(srv.URL)
	cfg.Payments = scaled(30)
	r, err := run(t, cfg)
	requireOK(t, r, err)
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"payments", "succeeded", "callbacks", "errors", "mismatches", "elapsed_seconds",
		"payments_per_sec", "callbacks_per_sec", "latency", "expected_total_minor", "actual_total_minor"} {
		if _, ok := doc[key]; !ok {
			t.Errorf("JSON lacks %q: %s", key, raw)
		}
	}
	if m, ok := doc["mismatches"].([]any); !ok || len(m) != 0 {
		t.Errorf("mismatches = %v, want []", doc["mismatches"])
	}
	lat := doc["latency"].(map[string]any)["callback"].(map[string]any)
	for _, key := range []string{"count", "p50_ms", "p95_ms", "p99_ms", "max_ms"} {
		if _, ok := lat[key]; !ok {
			t.Errorf("latency lacks %q", key)
		}
	}
	var back platformsim.Report
	if err := json.Unmarshal(raw, &back); err != nil || back.Payments != r.Payments || back.Elapsed != r.Elapsed {
		t.Errorf("round trip: %v %+v", err, back)
	}
}
