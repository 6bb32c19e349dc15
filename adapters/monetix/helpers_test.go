package monetix_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
	"github.com/tiyn/tiyn/tests/testkit"
)

// Test projects. P1 uses the secret of the independently computed vectors
// in adapters/monetix/signature/testdata/signature-vectors.json.
const (
	p1ID = "1234"
	p2ID = "5678"
	p3ID = "777" // own limits 5.00–10.00 KZT and signed answers
)

var (
	p1Secret = []byte("mx_test_secret_2024")
	p2Secret = []byte("another-project-secret")
	p3Secret = []byte("third-project-secret")
)

// USD is registered as a second currency, for wrong-currency cases (the
// tests name it by its code). Tests may register currencies; the adapter
// never does.
var _ = domain.MustRegisterCurrency("USD", 2)

var fixedNow = time.Date(2026, 11, 5, 12, 30, 0, 0, time.UTC)

func testProjects() []monetix.Project {
	return []monetix.Project{
		{ID: p1ID, Secret: p1Secret},
		{ID: p2ID, Secret: p2Secret},
		{ID: p3ID, Secret: p3Secret, Limits: &domain.AmountLimits{MinMinor: 500, MaxMinor: 1000}, SignAnswers: true},
	}
}

// env is one handler over one ledger, driven through the mux exactly as the
// server would route.
type env struct {
	t       testing.TB
	ledger  ports.Ledger
	fake    *fakeLedger // nil for the real app
	h       *monetix.Handler
	mux     *http.ServeMux
	reg     *prometheus.Registry
	metrics *monetix.Metrics
}

type envOption func(*monetix.Config)

func withMethods(ms ...monetix.Method) envOption {
	return func(c *monetix.Config) { c.Methods = ms }
}

func withMaxBody(n int64) envOption {
	return func(c *monetix.Config) { c.MaxBodyBytes = n }
}

