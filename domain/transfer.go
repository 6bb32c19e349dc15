package domain

import (
	"fmt"
	"strings"
	"time"
)

// MaxPostingsPerTransfer bounds a transfer. Every transfer Tiyn makes has
// two; the bound keeps a bug from writing an unbounded one.
const MaxPostingsPerTransfer = 16

// MaxDescriptionLen bounds free text on transfers and resolutions.
const MaxDescriptionLen = 500

// RevenueAccountID is the merchant's revenue account: debits (spends) move
// money there from customer accounts. Like clearing accounts, its balance is
// derived from its postings.
const RevenueAccountID = "revenue:merchant"

// IsSystemAccount reports whether id names a derived-balance system account
// (clearing or revenue) rather than a customer account row.
func IsSystemAccount(id string) bool {
	return strings.HasPrefix(id, "clearing:") || strings.HasPrefix(id, "revenue:")
}

// TransferKind says why money moved.
type TransferKind struct{ s string }

// Transfer kinds.
var (
	TransferDepositCredit   = TransferKind{"deposit_credit"}
	TransferDebit           = TransferKind{"debit"}
	TransferExceptionCredit = TransferKind{"exception_credit"}
)

// String names the kind as stored.
func (k TransferKind) String() string { return k.s }

// ParseTransferKind reads a stored kind.
func ParseTransferKind(s string) (TransferKind, error) {
	switch s {
	case "deposit_credit":
		return TransferDepositCredit, nil
	case "debit":
		return TransferDebit, nil
	case "exception_credit":
		return TransferExceptionCredit, nil
	}
	return TransferKind{}, fmt.Errorf("%w: transfer kind %q", ErrInvalidInput, truncate(s, 32))
}

// Posting is one leg of a transfer: a signed amount on one account
// (positive credits the account, negative debits it). BalanceAfter is set by
// the store for customer accounts: the account's balance right after this
// posting, so a statement or a balance as of any moment is one read.
type Posting struct {
	AccountID    string
	Amount       Amount
	BalanceAfter *Amount
}

// Transfer is one double-entry movement of money. Its postings sum to zero
// in one currency. Transfers and postings are never changed or deleted;
// corrections are new transfers.
type Transfer struct {
	ID          string
	Kind        TransferKind
	Postings    []Posting
	DepositID   string // deposit_credit
	ExceptionID string // exception_credit, and a deposit_credit an operator made
	// CreditKey names the payment an exception_credit pays for
	// (PaymentCreditKey): the store keeps at most one transfer per key, so
	// an unknown payment is credited at most once, however many exceptions
	// it raised.
	CreditKey   string
	Description string
	Actor       string // who caused it: "monetix:<project>" or a REST token name
	CreatedAt   time.Time
}

// PaymentCreditKey is the CreditKey of a credit for the payment paymentID
// of channel ch: payment ids are unique within a provider's project.
func PaymentCreditKey(ch Channel, paymentID string) string {
	return ch.Provider + "/" + ch.Project + "/" + paymentID
}

// NewTransfer validates and builds a transfer that moves amount from source
// to target. Two postings: -amount on source, +amount on target.
func NewTransfer(id string, kind TransferKind, source, target string, amount Amount, now time.Time) (Transfer, error) {
	if id == "" || source == "" || target == "" {
		return Transfer{}, fmt.Errorf("%w: transfer needs an id, a source and a target", ErrInvalidInput)
	}
	if source == target {
		return Transfer{}, fmt.Errorf("%w: transfer from %s to itself", ErrInvalidInput, source)
	}
	if !amount.IsPositive() {
		return Transfer{}, &AmountError{Input: amount.String(), Reason: "must be greater than zero", Err: ErrInvalidAmount}
	}
	neg, err := amount.Neg()
	if err != nil {
		return Transfer{}, err
	}
	t := Transfer{
		ID:        id,
		Kind:      kind,
		Postings:  []Posting{{AccountID: source, Amount: neg}, {AccountID: target, Amount: amount}},
		CreatedAt: now,
	}
	return t, t.Validate()
}

// Validate checks the double-entry rule: at least two postings, each on a
// named account and none zero, one (registered) currency, and a zero sum
// (computed without overflow).
func (t Transfer) Validate() error {
	if len(t.Postings) < 2 || len(t.Postings) > MaxPostingsPerTransfer {
		return fmt.Errorf("%w: transfer %s has %d postings", ErrUnbalancedTransfer, t.ID, len(t.Postings))
	}
	if len(t.Description) > MaxDescriptionLen {
		return fmt.Errorf("%w: description longer than %d bytes", ErrInvalidInput, MaxDescriptionLen)
	}
	currency := t.Postings[0].Amount.currency
	if currency.IsZero() {
		return fmt.Errorf("%w: transfer %s has no currency", ErrUnknownCurrency, t.ID)
	}
	sum := NewAmount(0, currency)
	for _, p := range t.Postings {
		if p.AccountID == "" {
			return fmt.Errorf("%w: transfer %s has a posting without an account", ErrInvalidInput, t.ID)
		}
		if p.Amount.IsZero() {
			return fmt.Errorf("%w: transfer %s has a zero posting on %s", ErrUnbalancedTransfer, t.ID, p.AccountID)
		}
		next, err := sum.Add(p.Amount)
		if err != nil {
			return fmt.Errorf("transfer %s: %w", t.ID, err)
		}
		sum = next
	}
	if !sum.IsZero() {
		return fmt.Errorf("%w: transfer %s sums to %s", ErrUnbalancedTransfer, t.ID, sum)
	}
	return nil
}

// Credited is the positive posting of a two-legged transfer: the account and
// amount money went to.
func (t Transfer) Credited() Posting {
	for _, p := range t.Postings {
		if p.Amount.IsPositive() {
			return p
		}
	}
	return Posting{}
}
