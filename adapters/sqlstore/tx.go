package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// tx implements ports.Tx on a bun transaction.
type tx struct {
	reader
	// d collects deferred writes in a group-commit batch; nil runs every
	// write at once.
	d *deferred
	// views and accounts hold the settle views and the accounts read
	// ahead for the batch (readahead.go) until the transaction writes a
	// row they hold; hits counts those used.
	views    map[viewKey]ports.SettleView
	accounts map[acctKey]domain.Account
	hits     int
}

var _ ports.Tx = (*tx)(nil)

func (t *tx) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := t.db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, classify(err)
	}
	n, err := res.RowsAffected()
	return n, classify(err)
}

func (t *tx) InsertAccount(ctx context.Context, a domain.Account) error {
	_, err := t.exec(ctx, `INSERT INTO accounts (`+accountColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID(), a.CustomerID(), a.AdditionalCustomerID(), a.Currency().Code(), a.Status().String(),
		a.Balance().Minor(), a.Version(), us(a.CreatedAt()), us(a.UpdatedAt()))
	if err != nil {
		return fmt.Errorf("insert account for customer %q: %w", a.CustomerID(), err)
	}
	return nil
}

func (t *tx) UpdateAccountStatus(ctx context.Context, a domain.Account, fromVersion int64) error {
	if err := t.flush(ctx); err != nil {
		return err
	}
	t.dropViews()
	n, err := t.exec(ctx, `UPDATE accounts SET status = ?, version = ?, updated_at_us = ? WHERE id = ? AND version = ?`,
		a.Status().String(), a.Version(), us(a.UpdatedAt()), a.ID(), fromVersion)
	if err != nil {
		return err
	}
	if n == 0 {
		if _, err := t.AccountByID(ctx, a.ID()); err != nil {
			return err
		}
		return fmt.Errorf("account %s changed since version %d: %w", a.ID(), fromVersion, ports.ErrConflict)
	}
	return nil
}

func (t *tx) InsertDeposit(ctx context.Context, d domain.Deposit) error {
	if t.d != nil && t.d.err == nil {
		key := depositRowKey{d.Channel.Provider, d.Channel.Project, d.PaymentID}
		if !t.d.newDeposits[key] {
			t.d.deposits = append(t.d.deposits, d)
			t.d.newDeposits[key] = true
			return nil
		}
		// A second insert of one payment id in the batch: at once, after
		// a flush, where the unique key refuses it.
		if err := t.flush(ctx); err != nil {
			return err
		}
	}
	_, err := t.exec(ctx, `INSERT INTO deposits (`+depositColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		depositArgs(d)...)
	if err != nil {
		return fmt.Errorf("insert deposit %s: %w", d.PaymentID, err)
	}
	return nil
}

func depositArgs(d domain.Deposit) []any {
	return []any{d.ID, d.Channel.Provider, d.Channel.Method, d.Channel.Project, d.PaymentID, d.AccountID, d.CustomerID,
		d.Amount.Minor(), d.Amount.Currency().Code(), d.Status.String(), d.OperationID, d.Version,
		us(d.CreatedAt), us(d.SettledAt)}
}

// TransitionDeposit is the conditional update at the heart of exactly-once
// crediting: it changes the row only if its status is still the one the
// decision was made on.
func (t *tx) TransitionDeposit(ctx context.Context, d domain.Deposit, from domain.DepositStatus) error {
	if t.d != nil && t.d.err == nil {
		// The flush's parts share one snapshot: a deposit it inserts
		// cannot also be transitioned by it. Write the insert first.
		if t.d.insertsDeposit(d.Channel, d.PaymentID) {
			if err := t.flush(ctx); err != nil {
				return err
			}
		}
		return t.d.transition(d, from)
	}
	t.dropViews()
	n, err := t.exec(ctx, `UPDATE deposits SET status = ?, operation_id = ?, settled_at_us = ?, version = version + 1
		WHERE id = ? AND status = ?`, d.Status.String(), d.OperationID, us(d.SettledAt), d.ID, from.String())
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("deposit %s is no longer %s: %w", d.PaymentID, from, ports.ErrConflict)
	}
	return nil
}

