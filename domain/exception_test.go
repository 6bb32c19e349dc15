package domain_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tiyn/tiyn/domain"
)

func openException() domain.Exception {
	return domain.Exception{ID: "exc_1", Reason: domain.ReasonAmountMismatch, Channel: kassa24, PaymentID: "pay_1",
		OperationID: "op-1", DepositID: "dep_1", AccountID: "acc_1", Amount: kzt(150001), State: domain.ExceptionOpen, CreatedAt: t0}
}

func TestResolveException(t *testing.T) {
	t.Parallel()
	credit := domain.Resolution{Credit: true, AccountID: "acc_1", Amount: kzt(150001), TransferID: "trf_1", Note: "customer paid 1500.01", Actor: "ops", ResolvedAt: t1}
	dismiss := domain.Resolution{Note: "duplicate of exc_0", Actor: "ops", ResolvedAt: t1}
	with := func(r domain.Resolution, f func(*domain.Resolution)) domain.Resolution { f(&r); return r }

	for _, tc := range []struct {
		name  string
		state domain.ExceptionStatus
		r     domain.Resolution
		want  domain.ExceptionStatus // zero: refused with wantErr
		err   error
	}{
		{"credit", domain.ExceptionOpen, credit, domain.ExceptionResolved, nil},
		{"dismiss", domain.ExceptionOpen, dismiss, domain.ExceptionDismissed, nil},
		{"dismiss ignores amount", domain.ExceptionOpen, with(dismiss, func(r *domain.Resolution) { r.Amount = kzt(-5) }), domain.ExceptionDismissed, nil},
		{"note at limit", domain.ExceptionOpen, with(dismiss, func(r *domain.Resolution) { r.Note = strings.Repeat("n", domain.MaxNoteLen) }), domain.ExceptionDismissed, nil},
		{"unicode note", domain.ExceptionOpen, with(dismiss, func(r *domain.Resolution) { r.Note = "клиент оплатил наличными" }), domain.ExceptionDismissed, nil},
		{"no note (credit)", domain.ExceptionOpen, with(credit, func(r *domain.Resolution) { r.Note = "" }), domain.ExceptionStatus{}, domain.ErrInvalidInput},
		{"no note (dismiss)", domain.ExceptionOpen, with(dismiss, func(r *domain.Resolution) { r.Note = "" }), domain.ExceptionStatus{}, domain.ErrInvalidInput},
		{"note too long", domain.ExceptionOpen, with(dismiss, func(r *domain.Resolution) { r.Note = strings.Repeat("n", domain.MaxNoteLen+1) }), domain.ExceptionStatus{}, domain.ErrInvalidInput},
		{"note control char", domain.ExceptionOpen, with(dismiss, func(r *domain.Resolution) { r.Note = "ok\x00" }), domain.ExceptionStatus{}, domain.ErrInvalidInput},
		{"note invalid UTF-8", domain.ExceptionOpen, with(dismiss, func(r *domain.Resolution) { r.Note = "\xff" }), domain.ExceptionStatus{}, domain.ErrInvalidInput},
		{"credit without account", domain.ExceptionOpen, with(credit, func(r *domain.Resolution) { r.AccountID = "" }), domain.ExceptionStatus{}, domain.ErrInvalidInput},
		{"credit zero", domain.ExceptionOpen, with(credit, func(r *domain.Resolution) { r.Amount = kzt(0) }), domain.ExceptionStatus{}, domain.ErrInvalidInput},
		{"credit negative", domain.ExceptionOpen, with(credit, func(r *domain.Resolution) { r.Amount = kzt(-1) }), domain.ExceptionStatus{}, domain.ErrInvalidInput},
		{"credit no amount", domain.ExceptionOpen, with(credit, func(r *domain.Resolution) { r.Amount = domain.Amount{} }), domain.ExceptionStatus{}, domain.ErrInvalidInput},
		{"already resolved", domain.ExceptionResolved, credit, domain.ExceptionStatus{}, domain.ErrInvalidTransition},
		{"already dismissed", domain.ExceptionDismissed, dismiss, domain.ExceptionStatus{}, domain.ErrInvalidTransition},
		{"unset state", domain.ExceptionStatus{}, dismiss, domain.ExceptionStatus{}, domain.ErrInvalidTransition},
		{"non-open beats empty note", domain.ExceptionResolved, with(dismiss, func(r *domain.Resolution) { r.Note = "" }), domain.ExceptionStatus{}, domain.ErrInvalidTransition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := openException()
			e.State = tc.state
			got, err := e.Resolve(tc.r)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Resolve = %v, want %v", err, tc.err)
				}
				if got.Resolution != nil || got.State != (domain.ExceptionStatus{}) {
					t.Fatalf("refused Resolve returned %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if got.State != tc.want || got.Resolution == nil || *got.Resolution != tc.r {
				t.Fatalf("Resolve = state %s resolution %+v, want %s with %+v", got.State, got.Resolution, tc.want, tc.r)
			}
			if e.State != tc.state || e.Resolution != nil {
				t.Fatal("Resolve mutated its receiver")
			}
			if got.ID != e.ID || got.Reason != e.Reason || !got.Amount.Equal(e.Amount) {
				t.Fatal("Resolve changed the evidence")
			}
			// A resolved exception cannot be resolved again.
			if _, err := got.Resolve(dismiss); !errors.Is(err, domain.ErrInvalidTransition) {
				t.Fatalf("second Resolve = %v, want ErrInvalidTransition", err)
			}
		})
	}
}

