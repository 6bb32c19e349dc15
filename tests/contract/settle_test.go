package contract_test

import (
	"fmt"
	"testing"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// The use cases' rules, driven through app.Service on every store.

// exceptions lists all exceptions.
func (e *env) exceptions(t *testing.T) []domain.Exception {
	t.Helper()
	xs, err := e.store.ListExceptions(t.Context(), ports.ExceptionQuery{Limit: ports.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	return xs
}

// transfers is the number of transfers in the ledger (and checks its health).
func (e *env) transfers(t *testing.T) int64 {
	t.Helper()
	return e.healthy(t).Transfers
}

func TestSettleCredit(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		a := e.openAccount(t, "cust-1")
		d := e.openDeposit(t, "cust-1", 150_000)
		cmd := e.success(d, "op-1")
		res := e.settle(t, cmd)
		if res.Effect != domain.EffectCredit || res.Deposit == nil || res.Transfer == nil || res.Exception != nil || res.InboxID <= 0 {
			t.Fatalf("result: %+v", res)
		}
		if res.Deposit.Status != domain.DepositSucceeded || res.Deposit.OperationID != "op-1" {
			t.Fatalf("deposit in result: %+v", res.Deposit)
		}
		if got := balanceAfter(t, *res.Transfer, a.ID()); got != 150_000 {
			t.Fatalf("balance after in transfer = %d", got)
		}
		if got := e.balance(t, a.ID()); got != 150_000 {
			t.Fatalf("balance = %d, want 150000", got)
		}
		if got := e.deposit(t, d); got.Status != domain.DepositSucceeded || got.OperationID != "op-1" || got.SettledAt.IsZero() {
			t.Fatalf("stored deposit: %+v", got)
		}
		inbox, err := e.store.ListInbox(ctx, ports.InboxQuery{PaymentID: d.PaymentID})
		if err != nil || len(inbox) != 1 {
			t.Fatalf("inbox = %+v, %v", inbox, err)
		}
		if r := inbox[0]; r.ID != res.InboxID || r.Body != cmd.RawBody || r.Outcome != domain.EffectCredit || r.DepositID != d.ID ||
			r.OperationID != "op-1" || r.Status != "success" {
			t.Fatalf("inbox record: %+v", r)
		}
		if got, err := e.svc.Statement(ctx, ports.StatementQuery{AccountID: a.ID()}); err != nil || len(got) != 1 ||
			got[0].Kind != domain.TransferDepositCredit || got[0].PaymentID != d.PaymentID {
			t.Fatalf("statement: %+v, %v", got, err)
		}
		if c := e.healthy(t); c.Transfers != 1 || !bigIs(c.CustomerBalanceTotal, 150_000) {
			t.Fatalf("ledger: %+v", c)
		}
	})
}

func TestSettleReplay(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		a := e.openAccount(t, "cust-1")
		d := e.openDeposit(t, "cust-1", 10_000)
		cmd := e.success(d, "op-1")
		e.settle(t, cmd)
		for range 3 {
			cmd.ReceivedAt = e.clock.Now()
			if res := e.settle(t, cmd); res.Effect != domain.EffectReplay || res.Transfer != nil {
				t.Fatalf("redelivery: %+v", res)
			}
		}
		if got := e.balance(t, a.ID()); got != 10_000 {
			t.Fatalf("balance = %d after replays", got)
		}
		if n := e.transfers(t); n != 1 {
			t.Fatalf("transfers = %d", n)
		}
		// Every delivery is kept in the inbox, replays included.
		if inbox, err := e.store.ListInbox(ctx, ports.InboxQuery{PaymentID: d.PaymentID}); err != nil || len(inbox) != 4 {
			t.Fatalf("inbox has %d records, %v; want 4", len(inbox), err)
		}
	})
}

