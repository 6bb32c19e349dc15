package sqlstore

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// tx implements ports.Tx on a bun transaction. Its money writes go to its
// write set and are written at the flush points writes.go lists; every
// other write is one statement at once.
type tx struct {
	reader
	ws *writeSet
	// shared: the transaction may hold several callers' writes in its
	// write set, so a failed write cannot name whose it was (writes.go).
	shared bool
	// keys learns the account of each deposit inserted (keys.go).
	keys *depositKeys
	// views and accounts hold the settle views and the accounts read
	// ahead for a batch (readahead.go) until the transaction writes a row
	// they hold; hits counts those used.
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

// UpdateAccountStatus writes the held writes first: a status change must
// see the balance and version they give the row.
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
	key := depositRowKey{d.Channel.Provider, d.Channel.Project, d.PaymentID}
	if t.ws.newDeposits[key] {
		// A second insert of one payment id: written after the first,
		// where the unique key refuses it.
		if err := t.flush(ctx); err != nil {
			return err
		}
	}
	t.ws.deposits = append(t.ws.deposits, d)
	t.ws.newDeposits[key] = true
	t.keys.put(d.Channel, d.PaymentID, d.AccountID)
	return nil
}

func depositArgs(d domain.Deposit) []any {
	return []any{d.ID, d.Channel.Provider, d.Channel.Method, d.Channel.Project, d.PaymentID, d.AccountID, d.CustomerID,
		d.Amount.Minor(), d.Amount.Currency().Code(), d.Status.String(), d.OperationID, d.Version,
		us(d.CreatedAt), us(d.SettledAt)}
}

// TransitionDeposit is the conditional update at the heart of exactly-once
// crediting: the row changes only if its status is still the one the
// decision was made on (written as "… WHERE status = from"; a deposit that
// moved meanwhile fails the write with ErrConflict).
func (t *tx) TransitionDeposit(ctx context.Context, d domain.Deposit, from domain.DepositStatus) error {
	if t.ws.insertsDeposit(d.Channel, d.PaymentID) {
		// One statement cannot insert a row and update it: the insert
		// is written first.
		if err := t.flush(ctx); err != nil {
			return err
		}
	}
	return t.ws.transition(d, from)
}

// ApplyTransfer holds a transfer that only credits customers; one that
// debits a customer is written at once, after what is held, so that it
// sees every earlier credit, fails now when the balance is short, and
// returns the balance after it.
func (t *tx) ApplyTransfer(ctx context.Context, tr domain.Transfer) (domain.Transfer, error) {
	if err := tr.Validate(); err != nil {
		return tr, err
	}
	debit := debitsCustomer(tr)
	if debit || !t.ws.sameCurrency(tr) {
		if err := t.flush(ctx); err != nil {
			return tr, err
		}
	}
	// The returned transfer shares its postings with the held one: the
	// write fills in their BalanceAfter.
	tr.Postings = slices.Clone(tr.Postings)
	t.ws.addTransfer(tr)
	if debit {
		if err := t.flush(ctx); err != nil {
			return tr, err
		}
	}
	return tr, nil
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

func (t *tx) InsertInbox(_ context.Context, r *ports.InboxRecord) error {
	t.ws.inbox = append(t.ws.inbox, r)
	t.ws.seen[r.DedupeKey] = true
	return nil
}

// Reads that see the held writes: overlaid, or after a flush.

func (t *tx) AccountByID(ctx context.Context, id string) (domain.Account, error) {
	a, err := t.reader.AccountByID(ctx, id)
	if err != nil {
		return a, err
	}
	return t.ws.overlay(a)
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
	return t.ws.overlay(a)
}

func (t *tx) InboxSeen(ctx context.Context, dedupeKey string) (bool, error) {
	if t.ws.seen[dedupeKey] {
		return true, nil
	}
	return t.reader.InboxSeen(ctx, dedupeKey)
}

func (t *tx) SettleView(ctx context.Context, ch domain.Channel, paymentID, dedupeKey string) (ports.SettleView, error) {
	if t.ws.insertsDeposit(ch, paymentID) {
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
	var err error
	v.Seen = v.Seen || t.ws.seen[dedupeKey]
	if v.Found {
		v.Deposit = t.ws.overlayDeposit(v.Deposit)
		v.Account, err = t.ws.overlay(v.Account)
	}
	return v, err
}

func (t *tx) DepositByPaymentID(ctx context.Context, ch domain.Channel, paymentID string) (domain.Deposit, error) {
	if t.ws.insertsDeposit(ch, paymentID) {
		if err := t.flush(ctx); err != nil {
			return domain.Deposit{}, err
		}
	}
	dep, err := t.reader.DepositByPaymentID(ctx, ch, paymentID)
	if err != nil {
		return dep, err
	}
	return t.ws.overlayDeposit(dep), nil
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

func (t *tx) DepositCredit(ctx context.Context, depositID string) (string, error) {
	if err := t.flush(ctx); err != nil {
		return "", err
	}
	return t.reader.DepositCredit(ctx, depositID)
}

func (t *tx) CreditByKey(ctx context.Context, creditKey string) (string, error) {
	if err := t.flush(ctx); err != nil {
		return "", err
	}
	return t.reader.CreditByKey(ctx, creditKey)
}

// InsertException relies on the dedupe key's unique constraint: ON CONFLICT
// DO NOTHING, then read whichever row holds the key.
func (t *tx) InsertException(ctx context.Context, e domain.Exception) (domain.Exception, bool, error) {
	n, err := t.exec(ctx, `INSERT INTO exceptions (id, reason, detail, provider, method, project, payment_id, operation_id,
		callback_status, outcome, deposit_id, account_id, amount_minor, currency, max_credit_minor, evidence, dedupe_key,
		state, created_at_us, unverified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING`,
		e.ID, e.Reason.String(), e.Detail, e.Channel.Provider, e.Channel.Method, e.Channel.Project, e.PaymentID,
		e.OperationID, e.Status, e.Outcome.String(), e.DepositID, e.AccountID, e.Amount.Minor(), e.Amount.Currency().Code(),
		e.MaxCredit, []byte(e.Evidence), e.DedupeKey, e.State.String(), us(e.CreatedAt), e.Unverified)
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

// inboxSource is the source column of r: a callback unless it says
// otherwise.
func inboxSource(r *ports.InboxRecord) string {
	if r.Source.IsZero() {
		return ports.SourceCallback.String()
	}
	return r.Source.String()
}

func inboxArgs(r *ports.InboxRecord) []any {
	return []any{inboxSource(r), r.Channel.Provider, r.Channel.Method, r.Channel.Project, r.PaymentID, r.OperationID, r.Status,
		[]byte(r.Body), r.Outcome.String(), r.DepositID, r.ExceptionID, r.DedupeKey, us(r.ReceivedAt)}
}
