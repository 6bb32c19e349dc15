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
