package domain

import (
	"fmt"
	"time"
)

// DepositStatus is where a deposit stands:
//
//	pending ──success──▶ succeeded
//	pending ──decline──▶ declined ──late success──▶ succeeded
//	pending ──expiry───▶ expired  ──late success──▶ succeeded
//	                     expired  ──decline──────▶ declined
//
// succeeded is final. declined and expired move no money and are terminal
// for the balance, but a late success still credits them: the cash was
// collected. A deposit expires when it stayed pending past the platform's
// own threshold (Kassa24's is 36 days) and the platform's latest answer
// about it was a decline or not final (see Deposit.Expire); a platform
// decline of an expired deposit records the platform's word.
type DepositStatus struct{ s string }

// Deposit statuses.
var (
	DepositPending   = DepositStatus{"pending"}
	DepositSucceeded = DepositStatus{"succeeded"}
	DepositDeclined  = DepositStatus{"declined"}
	DepositExpired   = DepositStatus{"expired"}
)

// DepositStatuses lists every status, for filters and documentation.
func DepositStatuses() []DepositStatus {
	return []DepositStatus{DepositPending, DepositSucceeded, DepositDeclined, DepositExpired}
}

// String is the status as stored and shown.
func (s DepositStatus) String() string { return s.s }

// IsZero reports an unset status.
func (s DepositStatus) IsZero() bool { return s.s == "" }

// ParseDepositStatus reads a stored or wire status.
func ParseDepositStatus(s string) (DepositStatus, error) {
	for _, st := range DepositStatuses() {
		if st.s == s {
			return st, nil
		}
	}
	return DepositStatus{}, fmt.Errorf("%w: deposit status %q", ErrInvalidInput, truncate(s, 32))
}

// Channel names where a deposit comes from: the payment platform (provider),
// its payment method, and the merchant's project on that platform. Payment
// ids are unique within a channel.
type Channel struct {
	Provider string // "monetix"
	Method   string // "kassa24"
	Project  string // the platform's project id, as text
}

// ClearingAccountID is the system account a deposit's money comes from: one
// per provider and method. Its balance is derived from its postings; no row
// is ever updated for it, so it is not a hot spot.
func (c Channel) ClearingAccountID() string {
	return "clearing:" + c.Provider + ":" + c.Method
}

// Deposit is one cash-in payment: opened pending by check_deposit with the
// requested amount, settled by callbacks.
type Deposit struct {
	ID          string
	Channel     Channel
	PaymentID   string
	AccountID   string
	CustomerID  string
	Amount      Amount
	Status      DepositStatus
	OperationID string // the platform operation that settled it, "" while pending
	CreatedAt   time.Time
	SettledAt   time.Time // zero while pending
	Version     int64
}

// NewDeposit opens a pending deposit for an account that can receive one.
func NewDeposit(id string, ch Channel, paymentID string, account Account, amount Amount, now time.Time) (Deposit, error) {
	if id == "" || paymentID == "" {
		return Deposit{}, fmt.Errorf("%w: deposit and payment ids must not be empty", ErrInvalidInput)
	}
	if err := account.CanReceiveDeposit(); err != nil {
		return Deposit{}, err
	}
	if amount.currency != account.currency {
		return Deposit{}, fmt.Errorf("%w: account %s is %s, deposit is %s", ErrCurrencyMismatch, account.id, account.currency, amount.currency)
	}
	if !amount.IsPositive() {
		return Deposit{}, &AmountError{Input: amount.String(), Reason: "must be greater than zero", Err: ErrInvalidAmount}
	}
	return Deposit{
		ID:         id,
		Channel:    ch,
		PaymentID:  paymentID,
		AccountID:  account.id,
		CustomerID: account.customerID,
		Amount:     amount,
		Status:     DepositPending,
		CreatedAt:  now,
		Version:    1,
	}, nil
}

// OutcomeKind classifies what a callback says about a payment.
type OutcomeKind struct{ s string }

// Outcome kinds.
var (
	// OutcomeSuccess: the payment succeeded; the money was collected.
	OutcomeSuccess = OutcomeKind{"success"}
	// OutcomeDecline: the payment failed (decline, error, expired).
	OutcomeDecline = OutcomeKind{"decline"}
	// OutcomeIntermediate: not final yet (processing, awaiting …), or a
	// status Tiyn does not know: recorded, nothing else.
	OutcomeIntermediate = OutcomeKind{"intermediate"}
	// OutcomeReversal: money taken back after the fact (refunded, reversed,
	// canceled). The kassa24 method lists no refunds, so an operator decides.
	OutcomeReversal = OutcomeKind{"reversal"}
)

// String names the kind.
func (k OutcomeKind) String() string { return k.s }

