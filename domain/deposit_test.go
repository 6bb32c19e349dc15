package domain_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/tiyn/tiyn/domain"
)

var kassa24 = domain.Channel{Provider: "monetix", Method: "kassa24", Project: "123"}

// depositAmount is what every table deposit was opened for: 1500.00 KZT.
var depositAmount = domain.NewAmount(150000, domain.KZT)

// deposit returns a deposit of depositAmount in the given status, settled
// by operation op (ignored while pending).
func deposit(t fataler, status domain.DepositStatus, op string) domain.Deposit {
	t.Helper()
	d, err := domain.NewDeposit("dep_1", kassa24, "pay_1", account(t, domain.AccountActive, 0), depositAmount, t0)
	if err != nil {
		t.Fatalf("NewDeposit: %v", err)
	}
	if status != domain.DepositPending {
		d.Status = status
		d.OperationID = op
		d.SettledAt = t0
		d.Version = 2
	}
	return d
}

func TestNewDeposit(t *testing.T) {
	t.Parallel()
	acc := account(t, domain.AccountActive, 0)
	d, err := domain.NewDeposit("dep_1", kassa24, "pay_1", acc, depositAmount, t0)
	if err != nil {
		t.Fatal(err)
	}
	want := domain.Deposit{ID: "dep_1", Channel: kassa24, PaymentID: "pay_1", AccountID: acc.ID(), CustomerID: acc.CustomerID(),
		Amount: depositAmount, Status: domain.DepositPending, CreatedAt: t0, Version: 1}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("NewDeposit = %+v\nwant %+v", d, want)
	}

	for _, tc := range []struct {
		name       string
		id, pay    string
		acc        domain.Account
		amount     domain.Amount
		want       error
		wantAmtErr bool
	}{
		{"empty id", "", "pay", acc, depositAmount, domain.ErrInvalidInput, false},
		{"empty payment id", "dep", "", acc, depositAmount, domain.ErrInvalidInput, false},
		{"blocked account", "dep", "pay", account(t, domain.AccountBlocked, 0), depositAmount, domain.ErrAccountBlocked, false},
		{"closed account", "dep", "pay", account(t, domain.AccountClosed, 0), depositAmount, domain.ErrAccountClosed, false},
		{"currency mismatch", "dep", "pay", acc, domain.NewAmount(150000, testXTB), domain.ErrCurrencyMismatch, false},
		{"zero amount", "dep", "pay", acc, domain.NewAmount(0, domain.KZT), domain.ErrInvalidAmount, true},
		{"negative amount", "dep", "pay", acc, domain.NewAmount(-1, domain.KZT), domain.ErrInvalidAmount, true},
	} {
		_, err := domain.NewDeposit(tc.id, kassa24, tc.pay, tc.acc, tc.amount, t0)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: NewDeposit = %v, want %v", tc.name, err, tc.want)
		}
		var ae *domain.AmountError
		if tc.wantAmtErr && !errors.As(err, &ae) {
			t.Errorf("%s: error %T is not an *AmountError", tc.name, err)
		}
	}
}

func TestChannelClearingAccount(t *testing.T) {
	t.Parallel()
	id := kassa24.ClearingAccountID()
	if id != "clearing:monetix:kassa24" {
		t.Fatalf("ClearingAccountID = %q", id)
	}
	if !domain.IsSystemAccount(id) || !domain.IsSystemAccount(domain.RevenueAccountID) {
		t.Fatal("clearing or revenue account not recognised as a system account")
	}
	for _, id := range []string{"acc_1", "", "clearing", "Clearing:x", "xrevenue:merchant"} {
		if domain.IsSystemAccount(id) {
			t.Errorf("IsSystemAccount(%q) = true", id)
		}
	}
}

