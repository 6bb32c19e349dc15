package rest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// Error codes: the stable, machine-readable part of every error response.
// Clients switch on these, never on the message; openapi.json lists them.
const (
	CodeInvalidJSON          = "invalid_json"
	CodeInvalidRequest       = "invalid_request"
	CodeInvalidAmount        = "invalid_amount"
	CodeUnauthorized         = "unauthorized"
	CodeForbidden            = "forbidden"
	CodeNotFound             = "not_found"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeConflict             = "conflict"
	CodeIdempotencyKeyReused = "idempotency_key_reused"
	CodeAccountClosed        = "account_closed"
	CodeAccountBlocked       = "account_blocked"
	CodeAccountHasBalance    = "account_has_balance"
	CodePayloadTooLarge      = "payload_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeInsufficientFunds    = "insufficient_funds"
	CodeCurrencyMismatch     = "currency_mismatch"
	CodeInternal             = "internal"
	CodeUnavailable          = "unavailable"
	// Corrections.
	CodeAmountExceedsEvidence = "amount_exceeds_evidence"
	CodeAlreadyCredited       = "already_credited"
	CodeBalanceCeiling        = "balance_ceiling"
	CodeSelfApproval          = "self_approval"
	// Reconciliation and closing.
	CodeRunInProgress        = "run_in_progress"
	CodeDayClosed            = "day_closed"
	CodeDayNotEnded          = "day_not_ended"
	CodeOpenBreaks           = "open_breaks"
	CodeDataAPINotConfigured = "data_api_not_configured"
	CodeSourceUnavailable    = "source_unavailable"
)

// ErrorCodes lists every code the API answers, for the OpenAPI test and
// for clients generating enums.
func ErrorCodes() []string {
	return []string{
		CodeInvalidJSON, CodeInvalidRequest, CodeInvalidAmount, CodeUnauthorized, CodeForbidden,
		CodeNotFound, CodeMethodNotAllowed, CodeConflict, CodeIdempotencyKeyReused, CodeAccountClosed,
		CodeAccountBlocked, CodeAccountHasBalance, CodePayloadTooLarge, CodeUnsupportedMediaType,
		CodeInsufficientFunds, CodeCurrencyMismatch, CodeInternal, CodeUnavailable,
		CodeAmountExceedsEvidence, CodeAlreadyCredited, CodeBalanceCeiling, CodeSelfApproval,
		CodeRunInProgress, CodeDayClosed, CodeDayNotEnded, CodeOpenBreaks, CodeDataAPINotConfigured,
		CodeSourceUnavailable,
	}
}

// httpError is an error this package raises itself (a bad header, query or
// body) with its status and code already decided.
type httpError struct {
	status int
	code   string
	msg    string
	// bearerError is the RFC 6750 error attribute for WWW-Authenticate.
	bearerError string
	// retryAfter is the Retry-After of a 503 ("1" when empty).
	retryAfter string
}

func (e *httpError) Error() string { return e.code + ": " + e.msg }

func newHTTPError(status int, code, format string, args ...any) *httpError {
	return &httpError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

func errInvalidRequest(format string, args ...any) error {
	return newHTTPError(http.StatusBadRequest, CodeInvalidRequest, format, args...)
}

func errInvalidJSON(format string, args ...any) error {
	return newHTTPError(http.StatusBadRequest, CodeInvalidJSON, format, args...)
}

func errInvalidAmount(format string, args ...any) error {
	return newHTTPError(http.StatusBadRequest, CodeInvalidAmount, format, args...)
}

func errUnauthorized(msg string, invalidToken bool) error {
	e := newHTTPError(http.StatusUnauthorized, CodeUnauthorized, "%s", msg)
	if invalidToken {
		e.bearerError = "invalid_token"
	}
	return e
}

func errUnprocessable(code, format string, args ...any) error {
	return newHTTPError(http.StatusUnprocessableEntity, code, format, args...)
}

func errForbidden(name string, need Role) error {
	return newHTTPError(http.StatusForbidden, CodeForbidden, "token %q may not call this route: it needs the %s role", name, need)
}

func errMethodNotAllowed(method string) error {
	return newHTTPError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "method %s is not allowed on this route", method)
}

func errRouteNotFound(path string) error {
	return newHTTPError(http.StatusNotFound, CodeNotFound, "no route %s", truncate(path, 200))
}

