package contract_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
	"github.com/tiyn/tiyn/tests/pgtest"
)

// The writes a group-commit batch defers to its end (sqlstore/deferred.go)
// must look, through the transaction and after it, exactly like writes
// made at once: every store configuration runs these, and on
// postgres-group they take the deferred path.

// TestWritesVisibleInsideTheirTransaction reads back, inside one Update,
// every write a settlement makes, and checks what the port promises once
// Update returned (ids and balances filled in).
func TestWritesVisibleInsideTheirTransaction(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		a := e.insertAccount(t, "cust-vis", domain.KZT)
		d := e.insertDeposit(t, a, 40_000, base)
		at := base.Add(time.Minute)
		next := d
		next.Status, next.OperationID, next.SettledAt, next.Version = domain.DepositSucceeded, "op-vis", at, d.Version+1
		credit := e.transfer(t, domain.TransferDepositCredit, kassa.ClearingAccountID(), a.ID(), d.Amount, at)
		credit.DepositID = d.ID
		rec := &ports.InboxRecord{Channel: kassa, PaymentID: d.PaymentID, OperationID: "op-vis", Status: "success",
			Body: `{"k":"v"}`, Outcome: domain.EffectCredit, DepositID: d.ID, DedupeKey: "dedupe-vis", ReceivedAt: at}
		var applied domain.Transfer

		e.update(t, func(ctx context.Context, tx ports.Tx) error {
			if err := tx.TransitionDeposit(ctx, next, domain.DepositPending); err != nil {
				return err
			}
			var err error
			if applied, err = tx.ApplyTransfer(ctx, credit); err != nil {
				return err
			}
			if err := tx.InsertInbox(ctx, rec); err != nil {
				return err
			}

			// The deposit moved: by payment id, in the settle view, and a
			// second transition from pending loses.
			got, err := tx.DepositByPaymentID(ctx, kassa, d.PaymentID)
			if err != nil || got.Status != domain.DepositSucceeded || got.OperationID != "op-vis" || got.Version != d.Version+1 {
				return fmt.Errorf("deposit inside tx: %+v, %v", got, err)
			}
			other := next
			other.OperationID = "op-other"
			if err := tx.TransitionDeposit(ctx, other, domain.DepositPending); !errors.Is(err, ports.ErrConflict) {
				return fmt.Errorf("second transition from pending: %v, want ErrConflict", err)
			}
			view, err := tx.SettleView(ctx, kassa, d.PaymentID, "dedupe-vis")
			if err != nil || !view.Found || !view.Seen || view.Deposit.Status != domain.DepositSucceeded ||
				view.Account.ID() != a.ID() || view.Account.Balance().Minor() != 40_000 {
				return fmt.Errorf("settle view inside tx: %+v, %v", view, err)
			}
			if view, err := tx.SettleView(ctx, kassa, d.PaymentID, "dedupe-other"); err != nil || view.Seen {
				return fmt.Errorf("settle view of another key: seen=%v, %v", view.Seen, err)
			}

			// The balance moved, with its version.
			acc, err := tx.AccountByID(ctx, a.ID())
			if err != nil || acc.Balance().Minor() != 40_000 || acc.Version() != a.Version()+1 {
				return fmt.Errorf("account inside tx: balance %v version %d, %v", acc.Balance(), acc.Version(), err)
			}
			if acc, err := tx.AccountByCustomer(ctx, "cust-vis", domain.KZT); err != nil || acc.Balance().Minor() != 40_000 {
				return fmt.Errorf("account by customer inside tx: %v, %v", acc.Balance(), err)
			}

			// The callback is in the inbox.
			if seen, err := tx.InboxSeen(ctx, "dedupe-vis"); err != nil || !seen {
				return fmt.Errorf("InboxSeen inside tx: %v, %v", seen, err)
			}
			inbox, err := tx.ListInbox(ctx, ports.InboxQuery{PaymentID: d.PaymentID})
			if err != nil || len(inbox) != 1 || inbox[0].DedupeKey != "dedupe-vis" {
				return fmt.Errorf("ListInbox inside tx: %d records, %v", len(inbox), err)
			}

			// And the money is on the statement and in the derived balances.
			lines, err := tx.Statement(ctx, ports.StatementQuery{AccountID: a.ID()})
			if err != nil || len(lines) != 1 || lines[0].Amount.Minor() != 40_000 || lines[0].BalanceAfter.Minor() != 40_000 {
				return fmt.Errorf("statement inside tx: %+v, %v", lines, err)
			}
			if b, err := tx.DerivedBalance(ctx, a.ID()); err != nil || b != 40_000 {
				return fmt.Errorf("derived balance inside tx: %d, %v", b, err)
			}
			return nil
		})

		if rec.ID <= 0 {
			t.Errorf("inbox record id %d after Update returned", rec.ID)
		}
		if got := balanceAfter(t, applied, a.ID()); got != 40_000 {
			t.Errorf("credit's balance after = %d, want 40000", got)
		}
		if got := e.balance(t, a.ID()); got != 40_000 {
			t.Errorf("stored balance %d, want 40000", got)
		}
		e.healthy(t)
	})
}

