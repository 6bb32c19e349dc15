package sqlstore

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/tiyn/tiyn/ports"
)

// The status poller's rows (status_checks, migration 0003): one per
// pending deposit it asked about. A claim is a conditional upsert, the same
// statement on both dialects: of several instances claiming at once on one
// PostgreSQL, the first to write a deposit's row wins it; the others'
// upserts find a live claim (claimed_until_us in the future) and skip the
// row (READ COMMITTED re-checks the WHERE on the row the winner committed).
// SQLite's single writer makes the statement atomic by itself.

const statusCheckColumns = `COALESCE(c.checks, 0), COALESCE(c.next_at_us, 0), COALESCE(c.last_at_us, 0),
	COALESCE(c.last_result, ''), COALESCE(c.answered, FALSE), COALESCE(c.escalated_at_us, 0)`

// claimStatusChecksSQL claims the due deposits. The order is the order they
// fell due: a deposit never checked is due when it is CreatedBefore old,
// i.e. at created_at_us + (Now - CreatedBefore).
const claimStatusChecksSQL = `INSERT INTO status_checks (deposit_id, claimed_until_us)
SELECT d.id, ? FROM deposits d LEFT JOIN status_checks c ON c.deposit_id = d.id
WHERE d.status = 'pending' AND d.created_at_us < ?
	AND (c.deposit_id IS NULL OR (c.next_at_us <= ? AND c.claimed_until_us <= ?))
ORDER BY COALESCE(c.next_at_us, d.created_at_us + ?), d.id
LIMIT ?
ON CONFLICT (deposit_id) DO UPDATE SET claimed_until_us = excluded.claimed_until_us
	WHERE status_checks.next_at_us <= ? AND status_checks.claimed_until_us <= ?
RETURNING deposit_id`

// statusCheckScan returns the scan destinations of depositColumns followed
// by statusCheckColumns and the function that builds the record.
func statusCheckScan() ([]any, func() (ports.StatusCheck, error)) {
	dd, depFinish := depositScan()
	var (
		c                       ports.StatusCheck
		next, last, escalatedAt int64
		answered                bool
	)
	dest := append(dd, &c.Checks, &next, &last, &c.Last, &answered, &escalatedAt)
	return dest, func() (ports.StatusCheck, error) {
		d, err := depFinish()
		if err != nil {
			return ports.StatusCheck{}, err
		}
		c.Deposit = d
		c.NextAt, c.LastAt = fromUS(next), fromUS(last)
		c.Answered, c.Escalated = answered, escalatedAt != 0
		return c, nil
	}
}

func scanStatusCheckRow(row interface{ Scan(...any) error }) (ports.StatusCheck, error) {
	dest, finish := statusCheckScan()
	if err := row.Scan(dest...); err != nil {
		return ports.StatusCheck{}, classify(err)
	}
	return finish()
}

var statusCheckSelect = `SELECT ` + prefixed("d", depositColumns) + `, ` + statusCheckColumns + `
	FROM deposits d LEFT JOIN status_checks c ON c.deposit_id = d.id`

func (r reader) StatusCheck(ctx context.Context, depositID string) (ports.StatusCheck, error) {
	c, err := scanStatusCheckRow(r.db.QueryRowContext(ctx, statusCheckSelect+` WHERE d.id = ?`, depositID))
	if err != nil {
		return c, fmt.Errorf("deposit %q: %w", depositID, err)
	}
	return c, nil
}

func (r reader) ListExpiring(ctx context.Context, q ports.ExpiryQuery) ([]ports.StatusCheck, error) {
	rows, err := r.db.QueryContext(ctx, statusCheckSelect+`
		WHERE d.status = 'pending' AND d.created_at_us < ? AND d.id > ? AND COALESCE(c.escalated_at_us, 0) = 0
		ORDER BY d.id LIMIT ?`, us(q.CreatedBefore), q.AfterID, ports.ClampLimit(q.Limit, 100))
	if err != nil {
		return nil, classify(err)
	}
	return collect(rows, scanStatusCheckRow)
}

