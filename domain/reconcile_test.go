package domain_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/tiyn/tiyn/domain"
)

// op is a platform operation of depositAmount completed at t0 plus the
// given seconds.
func op(seq int64, id, typ, status string, sec int) domain.PlatformOperation {
	return domain.PlatformOperation{Seq: seq, OperationID: id, Type: typ, Status: status, Amount: depositAmount,
		CompletedAt: t0.Add(time.Duration(sec) * time.Second)}
}

func withAmount(o domain.PlatformOperation, a domain.Amount) domain.PlatformOperation {
	o.Amount = a
	return o
}

func TestClassifyOperation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		typ, status string
		want        domain.OutcomeKind
	}{
		{"sale", "success", domain.OutcomeSuccess},
		{"sale", "decline", domain.OutcomeDecline},
		{"sale", "error", domain.OutcomeDecline},
		{"sale", "internal error", domain.OutcomeDecline},
		{"sale", "external error", domain.OutcomeDecline},
		{"sale", "expired", domain.OutcomeDecline},
		{"sale", "processing", domain.OutcomeIntermediate},
		{"sale", "awaiting approval", domain.OutcomeIntermediate},
		{"sale", "Success", domain.OutcomeIntermediate},
		{"sale", " success", domain.OutcomeIntermediate},
		{"Sale", "success", domain.OutcomeReversal}, // not the platform's word for a sale: it does not collect anything
		{"refund", "success", domain.OutcomeReversal},
		{"reversal", "success", domain.OutcomeReversal},
		{"refund", "decline", domain.OutcomeIntermediate},
		{"refund", "processing", domain.OutcomeIntermediate},
		{"", "", domain.OutcomeIntermediate},
	} {
		if got := domain.ClassifyOperation(tc.typ, tc.status); got != tc.want {
			t.Errorf("ClassifyOperation(%q, %q) = %v, want %v", tc.typ, tc.status, got, tc.want)
		}
	}
}

func TestReconClasses(t *testing.T) {
	t.Parallel()
	want := []string{"matched", "healed", "amount_mismatch", "currency_mismatch", "orphan_operation",
		"credited_without_platform_success", "pending_both", "duplicate_in_source", "held_for_operator", "unreadable_row"}
	got := domain.ReconClasses()
	if len(got) != len(want) {
		t.Fatalf("ReconClasses() = %v", got)
	}
	for i, c := range got {
		if c.String() != want[i] {
			t.Errorf("class %d = %q, want %q", i, c, want[i])
		}
		p, err := domain.ParseReconClass(c.String())
		if err != nil || p != c {
			t.Errorf("ParseReconClass(%q) = %v, %v", c, p, err)
		}
		wantBreak := c != domain.ClassMatched && c != domain.ClassHealed && c != domain.ClassPendingBoth
		if c.IsBreak() != wantBreak {
			t.Errorf("%s.IsBreak() = %v", c, c.IsBreak())
		}
	}
	for _, s := range []string{"", "Matched", "matched ", "orphan", "healed\x00"} {
		if _, err := domain.ParseReconClass(s); !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("ParseReconClass(%q) = %v", s, err)
		}
	}
	if (domain.ReconClass{}).IsBreak() {
		t.Error("the zero class is a break")
	}
}