// ParseOutcomeKind reads a stored kind; "" (not recorded) is the zero kind.
func ParseOutcomeKind(s string) (OutcomeKind, error) {
	for _, k := range []OutcomeKind{OutcomeSuccess, OutcomeDecline, OutcomeIntermediate, OutcomeReversal} {
		if k.s == s {
			return k, nil
		}
	}
	if s == "" {
		return OutcomeKind{}, nil
	}
	return OutcomeKind{}, fmt.Errorf("%w: outcome kind %q", ErrInvalidInput, truncate(s, 32))
}

// Outcome is what one callback says about one payment, already decoded and
// authenticated by an adapter.
type Outcome struct {
	Kind        OutcomeKind
	Status      string // the platform's own status text, kept for the record
	OperationID string
	Amount      Amount
	// Method is the payment method the platform names, exactly as it
	// spells it: a final outcome for a deposit of another method (or of
	// none) is an exception, never a credit.
	Method string
}

// Effect is what settling a callback does.
type Effect struct{ s string }

// Effects of a settlement decision.
var (
	// EffectCredit: move the deposit to succeeded and credit the account.
	EffectCredit = Effect{"credited"}
	// EffectDecline: move the deposit to declined; no money moves.
	EffectDecline = Effect{"declined"}
	// EffectReplay: the callback repeats what is already recorded.
	EffectReplay = Effect{"replay"}
	// EffectRecord: an intermediate status, recorded only.
	EffectRecord = Effect{"recorded"}
	// EffectException: cannot be applied safely; goes to an operator.
	EffectException = Effect{"exception"}
)

// String names the effect (also the inbox outcome column).
func (e Effect) String() string { return e.s }

// ExceptionReason says why a callback went to the exception queue.
type ExceptionReason struct{ s string }

// Exception reasons.
var (
	ReasonUnknownPayment      = ExceptionReason{"unknown_payment"}
	ReasonAmountMismatch      = ExceptionReason{"amount_mismatch"}
	ReasonCurrencyMismatch    = ExceptionReason{"currency_mismatch"}
	ReasonDuplicateSuccess    = ExceptionReason{"duplicate_success"}
	ReasonDeclineAfterSuccess = ExceptionReason{"decline_after_success"}
	ReasonReversal            = ExceptionReason{"reversal"}
	ReasonAccountClosed       = ExceptionReason{"account_closed"}
	// ReasonBalanceCeiling: crediting the payment would take the account
	// past MaxBalanceMinor.
	ReasonBalanceCeiling = ExceptionReason{"balance_ceiling"}
	// ReasonMethodMismatch: the platform names another payment method
	// than the deposit's (or none).
	ReasonMethodMismatch = ExceptionReason{"method_mismatch"}
	// ReasonMalformedCallback: an authentic callback (its signature
	// verifies) that cannot be read as an outcome: a field missing or of
	// the wrong type. Its raw body is the evidence.
	ReasonMalformedCallback = ExceptionReason{"malformed_callback"}
	// ReasonStatusUnknown: a deposit stayed pending past its expiry and
	// the platform never answered a status check about it (unreachable,
	// errors, wrong signatures): it is not expired silently. Its evidence
	// claims nothing, so no operator credit can be justified by it; an
	// operator who dismisses it expires the deposit.
	ReasonStatusUnknown = ExceptionReason{"status_unknown"}
)

// exceptionReasons lists every reason, for parsing.
var exceptionReasons = []ExceptionReason{ReasonUnknownPayment, ReasonAmountMismatch, ReasonCurrencyMismatch,
	ReasonDuplicateSuccess, ReasonDeclineAfterSuccess, ReasonReversal, ReasonAccountClosed, ReasonBalanceCeiling,
	ReasonMethodMismatch, ReasonMalformedCallback, ReasonStatusUnknown,
	ReasonCreditedWithoutPlatformSuccess, ReasonDuplicateInSource, ReasonUnreadableRow}

// ExceptionReasons lists every reason, for filters and documentation.
func ExceptionReasons() []ExceptionReason { return append([]ExceptionReason(nil), exceptionReasons...) }

// String names the reason as stored and shown.
func (r ExceptionReason) String() string { return r.s }

// ParseExceptionReason reads a stored reason.
func ParseExceptionReason(s string) (ExceptionReason, error) {
	for _, r := range exceptionReasons {
		if r.s == s {
			return r, nil
		}
	}
	return ExceptionReason{}, fmt.Errorf("%w: exception reason %q", ErrInvalidInput, truncate(s, 32))
}

// Decision is the state machine's verdict on one callback.
type Decision struct {
	Effect Effect
	Reason ExceptionReason // set when Effect is EffectException
	Detail string          // a human sentence for the exception or the log
}

// DecideUnknown is the decision for a callback whose payment id matches no
// deposit: an exception, nothing credited.
func DecideUnknown(o Outcome) Decision {
	return Decision{Effect: EffectException, Reason: ReasonUnknownPayment,
		Detail: fmt.Sprintf("no deposit has this payment id (callback status %q, %s %s)", o.Status, o.Amount, o.Amount.currency)}
}

