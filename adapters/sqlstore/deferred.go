package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// Deferred writes: multi-row statements for a group-commit batch.
//
// A batch runs its items one after another on one connection, so every
// statement an item issues is a round trip in the batch's serial path (on
// PostgreSQL, about 0.1–0.2 ms on a loaded 2-core machine, and a parse,
// bind and execute for the server). Most of a credit's statements write
// rows that nothing else in the batch needs from the database: the
// deposit's state change, the inbox row, the transfer, its postings, and
// the balance increment; and a check_deposit's only write is its new
// deposit. In a batch transaction these are collected and written just
// before COMMIT with one multi-row statement each — one INSERT for the new
// deposits, one conditional UPDATE … FROM (VALUES …) for the deposits'
// changes, one for the balances of every account the batch credits, one
// INSERT for all transfers, one for all postings, one for all inbox rows
// (in chunks of 1, 2, 4 … 64 rows, below). With the first reads of the
// batch's items read ahead too (readahead.go), a batch of n credits and
// check_deposits makes a handful of statements, not several per item.
//
// What is deferred:
//   - InsertDeposit (check_deposit's new deposit): one multi-row INSERT,
//     first of all, so transitions and transfers may name the deposit;
//   - TransitionDeposit, the conditional state change: one UPDATE …
//     FROM (VALUES …) WHERE status = the expected one, for all of them;
//     a deposit that moved meanwhile makes the flush fail;
//   - InsertInbox (always);
//   - ApplyTransfer when it only credits customer accounts (a deposit
//     credit, an exception credit): a credit cannot break the balance >= 0
//     check, so it cannot fail for want of funds. A transfer that debits a
//     customer runs at once, after the deferred writes are flushed, so it
//     sees every earlier credit and the postings keep their order.
//
// Reads through the transaction still see deferred writes: a read of a
// deposit inserted in the batch (by payment id, or its settle view)
// flushes first — a callback never shares a batch with its own
// check_deposit in practice, since the platform learns the payment id from
// check_deposit's answer, sent after the commit — InboxSeen
// consults the pending rows, DepositByPaymentID and SettleView apply the
// pending deposit changes, AccountByID and AccountByCustomer add the
// pending balance and version increments to what they read, and every
// other read of the tables involved (statements, balances at a time, the
// inbox and deposit lists, CheckLedger, ListAccounts) and every write to
// an account row flushes first.
//
// A flush that fails (an unknown account, a currency mismatch, a second
// credit for one deposit — anything the immediate statements would have
// refused item by item) cannot say whose write was wrong, so the batcher
// rolls the batch back and runs it again with deferral off, where each
// item meets its own error. The ids and balances a deferred write returns
// (InboxRecord.ID, Posting.BalanceAfter) are filled in by the flush, before
// Update returns.

// errFlush marks a failed flush: the batch must run again without
// deferral.
var errFlush = errors.New("group commit: deferred writes failed")

type deferred struct {
	// deposits holds the deposits inserted, in order; newDeposits their
	// keys (provider, project, payment id).
	deposits    []domain.Deposit
	newDeposits map[depositRowKey]bool
	// transitions holds each deposit's pending state change, by id, in
	// the order of first change.
	transitions map[string]*pendingTransition
	transOrder  []string
	inbox       []*ports.InboxRecord
	seen        map[string]bool // dedupe keys of pending inbox rows
	transfers   []domain.Transfer
	// deltas holds each credited account's pending increment.
	deltas map[string]*accountDelta
	// err is the first flush failure; the batch is doomed once it is set.
	err error
}

// pendingTransition is a deposit's state change not yet written: from is
// the status its first transition expected, next the deposit after the
// last one, n how many there were (each bumps the version).
type pendingTransition struct {
	from domain.DepositStatus
	next domain.Deposit
	n    int64
}

type accountDelta struct {
	currency domain.Currency
	minor    int64 // sum of pending credits
	n        int64 // pending balance updates (each bumps the version)
	at       int64 // the latest update time, µs
}

// depositRowKey is a deposit's unique key.
type depositRowKey struct{ provider, project, paymentID string }

func newDeferred() *deferred {
	return &deferred{seen: map[string]bool{}, deltas: map[string]*accountDelta{},
		transitions: map[string]*pendingTransition{}, newDeposits: map[depositRowKey]bool{}}
}

func (d *deferred) empty() bool {
	return len(d.deposits) == 0 && len(d.inbox) == 0 && len(d.transfers) == 0 && len(d.transitions) == 0
}