func newEnv(t testing.TB, ledger ports.Ledger, opts ...envOption) *env {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := monetix.NewMetrics(reg)
	cfg := monetix.Config{Projects: testProjects(), Metrics: m, Now: func() time.Time { return fixedNow }}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := monetix.New(ledger, cfg)
	if err != nil {
		t.Fatalf("monetix.New: %v", err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	e := &env{t: t, ledger: ledger, h: h, mux: mux, reg: reg, metrics: m}
	if f, ok := ledger.(*fakeLedger); ok {
		e.fake = f
	}
	return e
}

func newFakeEnv(t testing.TB, opts ...envOption) *env {
	return newEnv(t, newFakeLedger(), opts...)
}

// newSQLiteLedger is the real app over a fresh SQLite file.
func newSQLiteLedger(t testing.TB) ports.Ledger {
	t.Helper()
	return app.NewService(testkit.OpenSQLite(t, sqlstore.Options{}), system.Clock{}, &system.IDs{})
}

// backends are the ledgers the behavioural suites run against.
var backends = []struct {
	name string
	make func(testing.TB) ports.Ledger
}{
	{"fake", func(testing.TB) ports.Ledger { return newFakeLedger() }},
	{"sqlite", newSQLiteLedger},
}

// post sends body to path with a content type ("" sends none).
func (e *env) post(path string, body []byte, contentType string) *httptest.ResponseRecorder {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.RemoteAddr = "127.0.0.1:40000"
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, req)
	return rec
}

func sign(t testing.TB, secret []byte, body map[string]any) []byte {
	t.Helper()
	b, err := monetix.SignedJSON(secret, body)
	if err != nil {
		t.Fatalf("SignedJSON: %v", err)
	}
	return b
}

// requestRaw posts a raw body to the requests endpoint and decodes the
// answer, checking the invariants every answer has: HTTP 200, JSON, and an
// errors.message on every non-zero code.
func (e *env) requestRaw(body []byte, contentType string) monetix.Answer {
	e.t.Helper()
	rec := e.post(monetix.RequestsPath, body, contentType)
	if rec.Code != http.StatusOK {
		e.t.Fatalf("requests: HTTP %d, want 200 (body %s)", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		e.t.Fatalf("requests: Content-Type %q", ct)
	}
	a, err := monetix.ParseAnswer(rec.Body.Bytes(), nil)
	if err != nil {
		e.t.Fatalf("requests: %v (body %s)", err, rec.Body)
	}
	if a.Code != monetix.CodeOK && a.Message() == "" {
		e.t.Fatalf("requests: code %d without errors.message: %s", a.Code, rec.Body)
	}
	return a
}

func (e *env) request(secret []byte, body map[string]any) monetix.Answer {
	e.t.Helper()
	return e.requestRaw(sign(e.t, secret, body), "application/json")
}

// callbackRaw posts a raw callback and returns the HTTP status and reply.
func (e *env) callbackRaw(body []byte, contentType string) (int, monetix.CallbackReply) {
	e.t.Helper()
	rec := e.post(monetix.CallbacksPath, body, contentType)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		e.t.Fatalf("callbacks: Content-Type %q (HTTP %d, body %s)", ct, rec.Code, rec.Body)
	}
	var reply monetix.CallbackReply
	if err := json.Unmarshal(rec.Body.Bytes(), &reply); err != nil {
		e.t.Fatalf("callbacks: answer %q: %v", rec.Body, err)
	}
	if (rec.Code == http.StatusOK) != (reply.Status == "ok") {
		e.t.Fatalf("callbacks: HTTP %d with status %q", rec.Code, reply.Status)
	}
	return rec.Code, reply
}

func (e *env) callback(secret []byte, body map[string]any) (int, monetix.CallbackReply) {
	e.t.Helper()
	return e.callbackRaw(sign(e.t, secret, body), "application/json")
}

// mustCallback posts a callback that must be applied with the given effect.
func (e *env) mustCallback(body map[string]any, wantEffect string) {
	e.t.Helper()
	status, reply := e.callback(p1Secret, body)
	if status != http.StatusOK || reply.Effect != wantEffect {
		e.t.Fatalf("callback: HTTP %d effect %q error %q, want 200 %q", status, reply.Effect, reply.Error, wantEffect)
	}
}

func (e *env) openAccount(customerID, additional string) domain.Account {
	e.t.Helper()
	res, err := e.ledger.OpenAccount(context.Background(), ports.OpenAccount{
		CustomerID: customerID, AdditionalCustomerID: additional, Currency: domain.KZT, Actor: "test"})
	if err != nil {
		e.t.Fatalf("OpenAccount: %v", err)
	}
	return res.Account
}

func (e *env) setStatus(accountID string, to domain.AccountStatus) {
	e.t.Helper()
	if _, err := e.ledger.ChangeAccountStatus(context.Background(), ports.ChangeAccountStatus{AccountID: accountID, To: to, Actor: "test"}); err != nil {
		e.t.Fatalf("ChangeAccountStatus: %v", err)
	}
}

func (e *env) balance(accountID string) int64 {
	e.t.Helper()
	b, err := e.ledger.Balance(context.Background(), accountID, time.Time{})
	if err != nil {
		e.t.Fatalf("Balance: %v", err)
	}
	return b.Minor()
}

func (e *env) inbox() []ports.InboxRecord {
	e.t.Helper()
	recs, err := e.ledger.ListInbox(context.Background(), ports.InboxQuery{Limit: ports.MaxPageSize})
	if err != nil {
		e.t.Fatalf("ListInbox: %v", err)
	}
	return recs
}

func (e *env) exceptions() []domain.Exception {
	e.t.Helper()
	ex, err := e.ledger.ListExceptions(context.Background(), ports.ExceptionQuery{Limit: ports.MaxPageSize})
	if err != nil {
		e.t.Fatalf("ListExceptions: %v", err)
	}
	return ex
}

func (e *env) deposit(paymentID string) domain.Deposit {
	e.t.Helper()
	d, err := e.ledger.Deposit(context.Background(),
		domain.Channel{Provider: monetix.ProviderName, Method: "kassa24", Project: p1ID}, paymentID)
	if err != nil {
		e.t.Fatalf("Deposit %s: %v", paymentID, err)
	}
	return d
}

// checkDeposit opens a deposit through the endpoint and returns its payment id.
func (e *env) checkDeposit(customerID string, amount int64) string {
	e.t.Helper()
	a := e.request(p1Secret, monetix.CheckDepositRequestBody(p1ID, customerID, amount, "KZT", "kassa24"))
	if a.Code != monetix.CodeOK || a.PaymentID == "" {
		e.t.Fatalf("check_deposit: code %d %q", a.Code, a.Message())
	}
	return a.PaymentID
}

// cb builds a kassa24 callback for project 1 with the page's shape.
func cb(paymentID, status string, amount int64, opID int64) map[string]any {
	return monetix.BuildCallback(monetix.CallbackParams{
		ProjectID: p1ID, PaymentID: paymentID, PaymentStatus: status, Method: "kassa24",
		AmountMinor: amount, Currency: "KZT", CustomerID: "6552", OperationID: opID, Date: fixedNow,
	})
}

// removed is a value for set that deletes the member instead.
var removed = &struct{ removed bool }{true}

// set changes a nested member of a built body: set(b, "payment.sum.amount",
// v); v == removed deletes it, v == nil makes it JSON null. It returns body.
func set(body map[string]any, path string, v any) map[string]any {
	keys := strings.Split(path, ".")
	m := body
	for _, k := range keys[:len(keys)-1] {
		m = m[k].(map[string]any)
	}
	last := keys[len(keys)-1]
	if v == removed {
		delete(m, last)
	} else {
		m[last] = v
	}
	return body
}

// counterValue reads one counter from the registry (0 when absent).
func counterValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func itoa(i int) string { return strconv.Itoa(i) }

// errString is an error with a fixed text that wraps nothing.
type errString string

func (e errString) Error() string { return string(e) }

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func isErrIs(err, target error) bool { return errors.Is(err, target) }
