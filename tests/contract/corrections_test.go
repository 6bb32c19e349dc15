package contract_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// Corrections that cannot create money (issue 13): an operator's credit
// settles its deposit, is bounded by its evidence, pays a payment at most
// once, and with four eyes needs a second operator.

func kzt(minor int64) domain.Amount { return domain.NewAmount(minor, domain.KZT) }

// creditsOf lists the credit transfers of an account (kind, amount).
func (e *env) creditsOf(t *testing.T, accountID string) []ports.StatementLine {
	t.Helper()
	lines, err := e.svc.Statement(t.Context(), ports.StatementQuery{AccountID: accountID, Limit: ports.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	var out []ports.StatementLine
	for _, l := range lines {
		if l.Amount.IsPositive() {
			out = append(out, l)
		}
	}
	return out
}

func (e *env) credit(t *testing.T, exceptionID string, amount domain.Amount, accountID string) (domain.Exception, error) {
	t.Helper()
	return e.svc.ResolveException(t.Context(), ports.ResolveException{ExceptionID: exceptionID, Credit: true,
		AccountID: accountID, Amount: amount, Note: "checked with the platform", Actor: "op-anna"})
}

// The finding: check_deposit 500.00, a success claiming 600.00 (an
// amount_mismatch), resolved by credit; then the platform's correct
// success, with a new operation or the same one, must not credit again.
func TestCorrectionSettlesTheDeposit(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		for i, later := range []struct {
			name   string
			op     string
			amount int64
			kind   domain.OutcomeKind
			status string
			want   domain.Effect
		}{
			{"correct success, new operation", "op-2", 50_000, domain.OutcomeSuccess, "success", domain.EffectException},
			{"correct success, same operation", "op-1", 50_000, domain.OutcomeSuccess, "success", domain.EffectReplay},
			{"the mismatching callback again", "op-1", 60_000, domain.OutcomeSuccess, "success", domain.EffectReplay},
			{"a decline", "op-3", 50_000, domain.OutcomeDecline, "decline", domain.EffectException},
		} {
			t.Run(later.name, func(t *testing.T) {
				cust := fmt.Sprintf("cust-%d", i)
				a := e.openAccount(t, cust)
				d := e.openDeposit(t, cust, 50_000)
				res := e.settle(t, e.callback(d.PaymentID, domain.OutcomeSuccess, "success", "op-1", kzt(60_000)))
				if res.Effect != domain.EffectException || res.Decision.Reason != domain.ReasonAmountMismatch {
					t.Fatalf("mismatch: %+v", res)
				}
				x := *res.Exception
				if x.Outcome != domain.OutcomeSuccess || x.MaxCredit != limits.MaxMinor {
					t.Fatalf("exception keeps outcome %q and max %d", x.Outcome, x.MaxCredit)
				}
				got, err := e.credit(t, x.ID, domain.Amount{}, "")
				if err != nil {
					t.Fatal(err)
				}
				if got.State != domain.ExceptionResolved || got.Resolution.Amount != kzt(60_000) {
					t.Fatalf("resolved: %+v", got.Resolution)
				}
				if dep := e.deposit(t, d); dep.Status != domain.DepositSucceeded || dep.OperationID != "op-1" {
					t.Fatalf("the credit left the deposit %s (operation %q)", dep.Status, dep.OperationID)
				}
				cmd := e.callback(d.PaymentID, later.kind, later.status, later.op, kzt(later.amount))
				if res := e.settle(t, cmd); res.Effect != later.want || res.Transfer != nil {
					t.Fatalf("later callback: effect %s, transfer %v; want %s and no money", res.Effect, res.Transfer, later.want)
				}
				if b := e.balance(t, a.ID()); b != 60_000 {
					t.Fatalf("balance %d after one payment credited by an operator, want 60000", b)
				}
				if cr := e.creditsOf(t, a.ID()); len(cr) != 1 || cr[0].Kind != domain.TransferDepositCredit {
					t.Fatalf("credits: %+v", cr)
				}
				if c := e.healthy(t); c.DuplicateCredits != 0 || c.CreditsWithoutDeposit != 0 {
					t.Fatalf("ledger: %+v", c)
				}
			})
		}
	})
}