// notFound reports a missing resource by what it is and its id, when err is
// ports.ErrNotFound; other errors pass through.
func notFound(err error, what, id string) error {
	if errors.Is(err, ports.ErrNotFound) {
		return newHTTPError(http.StatusNotFound, CodeNotFound, "%s %q not found", what, truncate(id, 200))
	}
	return err
}

// problem is one error as answered: status, code and a message safe to show.
type problem struct {
	status int
	code   string
	msg    string
	// logLevel says how loudly to log it: only unexpected errors are worth
	// an operator's attention.
	logLevel slogLevel
}

type slogLevel int

const (
	logNone slogLevel = iota
	logWarn
	logError
)

// errorFor maps any error to its answer. It is the one place where errors
// become statuses and codes. Domain errors carry messages written for
// users; store errors and unknown errors get fixed messages, so nothing
// internal (SQL, hosts, stack) leaks.
func errorFor(err error) problem {
	var (
		he      *httpError
		tooBig  *http.MaxBytesError
		amount  *domain.AmountError
		limit   *domain.LimitError
		exists  *ports.AccountExistsError
		message = err.Error()
	)
	switch {
	case errors.As(err, &he):
		return problem{status: he.status, code: he.code, msg: he.msg}
	case errors.As(err, &tooBig):
		return problem{status: http.StatusRequestEntityTooLarge, code: CodePayloadTooLarge,
			msg: fmt.Sprintf("request body larger than %d bytes", tooBig.Limit)}
	case errors.Is(err, domain.ErrExceedsEvidence):
		return problem{status: http.StatusUnprocessableEntity, code: CodeAmountExceedsEvidence, msg: message}
	case errors.Is(err, domain.ErrBalanceCeiling):
		return problem{status: http.StatusUnprocessableEntity, code: CodeBalanceCeiling, msg: message}
	case errors.Is(err, domain.ErrAlreadyCredited):
		return problem{status: http.StatusConflict, code: CodeAlreadyCredited, msg: message}
	case errors.Is(err, ports.ErrRunInProgress):
		return problem{status: http.StatusConflict, code: CodeRunInProgress, msg: message}
	case errors.Is(err, ports.ErrDayClosed):
		// The store refuses any ledger row dated inside a closed day; a
		// write that meets the refusal is a conflict, never a 500. The
		// store's error names SQL, so the message is fixed here (the close
		// route says which day itself).
		return problem{status: http.StatusConflict, code: CodeDayClosed,
			msg: "the business day is closed: nothing is written with a time inside a closed day; a correction lands in the next open day"}
	case errors.Is(err, ports.ErrDayNotEnded):
		return problem{status: http.StatusConflict, code: CodeDayNotEnded, msg: message}
	case errors.Is(err, ports.ErrOpenBreaks):
		return problem{status: http.StatusConflict, code: CodeOpenBreaks, msg: message}
	case errors.Is(err, domain.ErrSelfApproval):
		return problem{status: http.StatusForbidden, code: CodeSelfApproval, msg: message}
	case errors.As(err, &amount):
		return problem{status: http.StatusBadRequest, code: CodeInvalidAmount, msg: amount.Error()}
	case errors.As(err, &limit):
		return problem{status: http.StatusBadRequest, code: CodeInvalidAmount, msg: limit.Error()}
	case errors.Is(err, domain.ErrInvalidAmount), errors.Is(err, domain.ErrAmountOutOfLimits):
		return problem{status: http.StatusBadRequest, code: CodeInvalidAmount, msg: message}
	case errors.Is(err, domain.ErrInvalidInput), errors.Is(err, domain.ErrUnknownCurrency):
		return problem{status: http.StatusBadRequest, code: CodeInvalidRequest, msg: message}
	case errors.Is(err, ports.ErrNotFound):
		return problem{status: http.StatusNotFound, code: CodeNotFound, msg: "not found"}
	case errors.Is(err, ports.ErrIdempotencyMismatch):
		return problem{status: http.StatusConflict, code: CodeIdempotencyKeyReused,
			msg: "this Idempotency-Key was already used with a different request"}
	case errors.Is(err, domain.ErrInsufficientFunds):
		return problem{status: http.StatusUnprocessableEntity, code: CodeInsufficientFunds, msg: message}
	case errors.Is(err, domain.ErrCurrencyMismatch):
		return problem{status: http.StatusUnprocessableEntity, code: CodeCurrencyMismatch, msg: message}
	case errors.Is(err, domain.ErrAccountClosed):
		return problem{status: http.StatusConflict, code: CodeAccountClosed, msg: message}
	case errors.Is(err, domain.ErrAccountBlocked):
		return problem{status: http.StatusConflict, code: CodeAccountBlocked, msg: message}
	case errors.Is(err, domain.ErrAccountHasBalance):
		return problem{status: http.StatusConflict, code: CodeAccountHasBalance, msg: message}
	case errors.Is(err, domain.ErrInvalidTransition):
		return problem{status: http.StatusConflict, code: CodeConflict, msg: message}
	case errors.As(err, &exists):
		return problem{status: http.StatusConflict, code: CodeConflict, msg: accountExistsMessage(exists)}
	case errors.Is(err, ports.ErrAmbiguous):
		return problem{status: http.StatusConflict, code: CodeConflict, msg: "more than one resource matches; ask by a more specific id"}
	case errors.Is(err, ports.ErrConflict):
		return problem{status: http.StatusConflict, code: CodeConflict, msg: "a concurrent change won; retry the request", logLevel: logWarn}
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer.
		return problem{status: http.StatusServiceUnavailable, code: CodeUnavailable, msg: "request canceled"}
	case errors.Is(err, ports.ErrUnavailable), errors.Is(err, ports.ErrNotMigrated), errors.Is(err, context.DeadlineExceeded):
		return problem{status: http.StatusServiceUnavailable, code: CodeUnavailable,
			msg: "the ledger is unavailable; retry later", logLevel: logWarn}
	}
	return problem{status: http.StatusInternalServerError, code: CodeInternal, msg: "internal error", logLevel: logError}
}