// TestBatchNeighboursSurviveABadWrite submits good credits and one credit
// to an account that does not exist, all at once and without write keys
// (so on group commit they share batches): the bad one alone fails, with
// the error the port names, and every good one is credited once with
// balances after that follow each other.
func TestBatchNeighboursSurviveABadWrite(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		const n = 24
		a := e.insertAccount(t, "cust-batch", domain.KZT)
		deps := make([]domain.Deposit, n)
		for i := range deps {
			deps[i] = e.insertDeposit(t, a, int64(1_000*(i+1)), base)
		}
		errs := race(t, n+1, func(ctx context.Context, i int) error {
			return e.store.Batch(ctx, ports.Write{}, func(ctx context.Context, tx ports.Tx) error {
				at := base.Add(time.Duration(i) * time.Second)
				if i == n {
					tr, err := domain.NewTransfer(e.ids.NewID("trf"), domain.TransferDepositCredit,
						kassa.ClearingAccountID(), "acc_does_not_exist", domain.NewAmount(500, domain.KZT), at)
					if err != nil {
						return err
					}
					_, err = tx.ApplyTransfer(ctx, tr)
					return err
				}
				d := deps[i]
				next := d
				next.Status, next.OperationID, next.SettledAt, next.Version = domain.DepositSucceeded, fmt.Sprint("op-", i), at, d.Version+1
				if err := tx.TransitionDeposit(ctx, next, domain.DepositPending); err != nil {
					return err
				}
				tr, err := domain.NewTransfer(e.ids.NewID("trf"), domain.TransferDepositCredit,
					kassa.ClearingAccountID(), a.ID(), d.Amount, at)
				if err != nil {
					return err
				}
				tr.DepositID = d.ID
				_, err = tx.ApplyTransfer(ctx, tr)
				return err
			})
		})
		var want int64
		for i, err := range errs {
			switch {
			case i == n:
				wantErr(t, "credit to an unknown account", err, ports.ErrNotFound)
			case err != nil:
				t.Errorf("good credit %d failed beside a bad one: %v", i, err)
			default:
				want += deps[i].Amount.Minor()
			}
		}
		if got := e.balance(t, a.ID()); got != want {
			t.Errorf("balance %d, want %d", got, want)
		}
		lines, err := e.store.Statement(t.Context(), ports.StatementQuery{AccountID: a.ID(), Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var running int64
		for _, l := range lines {
			running += l.Amount.Minor()
			if l.BalanceAfter.Minor() != running {
				t.Fatalf("statement line %d: balance after %d, running sum %d", l.Seq, l.BalanceAfter.Minor(), running)
			}
		}
		if len(lines) != n || running != want {
			t.Errorf("statement: %d lines summing to %d, want %d lines summing to %d", len(lines), running, n, want)
		}
		e.healthy(t)
	})
}

// TestConcurrentDuplicateCallbacksOneCredit sends every callback of many
// deposits twice at once through the service, keyed as production keys
// them: one credit each, the twin a replay, whichever batch each lands in.
func TestConcurrentDuplicateCallbacksOneCredit(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		const n = 20
		var deps []domain.Deposit
		for i := range n {
			customer := fmt.Sprint("cust-dup-", i%4)
			if i < 4 {
				e.openAccount(t, customer)
			}
			deps = append(deps, e.openDeposit(t, customer, int64(10_000+i)))
		}
		results := make([]ports.SettleResult, 2*n)
		errs := race(t, 2*n, func(ctx context.Context, i int) error {
			var err error
			results[i], err = e.svc.SettleDeposit(ctx, e.success(deps[i/2], fmt.Sprint("op-dup-", i/2)))
			return err
		})
		for i := 0; i < 2*n; i += 2 {
			if errs[i] != nil || errs[i+1] != nil {
				t.Fatalf("deposit %d: %v / %v", i/2, errs[i], errs[i+1])
			}
			a, b := results[i].Effect, results[i+1].Effect
			if !(a == domain.EffectCredit && b == domain.EffectReplay || a == domain.EffectReplay && b == domain.EffectCredit) {
				t.Errorf("deposit %d: effects %s and %s, want one credit and one replay", i/2, a, b)
			}
			if results[i].InboxID <= 0 || results[i+1].InboxID <= 0 || results[i].InboxID == results[i+1].InboxID {
				t.Errorf("deposit %d: inbox ids %d and %d", i/2, results[i].InboxID, results[i+1].InboxID)
			}
		}
		if c := e.healthy(t); c.Transfers != n {
			t.Errorf("%d transfers, want %d", c.Transfers, n)
		}
	})
}

