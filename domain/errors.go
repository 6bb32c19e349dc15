package domain

import "errors"

// Sentinel errors of the domain. Adapters map them to wire codes in one place
// each (REST: adapters/rest/errors.go; Monetix: adapters/monetix/codes.go).
var (
	// ErrInvalidAmount is wrapped by every amount parsing or validation error.
	ErrInvalidAmount = errors.New("invalid amount")
	// ErrUnknownCurrency: the currency code is not in the registry.
	ErrUnknownCurrency = errors.New("unknown currency")
	// ErrCurrencyMismatch: two amounts of different currencies were combined.
	ErrCurrencyMismatch = errors.New("currency mismatch")
	// ErrAmountOutOfLimits: an amount lies outside the per-payment limits.
	ErrAmountOutOfLimits = errors.New("amount outside limits")
	// ErrInvalidInput: a field fails validation (empty, too long, bad characters).
	ErrInvalidInput = errors.New("invalid input")
	// ErrAccountBlocked: the account is blocked and refuses the operation.
	ErrAccountBlocked = errors.New("account blocked")
	// ErrAccountClosed: the account is closed and refuses the operation.
	ErrAccountClosed = errors.New("account closed")
	// ErrAccountHasBalance: an account with money on it cannot be closed.
	ErrAccountHasBalance = errors.New("account has a non-zero balance")
	// ErrInsufficientFunds: a debit larger than the balance.
	ErrInsufficientFunds = errors.New("insufficient funds")
	// ErrInvalidTransition: a state change the state machine does not allow.
	ErrInvalidTransition = errors.New("invalid state transition")
	// ErrUnbalancedTransfer: the postings of a transfer do not sum to zero.
	ErrUnbalancedTransfer = errors.New("transfer postings do not sum to zero")
	// ErrBalanceCeiling: a credit would take a balance past MaxBalanceMinor.
	ErrBalanceCeiling = errors.New("balance ceiling")
)