// Decide is the deposit state machine. It is pure: given the deposit as
// stored and what a callback says, it returns what must happen. Applying
// the same outcome twice yields EffectReplay the second time, so a deposit
// is credited at most once whatever sequence of callbacks arrives.
func (d Deposit) Decide(o Outcome) Decision {
	if o.Kind == OutcomeIntermediate {
		return Decision{Effect: EffectRecord, Detail: "intermediate status " + o.Status}
	}
	if o.Method != d.Channel.Method {
		return Decision{Effect: EffectException, Reason: ReasonMethodMismatch,
			Detail: fmt.Sprintf("payment method %q, deposit method %q", truncate(o.Method, 32), d.Channel.Method)}
	}
	if o.Amount.currency != d.Amount.currency {
		return Decision{Effect: EffectException, Reason: ReasonCurrencyMismatch,
			Detail: fmt.Sprintf("callback currency %q, deposit currency %s", o.Amount.currency.code, d.Amount.currency)}
	}
	if o.Amount.minor != d.Amount.minor {
		return Decision{Effect: EffectException, Reason: ReasonAmountMismatch,
			Detail: fmt.Sprintf("callback amount %s, deposit amount %s %s", o.Amount, d.Amount, d.Amount.currency)}
	}
	switch o.Kind {
	case OutcomeSuccess:
		return d.decideSuccess(o)
	case OutcomeDecline:
		return d.decideDecline(o)
	case OutcomeReversal:
		return Decision{Effect: EffectException, Reason: ReasonReversal,
			Detail: fmt.Sprintf("status %q on a %s deposit needs an operator", o.Status, d.Status)}
	}
	return Decision{Effect: EffectRecord, Detail: "unclassified status " + o.Status}
}

func (d Deposit) decideSuccess(o Outcome) Decision {
	switch d.Status {
	case DepositPending:
		return Decision{Effect: EffectCredit, Detail: "success"}
	case DepositDeclined:
		return Decision{Effect: EffectCredit, Detail: "late success after decline"}
	case DepositExpired:
		return Decision{Effect: EffectCredit, Detail: "late success after expiry"}
	}
	// succeeded is final: the same operation again is a replay, another
	// operation claiming success for the same payment is suspicious.
	if o.OperationID == d.OperationID {
		return Decision{Effect: EffectReplay, Detail: "success already credited"}
	}
	return Decision{Effect: EffectException, Reason: ReasonDuplicateSuccess,
		Detail: fmt.Sprintf("operation %s reports success, deposit already credited by operation %s", o.OperationID, d.OperationID)}
}

func (d Deposit) decideDecline(o Outcome) Decision {
	switch d.Status {
	case DepositPending:
		return Decision{Effect: EffectDecline, Detail: "declined"}
	case DepositExpired:
		return Decision{Effect: EffectDecline, Detail: "declined by the platform after expiry"}
	case DepositDeclined:
		return Decision{Effect: EffectReplay, Detail: "decline already recorded"}
	}
	return Decision{Effect: EffectException, Reason: ReasonDeclineAfterSuccess,
		Detail: fmt.Sprintf("operation %s reports %q, deposit already credited by operation %s", o.OperationID, o.Status, d.OperationID)}
}

// Apply returns the deposit after a credit or decline decision. Other
// effects leave the deposit unchanged. It refuses a decision that does not
// fit the current status, so a stale decision cannot be applied by mistake.
func (d Deposit) Apply(dec Decision, o Outcome, now time.Time) (Deposit, error) {
	switch dec.Effect {
	case EffectCredit:
		if d.Status == DepositSucceeded {
			return Deposit{}, fmt.Errorf("%w: deposit %s already succeeded", ErrInvalidTransition, d.ID)
		}
		d.Status = DepositSucceeded
	case EffectDecline:
		if d.Status != DepositPending && d.Status != DepositExpired {
			return Deposit{}, fmt.Errorf("%w: deposit %s is %s, cannot decline", ErrInvalidTransition, d.ID, d.Status)
		}
		d.Status = DepositDeclined
	default:
		return d, nil
	}
	d.OperationID = o.OperationID
	d.SettledAt = now
	d.Version++
	return d, nil
}

// Expire returns the deposit moved from pending to expired at now: it
// stayed pending past the platform's threshold and the platform's latest
// answer about it was a decline or not final. The deposit keeps no
// operation (none settled it). Only a pending deposit expires.
func (d Deposit) Expire(now time.Time) (Deposit, error) {
	if d.Status != DepositPending {
		return Deposit{}, fmt.Errorf("%w: deposit %s is %s, only a pending deposit expires", ErrInvalidTransition, d.ID, d.Status)
	}
	d.Status = DepositExpired
	d.SettledAt = now
	d.Version++
	return d, nil
}