func TestParseExceptionStatus(t *testing.T) {
	t.Parallel()
	for _, s := range []domain.ExceptionStatus{domain.ExceptionOpen, domain.ExceptionResolved, domain.ExceptionDismissed} {
		if got, err := domain.ParseExceptionStatus(s.String()); err != nil || got != s {
			t.Errorf("ParseExceptionStatus(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "closed", "OPEN"} {
		if _, err := domain.ParseExceptionStatus(s); !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("ParseExceptionStatus(%q) = %v", s, err)
		}
	}
}

func TestCreditBoundAndCheckCredit(t *testing.T) {
	t.Parallel()
	x := openException() // claims 1500.01 KZT, a success
	x.Outcome = domain.OutcomeSuccess
	for _, tc := range []struct {
		name   string
		mutate func(*domain.Exception)
		credit domain.Amount
		want   error
		text   string
	}{
		{"the evidence", nil, kzt(150001), nil, ""},
		{"less", nil, kzt(1), nil, ""},
		{"one tiyn more", nil, kzt(150002), domain.ErrExceedsEvidence, "credit 1500.02 KZT exceeds the evidence of exception exc_1: the platform reported 1500.01 KZT"},
		{"int64 max", nil, kzt(1<<63 - 1), domain.ErrExceedsEvidence, "92233720368547758.07 KZT"},
		{"zero", nil, kzt(0), domain.ErrInvalidAmount, ""},
		{"negative", nil, kzt(-1), domain.ErrInvalidAmount, ""},
		{"other currency", nil, domain.NewAmount(100, testXTB), domain.ErrCurrencyMismatch, ""},
		{"method maximum", func(e *domain.Exception) { e.MaxCredit = 100_000 }, kzt(100_001), domain.ErrExceedsEvidence,
			"exceeds the method's per-payment maximum of 1000.00 KZT"},
		{"at the method maximum", func(e *domain.Exception) { e.MaxCredit = 100_000 }, kzt(100_000), nil, ""},
		{"a decline justifies nothing", func(e *domain.Exception) { e.Outcome, e.Status = domain.OutcomeDecline, "decline" }, kzt(1),
			domain.ErrExceedsEvidence, `does not show a collected payment (payment status "decline")`},
		{"a reversal justifies nothing", func(e *domain.Exception) { e.Outcome = domain.OutcomeReversal }, kzt(1), domain.ErrExceedsEvidence, ""},
		{"an uploaded report's row justifies nothing", func(e *domain.Exception) { e.Unverified = true }, kzt(1), domain.ErrExceedsEvidence,
			"is a row of an uploaded report, not the platform's signed word"},
		{"no recorded outcome justifies nothing", func(e *domain.Exception) { e.Outcome = domain.OutcomeKind{} }, kzt(1), domain.ErrExceedsEvidence, ""},
		{"the ceiling bounds a huge claim", func(e *domain.Exception) { e.Amount = kzt(1 << 62) }, kzt(domain.MaxBalanceMinor + 1),
			domain.ErrExceedsEvidence, "balance ceiling"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := x
			if tc.mutate != nil {
				tc.mutate(&e)
			}
			err := e.CheckCredit(tc.credit)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("CheckCredit(%s) = %v", tc.credit, err)
				}
				if b := e.CreditBound(); tc.credit.Minor() > b.Minor() {
					t.Fatalf("accepted %s above the bound %s", tc.credit, b)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("CheckCredit(%s) = %v, want %v with %q", tc.credit, err, tc.want, tc.text)
			}
		})
	}
}

