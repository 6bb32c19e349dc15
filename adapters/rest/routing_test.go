package rest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

func TestUnknownRoutesAndMethods(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/v1/nope", http.StatusNotFound, "not_found", ""},
		{"GET", "/v1/accounts/a/b/c", http.StatusNotFound, "not_found", ""},
		{"GET", "/v1/", http.StatusNotFound, "not_found", ""},
		{"POST", "/v1/deposits/x/refund", http.StatusNotFound, "not_found", ""},
		{"DELETE", "/v1/accounts", http.StatusMethodNotAllowed, "method_not_allowed", "GET, HEAD, POST"},
		{"PUT", "/v1/accounts/acc_1", http.StatusMethodNotAllowed, "method_not_allowed", "GET, HEAD"},
		{"GET", "/v1/accounts/acc_1/debits", http.StatusMethodNotAllowed, "method_not_allowed", "POST"},
		{"POST", "/v1/ledger/check", http.StatusMethodNotAllowed, "method_not_allowed", "GET, HEAD"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			t.Parallel()
			for _, secret := range []string{readSecret, ""} {
				rec := e.do(tc.method, tc.path, secret, "")
				wantError(t, rec, tc.status, tc.code)
				if got := rec.Header().Get("Allow"); got != tc.allow {
					t.Fatalf("Allow = %q, want %q", got, tc.allow)
				}
			}
		})
	}
	// Outside /v1, New serves nothing.
	if rec := e.do("GET", "/healthz", readSecret, ""); rec.Code != http.StatusNotFound {
		t.Fatalf("/healthz = %d", rec.Code)
	}
}

func TestHeadOnGetRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	wantStatus(t, e.do("HEAD", "/v1/accounts", readSecret, ""), http.StatusOK)
	rec := e.do("HEAD", "/v1/deposits.csv", readSecret, "")
	wantStatus(t, rec, http.StatusOK)
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Fatalf("HEAD csv Content-Type = %q", ct)
	}
}

// TestRegisterEmbeds mounts the routes next to other handlers on one mux,
// as a program embedding Tiyn does.
func TestRegisterEmbeds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/monetix/callbacks", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	rest.Register(mux, e.svc, rest.Options{Tokens: testTokens(t)})

	tests := []struct {
		method, path, secret string
		status               int
	}{
		{"POST", "/v1/monetix/callbacks", "", http.StatusTeapot},
		{"GET", "/healthz", "", http.StatusOK},
		{"GET", "/v1/accounts", readSecret, http.StatusOK},
		{"GET", "/v1/accounts", "", http.StatusUnauthorized},
		{"GET", "/v1/whatever", readSecret, http.StatusNotFound},
	}
	for _, tc := range tests {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.secret != "" {
			req.Header.Set("Authorization", "Bearer "+tc.secret)
		}
		if rec := serve(mux, req); rec.Code != tc.status {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, rec.Code, tc.status)
		}
	}

	defer func() {
		if recover() == nil {
			t.Fatal("Register with a nil ledger must panic")
		}
	}()
	rest.Register(http.NewServeMux(), nil, rest.Options{})
}

// stubLedger fails every query with err; the methods not overridden panic
// (nil embedded interface), which no test here reaches.
type stubLedger struct {
	ports.Ledger
	err error
}

func (s stubLedger) Account(context.Context, string) (domain.Account, error) {
	return domain.Account{}, s.err
}
func (s stubLedger) ListAccounts(context.Context, ports.AccountQuery) ([]domain.Account, error) {
	return nil, s.err
}
func (s stubLedger) CheckLedger(context.Context) (ports.LedgerCheck, error) {
	return ports.LedgerCheck{}, s.err
}
func (s stubLedger) DepositByPaymentID(context.Context, string) (domain.Deposit, error) {
	return domain.Deposit{}, s.err
}

func TestStoreFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		err    error
		status int
		code   string
		logged string
	}{
		{"unavailable", fmt.Errorf("begin: %w", ports.ErrUnavailable), http.StatusServiceUnavailable, "unavailable", "level=WARN"},
		{"not migrated", ports.ErrNotMigrated, http.StatusServiceUnavailable, "unavailable", "level=WARN"},
		{"timeout", fmt.Errorf("query: %w", context.DeadlineExceeded), http.StatusServiceUnavailable, "unavailable", "level=WARN"},
		{"bug", errors.New("pq: password=hunter2 at 10.1.2.3"), http.StatusInternalServerError, "internal", "level=ERROR"},
		{"ambiguous", fmt.Errorf("deposit: %w", ports.ErrAmbiguous), http.StatusConflict, "conflict", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnvWith(t, stubLedger{err: tc.err}, rest.Options{})
			for _, path := range []string{"/v1/accounts/acc_1", "/v1/accounts", "/v1/ledger/check", "/v1/deposits/pay_1"} {
				rec := e.do("GET", path, readSecret, "")
				msg := wantError(t, rec, tc.status, tc.code)
				if strings.Contains(msg, "hunter2") || strings.Contains(msg, "10.1.2.3") {
					t.Fatalf("%s: message leaks the internal error: %q", path, msg)
				}
				if tc.status == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") == "" {
					t.Fatalf("%s: 503 without Retry-After", path)
				}
			}
			logs := e.logs.String()
			if tc.logged == "" {
				if logs != "" {
					t.Fatalf("expected no log, got %s", logs)
				}
				return
			}
			if !strings.Contains(logs, tc.logged) || !strings.Contains(logs, "path=/v1/ledger/check") || !strings.Contains(logs, "actor="+readName) {
				t.Fatalf("log lacks level, path or actor: %s", logs)
			}
			if tc.status == http.StatusInternalServerError && !strings.Contains(logs, "hunter2") {
				t.Fatalf("the internal error is not logged: %s", logs)
			}
		})
	}
}

// TestNowOption pins "as of now" to the configured clock.
func TestNowOption(t *testing.T) {
	t.Parallel()
	pinned := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	base := newEnv(t)
	acc := base.openAccount("c1")
	e := newEnvWith(t, base.svc, rest.Options{Now: func() time.Time { return pinned }})
	rec := e.do("GET", "/v1/accounts/"+acc.ID+"/balance", readSecret, "")
	wantStatus(t, rec, http.StatusOK)
	if !strings.Contains(rec.Body.String(), `"as_of":"2026-03-04T05:06:07.000000Z"`) {
		t.Fatalf("balance = %s", rec.Body.String())
	}
}

func TestMaxBodyBytesOption(t *testing.T) {
	t.Parallel()
	base := newEnv(t)
	e := newEnvWith(t, base.svc, rest.Options{MaxBodyBytes: 32})
	wantStatus(t, e.do("POST", "/v1/accounts", writeSecret, `{"customer_id":"abc"}`), http.StatusCreated)
	wantError(t, e.do("POST", "/v1/accounts", writeSecret, `{"customer_id":"abcdefghijklmnopqrstuvwxyz"}`), http.StatusRequestEntityTooLarge, "payload_too_large")
}

// TestUncleanPathsAreJSON404: ServeMux alone answers these with an HTML
// 307 to the cleaned path; the API answers its documented JSON 404.
func TestUncleanPathsAreJSON404(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acc := e.openAccount("unclean")
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v1/accounts/../accounts"},
		{"GET", "/v1//accounts"},
		{"GET", "/v1/./accounts"},
		{"GET", "//v1/accounts"},
		{"GET", "/v1/accounts/" + acc.ID + "/../" + acc.ID},
		{"POST", "/v1/accounts/" + acc.ID + "//debits"},
		{"GET", "/v1/../v1/openapi.json"},
		{"POST", "/v1/monetix/../monetix/requests"},
		{"POST", "/v1//monetix/callbacks"},
		{"GET", "/v1"},
	} {
		for _, secret := range []string{readSecret, writeSecret, ""} {
			req := httptest.NewRequest(tc.method, "/", nil)
			req.URL.Path, req.RequestURI = tc.path, tc.path
			if secret != "" {
				req.Header.Set("Authorization", "Bearer "+secret)
			}
			rec := serve(e.h, req)
			if loc := rec.Header().Get("Location"); loc != "" {
				t.Fatalf("%s %s: redirected to %s", tc.method, tc.path, loc)
			}
			if msg := wantError(t, rec, http.StatusNotFound, "not_found"); !strings.Contains(msg, "no route") {
				t.Fatalf("%s %s: message %q", tc.method, tc.path, msg)
			}
		}
	}
	// The clean forms still route.
	wantStatus(t, e.do("GET", "/v1/accounts/"+acc.ID, readSecret, ""), http.StatusOK)
	wantStatus(t, e.do("GET", "/v1/accounts", readSecret, ""), http.StatusOK)
}
