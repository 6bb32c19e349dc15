package platformsim_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/monetix/signature"
	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/tests/testkit"
	"github.com/tiyn/tiyn/tools/platformsim"
)

const (
	testToken   = "sim-test-token-0123456789"
	testProject = 1234
)

var testSecret = []byte("mx_test_secret_2024")

// tiynHandler builds the real Tiyn — SQLite store, app service, REST and
// Monetix handlers — on one mux, as `tiyn serve` wires it.
func tiynHandler(t *testing.T) http.Handler {
	t.Helper()
	h, _ := tiynWithStore(t)
	return h
}

// tiynWithStore is tiynHandler, with its store (for a status poller).
func tiynWithStore(t *testing.T) (http.Handler, *sqlstore.Store) {
	t.Helper()
	store := testkit.OpenSQLite(t, sqlstore.Options{})
	ledger := app.NewService(store, system.Clock{}, &system.IDs{})
	quiet := slog.New(slog.DiscardHandler)
	mux := http.NewServeMux()
	rest.Register(mux, ledger, rest.Options{
		Tokens: []rest.Token{{Name: "sim", Role: rest.RoleWrite, Secret: testToken}},
		Logger: quiet,
	})
	h, err := monetix.New(ledger, monetix.Config{
		Projects: []monetix.Project{{ID: strconv.Itoa(testProject), Secret: testSecret}},
		Logger:   quiet,
	})
	if err != nil {
		t.Fatalf("monetix.New: %v", err)
	}
	h.Register(mux)
	return mux, store
}

// serve starts h on a loopback httptest server.
func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// scaled shrinks a payment count under the race detector, keeping enough
// payments for every share to occur.
func scaled(n int) int {
	if raceEnabled {
		return max(n/4, 30)
	}
	return n
}

// baseConfig is a small run with every share non-zero.
func baseConfig(url string) platformsim.Config {
	return platformsim.Config{
		BaseURL: url, APIToken: testToken, ProjectID: testProject, Secret: testSecret,
		Customers: 10, Payments: scaled(200), Concurrency: 8, Mode: platformsim.ModeFull,
		DuplicateShare: 0.2, ConcurrentDupShare: 0.15, DeclineShare: 0.1, LateSuccessShare: 0.1,
		IntermediateShare: 0.15, UnknownVerifyShare: 0.1,
		RequestTimeout: 5 * time.Second, RetryFor: 5 * time.Second,
		Seed: 42,
	}
}

// run runs the simulator with a bound on the whole test.
func run(t *testing.T, cfg platformsim.Config) (platformsim.Report, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return platformsim.Run(ctx, cfg)
}

