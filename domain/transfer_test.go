package domain_test

import (
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/tiyn/tiyn/domain"
)

func kzt(minor int64) domain.Amount { return domain.NewAmount(minor, domain.KZT) }

// postings builds postings on accounts a0, a1, … with the given amounts.
func postings(amounts ...domain.Amount) []domain.Posting {
	ps := make([]domain.Posting, len(amounts))
	for i, a := range amounts {
		ps[i] = domain.Posting{AccountID: "a" + string(rune('a'+i)), Amount: a}
	}
	return ps
}

func TestNewTransfer(t *testing.T) {
	t.Parallel()
	tr, err := domain.NewTransfer("trf_1", domain.TransferDepositCredit, "clearing:monetix:kassa24", "acc_1", kzt(150000), t0)
	if err != nil {
		t.Fatal(err)
	}
	if tr.ID != "trf_1" || tr.Kind != domain.TransferDepositCredit || !tr.CreatedAt.Equal(t0) || len(tr.Postings) != 2 {
		t.Fatalf("NewTransfer = %+v", tr)
	}
	if p := tr.Postings[0]; p.AccountID != "clearing:monetix:kassa24" || !p.Amount.Equal(kzt(-150000)) || p.BalanceAfter != nil {
		t.Fatalf("source posting %+v", p)
	}
	if p := tr.Postings[1]; p.AccountID != "acc_1" || !p.Amount.Equal(kzt(150000)) {
		t.Fatalf("target posting %+v", p)
	}
	if c := tr.Credited(); c.AccountID != "acc_1" || !c.Amount.Equal(kzt(150000)) {
		t.Fatalf("Credited() = %+v", c)
	}
	if err := tr.Validate(); err != nil {
		t.Fatalf("Validate() of a new transfer: %v", err)
	}

	for _, tc := range []struct {
		name               string
		id, source, target string
		amount             domain.Amount
		want               error
	}{
		{"empty id", "", "a", "b", kzt(1), domain.ErrInvalidInput},
		{"empty source", "t", "", "b", kzt(1), domain.ErrInvalidInput},
		{"empty target", "t", "a", "", kzt(1), domain.ErrInvalidInput},
		{"same account", "t", "a", "a", kzt(1), domain.ErrInvalidInput},
		{"zero", "t", "a", "b", kzt(0), domain.ErrInvalidAmount},
		{"negative", "t", "a", "b", kzt(-1), domain.ErrInvalidAmount},
		{"min int64", "t", "a", "b", kzt(math.MinInt64), domain.ErrInvalidAmount},
		{"no currency", "t", "a", "b", domain.NewAmount(1, domain.Currency{}), domain.ErrUnknownCurrency},
	} {
		_, err := domain.NewTransfer(tc.id, domain.TransferDebit, tc.source, tc.target, tc.amount, t0)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: NewTransfer = %v, want %v", tc.name, err, tc.want)
		}
	}
	if tr, err := domain.NewTransfer("t", domain.TransferDebit, "a", "b", kzt(math.MaxInt64), t0); err != nil || tr.Validate() != nil {
		t.Errorf("NewTransfer(MaxInt64) = %v", err)
	}
}

