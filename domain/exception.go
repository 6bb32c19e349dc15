package domain

import (
	"errors"
	"fmt"
	"time"
)

// ExceptionStatus is where an exception stands. An exception is open until
// an operator dismisses it or resolves it by a credit. With four eyes a
// credit is first proposed by one operator and then approved (resolved) or
// rejected (open again) by another:
//
//	open ──dismiss──▶ dismissed
//	open ──credit───▶ resolved
//	open ──propose──▶ proposed ──approve──▶ resolved
//	                  proposed ──reject───▶ open
type ExceptionStatus struct{ s string }

// Exception statuses.
var (
	ExceptionOpen      = ExceptionStatus{"open"}
	ExceptionProposed  = ExceptionStatus{"proposed"}
	ExceptionResolved  = ExceptionStatus{"resolved"}
	ExceptionDismissed = ExceptionStatus{"dismissed"}
)

// String is the status as stored and shown.
func (s ExceptionStatus) String() string { return s.s }

// IsZero reports an unset status.
func (s ExceptionStatus) IsZero() bool { return s.s == "" }

// ParseExceptionStatus reads a stored or wire status.
func ParseExceptionStatus(s string) (ExceptionStatus, error) {
	for _, st := range []ExceptionStatus{ExceptionOpen, ExceptionProposed, ExceptionResolved, ExceptionDismissed} {
		if st.s == s {
			return st, nil
		}
	}
	return ExceptionStatus{}, fmt.Errorf("%w: exception status %q", ErrInvalidInput, truncate(s, 32))
}

// Errors of corrections.
var (
	// ErrExceedsEvidence: an operator credit larger than what the
	// exception's evidence shows was collected (see Exception.CheckCredit).
	ErrExceedsEvidence = errors.New("credit exceeds its evidence")
	// ErrAlreadyCredited: the payment an exception belongs to was already
	// credited; crediting it again would pay the same cash twice.
	ErrAlreadyCredited = errors.New("payment already credited")
	// ErrSelfApproval: with four eyes, the operator who proposed a credit
	// may not approve it.
	ErrSelfApproval = errors.New("a proposal must be approved by another operator")
)

// Exception is a callback (or another piece of platform evidence) Tiyn
// could not apply safely, kept with its evidence for an operator. No
// balance changed when it was raised.
type Exception struct {
	ID          string
	Reason      ExceptionReason
	Detail      string
	Channel     Channel
	PaymentID   string
	OperationID string
	Status      string      // the callback's payment status text
	Outcome     OutcomeKind // what the evidence says happened: only a success justifies a credit
	DepositID   string      // "" for an unknown payment
	AccountID   string      // the deposit's account, if any
	Amount      Amount      // what the evidence claims
	// MaxCredit is the method's per-payment maximum, in minor units of the
	// evidence's currency, when the exception was raised (0: not known).
	MaxCredit int64
	// Unverified: the evidence is not the platform's authenticated word
	// (a row of an uploaded report, which anyone holding an operator token
	// can write): it justifies no credit. CreditBound is zero.
	Unverified bool
	Evidence   string // the raw callback body
	DedupeKey  string // the same callback redelivered maps to the same exception
	State      ExceptionStatus
	Proposal   *Proposal // set while proposed, and kept once approved
	Resolution *Resolution
	CreatedAt  time.Time
}

// Proposal is a credit one operator proposed and another must approve.
type Proposal struct {
	AccountID string
	Amount    Amount
	Note      string
	Actor     string
	At        time.Time
}

// Resolution records how an operator closed an exception.
type Resolution struct {
	Credit     bool   // true: money was credited; false: dismissed
	AccountID  string // credit target
	Amount     Amount // credited amount
	TransferID string
	Note       string
	Actor      string // who resolved it (with four eyes: who approved)
	ResolvedAt time.Time
}

// MaxNoteLen bounds an operator's resolution note.
const MaxNoteLen = 1000