// A callback racing the operator's credit: whichever settles the deposit
// first wins, the other finds it credited.
func TestCorrectionRacesTheCallback(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		for round := range 8 {
			cust := fmt.Sprintf("race-%d", round)
			a := e.openAccount(t, cust)
			d := e.openDeposit(t, cust, 50_000)
			x := *e.settle(t, e.callback(d.PaymentID, domain.OutcomeSuccess, "success", "op-1", kzt(50_001))).Exception
			errs := race(t, 2, func(ctx context.Context, i int) error {
				if i == 0 {
					_, err := e.svc.ResolveException(ctx, ports.ResolveException{ExceptionID: x.ID, Credit: true, Amount: kzt(50_000),
						Note: "customer paid 500.00", Actor: "op-anna"})
					return err
				}
				_, err := e.svc.SettleDeposit(ctx, e.success(d, "op-2"))
				return err
			})
			if errs[1] != nil || (errs[0] != nil && !errors.Is(errs[0], domain.ErrAlreadyCredited)) {
				t.Fatalf("round %d: %v", round, errs)
			}
			if b := e.balance(t, a.ID()); b != 50_000 {
				t.Fatalf("round %d: balance %d, want one credit of 50000", round, b)
			}
		}
		if c := e.healthy(t); c.DuplicateCredits != 0 {
			t.Fatalf("ledger: %+v", c)
		}
	})
}

func TestCorrectionBoundedByEvidence(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		e.openAccount(t, "cust-1")
		other := e.openAccount(t, "cust-2")
		d := e.openDeposit(t, "cust-1", 10_000)
		x := *e.settle(t, e.callback(d.PaymentID, domain.OutcomeSuccess, "success", "op-1", kzt(10_001))).Exception
		for _, tc := range []struct {
			name   string
			amount domain.Amount
			want   error
			text   string
		}{
			{"above the evidence", kzt(40_000_000), domain.ErrExceedsEvidence, "exceeds the evidence of exception " + x.ID + ": the platform reported 100.01 KZT"},
			{"one tiyn above", kzt(10_002), domain.ErrExceedsEvidence, "credit 100.02 KZT"},
			{"int64's maximum", kzt(1<<63 - 1), domain.ErrExceedsEvidence, "92233720368547758.07 KZT"},
			{"another currency", domain.NewAmount(10_000, xts), domain.ErrCurrencyMismatch, ""},
			{"zero", kzt(0), domain.ErrInvalidAmount, ""},
			{"negative", kzt(-1), domain.ErrInvalidAmount, ""},
		} {
			_, err := e.credit(t, x.ID, tc.amount, "")
			if !errors.Is(err, tc.want) || !strings.Contains(fmt.Sprint(err), tc.text) {
				t.Errorf("%s: %v, want %v with %q", tc.name, err, tc.want, tc.text)
			}
		}
		if got, _ := e.store.ExceptionByID(t.Context(), x.ID); got.State != domain.ExceptionOpen {
			t.Fatalf("a refused credit left the exception %s", got.State)
		}

		// An unknown payment claiming more than the method's maximum: the
		// default (the claim) is refused, the maximum is not.
		unknown := *e.settle(t, e.callback("pay-unknown", domain.OutcomeSuccess, "success", "op-9", kzt(60_000_000))).Exception
		_, err := e.credit(t, unknown.ID, domain.Amount{}, other.ID())
		if !errors.Is(err, domain.ErrExceedsEvidence) || !strings.Contains(err.Error(), "maximum of 500000.00 KZT") {
			t.Fatalf("credit above the method maximum: %v", err)
		}
		if _, err := e.credit(t, unknown.ID, kzt(limits.MaxMinor), other.ID()); err != nil {
			t.Fatal(err)
		}

		// Evidence that shows no collected cash justifies nothing.
		d2 := e.openDeposit(t, "cust-1", 10_000)
		declined := *e.settle(t, e.callback(d2.PaymentID, domain.OutcomeDecline, "decline", "op-5", kzt(9_000))).Exception
		if _, err := e.credit(t, declined.ID, domain.Amount{}, ""); !errors.Is(err, domain.ErrExceedsEvidence) ||
			!strings.Contains(err.Error(), `does not show a collected payment (payment status "decline")`) {
			t.Fatalf("credit of a decline: %v", err)
		}
		if b := e.balance(t, d.AccountID); b != 0 {
			t.Fatalf("balance %d after refused credits", b)
		}
		e.healthy(t)
	})
}