func TestTransferValidate(t *testing.T) {
	t.Parallel()
	balancedMax := make([]domain.Amount, 0, domain.MaxPostingsPerTransfer)
	for range domain.MaxPostingsPerTransfer / 2 {
		balancedMax = append(balancedMax, kzt(1), kzt(-1))
	}
	tooMany := make([]domain.Amount, 0, domain.MaxPostingsPerTransfer+1)
	for range domain.MaxPostingsPerTransfer {
		tooMany = append(tooMany, kzt(1))
	}
	tooMany = append(tooMany, kzt(-domain.MaxPostingsPerTransfer))

	for _, tc := range []struct {
		name     string
		postings []domain.Posting
		desc     string
		want     error // nil: valid
	}{
		{"two legs", postings(kzt(-5), kzt(5)), "", nil},
		{"three legs", postings(kzt(-5), kzt(2), kzt(3)), "", nil},
		{"max postings", postings(balancedMax...), "", nil},
		{"description at limit", postings(kzt(-5), kzt(5)), strings.Repeat("d", domain.MaxDescriptionLen), nil},
		{"extremes", postings(kzt(math.MaxInt64), kzt(-math.MaxInt64)), "", nil},
		{"unbalanced", postings(kzt(-5), kzt(4)), "", domain.ErrUnbalancedTransfer},
		{"same sign", postings(kzt(5), kzt(5)), "", domain.ErrUnbalancedTransfer},
		{"mixed currency", postings(kzt(-5), domain.NewAmount(5, testXTB)), "", domain.ErrCurrencyMismatch},
		{"zero posting", postings(kzt(-5), kzt(0), kzt(5)), "", domain.ErrUnbalancedTransfer},
		{"all zero", postings(kzt(0), kzt(0)), "", domain.ErrUnbalancedTransfer},
		{"one posting", postings(kzt(5)), "", domain.ErrUnbalancedTransfer},
		{"no postings", nil, "", domain.ErrUnbalancedTransfer},
		{"too many postings", postings(tooMany...), "", domain.ErrUnbalancedTransfer},
		{"overflow", postings(kzt(math.MaxInt64), kzt(1), kzt(math.MinInt64)), "", domain.ErrInvalidAmount},
		{"negative overflow", postings(kzt(math.MinInt64), kzt(-1), kzt(math.MaxInt64)), "", domain.ErrInvalidAmount},
		{"description too long", postings(kzt(-5), kzt(5)), strings.Repeat("d", domain.MaxDescriptionLen+1), domain.ErrInvalidInput},
		{"no currency", postings(domain.NewAmount(-5, domain.Currency{}), domain.NewAmount(5, domain.Currency{})), "", domain.ErrUnknownCurrency},
		{"empty account id", []domain.Posting{{AccountID: "a", Amount: kzt(-5)}, {Amount: kzt(5)}}, "", domain.ErrInvalidInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := domain.Transfer{ID: "trf", Kind: domain.TransferDebit, Postings: tc.postings, Description: tc.desc}.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Validate() = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestTransferCreditedWithoutPositivePosting(t *testing.T) {
	t.Parallel()
	if c := (domain.Transfer{Postings: postings(kzt(-1), kzt(-2))}).Credited(); c != (domain.Posting{}) {
		t.Fatalf("Credited() = %+v, want zero Posting", c)
	}
}

func TestParseTransferKind(t *testing.T) {
	t.Parallel()
	for _, k := range []domain.TransferKind{domain.TransferDepositCredit, domain.TransferDebit, domain.TransferExceptionCredit} {
		if got, err := domain.ParseTransferKind(k.String()); err != nil || got != k {
			t.Errorf("ParseTransferKind(%q) = %v, %v", k, got, err)
		}
	}
	for _, s := range []string{"", "credit", "Debit"} {
		if _, err := domain.ParseTransferKind(s); !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("ParseTransferKind(%q) = %v", s, err)
		}
	}
}

func TestPropertyNewTransferBalances(t *testing.T) {
	t.Parallel()
	ids := []string{"", "acc_1", "acc_2", domain.RevenueAccountID, "clearing:monetix:kassa24"}
	rapid.Check(t, func(rt *rapid.T) {
		id := rapid.SampledFrom([]string{"", "trf_1"}).Draw(rt, "id")
		source := rapid.SampledFrom(ids).Draw(rt, "source")
		target := rapid.SampledFrom(ids).Draw(rt, "target")
		cur := rapid.SampledFrom(allTestCurrencies).Draw(rt, "currency")
		minor := edgeInt64().Draw(rt, "minor")
		tr, err := domain.NewTransfer(id, domain.TransferDebit, source, target, domain.NewAmount(minor, cur), t0)
		wantOK := id != "" && source != "" && target != "" && source != target && minor > 0
		if wantOK != (err == nil) {
			rt.Fatalf("NewTransfer(%q, %q -> %q, %d) = %v, want ok=%v", id, source, target, minor, err, wantOK)
		}
		if err != nil {
			return
		}
		if err := tr.Validate(); err != nil {
			rt.Fatalf("a transfer NewTransfer built does not validate: %v", err)
		}
		sum := new(big.Int)
		for _, p := range tr.Postings {
			if p.Amount.Currency() != cur {
				rt.Fatalf("posting in %s, transfer in %s", p.Amount.Currency(), cur)
			}
			sum.Add(sum, big.NewInt(p.Amount.Minor()))
		}
		if sum.Sign() != 0 {
			rt.Fatalf("postings sum to %s", sum)
		}
		if c := tr.Credited(); c.AccountID != target || c.Amount.Minor() != minor {
			rt.Fatalf("Credited() = %+v, want %d on %s", c, minor, target)
		}
	})
}
