package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// Read-ahead (ports.Write.Settle and .Accounts).
//
// With a PostgreSQL batch's writes in one statement (writes.go), a credit's
// only other round trip is its first read, Tx.SettleView, and a new
// deposit's is Tx.AccountByCustomer. In a batch's fast plan (batch.go), one
// statement per chunk reads the view of every settlement the batch's calls
// named — deposit, account and inbox check, joined over a VALUES list — and
// one the accounts they named, before any item runs.
//
// A view read ahead is the database's state at the batch's start. It is
// used, with the held writes overlaid as on a fresh read (tx.go), only
// while the transaction has written none of the rows it holds since: every
// write that reaches such a row — a flush of the write set, a debit, an
// account status change — drops all the views first, so SettleView then
// reads again. Rows the batch only inserts (deposits, accounts,
// exceptions, debits, audit) cannot change a view that was found, and a
// deposit not found is never kept. So within the transaction a view read
// ahead is what a read at that moment would give.
//
// Another transaction may have committed since the batch began, as it may
// between any read and the write after it under READ COMMITTED. The
// conditional deposit transition and the one-credit-per-deposit index
// stop a credit or a decline decided on a stale deposit, and no balance
// update matches a closed account; either way the batch runs again and the
// caller decides anew.
//
// A read-ahead that fails leaves the PostgreSQL transaction unusable, so
// the batch runs again item by item, each reading for itself and meeting
// its own error.

// viewKey is a ports.SettleKey as a map key.
type viewKey struct{ provider, project, paymentID, dedupeKey string }

func settleKey(ch domain.Channel, paymentID, dedupeKey string) viewKey {
	return viewKey{ch.Provider, ch.Project, paymentID, dedupeKey}
}

var readAheadPrefix = `SELECT v.column1, ` + prefixed("d", depositColumns) + `, ` + prefixed("a", accountColumns) + `,
	CASE WHEN EXISTS (SELECT 1 FROM callback_inbox i WHERE i.dedupe_key = v.column5) THEN 1 ELSE 0 END
	FROM (VALUES `

// Each VALUES row ends in a constant 1, and "v.column6 = 1" is always
// true: it pins the generic plan to index lookups
// (docs/decisions/0003-plans-pinned-to-index-lookups.md).
const readAheadRow = "(CAST(? AS INT), ?, ?, ?, ?, 1)"

const readAheadSuffix = `) AS v
	JOIN deposits d ON d.provider = v.column2 AND d.project = v.column3 AND d.payment_id = v.column4
	JOIN accounts a ON a.id = d.account_id
	WHERE v.column6 = 1`

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
		q := multiRow(readAheadPrefix, readAheadRow, c.n, readAheadSuffix)
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

// acctKey is a ports.AccountKey as a map key.
type acctKey struct{ customerID, currency string }

// "v.column4 = 1": for the planner, as in readAheadSuffix.
const accountsAheadRow = "(CAST(? AS INT), ?, ?, 1)"

const accountsAheadSuffix = `) AS v JOIN accounts a ON a.customer_id = v.column2 AND a.currency = v.column3
	WHERE v.column4 = 1`

var accountsAheadPrefix = `SELECT v.column1, ` + prefixed("a", accountColumns) + ` FROM (VALUES `

// readAheadAccounts reads the accounts keys name into t.accounts, as
// readAhead does the views. Accounts not found are left out.
func (t *tx) readAheadAccounts(ctx context.Context, keys []ports.AccountKey) error {
	uniq := make([]acctKey, 0, len(keys))
	have := make(map[acctKey]bool, len(keys))
	for _, k := range keys {
		ak := acctKey{k.CustomerID, k.Currency.Code()}
		if !have[ak] {
			have[ak] = true
			uniq = append(uniq, ak)
		}
	}
	accounts := make(map[acctKey]domain.Account, len(uniq))
	for _, c := range chunks(len(uniq)) {
		q := multiRow(accountsAheadPrefix, accountsAheadRow, c.n, accountsAheadSuffix)
		args := make([]any, 0, 3*c.n)
		for i, k := range uniq[c.from : c.from+c.n] {
			args = append(args, c.from+i, k.customerID, k.currency)
		}
		err := t.queryRows(ctx, q, args, func(rows *sql.Rows) error {
			var i int64
			ad, finish := accountScan()
			if err := rows.Scan(append([]any{&i}, ad...)...); err != nil {
				return err
			}
			if i < int64(c.from) || i >= int64(c.from+c.n) {
				return fmt.Errorf("read-ahead returned row %d of a chunk of %d from %d", i, c.n, c.from)
			}
			a, err := finish()
			if err != nil {
				return err
			}
			accounts[uniq[i]] = a
			return nil
		})
		if err != nil {
			return fmt.Errorf("read ahead %d accounts: %w", c.n, err)
		}
	}
	t.accounts = accounts
	return nil
}

// dropViews forgets everything read ahead: the transaction is about to
// write rows it holds.
func (t *tx) dropViews() { t.views, t.accounts = nil, nil }
