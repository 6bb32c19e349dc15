package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// writeSQLite writes a write set on SQLite with the plain statements, row
// by row: in process, a statement costs a few microseconds, less than
// building one statement for the set (docs/decisions/0004-sqlite-plain-statements.md). The order is the
// one a caller made them in: new deposits, their transitions, transfers
// (each moving its balances with a conditional update), the inbox rows.
func (t *tx) writeSQLite(ctx context.Context, w *writeSet) error {
	for _, d := range w.deposits {
		if _, err := t.exec(ctx, `INSERT INTO deposits (`+depositColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			depositArgs(d)...); err != nil {
			return fmt.Errorf("insert deposit %s: %w", d.PaymentID, err)
		}
	}
	for _, id := range w.transOrder {
		p := w.transitions[id]
		d := p.next
		n, err := t.exec(ctx, `UPDATE deposits SET status = ?, operation_id = ?, settled_at_us = ?, version = version + ?
			WHERE id = ? AND status = ?`, d.Status.String(), d.OperationID, us(d.SettledAt), p.n, d.ID, p.from.String())
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("deposit %s is no longer %s: %w", d.PaymentID, p.from, ports.ErrConflict)
		}
	}
	for i := range w.transfers {
		if err := t.writeTransferSQLite(ctx, &w.transfers[i]); err != nil {
			return err
		}
	}
	for _, r := range w.inbox {
		if err := t.db.QueryRowContext(ctx, `INSERT INTO callback_inbox (source, provider, method, project, payment_id, operation_id,
			status, body, outcome, deposit_id, exception_id, dedupe_key, received_at_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			RETURNING id`, inboxArgs(r)...).Scan(&r.ID); err != nil {
			return fmt.Errorf("insert inbox record for %s: %w", r.PaymentID, classify(err))
		}
	}
	return nil
}

// writeTransferSQLite writes the transfer row first (so a second credit
// for the same deposit fails on the unique index before any balance
// moves), then moves customer balances with conditional atomic updates,
// then inserts all postings in one multi-row statement. It fills in each
// customer posting's BalanceAfter (the caller's transfer shares the
// postings).
func (t *tx) writeTransferSQLite(ctx context.Context, tr *domain.Transfer) error {
	_, err := t.exec(ctx, `INSERT INTO transfers (id, kind, deposit_id, exception_id, credit_key, description, actor,
		created_at_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, tr.ID, tr.Kind.String(), nullable(tr.DepositID),
		nullable(tr.ExceptionID), nullable(tr.CreditKey), tr.Description, tr.Actor, us(tr.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert transfer %s (%s): %w", tr.ID, tr.Kind, err)
	}
	var values strings.Builder
	args := make([]any, 0, 6*len(tr.Postings))
	for i := range tr.Postings {
		p := &tr.Postings[i]
		var after any // NULL for system accounts
		if !domain.IsSystemAccount(p.AccountID) {
			balance, err := t.moveBalanceSQLite(ctx, p.AccountID, p.Amount, tr)
			if err != nil {
				return err
			}
			b := domain.NewAmount(balance, p.Amount.Currency())
			p.BalanceAfter = &b
			after = balance
		}
		if i > 0 {
			values.WriteString(", ")
		}
		values.WriteString("(?, ?, ?, ?, ?, ?)")
		args = append(args, tr.ID, p.AccountID, p.Amount.Minor(), p.Amount.Currency().Code(), after, us(tr.CreatedAt))
	}
	if _, err := t.exec(ctx, `INSERT INTO postings (transfer_id, account_id, amount_minor, currency, balance_after_minor,
		created_at_us) VALUES `+values.String(), args...); err != nil {
		return fmt.Errorf("insert postings of %s: %w", tr.ID, err)
	}
	return nil
}

func (t *tx) moveBalanceSQLite(ctx context.Context, accountID string, amount domain.Amount, tr *domain.Transfer) (int64, error) {
	lo, hi, ok := balanceBounds(amount.Minor())
	if !ok {
		return 0, fmt.Errorf("transfer %s: %w: posting %s on %s is beyond the ceiling", tr.ID, domain.ErrBalanceCeiling, amount, accountID)
	}
	var balance int64
	err := t.db.QueryRowContext(ctx, `UPDATE accounts SET balance_minor = balance_minor + ?, version = version + 1,
		updated_at_us = ? WHERE id = ? AND currency = ? AND status <> 'closed' AND balance_minor >= ? AND balance_minor <= ?
		RETURNING balance_minor`,
		amount.Minor(), us(tr.CreatedAt), accountID, amount.Currency().Code(), lo, hi).Scan(&balance)
	if err == nil {
		return balance, nil
	}
	if err = classify(err); !errors.Is(err, ports.ErrNotFound) {
		return 0, fmt.Errorf("transfer %s on %s: %w", tr.ID, accountID, err)
	}
	// No row matched: find out why, for a precise error.
	return 0, fmt.Errorf("transfer %s: %w", tr.ID, t.diagnoseBalance(ctx, accountID, amount))
}