// TestDeferredFlushFailurePostgres makes sure the path above is the one
// taken: batches held open long enough to share (BatchWait), so the bad
// credit's flush fails with good neighbours in its batch, and the store
// re-runs the batch without deferral.
func TestDeferredFlushFailurePostgres(t *testing.T) {
	t.Parallel()
	s := pgtest.Open(t, sqlstore.Options{GroupCommit: true, BatchWait: 50 * time.Millisecond, MaxOpenConns: pgMaxConns})
	e := groupEnv(s)
	ids := e.ids
	a := e.insertAccount(t, "cust-flush", domain.KZT)
	const n = 8
	deps := make([]domain.Deposit, n)
	for i := range deps {
		deps[i] = e.insertDeposit(t, a, 1_000, base)
	}
	before := s.BatchStats()
	errs := race(t, n+1, func(ctx context.Context, i int) error {
		return s.Batch(ctx, ports.Write{}, func(ctx context.Context, tx ports.Tx) error {
			target, amount := a.ID(), int64(1_000)
			if i == n {
				target = "acc_does_not_exist"
			} else {
				next := deps[i]
				next.Status, next.OperationID, next.Version = domain.DepositSucceeded, fmt.Sprint("op-", i), deps[i].Version+1
				if err := tx.TransitionDeposit(ctx, next, domain.DepositPending); err != nil {
					return err
				}
			}
			tr, err := domain.NewTransfer(ids.NewID("trf"), domain.TransferDepositCredit, kassa.ClearingAccountID(), target,
				domain.NewAmount(amount, domain.KZT), base)
			if err != nil {
				return err
			}
			if i < n {
				tr.DepositID = deps[i].ID
			}
			_, err = tx.ApplyTransfer(ctx, tr)
			return err
		})
	})
	for i, err := range errs {
		if i == n {
			wantErr(t, "credit to an unknown account", err, ports.ErrNotFound)
		} else if err != nil {
			t.Errorf("credit %d: %v", i, err)
		}
	}
	after := s.BatchStats()
	if after.Restarts == before.Restarts {
		t.Errorf("no batch was re-run (batches %d → %d): the bad credit never shared a batch", before.Batches, after.Batches)
	}
	if got := e.balance(t, a.ID()); got != n*1_000 {
		t.Errorf("balance %d, want %d", got, n*1_000)
	}
	e.healthy(t)
}

