package ports

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tiyn/tiyn/domain"
)

// Source says where a piece of platform evidence came from: the inbox keeps
// every one with its source, so an operator can tell a callback from the
// answer to a status check.
type Source struct{ s string }

// Sources of evidence.
var (
	// SourceCallback: the platform's signed callback.
	SourceCallback = Source{"callback"}
	// SourceStatusPoll: the platform's signed answer to a status check
	// (the Gate's payment status), asked by the status poller.
	SourceStatusPoll = Source{"status_poll"}
	// SourceReconciliation: a row of a business day's reconciliation
	// source (a CSV report, the Data API), applied by ReconcileDay.
	SourceReconciliation = Source{"reconciliation"}
)

// Sources lists every source, for filters and documentation.
func Sources() []Source { return []Source{SourceCallback, SourceStatusPoll, SourceReconciliation} }

// String names the source as stored and shown.
func (s Source) String() string { return s.s }

// IsZero reports an unset source.
func (s Source) IsZero() bool { return s.s == "" }

// ParseSource reads a stored or wire source.
func ParseSource(s string) (Source, error) {
	for _, src := range Sources() {
		if src.s == s {
			return src, nil
		}
	}
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	return Source{}, fmt.Errorf("%w: evidence source %q", domain.ErrInvalidInput, s)
}

// PaymentStatusSource is the driven port to a payment platform's own record
// of one payment: the Monetix adapter implements it with the Gate's
// payment status. It is asked about deposits that stay pending.
type PaymentStatusSource interface {
	// PaymentStatus asks about the payment of one deposit. An answer is
	// authentic (its signature verified when it carries one, or required)
	// and about that payment; anything else is an error wrapping
	// ErrNoAnswer (a *NoAnswerError says why), which changes nothing and is
	// asked again later.
	PaymentStatus(ctx context.Context, d domain.Deposit) (StatusAnswer, error)
}

// StatusAnswer is a platform's answer about one payment.
type StatusAnswer struct {
	// Known is false when the platform says it has no such payment (yet).
	Known bool
	// Outcome is what the answer says, classified by the same rules as a
	// callback (when Known): only a final outcome settles the deposit.
	Outcome domain.Outcome
	// Evidence is the answer's raw body, kept in the inbox when it is
	// applied.
	Evidence string
	// Limits are the method's per-payment limits, as for a callback.
	Limits domain.AmountLimits
}

// ErrNoAnswer: a status check got no usable answer. Errors.Is matches it
// through a *NoAnswerError.
var ErrNoAnswer = errors.New("no status answer")

// NoAnswerError says why a status check got no usable answer. Reason is a
// short metric-friendly word: unavailable (network, timeout, 5xx),
// rejected (the platform refused the request), bad_signature, unsigned,
// malformed, not_configured.
type NoAnswerError struct {
	Reason string
	Err    error
}

func (e *NoAnswerError) Error() string {
	if e.Err == nil {
		return "no status answer: " + e.Reason
	}
	return "no status answer (" + e.Reason + "): " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *NoAnswerError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNoAnswer) hold.
func (e *NoAnswerError) Is(target error) bool { return target == ErrNoAnswer }

// StatusCheck is the poller's record of one pending deposit: how often it
// was asked about, when it is due again and what the platform last said.
type StatusCheck struct {
	Deposit domain.Deposit
	Checks  int       // status checks made
	NextAt  time.Time // due again; zero before the first check
	LastAt  time.Time // the last check, zero before the first
	Last    string    // the last check's result (see StatusCheckResult)
	// Answered: the platform answered about the payment at least once,
	// final or not. "No such payment" does not count: at the expiry such
	// a deposit goes to an operator rather than expire.
	Answered bool
	// Escalated is set once the deposit reached its expiry without any
	// answer and a status_unknown exception was raised for it.
	Escalated bool
}

// ClaimStatusChecks selects pending deposits due for a status check and
// claims them until LeaseUntil, so that another instance on the same
// database does not ask about them at the same moment.
type ClaimStatusChecks struct {
	CreatedBefore time.Time // only deposits pending since before this
	Now           time.Time // due: never checked, or NextAt <= Now, and no live claim
	LeaseUntil    time.Time
	Limit         int
	// AnyTime ignores NextAt: every pending deposit old enough and not
	// claimed is due (an operator's round on demand).
	AnyTime bool
}

// StatusCheckResult is the record of one status check.
type StatusCheckResult struct {
	DepositID string
	At        time.Time
	Result    string // credited, declined, replay, exception, not_final, not_found, or a NoAnswerError reason
	Answered  bool   // an authentic answer came back
	NextAt    time.Time
}

// ExpiryQuery lists deposits pending since before CreatedBefore that have
// not been escalated, with their status-check records, ordered by id.
type ExpiryQuery struct {
	CreatedBefore time.Time
	AfterID       string
	Limit         int
}
