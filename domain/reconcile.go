package domain

import (
	"fmt"
	"sort"
	"time"
)

// Reconciliation of a business day: the platform's record of the day (its
// operations, by completion time) against the ledger's (its deposits, by
// insertion time). Every platform operation and every ledger deposit of
// the day ends in exactly one class.

// ReconClass is where one platform operation, or one ledger deposit the
// platform's record does not mention, ends in a reconciliation.
type ReconClass struct{ s string }

// Reconciliation classes. The first eight are the (DESIGN.md §6);
// held_for_operator and unreadable_row are two more, because two cases fit
// none of them and must not be squeezed into a class that claims otherwise.
var (
	// ClassMatched: the platform and the ledger agree (the same final
	// outcome, amount and currency; nothing collected on either side; or
	// an earlier operation of a payment a later one superseded). A
	// platform decline for a deposit the ledger had pending is applied
	// (the deposit moves to declined, no money moves) and counts here.
	ClassMatched = ReconClass{"matched"}
	// ClassHealed: the platform has a successful sale, the ledger had the
	// deposit pending, declined or expired; it is now credited through
	// the one settle path with the platform's row as evidence.
	ClassHealed = ReconClass{"healed"}
	// ClassAmountMismatch, ClassCurrencyMismatch: the platform's final
	// operation names another amount or currency than the deposit. An
	// exception each, never a credit.
	ClassAmountMismatch   = ReconClass{"amount_mismatch"}
	ClassCurrencyMismatch = ReconClass{"currency_mismatch"}
	// ClassOrphanOperation: a platform operation for a payment id Tiyn
	// never issued (an unknown_payment exception).
	ClassOrphanOperation = ReconClass{"orphan_operation"}
	// ClassCreditedWithoutPlatformSuccess: the ledger credited the
	// deposit, the platform shows no successful sale standing for it
	// (none in the day, a decline, a sale not final, or one reversed). An
	// exception, raised once per deposit; never an automatic reversal.
	ClassCreditedWithoutPlatformSuccess = ReconClass{"credited_without_platform_success"}
	// ClassPendingBoth: neither side has a final result within the day —
	// the platform's last sale is not final or there is none, and the
	// ledger has credited nothing (or settled the deposit only after the
	// day's end). Not a break: both sides agree nothing happened yet; the
	// day its operation completes reconciles it.
	ClassPendingBoth = ReconClass{"pending_both"}
	// ClassDuplicateInSource: the source lists the same operation id of a
	// payment more than once; the first copy counts, the others land here.
	ClassDuplicateInSource = ReconClass{"duplicate_in_source"}
	// ClassHeldForOperator: the platform's final word cannot be applied
	// automatically and went to an operator as an exception: a sale
	// reversed (refunded, chargeback) for a deposit the ledger has not
	// credited, a second successful operation for a credited deposit, or a
	// success the settle path refuses to credit (a closed account, the
	// balance ceiling, another payment method). None of the issue's
	// classes says this truthfully: "healed" would claim a credit,
	// "matched" an agreement.
	ClassHeldForOperator = ReconClass{"held_for_operator"}
	// ClassUnreadableRow: a row of the source that could not be read
	// (reported with its line and column). It is a platform operation
	// nobody could classify, so the day cannot pass for reconciled.
	ClassUnreadableRow = ReconClass{"unreadable_row"}
)

var reconClasses = []ReconClass{ClassMatched, ClassHealed, ClassAmountMismatch, ClassCurrencyMismatch,
	ClassOrphanOperation, ClassCreditedWithoutPlatformSuccess, ClassPendingBoth, ClassDuplicateInSource,
	ClassHeldForOperator, ClassUnreadableRow}

// ReconClasses lists every class, in a fixed order, for counts, filters
// and documentation.
func ReconClasses() []ReconClass { return append([]ReconClass(nil), reconClasses...) }

// String names the class as stored and shown.
func (c ReconClass) String() string { return c.s }

// IsZero reports an unset class.
func (c ReconClass) IsZero() bool { return c.s == "" }