// TestDeferredTransitionOfADepositThatMovedMeanwhile: on postgres-group a
// deposit's transition is written at the batch's end, conditional on the
// status it was decided on. Another transaction moves the deposit between
// the batch's read and its flush: the flush must not count the transition
// as done; the batch runs again, where the transition meets ErrConflict.
func TestDeferredTransitionOfADepositThatMovedMeanwhile(t *testing.T) {
	t.Parallel()
	s, other := groupAndPlainStores(t)
	e := groupEnv(s)
	a := e.insertAccount(t, "cust-moved", domain.KZT)
	// First batches whose flush succeeds, with each kind of deferred row
	// and with some kinds missing: none may re-run.
	before := s.BatchStats()
	credited := e.openDeposit(t, "cust-moved", 700) // a deposit insert alone
	declined := e.openDeposit(t, "cust-moved", 800)
	if res := e.settle(t, e.success(credited, "op-ok")); res.Effect != domain.EffectCredit {
		t.Fatalf("credit: %+v", res)
	}
	if res := e.settle(t, e.decline(declined, "op-no")); res.Effect != domain.EffectDecline {
		t.Fatalf("decline: %+v", res) // a transition and an inbox row, no transfer
	}
	if after := s.BatchStats(); after.Restarts != before.Restarts || after.Batches-before.Batches < 4 {
		t.Errorf("4 clean writes re-ran their batches %d time(s) in %d batches: a deferred flush failed",
			after.Restarts-before.Restarts, after.Batches-before.Batches)
	}
	if got := e.balance(t, a.ID()); got != 700 {
		t.Errorf("balance %d after the credit, want 700", got)
	}
	d := e.insertDeposit(t, a, 1_000, base)
	runs := 0
	err := s.Batch(t.Context(), ports.Write{}, func(ctx context.Context, tx ports.Tx) error {
		runs++
		if _, err := tx.DepositByPaymentID(ctx, kassa, d.PaymentID); err != nil {
			return err
		}
		if runs == 1 {
			// Declined elsewhere, after this transaction read it.
			err := other.Update(ctx, func(ctx context.Context, tx ports.Tx) error {
				declined := d
				declined.Status, declined.Version = domain.DepositDeclined, d.Version+1
				return tx.TransitionDeposit(ctx, declined, domain.DepositPending)
			})
			if err != nil {
				return err
			}
		}
		next := d
		next.Status, next.OperationID, next.Version = domain.DepositSucceeded, "op-late", d.Version+1
		return tx.TransitionDeposit(ctx, next, domain.DepositPending)
	})
	wantErr(t, "a transition from a status the deposit left", err, ports.ErrConflict)
	if runs < 2 {
		t.Errorf("the batch ran %d time(s); the failed flush should have re-run it", runs)
	}
	got, err := s.DepositByPaymentID(t.Context(), kassa, d.PaymentID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != domain.DepositDeclined || got.Version != d.Version+1 {
		t.Errorf("deposit %s v%d, want declined v%d", got.Status, got.Version, d.Version+1)
	}
	e.healthy(t)
}

// TestDeferredFlushLocksDepositsBeforeAccounts: the flush must lock a
// deposit before its account, as the immediate path does (transition,
// then transfer), or a flush and another transaction taking the same two
// rows in that order deadlock. Another transaction holds the deposit's
// row while the batch flushes, then takes the account's row: with the
// accounts locked first by the flush, that second lock waits for the
// flush, which waits for the first, and PostgreSQL breaks the cycle after
// deadlock_timeout by failing one of them.
func TestDeferredFlushLocksDepositsBeforeAccounts(t *testing.T) {
	t.Parallel()
	s, other := groupAndPlainStores(t)
	e := groupEnv(s)
	ids := e.ids
	a := e.insertAccount(t, "cust-lock-order", domain.KZT)
	d := e.insertDeposit(t, a, 1_000, base)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// The other transaction takes the deposit's row first.
	held, err := other.DB().DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = held.Rollback() }()
	if _, err := held.ExecContext(ctx, "UPDATE deposits SET version = version WHERE id = '"+d.ID+"'"); err != nil {
		t.Fatal(err)
	}
	before := s.BatchStats()
	done := make(chan error, 1)
	go func() {
		done <- s.Batch(ctx, ports.Write{}, func(ctx context.Context, tx ports.Tx) error {
			next := d
			next.Status, next.OperationID, next.Version = domain.DepositSucceeded, "op-lock", d.Version+1
			if err := tx.TransitionDeposit(ctx, next, domain.DepositPending); err != nil {
				return err
			}
			tr, err := domain.NewTransfer(ids.NewID("trf"), domain.TransferDepositCredit, kassa.ClearingAccountID(), a.ID(),
				domain.NewAmount(1_000, domain.KZT), base)
			if err != nil {
				return err
			}
			tr.DepositID = d.ID
			_, err = tx.ApplyTransfer(ctx, tr)
			return err
		})
	}()
	// Wait until the flush waits for the deposit's row (bounded).
	waiting := false
	for i := 0; i < 500 && !waiting; i++ {
		var n int
		err := other.DB().DB.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		waiting = n > 0
		if !waiting {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if !waiting {
		t.Fatal("the batch's flush never waited for the held deposit row")
	}
	// Now the account: it must not be locked by the waiting flush.
	if _, err := held.ExecContext(ctx, "UPDATE accounts SET version = version WHERE id = '"+a.ID()+"'"); err != nil {
		t.Fatalf("the other transaction's account update, while the flush waits: %v", err)
	}
	if err := held.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the batch: %v", err)
	}
	if after := s.BatchStats(); after.Restarts != before.Restarts {
		t.Errorf("the batch re-ran %d time(s)", after.Restarts-before.Restarts)
	}
	if got := e.balance(t, a.ID()); got != 1_000 {
		t.Errorf("balance %d, want 1000", got)
	}
	e.healthy(t)
}

// TestDeferredTransitionOfADepositInsertedInTheBatch: on postgres-group a
// deposit inserted and transitioned in one transaction, with no read in
// between, is transitioned (the flush's parts cannot see each other's
// rows, so the insert is written first) without re-running the batch.
func TestDeferredTransitionOfADepositInsertedInTheBatch(t *testing.T) {
	t.Parallel()
	s := pgtest.Open(t, sqlstore.Options{GroupCommit: true, MaxOpenConns: pgMaxConns})
	e := groupEnv(s)
	a := e.insertAccount(t, "cust-insert-transition", domain.KZT)
	d := e.newDeposit(t, kassa, a, 1_000, base)
	before := s.BatchStats()
	e.update(t, func(ctx context.Context, tx ports.Tx) error {
		if err := tx.InsertDeposit(ctx, d); err != nil {
			return err
		}
		next := d
		next.Status, next.Version = domain.DepositDeclined, d.Version+1
		return tx.TransitionDeposit(ctx, next, domain.DepositPending)
	})
	if after := s.BatchStats(); after.Restarts != before.Restarts {
		t.Errorf("the batch re-ran %d time(s): the flush transitioned a deposit it inserted", after.Restarts-before.Restarts)
	}
	got, err := s.DepositByPaymentID(t.Context(), kassa, d.PaymentID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != domain.DepositDeclined || got.Version != d.Version+1 {
		t.Errorf("deposit %s v%d, want declined v%d", got.Status, got.Version, d.Version+1)
	}
}

// TestMixedCurrencyCreditsInOneTransaction: a credit in another currency
// than the account's is refused with ErrCurrencyMismatch and nothing of
// the transaction stays, also when an earlier credit of the same
// transaction is still waiting to be written (deferred on postgres-group).
func TestMixedCurrencyCreditsInOneTransaction(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		a := e.insertAccount(t, "cust-mixed", domain.KZT)
		err := e.updateErr(t, func(ctx context.Context, tx ports.Tx) error {
			kzt := e.transfer(t, domain.TransferExceptionCredit, kassa.ClearingAccountID(), a.ID(), domain.NewAmount(10_000, domain.KZT), base)
			kzt.ExceptionID = "exc_mixed_1"
			if _, err := tx.ApplyTransfer(ctx, kzt); err != nil {
				return err
			}
			other := e.transfer(t, domain.TransferExceptionCredit, "clearing:monetix:kassa24:xts", a.ID(), domain.NewAmount(500, xts), base)
			other.ExceptionID = "exc_mixed_2"
			_, err := tx.ApplyTransfer(ctx, other)
			return err
		})
		wantErr(t, "a XTS credit to a KZT account after a KZT credit", err, domain.ErrCurrencyMismatch)
		if got := e.balance(t, a.ID()); got != 0 {
			t.Errorf("balance %d after a refused transaction, want 0", got)
		}
		e.healthy(t)
	})
}