// insertsDeposit reports whether the deposit ch/paymentID is a pending
// insert.
func (d *deferred) insertsDeposit(ch domain.Channel, paymentID string) bool {
	return d != nil && d.newDeposits[depositRowKey{ch.Provider, ch.Project, paymentID}]
}

// transition records dep's change from status from, or returns
// ErrConflict when a pending change already left another status.
func (d *deferred) transition(dep domain.Deposit, from domain.DepositStatus) error {
	if p := d.transitions[dep.ID]; p != nil {
		if p.next.Status != from {
			return fmt.Errorf("deposit %s is no longer %s: %w", dep.PaymentID, from, ports.ErrConflict)
		}
		p.next = dep
		p.n++
		return nil
	}
	d.transitions[dep.ID] = &pendingTransition{from: from, next: dep, n: 1}
	d.transOrder = append(d.transOrder, dep.ID)
	return nil
}

// overlayDeposit returns a deposit read from the database with its pending
// change applied.
func (d *deferred) overlayDeposit(dep domain.Deposit) domain.Deposit {
	if p := d.transitions[dep.ID]; p != nil {
		return p.next
	}
	return dep
}

// deferrable reports whether tr only credits customer accounts.
func deferrable(tr domain.Transfer) bool {
	customer := false
	for _, p := range tr.Postings {
		if domain.IsSystemAccount(p.AccountID) {
			continue
		}
		if p.Amount.Minor() <= 0 {
			return false
		}
		customer = true
	}
	return customer
}

// sameCurrency reports whether tr credits every account in the currency
// of that account's pending credits. One pending total per account holds
// one currency: a transfer in another runs at once (after a flush), where
// the balance UPDATE refuses the mismatch with ErrCurrencyMismatch.
func (d *deferred) sameCurrency(tr domain.Transfer) bool {
	for _, p := range tr.Postings {
		if a := d.deltas[p.AccountID]; a != nil && a.currency != p.Amount.Currency() {
			return false
		}
	}
	return true
}

func (d *deferred) addTransfer(tr domain.Transfer) {
	d.transfers = append(d.transfers, tr)
	at := us(tr.CreatedAt)
	for _, p := range tr.Postings {
		if domain.IsSystemAccount(p.AccountID) {
			continue
		}
		a := d.deltas[p.AccountID]
		if a == nil {
			a = &accountDelta{currency: p.Amount.Currency()}
			d.deltas[p.AccountID] = a
		}
		a.minor += p.Amount.Minor()
		a.n++
		a.at = max(a.at, at)
	}
}

// overlay adds a's pending credits to an account read from the database.
func (d *deferred) overlay(a domain.Account) (domain.Account, error) {
	delta := d.deltas[a.ID()]
	if delta == nil {
		return a, nil
	}
	return domain.RehydrateAccount(a.ID(), a.CustomerID(), a.AdditionalCustomerID(), a.Currency(), a.Status(),
		a.Balance().Minor()+delta.minor, a.Version()+delta.n, a.CreatedAt(), fromUS(max(us(a.UpdatedAt()), delta.at)))
}

// flush writes everything pending. On failure the transaction is doomed:
// the error wraps errFlush and stays with d.
func (t *tx) flush(ctx context.Context) error {
	d := t.d
	if d == nil {
		return nil
	}
	if d.err != nil {
		return d.err
	}
	if d.empty() {
		return nil
	}
	t.dropViews()
	if err := t.flushWrites(ctx); err != nil {
		d.err = fmt.Errorf("%w: %w", errFlush, err)
		return d.err
	}
	t.d = newDeferred()
	return nil
}

func (t *tx) flushWrites(ctx context.Context) error {
	if err := t.flushDeposits(ctx); err != nil {
		return err
	}
	if err := t.flushTransitions(ctx); err != nil {
		return err
	}
	balances, err := t.flushBalances(ctx)
	if err != nil {
		return err
	}
	if err := t.flushTransfers(ctx, balances); err != nil {
		return err
	}
	return t.flushInbox(ctx)
}

// flushDeposits inserts the pending deposits, in chunks.
func (t *tx) flushDeposits(ctx context.Context) error {
	d := t.d
	if len(d.deposits) == 0 {
		return nil
	}
	args := make([]any, 0, 14*len(d.deposits))
	for _, dep := range d.deposits {
		args = append(args, depositArgs(dep)...)
	}
	if err := t.execRows(ctx, `INSERT INTO deposits (`+depositColumns+`) VALUES `,
		"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", 14, args); err != nil {
		return fmt.Errorf("insert %d deposits: %w", len(d.deposits), err)
	}
	return nil
}