// An exception whose payment is already credited — a second success, a
// decline after success — is refused, naming the credit; it can be
// dismissed.
func TestCorrectionOfACreditedPaymentRefused(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		a := e.openAccount(t, "cust-1")
		d := e.openDeposit(t, "cust-1", 10_000)
		first := e.settle(t, e.success(d, "op-1"))
		dup := *e.settle(t, e.success(d, "op-2")).Exception
		late := *e.settle(t, e.decline(d, "op-3")).Exception
		if dup.Reason != domain.ReasonDuplicateSuccess || late.Reason != domain.ReasonDeclineAfterSuccess {
			t.Fatalf("reasons %s, %s", dup.Reason, late.Reason)
		}
		for _, x := range []domain.Exception{dup, late} {
			_, err := e.credit(t, x.ID, domain.Amount{}, "")
			if !errors.Is(err, domain.ErrAlreadyCredited) || !strings.Contains(err.Error(), first.Transfer.ID) {
				t.Fatalf("credit of %s: %v, want ErrAlreadyCredited naming %s", x.Reason, err, first.Transfer.ID)
			}
			got, err := e.svc.ResolveException(t.Context(), ports.ResolveException{ExceptionID: x.ID, Note: "already paid", Actor: "op-anna"})
			if err != nil || got.State != domain.ExceptionDismissed {
				t.Fatalf("dismissal: %+v, %v", got, err)
			}
		}
		if b := e.balance(t, a.ID()); b != 10_000 {
			t.Fatalf("balance %d", b)
		}
		e.healthy(t)
	})
}

// An unknown payment is credited once, however many exceptions it raised.
func TestCorrectionUnknownPaymentOnce(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		a := e.openAccount(t, "cust-1")
		b := e.openAccount(t, "cust-2")
		x1 := *e.settle(t, e.callback("pay-lost", domain.OutcomeSuccess, "success", "op-1", kzt(10_000))).Exception
		x2 := *e.settle(t, e.callback("pay-lost", domain.OutcomeSuccess, "success", "op-2", kzt(10_000))).Exception
		if x1.ID == x2.ID {
			t.Fatal("two operations raised one exception")
		}
		if _, err := e.credit(t, x1.ID, domain.Amount{}, ""); !errors.Is(err, domain.ErrInvalidInput) {
			t.Fatalf("credit without an account: %v", err)
		}
		got, err := e.credit(t, x1.ID, domain.Amount{}, a.ID())
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.credit(t, x2.ID, domain.Amount{}, b.ID())
		if !errors.Is(err, domain.ErrAlreadyCredited) || !strings.Contains(err.Error(), got.Resolution.TransferID) {
			t.Fatalf("second credit of one unknown payment: %v", err)
		}
		// Two operators at once on the two exceptions: one credit.
		c := e.openAccount(t, "cust-3")
		y1 := *e.settle(t, e.callback("pay-lost-2", domain.OutcomeSuccess, "success", "op-3", kzt(5_000))).Exception
		y2 := *e.settle(t, e.callback("pay-lost-2", domain.OutcomeSuccess, "success", "op-4", kzt(5_000))).Exception
		errs := race(t, 2, func(ctx context.Context, i int) error {
			_, err := e.svc.ResolveException(ctx, ports.ResolveException{ExceptionID: []string{y1.ID, y2.ID}[i], Credit: true,
				AccountID: c.ID(), Note: "found it", Actor: "op-anna"})
			return err
		})
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, domain.ErrAlreadyCredited), errors.Is(err, ports.ErrConflict):
			default:
				t.Fatalf("racing credits: %v", errs)
			}
		}
		if ok != 1 || e.balance(t, c.ID()) != 5_000 {
			t.Fatalf("racing credits: %d succeeded, balance %d", ok, e.balance(t, c.ID()))
		}
		if e.balance(t, a.ID()) != 10_000 || e.balance(t, b.ID()) != 0 {
			t.Fatalf("balances %d, %d", e.balance(t, a.ID()), e.balance(t, b.ID()))
		}
		e.healthy(t)
	})
}