func TestSettleDeclineThenLateSuccess(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		a := e.openAccount(t, "cust-1")
		d := e.openDeposit(t, "cust-1", 10_000)

		if res := e.settle(t, e.callback(d.PaymentID, domain.OutcomeIntermediate, "processing", "op-1", d.Amount)); res.Effect != domain.EffectRecord {
			t.Fatalf("intermediate status: %+v", res)
		}
		if got := e.deposit(t, d); got.Status != domain.DepositPending {
			t.Fatalf("intermediate status moved the deposit to %s", got.Status)
		}

		if res := e.settle(t, e.decline(d, "op-1")); res.Effect != domain.EffectDecline || res.Deposit.Status != domain.DepositDeclined {
			t.Fatalf("decline: %+v", res)
		}
		if res := e.settle(t, e.decline(d, "op-1")); res.Effect != domain.EffectReplay {
			t.Fatalf("decline again: %+v", res)
		}
		if got := e.balance(t, a.ID()); got != 0 {
			t.Fatalf("decline credited %d", got)
		}
		if n := e.transfers(t); n != 0 {
			t.Fatalf("decline made %d transfers", n)
		}

		// The cash was collected after all: a late success credits.
		res := e.settle(t, e.success(d, "op-2"))
		if res.Effect != domain.EffectCredit || res.Deposit.Status != domain.DepositSucceeded {
			t.Fatalf("late success: %+v", res)
		}
		if got := e.balance(t, a.ID()); got != 10_000 {
			t.Fatalf("balance after late success = %d", got)
		}
		// The old decline redelivered changes nothing and raises nothing.
		if res := e.settle(t, e.decline(d, "op-1")); res.Effect != domain.EffectReplay {
			t.Fatalf("old decline after late success: %+v", res)
		}
		if xs := e.exceptions(t); len(xs) != 0 {
			t.Fatalf("exceptions: %+v", xs)
		}
		if n := e.transfers(t); n != 1 {
			t.Fatalf("transfers = %d", n)
		}
	})
}

// TestSettleExceptions: each callback that cannot be applied safely becomes
// one exception, moves no money, and is raised once however often it is
// delivered.
func TestSettleExceptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// prepare settles what comes before, returns the offending callback
		// and how much the account must hold afterwards.
		prepare func(t *testing.T, e *env, d domain.Deposit) (ports.SettleDeposit, int64)
		reason  domain.ExceptionReason
		status  domain.DepositStatus // the deposit's status afterwards
	}{
		{name: "duplicate success with another operation id", reason: domain.ReasonDuplicateSuccess, status: domain.DepositSucceeded,
			prepare: func(t *testing.T, e *env, d domain.Deposit) (ports.SettleDeposit, int64) {
				e.settle(t, e.success(d, "op-1"))
				return e.success(d, "op-2"), d.Amount.Minor()
			}},
		{name: "decline after success", reason: domain.ReasonDeclineAfterSuccess, status: domain.DepositSucceeded,
			prepare: func(t *testing.T, e *env, d domain.Deposit) (ports.SettleDeposit, int64) {
				e.settle(t, e.success(d, "op-1"))
				return e.decline(d, "op-1"), d.Amount.Minor()
			}},
		{name: "amount mismatch", reason: domain.ReasonAmountMismatch, status: domain.DepositPending,
			prepare: func(t *testing.T, e *env, d domain.Deposit) (ports.SettleDeposit, int64) {
				return e.callback(d.PaymentID, domain.OutcomeSuccess, "success", "op-1", domain.NewAmount(d.Amount.Minor()-1, domain.KZT)), 0
			}},
		{name: "currency mismatch", reason: domain.ReasonCurrencyMismatch, status: domain.DepositPending,
			prepare: func(t *testing.T, e *env, d domain.Deposit) (ports.SettleDeposit, int64) {
				return e.callback(d.PaymentID, domain.OutcomeSuccess, "success", "op-1", domain.NewAmount(d.Amount.Minor(), xts)), 0
			}},
		{name: "unknown payment", reason: domain.ReasonUnknownPayment, status: domain.DepositPending,
			prepare: func(t *testing.T, e *env, d domain.Deposit) (ports.SettleDeposit, int64) {
				return e.callback("dep_unknown", domain.OutcomeSuccess, "success", "op-1", d.Amount), 0
			}},
		{name: "closed account", reason: domain.ReasonAccountClosed, status: domain.DepositPending,
			prepare: func(t *testing.T, e *env, d domain.Deposit) (ports.SettleDeposit, int64) {
				if _, err := e.svc.ChangeAccountStatus(t.Context(), ports.ChangeAccountStatus{AccountID: d.AccountID,
					To: domain.AccountClosed, Actor: "ops"}); err != nil {
					t.Fatal(err)
				}
				return e.success(d, "op-1"), 0
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			eachStore(t, func(t *testing.T, e *env) {
				ctx := t.Context()
				a := e.openAccount(t, "cust-1")
				d := e.openDeposit(t, "cust-1", 10_000)
				cmd, wantBalance := tt.prepare(t, e, d)
				transfersBefore := e.transfers(t)

				res := e.settle(t, cmd)
				if res.Effect != domain.EffectException || res.Exception == nil || res.Transfer != nil {
					t.Fatalf("result: %+v", res)
				}
				x := *res.Exception
				if x.Reason != tt.reason || x.State != domain.ExceptionOpen || x.Evidence != cmd.RawBody ||
					x.OperationID != cmd.Outcome.OperationID || x.Amount != cmd.Outcome.Amount || x.PaymentID != cmd.PaymentID {
					t.Fatalf("exception: %+v", x)
				}
				if tt.reason == domain.ReasonUnknownPayment {
					if x.DepositID != "" || x.AccountID != "" {
						t.Fatalf("unknown payment exception names a deposit: %+v", x)
					}
				} else if x.DepositID != d.ID || x.AccountID != a.ID() {
					t.Fatalf("exception lacks its deposit: %+v", x)
				}
				stored, err := e.store.ExceptionByID(ctx, x.ID)
				if err != nil || stored.Reason != tt.reason || stored.Amount != cmd.Outcome.Amount || stored.Evidence != cmd.RawBody {
					t.Fatalf("stored exception: %+v, %v", stored, err)
				}

				// Redelivered: answered, nothing new.
				for range 2 {
					cmd.ReceivedAt = e.clock.Now()
					if res := e.settle(t, cmd); res.Effect != domain.EffectReplay || res.Transfer != nil {
						t.Fatalf("redelivery: %+v", res)
					}
				}
				if xs := e.exceptions(t); len(xs) != 1 || xs[0].ID != x.ID {
					t.Fatalf("exceptions after redelivery: %d, want exactly %s", len(xs), x.ID)
				}
				if got := e.balance(t, a.ID()); got != wantBalance {
					t.Fatalf("balance = %d, want %d", got, wantBalance)
				}
				if n := e.transfers(t); n != transfersBefore {
					t.Fatalf("transfers %d -> %d: an exception moved money", transfersBefore, n)
				}
				if got := e.deposit(t, d); got.Status != tt.status {
					t.Fatalf("deposit status = %s, want %s", got.Status, tt.status)
				}
				inbox, err := e.store.ListInbox(ctx, ports.InboxQuery{PaymentID: cmd.PaymentID})
				if err != nil {
					t.Fatal(err)
				}
				var raised int
				for _, r := range inbox {
					if r.Outcome == domain.EffectException {
						raised++
						if r.ExceptionID != x.ID {
							t.Fatalf("inbox record %d names exception %q, want %s", r.ID, r.ExceptionID, x.ID)
						}
					}
				}
				if raised != 1 {
					t.Fatalf("%d inbox records raised the exception, want 1", raised)
				}
			})
		})
	}
}

