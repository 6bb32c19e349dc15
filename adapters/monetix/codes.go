package monetix

import (
	"context"
	"errors"
	"net/http"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// Answer codes of verify / check_deposit (the method page's table). The
// HTTP status of these answers is always 200; the result is in "code".
const (
	// CodeOK: the account exists (verify) or the deposit is open (check_deposit).
	CodeOK = 0
	// CodeInvalidSignature: the request could not be authenticated — a
	// missing or wrong signature, an unknown or unreadable project_id, or a
	// body that is not JSON (no signature can be checked on it).
	CodeInvalidSignature = 400
	// CodeAccountNotFound: no account for the customer in the currency.
	CodeAccountNotFound = 404
	// CodeGeneralError: anything else; errors.message says why.
	CodeGeneralError = 500
)

// Messages of the answers that are not taken from an error's text.
const (
	msgAccountNotFound = "account does not exist"
	msgAccountBlocked  = "account is blocked"
	msgAccountClosed   = "account is closed"
	msgUnavailable     = "service temporarily unavailable, try again later"
	msgInternal        = "internal error"
)

// requestFailure maps an error from the ledger (or from decoding an
// authenticated request) to an answer code and errors.message. serverSide
// says the failure is Tiyn's, not the request's, and deserves an error log.
// The message never carries internal ids: it may be shown on a terminal.
func requestFailure(err error) (code int, message string, serverSide bool) {
	var limit *domain.LimitError
	switch {
	case errors.Is(err, ports.ErrNotFound):
		return CodeAccountNotFound, msgAccountNotFound, false
	case errors.Is(err, domain.ErrAccountBlocked):
		return CodeGeneralError, msgAccountBlocked, false
	case errors.Is(err, domain.ErrAccountClosed):
		return CodeGeneralError, msgAccountClosed, false
	case errors.As(err, &limit):
		return CodeGeneralError, limit.Error(), false
	case errors.Is(err, domain.ErrAmountOutOfLimits):
		return CodeGeneralError, "amount is outside the limits", false
	case errors.Is(err, domain.ErrCurrencyMismatch):
		return CodeGeneralError, "currency does not match the account", false
	case errors.Is(err, domain.ErrUnknownCurrency):
		return CodeGeneralError, "unsupported currency", false
	case errors.Is(err, ErrInvalidField), errors.Is(err, domain.ErrInvalidAmount), errors.Is(err, domain.ErrInvalidInput):
		// Field and domain validation texts name the field and the rule
		// (e.g. "invalid input: customer_id longer than 128 bytes").
		return CodeGeneralError, err.Error(), false
	case isTransient(err):
		return CodeGeneralError, msgUnavailable, true
	}
	return CodeGeneralError, msgInternal, true
}

// callbackFailure maps an error from ports.Ledger.SettleDeposit to the HTTP
// status of the callback answer. Only a permanent refusal of the input gets a
// 4xx; everything else is 5xx so the platform retries (for up to ~11 days),
// because nothing was committed and the callback must not be lost.
func callbackFailure(err error) (status int, permanent bool) {
	switch {
	case isTransient(err):
		return http.StatusServiceUnavailable, false
	case errors.Is(err, domain.ErrInvalidInput):
		return http.StatusBadRequest, true
	}
	return http.StatusInternalServerError, false
}

// isTransient reports errors that a later retry may not meet: the store is
// down or not migrated yet, or the request's context ended.
func isTransient(err error) bool {
	return errors.Is(err, ports.ErrUnavailable) || errors.Is(err, ports.ErrNotMigrated) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