// flushTransitions applies every pending deposit change with conditional
// UPDATEs (… WHERE status = the status the first change expected); a
// deposit that moved meanwhile matches no row, and the flush fails.
func (t *tx) flushTransitions(ctx context.Context) error {
	d := t.d
	if len(d.transOrder) == 0 {
		return nil
	}
	for _, c := range chunks(len(d.transOrder)) {
		q := multiRow(`UPDATE deposits SET status = v.column2, operation_id = v.column3, settled_at_us = v.column4,
		version = deposits.version + v.column5 FROM (VALUES `,
			"(?, ?, ?, CAST(? AS BIGINT), CAST(? AS BIGINT), ?)", c.n,
			`) AS v WHERE deposits.id = v.column1 AND deposits.status = v.column6 RETURNING deposits.id`)
		args := make([]any, 0, 6*c.n)
		for _, id := range d.transOrder[c.from : c.from+c.n] {
			p := d.transitions[id]
			args = append(args, id, p.next.Status.String(), p.next.OperationID, us(p.next.SettledAt), p.n, p.from.String())
		}
		matched := 0
		if err := t.queryRows(ctx, q, args, func(*sql.Rows) error { matched++; return nil }); err != nil {
			return err
		}
		if matched != c.n {
			return fmt.Errorf("deposit transitions matched %d of %d rows: %w", matched, c.n, ports.ErrConflict)
		}
	}
	return nil
}