func TestResolveExceptionCredit(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		a := e.openAccount(t, "cust-1")
		d := e.openDeposit(t, "cust-1", 10_000)
		claimed := domain.NewAmount(9_999, domain.KZT)
		x := *e.settle(t, e.callback(d.PaymentID, domain.OutcomeSuccess, "success", "op-1", claimed)).Exception

		_, err := e.svc.ResolveException(ctx, ports.ResolveException{ExceptionID: x.ID, Credit: true, Actor: "ops"})
		wantErr(t, "resolution without a note", err, domain.ErrInvalidInput)
		_, err = e.svc.ResolveException(ctx, ports.ResolveException{ExceptionID: "exc_unknown", Note: "n", Actor: "ops"})
		wantErr(t, "resolving an unknown exception", err, ports.ErrNotFound)

		// Defaults: the deposit's account, the claimed amount.
		got, err := e.svc.ResolveException(ctx, ports.ResolveException{ExceptionID: x.ID, Credit: true,
			Note: "kassa24 confirmed 99.99 was collected", Actor: "ops"})
		if err != nil {
			t.Fatal(err)
		}
		if got.State != domain.ExceptionResolved || got.Resolution == nil || !got.Resolution.Credit ||
			got.Resolution.AccountID != a.ID() || got.Resolution.Amount != claimed || got.Resolution.TransferID == "" ||
			got.Resolution.Actor != "ops" {
			t.Fatalf("resolved: %+v %+v", got, got.Resolution)
		}
		if b := e.balance(t, a.ID()); b != 9_999 {
			t.Fatalf("balance = %d, want 9999", b)
		}
		// The credit settles the deposit: its one deposit credit.
		lines, err := e.svc.Statement(ctx, ports.StatementQuery{AccountID: a.ID()})
		if err != nil || len(lines) != 1 || lines[0].Kind != domain.TransferDepositCredit || lines[0].TransferID != got.Resolution.TransferID ||
			lines[0].DepositID != d.ID {
			t.Fatalf("statement: %+v, %v", lines, err)
		}
		if dep := e.deposit(t, d); dep.Status != domain.DepositSucceeded || dep.OperationID != "op-1" {
			t.Fatalf("deposit after the credit: %+v", dep)
		}

		// A second resolution is refused, credit or dismissal alike.
		for _, credit := range []bool{true, false} {
			_, err = e.svc.ResolveException(ctx, ports.ResolveException{ExceptionID: x.ID, Credit: credit, Note: "again", Actor: "ops"})
			wantErr(t, "second resolution", err, domain.ErrInvalidTransition)
		}
		if b := e.balance(t, a.ID()); b != 9_999 {
			t.Fatalf("second resolution moved the balance to %d", b)
		}
		stored, err := e.store.ExceptionByID(ctx, x.ID)
		if err != nil || stored.State != domain.ExceptionResolved || stored.Resolution.TransferID != got.Resolution.TransferID {
			t.Fatalf("stored: %+v, %v", stored, err)
		}
		if c := e.healthy(t); c.Transfers != 1 {
			t.Fatalf("transfers = %d", c.Transfers)
		}
	})
}