// CreditBound is the most an operator may credit for e: the amount its
// evidence claims was collected, and never more than the method's
// per-payment maximum (when known) or MaxBalanceMinor. Evidence that does not
// show a successful payment (a decline, a reversal, a body that could not
// be read) justifies nothing: its bound is zero.
func (e Exception) CreditBound() Amount {
	if e.Outcome != OutcomeSuccess || !e.Amount.currency.Known() || e.Unverified {
		return NewAmount(0, e.Amount.currency)
	}
	bound := e.Amount.minor
	if e.MaxCredit > 0 && e.MaxCredit < bound {
		bound = e.MaxCredit
	}
	bound = min(bound, MaxBalanceMinor)
	return NewAmount(max(bound, 0), e.Amount.currency)
}

// CreditBoundError says why a credit is more than an exception justifies,
// in the currency's major units so it can be shown as is.
type CreditBoundError struct {
	ExceptionID string
	Credit      Amount
	Evidence    Amount
	Outcome     OutcomeKind
	Status      string
	MaxCredit   Amount // zero when the method's maximum is not known
	Unverified  bool   // the evidence is not the platform's authenticated word
}

func (e *CreditBoundError) Error() string {
	cur := e.Credit.currency.code
	switch {
	case e.Unverified:
		return fmt.Sprintf("a credit is refused: the evidence of exception %s is a row of an uploaded report, not the platform's signed word; "+
			"reconcile the day from the Data API, or wait for the platform's callback or status answer, which raise an exception of their own",
			e.ExceptionID)
	case e.Outcome != OutcomeSuccess:
		return fmt.Sprintf("a credit is refused: the evidence of exception %s does not show a collected payment (payment status %q)",
			e.ExceptionID, e.Status)
	case !e.Evidence.currency.Known():
		return fmt.Sprintf("a credit is refused: the evidence of exception %s has no amount in a currency Tiyn knows (%q)",
			e.ExceptionID, e.Evidence.currency.code)
	case !e.Evidence.IsPositive():
		return fmt.Sprintf("a credit is refused: the evidence of exception %s claims no amount (%s %s)",
			e.ExceptionID, e.Evidence, e.Evidence.currency.code)
	case e.Credit.minor > e.Evidence.minor:
		return fmt.Sprintf("credit %s %s exceeds the evidence of exception %s: the platform reported %s %s",
			e.Credit, cur, e.ExceptionID, e.Evidence, e.Evidence.currency.code)
	case e.MaxCredit.IsPositive() && e.Credit.minor > e.MaxCredit.minor:
		return fmt.Sprintf("credit %s %s exceeds the method's per-payment maximum of %s %s",
			e.Credit, cur, e.MaxCredit, e.MaxCredit.currency.code)
	}
	return fmt.Sprintf("credit %s %s exceeds the balance ceiling of %s %s", e.Credit, cur,
		NewAmount(MaxBalanceMinor, e.Credit.currency), cur)
}

func (e *CreditBoundError) Unwrap() error { return ErrExceedsEvidence }

// CheckCredit checks that an operator may credit amount for e: a positive
// amount in the evidence's currency, no more than CreditBound. It returns
// ErrCurrencyMismatch, an *AmountError or a *CreditBoundError.
func (e Exception) CheckCredit(amount Amount) error {
	be := &CreditBoundError{ExceptionID: e.ID, Credit: amount, Evidence: e.Amount, Outcome: e.Outcome, Status: e.Status, Unverified: e.Unverified}
	if e.MaxCredit > 0 {
		be.MaxCredit = NewAmount(e.MaxCredit, e.Amount.currency)
	}
	if !e.CreditBound().IsPositive() {
		return be // the evidence justifies nothing, whatever the amount
	}
	if !amount.IsPositive() {
		return &AmountError{Input: amount.String(), Reason: "must be greater than zero", Err: ErrInvalidAmount}
	}
	if amount.currency != e.Amount.currency {
		return fmt.Errorf("%w: exception %s has evidence in %s, the credit is in %s",
			ErrCurrencyMismatch, e.ID, currencyText(e.Amount.currency), amount.currency)
	}
	if amount.minor <= e.CreditBound().minor {
		return nil
	}
	return be
}

