package domain

import (
	"fmt"
	"time"
)

// Status checks: when a deposit stays pending, Tiyn asks the payment
// platform about it (the Gate's payment status), because on the kassa24
// flow the customer's cash is already in the terminal when the deposit is
// opened: a pending deposit is money probably owed. These are the rules of
// when to ask and of what to do when the platform's threshold has passed.

// DefaultStatusCheckBackoff is how long to wait before asking about a
// pending deposit again, after the first check, the second, …: the last
// entry repeats. The first check comes when the deposit has been pending
// for the poller's "after" setting (5 minutes by default).
var DefaultStatusCheckBackoff = []time.Duration{15 * time.Minute, time.Hour, 4 * time.Hour, 12 * time.Hour}

// NextStatusCheck returns the wait before the next check of a deposit that
// has been checked checks times (checks >= 1), by backoff (the last entry
// repeats; an empty backoff means DefaultStatusCheckBackoff).
func NextStatusCheck(backoff []time.Duration, checks int) time.Duration {
	if len(backoff) == 0 {
		backoff = DefaultStatusCheckBackoff
	}
	i := min(max(checks-1, 0), len(backoff)-1)
	return backoff[i]
}

// ExpiryVerdict is what becomes of a deposit at its expiry.
type ExpiryVerdict struct{ s string }

// Expiry verdicts.
var (
	// ExpiryNotDue: the deposit is not pending, or not pending long enough.
	ExpiryNotDue = ExpiryVerdict{"not_due"}
	// ExpiryExpire: the platform answered about the payment, and its
	// latest answer was a decline or not final: the deposit expires.
	ExpiryExpire = ExpiryVerdict{"expired"}
	// ExpiryEscalate: the platform never answered a status check about
	// it: not expired silently, but raised as a status_unknown exception.
	ExpiryEscalate = ExpiryVerdict{"status_unknown"}
)

// String names the verdict.
func (v ExpiryVerdict) String() string { return v.s }

// DecideExpiry says what happens to d at now when deposits expire after
// expireAfter pending (the platform's threshold: Kassa24 declines a
// payment itself after 36 days) and answered says whether the platform
// ever answered a status check about it.
func (d Deposit) DecideExpiry(now time.Time, expireAfter time.Duration, answered bool) ExpiryVerdict {
	if d.Status != DepositPending || expireAfter <= 0 || now.Sub(d.CreatedAt) < expireAfter {
		return ExpiryNotDue
	}
	if answered {
		return ExpiryExpire
	}
	return ExpiryEscalate
}

// StatusUnknownException is the exception raised for a deposit that
// reached its expiry without any answer from the platform: its evidence
// claims nothing (no amount, no outcome), so no operator credit can be
// justified by it; a later answer, callback or reconciliation settles the
// deposit, and an operator who dismisses it expires the deposit. Raised
// once per deposit (the dedupe key names the deposit).
func StatusUnknownException(id string, d Deposit, checks int, now time.Time) Exception {
	return Exception{
		ID: id, Reason: ReasonStatusUnknown,
		Detail: fmt.Sprintf("deposit pending since %s; the platform never answered a status check about payment %s (%d checks)",
			d.CreatedAt.UTC().Format(time.RFC3339), d.PaymentID, checks),
		Channel: d.Channel, PaymentID: d.PaymentID, DepositID: d.ID, AccountID: d.AccountID,
		Status: "pending", Outcome: OutcomeIntermediate, Amount: NewAmount(0, d.Amount.currency),
		DedupeKey: "status_unknown:" + d.ID, State: ExceptionOpen, CreatedAt: now,
	}
}
