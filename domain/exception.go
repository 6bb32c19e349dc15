package domain

import (
	"fmt"
	"time"
)

// ExceptionStatus is where an exception stands: open until an operator
// resolves it by crediting an account or dismisses it.
type ExceptionStatus struct{ s string }

// Exception statuses.
var (
	ExceptionOpen      = ExceptionStatus{"open"}
	ExceptionResolved  = ExceptionStatus{"resolved"}
	ExceptionDismissed = ExceptionStatus{"dismissed"}
)

// String is the status as stored and shown.
func (s ExceptionStatus) String() string { return s.s }

// ParseExceptionStatus reads a stored or wire status.
func ParseExceptionStatus(s string) (ExceptionStatus, error) {
	switch s {
	case "open":
		return ExceptionOpen, nil
	case "resolved":
		return ExceptionResolved, nil
	case "dismissed":
		return ExceptionDismissed, nil
	}
	return ExceptionStatus{}, fmt.Errorf("%w: exception status %q", ErrInvalidInput, truncate(s, 32))
}

// Exception is a callback Tiyn could not apply safely, kept with its
// evidence for an operator. No balance changed when it was raised.
type Exception struct {
	ID          string
	Reason      ExceptionReason
	Detail      string
	Channel     Channel
	PaymentID   string
	OperationID string
	Status      string // the callback's payment status text
	DepositID   string // "" for an unknown payment
	AccountID   string // the deposit's account, if any
	Amount      Amount // what the callback claimed
	Evidence    string // the raw callback body
	DedupeKey   string // the same callback redelivered maps to the same exception
	State       ExceptionStatus
	Resolution  *Resolution
	CreatedAt   time.Time
}

// Resolution records how an operator closed an exception.
type Resolution struct {
	Credit     bool   // true: money was credited; false: dismissed
	AccountID  string // credit target
	Amount     Amount // credited amount
	TransferID string
	Note       string
	Actor      string
	ResolvedAt time.Time
}

// MaxNoteLen bounds an operator's resolution note.
const MaxNoteLen = 1000

// Resolve returns the exception closed with r. Only open exceptions can be
// resolved, and a resolution needs a note (the audit trail says why).
func (e Exception) Resolve(r Resolution) (Exception, error) {
	if e.State != ExceptionOpen {
		return Exception{}, fmt.Errorf("%w: exception %s is %s", ErrInvalidTransition, e.ID, e.State)
	}
	if r.Note == "" {
		return Exception{}, fmt.Errorf("%w: a resolution needs a note", ErrInvalidInput)
	}
	if err := validateText("note", r.Note, MaxNoteLen, true); err != nil {
		return Exception{}, err
	}
	if r.Credit {
		if r.AccountID == "" || !r.Amount.IsPositive() {
			return Exception{}, fmt.Errorf("%w: a credit resolution needs an account and a positive amount", ErrInvalidInput)
		}
		e.State = ExceptionResolved
	} else {
		e.State = ExceptionDismissed
	}
	e.Resolution = &r
	return e, nil
}
