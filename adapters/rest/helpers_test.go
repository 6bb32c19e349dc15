package rest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
	"github.com/tiyn/tiyn/tests/testkit"
)

// Tokens used by every test. Secrets are long enough for ParseTokens.
//
// "ops" is an operator (it may do everything); "backoffice" is a write
// token (accounts and debits, no corrections or account status); a second
// operator, "ops2", approves four-eyes proposals.
const (
	writeSecret      = "w-0123456789abcdef0123456789abcdef"
	readSecret       = "r-0123456789abcdef0123456789abcdef"
	backofficeSecret = "b-0123456789abcdef0123456789abcdef"
	operator2Secret  = "o-0123456789abcdef0123456789abcdef"
	writeName        = "ops"
	readName         = "viewer"
)

var testChannel = domain.Channel{Provider: "monetix", Method: "kassa24", Project: "42"}

var testLimits = domain.AmountLimits{MinMinor: 100, MaxMinor: 50_000_000}

// env is one test's world: a real app service over a fresh SQLite store,
// and the REST handler in front of it.
type env struct {
	t    *testing.T
	svc  *app.Service
	h    http.Handler
	logs *testkit.SyncBuffer
}

func testTokens(t *testing.T) []rest.Token {
	t.Helper()
	tokens, err := rest.ParseTokens(writeName + ":operator:" + writeSecret + "," + readName + ":read:" + readSecret +
		",backoffice:write:" + backofficeSecret + ",ops2:operator:" + operator2Secret)
	if err != nil {
		t.Fatalf("ParseTokens: %v", err)
	}
	return tokens
}

func newStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	return newStoreWith(t, false)
}

// newStoreWith opens a fresh SQLite store; groupCommit makes concurrent
// updates share transactions (fast bulk set-up, and the other commit path).
func newStoreWith(t *testing.T, groupCommit bool) *sqlstore.Store {
	t.Helper()
	return testkit.OpenSQLite(t, sqlstore.Options{GroupCommit: groupCommit})
}

func newEnv(t *testing.T) *env {
	t.Helper()
	svc := app.NewService(newStore(t), system.Clock{}, &system.IDs{})
	return newEnvWith(t, svc, rest.Options{})
}

// newGroupCommitEnv is newEnv over a group-commit store.
func newGroupCommitEnv(t *testing.T) *env {
	t.Helper()
	svc := app.NewService(newStoreWith(t, true), system.Clock{}, &system.IDs{})
	return newEnvWith(t, svc, rest.Options{})
}

// newEnvWith puts the handler in front of any ledger; opts gets the test
// tokens and a captured logger unless it sets its own.
func newEnvWith(t *testing.T, ledger ports.Ledger, opts rest.Options) *env {
	t.Helper()
	logs := &testkit.SyncBuffer{}
	if opts.Tokens == nil {
		opts.Tokens = testTokens(t)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	svc, _ := ledger.(*app.Service)
	return &env{t: t, svc: svc, h: rest.New(ledger, opts), logs: logs}
}

// do sends one request to the handler. body "" sends no body; a non-empty
// body goes with Content-Type: application/json unless headers set one.
// headers are name, value pairs.
func (e *env) do(method, path, secret, body string, headers ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

// decode parses a JSON response body into T, failing on trailing data.
func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, rec.Body.String(), err)
	}
	return v
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// wantError checks status, the one error shape and its code; it returns
// the message.
func wantError(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) string {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, status, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type = %q", ct)
	}
	var raw map[string]map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatalf("error body %q: %v", rec.Body.String(), err)
	}
	if len(raw) != 1 || len(raw["error"]) != 2 {
		t.Fatalf("error body %q is not {\"error\":{\"code\",\"message\"}}", rec.Body.String())
	}
	got := decode[apiError](t, rec)
	if got.Error.Code != code {
		t.Fatalf("error code = %q, want %q (message %q)", got.Error.Code, code, got.Error.Message)
	}
	if got.Error.Message == "" {
		t.Fatalf("error %q has no message", code)
	}
	return got.Error.Message
}