// IsBreak reports whether the class is a break: a disagreement between
// the platform and the ledger (or within the source) that an operator must
// explain before the day closes. Every break raises an exception; the
// break is open until that exception is resolved or dismissed. matched,
// healed and pending_both are not breaks.
func (c ReconClass) IsBreak() bool {
	return c != ClassMatched && c != ClassHealed && c != ClassPendingBoth && !c.IsZero()
}

// ParseReconClass reads a stored or wire class.
func ParseReconClass(s string) (ReconClass, error) {
	for _, c := range reconClasses {
		if c.s == s {
			return c, nil
		}
	}
	return ReconClass{}, fmt.Errorf("%w: reconciliation class %q", ErrInvalidInput, truncate(s, 40))
}

// Exception reasons raised by a reconciliation itself (amount_mismatch,
// currency_mismatch, unknown_payment and the settle path's reasons are
// shared with callbacks).
var (
	// ReasonCreditedWithoutPlatformSuccess: a deposit the ledger credited
	// has no successful sale standing on the platform's record of its day.
	ReasonCreditedWithoutPlatformSuccess = ExceptionReason{"credited_without_platform_success"}
	// ReasonDuplicateInSource: a reconciliation source listed one
	// operation more than once.
	ReasonDuplicateInSource = ExceptionReason{"duplicate_in_source"}
	// ReasonUnreadableRow: a row of a reconciliation source could not be
	// read.
	ReasonUnreadableRow = ExceptionReason{"unreadable_row"}
)

// The platform's words for an operation, exactly as it spells them
// (docs/protocol.md §3): a credit is only a sale operation with status
// success.
const (
	OperationTypeSale = "sale"
	OperationSuccess  = "success"
)

// operationDeclines are the final failures of a sale.
var operationDeclines = map[string]bool{
	"decline": true, "error": true, "internal error": true, "external error": true, "expired": true,
}

// ClassifyOperation says what one platform operation says about its
// payment, compared exactly as the platform spells type and status:
//
//   - a sale with status success: OutcomeSuccess (the cash was collected);
//   - a sale with decline, error, internal error, external error or
//     expired: OutcomeDecline;
//   - any other operation type with status success (a refund, reversal,
//     cancellation, chargeback): OutcomeReversal — money taken back, for
//     an operator;
//   - anything else (a sale still processing or awaiting something, an
//     unknown status, another spelling, a failed refund):
//     OutcomeIntermediate, which says nothing, not even about the amount.
func ClassifyOperation(opType, status string) OutcomeKind {
	switch {
	case opType == OperationTypeSale && status == OperationSuccess:
		return OutcomeSuccess
	case opType == OperationTypeSale && operationDeclines[status]:
		return OutcomeDecline
	case opType != OperationTypeSale && status == OperationSuccess:
		return OutcomeReversal
	}
	return OutcomeIntermediate
}

// PlatformOperation is one operation of a payment as a reconciliation
// source lists it.
type PlatformOperation struct {
	// Seq is the operation's position in the source; it orders operations
	// completed at the same instant.
	Seq         int64
	OperationID string
	Type        string
	Status      string
	Amount      Amount
	CompletedAt time.Time
}

// Kind is ClassifyOperation of the operation.
func (o PlatformOperation) Kind() OutcomeKind { return ClassifyOperation(o.Type, o.Status) }

// Outcome is the operation as settle evidence for a deposit of method:
// the status text is the sale's status as the platform spells it (the
// same text a callback carries, so a callback and a reconciliation of the
// same operation share a dedupe key), or "type status" for another
// operation type.
func (o PlatformOperation) Outcome(method string) Outcome {
	status := o.Status
	if o.Type != OperationTypeSale {
		status = o.Type + " " + o.Status
	}
	return Outcome{Kind: o.Kind(), Status: status, OperationID: o.OperationID, Amount: o.Amount, Method: method}
}

// ReconAction is what a reconciliation verdict asks the app to do.
type ReconAction struct{ s string }

// Reconciliation actions.
var (
	// ActionNone: record the classes, nothing else.
	ActionNone = ReconAction{"none"}
	// ActionSettle: apply the deciding operation through the settle path
	// (a heal, a decline, or the exception the settle path raises for a
	// mismatch, a reversal or an unknown payment); the settle result
	// gives the deciding item's final class (ReconClassOfSettlement).
	ActionSettle = ReconAction{"settle"}
	// ActionRaise: raise the reconciliation's own exception for the
	// payment (credited_without_platform_success), once per deposit.
	ActionRaise = ReconAction{"raise"}
)

