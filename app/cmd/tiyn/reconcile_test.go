package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// earlierClock is the wall clock moved back, to open deposits in the past.
type earlierClock struct{ d time.Duration }

func (c earlierClock) Now() time.Time { return time.Now().UTC().Add(-c.d) }

// fakeGate answers status requests signed with secret from statuses, by
// payment id (payment.status; the sale operation has the same status).
type fakeGate struct {
	*httptest.Server
	mu       sync.Mutex
	statuses map[string]string
	amounts  map[string]int64
}

func newFakeGate(t *testing.T, secret []byte) *fakeGate {
	t.Helper()
	g := &fakeGate{statuses: map[string]string{}, amounts: map[string]int64{}}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		project, payment, err := monetix.VerifyStatusRequest(func(string) []byte { return secret }, body)
		if err != nil || r.URL.Path != monetix.GateStatusPath {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		g.mu.Lock()
		status, known := g.statuses[payment]
		amount := g.amounts[payment]
		g.mu.Unlock()
		answer := monetix.StatusNotFoundBody(project, payment)
		code := http.StatusNotFound
		if known {
			code = http.StatusOK
			answer = monetix.BuildStatusAnswer(monetix.StatusAnswerParams{ProjectID: project, PaymentID: payment,
				PaymentStatus: status, Method: "kassa24", AmountMinor: amount, Currency: "KZT",
				Operations: []monetix.StatusOperation{{ID: 42, Status: status}}})
		}
		out, err := monetix.SignedJSON(secret, answer)
		if err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write(out)
	}))
	t.Cleanup(g.Close)
	return g
}

func (g *fakeGate) answer(d domain.Deposit, status string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.statuses[d.PaymentID], g.amounts[d.PaymentID] = status, d.Amount.Minor()
}

func TestReconcilePending(t *testing.T) {
	t.Parallel()
	env := migrated(t)
	secret := "reconcile-test-secret"
	gate := newFakeGate(t, []byte(secret))
	env["TIYN_MONETIX_PROJECTS"] = "1234=" + secret
	env["TIYN_MONETIX_GATE_URL"] = gate.URL

	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstore.Options{URL: env["TIYN_DATABASE_URL"]})
	if err != nil {
		t.Fatal(err)
	}
	// Deposits opened an hour ago, whose callbacks never came.
	svc := app.NewService(store, earlierClock{time.Hour}, &system.IDs{})
	if _, err := svc.OpenAccount(ctx, ports.OpenAccount{CustomerID: "6552", Currency: domain.KZT, Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	ch := domain.Channel{Provider: "monetix", Method: "kassa24", Project: "1234"}
	open := func(minor int64) domain.Deposit {
		d, err := svc.OpenDeposit(ctx, ports.OpenDeposit{Channel: ch, CustomerID: "6552", Amount: domain.NewAmount(minor, domain.KZT),
			Limits: monetix.Kassa24.Limits})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	lost, slow, ghost := open(1500_00), open(25_00), open(7_00)
	gate.answer(lost, "success")
	gate.answer(slow, "processing")
	_ = store.Close()

	m, stdout, stderr := testMain(env)
	if code, err := run(t, m, "reconcile", "pending"); code != exitOK {
		t.Fatalf("reconcile pending: exit %d, %v\n%s", code, err, stderr)
	}
	out := stdout.String()
	for _, want := range []string{"asked about 3 pending deposits", "credited         1", "not_final        1", "not_found        1",
		"expired 0, raised as status_unknown 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	store, err = sqlstore.Open(ctx, sqlstore.Options{URL: env["TIYN_DATABASE_URL"]})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close() }()
	for d, want := range map[domain.Deposit]domain.DepositStatus{lost: domain.DepositSucceeded, slow: domain.DepositPending,
		ghost: domain.DepositPending} {
		got, err := store.DepositByPaymentID(ctx, ch, d.PaymentID)
		if err != nil || got.Status != want {
			t.Errorf("deposit %s: %s, %v; want %s", d.PaymentID, got.Status, err, want)
		}
	}
	recs, err := store.ListInbox(ctx, ports.InboxQuery{PaymentID: lost.PaymentID})
	if err != nil || len(recs) != 1 || recs[0].Source != ports.SourceStatusPoll {
		t.Fatalf("inbox = %+v, %v", recs, err)
	}

	// On demand means whatever the backoff: asked again at once.
	m, stdout, _ = testMain(env)
	if code, err := run(t, m, "reconcile", "pending"); code != exitOK || !strings.Contains(stdout.String(), "asked about 2 pending") {
		t.Fatalf("second run: exit %d, %v\n%s", code, err, stdout)
	}
}

func TestReconcilePendingRefusesBadSettings(t *testing.T) {
	t.Parallel()
	env := migrated(t)
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no project", nil, nil, "no Monetix project"},
		{"plain http off loopback", map[string]string{"TIYN_MONETIX_PROJECTS": "1=s", "TIYN_MONETIX_GATE_URL": "http://gate.example"}, nil, "https"},
		{"a limit past a page", map[string]string{"TIYN_MONETIX_PROJECTS": "1=s"}, []string{"--limit", "1001"}, "--limit"},
		{"expiry not after the first check", map[string]string{"TIYN_MONETIX_PROJECTS": "1=s", "TIYN_PENDING_EXPIRY": "5m"}, nil,
			"TIYN_PENDING_EXPIRY"},
		{"a rate of zero", map[string]string{"TIYN_MONETIX_PROJECTS": "1=s", "TIYN_STATUS_POLL_RATE": "0"}, nil, "TIYN_STATUS_POLL_RATE"},
		{"a rate that is not a number", map[string]string{"TIYN_MONETIX_PROJECTS": "1=s", "TIYN_STATUS_POLL_RATE": "NaN"}, nil, "not a number"},
		{"after below ten seconds", map[string]string{"TIYN_MONETIX_PROJECTS": "1=s", "TIYN_STATUS_POLL_AFTER": "9s"}, nil, "TIYN_STATUS_POLL_AFTER"},
		{"a gate timeout of an hour", map[string]string{"TIYN_MONETIX_PROJECTS": "1=s", "TIYN_MONETIX_GATE_TIMEOUT": "1h"}, nil, "TIYN_MONETIX_GATE_TIMEOUT"},
	} {
		e := map[string]string{}
		for k, v := range env {
			e[k] = v
		}
		for k, v := range tc.env {
			e[k] = v
		}
		m, _, _ := testMain(e)
		code, err := run(t, m, append([]string{"reconcile", "pending"}, tc.args...)...)
		if code != exitUsage || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: exit %d, %v; want a usage error naming %q", tc.name, code, err, tc.want)
		}
	}
}