func TestParseDepositStatusAndReason(t *testing.T) {
	t.Parallel()
	if len(domain.DepositStatuses()) != 4 {
		t.Errorf("DepositStatuses() = %v, want the four statuses", domain.DepositStatuses())
	}
	for _, s := range domain.DepositStatuses() {
		if got, err := domain.ParseDepositStatus(s.String()); err != nil || got != s || got.IsZero() {
			t.Errorf("ParseDepositStatus(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "Pending", "success", "credited"} {
		if got, err := domain.ParseDepositStatus(s); !errors.Is(err, domain.ErrInvalidInput) || !got.IsZero() {
			t.Errorf("ParseDepositStatus(%q) = %v, %v", s, got, err)
		}
	}
	reasons := []domain.ExceptionReason{domain.ReasonUnknownPayment, domain.ReasonAmountMismatch, domain.ReasonCurrencyMismatch,
		domain.ReasonDuplicateSuccess, domain.ReasonDeclineAfterSuccess, domain.ReasonReversal, domain.ReasonAccountClosed,
		domain.ReasonBalanceCeiling, domain.ReasonMethodMismatch, domain.ReasonMalformedCallback, domain.ReasonStatusUnknown,
		domain.ReasonCreditedWithoutPlatformSuccess, domain.ReasonDuplicateInSource, domain.ReasonUnreadableRow}
	if !reflect.DeepEqual(domain.ExceptionReasons(), reasons) {
		t.Errorf("ExceptionReasons() = %v, want %v", domain.ExceptionReasons(), reasons)
	}
	seen := map[string]bool{}
	for _, r := range reasons {
		if got, err := domain.ParseExceptionReason(r.String()); err != nil || got != r {
			t.Errorf("ParseExceptionReason(%q) = %v, %v", r, got, err)
		}
		if r.String() == "" || seen[r.String()] {
			t.Errorf("reason %q empty or duplicated", r)
		}
		seen[r.String()] = true
	}
	for _, s := range []string{"", "reversed", strings.Repeat("r", 100)} {
		if _, err := domain.ParseExceptionReason(s); !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("ParseExceptionReason(%q) = %v", s, err)
		}
	}
	for _, e := range []domain.Effect{domain.EffectCredit, domain.EffectDecline, domain.EffectReplay, domain.EffectRecord, domain.EffectException} {
		if e.String() == "" {
			t.Error("an effect has no name")
		}
	}
	for _, k := range []domain.OutcomeKind{domain.OutcomeSuccess, domain.OutcomeDecline, domain.OutcomeIntermediate, domain.OutcomeReversal} {
		if k.String() == "" {
			t.Error("an outcome kind has no name")
		}
	}
}

// TestDecideTable covers every (deposit status × outcome kind × variant).
func TestDecideTable(t *testing.T) {
	t.Parallel()
	const creditedBy, declinedBy = "op-credit", "op-decline"
	right := depositAmount
	wrongAmount := domain.NewAmount(150001, domain.KZT)
	wrongCurrency := domain.NewAmount(150000, testXTB)
	unlisted := domain.NewAmount(150000, domain.UnlistedCurrency("kzt"))
	noCurrency := domain.NewAmount(150000, domain.Currency{})
	none := domain.ExceptionReason{}

	type row struct {
		status domain.DepositStatus
		kind   domain.OutcomeKind
		op     string
		amount domain.Amount
		effect domain.Effect
		reason domain.ExceptionReason
	}
	pend, succ, decl, expd := domain.DepositPending, domain.DepositSucceeded, domain.DepositDeclined, domain.DepositExpired
	success, decline, inter, rev := domain.OutcomeSuccess, domain.OutcomeDecline, domain.OutcomeIntermediate, domain.OutcomeReversal
	credit, declineE, replay, record, exc := domain.EffectCredit, domain.EffectDecline, domain.EffectReplay, domain.EffectRecord, domain.EffectException

	rows := []row{
		// pending
		{pend, success, "op-1", right, credit, none},
		{pend, success, "op-1", wrongAmount, exc, domain.ReasonAmountMismatch},
		{pend, success, "op-1", wrongCurrency, exc, domain.ReasonCurrencyMismatch},
		{pend, success, "op-1", unlisted, exc, domain.ReasonCurrencyMismatch},
		{pend, success, "op-1", noCurrency, exc, domain.ReasonCurrencyMismatch},
		{pend, decline, "op-1", right, declineE, none},
		{pend, decline, "op-1", wrongAmount, exc, domain.ReasonAmountMismatch},
		{pend, decline, "op-1", wrongCurrency, exc, domain.ReasonCurrencyMismatch},
		{pend, inter, "op-1", right, record, none},
		{pend, inter, "op-1", wrongAmount, record, none},
		{pend, inter, "op-1", wrongCurrency, record, none},
		{pend, rev, "op-1", right, exc, domain.ReasonReversal},
		{pend, rev, "op-1", wrongAmount, exc, domain.ReasonAmountMismatch},
		{pend, rev, "op-1", wrongCurrency, exc, domain.ReasonCurrencyMismatch},
		// succeeded (credited by creditedBy)
		{succ, success, creditedBy, right, replay, none},
		{succ, success, "op-other", right, exc, domain.ReasonDuplicateSuccess},
		{succ, success, creditedBy, wrongAmount, exc, domain.ReasonAmountMismatch},
		{succ, success, creditedBy, wrongCurrency, exc, domain.ReasonCurrencyMismatch},
		{succ, decline, creditedBy, right, exc, domain.ReasonDeclineAfterSuccess},
		{succ, decline, "op-other", right, exc, domain.ReasonDeclineAfterSuccess},
		{succ, decline, creditedBy, wrongAmount, exc, domain.ReasonAmountMismatch},
		{succ, decline, creditedBy, wrongCurrency, exc, domain.ReasonCurrencyMismatch},
		{succ, inter, creditedBy, right, record, none},
		{succ, inter, "op-other", wrongAmount, record, none},
		{succ, inter, "op-other", wrongCurrency, record, none},
		{succ, rev, creditedBy, right, exc, domain.ReasonReversal},
		{succ, rev, creditedBy, wrongAmount, exc, domain.ReasonAmountMismatch},
		{succ, rev, creditedBy, wrongCurrency, exc, domain.ReasonCurrencyMismatch},
		// declined (by declinedBy): a late success credits, whoever reports it
		{decl, success, "op-late", right, credit, none},
		{decl, success, declinedBy, right, credit, none},
		{decl, success, "op-late", wrongAmount, exc, domain.ReasonAmountMismatch},
		{decl, success, "op-late", wrongCurrency, exc, domain.ReasonCurrencyMismatch},
		{decl, decline, declinedBy, right, replay, none},
		{decl, decline, "op-other", right, replay, none},
		{decl, decline, declinedBy, wrongAmount, exc, domain.ReasonAmountMismatch},
		{decl, decline, declinedBy, wrongCurrency, exc, domain.ReasonCurrencyMismatch},
		{decl, inter, declinedBy, right, record, none},
		{decl, inter, declinedBy, wrongAmount, record, none},
		{decl, inter, declinedBy, wrongCurrency, record, none},
		{decl, rev, declinedBy, right, exc, domain.ReasonReversal},
		{decl, rev, declinedBy, wrongAmount, exc, domain.ReasonAmountMismatch},
		{decl, rev, declinedBy, wrongCurrency, exc, domain.ReasonCurrencyMismatch},
		// expired (no operation settled it): a late success credits (the
		// cash was collected), a decline records the platform's word
		{expd, success, "op-late", right, credit, none},
		{expd, success, "op-late", wrongAmount, exc, domain.ReasonAmountMismatch},
		{expd, success, "op-late", wrongCurrency, exc, domain.ReasonCurrencyMismatch},
		{expd, decline, "op-1", right, declineE, none},
		{expd, decline, "op-1", wrongAmount, exc, domain.ReasonAmountMismatch},
		{expd, inter, "op-1", right, record, none},
		{expd, rev, "op-1", right, exc, domain.ReasonReversal},
	}
	for _, r := range rows {
		name := fmt.Sprintf("%s/%s/%s/%s-%s", r.status, r.kind, r.op, r.amount, r.amount.Currency())
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			op := creditedBy
			switch r.status {
			case decl:
				op = declinedBy
			case expd:
				op = ""
			}
			d := deposit(t, r.status, op)
			before := d
			dec := d.Decide(domain.Outcome{Kind: r.kind, Status: "st", OperationID: r.op, Amount: r.amount, Method: kassa24.Method})
			if dec.Effect != r.effect || dec.Reason != r.reason {
				t.Fatalf("Decide = %s/%q (%s), want %s/%q", dec.Effect, dec.Reason, dec.Detail, r.effect, r.reason)
			}
			if dec.Detail == "" {
				t.Fatal("decision without detail")
			}
			if !reflect.DeepEqual(d, before) {
				t.Fatal("Decide changed the deposit")
			}
		})
	}
}