// String names the action.
func (a ReconAction) String() string { return a.s }

// ReconVerdict is the reconciliation of one payment: a class for each of
// its operations and what to do.
type ReconVerdict struct {
	// Classes and Notes hold one entry per operation, in the order given.
	Classes []ReconClass
	Notes   []string
	// Decider is the index of the operation whose class is the payment's
	// (and the deposit's), or -1 when the payment has no operation (a
	// ledger-only deposit).
	Decider int
	// Class is the payment's class: the decider's, or the deposit's.
	Class ReconClass
	// Platform is what the platform's record says about the payment: the
	// decider's outcome kind (OutcomeIntermediate when nothing final).
	Platform OutcomeKind
	Action   ReconAction
	// Detail explains Class in a sentence (the deciding item's note, an
	// exception's detail).
	Detail string
}

// DecideReconciliation reconciles one payment: dep is its deposit (nil
// when Tiyn never issued the payment id), ops every operation the day's
// source lists for it, in source order. It is pure; the app applies the
// verdict.
//
//   - An operation id seen again within the payment is
//     duplicate_in_source (the first copy counts). When the copies
//     disagree (type, status, amount or time), the source cannot be
//     trusted about the payment: the decider becomes duplicate_in_source
//     too and nothing is applied.
//   - The platform's last sale (by completion time, then source order)
//     decides; a successful operation of another type completed after it
//     (a refund, a reversal) overrides it. Every other operation is
//     matched as superseded.
//   - No deposit: every operation is orphan_operation; a final decider is
//     settled (an unknown_payment exception, as for a callback).
//   - A final decider (success, decline, reversal) with another currency
//     or amount than the deposit: currency_mismatch, amount_mismatch,
//     settled (the settle path raises the exception, never a credit). A
//     decider that is not final says nothing about the amount.
//   - success: matched when the ledger credited it by this operation;
//     otherwise settled — healed for a pending, declined or expired
//     deposit, held_for_operator for a second success.
//   - decline: matched (settled, moving a pending or expired deposit to
//     declined); credited_without_platform_success when the ledger
//     credited (raised, never reversed).
//   - reversal: credited_without_platform_success when the ledger
//     credited; held_for_operator (settled: the reversal exception) when
//     it did not.
//   - not final: credited_without_platform_success when the ledger
//     credited, pending_both when it did not.
func DecideReconciliation(dep *Deposit, ops []PlatformOperation) ReconVerdict {
	v := ReconVerdict{Classes: make([]ReconClass, len(ops)), Notes: make([]string, len(ops)), Decider: -1,
		Platform: OutcomeIntermediate, Action: ActionNone}
	if len(ops) == 0 {
		if dep == nil {
			v.Class = ClassMatched
			return v
		}
		return decideLedgerOnly(*dep, time.Time{}, v)
	}
	// Duplicates: the first copy of each operation id counts.
	first := make(map[string]int, len(ops))
	conflict := false
	live := make([]int, 0, len(ops))
	for i, o := range ops {
		j, seen := first[o.OperationID]
		if !seen {
			first[o.OperationID] = i
			live = append(live, i)
			continue
		}
		v.Classes[i] = ClassDuplicateInSource
		v.Notes[i] = fmt.Sprintf("operation %s listed again (first at position %d)", truncate(o.OperationID, 40), ops[j].Seq)
		p := ops[j]
		if p.Type != o.Type || p.Status != o.Status || p.Amount != o.Amount || !p.CompletedAt.Equal(o.CompletedAt) {
			conflict = true
			v.Notes[i] += ", and the copies disagree"
		}
	}
	dec := decider(ops, live)
	v.Decider = dec
	for _, i := range live {
		if i != dec {
			v.Classes[i] = ClassMatched
			v.Notes[i] = fmt.Sprintf("superseded by operation %s", truncate(ops[dec].OperationID, 40))
		}
	}
	d := ops[dec]
	v.Platform = d.Kind()
	set := func(c ReconClass, a ReconAction, detail string) ReconVerdict {
		v.Class, v.Action, v.Detail = c, a, detail
		v.Classes[dec], v.Notes[dec] = c, detail
		return v
	}
	if conflict {
		return set(ClassDuplicateInSource, ActionNone, "the source lists an operation of this payment twice with different contents: nothing applied")
	}
	if dep == nil {
		for _, i := range live {
			v.Classes[i] = ClassOrphanOperation
			v.Notes[i] = "no deposit has this payment id"
		}
		return set(ClassOrphanOperation, ActionSettle, "no deposit has this payment id")
	}
	kind := v.Platform
	final := kind == OutcomeSuccess || kind == OutcomeDecline || kind == OutcomeReversal
	if final && d.Amount.currency != dep.Amount.currency {
		return set(ClassCurrencyMismatch, ActionSettle, fmt.Sprintf("platform currency %q, deposit currency %s",
			truncate(d.Amount.currency.code, 16), dep.Amount.currency))
	}
	if final && d.Amount.minor != dep.Amount.minor {
		return set(ClassAmountMismatch, ActionSettle, fmt.Sprintf("platform amount %s, deposit amount %s %s",
			d.Amount, dep.Amount, dep.Amount.currency))
	}
	credited := dep.Status == DepositSucceeded
	switch kind {
	case OutcomeSuccess:
		if credited && dep.OperationID == d.OperationID {
			return set(ClassMatched, ActionNone, "credited by this operation")
		}
		if credited {
			return set(ClassHeldForOperator, ActionSettle, fmt.Sprintf("operation %s succeeded, the deposit was credited by operation %s",
				truncate(d.OperationID, 40), truncate(dep.OperationID, 40)))
		}
		return set(ClassHealed, ActionSettle, fmt.Sprintf("successful sale, deposit %s", dep.Status))
	case OutcomeDecline:
		if credited {
			return set(ClassCreditedWithoutPlatformSuccess, ActionRaise, fmt.Sprintf("the platform's last sale is %q; the deposit is credited", truncate(d.Status, 40)))
		}
		if dep.Status == DepositDeclined {
			return set(ClassMatched, ActionNone, "declined on both sides")
		}
		return set(ClassMatched, ActionSettle, fmt.Sprintf("declined by the platform, deposit %s", dep.Status))
	case OutcomeReversal:
		if credited {
			return set(ClassCreditedWithoutPlatformSuccess, ActionRaise, fmt.Sprintf("the sale was taken back (%s %s); the deposit is credited",
				truncate(d.Type, 40), truncate(d.Status, 40)))
		}
		return set(ClassHeldForOperator, ActionSettle, fmt.Sprintf("the sale was taken back (%s %s), deposit %s",
			truncate(d.Type, 40), truncate(d.Status, 40), dep.Status))
	}
	if credited {
		return set(ClassCreditedWithoutPlatformSuccess, ActionRaise, fmt.Sprintf("the platform's last operation is %s %q, not final; the deposit is credited",
			truncate(d.Type, 40), truncate(d.Status, 40)))
	}
	return set(ClassPendingBoth, ActionNone, fmt.Sprintf("the platform's last operation is %s %q, not final; deposit %s",
		truncate(d.Type, 40), truncate(d.Status, 40), dep.Status))
}