func TestCorrectionFourEyes(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		svc := app.NewService(e.store, system.Clock{}, e.ids, app.WithFourEyes(true))
		a := e.openAccount(t, "cust-1")
		d := e.openDeposit(t, "cust-1", 10_000)
		x := *e.settle(t, e.callback(d.PaymentID, domain.OutcomeSuccess, "success", "op-1", kzt(9_000))).Exception

		proposed, err := svc.ResolveException(ctx, ports.ResolveException{ExceptionID: x.ID, Credit: true,
			Note: "customer paid 90.00", Actor: "op-anna"})
		if err != nil {
			t.Fatal(err)
		}
		if proposed.State != domain.ExceptionProposed || proposed.Proposal == nil || proposed.Proposal.Actor != "op-anna" ||
			proposed.Proposal.Amount != kzt(9_000) || proposed.Proposal.AccountID != a.ID() || proposed.Resolution != nil {
			t.Fatalf("proposal: %+v %+v", proposed, proposed.Proposal)
		}
		if b := e.balance(t, a.ID()); b != 0 {
			t.Fatalf("a proposal moved money: %d", b)
		}
		if dep := e.deposit(t, d); dep.Status != domain.DepositPending {
			t.Fatalf("a proposal settled the deposit: %s", dep.Status)
		}
		// A second proposal, a dismissal, a plain resolution: refused while proposed.
		_, err = svc.ResolveException(ctx, ports.ResolveException{ExceptionID: x.ID, Credit: true, Note: "again", Actor: "op-boris"})
		wantErr(t, "second proposal", err, domain.ErrInvalidTransition)
		_, err = svc.ResolveException(ctx, ports.ResolveException{ExceptionID: x.ID, Note: "dismiss", Actor: "op-boris"})
		wantErr(t, "dismissal of a proposal", err, domain.ErrInvalidTransition)
		// The proposer may not approve.
		_, err = svc.ApproveException(ctx, ports.DecideProposal{ExceptionID: x.ID, Actor: "op-anna"})
		wantErr(t, "self approval", err, domain.ErrSelfApproval)
		// Rejection: open again, and nothing moved.
		_, err = svc.RejectException(ctx, ports.DecideProposal{ExceptionID: x.ID, Actor: "op-boris"})
		wantErr(t, "rejection without a note", err, domain.ErrInvalidInput)
		rejected, err := svc.RejectException(ctx, ports.DecideProposal{ExceptionID: x.ID, Note: "not confirmed yet", Actor: "op-boris"})
		if err != nil || rejected.State != domain.ExceptionOpen || rejected.Proposal != nil {
			t.Fatalf("rejected: %+v, %v", rejected, err)
		}
		_, err = svc.ApproveException(ctx, ports.DecideProposal{ExceptionID: x.ID, Actor: "op-boris"})
		wantErr(t, "approval of an open exception", err, domain.ErrInvalidTransition)

		// Propose again; another operator approves: one credit.
		if _, err := svc.ResolveException(ctx, ports.ResolveException{ExceptionID: x.ID, Credit: true,
			Note: "confirmed by the platform", Actor: "op-anna"}); err != nil {
			t.Fatal(err)
		}
		approved, err := svc.ApproveException(ctx, ports.DecideProposal{ExceptionID: x.ID, Note: "ok", Actor: "op-boris"})
		if err != nil {
			t.Fatal(err)
		}
		if approved.State != domain.ExceptionResolved || approved.Resolution.Actor != "op-boris" ||
			approved.Proposal == nil || approved.Proposal.Actor != "op-anna" || approved.Resolution.TransferID == "" {
			t.Fatalf("approved: %+v %+v %+v", approved, approved.Proposal, approved.Resolution)
		}
		stored, err := e.store.ExceptionByID(ctx, x.ID)
		if err != nil || stored.Proposal == nil || stored.Proposal.Actor != "op-anna" || stored.Resolution.Actor != "op-boris" {
			t.Fatalf("stored: %+v, %v", stored, err)
		}
		_, err = svc.ApproveException(ctx, ports.DecideProposal{ExceptionID: x.ID, Actor: "op-carl"})
		wantErr(t, "second approval", err, domain.ErrInvalidTransition)
		if b := e.balance(t, a.ID()); b != 9_000 {
			t.Fatalf("balance %d after the approval, want 9000", b)
		}

		// A proposal overtaken by the platform: the approval finds the
		// deposit credited and refuses.
		d2 := e.openDeposit(t, "cust-1", 10_000)
		x2 := *e.settle(t, e.callback(d2.PaymentID, domain.OutcomeSuccess, "success", "op-7", kzt(9_000))).Exception
		if _, err := svc.ResolveException(ctx, ports.ResolveException{ExceptionID: x2.ID, Credit: true, Note: "n", Actor: "op-anna"}); err != nil {
			t.Fatal(err)
		}
		e.settle(t, e.success(d2, "op-8"))
		_, err = svc.ApproveException(ctx, ports.DecideProposal{ExceptionID: x2.ID, Actor: "op-boris"})
		wantErr(t, "approval after the platform credited", err, domain.ErrAlreadyCredited)
		if b := e.balance(t, a.ID()); b != 19_000 {
			t.Fatalf("balance %d, want 19000", b)
		}

		// Every step is in the audit trail with its actor.
		rows, err := e.store.DB().QueryContext(ctx, `SELECT actor, action FROM audit_log WHERE subject = ? ORDER BY id`, x.ID)
		if err != nil {
			t.Fatal(err)
		}
		var trail []string
		for rows.Next() {
			var actor, action string
			if err := rows.Scan(&actor, &action); err != nil {
				t.Fatal(err)
			}
			trail = append(trail, actor+" "+action)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		want := []string{"op-anna exception.proposed", "op-boris exception.rejected", "op-anna exception.proposed", "op-boris exception.approved"}
		if strings.Join(trail, ",") != strings.Join(want, ",") {
			t.Fatalf("audit trail %v, want %v", trail, want)
		}
		e.healthy(t)
	})
}