func TestResolveExceptionDismissAndClosedAccount(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		e.openAccount(t, "cust-1")
		other := e.openAccount(t, "cust-2")
		d := e.openDeposit(t, "cust-1", 10_000)
		if _, err := e.svc.ChangeAccountStatus(ctx, ports.ChangeAccountStatus{AccountID: d.AccountID, To: domain.AccountClosed, Actor: "ops"}); err != nil {
			t.Fatal(err)
		}
		closedX := *e.settle(t, e.success(d, "op-1")).Exception
		unknownX := *e.settle(t, e.callback("dep_unknown", domain.OutcomeSuccess, "success", "op-9", d.Amount)).Exception

		// A closed account takes no money, not even from an operator.
		_, err := e.svc.ResolveException(ctx, ports.ResolveException{ExceptionID: closedX.ID, Credit: true, Note: "n", Actor: "ops"})
		wantErr(t, "crediting a closed account", err, domain.ErrAccountClosed)
		// An unknown payment has no deposit account to default to.
		_, err = e.svc.ResolveException(ctx, ports.ResolveException{ExceptionID: unknownX.ID, Credit: true, Note: "n", Actor: "ops"})
		wantErr(t, "credit without a target", err, domain.ErrInvalidInput)
		// The operator names another account.
		moved, err := e.svc.ResolveException(ctx, ports.ResolveException{ExceptionID: closedX.ID, Credit: true,
			AccountID: other.ID(), Note: "customer moved to a new account", Actor: "ops"})
		if err != nil || moved.Resolution.AccountID != other.ID() {
			t.Fatalf("credit to a named account: %+v, %v", moved, err)
		}
		if b := e.balance(t, other.ID()); b != 10_000 {
			t.Fatalf("named account balance = %d", b)
		}

		dismissed, err := e.svc.ResolveException(ctx, ports.ResolveException{ExceptionID: unknownX.ID, Note: "test payment", Actor: "ops"})
		if err != nil || dismissed.State != domain.ExceptionDismissed || dismissed.Resolution == nil || dismissed.Resolution.Credit {
			t.Fatalf("dismiss: %+v, %v", dismissed, err)
		}
		_, err = e.svc.ResolveException(ctx, ports.ResolveException{ExceptionID: unknownX.ID, Note: "again", Actor: "ops"})
		wantErr(t, "second dismissal", err, domain.ErrInvalidTransition)
		_, err = e.svc.ResolveException(ctx, ports.ResolveException{ExceptionID: unknownX.ID, Credit: true, AccountID: other.ID(), Note: "again", Actor: "ops"})
		wantErr(t, "credit after dismissal", err, domain.ErrInvalidTransition)

		open, err := e.svc.ListExceptions(ctx, ports.ExceptionQuery{State: domain.ExceptionOpen})
		if err != nil || len(open) != 0 {
			t.Fatalf("open exceptions: %+v, %v", open, err)
		}
		if c := e.healthy(t); c.Transfers != 1 || !bigIs(c.CustomerBalanceTotal, 10_000) {
			t.Fatalf("ledger: %+v", c)
		}
	})
}

