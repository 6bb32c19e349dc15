package platformsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/tools/platformsim"
)

// fastClock runs speedup times faster than the wall clock, from an hour
// ahead of it: to a poller on it every deposit is due at once, and its
// backoff (15 minutes after an answer that is not final) passes in a
// second.
type fastClock struct {
	start   time.Time
	speedup time.Duration
}

func (c fastClock) Now() time.Time {
	return c.start.Add(time.Hour + time.Since(c.start)*c.speedup)
}

// gateListener is a loopback listener for the simulator's Gate.
func gateListener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// startPoller runs Tiyn's own status poller over store, asking the Gate
// at gateAddr, until the test ends.
func startPoller(t *testing.T, store *sqlstore.Store, gateAddr string, rate float64) {
	t.Helper()
	gate, err := monetix.NewGate(monetix.GateConfig{URL: "http://" + gateAddr, Timeout: 5 * time.Second, RequireSignature: true,
		Projects: []monetix.Project{{ID: strconv.Itoa(testProject), Secret: testSecret}}})
	if err != nil {
		t.Fatal(err)
	}
	svc := app.NewService(store, fastClock{start: time.Now(), speedup: 1000}, &system.IDs{})
	poller, err := app.NewStatusPoller(svc, gate, app.StatusPollerConfig{After: app.MinStatusPollAfter, Rate: rate,
		Idle: 50 * time.Millisecond, Expiry: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = poller.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// TestDroppedCallbacksRecoveredByThePoller: the simulator never delivers a
// fifth of the callbacks and answers their status as the Gate; Tiyn's own
// poller (on a clock that makes every deposit due) settles each one, and
// the run ends with every balance right, nothing lost.
func TestDroppedCallbacksRecoveredByThePoller(t *testing.T) {
	t.Parallel()
	h, store := tiynWithStore(t)
	srv := serve(t, h)
	ln := gateListener(t)
	const rate = 200
	startPoller(t, store, ln.Addr().String(), rate)

	cfg := baseConfig(srv.URL)
	cfg.DropShare = 0.2
	cfg.GateListeners = []net.Listener{ln}
	cfg.RecoveryTimeout = 20 * time.Second
	r, err := run(t, cfg)
	requireOK(t, r, err)
	if r.CallbacksDropped == 0 || r.Recovered != r.CallbacksDropped || r.Lost != 0 {
		t.Fatalf("dropped %d, recovered %d, lost %d", r.CallbacksDropped, r.Recovered, r.Lost)
	}
	if r.RecoveredSucceeded == 0 || r.RecoveredSucceeded+r.RecoveredDeclined != r.Recovered {
		t.Errorf("recovered %d: %d succeeded, %d declined", r.Recovered, r.RecoveredSucceeded, r.RecoveredDeclined)
	}
	// Every payment ends somewhere: through its callbacks, or recovered.
	if r.Succeeded+r.Declined+r.Recovered != r.Payments || r.Failed != 0 || r.Uncertain != 0 {
		t.Errorf("%d payments: %d succeeded, %d declined, %d recovered, %d failed, %d uncertain",
			r.Payments, r.Succeeded, r.Declined, r.Recovered, r.Failed, r.Uncertain)
	}
	if r.ExpectedMinor != r.ActualMinor || len(r.Mismatches) != 0 {
		t.Errorf("expected %d, actual %d, mismatches %v", r.ExpectedMinor, r.ActualMinor, r.Mismatches)
	}
	if len(r.Gate) != 1 {
		t.Fatalf("gate reports %+v", r.Gate)
	}
	g := r.Gate[0]
	if g.Addr != ln.Addr().String() || g.Answered < int64(r.CallbacksDropped) || g.Refused != 0 ||
		g.PeakPerSecond < 1 || g.PeakPerSecond > rate+1 {
		t.Errorf("gate %+v for %d dropped payments at %d per second", g, r.CallbacksDropped, rate)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Log(text.String())
	want := "callbacks dropped " + strconv.Itoa(r.CallbacksDropped) + ", recovered by status checks " +
		strconv.Itoa(r.Recovered) + ", lost 0, mismatches 0\n"
	if !strings.HasSuffix(text.String(), want) || !strings.Contains(text.String(), "gate          "+g.Addr) {
		t.Errorf("text report does not end with %q:\n%s", want, text.String())
	}
}

// Without a poller nothing settles the dropped payments: each is lost,
// named in the errors, and the run is not OK — while the balances, which
// cannot tell, are not called wrong.
func TestDroppedCallbacksLostWithoutAPoller(t *testing.T) {
	t.Parallel()
	srv := serve(t, tiynHandler(t))
	ln := gateListener(t)
	cfg := baseConfig(srv.URL)
	cfg.Payments = scaled(60)
	cfg.DropShare = 0.3
	cfg.GateListeners = []net.Listener{ln}
	cfg.RecoveryTimeout = time.Second
	start := time.Now()
	r, err := run(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() || r.CallbacksDropped == 0 || r.Lost != r.CallbacksDropped || r.Recovered != 0 {
		t.Fatalf("OK %v, dropped %d, lost %d, recovered %d", r.OK(), r.CallbacksDropped, r.Lost, r.Recovered)
	}
	if r.Errors < r.Lost || !strings.Contains(strings.Join(r.ErrorSamples, "\n"), "not settled by Tiyn within 1s") {
		t.Errorf("errors %d %q", r.Errors, r.ErrorSamples)
	}
	if len(r.Mismatches) != 0 {
		t.Errorf("mismatches %v", r.Mismatches)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the run took %s with a recovery timeout of 1 s", d)
	}
	if g := r.Gate[0]; g.Requests != 0 {
		t.Errorf("the Gate was asked %d times with no poller", g.Requests)
	}
}

// notLoopback is a listener on an address the simulator must refuse; it
// holds no socket.
type notLoopback struct{ closed bool }

func (l *notLoopback) Accept() (net.Conn, error) { return nil, errors.New("not a real listener") }
func (l *notLoopback) Close() error              { l.closed = true; return nil }
func (l *notLoopback) Addr() net.Addr            { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 80} }

func TestGateConfigRefused(t *testing.T) {
	t.Parallel()
	srv := serve(t, tiynHandler(t))
	bad := &notLoopback{}
	for _, tc := range []struct {
		name string
		edit func(*platformsim.Config)
		want string
	}{
		{"drops without a gate", func(c *platformsim.Config) { c.DropShare = 0.1 }, "need the Gate"},
		{"a share above 1", func(c *platformsim.Config) { c.DropShare = 1.5; c.GateListeners = []net.Listener{gateListener(t)} }, "dropped callbacks"},
		{"a gate off loopback", func(c *platformsim.Config) { c.GateListeners = []net.Listener{bad} }, "loopback"},
		{"a nil listener", func(c *platformsim.Config) { c.GateListeners = []net.Listener{nil} }, "nil gate listener"},
		{"a negative recovery timeout", func(c *platformsim.Config) { c.RecoveryTimeout = -time.Second }, "recovery timeout"},
	} {
		cfg := baseConfig(srv.URL)
		tc.edit(&cfg)
		_, err := platformsim.Run(context.Background(), cfg)
		if !errors.Is(err, platformsim.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrConfig mentioning %q", tc.name, err, tc.want)
		}
	}
	if !bad.closed {
		t.Error("Run did not close the listener it was given")
	}
}

// The Gate's figures are in the JSON report.
func TestGateReportJSON(t *testing.T) {
	t.Parallel()
	srv := serve(t, tiynHandler(t))
	cfg := baseConfig(srv.URL)
	cfg.Payments = scaled(40)
	cfg.GateListeners = []net.Listener{gateListener(t), gateListener(t)}
	r, err := run(t, cfg)
	requireOK(t, r, err)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Gate []struct {
			Addr          string `json:"addr"`
			Requests      *int64 `json:"requests"`
			PeakPerSecond *int   `json:"peak_per_second"`
		} `json:"gate"`
		CallbacksDropped *int `json:"callbacks_dropped"`
		Lost             *int `json:"lost"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Gate) != 2 || back.Gate[0].Addr == back.Gate[1].Addr || back.Gate[0].Requests == nil ||
		back.Gate[0].PeakPerSecond == nil || back.CallbacksDropped == nil || *back.CallbacksDropped != 0 || back.Lost == nil {
		t.Errorf("report JSON %s", b)
	}
}
