package contract_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// Port-level contract: every method of ports.Reader, ports.Tx and
// ports.Store, and every error their doc comments name.

func TestAccountInsertAndRead(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		a := e.insertAccount(t, "cust-1", domain.KZT)

		got, err := e.store.AccountByID(ctx, a.ID())
		if err != nil {
			t.Fatal(err)
		}
		if got.ID() != a.ID() || got.CustomerID() != "cust-1" || got.AdditionalCustomerID() != "add-cust-1" ||
			got.Currency() != domain.KZT || got.Status() != domain.AccountActive || !got.Balance().IsZero() ||
			got.Version() != a.Version() || !got.CreatedAt().Equal(a.CreatedAt()) || !got.UpdatedAt().Equal(a.UpdatedAt()) {
			t.Fatalf("read back %+v, stored %+v", got, a)
		}
		byCustomer, err := e.store.AccountByCustomer(ctx, "cust-1", domain.KZT)
		if err != nil || byCustomer.ID() != a.ID() {
			t.Fatalf("AccountByCustomer = %v, %v", byCustomer.ID(), err)
		}

		_, err = e.store.AccountByID(ctx, "acc_unknown")
		wantErr(t, "AccountByID unknown", err, ports.ErrNotFound)
		_, err = e.store.AccountByCustomer(ctx, "cust-1", xts)
		wantErr(t, "AccountByCustomer other currency", err, ports.ErrNotFound)
		_, err = e.store.AccountByCustomer(ctx, "cust-unknown", domain.KZT)
		wantErr(t, "AccountByCustomer unknown customer", err, ports.ErrNotFound)

		// A second account for the same customer and currency is refused,
		// whatever its id; the refused write leaves nothing behind.
		twin := e.newAccount(t, "cust-1", domain.KZT)
		err = e.updateErr(t, func(ctx context.Context, tx ports.Tx) error { return tx.InsertAccount(ctx, twin) })
		wantErr(t, "InsertAccount same customer and currency", err, ports.ErrConflict)
		_, err = e.store.AccountByID(ctx, twin.ID())
		wantErr(t, "refused twin", err, ports.ErrNotFound)

		// The same id again is refused too.
		sameID, err := domain.NewAccount(a.ID(), "cust-2", "", domain.KZT, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		err = e.updateErr(t, func(ctx context.Context, tx ports.Tx) error { return tx.InsertAccount(ctx, sameID) })
		wantErr(t, "InsertAccount same id", err, ports.ErrConflict)

		// The same customer in another currency is another account.
		other := e.insertAccount(t, "cust-1", xts)
		if got, err := e.store.AccountByCustomer(ctx, "cust-1", xts); err != nil || got.ID() != other.ID() {
			t.Fatalf("AccountByCustomer XTS = %v, %v", got.ID(), err)
		}
	})
}

func TestUpdateAccountStatus(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		a := e.insertAccount(t, "cust-1", domain.KZT)
		blocked, err := a.ChangeStatus(domain.AccountBlocked, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		e.update(t, func(ctx context.Context, tx ports.Tx) error { return tx.UpdateAccountStatus(ctx, blocked, a.Version()) })
		got, err := e.store.AccountByID(ctx, a.ID())
		if err != nil || got.Status() != domain.AccountBlocked || got.Version() != blocked.Version() {
			t.Fatalf("after block: %v %v v%d, %v", got.ID(), got.Status(), got.Version(), err)
		}

		// A writer still holding the old version loses.
		closed, err := a.ChangeStatus(domain.AccountClosed, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		err = e.updateErr(t, func(ctx context.Context, tx ports.Tx) error { return tx.UpdateAccountStatus(ctx, closed, a.Version()) })
		wantErr(t, "UpdateAccountStatus stale version", err, ports.ErrConflict)
		if got, _ := e.store.AccountByID(ctx, a.ID()); got.Status() != domain.AccountBlocked {
			t.Fatalf("stale write changed the status to %s", got.Status())
		}

		ghost := e.newAccount(t, "ghost", domain.KZT)
		ghostBlocked, err := ghost.ChangeStatus(domain.AccountBlocked, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		err = e.updateErr(t, func(ctx context.Context, tx ports.Tx) error {
			return tx.UpdateAccountStatus(ctx, ghostBlocked, ghost.Version())
		})
		wantErr(t, "UpdateAccountStatus unknown account", err, ports.ErrNotFound)
	})
}

func TestDepositInsertAndRead(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		a := e.insertAccount(t, "cust-1", domain.KZT)
		d := e.insertDeposit(t, a, 150_000, base)

		got, err := e.store.DepositByPaymentID(ctx, kassa, d.PaymentID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != d.ID || got.Channel != d.Channel || got.PaymentID != d.PaymentID || got.AccountID != a.ID() ||
			got.CustomerID != "cust-1" || got.Amount != d.Amount || got.Status != domain.DepositPending ||
			got.OperationID != "" || got.Version != d.Version || !got.CreatedAt.Equal(base) || !got.SettledAt.IsZero() {
			t.Fatalf("read back %+v, stored %+v", got, d)
		}

		// The same payment id in the same provider project is refused.
		twin := d
		twin.ID = e.ids.NewID("dep")
		err = e.updateErr(t, func(ctx context.Context, tx ports.Tx) error { return tx.InsertDeposit(ctx, twin) })
		wantErr(t, "InsertDeposit same provider, project and payment id", err, ports.ErrConflict)

		// Another project (or provider) may use the same payment id.
		otherProject := kassa
		otherProject.Project = "2002"
		elsewhere := d
		elsewhere.ID, elsewhere.Channel, elsewhere.Amount = e.ids.NewID("dep"), otherProject, domain.NewAmount(777, domain.KZT)
		e.update(t, func(ctx context.Context, tx ports.Tx) error { return tx.InsertDeposit(ctx, elsewhere) })
		if got, err := e.store.DepositByPaymentID(ctx, otherProject, d.PaymentID); err != nil || got.ID != elsewhere.ID || got.Amount.Minor() != 777 {
			t.Fatalf("deposit in other project = %+v, %v", got, err)
		}
		if got, err := e.store.DepositByPaymentID(ctx, kassa, d.PaymentID); err != nil || got.ID != d.ID {
			t.Fatalf("deposit in first project = %+v, %v", got, err)
		}

		_, err = e.store.DepositByPaymentID(ctx, kassa, "dep_unknown")
		wantErr(t, "DepositByPaymentID unknown", err, ports.ErrNotFound)
	})
}