func TestDecideUnclassifiedKindMovesNoMoney(t *testing.T) {
	t.Parallel()
	for _, st := range domain.DepositStatuses() {
		dec := deposit(t, st, "op").Decide(domain.Outcome{Status: "weird", OperationID: "op", Amount: depositAmount, Method: kassa24.Method})
		if dec.Effect != domain.EffectRecord {
			t.Errorf("%s: zero OutcomeKind gives %s, want %s", st, dec.Effect, domain.EffectRecord)
		}
	}
}

func TestDecideUnknown(t *testing.T) {
	t.Parallel()
	dec := domain.DecideUnknown(domain.Outcome{Kind: domain.OutcomeSuccess, Status: "success", OperationID: "op", Amount: depositAmount})
	if dec.Effect != domain.EffectException || dec.Reason != domain.ReasonUnknownPayment {
		t.Fatalf("DecideUnknown = %+v", dec)
	}
	if !strings.Contains(dec.Detail, "1500.00") || !strings.Contains(dec.Detail, "success") {
		t.Fatalf("detail %q lacks the evidence", dec.Detail)
	}
}

func TestApply(t *testing.T) {
	t.Parallel()
	o := func(op string) domain.Outcome {
		return domain.Outcome{Kind: domain.OutcomeSuccess, Status: "success", OperationID: op, Amount: depositAmount, Method: kassa24.Method}
	}
	creditDec := domain.Decision{Effect: domain.EffectCredit}
	declineDec := domain.Decision{Effect: domain.EffectDecline}

	for _, tc := range []struct {
		name   string
		status domain.DepositStatus
		dec    domain.Decision
		want   domain.DepositStatus
	}{
		{"credit pending", domain.DepositPending, creditDec, domain.DepositSucceeded},
		{"credit declined (late success)", domain.DepositDeclined, creditDec, domain.DepositSucceeded},
		{"decline pending", domain.DepositPending, declineDec, domain.DepositDeclined},
		{"credit expired (late success)", domain.DepositExpired, creditDec, domain.DepositSucceeded},
		{"decline expired", domain.DepositExpired, declineDec, domain.DepositDeclined},
	} {
		d := deposit(t, tc.status, "op-old")
		next, err := d.Apply(tc.dec, o("op-new"), t1)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if next.Status != tc.want || next.OperationID != "op-new" || !next.SettledAt.Equal(t1) || next.Version != d.Version+1 {
			t.Fatalf("%s: got %s op=%s settled=%v v%d", tc.name, next.Status, next.OperationID, next.SettledAt, next.Version)
		}
		if d.Status != tc.status {
			t.Fatalf("%s: Apply mutated its receiver", tc.name)
		}
	}

	for _, tc := range []struct {
		name   string
		status domain.DepositStatus
		dec    domain.Decision
	}{
		{"credit succeeded", domain.DepositSucceeded, creditDec},
		{"decline succeeded", domain.DepositSucceeded, declineDec},
		{"decline declined", domain.DepositDeclined, declineDec},
	} {
		next, err := deposit(t, tc.status, "op-old").Apply(tc.dec, o("op-new"), t1)
		if !errors.Is(err, domain.ErrInvalidTransition) {
			t.Errorf("%s: Apply = %+v, %v; want ErrInvalidTransition", tc.name, next, err)
		}
	}

	for _, st := range domain.DepositStatuses() {
		for _, eff := range []domain.Effect{domain.EffectReplay, domain.EffectRecord, domain.EffectException} {
			d := deposit(t, st, "op-old")
			next, err := d.Apply(domain.Decision{Effect: eff}, o("op-new"), t1)
			if err != nil || !reflect.DeepEqual(next, d) {
				t.Errorf("%s + %s: Apply changed the deposit (%+v, %v)", st, eff, next, err)
			}
		}
	}
}

