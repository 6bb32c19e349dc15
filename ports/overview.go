package ports

import (
	"context"
	"time"

	"github.com/tiyn/tiyn/domain"
)

// OverviewReader is the store's side of Ledger.Overview: a handful of
// aggregate reads, each one query, for the page an operator opens first.
// Every Store implements it; it is not part of a transaction's Reader
// (nothing decides on it).
type OverviewReader interface {
	// CreditTotals counts and sums the credits (deposit_credit and
	// exception_credit transfers, on the customer's side) posted in
	// [from, to), per currency, ordered by currency code. The sums are
	// exact (they cannot overflow).
	CreditTotals(ctx context.Context, from, to time.Time) ([]CreditTotal, error)
	// PendingAges counts the pending deposits: all of them, and for each
	// of before (in any order) those created before it, in that order;
	// with the creation time of the oldest (zero when none is pending).
	PendingAges(ctx context.Context, before []time.Time) (PendingAges, error)
	// ExceptionCounts counts the exceptions still waiting for an operator
	// (open and proposed), per state and reason, ordered by state then
	// reason.
	ExceptionCounts(ctx context.Context) ([]ExceptionCount, error)
}

// CreditTotal is the credits of one currency.
type CreditTotal struct {
	Currency domain.Currency
	Count    int64
	Total    domain.Amount
}

// PendingAges is the pending deposits by age.
type PendingAges struct {
	Count  int64
	Oldest time.Time // zero when none is pending
	// Before holds, for each moment of the query, how many pending
	// deposits were created before it.
	Before []int64
}

// ExceptionCount is the number of waiting exceptions of one state and
// reason.
type ExceptionCount struct {
	State  domain.ExceptionStatus
	Reason domain.ExceptionReason
	Count  int64
}

// OverviewQuery asks for an overview as of Now, with the credits of the
// business day [DayStart, DayEnd) and pending deposits split at the ages
// in PendingAges (e.g. 1h, 24h, 7d), ascending.
type OverviewQuery struct {
	Now              time.Time
	DayStart, DayEnd time.Time
	PendingAges      []time.Duration
}

// Overview is what an operator's console shows first: the day's credits,
// the pending deposits by age and the exceptions waiting, by reason.
type Overview struct {
	AsOf    time.Time
	Credits []CreditTotal
	Pending PendingOverview
	// Exceptions are the open and proposed exceptions by state and reason.
	Exceptions []ExceptionCount
}

// PendingOverview is the pending deposits split by age: Buckets[i] counts
// those younger than Ages[i] (and at least Ages[i-1] old); the last bucket,
// one more than Ages, those at least the oldest age old.
type PendingOverview struct {
	Count   int64
	Oldest  time.Time // zero when none is pending
	Ages    []time.Duration
	Buckets []int64
}