func TestTransitionDeposit(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		a := e.insertAccount(t, "cust-1", domain.KZT)
		d := e.insertDeposit(t, a, 10_000, base)
		settledAt := base.Add(time.Minute)

		next := d
		next.Status, next.OperationID, next.SettledAt, next.Version = domain.DepositSucceeded, "op-1", settledAt, d.Version+1
		e.update(t, func(ctx context.Context, tx ports.Tx) error {
			return tx.TransitionDeposit(ctx, next, domain.DepositPending)
		})
		got := e.deposit(t, d)
		if got.Status != domain.DepositSucceeded || got.OperationID != "op-1" || !got.SettledAt.Equal(settledAt) || got.Version != d.Version+1 {
			t.Fatalf("after transition: %+v", got)
		}

		// A second settler that read "pending" loses.
		other := next
		other.OperationID = "op-2"
		err := e.updateErr(t, func(ctx context.Context, tx ports.Tx) error {
			return tx.TransitionDeposit(ctx, other, domain.DepositPending)
		})
		wantErr(t, "TransitionDeposit from a status no longer stored", err, ports.ErrConflict)
		if got := e.deposit(t, d); got.OperationID != "op-1" || got.Version != d.Version+1 {
			t.Fatalf("losing transition changed the row: %+v", got)
		}

		// declined → succeeded (a late success) is a transition from declined.
		d2 := e.insertDeposit(t, a, 20_000, base)
		declined := d2
		declined.Status, declined.OperationID, declined.SettledAt = domain.DepositDeclined, "op-d", settledAt
		e.update(t, func(ctx context.Context, tx ports.Tx) error {
			return tx.TransitionDeposit(ctx, declined, domain.DepositPending)
		})
		late := declined
		late.Status, late.OperationID = domain.DepositSucceeded, "op-late"
		err = e.updateErr(t, func(ctx context.Context, tx ports.Tx) error {
			return tx.TransitionDeposit(ctx, late, domain.DepositPending)
		})
		wantErr(t, "TransitionDeposit from pending after decline", err, ports.ErrConflict)
		e.update(t, func(ctx context.Context, tx ports.Tx) error {
			return tx.TransitionDeposit(ctx, late, domain.DepositDeclined)
		})
		if got := e.deposit(t, d2); got.Status != domain.DepositSucceeded || got.OperationID != "op-late" || got.Version != d2.Version+2 {
			t.Fatalf("after late success: %+v", got)
		}
	})
}

// applyErr applies one transfer in its own transaction.
func (e *env) applyErr(t *testing.T, tr domain.Transfer) (domain.Transfer, error) {
	t.Helper()
	var out domain.Transfer
	err := e.updateErr(t, func(ctx context.Context, tx ports.Tx) error {
		var err error
		out, err = tx.ApplyTransfer(ctx, tr)
		return err
	})
	return out, err
}

