package ports

import (
	"context"

	"github.com/tiyn/tiyn/domain"
)

// TxFunc is the work of one transaction: its reads and writes through tx.
// It must have no effect outside tx, because a store may run it more than
// once (see Store).
type TxFunc func(ctx context.Context, tx Tx) error

// Write tells a store that batches (Store.Batch) what one call needs, so it
// can run many calls in one transaction without deadlocks and with one
// read for all of them. A store that does not batch ignores it.
//
// Both parts are hints for throughput, never rules of correctness: a store
// that ignores them, or a key that names the wrong rows, costs at worst a
// deadlock the database breaks by failing one transaction (ErrConflict,
// retried like any lost race), and a view named but not read costs one row
// of a read.
type Write struct {
	// Key names the rows fn will lock: the customer account it credits or
	// debits. Calls with one key never run in two transactions at once;
	// calls with different keys may. Empty: the store derives the key from
	// Settle (the deposit's account), or puts the call with all other
	// unkeyed ones.
	Key string
	// Settle names the settle views fn will read first (Tx.SettleView with
	// these arguments), Accounts the accounts it will read by customer
	// (Tx.AccountByCustomer): a batching store reads them for the whole
	// batch in one statement before it runs any of it.
	Settle   []SettleKey
	Accounts []AccountKey
}

// SettleKey names one Tx.SettleView: its arguments.
type SettleKey struct {
	Channel   domain.Channel
	PaymentID string
	DedupeKey string
}

// AccountKey names one Tx.AccountByCustomer: its arguments.
type AccountKey struct {
	CustomerID string
	Currency   domain.Currency
}
