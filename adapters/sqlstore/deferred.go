package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// Deferred writes: one statement for a group-commit batch's writes.
//
// A batch runs its items one after another on one connection, so every
// statement an item issues is a round trip in the batch's serial path (on
// PostgreSQL, about 0.1–0.2 ms on a loaded 2-core machine, and a parse,
// bind and execute for the server). Most of a credit's statements write
// rows that nothing else in the batch needs from the database: the
// deposit's state change, the inbox row, the transfer, its postings, and
// the balance increment; and a check_deposit's only write is its new
// deposit. In a batch transaction these are collected and written just
// before COMMIT by one statement (flushSQL): the new deposits, the
// deposits' conditional changes, the balances of every account the batch
// credits, the transfers, their postings and the inbox rows, each a
// data-modifying CTE over a JSON array. (It was one multi-row statement
// per table, six round trips; bench/README.md has what one saves.) With
// the first reads of the batch's items read ahead too (readahead.go), a
// batch of n credits and check_deposits makes four statements — BEGIN,
// two reads, the flush — and its COMMIT, not several per item.
//
// What is deferred:
//   - InsertDeposit (check_deposit's new deposit), so transfers may name
//     the deposit (never a transition: a read or a transition of it
//     flushes first);
//   - TransitionDeposit, the conditional state change (UPDATE … WHERE
//     status = the expected one); a deposit that moved meanwhile makes
//     the flush fail;
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

// flushSQL writes everything a batch deferred with one statement: one
// data-modifying CTE per table, each reading its rows from a JSON array
// parameter (jsonb_to_recordset), so the text is one and the same for
// every batch, prepared once, and the flush is one round trip instead of
// one per table. The parts see the same snapshot, so none may depend on
// another's writes through the tables: the deposits a batch inserts are
// never among those it transitions (a read or a transition of a pending
// insert flushes first, see SettleView and TransitionDeposit), the postings take their balances from the
// credited part's RETURNING, and the foreign keys between new transfers,
// postings and deposits are checked at the end of the statement, when all
// of them are in.
//
// The "v.one = 1" conditions are always true: they are there for the
// planner. A function scan is estimated at 100 rows, and on the small
// tables of a fresh database the generic plan joins 100 rows with a hash
// over a sequential scan of deposits or accounts, a plan the statement
// keeps as the tables grow; an equality on a constant is estimated at 1
// row, which makes the plan index lookups in a nested loop, right at every
// size.
//
// The result is one row with the number of deposits transitioned ('m',
// NULL, n), one per credited account ('a', id, balance after) and one per
// new inbox row ('i', NULL, id). Its order is the order of the row locks:
// the CTEs the main query reads run as it reads them, one UNION ALL arm
// after the other (the parts it does not read run after it), so the
// deposits are locked before the accounts, as on the immediate path
// (TransitionDeposit, then ApplyTransfer). With the accounts first, a
// flush and an immediate settlement on the same deposit and account — a
// re-run batch, a second instance — lock in opposite orders and deadlock
// (shown in psql; PostgreSQL breaks it after deadlock_timeout).
const flushSQL = `WITH new_deposits AS (
	INSERT INTO deposits (` + depositColumns + `)
	SELECT v.id, v.provider, v.method, v.project, v.payment_id, v.account_id, v.customer_id, v.amount_minor,
		v.currency, v.status, v.operation_id, v.version, v.created_at_us, v.settled_at_us
	FROM jsonb_to_recordset(CAST(? AS JSONB)) AS v(id TEXT, provider TEXT, method TEXT, project TEXT,
		payment_id TEXT, account_id TEXT, customer_id TEXT, amount_minor BIGINT, currency TEXT, status TEXT,
		operation_id TEXT, version BIGINT, created_at_us BIGINT, settled_at_us BIGINT)
	RETURNING 1
), moved AS (
	UPDATE deposits SET status = v.status, operation_id = v.operation_id, settled_at_us = v.settled_at_us,
		version = deposits.version + v.n
	FROM jsonb_to_recordset(CAST(? AS JSONB)) AS v(one INT, id TEXT, status TEXT, operation_id TEXT,
		settled_at_us BIGINT, n BIGINT, from_status TEXT)
	WHERE v.one = 1 AND deposits.id = v.id AND deposits.status = v.from_status
	RETURNING 1
), credited AS (
	UPDATE accounts SET balance_minor = accounts.balance_minor + v.delta, version = accounts.version + v.n,
		updated_at_us = v.at
	FROM jsonb_to_recordset(CAST(? AS JSONB)) AS v(one INT, id TEXT, currency TEXT, delta BIGINT, n BIGINT, at BIGINT,
		hi BIGINT)
	WHERE v.one = 1 AND accounts.id = v.id AND accounts.currency = v.currency AND accounts.status <> 'closed'
		AND accounts.balance_minor <= v.hi
	RETURNING accounts.id, accounts.balance_minor
), new_transfers AS (
	INSERT INTO transfers (id, kind, deposit_id, exception_id, credit_key, description, actor, created_at_us)
	SELECT v.id, v.kind, v.deposit_id, v.exception_id, v.credit_key, v.description, v.actor, v.created_at_us
	FROM jsonb_to_recordset(CAST(? AS JSONB)) AS v(id TEXT, kind TEXT, deposit_id TEXT, exception_id TEXT,
		credit_key TEXT, description TEXT, actor TEXT, created_at_us BIGINT)
	RETURNING 1
), new_postings AS (
	INSERT INTO postings (transfer_id, account_id, amount_minor, currency, balance_after_minor, created_at_us)
	SELECT v.transfer_id, v.account_id, v.amount_minor, v.currency, c.balance_minor - v.later, v.created_at_us
	FROM jsonb_to_recordset(CAST(? AS JSONB)) AS v(seq INT, transfer_id TEXT, account_id TEXT,
		amount_minor BIGINT, currency TEXT, later BIGINT, created_at_us BIGINT)
	LEFT JOIN credited c ON c.id = v.account_id
	ORDER BY v.seq
	RETURNING 1
), new_inbox AS (
	INSERT INTO callback_inbox (provider, method, project, payment_id, operation_id, status, body, outcome,
		deposit_id, exception_id, dedupe_key, received_at_us)
	SELECT v.provider, v.method, v.project, v.payment_id, v.operation_id, v.status, decode(v.body, 'base64'),
		v.outcome, v.deposit_id, v.exception_id, v.dedupe_key, v.received_at_us
	FROM jsonb_to_recordset(CAST(? AS JSONB)) AS v(seq INT, provider TEXT, method TEXT, project TEXT,
		payment_id TEXT, operation_id TEXT, status TEXT, body TEXT, outcome TEXT, deposit_id TEXT,
		exception_id TEXT, dedupe_key TEXT, received_at_us BIGINT)
	ORDER BY v.seq
	RETURNING id
)
SELECT 'm', NULL, COUNT(*) FROM moved
UNION ALL SELECT 'a', c.id, c.balance_minor FROM credited c
UNION ALL SELECT 'i', NULL, i.id FROM new_inbox i`