func (e *env) transfer(t *testing.T, kind domain.TransferKind, source, target string, amount domain.Amount, at time.Time) domain.Transfer {
	t.Helper()
	tr, err := domain.NewTransfer(e.ids.NewID("trf"), kind, source, target, amount, at)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func balanceAfter(t *testing.T, tr domain.Transfer, accountID string) int64 {
	t.Helper()
	for _, p := range tr.Postings {
		if p.AccountID == accountID {
			if p.BalanceAfter == nil {
				t.Fatalf("posting on %s has no balance after", accountID)
			}
			return p.BalanceAfter.Minor()
		}
	}
	t.Fatalf("transfer %s has no posting on %s", tr.ID, accountID)
	return 0
}

func TestApplyTransfer(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		clearing := kassa.ClearingAccountID()
		a := e.insertAccount(t, "cust-1", domain.KZT)
		d := e.insertDeposit(t, a, 500, base)
		kzt := func(minor int64) domain.Amount { return domain.NewAmount(minor, domain.KZT) }

		credit := e.transfer(t, domain.TransferDepositCredit, clearing, a.ID(), kzt(500), base)
		credit.DepositID = d.ID
		succeeded := d
		succeeded.Status, succeeded.OperationID, succeeded.SettledAt = domain.DepositSucceeded, "op-1", base
		var applied domain.Transfer
		e.update(t, func(ctx context.Context, tx ports.Tx) error {
			// As the app does: the deposit's transition and its credit in
			// one transaction (CheckLedger flags a credit without it).
			if err := tx.TransitionDeposit(ctx, succeeded, domain.DepositPending); err != nil {
				return err
			}
			var err error
			applied, err = tx.ApplyTransfer(ctx, credit)
			return err
		})
		if got := balanceAfter(t, applied, a.ID()); got != 500 {
			t.Fatalf("balance after credit = %d, want 500", got)
		}
		for _, p := range applied.Postings {
			if p.AccountID == clearing && p.BalanceAfter != nil {
				t.Fatalf("system account posting got a balance after: %v", *p.BalanceAfter)
			}
		}
		if e.balance(t, a.ID()) != 500 {
			t.Fatalf("stored balance = %d", e.balance(t, a.ID()))
		}

		// A second credit for the same deposit is refused and moves nothing.
		again := e.transfer(t, domain.TransferDepositCredit, clearing, a.ID(), kzt(500), base)
		again.DepositID = d.ID
		_, err := e.applyErr(t, again)
		wantErr(t, "second deposit_credit of one deposit", err, ports.ErrConflict)

		// A debit beyond the balance is refused.
		_, err = e.applyErr(t, e.transfer(t, domain.TransferDebit, a.ID(), domain.RevenueAccountID, kzt(501), base.Add(time.Second)))
		wantErr(t, "debit beyond the balance", err, domain.ErrInsufficientFunds)

		// Unknown customer account.
		_, err = e.applyErr(t, e.transfer(t, domain.TransferDebit, clearing, "acc_unknown", kzt(1), base))
		wantErr(t, "posting on an unknown account", err, ports.ErrNotFound)

		// A posting in another currency than the account's.
		_, err = e.applyErr(t, e.transfer(t, domain.TransferDebit, clearing, a.ID(), domain.NewAmount(100, xts), base))
		wantErr(t, "posting in another currency", err, domain.ErrCurrencyMismatch)

		// An unbalanced transfer never reaches the tables.
		bad := e.transfer(t, domain.TransferDebit, clearing, a.ID(), kzt(100), base)
		bad.Postings[0].Amount = kzt(-50)
		_, err = e.applyErr(t, bad)
		wantErr(t, "unbalanced transfer", err, domain.ErrUnbalancedTransfer)

		if got := e.balance(t, a.ID()); got != 500 {
			t.Fatalf("refused transfers moved the balance to %d", got)
		}

		// Two transfers in one transaction: the second sees the first.
		var second domain.Transfer
		e.update(t, func(ctx context.Context, tx ports.Tx) error {
			if _, err := tx.ApplyTransfer(ctx, e.transfer(t, domain.TransferDebit, a.ID(), domain.RevenueAccountID, kzt(200), base.Add(time.Second))); err != nil {
				return err
			}
			var err error
			second, err = tx.ApplyTransfer(ctx, e.transfer(t, domain.TransferDebit, a.ID(), domain.RevenueAccountID, kzt(100), base.Add(time.Second)))
			return err
		})
		if got := balanceAfter(t, second, a.ID()); got != 200 {
			t.Fatalf("balance after two debits = %d, want 200", got)
		}

		// One credit per exception.
		exc := e.transfer(t, domain.TransferExceptionCredit, clearing, a.ID(), kzt(50), base.Add(2*time.Second))
		exc.ExceptionID = "exc_1"
		if _, err := e.applyErr(t, exc); err != nil {
			t.Fatal(err)
		}
		exc2 := e.transfer(t, domain.TransferExceptionCredit, clearing, a.ID(), kzt(50), base.Add(2*time.Second))
		exc2.ExceptionID = "exc_1"
		_, err = e.applyErr(t, exc2)
		wantErr(t, "second exception_credit of one exception", err, ports.ErrConflict)

		for id, want := range map[string]int64{a.ID(): 250, clearing: -550, domain.RevenueAccountID: 300, "acc_none": 0} {
			got, err := e.store.DerivedBalance(ctx, id)
			if err != nil || got != want {
				t.Errorf("DerivedBalance(%s) = %d, %v; want %d", id, got, err, want)
			}
		}
		if c := e.healthy(t); c.Transfers != 4 {
			t.Fatalf("transfers = %d, want 4 (refused ones must leave nothing)", c.Transfers)
		}
	})
}

func TestInboxRoundTrip(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		received := e.clock.Now()
		records := []ports.InboxRecord{
			{Channel: kassa, PaymentID: "p1", OperationID: "op-1", Status: "success",
				// A JSON NUL escape, as text, as the platform may send it.
				Body:    `{"payment":{"id":"p1","description":"nul:\u0000 end"},"signature":"x=="}`,
				Outcome: domain.EffectCredit, DepositID: "dep_1", DedupeKey: "key-1", ReceivedAt: received},
			{Channel: kassa, PaymentID: "p1", OperationID: "op-2", Status: "decline",
				// Bytes that are not UTF-8, and a raw NUL: stored as received.
				Body:    "{\"a\":\"\xff\xfe\xc3\x28\"}\x00tail\x80",
				Outcome: domain.EffectException, DepositID: "dep_1", ExceptionID: "exc_1", DedupeKey: "key-2", ReceivedAt: received.Add(time.Second)},
			{Channel: kassa, PaymentID: "p2", OperationID: "op-3", Status: "processing",
				Body:    "{\"description\":\"тенге ✓ \\ud83d\\ude00 😀\"}\r\n",
				Outcome: domain.EffectRecord, DedupeKey: "key-3", ReceivedAt: received.Add(2 * time.Second)},
		}
		for i := range records {
			e.update(t, func(ctx context.Context, tx ports.Tx) error {
				return tx.InsertInbox(ctx, &records[i]) // sets the ID by the time Update returns
			})
			if records[i].ID <= 0 {
				t.Fatalf("record %d: InsertInbox left ID %d after Update returned", i, records[i].ID)
			}
		}
		all, err := e.store.ListInbox(ctx, ports.InboxQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != len(records) {
			t.Fatalf("ListInbox = %d records, want %d", len(all), len(records))
		}
		for i, got := range all {
			want := records[i]
			if got.Body != want.Body {
				t.Errorf("record %d body not byte-exact:\n got %q\nwant %q", i, got.Body, want.Body)
			}
			if got.ID != want.ID || got.Channel != want.Channel || got.PaymentID != want.PaymentID ||
				got.OperationID != want.OperationID || got.Status != want.Status || got.Outcome != want.Outcome ||
				got.DepositID != want.DepositID || got.ExceptionID != want.ExceptionID || got.DedupeKey != want.DedupeKey ||
				!got.ReceivedAt.Equal(want.ReceivedAt) {
				t.Errorf("record %d:\n got %+v\nwant %+v", i, got, want)
			}
		}
		if !(records[0].ID < records[1].ID && records[1].ID < records[2].ID) {
			t.Fatalf("inbox ids not increasing: %d %d %d", records[0].ID, records[1].ID, records[2].ID)
		}

		ids := func(rs []ports.InboxRecord) []int64 {
			var out []int64
			for _, r := range rs {
				out = append(out, r.ID)
			}
			return out
		}
		for _, tc := range []struct {
			q    ports.InboxQuery
			want []int64
		}{
			{ports.InboxQuery{PaymentID: "p1"}, []int64{records[0].ID, records[1].ID}},
			{ports.InboxQuery{PaymentID: "p-none"}, nil},
			{ports.InboxQuery{AfterID: records[0].ID}, []int64{records[1].ID, records[2].ID}},
			{ports.InboxQuery{Limit: 1}, []int64{records[0].ID}},
			{ports.InboxQuery{AfterID: records[0].ID, Limit: 1}, []int64{records[1].ID}},
			{ports.InboxQuery{AfterID: records[2].ID}, nil},
		} {
			got, err := e.store.ListInbox(ctx, tc.q)
			if err != nil || !slices.Equal(ids(got), tc.want) {
				t.Errorf("ListInbox(%+v) = %v, %v; want %v", tc.q, ids(got), err, tc.want)
			}
		}

		for key, want := range map[string]bool{"key-1": true, "key-3": true, "key-none": false} {
			got, err := e.store.InboxSeen(ctx, key)
			if err != nil || got != want {
				t.Errorf("InboxSeen(%q) = %v, %v; want %v", key, got, err, want)
			}
		}
	})
}

