package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// flushSQL writes a write set on PostgreSQL with one statement: one
// data-modifying CTE per table, each reading its rows from a JSON array
// parameter (jsonb_to_recordset), so the text is one and the same for
// every set, prepared once, and the write is one round trip
// (docs/decisions/0002-one-statement-for-the-money-writes.md).
//
// The parts see one snapshot, so none may depend on another's writes
// through the tables: a deposit the set inserts is never one it
// transitions (the insert is written first, see TransitionDeposit), the
// postings take their balances from the balance update's RETURNING, and
// the foreign keys between new transfers, postings and deposits are
// checked at the end of the statement, when all of them are in.
//
// The "v.one = 1" conditions are always true: they keep the generic plan,
// made on a fresh database's near-empty tables, on index lookups
// (docs/decisions/0003-plans-pinned-to-index-lookups.md).
//
// The result is one row with the number of deposits transitioned ('m',
// NULL, n), one per account whose balance moved ('a', id, balance after)
// and one per new inbox row ('i', NULL, id). Its order is the order of the
// row locks: the CTEs the main query reads run as it reads them, so every
// writer locks deposits before accounts, and accounts in id order; two
// instances' sets on one deposit and account cannot lock in crossing
// orders and deadlock.
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
		lo BIGINT, hi BIGINT)
	WHERE v.one = 1 AND accounts.id = v.id AND accounts.currency = v.currency AND accounts.status <> 'closed'
		AND accounts.balance_minor >= v.lo AND accounts.balance_minor <= v.hi
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
	INSERT INTO callback_inbox (source, provider, method, project, payment_id, operation_id, status, body, outcome,
		deposit_id, exception_id, dedupe_key, received_at_us)
	SELECT v.source, v.provider, v.method, v.project, v.payment_id, v.operation_id, v.status, decode(v.body, 'base64'),
		v.outcome, v.deposit_id, v.exception_id, v.dedupe_key, v.received_at_us
	FROM jsonb_to_recordset(CAST(? AS JSONB)) AS v(seq INT, source TEXT, provider TEXT, method TEXT, project TEXT,
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
		// Lo and Hi bound the balance the change may be made to
		// (balanceBounds): no balance goes below zero or past the
		// ceiling.
		Lo int64 `json:"lo"`
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
		Source      string `json:"source"`
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

func (t *tx) writePostgres(ctx context.Context, d *writeSet) error {
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
		lo, hi, ok := balanceBounds(a.minor)
		if !ok {
			return fmt.Errorf("postings of %d on account %s: %w", a.minor, id, domain.ErrBalanceCeiling)
		}
		balances = append(balances, flushBalance{One: 1, ID: id, Currency: a.currency.Code(), Delta: a.minor, N: a.n, At: a.at,
			Lo: lo, Hi: hi})
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
		inbox = append(inbox, flushInboxRow{Seq: i, Source: inboxSource(r), Provider: r.Channel.Provider, Method: r.Channel.Method,
			Project: r.Channel.Project, PaymentID: r.PaymentID, OperationID: r.OperationID, Status: r.Status,
			Body: []byte(r.Body), Outcome: r.Outcome.String(), DepositID: r.DepositID, ExceptionID: r.ExceptionID,
			DedupeKey: r.DedupeKey, ReceivedAt: us(r.ReceivedAt)})
		text.check(r.Channel.Provider, r.Channel.Method, r.Channel.Project, r.PaymentID, r.OperationID, r.Status,
			r.DepositID, r.ExceptionID, r.DedupeKey)
	}
	if text.bad {
		// JSON would replace the invalid bytes: refuse them as the
		// database refuses text it cannot store.
		return fmt.Errorf("%w: a value is not valid UTF-8", domain.ErrInvalidInput)
	}
	args := make([]any, 0, 6)
	for _, rows := range []any{deposits, transitions, balances, transfers, postings, inbox} {
		b, err := json.Marshal(rows)
		if err != nil {
			return fmt.Errorf("encode the write set: %w", err)
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
		// An unknown or closed account, a currency mismatch, a balance
		// that would go below zero or past the ceiling: name it.
		for _, b := range balances {
			if _, ok := final[b.ID]; !ok {
				return t.diagnoseBalance(ctx, b.ID, domain.NewAmount(b.Delta, d.deltas[b.ID].currency))
			}
		}
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