// The rows of flushSQL's parameters, by the column names it reads.
type (
	flushDeposit struct {
		ID          string `json:"id"`
		Provider    string `json:"provider"`
		Method      string `json:"method"`
		Project     string `json:"project"`
		PaymentID   string `json:"payment_id"`
		AccountID   string `json:"account_id"`
		CustomerID  string `json:"customer_id"`
		AmountMinor int64  `json:"amount_minor"`
		Currency    string `json:"currency"`
		Status      string `json:"status"`
		OperationID string `json:"operation_id"`
		Version     int64  `json:"version"`
		CreatedAt   int64  `json:"created_at_us"`
		SettledAt   int64  `json:"settled_at_us"`
	}
	flushTransition struct {
		One         int    `json:"one"`
		ID          string `json:"id"`
		Status      string `json:"status"`
		OperationID string `json:"operation_id"`
		SettledAt   int64  `json:"settled_at_us"`
		N           int64  `json:"n"`
		From        string `json:"from_status"`
	}
	flushBalance struct {
		One      int    `json:"one"`
		ID       string `json:"id"`
		Currency string `json:"currency"`
		Delta    int64  `json:"delta"`
		N        int64  `json:"n"`
		At       int64  `json:"at"`
		// Hi is the largest balance the credit may be added to
		// (balanceBounds): no balance passes the ceiling.
		Hi int64 `json:"hi"`
	}
	flushTransfer struct {
		ID          string  `json:"id"`
		Kind        string  `json:"kind"`
		DepositID   *string `json:"deposit_id"`
		ExceptionID *string `json:"exception_id"`
		CreditKey   *string `json:"credit_key"`
		Description string  `json:"description"`
		Actor       string  `json:"actor"`
		CreatedAt   int64   `json:"created_at_us"`
	}
	flushPosting struct {
		Seq         int    `json:"seq"`
		TransferID  string `json:"transfer_id"`
		AccountID   string `json:"account_id"`
		AmountMinor int64  `json:"amount_minor"`
		Currency    string `json:"currency"`
		// Later is the sum of the account's pending credits after this
		// posting: its balance after it is the final balance minus Later.
		// Null for system accounts, which keep no balance.
		Later     *int64 `json:"later"`
		CreatedAt int64  `json:"created_at_us"`
	}
	flushInboxRow struct {
		Seq         int    `json:"seq"`
		Provider    string `json:"provider"`
		Method      string `json:"method"`
		Project     string `json:"project"`
		PaymentID   string `json:"payment_id"`
		OperationID string `json:"operation_id"`
		Status      string `json:"status"`
		Body        []byte `json:"body"` // base64 in JSON
		Outcome     string `json:"outcome"`
		DepositID   string `json:"deposit_id"`
		ExceptionID string `json:"exception_id"`
		DedupeKey   string `json:"dedupe_key"`
		ReceivedAt  int64  `json:"received_at_us"`
	}
)