func TestExceptions(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		created := e.clock.Now()
		newExc := func(key string) domain.Exception {
			return domain.Exception{
				ID: e.ids.NewID("exc"), Reason: domain.ReasonAmountMismatch, Detail: "callback amount 9.99, deposit 10.00 KZT",
				Channel: kassa, PaymentID: "p1", OperationID: "op-1", Status: "success", DepositID: "dep_1", AccountID: "acc_1",
				Amount: domain.NewAmount(999, domain.KZT), Evidence: "{\"x\":\"\xff\x00\"}", DedupeKey: key,
				State: domain.ExceptionOpen, CreatedAt: created,
			}
		}
		insert := func(x domain.Exception) (domain.Exception, bool) {
			t.Helper()
			var (
				stored domain.Exception
				isNew  bool
			)
			e.update(t, func(ctx context.Context, tx ports.Tx) error {
				var err error
				stored, isNew, err = tx.InsertException(ctx, x)
				return err
			})
			return stored, isNew
		}

		first := newExc("key-1")
		stored, isNew := insert(first)
		if !isNew || stored.ID != first.ID {
			t.Fatalf("first insert: created=%v id=%s", isNew, stored.ID)
		}
		dup := newExc("key-1")
		stored, isNew = insert(dup)
		if isNew || stored.ID != first.ID {
			t.Fatalf("insert with a taken dedupe key: created=%v id=%s, want the stored %s", isNew, stored.ID, first.ID)
		}
		_, err := e.store.ExceptionByID(ctx, dup.ID)
		wantErr(t, "deduplicated exception", err, ports.ErrNotFound)

		got, err := e.store.ExceptionByID(ctx, first.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Evidence != first.Evidence {
			t.Fatalf("evidence not byte-exact: %q, want %q", got.Evidence, first.Evidence)
		}
		if got.Reason != first.Reason || got.Detail != first.Detail || got.Channel != first.Channel ||
			got.PaymentID != first.PaymentID || got.OperationID != first.OperationID || got.Status != first.Status ||
			got.DepositID != first.DepositID || got.AccountID != first.AccountID || got.Amount != first.Amount ||
			got.DedupeKey != first.DedupeKey || got.State != domain.ExceptionOpen || got.Resolution != nil ||
			!got.CreatedAt.Equal(created) {
			t.Fatalf("read back %+v\nstored %+v", got, first)
		}

		second, _ := insert(newExc("key-2"))

		resolvedAt := created.Add(time.Hour)
		dismissed, err := got.Resolve(domain.Resolution{Note: "duplicate of a settled payment", Actor: "ops", ResolvedAt: resolvedAt})
		if err != nil {
			t.Fatal(err)
		}
		e.update(t, func(ctx context.Context, tx ports.Tx) error {
			return tx.UpdateException(ctx, dismissed, domain.ExceptionOpen)
		})
		got, err = e.store.ExceptionByID(ctx, first.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != domain.ExceptionDismissed || got.Resolution == nil || got.Resolution.Credit ||
			got.Resolution.Note != "duplicate of a settled payment" || got.Resolution.Actor != "ops" ||
			!got.Resolution.ResolvedAt.Equal(resolvedAt) {
			t.Fatalf("after resolve: %+v %+v", got, got.Resolution)
		}
		err = e.updateErr(t, func(ctx context.Context, tx ports.Tx) error {
			return tx.UpdateException(ctx, dismissed, domain.ExceptionOpen)
		})
		wantErr(t, "second UpdateException from open", err, ports.ErrConflict)

		ghost := newExc("key-ghost")
		ghost.State, ghost.Resolution = domain.ExceptionDismissed, &domain.Resolution{Note: "n", Actor: "ops", ResolvedAt: resolvedAt}
		err = e.updateErr(t, func(ctx context.Context, tx ports.Tx) error {
			return tx.UpdateException(ctx, ghost, domain.ExceptionOpen)
		})
		wantErr(t, "UpdateException unknown", err, ports.ErrNotFound)

		excIDs := func(xs []domain.Exception) []string {
			var out []string
			for _, x := range xs {
				out = append(out, x.ID)
			}
			return out
		}
		for _, tc := range []struct {
			q    ports.ExceptionQuery
			want []string
		}{
			{ports.ExceptionQuery{}, []string{first.ID, second.ID}},
			{ports.ExceptionQuery{State: domain.ExceptionOpen}, []string{second.ID}},
			{ports.ExceptionQuery{State: domain.ExceptionDismissed}, []string{first.ID}},
			{ports.ExceptionQuery{State: domain.ExceptionResolved}, nil},
			{ports.ExceptionQuery{Limit: 1}, []string{first.ID}},
			{ports.ExceptionQuery{AfterID: first.ID}, []string{second.ID}},
		} {
			got, err := e.store.ListExceptions(ctx, tc.q)
			if err != nil || !slices.Equal(excIDs(got), tc.want) {
				t.Errorf("ListExceptions(%+v) = %v, %v; want %v", tc.q, excIDs(got), err, tc.want)
			}
		}
	})
}