func TestDebitService(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		a := e.fund(t, "cust-1", 10_000)
		kzt := func(minor int64) domain.Amount { return domain.NewAmount(minor, domain.KZT) }
		debit := ports.Debit{AccountID: a.ID(), Amount: kzt(2_500), Description: "order 7", IdempotencyKey: "k1", RequestHash: "h1", Actor: "shop"}

		first, err := e.svc.Debit(ctx, debit)
		if err != nil || first.Replayed || first.Record.BalanceAfter != kzt(7_500) || first.Record.TransferID == "" {
			t.Fatalf("debit: %+v, %v", first, err)
		}
		again, err := e.svc.Debit(ctx, debit)
		if err != nil || !again.Replayed || again.Record.TransferID != first.Record.TransferID || again.Record.BalanceAfter != kzt(7_500) {
			t.Fatalf("replay: %+v, %v", again, err)
		}
		rec, err := e.store.DebitByKey(ctx, a.ID(), "k1")
		if err != nil || rec.TransferID != first.Record.TransferID || rec.RequestHash != "h1" {
			t.Fatalf("DebitByKey: %+v, %v", rec, err)
		}

		changed := debit
		changed.RequestHash, changed.Amount = "h2", kzt(1)
		_, err = e.svc.Debit(ctx, changed)
		wantErr(t, "key reused with another request", err, ports.ErrIdempotencyMismatch)

		tooMuch := debit
		tooMuch.IdempotencyKey, tooMuch.Amount = "k2", kzt(7_501)
		_, err = e.svc.Debit(ctx, tooMuch)
		wantErr(t, "debit beyond the balance", err, domain.ErrInsufficientFunds)
		_, err = e.store.DebitByKey(ctx, a.ID(), "k2")
		wantErr(t, "refused debit's key", err, ports.ErrNotFound)

		unknown := debit
		unknown.AccountID, unknown.IdempotencyKey = "acc_unknown", "k3"
		_, err = e.svc.Debit(ctx, unknown)
		wantErr(t, "debit of an unknown account", err, ports.ErrNotFound)

		if _, err := e.svc.ChangeAccountStatus(ctx, ports.ChangeAccountStatus{AccountID: a.ID(), To: domain.AccountBlocked, Actor: "ops"}); err != nil {
			t.Fatal(err)
		}
		blocked := debit
		blocked.IdempotencyKey = "k4"
		_, err = e.svc.Debit(ctx, blocked)
		wantErr(t, "debit of a blocked account", err, domain.ErrAccountBlocked)

		if got := e.balance(t, a.ID()); got != 7_500 {
			t.Fatalf("balance = %d, want 7500", got)
		}
		if c := e.healthy(t); c.Transfers != 2 {
			t.Fatalf("transfers = %d, want 2", c.Transfers)
		}
	})
}

