package domain_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/tiyn/tiyn/domain"
)

var (
	t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Hour)
)

// fataler is what the helpers need from *testing.T and *rapid.T alike.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// account rehydrates an account in a given status with a given balance, or
// fails the test.
func account(t fataler, status domain.AccountStatus, balance int64) domain.Account {
	t.Helper()
	a, err := domain.RehydrateAccount("acc_1", "cust-1", "alt-1", domain.KZT, status, balance, 3, t0, t0)
	if err != nil {
		t.Fatalf("RehydrateAccount: %v", err)
	}
	return a
}

func TestNewAccount(t *testing.T) {
	t.Parallel()
	a, err := domain.NewAccount("acc_1", "cust-1", "alt-1", domain.KZT, t0)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID() != "acc_1" || a.CustomerID() != "cust-1" || a.AdditionalCustomerID() != "alt-1" || a.Currency() != domain.KZT {
		t.Fatalf("identity fields wrong: %+v", a)
	}
	if a.Status() != domain.AccountActive || !a.Balance().Equal(domain.NewAmount(0, domain.KZT)) || a.Version() != 1 {
		t.Fatalf("new account status %s balance %v version %d; want active, 0 KZT, 1", a.Status(), a.Balance(), a.Version())
	}
	if !a.CreatedAt().Equal(t0) || !a.UpdatedAt().Equal(t0) {
		t.Fatalf("times %v/%v, want %v", a.CreatedAt(), a.UpdatedAt(), t0)
	}
}

func TestNewAccountValidation(t *testing.T) {
	t.Parallel()
	max := strings.Repeat("a", domain.MaxCustomerIDLen)
	over := max + "a"
	twoByteMax := strings.Repeat("é", domain.MaxCustomerIDLen/2) // exactly 128 bytes
	for _, tc := range []struct {
		name                  string
		id, customer, another string
		cur                   domain.Currency
		want                  error // nil: accepted
	}{
		{"plain", "acc", "cust", "", domain.KZT, nil},
		{"customer at limit", "acc", max, "", domain.KZT, nil},
		{"multi-byte customer at byte limit", "acc", twoByteMax, "", domain.KZT, nil},
		{"unicode customer", "acc", "Әлия +7 701 000 00 00", "", domain.KZT, nil},
		{"additional at limit", "acc", "cust", max, domain.KZT, nil},
		{"empty id", "", "cust", "", domain.KZT, domain.ErrInvalidInput},
		{"empty customer", "acc", "", "", domain.KZT, domain.ErrInvalidInput},
		{"customer too long", "acc", over, "", domain.KZT, domain.ErrInvalidInput},
		{"multi-byte customer over byte limit", "acc", twoByteMax + "é", "", domain.KZT, domain.ErrInvalidInput},
		{"customer NUL", "acc", "a\x00b", "", domain.KZT, domain.ErrInvalidInput},
		{"customer newline", "acc", "a\nb", "", domain.KZT, domain.ErrInvalidInput},
		{"customer tab", "acc", "a\tb", "", domain.KZT, domain.ErrInvalidInput},
		{"customer DEL", "acc", "a\x7f", "", domain.KZT, domain.ErrInvalidInput},
		{"customer C1 control", "acc", "a\u0085", "", domain.KZT, domain.ErrInvalidInput},
		{"customer invalid UTF-8", "acc", "a\xffb", "", domain.KZT, domain.ErrInvalidInput},
		{"customer truncated UTF-8", "acc", "\xd0", "", domain.KZT, domain.ErrInvalidInput},
		{"additional too long", "acc", "cust", over, domain.KZT, domain.ErrInvalidInput},
		{"additional control", "acc", "cust", "x\r", domain.KZT, domain.ErrInvalidInput},
		{"additional invalid UTF-8", "acc", "cust", "\xc3\x28", domain.KZT, domain.ErrInvalidInput},
		{"no currency", "acc", "cust", "", domain.Currency{}, domain.ErrUnknownCurrency},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, err := domain.NewAccount(tc.id, tc.customer, tc.another, tc.cur, t0)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("NewAccount error: %v", err)
				}
				if a.CustomerID() != tc.customer || a.AdditionalCustomerID() != tc.another {
					t.Fatalf("ids not kept: %q %q", a.CustomerID(), a.AdditionalCustomerID())
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("NewAccount error = %v, want %v", err, tc.want)
			}
			if a != (domain.Account{}) {
				t.Fatalf("NewAccount returned %+v with its error", a)
			}
		})
	}
}