// decider picks the operation that decides a payment among the live
// (first-copy) ones: the last sale, unless a successful operation of
// another type completed after it; with no sale, the last successful
// other operation, else the last operation.
func decider(ops []PlatformOperation, live []int) int {
	order := append([]int(nil), live...)
	sort.SliceStable(order, func(a, b int) bool {
		x, y := ops[order[a]], ops[order[b]]
		if !x.CompletedAt.Equal(y.CompletedAt) {
			return x.CompletedAt.Before(y.CompletedAt)
		}
		return x.Seq < y.Seq
	})
	sale, reversal := -1, -1
	for _, i := range order {
		switch {
		case ops[i].Type == OperationTypeSale:
			sale, reversal = i, -1 // a reversal before the last sale is superseded by it
		case ops[i].Kind() == OutcomeReversal:
			reversal = i
		}
	}
	switch {
	case reversal >= 0:
		return reversal
	case sale >= 0:
		return sale
	}
	return order[len(order)-1]
}

// DecideLedgerOnly reconciles a deposit of the day that the platform's
// record of the day does not mention (no operation for its payment id).
// What the ledger had at the day's end decides:
//
//   - credited before the day's end: credited_without_platform_success
//     (raised once per deposit), unless settledElsewhere — the platform's
//     successful sale is on record in another day's reconciliation (it
//     completed just before midnight, the callback came after): matched;
//   - still pending at the day's end (pending now, or settled only after
//     the day's end, when its operation belongs to a later day):
//     pending_both;
//   - declined or expired before the day's end: matched — nothing was
//     collected on either side.
func DecideLedgerOnly(dep Deposit, dayEnd time.Time, settledElsewhere bool) ReconVerdict {
	v := ReconVerdict{Decider: -1, Platform: OutcomeIntermediate, Action: ActionNone}
	if settledElsewhere && dep.Status == DepositSucceeded {
		v.Class, v.Detail = ClassMatched, "its successful sale is on record in another day's reconciliation"
		return v
	}
	return decideLedgerOnly(dep, dayEnd, v)
}