func TestDebitRecords(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		a := e.insertAccount(t, "cust-1", domain.KZT)
		b := e.insertAccount(t, "cust-2", domain.KZT)
		rec := ports.DebitRecord{AccountID: a.ID(), IdempotencyKey: "key-1", RequestHash: "h1", TransferID: "trf_1",
			Amount: domain.NewAmount(150, domain.KZT), Description: "coffee", BalanceAfter: domain.NewAmount(850, domain.KZT),
			Actor: "backoffice", CreatedAt: base}
		e.update(t, func(ctx context.Context, tx ports.Tx) error { return tx.InsertDebit(ctx, rec) })
		got, err := e.store.DebitByKey(ctx, a.ID(), "key-1")
		if err != nil {
			t.Fatal(err)
		}
		if got.AccountID != rec.AccountID || got.IdempotencyKey != rec.IdempotencyKey || got.RequestHash != rec.RequestHash ||
			got.TransferID != rec.TransferID || got.Amount != rec.Amount || got.Description != rec.Description ||
			got.BalanceAfter != rec.BalanceAfter || got.Actor != rec.Actor || !got.CreatedAt.Equal(rec.CreatedAt) {
			t.Fatalf("read back %+v, stored %+v", got, rec)
		}

		twin := rec
		twin.RequestHash, twin.TransferID = "h2", "trf_2"
		err = e.updateErr(t, func(ctx context.Context, tx ports.Tx) error { return tx.InsertDebit(ctx, twin) })
		wantErr(t, "InsertDebit with a taken key", err, ports.ErrConflict)
		if got, _ := e.store.DebitByKey(ctx, a.ID(), "key-1"); got.TransferID != "trf_1" {
			t.Fatalf("refused debit overwrote the record: %+v", got)
		}

		// Keys are per account.
		other := rec
		other.AccountID = b.ID()
		e.update(t, func(ctx context.Context, tx ports.Tx) error { return tx.InsertDebit(ctx, other) })

		_, err = e.store.DebitByKey(ctx, a.ID(), "key-unknown")
		wantErr(t, "DebitByKey unknown key", err, ports.ErrNotFound)
		_, err = e.store.DebitByKey(ctx, "acc_unknown", "key-1")
		wantErr(t, "DebitByKey unknown account", err, ports.ErrNotFound)
	})
}