// accountExistsMessage says, in the API's field names, why POST
// /v1/accounts did not answer the existing account.
func accountExistsMessage(e *ports.AccountExistsError) string {
	a := e.Existing
	head := fmt.Sprintf("customer %q already has account %s in %s", truncate(a.CustomerID(), 200), a.ID(), a.Currency())
	if a.Status() == domain.AccountClosed {
		return head + " and it is closed; a closed account is not reopened"
	}
	has := "no additional_customer_id"
	if a.AdditionalCustomerID() != "" {
		has = fmt.Sprintf("additional_customer_id %q", truncate(a.AdditionalCustomerID(), 200))
	}
	return fmt.Sprintf("%s with %s; this request asks for %q", head, has, truncate(e.AdditionalCustomerID, 200))
}

// errorBody is the one JSON shape of every error.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeError answers err in the one JSON shape, with WWW-Authenticate on
// 401 and Retry-After on 503, and logs what deserves it.
func (a *api) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := errorFor(err)
	switch p.logLevel {
	case logError:
		a.log.ErrorContext(r.Context(), "rest: internal error", "method", r.Method, "path", r.URL.Path,
			"actor", ActorFrom(r.Context()), "err", err)
	case logWarn:
		a.log.WarnContext(r.Context(), "rest: request failed", "method", r.Method, "path", r.URL.Path,
			"actor", ActorFrom(r.Context()), "status", p.status, "err", err)
	}
	h := w.Header()
	switch p.status {
	case http.StatusUnauthorized:
		challenge := `Bearer realm="tiyn"`
		var he *httpError
		if errors.As(err, &he) && he.bearerError != "" {
			challenge += `, error="` + he.bearerError + `"`
		}
		h.Set("WWW-Authenticate", challenge)
	case http.StatusServiceUnavailable:
		retry := "1"
		var he *httpError
		if errors.As(err, &he) && he.retryAfter != "" {
			retry = he.retryAfter
		}
		h.Set("Retry-After", retry)
	}
	body, _ := json.Marshal(errorBody{Error: errorDetail{Code: p.code, Message: p.msg}})
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Disposition")
	w.WriteHeader(p.status)
	_, _ = w.Write(append(body, '\n'))
}

// writeJSON answers v as JSON with status. It marshals first, so a value
// that cannot be encoded becomes a clean 500 instead of half a body.
func (a *api) writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
