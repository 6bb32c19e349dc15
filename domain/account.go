package domain

import (
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxCustomerIDLen bounds customer ids (and additional customer ids). The
// platform passes whatever the terminal user typed; 128 bytes covers e-mail
// addresses and phone numbers with room to spare, and keeps index keys small.
const MaxCustomerIDLen = 128

// MaxBalanceMinor is the ceiling of every customer balance, in minor units:
// 1,000,000,000,000.00 for a currency with two decimals (one trillion
// tenge). It lies far inside int64 (about 9.2·10^18), so a balance plus
// any single credit Tiyn accepts (a payment is at most 500,000.00 KZT)
// cannot overflow, and 92,000 accounts at the ceiling still add up inside
// int64 (the ledger check adds in a wider type anyway). A credit that would
// pass it is refused (CanCredit); on a callback it becomes an exception.
const MaxBalanceMinor int64 = 100_000_000_000_000

// AccountStatus is the lifecycle state of a customer account. It is a struct
// with an unexported field so that outsiders cannot forge a status and the
// zero value is recognisably "unset".
type AccountStatus struct{ s string }

// Account statuses.
var (
	AccountActive  = AccountStatus{"active"}
	AccountBlocked = AccountStatus{"blocked"}
	AccountClosed  = AccountStatus{"closed"}
)

// String is the status as stored and shown ("active", "blocked", "closed").
func (s AccountStatus) String() string { return s.s }

// IsZero reports an unset status.
func (s AccountStatus) IsZero() bool { return s.s == "" }

// ParseAccountStatus reads a stored or wire status.
func ParseAccountStatus(s string) (AccountStatus, error) {
	switch s {
	case "active":
		return AccountActive, nil
	case "blocked":
		return AccountBlocked, nil
	case "closed":
		return AccountClosed, nil
	}
	return AccountStatus{}, fmt.Errorf("%w: account status %q", ErrInvalidInput, truncate(s, 32))
}

// Account is a customer's balance in one currency. There is one per
// (customer id, currency). Its balance never goes below zero.
type Account struct {
	id                   string
	customerID           string
	additionalCustomerID string
	currency             Currency
	status               AccountStatus
	balance              Amount
	version              int64
	createdAt            time.Time
	updatedAt            time.Time
}

// NewAccount validates and builds a new, active, empty account.
func NewAccount(id, customerID, additionalCustomerID string, currency Currency, now time.Time) (Account, error) {
	if id == "" {
		return Account{}, fmt.Errorf("%w: account id is empty", ErrInvalidInput)
	}
	if err := ValidateCustomerID(customerID); err != nil {
		return Account{}, err
	}
	if err := validateOptionalText("additional_customer_id", additionalCustomerID, MaxCustomerIDLen); err != nil {
		return Account{}, err
	}
	if currency.IsZero() {
		return Account{}, fmt.Errorf("%w: account without currency", ErrUnknownCurrency)
	}
	return Account{
		id:                   id,
		customerID:           customerID,
		additionalCustomerID: additionalCustomerID,
		currency:             currency,
		status:               AccountActive,
		balance:              NewAmount(0, currency),
		version:              1,
		createdAt:            now,
		updatedAt:            now,
	}, nil
}

// RehydrateAccount rebuilds an account from storage. It is not a
// constructor: it only checks the invariants a stored row must already hold
// (a pair assertion with NewAccount), and returns an error when a row is
// corrupt rather than letting a broken account into the core.
func RehydrateAccount(id, customerID, additionalCustomerID string, currency Currency, status AccountStatus, balanceMinor, version int64, createdAt, updatedAt time.Time) (Account, error) {
	if id == "" || customerID == "" || currency.IsZero() || status.IsZero() {
		return Account{}, fmt.Errorf("%w: stored account %q is incomplete", ErrInvalidInput, id)
	}
	if balanceMinor < 0 {
		return Account{}, fmt.Errorf("%w: stored account %q has negative balance %d", ErrInvalidInput, id, balanceMinor)
	}
	return Account{
		id:                   id,
		customerID:           customerID,
		additionalCustomerID: additionalCustomerID,
		currency:             currency,
		status:               status,
		balance:              NewAmount(balanceMinor, currency),
		version:              version,
		createdAt:            createdAt,
		updatedAt:            updatedAt,
	}, nil
}

// ID is the account's identifier (e.g. "acc_01j…").
func (a Account) ID() string { return a.id }

// CustomerID is the merchant's identifier of the customer.
func (a Account) CustomerID() string { return a.customerID }

// AdditionalCustomerID is an optional second identifier the verify answer
// carries back to the platform.
func (a Account) AdditionalCustomerID() string { return a.additionalCustomerID }

// Currency is the account's currency.
func (a Account) Currency() Currency { return a.currency }

// Status is the lifecycle state.
func (a Account) Status() AccountStatus { return a.status }

// Balance is the current balance.
func (a Account) Balance() Amount { return a.balance }

// Version increases with every change of the row.
func (a Account) Version() int64 { return a.version }

// CreatedAt is when the account was opened.
func (a Account) CreatedAt() time.Time { return a.createdAt }

// UpdatedAt is when the account last changed.
func (a Account) UpdatedAt() time.Time { return a.updatedAt }

// CanReceiveDeposit says whether a new deposit may be opened for the
// account: only active accounts take new payments.
func (a Account) CanReceiveDeposit() error {
	switch a.status {
	case AccountActive:
		return nil
	case AccountBlocked:
		return fmt.Errorf("%w: %s", ErrAccountBlocked, a.id)
	default:
		return fmt.Errorf("%w: %s", ErrAccountClosed, a.id)
	}
}

// CanCredit says whether amount may be credited to the account: a
// positive amount in its currency that keeps the balance within
// MaxBalanceMinor. It does not look at the status: a blocked account still
// receives the payments it was promised (a closed one is the caller's
// decision).
func (a Account) CanCredit(amount Amount) error {
	if amount.currency != a.currency {
		return fmt.Errorf("%w: account %s is %s, credit is %s", ErrCurrencyMismatch, a.id, a.currency, currencyText(amount.currency))
	}
	if !amount.IsPositive() {
		return &AmountError{Input: amount.String(), Reason: "must be greater than zero", Err: ErrInvalidAmount}
	}
	if amount.minor > MaxBalanceMinor || a.balance.minor > MaxBalanceMinor-amount.minor {
		return fmt.Errorf("%w: account %s holds %s %s; crediting %s %s would pass the ceiling of %s %s",
			ErrBalanceCeiling, a.id, a.balance, a.currency, amount, a.currency, NewAmount(MaxBalanceMinor, a.currency), a.currency)
	}
	return nil
}

// CanDebit says whether amount may be spent from the account now.
func (a Account) CanDebit(amount Amount) error {
	if err := a.CanReceiveDeposit(); err != nil {
		return err
	}
	if amount.currency != a.currency {
		return fmt.Errorf("%w: account %s is %s, debit is %s", ErrCurrencyMismatch, a.id, a.currency, amount.currency)
	}
	if !amount.IsPositive() {
		return &AmountError{Input: amount.String(), Reason: "must be greater than zero", Err: ErrInvalidAmount}
	}
	if amount.minor > a.balance.minor {
		return fmt.Errorf("%w: balance %s, debit %s", ErrInsufficientFunds, a.balance, amount)
	}
	return nil
}

// ChangeStatus applies an operator's block / unblock / close. Closing needs a
// zero balance (money must not be stranded) and is final.
func (a Account) ChangeStatus(to AccountStatus, now time.Time) (Account, error) {
	if a.status == AccountClosed {
		return Account{}, fmt.Errorf("%w: account %s is closed", ErrAccountClosed, a.id)
	}
	if to == AccountClosed && !a.balance.IsZero() {
		return Account{}, fmt.Errorf("%w: %s holds %s %s", ErrAccountHasBalance, a.id, a.balance, a.currency)
	}
	if to.IsZero() {
		return Account{}, fmt.Errorf("%w: empty status", ErrInvalidTransition)
	}
	a.status = to
	a.version++
	a.updatedAt = now
	return a, nil
}

// ValidateCustomerID checks a customer id: non-empty, at most
// MaxCustomerIDLen bytes, valid UTF-8, no control characters.
func ValidateCustomerID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: customer_id is empty", ErrInvalidInput)
	}
	return validateOptionalText("customer_id", id, MaxCustomerIDLen)
}

func validateOptionalText(field, s string, maxLen int) error {
	return validateText(field, s, maxLen, false)
}

// validateText checks length, UTF-8 and control characters; multiline
// allows newlines and tabs (free-text notes), never other controls.
func validateText(field, s string, maxLen int, multiline bool) error {
	if len(s) > maxLen {
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalidInput, field, maxLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidInput, field)
	}
	for _, r := range s {
		if multiline && (r == '\n' || r == '\t') {
			continue
		}
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %s contains a control character", ErrInvalidInput, field)
		}
	}
	return nil
}