func TestApplyRefusesStaleDecision(t *testing.T) {
	t.Parallel()
	d := deposit(t, domain.DepositPending, "")
	o := domain.Outcome{Kind: domain.OutcomeSuccess, OperationID: "op-1", Amount: depositAmount, Method: kassa24.Method}
	dec := d.Decide(o)
	first, err := d.Apply(dec, o, t1)
	if err != nil || first.Status != domain.DepositSucceeded {
		t.Fatalf("first apply: %+v, %v", first, err)
	}
	// A second worker decided on the same pending snapshot and applies
	// its decision to the already-credited deposit: refused.
	if _, err := first.Apply(dec, o, t1); !errors.Is(err, domain.ErrInvalidTransition) {
		t.Fatalf("stale credit applied: %v", err)
	}
	// Deciding afresh gives a replay.
	if got := first.Decide(o); got.Effect != domain.EffectReplay {
		t.Fatalf("fresh decision after credit = %s, want replay", got.Effect)
	}

	// Same for a decline decided on pending and applied after a credit.
	dl := domain.Outcome{Kind: domain.OutcomeDecline, OperationID: "op-2", Amount: depositAmount, Method: kassa24.Method}
	if _, err := first.Apply(d.Decide(dl), dl, t1); !errors.Is(err, domain.ErrInvalidTransition) {
		t.Fatalf("stale decline applied to a credited deposit: %v", err)
	}
}