func (r reader) OldestPending(ctx context.Context) (time.Time, bool, error) {
	var at *int64
	// MIN over the partial index deposits_pending_idx: one index probe.
	if err := r.db.QueryRowContext(ctx, `SELECT MIN(created_at_us) FROM deposits WHERE status = 'pending'`).Scan(&at); err != nil {
		return time.Time{}, false, classify(err)
	}
	if at == nil {
		return time.Time{}, false, nil
	}
	return fromUS(*at), true, nil
}

func (t *tx) StatusCheck(ctx context.Context, depositID string) (ports.StatusCheck, error) {
	if err := t.flush(ctx); err != nil {
		return ports.StatusCheck{}, err
	}
	return t.reader.StatusCheck(ctx, depositID)
}

func (t *tx) ListExpiring(ctx context.Context, q ports.ExpiryQuery) ([]ports.StatusCheck, error) {
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	return t.reader.ListExpiring(ctx, q)
}

func (t *tx) OldestPending(ctx context.Context) (time.Time, bool, error) {
	if err := t.flush(ctx); err != nil {
		return time.Time{}, false, err
	}
	return t.reader.OldestPending(ctx)
}

func (t *tx) ClaimStatusChecks(ctx context.Context, q ports.ClaimStatusChecks) ([]ports.StatusCheck, error) {
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		return nil, nil
	}
	now, lease := us(q.Now), us(q.LeaseUntil)
	dueBy := now // next_at_us <= dueBy
	if q.AnyTime {
		dueBy = math.MaxInt64
	}
	rows, err := t.db.QueryContext(ctx, claimStatusChecksSQL, lease, us(q.CreatedBefore), dueBy, now,
		now-us(q.CreatedBefore), min(q.Limit, ports.MaxPageSize), dueBy, now)
	if err != nil {
		return nil, fmt.Errorf("claim status checks: %w", classify(err))
	}
	ids, err := collect(rows, func(row interface{ Scan(...any) error }) (string, error) {
		var id string
		return id, classify(row.Scan(&id))
	})
	if err != nil {
		return nil, fmt.Errorf("claim status checks: %w", err)
	}
	out := make([]ports.StatusCheck, 0, len(ids))
	for _, id := range ids {
		c, err := t.reader.StatusCheck(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func (t *tx) RecordStatusCheck(ctx context.Context, r ports.StatusCheckResult) error {
	if err := t.flush(ctx); err != nil {
		return err
	}
	// An upsert: a check made without a claim (tiyn reconcile pending on
	// a deposit no poller touched yet) still leaves its record.
	_, err := t.exec(ctx, `INSERT INTO status_checks (deposit_id, checks, next_at_us, last_at_us, last_result, answered, claimed_until_us)
		VALUES (?, 1, ?, ?, ?, ?, 0)
		ON CONFLICT (deposit_id) DO UPDATE SET checks = status_checks.checks + 1, next_at_us = excluded.next_at_us,
			last_at_us = excluded.last_at_us, last_result = excluded.last_result,
			answered = status_checks.answered OR excluded.answered, claimed_until_us = 0`,
		r.DepositID, us(r.NextAt), us(r.At), truncateResult(r.Result), r.Answered)
	if err != nil {
		return fmt.Errorf("record status check of deposit %s: %w", r.DepositID, err)
	}
	return nil
}

func (t *tx) MarkEscalated(ctx context.Context, depositID string, at time.Time) error {
	if err := t.flush(ctx); err != nil {
		return err
	}
	_, err := t.exec(ctx, `INSERT INTO status_checks (deposit_id, escalated_at_us) VALUES (?, ?)
		ON CONFLICT (deposit_id) DO UPDATE SET escalated_at_us = excluded.escalated_at_us`, depositID, us(at))
	if err != nil {
		return fmt.Errorf("mark deposit %s escalated: %w", depositID, err)
	}
	return nil
}

// truncateResult bounds a result word from an adapter.
func truncateResult(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}