// TestReadAheadSeesEarlierWrites names settle views for read-ahead
// (ports.Write.Settle) and then, inside one transaction, writes the
// rows they hold in each way a batch can — deferred (a transition, a
// credit, an inbox row), flushed by a read, at once (a debit; an account
// status change) — reading the views again after each: SettleView must
// always answer what a fresh read would. On postgres-group the views come
// from the read-ahead (BatchStats.ReadAhead proves it); the other stores
// ignore the hint and must answer the same.
func TestReadAheadSeesEarlierWrites(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		a := e.insertAccount(t, "cust-ahead", domain.KZT)
		at := base.Add(time.Minute)
		balance := int64(0)
		// ahead runs fn in one Update whose views of d are named for
		// read-ahead, with d's first view read (from the read-ahead on
		// postgres-group) and checked before fn writes.
		ahead := func(step string, d domain.Deposit, fn func(ctx context.Context, tx ports.Tx) error) {
			t.Helper()
			w := ports.Write{
				Settle: []ports.SettleKey{{Channel: kassa, PaymentID: d.PaymentID, DedupeKey: "ahead-" + d.ID},
					{Channel: kassa, PaymentID: "pay-ahead-unknown", DedupeKey: "ahead-unknown"}},
				Accounts: []ports.AccountKey{{CustomerID: "cust-ahead", Currency: domain.KZT},
					{CustomerID: "cust-ahead-nobody", Currency: domain.KZT}},
			}
			before := e.store.BatchStats().ReadAhead
			if err := e.store.Batch(t.Context(), w, func(ctx context.Context, tx ports.Tx) error {
				e.checkView(t, step+", first read", tx, d, a.ID(), domain.DepositPending, false, balance, domain.AccountActive)
				if v, err := tx.SettleView(ctx, kassa, "pay-ahead-unknown", "ahead-unknown"); err != nil || v.Found || v.Seen {
					t.Errorf("%s: unknown deposit: %+v, %v", step, v, err)
				}
				if _, err := tx.AccountByCustomer(ctx, "cust-ahead-nobody", domain.KZT); !errors.Is(err, ports.ErrNotFound) {
					t.Errorf("%s: unknown customer: %v, want ErrNotFound", step, err)
				}
				return fn(ctx, tx)
			}); err != nil {
				t.Fatalf("%s: %v", step, err)
			}
			if got := e.store.BatchStats().ReadAhead - before; e.cfg.name == "postgres-group" && got < 2 {
				t.Errorf("%s: %d reads came from the read-ahead, want the first view and account at least", step, got)
			}
		}
		credit := func(ctx context.Context, tx ports.Tx, d domain.Deposit) error {
			next := d
			next.Status, next.OperationID, next.SettledAt, next.Version = domain.DepositSucceeded, "op-"+d.ID, at, d.Version+1
			if err := tx.TransitionDeposit(ctx, next, domain.DepositPending); err != nil {
				return err
			}
			tr := e.transfer(t, domain.TransferDepositCredit, kassa.ClearingAccountID(), a.ID(), d.Amount, at)
			tr.DepositID = d.ID
			if _, err := tx.ApplyTransfer(ctx, tr); err != nil {
				return err
			}
			balance += d.Amount.Minor()
			return tx.InsertInbox(ctx, &ports.InboxRecord{Channel: kassa, PaymentID: d.PaymentID, OperationID: next.OperationID,
				Status: "success", Body: `{}`, Outcome: domain.EffectCredit, DepositID: d.ID, DedupeKey: "ahead-" + d.ID, ReceivedAt: at})
		}

		// Deferred writes (postgres-group): seen through the view.
		d := e.insertDeposit(t, a, 40_000, base)
		ahead("deferred credit", d, func(ctx context.Context, tx ports.Tx) error {
			if err := credit(ctx, tx, d); err != nil {
				return err
			}
			e.checkView(t, "after a deferred credit", tx, d, a.ID(), domain.DepositSucceeded, true, balance, domain.AccountActive)
			return nil
		})

		// A read that flushes the deferred writes first.
		d = e.insertDeposit(t, a, 1_000, base)
		ahead("flushed credit", d, func(ctx context.Context, tx ports.Tx) error {
			if err := credit(ctx, tx, d); err != nil {
				return err
			}
			if _, err := tx.Statement(ctx, ports.StatementQuery{AccountID: a.ID()}); err != nil {
				return err
			}
			e.checkView(t, "after a flush", tx, d, a.ID(), domain.DepositSucceeded, true, balance, domain.AccountActive)
			return nil
		})

		// A debit, which runs at once.
		d = e.insertDeposit(t, a, 2_000, base)
		ahead("debit", d, func(ctx context.Context, tx ports.Tx) error {
			debit := e.transfer(t, domain.TransferDebit, a.ID(), domain.RevenueAccountID, domain.NewAmount(15_000, domain.KZT), at)
			if _, err := tx.ApplyTransfer(ctx, debit); err != nil {
				return err
			}
			balance -= 15_000
			e.checkView(t, "after a debit", tx, d, a.ID(), domain.DepositPending, false, balance, domain.AccountActive)
			return nil
		})

		// An account status change, with nothing deferred to flush.
		ahead("blocking", d, func(ctx context.Context, tx ports.Tx) error {
			cur, err := tx.AccountByID(ctx, a.ID())
			if err != nil {
				return err
			}
			blocked, err := cur.ChangeStatus(domain.AccountBlocked, at)
			if err != nil {
				return err
			}
			if err := tx.UpdateAccountStatus(ctx, blocked, cur.Version()); err != nil {
				return err
			}
			e.checkView(t, "after blocking", tx, d, a.ID(), domain.DepositPending, false, balance, domain.AccountBlocked)
			return nil
		})

		if got := e.balance(t, a.ID()); got != balance || balance != 26_000 {
			t.Errorf("balance %d (tracked %d), want 26000", got, balance)
		}
		e.healthy(t)
	})
}