// TestDecideReconciliation has a row for every class the matching pass
// gives, and the cases that pick the deciding operation.
func TestDecideReconciliation(t *testing.T) {
	t.Parallel()
	usd, err := domain.LookupCurrency("USD") // registered from ISO 4217; registering a test code would leak into other tests
	if err != nil {
		t.Fatal(err)
	}
	pending := deposit(t, domain.DepositPending, "")
	credited := deposit(t, domain.DepositSucceeded, "op1")
	declined := deposit(t, domain.DepositDeclined, "op1")
	expired := deposit(t, domain.DepositExpired, "")
	ptr := func(d domain.Deposit) *domain.Deposit { return &d }
	sale := func(status string) domain.PlatformOperation { return op(1, "op1", "sale", status, 0) }

	type row struct {
		name    string
		dep     *domain.Deposit
		ops     []domain.PlatformOperation
		classes []domain.ReconClass
		decider int
		action  domain.ReconAction
	}
	M, H, AM, CM := domain.ClassMatched, domain.ClassHealed, domain.ClassAmountMismatch, domain.ClassCurrencyMismatch
	OR, CW, PB, DU, HO := domain.ClassOrphanOperation, domain.ClassCreditedWithoutPlatformSuccess, domain.ClassPendingBoth,
		domain.ClassDuplicateInSource, domain.ClassHeldForOperator
	none, settle, raise := domain.ActionNone, domain.ActionSettle, domain.ActionRaise
	for _, tc := range []row{
		{"success, credited by it", ptr(credited), []domain.PlatformOperation{sale("success")}, []domain.ReconClass{M}, 0, none},
		{"success, pending", ptr(pending), []domain.PlatformOperation{sale("success")}, []domain.ReconClass{H}, 0, settle},
		{"success, declined", ptr(declined), []domain.PlatformOperation{sale("success")}, []domain.ReconClass{H}, 0, settle},
		{"success, expired", ptr(expired), []domain.PlatformOperation{sale("success")}, []domain.ReconClass{H}, 0, settle},
		{"success, credited by another operation", ptr(credited), []domain.PlatformOperation{op(1, "op2", "sale", "success", 0)},
			[]domain.ReconClass{HO}, 0, settle},
		{"success, another amount", ptr(pending), []domain.PlatformOperation{withAmount(sale("success"), domain.NewAmount(150001, domain.KZT))},
			[]domain.ReconClass{AM}, 0, settle},
		{"success, another amount, credited", ptr(credited), []domain.PlatformOperation{withAmount(sale("success"), domain.NewAmount(1, domain.KZT))},
			[]domain.ReconClass{AM}, 0, settle},
		{"success, another currency", ptr(pending), []domain.PlatformOperation{withAmount(sale("success"), domain.NewAmount(150000, usd))},
			[]domain.ReconClass{CM}, 0, settle},
		{"success, an unlisted currency", ptr(pending), []domain.PlatformOperation{withAmount(sale("success"), domain.NewAmount(150000, domain.UnlistedCurrency("ZZZ")))},
			[]domain.ReconClass{CM}, 0, settle},
		{"decline, another amount", ptr(pending), []domain.PlatformOperation{withAmount(sale("decline"), domain.NewAmount(5, domain.KZT))},
			[]domain.ReconClass{AM}, 0, settle},
		{"not final, another amount says nothing", ptr(pending), []domain.PlatformOperation{withAmount(sale("processing"), domain.NewAmount(5, usd))},
			[]domain.ReconClass{PB}, 0, none},
		{"unknown payment", nil, []domain.PlatformOperation{sale("success")}, []domain.ReconClass{OR}, 0, settle},
		{"unknown payment, two operations", nil, []domain.PlatformOperation{sale("decline"), op(2, "op2", "sale", "success", 5)},
			[]domain.ReconClass{OR, OR}, 1, settle},
		{"decline, credited", ptr(credited), []domain.PlatformOperation{sale("decline")}, []domain.ReconClass{CW}, 0, raise},
		{"decline, pending", ptr(pending), []domain.PlatformOperation{sale("decline")}, []domain.ReconClass{M}, 0, settle},
		{"decline, expired", ptr(expired), []domain.PlatformOperation{sale("expired")}, []domain.ReconClass{M}, 0, settle},
		{"decline, declined", ptr(declined), []domain.PlatformOperation{sale("decline")}, []domain.ReconClass{M}, 0, none},
		{"not final, credited", ptr(credited), []domain.PlatformOperation{sale("processing")}, []domain.ReconClass{CW}, 0, raise},
		{"not final, pending", ptr(pending), []domain.PlatformOperation{sale("awaiting approval")}, []domain.ReconClass{PB}, 0, none},
		{"not final, declined", ptr(declined), []domain.PlatformOperation{sale("processing")}, []domain.ReconClass{PB}, 0, none},
		{"refund after success, credited", ptr(credited), []domain.PlatformOperation{sale("success"), op(2, "op9", "refund", "success", 60)},
			[]domain.ReconClass{M, CW}, 1, raise},
		{"refund after success, pending", ptr(pending), []domain.PlatformOperation{sale("success"), op(2, "op9", "refund", "success", 60)},
			[]domain.ReconClass{M, HO}, 1, settle},
		{"refund listed first but completed later", ptr(pending), []domain.PlatformOperation{op(1, "op9", "refund", "success", 60), op(2, "op1", "sale", "success", 0)},
			[]domain.ReconClass{HO, M}, 0, settle},
		{"a sale after the refund decides", ptr(pending), []domain.PlatformOperation{op(1, "op9", "refund", "success", 0), op(2, "op1", "sale", "success", 60)},
			[]domain.ReconClass{M, H}, 1, settle},
		{"a failed refund says nothing", ptr(credited), []domain.PlatformOperation{sale("success"), op(2, "op9", "refund", "decline", 60)},
			[]domain.ReconClass{M, M}, 0, none},
		{"the last sale decides: decline then success", ptr(pending), []domain.PlatformOperation{op(1, "op0", "sale", "decline", 0), op(2, "op1", "sale", "success", 10)},
			[]domain.ReconClass{M, H}, 1, settle},
		{"the last sale decides: success then decline", ptr(credited), []domain.PlatformOperation{op(1, "op1", "sale", "success", 0), op(2, "op2", "sale", "decline", 10)},
			[]domain.ReconClass{M, CW}, 1, raise},
		{"same instant: source order decides", ptr(pending), []domain.PlatformOperation{op(1, "op0", "sale", "success", 0), op(2, "op1", "sale", "decline", 0)},
			[]domain.ReconClass{M, M}, 1, settle},
		{"duplicate, identical copies", ptr(pending), []domain.PlatformOperation{sale("success"), sale("success")},
			[]domain.ReconClass{H, DU}, 0, settle},
		{"duplicate, credited", ptr(credited), []domain.PlatformOperation{sale("success"), sale("success"), sale("success")},
			[]domain.ReconClass{M, DU, DU}, 0, none},
		{"duplicate copies disagree: nothing applied", ptr(pending), []domain.PlatformOperation{sale("decline"), op(2, "op1", "sale", "success", 0)},
			[]domain.ReconClass{DU, DU}, 0, none},
		{"duplicate of an orphan", nil, []domain.PlatformOperation{sale("success"), sale("success")},
			[]domain.ReconClass{OR, DU}, 0, settle},
		{"only another operation type, not final", ptr(pending), []domain.PlatformOperation{op(1, "op5", "refund", "processing", 0)},
			[]domain.ReconClass{PB}, 0, none},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := domain.DecideReconciliation(tc.dep, tc.ops)
			if fmt.Sprint(v.Classes) != fmt.Sprint(tc.classes) || v.Decider != tc.decider || v.Action != tc.action {
				t.Fatalf("verdict = %v decider %d action %v (%q), want %v decider %d action %v",
					v.Classes, v.Decider, v.Action, v.Notes, tc.classes, tc.decider, tc.action)
			}
			if v.Class != v.Classes[v.Decider] {
				t.Errorf("payment class %v, decider's %v", v.Class, v.Classes[v.Decider])
			}
			for i, n := range v.Notes {
				if n == "" {
					t.Errorf("operation %d has no note", i)
				}
			}
		})
	}
}