func TestStatementAndBalanceAt(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		clearing := kassa.ClearingAccountID()
		a := e.insertAccount(t, "cust-1", domain.KZT)
		b := e.insertAccount(t, "cust-2", domain.KZT)
		d := e.insertDeposit(t, a, 10_000, base)
		t0, t1, t2 := base.Add(time.Hour), base.Add(2*time.Hour), base.Add(3*time.Hour)
		kzt := func(minor int64) domain.Amount { return domain.NewAmount(minor, domain.KZT) }

		credit := e.transfer(t, domain.TransferDepositCredit, clearing, a.ID(), kzt(10_000), t0)
		credit.DepositID, credit.Description = d.ID, "deposit "+d.PaymentID
		more := e.transfer(t, domain.TransferExceptionCredit, clearing, a.ID(), kzt(20_000), t1)
		more.ExceptionID = "exc_1"
		spend := e.transfer(t, domain.TransferDebit, a.ID(), domain.RevenueAccountID, kzt(5_000), t2)
		spend.Description = "coffee"
		noise := e.transfer(t, domain.TransferExceptionCredit, clearing, b.ID(), kzt(1), t1)
		noise.ExceptionID = "exc_2"
		for _, tr := range []domain.Transfer{credit, noise, more, spend} {
			if _, err := e.applyErr(t, tr); err != nil {
				t.Fatal(err)
			}
		}

		lines, err := e.store.Statement(ctx, ports.StatementQuery{AccountID: a.ID()})
		if err != nil {
			t.Fatal(err)
		}
		type line struct {
			transfer     string
			kind         domain.TransferKind
			amount, left int64
			at           time.Time
		}
		want := []line{
			{credit.ID, domain.TransferDepositCredit, 10_000, 10_000, t0},
			{more.ID, domain.TransferExceptionCredit, 20_000, 30_000, t1},
			{spend.ID, domain.TransferDebit, -5_000, 25_000, t2},
		}
		if len(lines) != len(want) {
			t.Fatalf("statement has %d lines, want %d: %+v", len(lines), len(want), lines)
		}
		for i, l := range lines {
			w := want[i]
			if l.TransferID != w.transfer || l.Kind != w.kind || l.Amount != kzt(w.amount) || l.BalanceAfter != kzt(w.left) || !l.CreatedAt.Equal(w.at) {
				t.Errorf("line %d = %+v, want %+v", i, l, w)
			}
			if i > 0 && l.Seq <= lines[i-1].Seq {
				t.Errorf("line %d seq %d not after %d", i, l.Seq, lines[i-1].Seq)
			}
		}
		if lines[0].DepositID != d.ID || lines[0].PaymentID != d.PaymentID || lines[0].Description != "deposit "+d.PaymentID {
			t.Errorf("deposit line lacks its deposit: %+v", lines[0])
		}
		if lines[2].Description != "coffee" || lines[2].DepositID != "" {
			t.Errorf("debit line: %+v", lines[2])
		}

		seqs := func(q ports.StatementQuery) []int64 {
			t.Helper()
			got, err := e.store.Statement(ctx, q)
			if err != nil {
				t.Fatalf("Statement(%+v): %v", q, err)
			}
			var out []int64
			for _, l := range got {
				out = append(out, l.Seq)
			}
			return out
		}
		s0, s1, s2 := lines[0].Seq, lines[1].Seq, lines[2].Seq
		for _, tc := range []struct {
			name string
			q    ports.StatementQuery
			want []int64
		}{
			{"page 1", ports.StatementQuery{AccountID: a.ID(), Limit: 2}, []int64{s0, s1}},
			{"page 2", ports.StatementQuery{AccountID: a.ID(), Limit: 2, AfterSeq: s1}, []int64{s2}},
			{"past the end", ports.StatementQuery{AccountID: a.ID(), AfterSeq: s2}, nil},
			{"from is inclusive", ports.StatementQuery{AccountID: a.ID(), From: t1}, []int64{s1, s2}},
			{"to is exclusive", ports.StatementQuery{AccountID: a.ID(), To: t1}, []int64{s0}},
			{"window", ports.StatementQuery{AccountID: a.ID(), From: t1, To: t2}, []int64{s1}},
			{"window and cursor", ports.StatementQuery{AccountID: a.ID(), From: t0, To: t2, AfterSeq: s0}, []int64{s1}},
			{"empty window", ports.StatementQuery{AccountID: a.ID(), From: t2.Add(time.Second)}, nil},
			{"unknown account", ports.StatementQuery{AccountID: "acc_unknown"}, nil},
		} {
			if got := seqs(tc.q); !slices.Equal(got, tc.want) {
				t.Errorf("%s: seqs %v, want %v", tc.name, got, tc.want)
			}
		}

		if got := seqs(ports.StatementQuery{AccountID: b.ID()}); len(got) != 1 || slices.Contains([]int64{s0, s1, s2}, got[0]) {
			t.Errorf("other account's statement = %v, want its one own line", got)
		}

		for _, tc := range []struct {
			at   time.Time
			want int64
		}{
			{base, 0},                          // before the first posting
			{t0.Add(-time.Microsecond), 0},     // just before
			{t0, 10_000},                       // at is inclusive
			{t0.Add(30 * time.Minute), 10_000}, // between postings
			{t1.Add(time.Minute), 30_000},
			{t2, 25_000},
			{t2.Add(24 * time.Hour), 25_000}, // after the last
		} {
			got, err := e.store.BalanceAt(ctx, a.ID(), tc.at)
			if err != nil || got != tc.want {
				t.Errorf("BalanceAt(%s) = %d, %v; want %d", tc.at, got, err, tc.want)
			}
		}
		_, err = e.store.BalanceAt(ctx, "acc_unknown", t2)
		wantErr(t, "BalanceAt unknown account", err, ports.ErrNotFound)

		// The service answers the same through Balance.
		if got, err := e.svc.Balance(ctx, a.ID(), t1); err != nil || got != kzt(30_000) {
			t.Errorf("service Balance at t1 = %v, %v", got, err)
		}
		if got, err := e.svc.Balance(ctx, a.ID(), time.Time{}); err != nil || got != kzt(25_000) {
			t.Errorf("service Balance now = %v, %v", got, err)
		}
	})
}

func TestListAccounts(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		var all []domain.Account
		for _, c := range []struct {
			customer string
			cur      domain.Currency
		}{{"c1", domain.KZT}, {"c2", domain.KZT}, {"c3", domain.KZT}, {"c1", xts}, {"c4", domain.KZT}} {
			all = append(all, e.insertAccount(t, c.customer, c.cur))
		}
		blocked, err := all[1].ChangeStatus(domain.AccountBlocked, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		e.update(t, func(ctx context.Context, tx ports.Tx) error {
			return tx.UpdateAccountStatus(ctx, blocked, all[1].Version())
		})
		id := func(i int) string { return all[i].ID() }

		for _, tc := range []struct {
			name string
			q    ports.AccountQuery
			want []string
		}{
			{"all in id order", ports.AccountQuery{}, []string{id(0), id(1), id(2), id(3), id(4)}},
			{"customer", ports.AccountQuery{CustomerID: "c1"}, []string{id(0), id(3)}},
			{"unknown customer", ports.AccountQuery{CustomerID: "c9"}, nil},
			{"status blocked", ports.AccountQuery{Status: domain.AccountBlocked}, []string{id(1)}},
			{"status active", ports.AccountQuery{Status: domain.AccountActive}, []string{id(0), id(2), id(3), id(4)}},
			{"status closed", ports.AccountQuery{Status: domain.AccountClosed}, nil},
			{"page 1", ports.AccountQuery{Limit: 2}, []string{id(0), id(1)}},
			{"page 2", ports.AccountQuery{Limit: 2, AfterID: id(1)}, []string{id(2), id(3)}},
			{"page 3", ports.AccountQuery{Limit: 2, AfterID: id(3)}, []string{id(4)}},
			{"past the end", ports.AccountQuery{AfterID: id(4)}, nil},
			{"filters and cursor", ports.AccountQuery{Status: domain.AccountActive, AfterID: id(0), Limit: 2}, []string{id(2), id(3)}},
		} {
			got, err := e.store.ListAccounts(ctx, tc.q)
			var ids []string
			for _, a := range got {
				ids = append(ids, a.ID())
			}
			if err != nil || !slices.Equal(ids, tc.want) {
				t.Errorf("%s: ListAccounts = %v, %v; want %v", tc.name, ids, err, tc.want)
			}
		}
		if !slices.IsSorted([]string{id(0), id(1), id(2), id(3), id(4)}) {
			t.Fatal("test premise: ids are not created in sorted order")
		}
	})
}