// checkView reads d's settle view through tx and compares it with what is
// wanted.
func (e *env) checkView(t *testing.T, step string, tx ports.Tx, d domain.Deposit, accountID string,
	status domain.DepositStatus, seen bool, balance int64, acc domain.AccountStatus) {
	t.Helper()
	v, err := tx.SettleView(t.Context(), kassa, d.PaymentID, "ahead-"+d.ID)
	switch {
	case err != nil:
		t.Errorf("%s: settle view: %v", step, err)
	case !v.Found || v.Deposit.ID != d.ID || v.Account.ID() != accountID:
		t.Errorf("%s: settle view of another deposit or none: %+v", step, v)
	case v.Deposit.Status != status || v.Seen != seen || v.Account.Balance().Minor() != balance || v.Account.Status() != acc:
		t.Errorf("%s: deposit %s, seen %v, balance %d, account %s; want %s, %v, %d, %s", step, v.Deposit.Status, v.Seen,
			v.Account.Balance().Minor(), v.Account.Status(), status, seen, balance, acc)
	}
	// The same account read by customer (read ahead too on postgres-group).
	got, err := tx.AccountByCustomer(t.Context(), "cust-ahead", domain.KZT)
	if err != nil || got.ID() != accountID || got.Balance().Minor() != balance || got.Status() != acc {
		t.Errorf("%s: account by customer: %s balance %d %s, %v; want %s %d %s", step, got.ID(), got.Balance().Minor(),
			got.Status(), err, accountID, balance, acc)
	}
}

// TestReadAheadFailureFailsOnlyItsItem stores a deposit the service cannot
// read (a currency it does not know, as a row written by a newer or a
// broken version might hold) beside good ones of the same account, and
// settles them all at once through the service on postgres-group, in
// shared batches: the read-ahead of such a batch fails, the batch runs
// again with each item reading for itself, and only the bad callback
// fails.
func TestReadAheadFailureFailsOnlyItsItem(t *testing.T) {
	t.Parallel()
	s := pgtest.Open(t, sqlstore.Options{GroupCommit: true, BatchWait: 50 * time.Millisecond, MaxOpenConns: pgMaxConns})
	e := groupEnv(s)
	a := e.openAccount(t, "cust-ahead-bad")
	const n = 8
	deps := make([]domain.Deposit, n+1)
	for i := range deps {
		deps[i] = e.openDeposit(t, "cust-ahead-bad", 1_000)
	}
	if _, err := s.DB().ExecContext(t.Context(), `UPDATE deposits SET currency = 'QQQ' WHERE id = ?`, deps[n].ID); err != nil {
		t.Fatal(err)
	}
	before := s.BatchStats()
	errs := race(t, n+1, func(ctx context.Context, i int) error {
		_, err := e.svc.SettleDeposit(ctx, e.success(deps[i], fmt.Sprint("op-ahead-bad-", i)))
		return err
	})
	for i, err := range errs {
		if i == n {
			if err == nil {
				t.Error("the callback of the unreadable deposit succeeded")
			}
		} else if err != nil {
			t.Errorf("callback %d failed beside an unreadable neighbour: %v", i, err)
		}
	}
	if after := s.BatchStats(); after.Restarts == before.Restarts {
		t.Errorf("no batch was re-run (batches %d → %d): the unreadable deposit never shared a read-ahead", before.Batches, after.Batches)
	}
	if got := e.balance(t, a.ID()); got != n*1_000 {
		t.Errorf("balance %d, want %d", got, n*1_000)
	}
}

