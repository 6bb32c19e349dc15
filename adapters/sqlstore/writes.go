package sqlstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// The money writes.
//
// A credit writes five rows — the deposit's state change, a transfer, its
// postings, the balance increment and the inbox row — and a check_deposit
// one, its new deposit. Every transaction holds these writes in its write
// set (writeSet) and writes them together, with one description per
// dialect of how:
//
//   - PostgreSQL (writes_postgres.go): one statement for the whole set,
//     flushSQL, a data-modifying CTE per table over a JSON array, the same
//     text for any number of rows. A lone callback makes two round trips
//     (its settle view and the flush); a group-commit batch of sixty-four
//     makes the same two (a read-ahead for all of them and the flush).
//   - SQLite (writes_sqlite.go): the plain statements, row by row, in
//     process.
//
// There is one path, not a "deferred" and an "immediate" one: every Tx
// method below puts its write in the set the same way whatever runs the
// transaction, and the set is written at a flush point:
//
//   - when the work of the transaction is done (Store.Update), or of each
//     item of a batch, or of the whole batch (batch.go decides which, and
//     how it finds whose write failed);
//   - before a read whose answer the held rows would change, and before a
//     write that must see them (a debit's balance, an account's status, a
//     deposit transitioned in the statement that inserts it);
//   - at once for what the caller needs now: a transfer that debits a
//     customer is written right away, because the caller records the
//     balance after it and an insufficient balance must fail the call.
//
// Reads through the transaction see the held writes: a deposit's pending
// change and an account's pending credits are overlaid on what the
// database returns (DepositByPaymentID, SettleView, AccountByID,
// AccountByCustomer), a pending inbox row counts for InboxSeen, and every
// other read of the tables involved flushes first.

// errFlush marks a failed write of a set that may hold several callers'
// writes: batch.go runs the batch again, writing each caller's on its own.
var errFlush = errors.New("group commit: the batch's writes failed")

// writeSet is one transaction's money writes not yet written.
type writeSet struct {
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
	// deltas holds each account's pending balance change.
	deltas map[string]*accountDelta
	// err is the first failed write; the transaction is doomed once set.
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
	minor    int64 // sum of the pending postings
	n        int64 // pending balance updates (each bumps the version)
	at       int64 // the latest update time, µs
}

// depositRowKey is a deposit's unique key.
type depositRowKey struct{ provider, project, paymentID string }

func newWriteSet() *writeSet {
	return &writeSet{seen: map[string]bool{}, deltas: map[string]*accountDelta{},
		transitions: map[string]*pendingTransition{}, newDeposits: map[depositRowKey]bool{}}
}

func (w *writeSet) empty() bool {
	return len(w.deposits) == 0 && len(w.inbox) == 0 && len(w.transfers) == 0 && len(w.transitions) == 0
}

// insertsDeposit reports whether the deposit ch/paymentID is a pending
// insert.
func (w *writeSet) insertsDeposit(ch domain.Channel, paymentID string) bool {
	return w.newDeposits[depositRowKey{ch.Provider, ch.Project, paymentID}]
}

// transition records dep's change from status from, or returns
// ErrConflict when a pending change already left another status.
func (w *writeSet) transition(dep domain.Deposit, from domain.DepositStatus) error {
	if p := w.transitions[dep.ID]; p != nil {
		if p.next.Status != from {
			return fmt.Errorf("deposit %s is no longer %s: %w", dep.PaymentID, from, ports.ErrConflict)
		}
		p.next = dep
		p.n++
		return nil
	}
	w.transitions[dep.ID] = &pendingTransition{from: from, next: dep, n: 1}
	w.transOrder = append(w.transOrder, dep.ID)
	return nil
}

// overlayDeposit returns a deposit read from the database with its pending
// change applied.
func (w *writeSet) overlayDeposit(dep domain.Deposit) domain.Deposit {
	if p := w.transitions[dep.ID]; p != nil {
		return p.next
	}
	return dep
}