func TestListDeposits(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		a := e.insertAccount(t, "cust-a", domain.KZT)
		b := e.insertAccount(t, "cust-b", domain.KZT)
		t0, t1, t2 := base, base.Add(time.Hour), base.Add(2*time.Hour)
		d0 := e.insertDeposit(t, a, 100, t0)
		d1 := e.insertDeposit(t, a, 200, t1)
		d2 := e.insertDeposit(t, b, 300, t2)
		done := d1
		done.Status, done.OperationID, done.SettledAt = domain.DepositSucceeded, "op-1", t2
		e.update(t, func(ctx context.Context, tx ports.Tx) error {
			return tx.TransitionDeposit(ctx, done, domain.DepositPending)
		})

		for _, tc := range []struct {
			name string
			q    ports.DepositQuery
			want []string
		}{
			{"all", ports.DepositQuery{}, []string{d0.ID, d1.ID, d2.ID}},
			{"succeeded", ports.DepositQuery{Status: domain.DepositSucceeded}, []string{d1.ID}},
			{"pending", ports.DepositQuery{Status: domain.DepositPending}, []string{d0.ID, d2.ID}},
			{"declined", ports.DepositQuery{Status: domain.DepositDeclined}, nil},
			{"customer", ports.DepositQuery{CustomerID: "cust-b"}, []string{d2.ID}},
			{"account", ports.DepositQuery{AccountID: a.ID()}, []string{d0.ID, d1.ID}},
			{"payment id", ports.DepositQuery{PaymentID: d2.PaymentID}, []string{d2.ID}},
			{"unknown payment id", ports.DepositQuery{PaymentID: "dep_unknown"}, nil},
			{"from is inclusive", ports.DepositQuery{From: t1}, []string{d1.ID, d2.ID}},
			{"to is exclusive", ports.DepositQuery{To: t1}, []string{d0.ID}},
			{"window", ports.DepositQuery{From: t1, To: t2}, []string{d1.ID}},
			{"page 1", ports.DepositQuery{Limit: 2}, []string{d0.ID, d1.ID}},
			{"page 2", ports.DepositQuery{Limit: 2, AfterID: d1.ID}, []string{d2.ID}},
			{"filters and cursor", ports.DepositQuery{AccountID: a.ID(), AfterID: d0.ID}, []string{d1.ID}},
		} {
			got, err := e.store.ListDeposits(ctx, tc.q)
			var ids []string
			for _, d := range got {
				ids = append(ids, d.ID)
			}
			if err != nil || !slices.Equal(ids, tc.want) {
				t.Errorf("%s: ListDeposits = %v, %v; want %v", tc.name, ids, err, tc.want)
			}
		}
	})
}

func TestCheckLedger(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		empty := e.healthy(t)
		if empty.Transfers != 0 || !bigIs(empty.CustomerBalanceTotal, 0) {
			t.Fatalf("empty ledger: %+v", empty)
		}
		a := e.fund(t, "cust-a", 10_000)
		e.fund(t, "cust-b", 2_500)
		if _, err := e.svc.Debit(ctx, ports.Debit{AccountID: a.ID(), Amount: domain.NewAmount(1_000, domain.KZT),
			IdempotencyKey: "k1", RequestHash: "h1", Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		c := e.healthy(t)
		if c.Transfers != 3 || !bigIs(c.CustomerBalanceTotal, 11_500) || !bigIs(c.SystemBalanceTotal, -11_500) {
			t.Fatalf("check = %+v, want 3 transfers and 11500 held by customers", c)
		}

		// The check must see corruption, or its "healthy" means nothing.
		if _, err := e.store.DB().ExecContext(ctx, `UPDATE accounts SET balance_minor = balance_minor + 1 WHERE id = ?`, a.ID()); err != nil {
			t.Fatal(err)
		}
		pending := e.openDeposit(t, "cust-b", 700)
		if _, err := e.store.DB().ExecContext(ctx, `UPDATE deposits SET status = 'succeeded' WHERE id = ?`, pending.ID); err != nil {
			t.Fatal(err)
		}
		c, err := e.store.CheckLedger(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c.Healthy() || c.BalanceMismatches != 1 || c.SucceededWithoutCredit != 1 ||
			!bigIs(new(big.Int).Add(c.CustomerBalanceTotal, c.SystemBalanceTotal), 1) {
			t.Fatalf("corrupted ledger reported as %+v", c)
		}
		if c.CurrencyMismatches != 0 {
			t.Fatalf("currency mismatches %d before any", c.CurrencyMismatches)
		}
		// A posting in another currency than its account's.
		if _, err := e.store.DB().ExecContext(ctx, `UPDATE postings SET currency = 'XTS' WHERE id =
			(SELECT MAX(id) FROM postings WHERE account_id = ?)`, a.ID()); err != nil {
			t.Fatal(err)
		}
		if c, err = e.store.CheckLedger(ctx); err != nil || c.CurrencyMismatches != 1 || c.Healthy() {
			t.Fatalf("a foreign-currency posting reported as %+v, %v", c, err)
		}
	})
}

func TestAppendAudit(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		entry := ports.AuditEntry{Actor: "ops", Action: "account.blocked", Subject: "acc_x", Detail: "active -> blocked", At: base}
		e.update(t, func(ctx context.Context, tx ports.Tx) error { return tx.AppendAudit(ctx, entry) })
		var (
			n                     int
			actor, action, detail string
			atUS                  int64
		)
		if err := e.store.DB().QueryRowContext(ctx, `SELECT COUNT(*), MAX(actor), MAX(action), MAX(detail), MAX(at_us) FROM audit_log WHERE subject = ?`,
			"acc_x").Scan(&n, &actor, &action, &detail, &atUS); err != nil {
			t.Fatal(err)
		}
		if n != 1 || actor != "ops" || action != "account.blocked" || detail != "active -> blocked" || atUS != base.UnixMicro() {
			t.Fatalf("audit row: n=%d %q %q %q %d", n, actor, action, detail, atUS)
		}
	})
}

