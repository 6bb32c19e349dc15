package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// Read-ahead (ports.WithSettleReadAhead).
//
// With writes deferred (deferred.go), a credit's only round trip inside a
// PostgreSQL batch is its first read, Tx.SettleView. Before a batch runs
// its items, one statement per chunk reads the view of every settlement
// the batch's callers named — deposit, account and inbox check, joined
// over a VALUES list — so a batch of n credits makes about six statements
// instead of n + 5.
//
// A view read ahead is the database's state at the batch's start. It is
// used, with the pending deferred writes overlaid as on a fresh read
// (tx.go), only while the transaction has written none of the rows a view
// holds since: every write that reaches a deposit row, an account row or
// the inbox at once — a flush, a transition or transfer made at once, a
// status change, an inbox row — drops all of them, and SettleView reads
// again. Rows the batch only inserts (deposits, accounts, exceptions,
// debits, audit) cannot change a view that was found: a deposit not found
// is never kept. So within the transaction a view read ahead is what a
// read at that moment would give. Another transaction may have committed
// since the batch began, as it may between any read and the write after
// it under READ COMMITTED; the conditional deposit transition and the
// one-credit-per-deposit index stop a decision made on a stale view, and
// the batch runs again.

// viewKey is a ports.SettleKey as a map key.
type viewKey struct{ provider, project, paymentID, dedupeKey string }

func settleKey(ch domain.Channel, paymentID, dedupeKey string) viewKey {
	return viewKey{ch.Provider, ch.Project, paymentID, dedupeKey}
}

var readAheadPrefix = `SELECT v.column1, ` + prefixed("d", depositColumns) + `, ` + prefixed("a", accountColumns) + `,
	CASE WHEN EXISTS (SELECT 1 FROM callback_inbox i WHERE i.dedupe_key = v.column5) THEN 1 ELSE 0 END
	FROM (VALUES `

const readAheadSuffix = `) AS v
	JOIN deposits d ON d.provider = v.column2 AND d.project = v.column3 AND d.payment_id = v.column4
	JOIN accounts a ON a.id = d.account_id`

// readAhead reads the settle views keys name into t.views, one statement
// per chunk of distinct keys. Keys whose deposit is not found are left
// out: SettleView reads those itself.
func (t *tx) readAhead(ctx context.Context, keys []ports.SettleKey) error {
	uniq := make([]viewKey, 0, len(keys))
	have := make(map[viewKey]bool, len(keys))
	for _, k := range keys {
		vk := settleKey(k.Channel, k.PaymentID, k.DedupeKey)
		if !have[vk] {
			have[vk] = true
			uniq = append(uniq, vk)
		}
	}
	views := make(map[viewKey]ports.SettleView, len(uniq))
	for _, c := range chunks(len(uniq)) {
		q := multiRow(readAheadPrefix, "(CAST(? AS INT), ?, ?, ?, ?)", c.n, readAheadSuffix)
		args := make([]any, 0, 5*c.n)
		for i, k := range uniq[c.from : c.from+c.n] {
			args = append(args, c.from+i, k.provider, k.project, k.paymentID, k.dedupeKey)
		}
		err := t.queryRows(ctx, q, args, func(rows *sql.Rows) error {
			var i, seen int64
			dd, depFinish := depositScan()
			ad, accFinish := accountScan()
			dest := append(append(append(make([]any, 0, len(dd)+len(ad)+2), &i), dd...), ad...)
			if err := rows.Scan(append(dest, &seen)...); err != nil {
				return err
			}
			if i < int64(c.from) || i >= int64(c.from+c.n) {
				return fmt.Errorf("read-ahead returned row %d of a chunk of %d from %d", i, c.n, c.from)
			}
			v := ports.SettleView{Found: true, Seen: seen == 1}
			var err error
			if v.Deposit, err = depFinish(); err != nil {
				return err
			}
			if v.Account, err = accFinish(); err != nil {
				return err
			}
			views[uniq[i]] = v
			return nil
		})
		if err != nil {
			return fmt.Errorf("read ahead %d settle views: %w", c.n, err)
		}
	}
	t.views = views
	return nil
}

// dropViews forgets the views read ahead: the transaction is about to
// write rows they hold.
func (t *tx) dropViews() { t.views = nil }