func (t *tx) flushWrites(ctx context.Context) error {
	d := t.d
	text := newTextCheck()
	deposits := make([]flushDeposit, 0, len(d.deposits))
	for _, dep := range d.deposits {
		deposits = append(deposits, flushDeposit{ID: dep.ID, Provider: dep.Channel.Provider, Method: dep.Channel.Method,
			Project: dep.Channel.Project, PaymentID: dep.PaymentID, AccountID: dep.AccountID, CustomerID: dep.CustomerID,
			AmountMinor: dep.Amount.Minor(), Currency: dep.Amount.Currency().Code(), Status: dep.Status.String(),
			OperationID: dep.OperationID, Version: dep.Version, CreatedAt: us(dep.CreatedAt), SettledAt: us(dep.SettledAt)})
		text.check(dep.ID, dep.Channel.Provider, dep.Channel.Method, dep.Channel.Project, dep.PaymentID, dep.AccountID,
			dep.CustomerID, dep.OperationID)
	}
	transitions := make([]flushTransition, 0, len(d.transOrder))
	for _, id := range d.transOrder {
		p := d.transitions[id]
		transitions = append(transitions, flushTransition{One: 1, ID: id, Status: p.next.Status.String(),
			OperationID: p.next.OperationID, SettledAt: us(p.next.SettledAt), N: p.n, From: p.from.String()})
		text.check(id, p.next.OperationID)
	}
	balances := make([]flushBalance, 0, len(d.deltas))
	for id, a := range d.deltas {
		_, hi, ok := balanceBounds(a.minor)
		if !ok {
			return fmt.Errorf("credits of %d to account %s: %w", a.minor, id, domain.ErrBalanceCeiling)
		}
		balances = append(balances, flushBalance{One: 1, ID: id, Currency: a.currency.Code(), Delta: a.minor, N: a.n, At: a.at, Hi: hi})
		text.check(id)
	}
	// Accounts in id order: concurrent flushes lock shared rows in one order.
	slices.SortFunc(balances, func(a, b flushBalance) int { return cmp.Compare(a.ID, b.ID) })
	transfers := make([]flushTransfer, 0, len(d.transfers))
	postings := make([]flushPosting, 0, 2*len(d.transfers)) // [] in JSON, not null
	// What each account is still to be credited after the posting at hand.
	later := make(map[string]int64, len(d.deltas))
	for id, a := range d.deltas {
		later[id] = a.minor
	}
	type pendingAfter struct {
		p     *domain.Posting
		later int64
	}
	var afters []pendingAfter
	for _, tr := range d.transfers {
		transfers = append(transfers, flushTransfer{ID: tr.ID, Kind: tr.Kind.String(), DepositID: optional(tr.DepositID),
			ExceptionID: optional(tr.ExceptionID), CreditKey: optional(tr.CreditKey), Description: tr.Description,
			Actor: tr.Actor, CreatedAt: us(tr.CreatedAt)})
		text.check(tr.ID, tr.DepositID, tr.ExceptionID, tr.CreditKey, tr.Description, tr.Actor)
		for j := range tr.Postings {
			p := &tr.Postings[j] // shared with the Transfer ApplyTransfer returned
			row := flushPosting{Seq: len(postings), TransferID: tr.ID, AccountID: p.AccountID, AmountMinor: p.Amount.Minor(),
				Currency: p.Amount.Currency().Code(), CreatedAt: us(tr.CreatedAt)}
			if !domain.IsSystemAccount(p.AccountID) {
				later[p.AccountID] -= p.Amount.Minor()
				l := later[p.AccountID]
				row.Later = &l
				afters = append(afters, pendingAfter{p, l})
			}
			postings = append(postings, row)
			text.check(p.AccountID)
		}
	}
	inbox := make([]flushInboxRow, 0, len(d.inbox))
	for i, r := range d.inbox {
		inbox = append(inbox, flushInboxRow{Seq: i, Provider: r.Channel.Provider, Method: r.Channel.Method,
			Project: r.Channel.Project, PaymentID: r.PaymentID, OperationID: r.OperationID, Status: r.Status,
			Body: []byte(r.Body), Outcome: r.Outcome.String(), DepositID: r.DepositID, ExceptionID: r.ExceptionID,
			DedupeKey: r.DedupeKey, ReceivedAt: us(r.ReceivedAt)})
		text.check(r.Channel.Provider, r.Channel.Method, r.Channel.Project, r.PaymentID, r.OperationID, r.Status,
			r.DepositID, r.ExceptionID, r.DedupeKey)
	}
	if text.bad {
		// JSON would replace the invalid bytes, and the immediate
		// statements give the database's own verdict on them.
		return errors.New("a deferred value is not valid UTF-8")
	}
	args := make([]any, 0, 6)
	for _, rows := range []any{deposits, transitions, balances, transfers, postings, inbox} {
		b, err := json.Marshal(rows)
		if err != nil {
			return fmt.Errorf("encode deferred writes: %w", err)
		}
		args = append(args, string(b))
	}
	final := make(map[string]int64, len(balances))
	moved := int64(-1)
	ids := make([]int64, 0, len(inbox))
	err := t.queryRows(ctx, flushSQL, args, func(rows *sql.Rows) error {
		var kind string
		var id sql.NullString
		var v int64
		if err := rows.Scan(&kind, &id, &v); err != nil {
			return err
		}
		switch kind {
		case "a":
			final[id.String] = v
		case "m":
			moved = v
		case "i":
			ids = append(ids, v)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("flush %d deposits, %d transitions, %d transfers, %d inbox records: %w",
			len(deposits), len(transitions), len(transfers), len(inbox), err)
	}
	if moved != int64(len(transitions)) {
		// A deposit that moved meanwhile.
		return fmt.Errorf("deposit transitions matched %d of %d rows: %w", moved, len(transitions), ports.ErrConflict)
	}
	if len(final) != len(balances) {
		// An unknown or closed account, or a currency mismatch: the
		// immediate path will name it.
		return fmt.Errorf("balance update matched %d of %d accounts", len(final), len(balances))
	}
	if len(ids) != len(inbox) {
		return fmt.Errorf("inbox insert returned %d ids for %d rows", len(ids), len(inbox))
	}
	for _, a := range afters {
		b := domain.NewAmount(final[a.p.AccountID]-a.later, a.p.Amount.Currency())
		a.p.BalanceAfter = &b
	}
	// Ids come from the table's sequence, handed out in the order of the
	// rows (ORDER BY seq), so sorted ascending they belong to the rows in
	// order (RETURNING itself promises no order).
	slices.Sort(ids)
	for i, r := range d.inbox {
		r.ID = ids[i]
	}
	return nil
}

// optional is a nullable text column as a JSON value.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// textCheck notes whether any of the strings it is shown is invalid UTF-8.
type textCheck struct{ bad bool }

func newTextCheck() *textCheck { return &textCheck{} }

func (c *textCheck) check(ss ...string) {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			c.bad = true
		}
	}
}

// The read-ahead statements go in chunks of 1, 2, 4, … maxChunkRows rows, so
// that a handful of texts cover every batch and each is prepared once
// (store.go's cache) instead of parsed at every batch.
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