// seedBalance puts minor on an account through a balanced transfer written
// directly (as years of payments would), so tests can stand at the ceiling.
func (e *env) seedBalance(t *testing.T, a domain.Account, minor int64) {
	t.Helper()
	ctx := t.Context()
	db := e.store.DB()
	trf := e.ids.NewID("trf")
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO transfers (id, kind, description, actor, created_at_us) VALUES (?, 'exception_credit', 'seed', 'test', 1)`, []any{trf}},
		{`INSERT INTO postings (transfer_id, account_id, amount_minor, currency, balance_after_minor, created_at_us)
			VALUES (?, 'clearing:seed:test', ?, 'KZT', NULL, 1)`, []any{trf, -minor}},
		{`INSERT INTO postings (transfer_id, account_id, amount_minor, currency, balance_after_minor, created_at_us)
			VALUES (?, ?, ?, 'KZT', ?, 1)`, []any{trf, a.ID(), minor, minor}},
		{`UPDATE accounts SET balance_minor = ? WHERE id = ?`, []any{minor, a.ID()}},
	} {
		if _, err := db.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
}

// A credit that would take a balance past the ceiling becomes an
// exception (200 to the platform), never an error the platform retries.
func TestBalanceCeiling(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		a := e.openAccount(t, "whale")
		e.seedBalance(t, a, domain.MaxBalanceMinor-5_000)
		e.healthy(t)
		ok := e.openDeposit(t, "whale", 5_000)
		if res := e.settle(t, e.success(ok, "op-1")); res.Effect != domain.EffectCredit {
			t.Fatalf("credit up to the ceiling: %+v", res)
		}
		over := e.openDeposit(t, "whale", 100)
		res, err := e.svc.SettleDeposit(t.Context(), e.success(over, "op-2"))
		if err != nil || res.Effect != domain.EffectException || res.Decision.Reason != domain.ReasonBalanceCeiling || res.Transfer != nil {
			t.Fatalf("credit past the ceiling: %+v, %v", res, err)
		}
		if b := e.balance(t, a.ID()); b != domain.MaxBalanceMinor {
			t.Fatalf("balance %d, want the ceiling", b)
		}
		// The operator cannot push it over either.
		if _, err := e.credit(t, res.Exception.ID, domain.Amount{}, ""); !errors.Is(err, domain.ErrBalanceCeiling) {
			t.Fatalf("operator credit past the ceiling: %v", err)
		}
		// Once money leaves, the exception can be credited.
		if _, err := e.svc.Debit(t.Context(), ports.Debit{AccountID: a.ID(), Amount: kzt(1_000), IdempotencyKey: "k", RequestHash: "h", Actor: "t"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.credit(t, res.Exception.ID, domain.Amount{}, ""); err != nil {
			t.Fatal(err)
		}
		if c := e.healthy(t); c.AmountsOverCeiling != 0 {
			t.Fatalf("ledger: %+v", c)
		}
		// The store refuses a transfer past the ceiling even when asked.
		t2, err := domain.NewTransfer(e.ids.NewID("trf"), domain.TransferExceptionCredit, "clearing:seed:test", a.ID(), kzt(5_000), base)
		if err != nil {
			t.Fatal(err)
		}
		err = e.updateErr(t, func(ctx context.Context, tx ports.Tx) error { _, err := tx.ApplyTransfer(ctx, t2); return err })
		wantErr(t, "transfer past the ceiling", err, domain.ErrBalanceCeiling)
		if b := e.balance(t, a.ID()); b != domain.MaxBalanceMinor-900 {
			t.Fatalf("balance %d", b)
		}
	})
}

// Every counter of the ledger check fires on the corruption it names, on
// both stores, and an overflowing sum is counted, not an error.
func TestLedgerCheckCountersFire(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		corrupt func(t *testing.T, e *env, a domain.Account, d domain.Deposit, trf string)
		counter func(c ports.LedgerCheck) int64
	}{
		{"unbalanced transfer", func(t *testing.T, e *env, a domain.Account, d domain.Deposit, trf string) {
			e.exec(t, `UPDATE postings SET amount_minor = amount_minor - 1 WHERE transfer_id = ? AND account_id LIKE 'clearing:%'`, trf)
		}, func(c ports.LedgerCheck) int64 { return c.UnbalancedTransfers }},
		{"second credit of a deposit", func(t *testing.T, e *env, a domain.Account, d domain.Deposit, trf string) {
			e.exec(t, `DROP INDEX transfers_one_credit_per_deposit`)
			e.exec(t, `INSERT INTO transfers (id, kind, deposit_id, description, actor, created_at_us) VALUES ('trf_dup', 'deposit_credit', ?, '', '', 1)`, d.ID)
			e.exec(t, `INSERT INTO postings (transfer_id, account_id, amount_minor, currency, balance_after_minor, created_at_us)
				VALUES ('trf_dup', 'clearing:monetix:kassa24', -1, 'KZT', NULL, 1), ('trf_dup', ?, 1, 'KZT', 10001, 1)`, a.ID())
			e.exec(t, `UPDATE accounts SET balance_minor = 10001 WHERE id = ?`, a.ID())
		}, func(c ports.LedgerCheck) int64 { return c.DuplicateCredits }},
		{"credit without a succeeded deposit", func(t *testing.T, e *env, a domain.Account, d domain.Deposit, trf string) {
			e.exec(t, `UPDATE deposits SET status = 'pending' WHERE id = ?`, d.ID)
		}, func(c ports.LedgerCheck) int64 { return c.CreditsWithoutDeposit }},
		{"succeeded without credit", func(t *testing.T, e *env, a domain.Account, d domain.Deposit, trf string) {
			p := e.openDeposit(t, "cust-c", 500)
			e.exec(t, `UPDATE deposits SET status = 'succeeded' WHERE id = ?`, p.ID)
		}, func(c ports.LedgerCheck) int64 { return c.SucceededWithoutCredit }},
		{"negative balance", func(t *testing.T, e *env, a domain.Account, d domain.Deposit, trf string) {
			e.withoutChecks(t, `UPDATE accounts SET balance_minor = -5 WHERE id = ?`, a.ID())
		}, func(c ports.LedgerCheck) int64 { return c.NegativeBalances }},
		{"balance differs from its postings", func(t *testing.T, e *env, a domain.Account, d domain.Deposit, trf string) {
			e.exec(t, `UPDATE accounts SET balance_minor = balance_minor + 7 WHERE id = ?`, a.ID())
		}, func(c ports.LedgerCheck) int64 { return c.BalanceMismatches }},
		{"posting in another currency", func(t *testing.T, e *env, a domain.Account, d domain.Deposit, trf string) {
			e.exec(t, `UPDATE postings SET currency = 'XTS' WHERE transfer_id = ? AND account_id = ?`, trf, a.ID())
		}, func(c ports.LedgerCheck) int64 { return c.CurrencyMismatches }},
		{"overflowing sum of a transfer", func(t *testing.T, e *env, a domain.Account, d domain.Deposit, trf string) {
			// +2^62 + 2^62 overflows int64: it must count as unbalanced.
			e.exec(t, `UPDATE postings SET amount_minor = 4611686018427387904 WHERE transfer_id = ?`, trf)
		}, func(c ports.LedgerCheck) int64 { return c.UnbalancedTransfers }},
		{"overflowing sum of an account", func(t *testing.T, e *env, a domain.Account, d domain.Deposit, trf string) {
			e.exec(t, `INSERT INTO postings (transfer_id, account_id, amount_minor, currency, balance_after_minor, created_at_us)
				VALUES (?, ?, 9223372036854775807, 'KZT', 10000, 2), (?, ?, 9223372036854775807, 'KZT', 10000, 3)`, trf, a.ID(), trf, a.ID())
		}, func(c ports.LedgerCheck) int64 { return c.BalanceMismatches }},
		{"amount over the ceiling", func(t *testing.T, e *env, a domain.Account, d domain.Deposit, trf string) {
			e.exec(t, `UPDATE postings SET amount_minor = -9223372036854775807 WHERE transfer_id = ? AND account_id LIKE 'clearing:%'`, trf)
		}, func(c ports.LedgerCheck) int64 { return c.AmountsOverCeiling }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			eachStore(t, func(t *testing.T, e *env) {
				a := e.fund(t, "cust-a", 10_000)
				e.openAccount(t, "cust-c")
				lines := e.creditsOf(t, a.ID())
				if len(lines) != 1 {
					t.Fatalf("credits %+v", lines)
				}
				d, err := e.store.DepositByPaymentID(t.Context(), kassa, lines[0].PaymentID)
				if err != nil {
					t.Fatal(err)
				}
				before := e.healthy(t)
				if tc.counter(before) != 0 {
					t.Fatalf("counter is %d on a healthy ledger", tc.counter(before))
				}
				tc.corrupt(t, e, a, d, lines[0].TransferID)
				c, err := e.store.CheckLedger(t.Context())
				if err != nil {
					t.Fatalf("the check failed instead of counting: %v", err)
				}
				if tc.counter(c) < 1 || c.Healthy() {
					t.Fatalf("after %s: %+v", tc.name, c)
				}
			})
		})
	}
}

func (e *env) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	if _, err := e.store.DB().ExecContext(t.Context(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// withoutChecks runs a statement that a CHECK constraint would refuse.
func (e *env) withoutChecks(t *testing.T, query string, args ...any) {
	t.Helper()
	if e.cfg.dialect == sqlstore.Postgres {
		e.exec(t, `ALTER TABLE accounts DROP CONSTRAINT accounts_balance_minor_check`)
		e.exec(t, query, args...)
		return
	}
	// SQLite's pragma is per connection: one connection for both.
	conn, err := e.store.DB().Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	for _, q := range []string{`PRAGMA ignore_check_constraints = ON`, query, `PRAGMA ignore_check_constraints = OFF`} {
		a := args
		if q != query {
			a = nil
		}
		if _, err := conn.ExecContext(t.Context(), q, a...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