func currencyText(c Currency) string {
	if c.IsZero() {
		return "an unknown currency"
	}
	return c.code
}

// Resolve returns the exception closed with r: a dismissal or a credit
// made at once. Only open exceptions can be resolved this way (a proposed
// one is approved or rejected), and a resolution needs a note: the audit
// trail says why.
func (e Exception) Resolve(r Resolution) (Exception, error) {
	if e.State != ExceptionOpen {
		return Exception{}, fmt.Errorf("%w: exception %s is %s", ErrInvalidTransition, e.ID, e.State)
	}
	return e.close(r)
}

func (e Exception) close(r Resolution) (Exception, error) {
	if err := ValidateNote(r.Note); err != nil {
		return Exception{}, err
	}
	if r.Credit {
		if r.AccountID == "" || !r.Amount.IsPositive() || r.TransferID == "" {
			return Exception{}, fmt.Errorf("%w: a credit resolution needs an account, a positive amount and its transfer", ErrInvalidInput)
		}
		e.State = ExceptionResolved
	} else {
		e.State = ExceptionDismissed
	}
	e.Resolution = &r
	return e, nil
}

// ValidateNote checks an operator's note: required, at most MaxNoteLen
// bytes of UTF-8, newlines and tabs allowed, no other control characters.
func ValidateNote(note string) error {
	if note == "" {
		return fmt.Errorf("%w: a resolution needs a note", ErrInvalidInput)
	}
	return validateText("note", note, MaxNoteLen, true)
}

// Propose returns the exception with a credit proposed, for another
// operator to approve. Only an open exception takes a proposal.
func (e Exception) Propose(p Proposal) (Exception, error) {
	if e.State != ExceptionOpen {
		return Exception{}, fmt.Errorf("%w: exception %s is %s", ErrInvalidTransition, e.ID, e.State)
	}
	if err := ValidateNote(p.Note); err != nil {
		return Exception{}, err
	}
	if p.AccountID == "" || !p.Amount.IsPositive() || p.Actor == "" {
		return Exception{}, fmt.Errorf("%w: a proposal needs an account, a positive amount and its proposer", ErrInvalidInput)
	}
	e.State = ExceptionProposed
	e.Proposal = &p
	return e, nil
}

// Approve returns the proposed exception resolved by the credit r made by
// approver. The proposer may not approve their own proposal, and r must be
// the proposal's credit.
func (e Exception) Approve(r Resolution) (Exception, error) {
	if e.State != ExceptionProposed || e.Proposal == nil {
		return Exception{}, fmt.Errorf("%w: exception %s is %s, not proposed", ErrInvalidTransition, e.ID, e.State)
	}
	if r.Actor == "" || r.Actor == e.Proposal.Actor {
		return Exception{}, fmt.Errorf("%w: %s proposed the credit of exception %s", ErrSelfApproval, e.Proposal.Actor, e.ID)
	}
	if !r.Credit || r.AccountID != e.Proposal.AccountID || r.Amount != e.Proposal.Amount {
		return Exception{}, fmt.Errorf("%w: the approval of exception %s must credit what was proposed", ErrInvalidInput, e.ID)
	}
	return e.close(r)
}

// Reject returns the proposed exception open again, its proposal dropped.
func (e Exception) Reject() (Exception, error) {
	if e.State != ExceptionProposed {
		return Exception{}, fmt.Errorf("%w: exception %s is %s, not proposed", ErrInvalidTransition, e.ID, e.State)
	}
	e.State = ExceptionOpen
	e.Proposal = nil
	return e, nil
}