// TestPropertyDepositCreditsAtMostOnce feeds random callback sequences to a
// pending deposit through Decide and Apply and checks the money invariants.
func TestPropertyDepositCreditsAtMostOnce(t *testing.T) {
	t.Parallel()
	kinds := []domain.OutcomeKind{domain.OutcomeSuccess, domain.OutcomeDecline, domain.OutcomeIntermediate, domain.OutcomeReversal}
	ops := []string{"op-1", "op-2", "op-3"}
	const (
		rightVariant = iota
		wrongAmountVariant
		wrongCurrencyVariant
		wrongMethodVariant
	)
	rapid.Check(t, func(rt *rapid.T) {
		minor := rapid.Int64Range(1, 1<<50).Draw(rt, "minor")
		amount := domain.NewAmount(minor, domain.KZT)
		d, err := domain.NewDeposit("dep", kassa24, "pay", account(rt, domain.AccountActive, 0), amount, t0)
		if err != nil {
			rt.Fatal(err)
		}
		n := rapid.IntRange(0, 50).Draw(rt, "steps")
		credits := 0
		creditOp := ""
		rightSuccessSeen := false
		// The rule's own state: what the deposit's status must be.
		want := domain.DepositPending
		for i := range n {
			if rapid.IntRange(0, 9).Draw(rt, "expire?") == 0 {
				// The expiry: only a pending deposit expires, and it
				// moves no money.
				next, err := d.Expire(t0.Add(time.Duration(i+1) * time.Minute))
				if (err == nil) != (want == domain.DepositPending) {
					rt.Fatalf("step %d: Expire of a %s deposit: %v", i, d.Status, err)
				}
				if err == nil {
					d, want = next, domain.DepositExpired
				}
				continue
			}
			kind := rapid.SampledFrom(kinds).Draw(rt, "kind")
			op := rapid.SampledFrom(ops).Draw(rt, "op")
			variant := rapid.IntRange(rightVariant, wrongMethodVariant).Draw(rt, "variant")
			oa := amount
			switch variant {
			case wrongAmountVariant:
				oa = domain.NewAmount(minor+rapid.SampledFrom([]int64{-1, 1, minor}).Draw(rt, "delta"), domain.KZT)
				if oa.Minor() == minor {
					rt.Fatal("generator produced the right amount for the wrong-amount variant")
				}
			case wrongCurrencyVariant:
				oa = domain.NewAmount(minor, testXTB)
			}
			method := kassa24.Method
			if variant == wrongMethodVariant {
				method = rapid.SampledFrom([]string{"", "qiwi", "KASSA24", "kassa24 "}).Draw(rt, "method")
			}
			o := domain.Outcome{Kind: kind, Status: kind.String(), OperationID: op, Amount: oa, Method: method}
			credited := credits > 0

			prev := d
			dec := d.Decide(o)
			next, err := d.Apply(dec, o, t0.Add(time.Duration(i+1)*time.Minute))
			if err != nil {
				rt.Fatalf("step %d: Apply of a fresh decision %s failed: %v", i, dec.Effect, err)
			}
			d = next

			if (dec.Effect == domain.EffectException) != (dec.Reason != domain.ExceptionReason{}) {
				rt.Fatalf("step %d: effect %s with reason %q", i, dec.Effect, dec.Reason)
			}
			switch dec.Effect {
			case domain.EffectCredit, domain.EffectDecline:
				if d.Version != prev.Version+1 || d.OperationID != op {
					rt.Fatalf("step %d: %s left version %d op %q", i, dec.Effect, d.Version, d.OperationID)
				}
			default:
				if !reflect.DeepEqual(d, prev) {
					rt.Fatalf("step %d: effect %s changed the deposit", i, dec.Effect)
				}
			}
			if dec.Effect == domain.EffectCredit {
				credits++
				creditOp = op
				if credits > 1 {
					rt.Fatalf("step %d: second credit (kind %s op %s)", i, kind, op)
				}
			}
			if credited {
				if dec.Effect == domain.EffectDecline {
					rt.Fatalf("step %d: a decline followed the credit", i)
				}
			}
			if credits > 0 {
				if d.Status != domain.DepositSucceeded || d.OperationID != creditOp {
					rt.Fatalf("step %d: after the credit status %s op %q, want succeeded by %s", i, d.Status, d.OperationID, creditOp)
				}
				replay := d.Decide(domain.Outcome{Kind: domain.OutcomeSuccess, OperationID: creditOp, Amount: amount, Method: kassa24.Method})
				if replay.Effect != domain.EffectReplay {
					rt.Fatalf("step %d: success from the crediting operation gives %s, want replay", i, replay.Effect)
				}
			}
			if variant == rightVariant && kind == domain.OutcomeSuccess {
				rightSuccessSeen = true
				want = domain.DepositSucceeded
			}
			if variant == rightVariant && kind == domain.OutcomeDecline && want != domain.DepositSucceeded {
				want = domain.DepositDeclined
			}
			if d.Status != want {
				rt.Fatalf("step %d: status %s, want %s", i, d.Status, want)
			}
		}
		if (credits == 1) != rightSuccessSeen {
			rt.Fatalf("credits %d, right success seen %v", credits, rightSuccessSeen)
		}
	})
}

// A final outcome names the deposit's method exactly, or it is an exception.
func TestDecideMethodMismatch(t *testing.T) {
	t.Parallel()
	for _, st := range []domain.DepositStatus{domain.DepositPending, domain.DepositDeclined, domain.DepositSucceeded} {
		for _, method := range []string{"", "qiwi", "KASSA24", " kassa24"} {
			for _, kind := range []domain.OutcomeKind{domain.OutcomeSuccess, domain.OutcomeDecline, domain.OutcomeReversal} {
				dec := deposit(t, st, "op").Decide(domain.Outcome{Kind: kind, Status: kind.String(), OperationID: "op-x",
					Amount: depositAmount, Method: method})
				if dec.Effect != domain.EffectException || dec.Reason != domain.ReasonMethodMismatch {
					t.Errorf("%s deposit, %s with method %q: %s %s", st, kind, method, dec.Effect, dec.Reason)
				}
			}
			// An intermediate status records, whatever the method.
			if dec := deposit(t, st, "op").Decide(domain.Outcome{Kind: domain.OutcomeIntermediate, Amount: depositAmount, Method: method}); dec.Effect != domain.EffectRecord {
				t.Errorf("intermediate with method %q: %s", method, dec.Effect)
			}
		}
	}
}
