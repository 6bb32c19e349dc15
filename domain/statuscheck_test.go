package domain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tiyn/tiyn/domain"
)

func TestNextStatusCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		checks int
		want   time.Duration
	}{
		{0, 15 * time.Minute}, {1, 15 * time.Minute}, {2, time.Hour}, {3, 4 * time.Hour}, {4, 12 * time.Hour},
		{5, 12 * time.Hour}, {1000, 12 * time.Hour},
	} {
		if got := domain.NextStatusCheck(nil, tc.checks); got != tc.want {
			t.Errorf("NextStatusCheck(default, %d) = %v, want %v", tc.checks, got, tc.want)
		}
	}
	custom := []time.Duration{time.Second, 2 * time.Second}
	if got := domain.NextStatusCheck(custom, 1); got != time.Second {
		t.Errorf("custom first = %v", got)
	}
	if got := domain.NextStatusCheck(custom, 9); got != 2*time.Second {
		t.Errorf("custom last repeats: %v", got)
	}
}

func TestExpire(t *testing.T) {
	t.Parallel()
	d := deposit(t, domain.DepositPending, "")
	next, err := d.Expire(t1)
	if err != nil {
		t.Fatal(err)
	}
	if next.Status != domain.DepositExpired || next.OperationID != "" || !next.SettledAt.Equal(t1) || next.Version != d.Version+1 {
		t.Fatalf("Expire = %+v", next)
	}
	if d.Status != domain.DepositPending {
		t.Fatal("Expire mutated its receiver")
	}
	for _, st := range []domain.DepositStatus{domain.DepositSucceeded, domain.DepositDeclined, domain.DepositExpired} {
		if _, err := deposit(t, st, "op").Expire(t1); !errors.Is(err, domain.ErrInvalidTransition) {
			t.Errorf("Expire of %s: %v, want ErrInvalidTransition", st, err)
		}
	}
	// A late success credits an expired deposit: the cash was collected.
	o := domain.Outcome{Kind: domain.OutcomeSuccess, Status: "success", OperationID: "op-late", Amount: depositAmount, Method: kassa24.Method}
	dec := next.Decide(o)
	if dec.Effect != domain.EffectCredit {
		t.Fatalf("late success on expired: %+v", dec)
	}
	credited, err := next.Apply(dec, o, t1)
	if err != nil || credited.Status != domain.DepositSucceeded || credited.OperationID != "op-late" {
		t.Fatalf("Apply late success: %+v, %v", credited, err)
	}
}

func TestDecideExpiry(t *testing.T) {
	t.Parallel()
	const expiry = 864 * time.Hour
	pending := deposit(t, domain.DepositPending, "")
	at := func(d time.Duration) time.Time { return pending.CreatedAt.Add(d) }
	for _, tc := range []struct {
		name     string
		d        domain.Deposit
		now      time.Time
		expiry   time.Duration
		answered bool
		want     domain.ExpiryVerdict
	}{
		{"young, answered", pending, at(expiry - time.Microsecond), expiry, true, domain.ExpiryNotDue},
		{"young, never answered", pending, at(time.Hour), expiry, false, domain.ExpiryNotDue},
		{"at the threshold, answered", pending, at(expiry), expiry, true, domain.ExpiryExpire},
		{"past it, answered", pending, at(2 * expiry), expiry, true, domain.ExpiryExpire},
		{"at the threshold, never answered", pending, at(expiry), expiry, false, domain.ExpiryEscalate},
		{"expiry off", pending, at(100 * expiry), 0, true, domain.ExpiryNotDue},
		{"succeeded", deposit(t, domain.DepositSucceeded, "op"), at(2 * expiry), expiry, true, domain.ExpiryNotDue},
		{"declined", deposit(t, domain.DepositDeclined, "op"), at(2 * expiry), expiry, false, domain.ExpiryNotDue},
		{"expired", deposit(t, domain.DepositExpired, ""), at(2 * expiry), expiry, true, domain.ExpiryNotDue},
	} {
		if got := tc.d.DecideExpiry(tc.now, tc.expiry, tc.answered); got != tc.want {
			t.Errorf("%s: DecideExpiry = %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestStatusUnknownExceptionJustifiesNoCredit(t *testing.T) {
	t.Parallel()
	d := deposit(t, domain.DepositPending, "")
	e := domain.StatusUnknownException("exc_1", d, 7, t1)
	if e.Reason != domain.ReasonStatusUnknown || e.DepositID != d.ID || e.AccountID != d.AccountID || e.PaymentID != d.PaymentID {
		t.Fatalf("exception = %+v", e)
	}
	if e.DedupeKey != domain.StatusUnknownException("exc_2", d, 9, t1).DedupeKey {
		t.Fatal("a second escalation of one deposit has another dedupe key")
	}
	if !strings.Contains(e.Detail, "7 checks") {
		t.Fatalf("detail %q", e.Detail)
	}
	if b := e.CreditBound(); !b.IsZero() {
		t.Fatalf("CreditBound = %s, want zero: nothing shows the cash was collected", b)
	}
	if err := e.CheckCredit(d.Amount); !errors.Is(err, domain.ErrExceedsEvidence) {
		t.Fatalf("CheckCredit(%s) = %v, want ErrExceedsEvidence", d.Amount, err)
	}
}