var errBoom = errors.New("boom")

func TestUpdateRollsBack(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		funded := e.fund(t, "cust-funded", 5_000)
		a := e.newAccount(t, "cust-1", domain.KZT)
		spend := e.transfer(t, domain.TransferDebit, funded.ID(), domain.RevenueAccountID, domain.NewAmount(1_000, domain.KZT), e.clock.Now())
		fnErr := fmt.Errorf("after writes: %w", errBoom)
		err := e.updateErr(t, func(ctx context.Context, tx ports.Tx) error {
			if err := tx.InsertAccount(ctx, a); err != nil {
				return err
			}
			// Reads through the Tx see its own writes; reads on the Store
			// see only what is committed.
			if _, err := tx.AccountByID(ctx, a.ID()); err != nil {
				return fmt.Errorf("tx does not see its own insert: %w", err)
			}
			if _, err := e.store.AccountByID(ctx, a.ID()); !errors.Is(err, ports.ErrNotFound) {
				return fmt.Errorf("store sees an uncommitted account: %v", err)
			}
			if _, err := tx.ApplyTransfer(ctx, spend); err != nil {
				return err
			}
			if err := tx.InsertInbox(ctx, &ports.InboxRecord{Channel: kassa, PaymentID: "p", Body: "{}", Outcome: domain.EffectRecord,
				DedupeKey: "k", ReceivedAt: e.clock.Now()}); err != nil {
				return err
			}
			return fnErr
		})
		if err != fnErr { //nolint:errorlint // the contract: Update returns fn's error unchanged
			t.Fatalf("Update returned %v, want fn's own error unchanged", err)
		}
		_, err = e.store.AccountByID(ctx, a.ID())
		wantErr(t, "account of a rolled back transaction", err, ports.ErrNotFound)
		if got := e.balance(t, funded.ID()); got != 5_000 {
			t.Fatalf("rolled back debit left balance %d", got)
		}
		if recs, err := e.store.ListInbox(ctx, ports.InboxQuery{PaymentID: "p"}); err != nil || len(recs) != 0 {
			t.Fatalf("rolled back inbox record persisted: %v, %v", recs, err)
		}
		if c := e.healthy(t); c.Transfers != 1 {
			t.Fatalf("transfers = %d, want only the funding one", c.Transfers)
		}
	})
}

// TestUpdateRollsBackAmongNeighbours: under concurrency (and so inside
// group-commit batches) every failing fn leaves nothing and every
// succeeding neighbour commits.
func TestUpdateRollsBackAmongNeighbours(t *testing.T) {
	t.Parallel()
	const n = 60
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		fnErrs := make([]error, n)
		accounts := make([]domain.Account, n)
		for i := range n {
			fnErrs[i] = fmt.Errorf("update %d: %w", i, errBoom)
			accounts[i] = e.newAccount(t, fmt.Sprintf("cust-%02d", i), domain.KZT)
		}
		errs := race(t, n, func(ctx context.Context, i int) error {
			a := accounts[i]
			return e.store.Batch(ctx, ports.Write{}, func(ctx context.Context, tx ports.Tx) error {
				if err := tx.InsertAccount(ctx, a); err != nil {
					return err
				}
				if err := tx.AppendAudit(ctx, ports.AuditEntry{Actor: "t", Action: "x", Subject: a.CustomerID(), At: base}); err != nil {
					return err
				}
				if i%3 == 0 {
					return fnErrs[i]
				}
				return nil
			})
		})
		var want []string
		for i, err := range errs {
			switch {
			case i%3 == 0 && err != fnErrs[i]: //nolint:errorlint // fn's error comes back unchanged
				t.Errorf("update %d returned %v, want its own error", i, err)
			case i%3 != 0 && err != nil:
				t.Errorf("update %d failed: %v", i, err)
			}
			if i%3 != 0 {
				want = append(want, fmt.Sprintf("cust-%02d", i))
			}
		}
		stored, err := e.store.ListAccounts(ctx, ports.AccountQuery{Limit: ports.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range stored {
			got = append(got, a.CustomerID())
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("committed accounts %v\nwant %v", got, want)
		}
		var audits int
		if err := e.store.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log`).Scan(&audits); err != nil {
			t.Fatal(err)
		}
		if audits != len(want) {
			t.Fatalf("audit rows = %d, want %d", audits, len(want))
		}
	})
}

func TestPingCloseAndNotMigrated(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		if err := e.store.Ping(ctx); err != nil {
			t.Fatalf("Ping on a migrated store: %v", err)
		}
		if _, err := e.store.DB().ExecContext(ctx, `DROP TABLE schema_migrations`); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "Ping without the schema", e.store.Ping(ctx), ports.ErrNotMigrated)

		if err := e.store.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		err := e.store.Update(ctx, func(ctx context.Context, tx ports.Tx) error { return nil })
		wantErr(t, "Update after Close", err, ports.ErrUnavailable)
		err = e.store.Batch(ctx, ports.Write{}, func(ctx context.Context, tx ports.Tx) error { return nil })
		wantErr(t, "Batch after Close", err, ports.ErrUnavailable)
		if _, err := e.store.AccountByID(ctx, "acc_x"); err == nil {
			t.Fatal("read after Close succeeded")
		}
	})
}