// TestRecordUnreadable: an authentic callback that cannot be read is kept —
// its raw body in the inbox and one malformed_callback exception naming the
// deposit when the payment id could be read — and a redelivery is a replay.
// Nothing moves, and the exception justifies no credit.
func TestRecordUnreadable(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		a := e.openAccount(t, "cust-1")
		d := e.openDeposit(t, "cust-1", 10_000)
		cmd := ports.RecordUnreadable{Channel: kassa, PaymentID: d.PaymentID, OperationID: "op-1", Status: "success",
			RawBody: `{"payment":{"id":"` + d.PaymentID + `","sum":{"amount":"10000"}}}`, Detail: "payment.sum.amount must be an integer",
			ReceivedAt: e.clock.Now()}
		res, err := e.svc.RecordUnreadable(ctx, cmd)
		if err != nil || res.Effect != domain.EffectException || res.Exception == nil || res.InboxID <= 0 {
			t.Fatalf("record: %+v, %v", res, err)
		}
		x := *res.Exception
		if x.Reason != domain.ReasonMalformedCallback || x.DepositID != d.ID || x.AccountID != a.ID() || x.Evidence != cmd.RawBody {
			t.Fatalf("exception %+v", x)
		}
		again, err := e.svc.RecordUnreadable(ctx, cmd)
		if err != nil || again.Effect != domain.EffectReplay || again.Exception.ID != x.ID {
			t.Fatalf("redelivery: %+v, %v", again, err)
		}
		// An unreadable body without a payment id still lands.
		bare := cmd
		bare.PaymentID, bare.OperationID, bare.Status, bare.RawBody = "", "", "", `{"project_id":1001,"payment":[]}`
		if res, err := e.svc.RecordUnreadable(ctx, bare); err != nil || res.Effect != domain.EffectException || res.Exception.DepositID != "" {
			t.Fatalf("record without a payment id: %+v, %v", res, err)
		}
		inbox, err := e.store.ListInbox(ctx, ports.InboxQuery{Outcome: domain.EffectException, Limit: 10})
		if err != nil || len(inbox) != 2 {
			t.Fatalf("inbox of exceptions: %+v, %v", inbox, err)
		}
		for _, r := range inbox {
			if r.Reason != domain.ReasonMalformedCallback || r.ExceptionID == "" {
				t.Fatalf("inbox record %+v", r)
			}
		}
		all, err := e.store.ListInbox(ctx, ports.InboxQuery{PaymentID: d.PaymentID, Limit: 10})
		if err != nil || len(all) != 2 || all[0].Body != cmd.RawBody || all[1].Outcome != domain.EffectReplay || all[1].Reason != domain.ReasonMalformedCallback {
			t.Fatalf("inbox of the payment: %+v, %v", all, err)
		}
		xs, err := e.store.ListExceptions(ctx, ports.ExceptionQuery{Reason: domain.ReasonMalformedCallback, Limit: 10})
		if err != nil || len(xs) != 2 {
			t.Fatalf("exceptions by reason: %+v, %v", xs, err)
		}
		if xs, err := e.store.ListExceptions(ctx, ports.ExceptionQuery{Reason: domain.ReasonAmountMismatch, Limit: 10}); err != nil || len(xs) != 0 {
			t.Fatalf("other reason: %+v, %v", xs, err)
		}
		_, err = e.svc.ResolveException(ctx, ports.ResolveException{ExceptionID: x.ID, Credit: true, Note: "n", Actor: "op"})
		wantErr(t, "credit of an unreadable callback", err, domain.ErrExceedsEvidence)
		if e.balance(t, a.ID()) != 0 || e.deposit(t, d).Status != domain.DepositPending {
			t.Fatal("an unreadable callback moved money or the deposit")
		}
		// The readable callback still settles the deposit.
		if res := e.settle(t, e.success(d, "op-1")); res.Effect != domain.EffectCredit {
			t.Fatalf("then the readable callback: %+v", res)
		}
		e.healthy(t)
	})
}

// TestSettleKeepsAnyCurrencyAndMethod: a callback in another currency than
// the deposit's — an ISO 4217 one, text Tiyn does not know, none — or naming
// another method, is an exception with its evidence kept as sent.
func TestSettleKeepsAnyCurrencyAndMethod(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		e.openAccount(t, "cust-1")
		usd, err := domain.LookupCurrency("USD")
		if err != nil {
			t.Fatal(err)
		}
		for i, tc := range []struct {
			amount domain.Amount
			method string
			reason domain.ExceptionReason
			text   string // the currency as stored and read back
		}{
			{domain.NewAmount(10_000, usd), "kassa24", domain.ReasonCurrencyMismatch, "USD"},
			{domain.NewAmount(10_000, domain.UnlistedCurrency("kzt")), "kassa24", domain.ReasonCurrencyMismatch, "kzt"},
			{domain.NewAmount(10_000, domain.Currency{}), "kassa24", domain.ReasonCurrencyMismatch, ""},
			{kzt(10_000), "qiwi", domain.ReasonMethodMismatch, "KZT"},
			{kzt(10_000), "", domain.ReasonMethodMismatch, "KZT"},
		} {
			d := e.openDeposit(t, "cust-1", 10_000)
			cmd := e.callback(d.PaymentID, domain.OutcomeSuccess, "success", fmt.Sprint("op-", i), tc.amount)
			cmd.Outcome.Method = tc.method
			res := e.settle(t, cmd)
			if res.Effect != domain.EffectException || res.Decision.Reason != tc.reason || res.Transfer != nil {
				t.Fatalf("case %d: %+v", i, res)
			}
			got, err := e.store.ExceptionByID(ctx, res.Exception.ID)
			if err != nil || got.Amount.Currency().Code() != tc.text || got.Amount.Minor() != 10_000 {
				t.Fatalf("case %d: stored %+v (%s), %v", i, got.Amount, got.Amount.Currency(), err)
			}
		}
		if c := e.healthy(t); c.Transfers != 0 {
			t.Fatalf("money moved: %+v", c)
		}
	})
}