// failFirstCallbacks answers 503 to the first k callbacks without passing
// them on (the server "was down"), then lets everything through.
func failFirstCallbacks(k int64, next http.Handler) (http.Handler, *atomic.Int64) {
	var seen atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == monetix.CallbacksPath && seen.Add(1) <= k {
			_, _ = io.Copy(io.Discard, r.Body)
			http.Error(w, `{"status":"error","error":"unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	}), &seen
}

// fakeTiyn is a deliberately simplified Tiyn for the negative tests: it
// checks signatures and answers the wire correctly, except for the faults
// it is told to have.
type fakeTiyn struct {
	creditEveryCallback bool // not idempotent: every success answered 200 credits
	verifyUnknownOK     bool // answers code 0 to verify of any customer
	omitPaymentID       bool // check_deposit answers code 0 without payment_id

	mu       sync.Mutex
	balances map[string]int64
	deposits map[string]fakeDeposit
	nextID   int
}

type fakeDeposit struct {
	customer string
	amount   int64
	credited bool
}

func (f *fakeTiyn) handler() http.Handler {
	f.balances = map[string]int64{}
	f.deposits = map[string]fakeDeposit{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/accounts", f.openAccount)
	mux.HandleFunc("GET /v1/accounts", f.getAccount)
	mux.HandleFunc("POST "+monetix.RequestsPath, f.requests)
	mux.HandleFunc("POST "+monetix.CallbacksPath, f.callbacks)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeTiyn) account(id string) map[string]any {
	return map[string]any{"id": "acc_" + id, "customer_id": id, "currency": "KZT", "status": "active", "balance_minor": f.balances[id]}
}

func (f *fakeTiyn) openAccount(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
		return
	}
	var req struct {
		CustomerID string `json:"customer_id"`
		Currency   string `json:"currency"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.CustomerID == "" || req.Currency != "KZT" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad request"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	status := http.StatusOK
	if _, ok := f.balances[req.CustomerID]; !ok {
		f.balances[req.CustomerID] = 0
		status = http.StatusCreated
	}
	writeJSON(w, status, f.account(req.CustomerID))
}

func (f *fakeTiyn) getAccount(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("customer_id")
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.balances[id]; !ok || r.URL.Query().Get("currency") != "KZT" {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
		return
	}
	writeJSON(w, http.StatusOK, f.account(id))
}

func (f *fakeTiyn) requests(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	doc, err := signature.VerifyBody(testSecret, body)
	if err != nil {
		writeJSON(w, http.StatusOK, map[string]any{"code": 400})
		return
	}
	req, err := monetix.ParseRequest(doc)
	if err != nil {
		writeJSON(w, http.StatusOK, map[string]any{"code": 500, "errors": map[string]string{"message": err.Error()}})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	_, known := f.balances[req.CustomerID]
	if !known && !f.verifyUnknownOK {
		writeJSON(w, http.StatusOK, map[string]any{"code": 404})
		return
	}
	if req.Type == monetix.TypeVerify {
		writeJSON(w, http.StatusOK, map[string]any{"code": 0, "currency": "KZT"})
		return
	}
	f.nextID++
	id := "pay_" + strconv.Itoa(f.nextID)
	f.deposits[id] = fakeDeposit{customer: req.CustomerID, amount: req.AmountMinor}
	if f.omitPaymentID {
		writeJSON(w, http.StatusOK, map[string]any{"code": 0})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"code": 0, "payment_id": id})
}

func (f *fakeTiyn) callbacks(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	doc, err := signature.VerifyBody(testSecret, body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"status": "error"})
		return
	}
	cb, err := monetix.ParseCallback(doc)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"status": "error"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.deposits[cb.PaymentID]
	if !ok {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "effect": "exception"})
		return
	}
	switch {
	case cb.PaymentStatus == "success" && (!d.credited || f.creditEveryCallback):
		d.credited = true
		f.deposits[cb.PaymentID] = d
		f.balances[d.customer] += d.amount
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "effect": "credited"})
	case cb.PaymentStatus == "success":
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "effect": "replay"})
	case cb.PaymentStatus == "decline":
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "effect": "declined"})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "effect": "recorded"})
	}
}

// restartableServer serves h on a fixed loopback port and can be stopped
// and started again on the same port, like a restarted `tiyn serve`.
type restartableServer struct {
	t    *testing.T
	h    http.Handler
	addr string
	mu   sync.Mutex
	srv  *http.Server
}

func newRestartableServer(t *testing.T, h http.Handler) *restartableServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	rs := &restartableServer{t: t, h: h, addr: ln.Addr().String()}
	rs.serveOn(ln)
	t.Cleanup(rs.stop)
	return rs
}

func (rs *restartableServer) url() string { return "http://" + rs.addr }

func (rs *restartableServer) serveOn(ln net.Listener) {
	srv := &http.Server{Handler: rs.h, ReadHeaderTimeout: 5 * time.Second}
	rs.mu.Lock()
	rs.srv = srv
	rs.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// stop closes the listener and every connection at once (a crash).
func (rs *restartableServer) stop() {
	rs.mu.Lock()
	srv := rs.srv
	rs.srv = nil
	rs.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// start listens on the same address again.
func (rs *restartableServer) start() error {
	var lastErr error
	for range 50 {
		ln, err := net.Listen("tcp", rs.addr)
		if err == nil {
			rs.serveOn(ln)
			return nil
		}
		lastErr = err
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("relisten: " + lastErr.Error())
}