// TestNoBalanceOfAClosedAccountMoves: a transfer decided on an account
// read before it was closed (another transaction closed it since) is
// refused with ErrConflict — the caller retries and decides again on the
// closed account — whether it would credit or debit, at once or deferred
// (postgres-group), alone or after a good credit in the same transaction.
func TestNoBalanceOfAClosedAccountMoves(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		closed := e.insertAccount(t, "cust-closed", domain.KZT)
		open := e.insertAccount(t, "cust-open", domain.KZT)
		e.update(t, func(ctx context.Context, tx ports.Tx) error {
			c, err := closed.ChangeStatus(domain.AccountClosed, base)
			if err != nil {
				return err
			}
			return tx.UpdateAccountStatus(ctx, c, closed.Version())
		})
		credit := func(target string, exc string) domain.Transfer {
			tr := e.transfer(t, domain.TransferExceptionCredit, kassa.ClearingAccountID(), target, domain.NewAmount(5_000, domain.KZT), base)
			tr.ExceptionID = exc
			return tr
		}
		err := e.updateErr(t, func(ctx context.Context, tx ports.Tx) error {
			_, err := tx.ApplyTransfer(ctx, credit(closed.ID(), "exc-closed-1"))
			return err
		})
		wantErr(t, "a credit to a closed account", err, ports.ErrConflict)
		err = e.updateErr(t, func(ctx context.Context, tx ports.Tx) error {
			if _, err := tx.ApplyTransfer(ctx, credit(open.ID(), "exc-closed-2")); err != nil {
				return err
			}
			_, err := tx.ApplyTransfer(ctx, credit(closed.ID(), "exc-closed-3"))
			return err
		})
		wantErr(t, "a credit to a closed account after a good one", err, ports.ErrConflict)
		err = e.updateErr(t, func(ctx context.Context, tx ports.Tx) error {
			debit := e.transfer(t, domain.TransferDebit, closed.ID(), domain.RevenueAccountID, domain.NewAmount(1, domain.KZT), base)
			_, err := tx.ApplyTransfer(ctx, debit)
			return err
		})
		wantErr(t, "a debit from a closed account", err, ports.ErrConflict)
		if got := e.balance(t, closed.ID()); got != 0 {
			t.Errorf("closed account's balance %d, want 0", got)
		}
		if got := e.balance(t, open.ID()); got != 0 {
			t.Errorf("open account's balance %d after its transaction was refused, want 0", got)
		}
		e.healthy(t)
	})
}

// TestDepositInsertedInItsTransaction opens a deposit and, in the same
// transaction, finds it by payment id, in its settle view and in the
// list, settles and credits it, and tries its payment id again: the insert
// reads and behaves as if made at once (on postgres-group it is deferred
// to the batch's end).
func TestDepositInsertedInItsTransaction(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		a := e.insertAccount(t, "cust-newdep", domain.KZT)
		d := e.newDeposit(t, kassa, a, 7_000, base)
		at := base.Add(time.Minute)
		e.update(t, func(ctx context.Context, tx ports.Tx) error {
			if err := tx.InsertDeposit(ctx, d); err != nil {
				return err
			}
			got, err := tx.DepositByPaymentID(ctx, kassa, d.PaymentID)
			if err != nil || got.ID != d.ID || got.Status != domain.DepositPending {
				return fmt.Errorf("deposit by payment id inside its tx: %+v, %v", got, err)
			}
			v, err := tx.SettleView(ctx, kassa, d.PaymentID, "newdep-1")
			if err != nil || !v.Found || v.Seen || v.Deposit.ID != d.ID || v.Account.ID() != a.ID() {
				return fmt.Errorf("settle view inside its tx: %+v, %v", v, err)
			}
			// A second one, still pending, shows in the list.
			d2 := e.newDeposit(t, kassa, a, 8_000, base)
			if err := tx.InsertDeposit(ctx, d2); err != nil {
				return err
			}
			list, err := tx.ListDeposits(ctx, ports.DepositQuery{AccountID: a.ID()})
			if err != nil || len(list) != 2 {
				return fmt.Errorf("list inside the tx: %d deposits, %v", len(list), err)
			}
			// Settle the first in the same transaction.
			next := d
			next.Status, next.OperationID, next.SettledAt, next.Version = domain.DepositSucceeded, "op-newdep", at, d.Version+1
			if err := tx.TransitionDeposit(ctx, next, domain.DepositPending); err != nil {
				return err
			}
			credit := e.transfer(t, domain.TransferDepositCredit, kassa.ClearingAccountID(), a.ID(), d.Amount, at)
			credit.DepositID = d.ID
			_, err = tx.ApplyTransfer(ctx, credit)
			return err
		})
		if got := e.deposit(t, d); got.Status != domain.DepositSucceeded {
			t.Errorf("deposit %s after commit, want succeeded", got.Status)
		}
		if got := e.balance(t, a.ID()); got != 7_000 {
			t.Errorf("balance %d, want 7000", got)
		}

		// The same payment id twice in one transaction: the second is refused
		// and nothing of the transaction stays.
		d3 := e.newDeposit(t, kassa, a, 9_000, base)
		err := e.updateErr(t, func(ctx context.Context, tx ports.Tx) error {
			if err := tx.InsertDeposit(ctx, d3); err != nil {
				return err
			}
			again := e.newDeposit(t, kassa, a, 9_500, base)
			again.PaymentID = d3.PaymentID
			return tx.InsertDeposit(ctx, again)
		})
		wantErr(t, "a payment id twice in one transaction", err, ports.ErrConflict)
		if _, err := e.store.DepositByPaymentID(t.Context(), kassa, d3.PaymentID); !errors.Is(err, ports.ErrNotFound) {
			t.Errorf("the refused transaction's deposit: %v, want ErrNotFound", err)
		}
		// And a payment id already stored.
		err = e.updateErr(t, func(ctx context.Context, tx ports.Tx) error {
			again := e.newDeposit(t, kassa, a, 9_500, base)
			again.PaymentID = d.PaymentID
			return tx.InsertDeposit(ctx, again)
		})
		wantErr(t, "a stored payment id again", err, ports.ErrConflict)
		e.healthy(t)
	})
}

