package platform

import (
	"fmt"

	"github.com/tiyn/tiyn/domain"
)

// Fault is a reconciliation break injected into the platform's record of
// one payment (tiyn simulate --recon-faults): the record, and so the Data
// API's answers and the CSV report made from it, then disagree with what
// Tiyn was told in a known way, and a reconciliation of the day must find
// exactly that. A Fault is one byte of the payment's record.
type Fault uint8

// The faults, one per class of break (and heal) a reconciliation finds.
const (
	FaultNone Fault = iota
	// FaultUnanswered: a successful sale whose callbacks are never
	// delivered and whose status the Gate never answers (it answers 503):
	// Tiyn keeps the deposit pending and a reconciliation heals it.
	FaultUnanswered
	// FaultAmount: the platform's final sale is of another amount than the
	// deposit (its callbacks never delivered, the Gate silent).
	FaultAmount
	// FaultCurrency: the platform's final sale is in another currency.
	FaultCurrency
	// FaultOrphan: an operation for a payment id Tiyn never issued.
	FaultOrphan
	// FaultDeclined: Tiyn was told success (and credited), the platform's
	// record shows the sale declined.
	FaultDeclined
	// FaultPending: the sale never completes (processing on the platform,
	// pending in the ledger; the Gate silent). Operation lists are by
	// completion time, so it is in none: the ledger's pending deposit
	// meets no operation of the day.
	FaultPending
	// FaultDuplicate: the operation lists show the payment's operations
	// twice (the platform's record is otherwise true and Tiyn credited it).
	FaultDuplicate
	numFaults
)

// Faults lists the faults, FaultNone excluded, in a fixed order.
func Faults() []Fault {
	out := make([]Fault, 0, numFaults-1)
	for f := FaultUnanswered; f < numFaults; f++ {
		out = append(out, f)
	}
	return out
}

var faultClasses = [...]domain.ReconClass{
	FaultUnanswered: domain.ClassHealed,
	FaultAmount:     domain.ClassAmountMismatch,
	FaultCurrency:   domain.ClassCurrencyMismatch,
	FaultOrphan:     domain.ClassOrphanOperation,
	FaultDeclined:   domain.ClassCreditedWithoutPlatformSuccess,
	FaultPending:    domain.ClassPendingBoth,
	FaultDuplicate:  domain.ClassDuplicateInSource,
}

// Class is the reconciliation class the fault's payment must end in.
func (f Fault) Class() domain.ReconClass {
	if f == FaultNone || f >= numFaults {
		return domain.ReconClass{}
	}
	return faultClasses[f]
}

// String is the class's name ("" for FaultNone).
func (f Fault) String() string { return f.Class().String() }

// GateSilent reports whether the Gate must not answer about the payment:
// Tiyn must learn of it from a reconciliation alone.
func (f Fault) GateSilent() bool {
	return f == FaultUnanswered || f == FaultAmount || f == FaultCurrency || f == FaultPending
}

// Inject marks the payment's record with f and makes the change f stands
// for in its latest operation: FaultAmount sets its amount to amountMinor,
// FaultCurrency its currency to currency, FaultDeclined turns its success
// into a decline (completed when it succeeded). The others change no
// operation. FaultAmount, FaultCurrency, FaultDeclined and FaultUnanswered
// need a successful latest operation, FaultPending one still processing.
func (ps *Payments) Inject(paymentID string, f Fault, amountMinor int64, currency string) error {
	if f == FaultNone || f >= numFaults {
		return fmt.Errorf("%w: fault %d", ErrOperation, f)
	}
	sh := ps.shard(paymentID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	p, ok := sh.m[paymentID]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknown, paymentID)
	}
	op := &p.ops[p.n-1]
	bad := func(why string) error {
		return fmt.Errorf("%w: payment %s: fault %s: %s", ErrOperation, paymentID, f, why)
	}
	switch f {
	case FaultAmount, FaultCurrency, FaultDeclined, FaultUnanswered:
		if op.Status != StatusSuccess {
			return bad("the latest operation is " + op.Status.String() + ", not success")
		}
	case FaultPending:
		if op.Status.Final() {
			return bad("the latest operation is final")
		}
	}
	switch f {
	case FaultAmount:
		if amountMinor <= 0 || amountMinor == op.AmountMinor {
			return bad(fmt.Sprintf("amount %d is not another positive amount", amountMinor))
		}
		op.AmountMinor = amountMinor
	case FaultCurrency:
		if currency == "" || currency == op.Currency {
			return bad(fmt.Sprintf("currency %q is not another currency", currency))
		}
		op.Currency = currency
	case FaultDeclined:
		op.Status = StatusDecline
	}
	p.fault = f
	sh.m[paymentID] = p
	ps.gen.Add(1)
	return nil
}