func TestValidateCustomerID(t *testing.T) {
	t.Parallel()
	if err := domain.ValidateCustomerID("77011234567"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", "\x00", "\xff", strings.Repeat("x", domain.MaxCustomerIDLen+1), "a\u2029b\x1b"} {
		if err := domain.ValidateCustomerID(id); !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("ValidateCustomerID(%q) = %v, want ErrInvalidInput", id, err)
		}
	}
}

func TestParseAccountStatus(t *testing.T) {
	t.Parallel()
	for _, s := range []domain.AccountStatus{domain.AccountActive, domain.AccountBlocked, domain.AccountClosed} {
		got, err := domain.ParseAccountStatus(s.String())
		if err != nil || got != s || got.IsZero() {
			t.Errorf("ParseAccountStatus(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "Active", "ACTIVE", "deleted", " active", strings.Repeat("z", 200)} {
		got, err := domain.ParseAccountStatus(s)
		if !errors.Is(err, domain.ErrInvalidInput) || !got.IsZero() {
			t.Errorf("ParseAccountStatus(%q) = %v, %v; want ErrInvalidInput", s, got, err)
		}
	}
}

func TestCanReceiveDeposit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status domain.AccountStatus
		want   error
	}{
		{domain.AccountActive, nil},
		{domain.AccountBlocked, domain.ErrAccountBlocked},
		{domain.AccountClosed, domain.ErrAccountClosed},
	} {
		err := account(t, tc.status, 0).CanReceiveDeposit()
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: CanReceiveDeposit = %v, want %v", tc.status, err, tc.want)
		}
	}
}

func TestCanDebit(t *testing.T) {
	t.Parallel()
	kzt := func(m int64) domain.Amount { return domain.NewAmount(m, domain.KZT) }
	for _, tc := range []struct {
		name    string
		status  domain.AccountStatus
		balance int64
		amount  domain.Amount
		want    error
	}{
		{"small", domain.AccountActive, 1000, kzt(1), nil},
		{"exact balance", domain.AccountActive, 1000, kzt(1000), nil},
		{"one over", domain.AccountActive, 1000, kzt(1001), domain.ErrInsufficientFunds},
		{"empty account", domain.AccountActive, 0, kzt(1), domain.ErrInsufficientFunds},
		{"max amount", domain.AccountActive, 1000, kzt(math.MaxInt64), domain.ErrInsufficientFunds},
		{"zero", domain.AccountActive, 1000, kzt(0), domain.ErrInvalidAmount},
		{"negative", domain.AccountActive, 1000, kzt(-1), domain.ErrInvalidAmount},
		{"min int64", domain.AccountActive, 1000, kzt(math.MinInt64), domain.ErrInvalidAmount},
		{"other currency", domain.AccountActive, 1000, domain.NewAmount(1, testXTB), domain.ErrCurrencyMismatch},
		{"no currency", domain.AccountActive, 1000, domain.NewAmount(1, domain.Currency{}), domain.ErrCurrencyMismatch},
		{"blocked", domain.AccountBlocked, 1000, kzt(1), domain.ErrAccountBlocked},
		{"closed", domain.AccountClosed, 0, kzt(1), domain.ErrAccountClosed},
	} {
		err := account(t, tc.status, tc.balance).CanDebit(tc.amount)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: CanDebit(%v) = %v, want %v", tc.name, tc.amount, err, tc.want)
		}
	}
}

func TestPropertyCanDebit(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(rt *rapid.T) {
		balance := rapid.Int64Range(0, math.MaxInt64).Draw(rt, "balance")
		amount := rapid.OneOf(edgeInt64(), rapid.Int64Range(balance-2, balance)).Draw(rt, "amount")
		if rapid.Bool().Draw(rt, "nearBalance") && balance < math.MaxInt64 {
			amount = balance + rapid.Int64Range(-1, 1).Draw(rt, "delta")
		}
		acc, err := domain.RehydrateAccount("acc", "cust", "", domain.KZT, domain.AccountActive, balance, 1, t0, t0)
		if err != nil {
			rt.Fatal(err)
		}
		err = acc.CanDebit(domain.NewAmount(amount, domain.KZT))
		if ok := amount > 0 && amount <= balance; ok != (err == nil) {
			rt.Fatalf("balance %d, debit %d: %v", balance, amount, err)
		}
	})
}

func TestChangeStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		from, to domain.AccountStatus
		balance  int64
		want     error
	}{
		{"block", domain.AccountActive, domain.AccountBlocked, 500, nil},
		{"unblock", domain.AccountBlocked, domain.AccountActive, 500, nil},
		{"close empty active", domain.AccountActive, domain.AccountClosed, 0, nil},
		{"close empty blocked", domain.AccountBlocked, domain.AccountClosed, 0, nil},
		{"close with balance", domain.AccountActive, domain.AccountClosed, 1, domain.ErrAccountHasBalance},
		{"close blocked with balance", domain.AccountBlocked, domain.AccountClosed, 500, domain.ErrAccountHasBalance},
		{"reopen closed", domain.AccountClosed, domain.AccountActive, 0, domain.ErrAccountClosed},
		{"block closed", domain.AccountClosed, domain.AccountBlocked, 0, domain.ErrAccountClosed},
		{"close closed", domain.AccountClosed, domain.AccountClosed, 0, domain.ErrAccountClosed},
		{"to unset", domain.AccountActive, domain.AccountStatus{}, 0, domain.ErrInvalidTransition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := account(t, tc.from, tc.balance)
			after, err := before.ChangeStatus(tc.to, t1)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("ChangeStatus = %v, want %v", err, tc.want)
				}
				if before.Status() != tc.from || before.Version() != 3 {
					t.Fatalf("a refused change altered the original: %s v%d", before.Status(), before.Version())
				}
				return
			}
			if err != nil {
				t.Fatalf("ChangeStatus error: %v", err)
			}
			if after.Status() != tc.to || after.Version() != before.Version()+1 {
				t.Fatalf("after: %s v%d, want %s v%d", after.Status(), after.Version(), tc.to, before.Version()+1)
			}
			if !after.UpdatedAt().Equal(t1) || !after.CreatedAt().Equal(t0) {
				t.Fatalf("times: created %v updated %v", after.CreatedAt(), after.UpdatedAt())
			}
			if !after.Balance().Equal(before.Balance()) || after.ID() != before.ID() {
				t.Fatal("ChangeStatus changed the balance or the id")
			}
			if before.Status() != tc.from {
				t.Fatal("ChangeStatus mutated its receiver")
			}
		})
	}
}

func TestClosedIsFinal(t *testing.T) {
	t.Parallel()
	a := account(t, domain.AccountActive, 0)
	closed, err := a.ChangeStatus(domain.AccountClosed, t1)
	if err != nil {
		t.Fatal(err)
	}
	if err := closed.CanReceiveDeposit(); !errors.Is(err, domain.ErrAccountClosed) {
		t.Fatalf("closed account CanReceiveDeposit = %v", err)
	}
	for _, to := range []domain.AccountStatus{domain.AccountActive, domain.AccountBlocked, domain.AccountClosed} {
		if _, err := closed.ChangeStatus(to, t1); !errors.Is(err, domain.ErrAccountClosed) {
			t.Errorf("closed -> %s = %v, want ErrAccountClosed", to, err)
		}
	}
}

func TestRehydrateAccount(t *testing.T) {
	t.Parallel()
	a, err := domain.RehydrateAccount("acc_9", "cust", "alt", testXTB, domain.AccountBlocked, 42, 7, t0, t1)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID() != "acc_9" || a.CustomerID() != "cust" || a.AdditionalCustomerID() != "alt" || a.Currency() != testXTB ||
		a.Status() != domain.AccountBlocked || !a.Balance().Equal(domain.NewAmount(42, testXTB)) || a.Version() != 7 ||
		!a.CreatedAt().Equal(t0) || !a.UpdatedAt().Equal(t1) {
		t.Fatalf("fields not kept: %+v", a)
	}
	for _, tc := range []struct {
		name               string
		id, customer       string
		cur                domain.Currency
		status             domain.AccountStatus
		balance            int64
		wantNegativeDetail bool
	}{
		{"negative balance", "acc", "cust", domain.KZT, domain.AccountActive, -1, true},
		{"min int64 balance", "acc", "cust", domain.KZT, domain.AccountActive, math.MinInt64, true},
		{"empty id", "", "cust", domain.KZT, domain.AccountActive, 0, false},
		{"empty customer", "acc", "", domain.KZT, domain.AccountActive, 0, false},
		{"no currency", "acc", "cust", domain.Currency{}, domain.AccountActive, 0, false},
		{"no status", "acc", "cust", domain.KZT, domain.AccountStatus{}, 0, false},
	} {
		_, err := domain.RehydrateAccount(tc.id, tc.customer, "", tc.cur, tc.status, tc.balance, 1, t0, t0)
		if !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("%s: RehydrateAccount = %v, want ErrInvalidInput", tc.name, err)
			continue
		}
		if tc.wantNegativeDetail && !strings.Contains(err.Error(), "negative") {
			t.Errorf("%s: error %q does not say the balance is negative", tc.name, err)
		}
	}
}