// ApplyTransfer writes the transfer row first (so a second credit for the
// same deposit fails on the unique index before any balance moves), then
// moves customer balances with conditional atomic updates, then inserts all
// postings in one multi-row statement.
func (t *tx) ApplyTransfer(ctx context.Context, tr domain.Transfer) (domain.Transfer, error) {
	if err := tr.Validate(); err != nil {
		return tr, err
	}
	if t.d != nil && t.d.err == nil && deferrable(tr) && t.d.sameCurrency(tr) {
		tr.Postings = slices.Clone(tr.Postings)
		t.d.addTransfer(tr)
		return tr, nil
	}
	if err := t.flush(ctx); err != nil {
		return tr, err
	}
	t.dropViews()
	_, err := t.exec(ctx, `INSERT INTO transfers (id, kind, deposit_id, exception_id, credit_key, description, actor,
		created_at_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, tr.ID, tr.Kind.String(), nullable(tr.DepositID),
		nullable(tr.ExceptionID), nullable(tr.CreditKey), tr.Description, tr.Actor, us(tr.CreatedAt))
	if err != nil {
		return tr, fmt.Errorf("insert transfer %s (%s): %w", tr.ID, tr.Kind, err)
	}
	postings := make([]domain.Posting, len(tr.Postings))
	copy(postings, tr.Postings)
	var values strings.Builder
	args := make([]any, 0, 6*len(postings))
	for i := range postings {
		p := &postings[i]
		var after any // NULL for system accounts
		if !domain.IsSystemAccount(p.AccountID) {
			balance, err := t.moveBalance(ctx, p.AccountID, p.Amount, tr)
			if err != nil {
				return tr, err
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
		return tr, fmt.Errorf("insert postings of %s: %w", tr.ID, err)
	}
	tr.Postings = postings
	return tr, nil
}

func (t *tx) moveBalance(ctx context.Context, accountID string, amount domain.Amount, tr domain.Transfer) (int64, error) {
	var balance int64
	lo, hi, ok := balanceBounds(amount.Minor())
	if !ok {
		return 0, fmt.Errorf("transfer %s: %w: posting %s on %s is beyond the ceiling", tr.ID, domain.ErrBalanceCeiling, amount, accountID)
	}
	err := t.db.QueryRowContext(ctx, `UPDATE accounts SET balance_minor = balance_minor + ?, version = version + 1,
		updated_at_us = ? WHERE id = ? AND currency = ? AND status <> 'closed' AND balance_minor >= ? AND balance_minor <= ?
		RETURNING balance_minor`,
		amount.Minor(), us(tr.CreatedAt), accountID, amount.Currency().Code(), lo, hi).Scan(&balance)
	if err == nil {
		return balance, nil
	}
	err = classify(err)
	if !errors.Is(err, ports.ErrNotFound) {
		return 0, fmt.Errorf("transfer %s on %s: %w", tr.ID, accountID, err)
	}
	// No row matched: find out why, for a precise error.
	acc, lookErr := t.AccountByID(ctx, accountID)
	switch {
	case lookErr != nil:
		return 0, fmt.Errorf("transfer %s: %w", tr.ID, lookErr)
	case acc.Currency() != amount.Currency():
		return 0, fmt.Errorf("transfer %s: %w: account %s is %s, posting is %s", tr.ID, domain.ErrCurrencyMismatch,
			accountID, acc.Currency(), amount.Currency())
	case acc.Status() == domain.AccountClosed:
		// The caller decided on an account read before it was closed
		// (another transaction closed it since): a lost race, which the
		// caller retries and then decides on the closed account.
		return 0, fmt.Errorf("transfer %s: account %s was closed since it was read: %w", tr.ID, accountID, ports.ErrConflict)
	case amount.IsPositive():
		// The credit would pass the balance ceiling. The caller checks
		// the ceiling on the balance it read (domain.Account.CanCredit),
		// so another credit came in since: a lost race, retried and then
		// decided on the balance as it is.
		return 0, fmt.Errorf("transfer %s: %w: account %s holds %s, credit %s: %w", tr.ID, domain.ErrBalanceCeiling,
			accountID, acc.Balance(), amount, ports.ErrConflict)
	}
	return 0, fmt.Errorf("transfer %s: %w: account %s holds %s, posting %s", tr.ID, domain.ErrInsufficientFunds,
		accountID, acc.Balance(), amount)
}

// balanceBounds returns the range a balance must lie in for delta to be
// added to it: the result stays within 0..domain.MaxBalanceMinor, and no
// SQL arithmetic can overflow (the bounds are computed here, in range). ok
// is false for a delta that no balance can take.
func balanceBounds(delta int64) (lo, hi int64, ok bool) {
	switch {
	case delta > domain.MaxBalanceMinor || delta < -domain.MaxBalanceMinor:
		return 0, 0, false
	case delta >= 0:
		return 0, domain.MaxBalanceMinor - delta, true
	}
	return -delta, math.MaxInt64, true
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (t *tx) InsertInbox(ctx context.Context, r *ports.InboxRecord) error {
	if t.d != nil && t.d.err == nil {
		t.d.inbox = append(t.d.inbox, r)
		t.d.seen[r.DedupeKey] = true
		return nil
	}
	t.dropViews()
	err := t.db.QueryRowContext(ctx, `INSERT INTO callback_inbox (provider, method, project, payment_id, operation_id,
		status, body, outcome, deposit_id, exception_id, dedupe_key, received_at_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id`, inboxArgs(r)...).Scan(&r.ID)
	if err != nil {
		return fmt.Errorf("insert inbox record for %s: %w", r.PaymentID, classify(err))
	}
	return nil
}

// Reads that see deferred writes (deferred.go): overlaid, or after a flush.

func (t *tx) AccountByID(ctx context.Context, id string) (domain.Account, error) {
	a, err := t.reader.AccountByID(ctx, id)
	if err != nil || t.d == nil {
		return a, err
	}
	return t.d.overlay(a)
}

func (t *tx) AccountByCustomer(ctx context.Context, customerID string, c domain.Currency) (domain.Account, error) {
	a, ok := t.accounts[acctKey{customerID, c.Code()}]
	if ok {
		t.hits++
	} else {
		var err error
		if a, err = t.reader.AccountByCustomer(ctx, customerID, c); err != nil {
			return a, err
		}
	}
	if t.d == nil {
		return a, nil
	}
	return t.d.overlay(a)
}

func (t *tx) InboxSeen(ctx context.Context, dedupeKey string) (bool, error) {
	if t.d != nil && t.d.seen[dedupeKey] {
		return true, nil
	}
	return t.reader.InboxSeen(ctx, dedupeKey)
}

func (t *tx) SettleView(ctx context.Context, ch domain.Channel, paymentID, dedupeKey string) (ports.SettleView, error) {
	if t.d.insertsDeposit(ch, paymentID) {
		if err := t.flush(ctx); err != nil {
			return ports.SettleView{}, err
		}
	}
	v, ok := t.views[settleKey(ch, paymentID, dedupeKey)]
	if ok {
		t.hits++
	} else {
		var err error
		if v, err = t.reader.SettleView(ctx, ch, paymentID, dedupeKey); err != nil {
			return v, err
		}
	}
	if t.d == nil {
		return v, nil
	}
	var err error
	v.Seen = v.Seen || t.d.seen[dedupeKey]
	if v.Found {
		v.Deposit = t.d.overlayDeposit(v.Deposit)
		v.Account, err = t.d.overlay(v.Account)
	}
	return v, err
}

func (t *tx) DepositByPaymentID(ctx context.Context, ch domain.Channel, paymentID string) (domain.Deposit, error) {
	if t.d.insertsDeposit(ch, paymentID) {
		if err := t.flush(ctx); err != nil {
			return domain.Deposit{}, err
		}
	}
	dep, err := t.reader.DepositByPaymentID(ctx, ch, paymentID)
	if err != nil || t.d == nil {
		return dep, err
	}
	return t.d.overlayDeposit(dep), nil
}

func (t *tx) ListDeposits(ctx context.Context, q ports.DepositQuery) ([]domain.Deposit, error) {
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	return t.reader.ListDeposits(ctx, q)
}

func (t *tx) ListAccounts(ctx context.Context, q ports.AccountQuery) ([]domain.Account, error) {
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	return t.reader.ListAccounts(ctx, q)
}

func (t *tx) Statement(ctx context.Context, q ports.StatementQuery) ([]ports.StatementLine, error) {
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	return t.reader.Statement(ctx, q)
}

func (t *tx) BalanceAt(ctx context.Context, accountID string, at time.Time) (int64, error) {
	if err := t.flush(ctx); err != nil {
		return 0, err
	}
	return t.reader.BalanceAt(ctx, accountID, at)
}

func (t *tx) DerivedBalance(ctx context.Context, accountID string) (int64, error) {
	if err := t.flush(ctx); err != nil {
		return 0, err
	}
	return t.reader.DerivedBalance(ctx, accountID)
}

func (t *tx) ListInbox(ctx context.Context, q ports.InboxQuery) ([]ports.InboxRecord, error) {
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	return t.reader.ListInbox(ctx, q)
}

func (t *tx) CheckLedger(ctx context.Context) (ports.LedgerCheck, error) {
	if err := t.flush(ctx); err != nil {
		return ports.LedgerCheck{}, err
	}
	return t.reader.CheckLedger(ctx)
}

// InsertException relies on the dedupe key's unique constraint: ON CONFLICT
// DO NOTHING, then read whichever row holds the key.
func (t *tx) InsertException(ctx context.Context, e domain.Exception) (domain.Exception, bool, error) {
	n, err := t.exec(ctx, `INSERT INTO exceptions (id, reason, detail, provider, method, project, payment_id, operation_id,
		callback_status, outcome, deposit_id, account_id, amount_minor, currency, max_credit_minor, evidence, dedupe_key,
		state, created_at_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING`,
		e.ID, e.Reason.String(), e.Detail, e.Channel.Provider, e.Channel.Method, e.Channel.Project, e.PaymentID,
		e.OperationID, e.Status, e.Outcome.String(), e.DepositID, e.AccountID, e.Amount.Minor(), e.Amount.Currency().Code(),
		e.MaxCredit, []byte(e.Evidence), e.DedupeKey, e.State.String(), us(e.CreatedAt))
	if err != nil {
		return e, false, fmt.Errorf("insert exception for %s: %w", e.PaymentID, err)
	}
	if n == 1 {
		return e, true, nil
	}
	stored, err := scanException(t.db.QueryRowContext(ctx, `SELECT `+exceptionColumns+` FROM exceptions WHERE dedupe_key = ?`, e.DedupeKey))
	if err != nil {
		return e, false, fmt.Errorf("read exception for %s: %w", e.PaymentID, err)
	}
	return stored, false, nil
}

func (t *tx) UpdateException(ctx context.Context, e domain.Exception, from domain.ExceptionStatus) error {
	var (
		p domain.Proposal
		r domain.Resolution
	)
	if e.Proposal != nil {
		p = *e.Proposal
	}
	if e.Resolution != nil {
		r = *e.Resolution
	}
	n, err := t.exec(ctx, `UPDATE exceptions SET state = ?, proposed_account_id = ?, proposed_amount_minor = ?,
		proposed_note = ?, proposed_by = ?, proposed_at_us = ?, resolution_credit = ?, resolution_account_id = ?,
		resolution_amount_minor = ?, resolution_transfer_id = ?, resolution_note = ?, resolved_by = ?, resolved_at_us = ?
		WHERE id = ? AND state = ?`, e.State.String(), p.AccountID, p.Amount.Minor(), p.Note, p.Actor, us(p.At),
		r.Credit, r.AccountID, r.Amount.Minor(), r.TransferID, r.Note, r.Actor, us(r.ResolvedAt), e.ID, from.String())
	if err != nil {
		return err
	}
	if n == 0 {
		if _, err := t.ExceptionByID(ctx, e.ID); err != nil {
			return err
		}
		return fmt.Errorf("exception %s is no longer %s: %w", e.ID, from, ports.ErrConflict)
	}
	return nil
}

func (t *tx) InsertDebit(ctx context.Context, r ports.DebitRecord) error {
	_, err := t.exec(ctx, `INSERT INTO debits (account_id, idempotency_key, request_hash, transfer_id, amount_minor,
		currency, description, balance_after_minor, actor, created_at_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.AccountID, r.IdempotencyKey, r.RequestHash, r.TransferID, r.Amount.Minor(), r.Amount.Currency().Code(),
		r.Description, r.BalanceAfter.Minor(), r.Actor, us(r.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert debit %q: %w", r.IdempotencyKey, err)
	}
	return nil
}

func (t *tx) AppendAudit(ctx context.Context, e ports.AuditEntry) error {
	_, err := t.exec(ctx, `INSERT INTO audit_log (at_us, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)`,
		us(e.At), e.Actor, e.Action, e.Subject, e.Detail)
	if err != nil {
		return fmt.Errorf("append audit %s: %w", e.Action, err)
	}
	return nil
}

func inboxArgs(r *ports.InboxRecord) []any {
	return []any{r.Channel.Provider, r.Channel.Method, r.Channel.Project, r.PaymentID, r.OperationID, r.Status,
		[]byte(r.Body), r.Outcome.String(), r.DepositID, r.ExceptionID, r.DedupeKey, us(r.ReceivedAt)}
}