// flushBalances applies every pending increment (one UPDATE per chunk) and
// returns each account's balance after it. Accounts go in id order.
func (t *tx) flushBalances(ctx context.Context) (map[string]int64, error) {
	d := t.d
	if len(d.deltas) == 0 {
		return nil, nil
	}
	ids := make([]string, 0, len(d.deltas))
	for id := range d.deltas {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	balances := make(map[string]int64, len(ids))
	for _, c := range chunks(len(ids)) {
		q := multiRow(`UPDATE accounts SET balance_minor = accounts.balance_minor + v.column3,
		version = accounts.version + v.column4, updated_at_us = v.column5 FROM (VALUES `,
			"(?, ?, CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT))", c.n,
			`) AS v WHERE accounts.id = v.column1 AND accounts.currency = v.column2 AND accounts.status <> 'closed'
		RETURNING accounts.id, accounts.balance_minor`)
		args := make([]any, 0, 5*c.n)
		for _, id := range ids[c.from : c.from+c.n] {
			a := d.deltas[id]
			args = append(args, id, a.currency.Code(), a.minor, a.n, a.at)
		}
		err := t.queryRows(ctx, q, args, func(rows *sql.Rows) error {
			var id string
			var balance int64
			if err := rows.Scan(&id, &balance); err != nil {
				return err
			}
			balances[id] = balance
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(balances) != len(ids) {
		// An unknown or closed account, or a currency mismatch: the
		// immediate path will name it.
		return nil, fmt.Errorf("balance update matched %d of %d accounts", len(balances), len(ids))
	}
	return balances, nil
}

// flushTransfers inserts the pending transfers and their postings, each
// posting's balance after it worked out backwards from the account's final
// balance, in the order the transfers were applied.
func (t *tx) flushTransfers(ctx context.Context, final map[string]int64) error {
	d := t.d
	if len(d.transfers) == 0 {
		return nil
	}
	// The balance before the batch's first pending credit, per account.
	running := make(map[string]int64, len(final))
	for id, b := range final {
		running[id] = b - d.deltas[id].minor
	}
	targs := make([]any, 0, 7*len(d.transfers))
	var pargs []any
	for _, tr := range d.transfers {
		targs = append(targs, tr.ID, tr.Kind.String(), nullable(tr.DepositID), nullable(tr.ExceptionID),
			tr.Description, tr.Actor, us(tr.CreatedAt))
		for j := range tr.Postings {
			p := &tr.Postings[j] // shared with the Transfer ApplyTransfer returned
			var after any
			if !domain.IsSystemAccount(p.AccountID) {
				running[p.AccountID] += p.Amount.Minor()
				b := domain.NewAmount(running[p.AccountID], p.Amount.Currency())
				p.BalanceAfter = &b
				after = b.Minor()
			}
			pargs = append(pargs, tr.ID, p.AccountID, p.Amount.Minor(), p.Amount.Currency().Code(), after, us(tr.CreatedAt))
		}
	}
	if err := t.execRows(ctx, `INSERT INTO transfers (id, kind, deposit_id, exception_id, description, actor, created_at_us) VALUES `,
		"(?, ?, ?, ?, ?, ?, ?)", 7, targs); err != nil {
		return fmt.Errorf("insert %d transfers: %w", len(d.transfers), err)
	}
	if err := t.execRows(ctx, `INSERT INTO postings (transfer_id, account_id, amount_minor, currency, balance_after_minor, created_at_us) VALUES `,
		"(?, ?, ?, ?, ?, ?)", 6, pargs); err != nil {
		return fmt.Errorf("insert %d postings: %w", len(pargs)/6, err)
	}
	return nil
}

// flushInbox inserts the pending inbox rows and gives each its id. Ids
// come from the table's sequence (PostgreSQL) or AUTOINCREMENT (SQLite),
// which hand them out in the order of the VALUES rows, so a chunk's
// returned ids sorted ascending belong to its rows in order (RETURNING
// itself promises no order).
func (t *tx) flushInbox(ctx context.Context) error {
	d := t.d
	if len(d.inbox) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(d.inbox))
	for _, c := range chunks(len(d.inbox)) {
		q := multiRow(`INSERT INTO callback_inbox (provider, method, project, payment_id, operation_id,
		status, body, outcome, deposit_id, exception_id, dedupe_key, received_at_us) VALUES `,
			"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", c.n, " RETURNING id")
		args := make([]any, 0, 12*c.n)
		for _, r := range d.inbox[c.from : c.from+c.n] {
			args = append(args, inboxArgs(r)...)
		}
		first := len(ids)
		err := t.queryRows(ctx, q, args, func(rows *sql.Rows) error {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
			return nil
		})
		if err != nil {
			return fmt.Errorf("insert %d inbox records: %w", c.n, err)
		}
		slices.SortFunc(ids[first:], cmp.Compare)
	}
	if len(ids) != len(d.inbox) {
		return fmt.Errorf("inbox insert returned %d ids for %d rows", len(ids), len(d.inbox))
	}
	for i, r := range d.inbox {
		r.ID = ids[i]
	}
	return nil
}

func inboxArgs(r *ports.InboxRecord) []any {
	return []any{r.Channel.Provider, r.Channel.Method, r.Channel.Project, r.PaymentID, r.OperationID, r.Status,
		[]byte(r.Body), r.Outcome.String(), r.DepositID, r.ExceptionID, r.DedupeKey, us(r.ReceivedAt)}
}

// Multi-row statements go in chunks of 1, 2, 4, … maxChunkRows rows, so
// that a handful of texts cover every batch and each is prepared once
// (store.go's cache) instead of parsed at every flush.
const maxChunkRows = 64

type chunk struct{ from, n int }

// chunks splits n rows into power-of-two chunks, largest first.
func chunks(n int) []chunk {
	var out []chunk
	for from := 0; from < n; {
		size := maxChunkRows
		for size > n-from {
			size /= 2
		}
		out = append(out, chunk{from, size})
		from += size
	}
	return out
}

// multiRow is prefix, n copies of row separated by commas, and suffix.
func multiRow(prefix, row string, n int, suffix string) string {
	var b strings.Builder
	b.Grow(len(prefix) + n*(len(row)+2) + len(suffix))
	b.WriteString(prefix)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	b.WriteString(suffix)
	return b.String()
}

// execRows inserts rows of width values each (args holds them all) in
// chunks.
func (t *tx) execRows(ctx context.Context, prefix, row string, width int, args []any) error {
	rows := len(args) / width
	for _, c := range chunks(rows) {
		q := multiRow(prefix, row, c.n, "")
		if _, err := t.db.ExecContext(ctx, q, args[c.from*width:(c.from+c.n)*width]...); err != nil {
			return classify(err)
		}
	}
	return nil
}

// queryRows runs q and calls scan for each row it returns.
func (t *tx) queryRows(ctx context.Context, q string, args []any, scan func(*sql.Rows) error) error {
	rows, err := t.db.QueryContext(ctx, q, args...)
	if err != nil {
		return classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return classify(err)
		}
	}
	return classify(rows.Err())
}