// eachGroupStore is eachStore for the configurations with group commit.
func eachGroupStore(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	for _, cfg := range storeConfigs {
		if !cfg.group {
			continue
		}
		t.Run(cfg.name, func(t *testing.T) {
			t.Parallel()
			s := openStore(t, cfg)
			ids := &system.IDs{}
			fn(t, &env{cfg: cfg, store: s, svc: app.NewService(s, system.Clock{}, ids), ids: ids})
		})
	}
}

// groupEnv is an env on s, a PostgreSQL store with group commit, for the
// tests that need options eachStore does not give.
func groupEnv(s *sqlstore.Store) *env {
	ids := &system.IDs{}
	return &env{cfg: storeConfig{"postgres-group", sqlstore.Postgres, true}, store: s,
		svc: app.NewService(s, system.Clock{}, ids), ids: ids}
}

// groupAndPlainStores opens two stores on one fresh PostgreSQL database:
// one with group commit (the store under test) and one without (another
// writer, as a second instance would be).
func groupAndPlainStores(t *testing.T) (group, plain *sqlstore.Store) {
	t.Helper()
	url := pgtest.URL(t)
	open := func(gc bool) *sqlstore.Store {
		s, err := sqlstore.Open(t.Context(), sqlstore.Options{URL: url, GroupCommit: gc, MaxOpenConns: pgMaxConns})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	return open(true), open(false)
}

// TestFailedCommitAnswersNoMember makes COMMIT itself fail inside a
// group-commit batch — a deferred constraint that only COMMIT checks — and
// checks that no member of the batch is answered as committed, and that
// none of their writes is stored. A member answered nil here would be a
// callback acknowledged 200 and then lost.
func TestFailedCommitAnswersNoMember(t *testing.T) {
	t.Parallel()
	eachGroupStore(t, func(t *testing.T, e *env) {
		// A row that makes COMMIT fail: on PostgreSQL a deferred
		// constraint trigger, on SQLite a deferred foreign key.
		var ddl []string
		if e.cfg.dialect == sqlstore.Postgres {
			ddl = []string{
				`CREATE FUNCTION refuse_commit() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN RAISE EXCEPTION 'commit refused by the test'; END $$`,
				`CREATE CONSTRAINT TRIGGER refuse_commit AFTER INSERT ON audit_log DEFERRABLE INITIALLY DEFERRED
				FOR EACH ROW WHEN (NEW.action = 'fail-commit') EXECUTE FUNCTION refuse_commit()`,
			}
		} else {
			ddl = []string{
				`CREATE TABLE guard_parent (id INTEGER PRIMARY KEY)`,
				`CREATE TABLE guard_child (pid INTEGER REFERENCES guard_parent (id) DEFERRABLE INITIALLY DEFERRED)`,
				`CREATE TRIGGER refuse_commit AFTER INSERT ON audit_log WHEN NEW.action = 'fail-commit'
				BEGIN INSERT INTO guard_child (pid) VALUES (42); END`,
			}
		}
		for _, q := range ddl {
			e.exec(t, q)
		}
		const n = 16
		hold, holding, queued := make(chan struct{}), make(chan struct{}), make(chan struct{}, n)
		holderDone := make(chan error, 1)
		// The holder's batch runs while the others queue behind it, so
		// they form the next batch together.
		go func() {
			var once sync.Once
			holderDone <- e.store.Batch(t.Context(), ports.Write{}, func(ctx context.Context, tx ports.Tx) error {
				once.Do(func() { close(holding) })
				<-hold
				return tx.AppendAudit(ctx, ports.AuditEntry{Actor: "test", Action: "holder", Subject: "h", At: base})
			})
		}()
		<-holding
		errs := make(chan error, n)
		for i := range n {
			go func() {
				queued <- struct{}{}
				errs <- e.store.Batch(t.Context(), ports.Write{}, func(ctx context.Context, tx ports.Tx) error {
					action := "batch-member"
					if i == n/2 {
						action = "fail-commit"
					}
					return tx.AppendAudit(ctx, ports.AuditEntry{Actor: "test", Action: action, Subject: fmt.Sprint(i), At: base})
				})
			}()
		}
		for range n {
			<-queued
		}
		time.Sleep(50 * time.Millisecond) // the members reach the queue
		close(hold)
		if err := <-holderDone; err != nil {
			t.Fatalf("holder: %v", err)
		}
		failed := 0
		for range n {
			if err := <-errs; err != nil {
				failed++
			}
		}
		var stored int
		if err := e.store.DB().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM audit_log WHERE action IN ('batch-member', 'fail-commit')`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		// A member may have run in a batch of its own before the others
		// (then it committed, and says so); every member that shared the
		// failing commit must be answered with an error.
		if failed+stored != n {
			t.Fatalf("%d members answered an error and %d rows are stored: %d answered as committed without being so", failed, stored, n-failed-stored)
		}
		if failed < 2 {
			t.Fatalf("only %d members failed: the failing commit was not shared (the test proves nothing)", failed)
		}
		var bad int
		if err := e.store.DB().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM audit_log WHERE action = 'fail-commit'`).Scan(&bad); err != nil || bad != 0 {
			t.Fatalf("the refused row is stored (%d, %v)", bad, err)
		}
	})
}