// debitsCustomer reports whether tr takes money from a customer account.
func debitsCustomer(tr domain.Transfer) bool {
	for _, p := range tr.Postings {
		if !domain.IsSystemAccount(p.AccountID) && p.Amount.IsNegative() {
			return true
		}
	}
	return false
}

// sameCurrency reports whether tr moves every account in the currency of
// that account's pending change. One pending total per account holds one
// currency: a transfer in another is written after a flush, and the
// balance update then refuses the mismatch with ErrCurrencyMismatch.
func (w *writeSet) sameCurrency(tr domain.Transfer) bool {
	for _, p := range tr.Postings {
		if a := w.deltas[p.AccountID]; a != nil && a.currency != p.Amount.Currency() {
			return false
		}
	}
	return true
}

func (w *writeSet) addTransfer(tr domain.Transfer) {
	w.transfers = append(w.transfers, tr)
	at := us(tr.CreatedAt)
	for _, p := range tr.Postings {
		if domain.IsSystemAccount(p.AccountID) {
			continue
		}
		a := w.deltas[p.AccountID]
		if a == nil {
			a = &accountDelta{currency: p.Amount.Currency()}
			w.deltas[p.AccountID] = a
		}
		a.minor += p.Amount.Minor()
		a.n++
		a.at = max(a.at, at)
	}
}

// overlay adds a's pending balance change to an account read from the
// database.
func (w *writeSet) overlay(a domain.Account) (domain.Account, error) {
	delta := w.deltas[a.ID()]
	if delta == nil {
		return a, nil
	}
	return domain.RehydrateAccount(a.ID(), a.CustomerID(), a.AdditionalCustomerID(), a.Currency(), a.Status(),
		a.Balance().Minor()+delta.minor, a.Version()+delta.n, a.CreatedAt(), fromUS(max(us(a.UpdatedAt()), delta.at)))
}

// flush writes the held writes. On failure the transaction is doomed: the
// error stays with the set, and it wraps errFlush unless the store knows
// the set held one caller's writes only (batch.go flushes after each item
// when it needs to know whose write failed).
func (t *tx) flush(ctx context.Context) error {
	w := t.ws
	if w.err != nil {
		return w.err
	}
	if w.empty() {
		return nil
	}
	t.dropViews()
	var err error
	if t.dialect == Postgres {
		err = t.writePostgres(ctx, w)
	} else {
		err = t.writeSQLite(ctx, w)
	}
	if err != nil {
		if t.shared {
			err = fmt.Errorf("%w: %w", errFlush, err)
		}
		w.err = err
		return err
	}
	t.ws = newWriteSet()
	return nil
}

// diagnoseBalance says why the balance of accountID did not take delta: the
// error the port names for it.
func (t *tx) diagnoseBalance(ctx context.Context, accountID string, delta domain.Amount) error {
	acc, err := t.reader.AccountByID(ctx, accountID)
	switch {
	case err != nil:
		return err
	case acc.Currency() != delta.Currency():
		return fmt.Errorf("%w: account %s is %s, posting is %s", domain.ErrCurrencyMismatch, accountID, acc.Currency(), delta.Currency())
	case acc.Status() == domain.AccountClosed:
		// The caller decided on an account read before it was closed
		// (another transaction closed it since): a lost race, which the
		// caller retries and then decides on the closed account.
		return fmt.Errorf("account %s was closed since it was read: %w", accountID, ports.ErrConflict)
	case delta.IsPositive():
		// The credit would pass the balance ceiling. The caller checks
		// the ceiling on the balance it read (domain.Account.CanCredit),
		// so another credit came in since: a lost race, retried and then
		// decided on the balance as it is.
		return fmt.Errorf("%w: account %s holds %s, credit %s: %w", domain.ErrBalanceCeiling, accountID, acc.Balance(), delta, ports.ErrConflict)
	}
	return fmt.Errorf("%w: account %s holds %s, posting %s", domain.ErrInsufficientFunds, accountID, acc.Balance(), delta)
}
