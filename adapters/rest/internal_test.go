package rest

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// TestAuthenticatorComparesEveryToken checks the constant-time path: the
// presented token is compared against every configured token, whether it
// matches the first, the last or none, so timing cannot tell which.
func TestAuthenticatorComparesEveryToken(t *testing.T) {
	t.Parallel()
	tokens := []Token{
		{Name: "a", Role: RoleRead, Secret: "aaaaaaaaaaaaaaaaaaaa"},
		{Name: "b", Role: RoleWrite, Secret: "bbbbbbbbbbbbbbbbbbbb"},
		{Name: "c", Role: RoleRead, Secret: "cccccccccccccccccccc"},
		{Name: "d", Role: RoleWrite, Secret: "dddddddddddddddddddd"},
	}
	tests := []struct {
		presented string
		want      string // token name, "" for no match
	}{
		{"aaaaaaaaaaaaaaaaaaaa", "a"},
		{"dddddddddddddddddddd", "d"},
		{"cccccccccccccccccccc", "c"},
		{"zzzzzzzzzzzzzzzzzzzz", ""},
		{"", ""},
		{"aaaaaaaaaaaaaaaaaaa", ""},
		{"aaaaaaaaaaaaaaaaaaaaa", ""},
	}
	for _, tc := range tests {
		t.Run(tc.presented, func(t *testing.T) {
			t.Parallel()
			a := newAuthenticator(tokens)
			calls, lengths := 0, map[int]bool{}
			a.compare = func(x, y []byte) int {
				calls++
				lengths[len(x)], lengths[len(y)] = true, true
				return subtle.ConstantTimeCompare(x, y)
			}
			got, ok := a.match(tc.presented)
			if calls != len(tokens) {
				t.Fatalf("compared %d times, want %d (every token)", calls, len(tokens))
			}
			if len(lengths) != 1 {
				t.Fatalf("compared inputs of different lengths %v: length leaks", lengths)
			}
			if ok != (tc.want != "") || got.Name != tc.want {
				t.Fatalf("match = %q, %v; want %q", got.Name, ok, tc.want)
			}
		})
	}
}

func TestRoleAllows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		have, need Role
		want       bool
	}{
		{RoleRead, RoleRead, true},
		{RoleRead, RoleWrite, false},
		{RoleWrite, RoleRead, true},
		{RoleWrite, RoleWrite, true},
		{RoleWrite, RoleOperator, false},
		{RoleRead, RoleOperator, false},
		{RoleOperator, RoleRead, true},
		{RoleOperator, RoleWrite, true},
		{RoleOperator, RoleOperator, true},
		{Role("admin"), RoleRead, false},
		{Role("OPERATOR"), RoleRead, false},
		{Role(""), RoleRead, false},
	}
	for _, tc := range tests {
		if got := tc.have.allows(tc.need); got != tc.want {
			t.Errorf("%q allows %q = %v, want %v", tc.have, tc.need, got, tc.want)
		}
	}
}

