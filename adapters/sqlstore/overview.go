package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// The overview's aggregates (ports.OverviewReader). Each is one query;
// none runs in a transaction.

// CreditTotals counts and sums the customer side of the credit transfers
// posted in [from, to). The customer side is the posting that carries a
// balance after it; its amount is positive. Sums are split (splitSums), so
// they are exact on both dialects whatever the rows hold.
func (s *Store) CreditTotals(ctx context.Context, from, to time.Time) ([]ports.CreditTotal, error) {
	rows, err := s.reader.db.QueryContext(ctx, `SELECT p.currency, COUNT(*), `+splitSums("p.amount_minor", "s")+`
		FROM postings p JOIN transfers t ON t.id = p.transfer_id
		WHERE t.kind IN ('deposit_credit', 'exception_credit') AND p.balance_after_minor IS NOT NULL
		AND p.created_at_us >= ? AND p.created_at_us < ?
		GROUP BY p.currency ORDER BY p.currency`, us(from), us(to))
	if err != nil {
		return nil, classify(err)
	}
	return collect(rows, func(row interface{ Scan(...any) error }) (ports.CreditTotal, error) {
		var (
			ct    ports.CreditTotal
			code  string
			h, l  int64
			count int64
		)
		if err := row.Scan(&code, &count, &h, &l); err != nil {
			return ct, classify(err)
		}
		c, err := currency(code)
		if err != nil {
			return ct, err
		}
		sum := bigSum(h, l)
		if !sum.IsInt64() {
			return ct, fmt.Errorf("credit totals: the sum of %s credits %s does not fit an amount", code, sum)
		}
		ct.Currency, ct.Count, ct.Total = c, count, domain.NewAmount(sum.Int64(), c)
		return ct, nil
	})
}

// PendingAges counts the pending deposits, in total and created before
// each moment, over the partial index deposits_pending_idx: one pass over
// the pending deposits only.
func (s *Store) PendingAges(ctx context.Context, before []time.Time) (ports.PendingAges, error) {
	var (
		out  ports.PendingAges
		cols strings.Builder
		args []any
	)
	for _, t := range before {
		cols.WriteString(", COALESCE(SUM(CASE WHEN created_at_us < ? THEN 1 ELSE 0 END), 0)")
		args = append(args, us(t))
	}
	var oldest *int64
	out.Before = make([]int64, len(before))
	dest := []any{&out.Count, &oldest}
	for i := range out.Before {
		dest = append(dest, &out.Before[i])
	}
	err := s.reader.db.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at_us)`+cols.String()+
		` FROM deposits WHERE status = 'pending'`, args...).Scan(dest...)
	if err != nil {
		return ports.PendingAges{}, classify(err)
	}
	if oldest != nil {
		out.Oldest = fromUS(*oldest)
	}
	return out, nil
}

// ExceptionCounts groups the waiting exceptions over exceptions_state_idx.
func (s *Store) ExceptionCounts(ctx context.Context) ([]ports.ExceptionCount, error) {
	rows, err := s.reader.db.QueryContext(ctx, `SELECT state, reason, COUNT(*) FROM exceptions
		WHERE state IN ('open', 'proposed') GROUP BY state, reason ORDER BY state, reason`)
	if err != nil {
		return nil, classify(err)
	}
	return collect(rows, func(row interface{ Scan(...any) error }) (ports.ExceptionCount, error) {
		var (
			ec            ports.ExceptionCount
			state, reason string
		)
		if err := row.Scan(&state, &reason, &ec.Count); err != nil {
			return ec, classify(err)
		}
		var err error
		if ec.State, err = domain.ParseExceptionStatus(state); err != nil {
			return ec, fmt.Errorf("stored row: %w", err)
		}
		if ec.Reason, err = domain.ParseExceptionReason(reason); err != nil {
			return ec, fmt.Errorf("stored row: %w", err)
		}
		return ec, nil
	})
}