func TestDecideLedgerOnly(t *testing.T) {
	t.Parallel()
	end := t0.Add(time.Hour)
	settled := func(s domain.DepositStatus, at time.Time) domain.Deposit {
		d := deposit(t, s, "op1")
		d.SettledAt = at
		return d
	}
	for _, tc := range []struct {
		name      string
		dep       domain.Deposit
		elsewhere bool
		want      domain.ReconClass
		action    domain.ReconAction
	}{
		{"pending", deposit(t, domain.DepositPending, ""), false, domain.ClassPendingBoth, domain.ActionNone},
		{"credited within the day", settled(domain.DepositSucceeded, t0), false, domain.ClassCreditedWithoutPlatformSuccess, domain.ActionRaise},
		{"credited within the day, its sale on another day's record", settled(domain.DepositSucceeded, t0), true, domain.ClassMatched, domain.ActionNone},
		{"credited after the day", settled(domain.DepositSucceeded, end), false, domain.ClassPendingBoth, domain.ActionNone},
		{"declined within the day", settled(domain.DepositDeclined, t0), false, domain.ClassMatched, domain.ActionNone},
		{"declined after the day", settled(domain.DepositDeclined, end.Add(time.Second)), false, domain.ClassPendingBoth, domain.ActionNone},
		{"expired within the day", settled(domain.DepositExpired, t0), false, domain.ClassMatched, domain.ActionNone},
		{"pending, elsewhere means nothing", deposit(t, domain.DepositPending, ""), true, domain.ClassPendingBoth, domain.ActionNone},
	} {
		v := domain.DecideLedgerOnly(tc.dep, end, tc.elsewhere)
		if v.Class != tc.want || v.Action != tc.action || v.Decider != -1 || v.Detail == "" {
			t.Errorf("%s: %+v, want %v %v", tc.name, v, tc.want, tc.action)
		}
	}
}