func wantStatus(t *testing.T, rec *httptest.ResponseRecorder, status int) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, status, rec.Body.String())
	}
}

type accountJSON struct {
	ID                   string  `json:"id"`
	CustomerID           string  `json:"customer_id"`
	AdditionalCustomerID *string `json:"additional_customer_id"`
	Currency             string  `json:"currency"`
	Status               string  `json:"status"`
	BalanceMinor         int64   `json:"balance_minor"`
	Balance              string  `json:"balance"`
	Version              int64   `json:"version"`
	CreatedAt            string  `json:"created_at"`
	UpdatedAt            string  `json:"updated_at"`
}

type listJSON[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// openAccount opens an account through the API.
func (e *env) openAccount(customerID string) accountJSON {
	e.t.Helper()
	rec := e.do("POST", "/v1/accounts", writeSecret, `{"customer_id":"`+customerID+`"}`)
	if rec.Code != http.StatusCreated && rec.Code != http.StatusOK {
		e.t.Fatalf("open account: %d %s", rec.Code, rec.Body.String())
	}
	return decode[accountJSON](e.t, rec)
}

// credit puts money on a customer's account the way the platform does: a
// deposit opened by check_deposit and settled by a success callback. It
// returns the deposit's payment id.
func (e *env) credit(customerID string, minor int64) string {
	e.t.Helper()
	ctx := context.Background()
	dep, err := e.svc.OpenDeposit(ctx, ports.OpenDeposit{Channel: testChannel, CustomerID: customerID,
		Amount: domain.NewAmount(minor, domain.KZT), Limits: testLimits})
	if err != nil {
		e.t.Fatalf("open deposit: %v", err)
	}
	body := `{"payment":{"id":"` + dep.PaymentID + `","status":"success"},"operation":{"id":"op-` + dep.PaymentID + `"}}`
	res, err := e.svc.SettleDeposit(ctx, ports.SettleDeposit{Channel: testChannel, PaymentID: dep.PaymentID,
		Outcome: domain.Outcome{Method: "kassa24", Kind: domain.OutcomeSuccess, Status: "success", OperationID: "op-" + dep.PaymentID,
			Amount: dep.Amount}, RawBody: body, ReceivedAt: time.Now().UTC()})
	if err != nil || res.Effect != domain.EffectCredit {
		e.t.Fatalf("settle deposit: %v %v", res.Effect, err)
	}
	return dep.PaymentID
}

// raiseException sends a success callback for a payment id no deposit has.
func (e *env) raiseException(paymentID string, minor int64) string {
	e.t.Helper()
	res, err := e.svc.SettleDeposit(context.Background(), ports.SettleDeposit{Channel: testChannel, PaymentID: paymentID,
		Outcome: domain.Outcome{Method: "kassa24", Kind: domain.OutcomeSuccess, Status: "success", OperationID: "op-" + paymentID,
			Amount: domain.NewAmount(minor, domain.KZT)},
		RawBody: `{"payment":{"id":"` + paymentID + `"}}`, ReceivedAt: time.Now().UTC()})
	if err != nil || res.Exception == nil {
		e.t.Fatalf("raise exception: %v %v", res.Effect, err)
	}
	return res.Exception.ID
}

func itoa(n int) string { return strconv.Itoa(n) }

// newChunkedRequest builds a request whose body length is unknown
// (ContentLength -1), as a chunked upload has.
func newChunkedRequest(method, path, body string) *http.Request {
	req := httptest.NewRequest(method, path, io.MultiReader(strings.NewReader(body)))
	req.Header.Set("Content-Type", "application/json")
	return req
}

func serve(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

type httpRecorder = httptest.ResponseRecorder

// encodeTestCursor forges a cursor the way the package encodes them, to
// check that decoding refuses what the API never hands out.
func encodeTestCursor(raw string) string { return base64.RawURLEncoding.EncodeToString([]byte(raw)) }
