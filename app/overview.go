package app

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// MaxOverviewAges bounds the age split of the pending deposits: each age
// is one more column of one query.
const MaxOverviewAges = 8

// Overview answers the console's first page (see ports.Ledger): three
// aggregate reads, none inside a transaction (nothing decides on them).
func (s *Service) Overview(ctx context.Context, q ports.OverviewQuery) (ports.Overview, error) {
	if q.Now.IsZero() {
		q.Now = s.clock.Now()
	}
	if len(q.PendingAges) > MaxOverviewAges {
		return ports.Overview{}, fmt.Errorf("%w: at most %d pending ages", domain.ErrInvalidInput, MaxOverviewAges)
	}
	if !slices.IsSorted(q.PendingAges) || slices.ContainsFunc(q.PendingAges, func(d time.Duration) bool { return d <= 0 }) {
		return ports.Overview{}, fmt.Errorf("%w: pending ages must be positive and ascending", domain.ErrInvalidInput)
	}
	if !q.DayEnd.After(q.DayStart) {
		return ports.Overview{}, fmt.Errorf("%w: the day must end after it starts", domain.ErrInvalidInput)
	}
	out := ports.Overview{AsOf: q.Now}
	var err error
	if out.Credits, err = s.store.CreditTotals(ctx, q.DayStart, q.DayEnd); err != nil {
		return out, err
	}
	before := make([]time.Time, len(q.PendingAges))
	for i, age := range q.PendingAges {
		before[i] = q.Now.Add(-age)
	}
	ages, err := s.store.PendingAges(ctx, before)
	if err != nil {
		return out, err
	}
	if len(ages.Before) != len(before) {
		return out, fmt.Errorf("pending ages: the store answered %d counts for %d ages", len(ages.Before), len(before))
	}
	// older[i] counts those at least PendingAges[i] old; the buckets are
	// the differences, youngest first.
	p := ports.PendingOverview{Count: ages.Count, Oldest: ages.Oldest, Ages: slices.Clone(q.PendingAges)}
	younger := ages.Count
	for _, older := range ages.Before {
		p.Buckets = append(p.Buckets, younger-older)
		younger = older
	}
	p.Buckets = append(p.Buckets, younger)
	out.Pending = p
	if out.Exceptions, err = s.store.ExceptionCounts(ctx); err != nil {
		return out, err
	}
	return out, nil
}

// DepositCredit returns the transfer that credited a deposit (see
// ports.Ledger).
func (s *Service) DepositCredit(ctx context.Context, depositID string) (string, error) {
	return s.store.DepositCredit(ctx, depositID)
}