func TestReconClassOfSettlement(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		effect domain.Effect
		reason domain.ExceptionReason
		want   domain.ReconClass
	}{
		{domain.EffectCredit, domain.ExceptionReason{}, domain.ClassHealed},
		{domain.EffectDecline, domain.ExceptionReason{}, domain.ClassMatched},
		{domain.EffectReplay, domain.ExceptionReason{}, domain.ClassMatched},
		{domain.EffectRecord, domain.ExceptionReason{}, domain.ClassPendingBoth},
		{domain.EffectException, domain.ReasonAmountMismatch, domain.ClassAmountMismatch},
		{domain.EffectException, domain.ReasonCurrencyMismatch, domain.ClassCurrencyMismatch},
		{domain.EffectException, domain.ReasonUnknownPayment, domain.ClassOrphanOperation},
		{domain.EffectException, domain.ReasonReversal, domain.ClassHeldForOperator},
		{domain.EffectException, domain.ReasonAccountClosed, domain.ClassHeldForOperator},
		{domain.EffectException, domain.ReasonBalanceCeiling, domain.ClassHeldForOperator},
		{domain.EffectException, domain.ReasonDuplicateSuccess, domain.ClassHeldForOperator},
		{domain.EffectException, domain.ReasonMethodMismatch, domain.ClassHeldForOperator},
		{domain.EffectReplay, domain.ReasonAmountMismatch, domain.ClassAmountMismatch},
	} {
		if got := domain.ReconClassOfSettlement(tc.effect, tc.reason); got != tc.want {
			t.Errorf("ReconClassOfSettlement(%v, %v) = %v, want %v", tc.effect, tc.reason, got, tc.want)
		}
	}
}

func TestCreditedWithoutPlatformSuccessException(t *testing.T) {
	t.Parallel()
	d := deposit(t, domain.DepositSucceeded, "op1")
	e := domain.CreditedWithoutPlatformSuccessException("exc_1", d, "detail", "evidence", t0)
	if e.DedupeKey != "recon:credited_without_platform_success:"+d.ID || e.DepositID != d.ID || e.State != domain.ExceptionOpen {
		t.Fatalf("exception %+v", e)
	}
	// It claims nothing: no operator credit can be justified by it.
	if e.CreditBound().IsPositive() || e.CheckCredit(d.Amount) == nil {
		t.Fatalf("credit bound %v", e.CreditBound())
	}
}

// TestDecideReconciliationProperties: whatever the operations, every one
// gets exactly one class, a credit is only ever asked for (settle) when
// the decider is a successful sale of the deposit's amount and currency
// on an uncredited deposit or a mismatch/reversal/orphan (the settle path
// then refuses to credit), and a credited deposit is never asked to be
// settled by a non-success.
func TestDecideReconciliationProperties(t *testing.T) {
	t.Parallel()
	statuses := []string{"success", "decline", "processing", "error", "expired", "awaiting customer"}
	types := []string{"sale", "sale", "sale", "refund"}
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 6).Draw(t, "n")
		ops := make([]domain.PlatformOperation, n)
		for i := range ops {
			ops[i] = op(int64(i+1), fmt.Sprintf("op%d", rapid.IntRange(1, 4).Draw(t, "id")),
				rapid.SampledFrom(types).Draw(t, "type"), rapid.SampledFrom(statuses).Draw(t, "status"), rapid.IntRange(0, 3).Draw(t, "sec"))
			if rapid.IntRange(0, 5).Draw(t, "odd amount") == 0 {
				ops[i].Amount = domain.NewAmount(1, domain.KZT)
			}
		}
		var dep *domain.Deposit
		if st := rapid.IntRange(0, 4).Draw(t, "deposit"); st > 0 {
			d := deposit(t, []domain.DepositStatus{domain.DepositPending, domain.DepositSucceeded, domain.DepositDeclined, domain.DepositExpired}[st-1], "op1")
			dep = &d
		}
		v := domain.DecideReconciliation(dep, ops)
		if len(v.Classes) != n || v.Decider < 0 || v.Decider >= n {
			t.Fatalf("verdict %+v", v)
		}
		for i, c := range v.Classes {
			if c.IsZero() {
				t.Fatalf("operation %d has no class", i)
			}
		}
		d := ops[v.Decider]
		if d.OperationID == "" {
			t.Fatal("decider without id")
		}
		if v.Class == domain.ClassHealed && (dep == nil || dep.Status == domain.DepositSucceeded || d.Kind() != domain.OutcomeSuccess || d.Amount != dep.Amount) {
			t.Fatalf("heal of %+v by %+v", dep, d)
		}
		if dep != nil && dep.Status == domain.DepositSucceeded && v.Action == domain.ActionSettle &&
			d.Kind() != domain.OutcomeSuccess && d.Amount == dep.Amount {
			t.Fatalf("a credited deposit settled by %+v", d)
		}
		if dep == nil && v.Class != domain.ClassOrphanOperation && v.Class != domain.ClassDuplicateInSource {
			t.Fatalf("unknown payment classed %v", v.Class)
		}
	})
}