// TestErrorFor checks the one mapping from errors to answers, and that
// every documented code is reachable.
func TestErrorFor(t *testing.T) {
	t.Parallel()
	amountErr := &domain.AmountError{Input: "x", Reason: "not a decimal number", Err: domain.ErrInvalidAmount}
	limitErr := domain.AmountLimits{MinMinor: 100, MaxMinor: 200}.Check(domain.NewAmount(1, domain.KZT))
	wrap := func(err error) error { return fmt.Errorf("layer: %w", fmt.Errorf("inner: %w", err)) }
	day, err := domain.ParseBusinessDay("2026-12-02", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"invalid json", errInvalidJSON("x"), 400, CodeInvalidJSON},
		{"invalid request", errInvalidRequest("x"), 400, CodeInvalidRequest},
		{"domain invalid input", wrap(domain.ErrInvalidInput), 400, CodeInvalidRequest},
		{"unknown currency", wrap(domain.ErrUnknownCurrency), 400, CodeInvalidRequest},
		{"amount error", wrap(amountErr), 400, CodeInvalidAmount},
		{"limit error", wrap(limitErr), 400, CodeInvalidAmount},
		{"invalid amount sentinel", wrap(domain.ErrInvalidAmount), 400, CodeInvalidAmount},
		{"unauthorized", errUnauthorized("x", false), 401, CodeUnauthorized},
		{"forbidden", errForbidden("viewer", RoleWrite), 403, CodeForbidden},
		{"not found", wrap(ports.ErrNotFound), 404, CodeNotFound},
		{"route not found", errRouteNotFound("/v1/x"), 404, CodeNotFound},
		{"method not allowed", errMethodNotAllowed("PUT"), 405, CodeMethodNotAllowed},
		{"idempotency", wrap(ports.ErrIdempotencyMismatch), 409, CodeIdempotencyKeyReused},
		{"blocked", wrap(domain.ErrAccountBlocked), 409, CodeAccountBlocked},
		{"closed", wrap(domain.ErrAccountClosed), 409, CodeAccountClosed},
		{"has balance", wrap(domain.ErrAccountHasBalance), 409, CodeAccountHasBalance},
		{"transition", wrap(domain.ErrInvalidTransition), 409, CodeConflict},
		{"store conflict", wrap(ports.ErrConflict), 409, CodeConflict},
		{"ambiguous", wrap(ports.ErrAmbiguous), 409, CodeConflict},
		{"too large", wrap(&http.MaxBytesError{Limit: 10}), 413, CodePayloadTooLarge},
		{"media type", newHTTPError(415, CodeUnsupportedMediaType, "x"), 415, CodeUnsupportedMediaType},
		{"insufficient", wrap(domain.ErrInsufficientFunds), 422, CodeInsufficientFunds},
		{"currency mismatch", wrap(domain.ErrCurrencyMismatch), 422, CodeCurrencyMismatch},
		{"exceeds evidence", wrap(&domain.CreditBoundError{ExceptionID: "exc_1", Credit: domain.NewAmount(2, domain.KZT),
			Evidence: domain.NewAmount(1, domain.KZT), Outcome: domain.OutcomeSuccess}), 422, CodeAmountExceedsEvidence},
		{"balance ceiling", wrap(domain.ErrBalanceCeiling), 422, CodeBalanceCeiling},
		{"already credited", wrap(domain.ErrAlreadyCredited), 409, CodeAlreadyCredited},
		{"self approval", wrap(domain.ErrSelfApproval), 403, CodeSelfApproval},
		{"unavailable", wrap(ports.ErrUnavailable), 503, CodeUnavailable},
		{"not migrated", wrap(ports.ErrNotMigrated), 503, CodeUnavailable},
		{"deadline", wrap(context.DeadlineExceeded), 503, CodeUnavailable},
		{"canceled", wrap(context.Canceled), 503, CodeUnavailable},
		{"unknown", errors.New("disk on fire at 10.0.0.3"), 500, CodeInternal},
		{"unbalanced", wrap(domain.ErrUnbalancedTransfer), 500, CodeInternal},
		{"run in progress", wrap(ports.ErrRunInProgress), 409, CodeRunInProgress},
		{"day closed by the store", fmt.Errorf("%w: %w", ports.ErrDayClosed, errors.New("pq: trigger refused INSERT INTO postings")), 409, CodeDayClosed},
		{"day not ended", wrap(ports.ErrDayNotEnded), 409, CodeDayNotEnded},
		{"open breaks", wrap(ports.ErrOpenBreaks), 409, CodeOpenBreaks},
		{"data api not configured", errUnprocessable(CodeDataAPINotConfigured, "x"), 422, CodeDataAPINotConfigured},
		{"data api failed", reconcileError(wrap(errors.New("page at offset 0: timeout")),
			&watchedSource{OperationSource: kindSource("data_api"), err: errors.New("timeout")}, day), 502, CodeSourceUnavailable},
		{"report failed", reconcileError(wrap(errors.New("report header")),
			&watchedSource{OperationSource: kindSource("csv"), err: errors.New("report header: no payment_id")}, day), 400, CodeInvalidRequest},
		{"report too large", reconcileError(wrap(&http.MaxBytesError{Limit: 10}),
			&watchedSource{OperationSource: kindSource("csv"), err: &http.MaxBytesError{Limit: 10}}, day), 413, CodePayloadTooLarge},
		{"ledger failed during a run", reconcileError(wrap(ports.ErrUnavailable),
			&watchedSource{OperationSource: kindSource("csv")}, day), 503, CodeUnavailable},
	}
	reached := map[string]bool{}
	for _, tc := range tests {
		p := errorFor(tc.err)
		if p.status != tc.status || p.code != tc.code {
			t.Errorf("%s: errorFor = %d %s, want %d %s", tc.name, p.status, p.code, tc.status, tc.code)
		}
		if p.msg == "" {
			t.Errorf("%s: empty message", tc.name)
		}
		reached[p.code] = true
	}
	for _, code := range ErrorCodes() {
		if !reached[code] {
			t.Errorf("code %q is documented but no error maps to it", code)
		}
	}
	if p := errorFor(fmt.Errorf("%w: %w", ports.ErrDayClosed, errors.New("pq: trigger"))); strings.Contains(p.msg, "pq") {
		t.Errorf("day_closed message leaks the store's error: %q", p.msg)
	}
	if p := errorFor(errors.New("secret detail")); p.msg != "internal error" {
		t.Errorf("internal error message leaks: %q", p.msg)
	}
}

// TestFallbackProbe: the matcher tells a path served for another method
// (405) from a path served for none (404), even when a prefix is a route.
func TestFallbackProbe(t *testing.T) {
	t.Parallel()
	a := &api{matcher: http.NewServeMux()}
	a.matcher.Handle("GET /v1/things", http.NotFoundHandler())
	probe := func(method, path string) int {
		h, pattern := a.matcher.Handler(httptest.NewRequest(method, path, nil))
		if pattern != "" {
			return 0
		}
		p := &statusProbe{header: http.Header{}}
		h.ServeHTTP(p, httptest.NewRequest(method, path, nil))
		return p.status
	}
	if got := probe("POST", "/v1/things"); got != http.StatusMethodNotAllowed {
		t.Fatalf("POST /v1/things probe = %d", got)
	}
	if got := probe("GET", "/v1/things/x"); got != http.StatusNotFound {
		t.Fatalf("GET /v1/things/x probe = %d", got)
	}
}

// kindSource is a source of a kind that reads nothing.
type kindSource string

func (k kindSource) Kind() string { return string(k) }

func (k kindSource) Authenticated() bool { return k == "data_api" }

func (k kindSource) Operations(context.Context, domain.BusinessDay, func(ports.SourceRow) error, func(ports.RowError) error) (ports.SourceSummary, error) {
	return ports.SourceSummary{}, nil
}

func TestMuxPattern(t *testing.T) {
	t.Parallel()
	for path, want := range map[string][2]string{
		"/v1/days/{date}.csv":                {"/v1/days/{date}", ".csv"},
		"/v1/days/{date}":                    {"/v1/days/{date}", ""},
		"/v1/reconciliations/{id}/items.csv": {"/v1/reconciliations/{id}/items.csv", ""},
		"/v1/deposits.csv":                   {"/v1/deposits.csv", ""},
	} {
		p, s := muxPattern(path)
		if p != want[0] || s != want[1] {
			t.Errorf("muxPattern(%q) = %q, %q; want %q, %q", path, p, s, want[0], want[1])
		}
	}
}