func TestFourEyesStateMachine(t *testing.T) {
	t.Parallel()
	p := domain.Proposal{AccountID: "acc_1", Amount: kzt(150001), Note: "receipt seen", Actor: "anna", At: t0}
	proposed, err := openException().Propose(p)
	if err != nil || proposed.State != domain.ExceptionProposed || proposed.Proposal == nil || *proposed.Proposal != p {
		t.Fatalf("Propose = %+v, %v", proposed, err)
	}
	credit := domain.Resolution{Credit: true, AccountID: "acc_1", Amount: kzt(150001), TransferID: "trf_1", Note: "receipt seen",
		Actor: "boris", ResolvedAt: t1}
	// Refusals.
	for _, tc := range []struct {
		name string
		e    domain.Exception
		do   func(domain.Exception) (domain.Exception, error)
		want error
	}{
		{"propose twice", proposed, func(e domain.Exception) (domain.Exception, error) { return e.Propose(p) }, domain.ErrInvalidTransition},
		{"resolve while proposed", proposed, func(e domain.Exception) (domain.Exception, error) { return e.Resolve(credit) }, domain.ErrInvalidTransition},
		{"dismiss while proposed", proposed, func(e domain.Exception) (domain.Exception, error) {
			return e.Resolve(domain.Resolution{Note: "n", Actor: "boris"})
		}, domain.ErrInvalidTransition},
		{"self approval", proposed, func(e domain.Exception) (domain.Exception, error) {
			r := credit
			r.Actor = "anna"
			return e.Approve(r)
		}, domain.ErrSelfApproval},
		{"approval of another credit", proposed, func(e domain.Exception) (domain.Exception, error) {
			r := credit
			r.Amount = kzt(150002)
			return e.Approve(r)
		}, domain.ErrInvalidInput},
		{"approve an open exception", openException(), func(e domain.Exception) (domain.Exception, error) { return e.Approve(credit) }, domain.ErrInvalidTransition},
		{"reject an open exception", openException(), func(e domain.Exception) (domain.Exception, error) { return e.Reject() }, domain.ErrInvalidTransition},
		{"proposal without a note", openException(), func(e domain.Exception) (domain.Exception, error) {
			q := p
			q.Note = ""
			return e.Propose(q)
		}, domain.ErrInvalidInput},
		{"proposal without an amount", openException(), func(e domain.Exception) (domain.Exception, error) {
			q := p
			q.Amount = kzt(0)
			return e.Propose(q)
		}, domain.ErrInvalidInput},
		{"credit without its transfer", openException(), func(e domain.Exception) (domain.Exception, error) {
			r := credit
			r.TransferID = ""
			return e.Resolve(r)
		}, domain.ErrInvalidInput},
	} {
		if _, err := tc.do(tc.e); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	approved, err := proposed.Approve(credit)
	if err != nil || approved.State != domain.ExceptionResolved || approved.Resolution.Actor != "boris" || approved.Proposal.Actor != "anna" {
		t.Fatalf("Approve = %+v, %v", approved, err)
	}
	rejected, err := proposed.Reject()
	if err != nil || rejected.State != domain.ExceptionOpen || rejected.Proposal != nil {
		t.Fatalf("Reject = %+v, %v", rejected, err)
	}
	if _, err := rejected.Propose(p); err != nil {
		t.Fatalf("a rejected exception cannot be proposed again: %v", err)
	}
}

func TestCanCreditCeiling(t *testing.T) {
	t.Parallel()
	at := func(balance int64) domain.Account {
		a, err := domain.RehydrateAccount("acc_1", "c", "", domain.KZT, domain.AccountBlocked, balance, 1, t0, t0)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if err := at(domain.MaxBalanceMinor - 10).CanCredit(kzt(10)); err != nil {
		t.Fatalf("up to the ceiling (a blocked account still receives): %v", err)
	}
	for _, tc := range []struct {
		balance int64
		credit  domain.Amount
		want    error
	}{
		{domain.MaxBalanceMinor - 10, kzt(11), domain.ErrBalanceCeiling},
		{domain.MaxBalanceMinor, kzt(1), domain.ErrBalanceCeiling},
		{0, kzt(1<<63 - 1), domain.ErrBalanceCeiling},
		{domain.MaxBalanceMinor + 5, kzt(1), domain.ErrBalanceCeiling}, // a stored balance beyond it (corrupt) takes nothing
		{0, kzt(0), domain.ErrInvalidAmount},
		{0, domain.NewAmount(1, testXTB), domain.ErrCurrencyMismatch},
	} {
		if err := at(tc.balance).CanCredit(tc.credit); !errors.Is(err, tc.want) {
			t.Errorf("balance %d credit %s: %v, want %v", tc.balance, tc.credit, err, tc.want)
		}
	}
}