func decideLedgerOnly(dep Deposit, dayEnd time.Time, v ReconVerdict) ReconVerdict {
	afterDay := !dayEnd.IsZero() && !dep.SettledAt.Before(dayEnd)
	switch {
	case dep.Status == DepositPending:
		v.Class, v.Detail = ClassPendingBoth, "pending in the ledger, no platform operation in the day"
	case afterDay:
		v.Class, v.Detail = ClassPendingBoth, fmt.Sprintf("pending at the day's end (%s after it), no platform operation in the day", dep.Status)
	case dep.Status == DepositSucceeded:
		v.Class, v.Action = ClassCreditedWithoutPlatformSuccess, ActionRaise
		v.Detail = "credited in the ledger, no platform operation in the day"
	default:
		v.Class, v.Detail = ClassMatched, fmt.Sprintf("%s in the ledger, no platform operation in the day: nothing collected on either side", dep.Status)
	}
	return v
}

// ReconClassOfSettlement is the class of a deciding operation once the
// settle path applied it: a credit healed; a decline (or a replay without
// an exception) matched; an intermediate record pending_both; an exception
// (new, or the one a redelivery found) by its reason — amount and
// currency mismatches and unknown payments have their own classes, every
// other reason (a reversal, a second success, a closed account, the
// balance ceiling, another method) is held_for_operator.
func ReconClassOfSettlement(effect Effect, reason ExceptionReason) ReconClass {
	switch {
	case effect == EffectCredit:
		return ClassHealed
	case effect == EffectRecord:
		return ClassPendingBoth
	case reason.s == "":
		return ClassMatched
	case reason == ReasonAmountMismatch:
		return ClassAmountMismatch
	case reason == ReasonCurrencyMismatch:
		return ClassCurrencyMismatch
	case reason == ReasonUnknownPayment:
		return ClassOrphanOperation
	}
	return ClassHeldForOperator
}

// CreditedWithoutPlatformSuccessException is the exception a
// reconciliation raises for a credited deposit the platform's record does
// not back: once per deposit (the dedupe key names it), whatever day or
// run finds it again. Its evidence claims nothing, so it justifies no
// operator credit; an operator investigates and dismisses it, or corrects
// the ledger by a new transfer. Nothing is reversed automatically.
func CreditedWithoutPlatformSuccessException(id string, d Deposit, detail, evidence string, now time.Time) Exception {
	return Exception{
		ID: id, Reason: ReasonCreditedWithoutPlatformSuccess, Detail: detail,
		Channel: d.Channel, PaymentID: d.PaymentID, OperationID: d.OperationID, DepositID: d.ID, AccountID: d.AccountID,
		Status: d.Status.String(), Outcome: OutcomeIntermediate, Amount: NewAmount(0, d.Amount.currency),
		Evidence: evidence, DedupeKey: "recon:credited_without_platform_success:" + d.ID, State: ExceptionOpen, CreatedAt: now,
	}
}
