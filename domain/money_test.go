package domain_test

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strings"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/tiyn/tiyn/domain"
)

// Test-only currencies. The registry is process-global, so the codes are
// ones no production code registers (ISO reserves the X.. range for such
// uses) and each is registered once, at package initialisation, before any
// parallel test runs.
var (
	testXTA = domain.MustRegisterCurrency("XTA", 0) // no minor unit
	testXTB = domain.MustRegisterCurrency("XTB", 3) // like KWD
	testXTC = domain.MustRegisterCurrency("XTC", domain.MaxCurrencyExponent)
)

// allTestCurrencies is every registered currency the properties draw from.
var allTestCurrencies = []domain.Currency{domain.KZT, testXTA, testXTB, testXTC}

func TestParseAmountKZT(t *testing.T) {
	t.Parallel()
	accepted := []struct {
		in   string
		want int64
	}{
		{"1500.00", 150000},
		{"1500", 150000},
		{"0.01", 1},
		{"-5.5", -550},
		{"0", 0},
		{"-0", 0},
		{"0.1", 10},
		{"007.50", 750},
		{"92233720368547758.07", math.MaxInt64},
		{"-92233720368547758.08", math.MinInt64},
	}
	for _, tc := range accepted {
		t.Run("ok/"+tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := domain.ParseAmount(tc.in, domain.KZT)
			if err != nil {
				t.Fatalf("ParseAmount(%q) error: %v", tc.in, err)
			}
			if want := domain.NewAmount(tc.want, domain.KZT); !got.Equal(want) {
				t.Fatalf("ParseAmount(%q) = %d %s, want %d KZT", tc.in, got.Minor(), got.Currency(), tc.want)
			}
		})
	}

	long := strings.Repeat("1", 40)
	refused := []struct {
		name, in, reason string
	}{
		{"too many decimals", "1.001", "more than 2 decimals for KZT"},
		{"empty", "", "not a decimal number"},
		{"lone minus", "-", "not a decimal number"},
		{"no integer part", ".5", "not a decimal number"},
		{"no fraction digits", "5.", "not a decimal number"},
		{"exponent", "1e3", "not a decimal number"},
		{"plus sign", "+1", "not a decimal number"},
		{"leading space", " 1", "not a decimal number"},
		{"trailing space", "1 ", "not a decimal number"},
		{"thousands separator", "1,000.00", "not a decimal number"},
		{"hex", "0x10", "not a decimal number"},
		{"NaN", "NaN", "not a decimal number"},
		{"Inf", "Inf", "not a decimal number"},
		{"arabic-indic digits", "١٢", "not a decimal number"},
		{"fullwidth digit", "１", "not a decimal number"},
		{"two points", "1.2.3", "not a decimal number"},
		{"double minus", "--1", "not a decimal number"},
		{"trailing minus", "1-", "not a decimal number"},
		{"underscore", "1_000", "not a decimal number"},
		{"comma decimal", "1,5", "not a decimal number"},
		{"NUL", "1\x00", "not a decimal number"},
		{"40 chars", long, "too long"},
		{"33 chars", strings.Repeat("1", 33), "too long"},
		{"overflow by one tiyn", "92233720368547758.08", "overflow"},
		{"negative overflow by one tiyn", "-92233720368547758.09", "overflow"},
		{"huge", strings.Repeat("9", 32), "overflow"},
	}
	for _, tc := range refused {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := domain.ParseAmount(tc.in, domain.KZT)
			if err == nil {
				t.Fatalf("ParseAmount(%q) = %s, want error", tc.in, got)
			}
			if !errors.Is(err, domain.ErrInvalidAmount) {
				t.Fatalf("ParseAmount(%q) error %v does not wrap ErrInvalidAmount", tc.in, err)
			}
			var ae *domain.AmountError
			if !errors.As(err, &ae) {
				t.Fatalf("ParseAmount(%q) error %T is not an *AmountError", tc.in, err)
			}
			if !strings.Contains(ae.Reason, tc.reason) {
				t.Fatalf("ParseAmount(%q) reason %q, want it to contain %q", tc.in, ae.Reason, tc.reason)
			}
			if !strings.Contains(err.Error(), ae.Reason) {
				t.Fatalf("error text %q does not carry the reason %q", err.Error(), ae.Reason)
			}
			if len(ae.Input) > domain.MaxAmountTextLen+len("…") {
				t.Fatalf("AmountError.Input is %d bytes, want it truncated to %d", len(ae.Input), domain.MaxAmountTextLen)
			}
			if got != (domain.Amount{}) {
				t.Fatalf("ParseAmount(%q) returned %v with its error, want the zero Amount", tc.in, got)
			}
		})
	}
}

func TestParseAmountTruncatesLongInput(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("7", 1000)
	_, err := domain.ParseAmount(long, domain.KZT)
	var ae *domain.AmountError
	if !errors.As(err, &ae) {
		t.Fatalf("want *AmountError, got %v", err)
	}
	if want := strings.Repeat("7", domain.MaxAmountTextLen) + "…"; ae.Input != want {
		t.Fatalf("Input = %q, want %q", ae.Input, want)
	}
}

func TestParseAmountWithoutCurrency(t *testing.T) {
	t.Parallel()
	_, err := domain.ParseAmount("1.00", domain.Currency{})
	if !errors.Is(err, domain.ErrUnknownCurrency) {
		t.Fatalf("ParseAmount with zero currency: %v, want ErrUnknownCurrency", err)
	}
}

func TestParsePositiveAmount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int64
	}{{"0.01", 1}, {"1500", 150000}, {"1500.00", 150000}, {"92233720368547758.07", math.MaxInt64}} {
		got, err := domain.ParsePositiveAmount(tc.in, domain.KZT)
		if err != nil || got.Minor() != tc.want || got.Currency() != domain.KZT {
			t.Errorf("ParsePositiveAmount(%q) = %v, %v; want %d tiyn", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, reason string }{
		{"0", "greater than zero"},
		{"0.00", "greater than zero"},
		{"-0", "greater than zero"},
		{"-5.5", "greater than zero"},
		{"-0.01", "greater than zero"},
		{"1.001", "decimals"},
		{"abc", "not a decimal number"},
		{"92233720368547758.08", "overflow"},
	} {
		_, err := domain.ParsePositiveAmount(tc.in, domain.KZT)
		var ae *domain.AmountError
		if !errors.Is(err, domain.ErrInvalidAmount) || !errors.As(err, &ae) || !strings.Contains(ae.Reason, tc.reason) {
			t.Errorf("ParsePositiveAmount(%q) = %v, want ErrInvalidAmount with reason containing %q", tc.in, err, tc.reason)
		}
	}
}

func TestAmountString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		minor int64
		cur   domain.Currency
		want  string
	}{
		{150000, domain.KZT, "1500.00"},
		{1, domain.KZT, "0.01"},
		{-5, domain.KZT, "-0.05"},
		{0, domain.KZT, "0.00"},
		{10, domain.KZT, "0.10"},
		{-150000, domain.KZT, "-1500.00"},
		{math.MaxInt64, domain.KZT, "92233720368547758.07"},
		{math.MinInt64, domain.KZT, "-92233720368547758.08"},
		{5, testXTA, "5"},
		{-5, testXTA, "-5"},
		{0, testXTA, "0"},
		{1, testXTB, "0.001"},
		{1500, testXTB, "1.500"},
		{-1, testXTB, "-0.001"},
		{1, testXTC, "0.000000001"},
		{math.MinInt64, testXTC, "-9223372036.854775808"},
	} {
		if got := domain.NewAmount(tc.minor, tc.cur).String(); got != tc.want {
			t.Errorf("NewAmount(%d, %s).String() = %q, want %q", tc.minor, tc.cur, got, tc.want)
		}
	}
}

func TestParseAmountOtherCurrencies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		cur  domain.Currency
		want int64
		ok   bool
	}{
		{"15", testXTA, 15, true},
		{"-15", testXTA, -15, true},
		{"1.0", testXTA, 0, false},
		{"9223372036854775807", testXTA, math.MaxInt64, true},
		{"9223372036854775808", testXTA, 0, false},
		{"1.234", testXTB, 1234, true},
		{"0.5", testXTB, 500, true},
		{"1.2345", testXTB, 0, false},
		{"1.00", testXTB, 1000, true},
		{"9223372036.854775807", testXTC, math.MaxInt64, true},
		{"9223372036.854775808", testXTC, 0, false},
		{"0.0000000001", testXTC, 0, false},
	} {
		got, err := domain.ParseAmount(tc.in, tc.cur)
		switch {
		case tc.ok && (err != nil || !got.Equal(domain.NewAmount(tc.want, tc.cur))):
			t.Errorf("ParseAmount(%q, %s) = %v, %v; want %d", tc.in, tc.cur, got, err, tc.want)
		case !tc.ok && !errors.Is(err, domain.ErrInvalidAmount):
			t.Errorf("ParseAmount(%q, %s) = %v, %v; want ErrInvalidAmount", tc.in, tc.cur, got, err)
		}
	}
}

func TestCurrencyAccessors(t *testing.T) {
	t.Parallel()
	if domain.KZT.Code() != "KZT" || domain.KZT.Exponent() != 2 || domain.KZT.String() != "KZT" || domain.KZT.IsZero() {
		t.Fatalf("KZT = %q/%d/zero=%v, want KZT exponent 2", domain.KZT.Code(), domain.KZT.Exponent(), domain.KZT.IsZero())
	}
	if !(domain.Currency{}).IsZero() {
		t.Fatal("zero Currency is not IsZero")
	}
	if testXTB.Exponent() != 3 {
		t.Fatalf("XTB exponent %d, want 3", testXTB.Exponent())
	}
}

func TestRegisterCurrency(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		code string
		exp  int32
	}{
		{"empty", "", 2},
		{"two letters", "KZ", 2},
		{"four letters", "KZTT", 2},
		{"lower case", "xtd", 2},
		{"digit", "X1D", 2},
		{"non-ASCII three bytes", "ÄX", 2},
		{"negative exponent", "XTE", -1},
		{"exponent too large", "XTE", domain.MaxCurrencyExponent + 1},
	} {
		if _, err := domain.RegisterCurrency(tc.code, tc.exp); !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("%s: RegisterCurrency(%q, %d) = %v, want ErrInvalidInput", tc.name, tc.code, tc.exp, err)
		}
	}
	if _, err := domain.LookupCurrency("XTE"); !errors.Is(err, domain.ErrUnknownCurrency) {
		t.Errorf("a refused registration left XTE in the registry: %v", err)
	}

	// Same code, same exponent: a no-op returning the same currency.
	first, err := domain.RegisterCurrency("XTF", 1)
	if err != nil {
		t.Fatal(err)
	}
	again, err := domain.RegisterCurrency("XTF", 1)
	if err != nil || again != first {
		t.Fatalf("re-registering XTF with the same exponent = %v, %v; want %v", again, err, first)
	}
	// Same code, other exponent: refused, and the original stays.
	if _, err := domain.RegisterCurrency("XTF", 2); !errors.Is(err, domain.ErrInvalidInput) {
		t.Fatalf("re-registering XTF with exponent 2: %v, want ErrInvalidInput", err)
	}
	if _, err := domain.RegisterCurrency("KZT", 3); !errors.Is(err, domain.ErrInvalidInput) {
		t.Fatalf("re-registering KZT with exponent 3: %v, want ErrInvalidInput", err)
	}
	if got, err := domain.LookupCurrency("XTF"); err != nil || got.Exponent() != 1 {
		t.Fatalf("LookupCurrency(XTF) = %v (exp %d), %v; want exponent 1", got, got.Exponent(), err)
	}
	if got, err := domain.LookupCurrency("KZT"); err != nil || got != domain.KZT || got.Exponent() != 2 {
		t.Fatalf("KZT changed after a refused re-registration: %v, %v", got, err)
	}
}

func TestMustRegisterCurrencyPanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Fatal("MustRegisterCurrency with a bad code did not panic")
		}
	}()
	domain.MustRegisterCurrency("bad", 2)
}

func TestRegisterCurrencyConcurrent(t *testing.T) {
	t.Parallel()
	const workers = 8
	results := make([]domain.Currency, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = domain.RegisterCurrency("XTG", 4)
			if _, err := domain.LookupCurrency("KZT"); err != nil {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	for i := range workers {
		if errs[i] != nil || results[i] != results[0] || results[i].Exponent() != 4 {
			t.Fatalf("worker %d: %v, %v", i, results[i], errs[i])
		}
	}
}

func TestLookupCurrency(t *testing.T) {
	t.Parallel()
	if c, err := domain.LookupCurrency("KZT"); err != nil || c != domain.KZT {
		t.Fatalf("LookupCurrency(KZT) = %v, %v", c, err)
	}
	if c, err := domain.LookupCurrency("XTB"); err != nil || c != testXTB {
		t.Fatalf("LookupCurrency(XTB) = %v, %v", c, err)
	}
	for _, code := range []string{"", "kzt", "Kzt", "ZZZ", " KZT", "KZT ", strings.Repeat("Q", 500)} {
		c, err := domain.LookupCurrency(code)
		if !errors.Is(err, domain.ErrUnknownCurrency) || !c.IsZero() {
			t.Errorf("LookupCurrency(%q) = %v, %v; want ErrUnknownCurrency", code, c, err)
		}
		if err != nil && len(err.Error()) > 100 {
			t.Errorf("LookupCurrency error for a %d-byte code is %d bytes; the code should be truncated", len(code), len(err.Error()))
		}
	}
}

func TestAmountPredicatesAndArithmetic(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		minor          int64
		zero, pos, neg bool
	}{
		{0, true, false, false},
		{1, false, true, false},
		{-1, false, false, true},
		{math.MaxInt64, false, true, false},
		{math.MinInt64, false, false, true},
	} {
		a := domain.NewAmount(tc.minor, domain.KZT)
		if a.IsZero() != tc.zero || a.IsPositive() != tc.pos || a.IsNegative() != tc.neg {
			t.Errorf("%d: zero=%v pos=%v neg=%v", tc.minor, a.IsZero(), a.IsPositive(), a.IsNegative())
		}
	}

	if n, err := domain.NewAmount(5, domain.KZT).Neg(); err != nil || !n.Equal(domain.NewAmount(-5, domain.KZT)) {
		t.Errorf("Neg(5) = %v, %v", n, err)
	}
	if n, err := domain.NewAmount(math.MaxInt64, domain.KZT).Neg(); err != nil || n.Minor() != -math.MaxInt64 {
		t.Errorf("Neg(MaxInt64) = %v, %v", n, err)
	}
	if _, err := domain.NewAmount(math.MinInt64, domain.KZT).Neg(); !errors.Is(err, domain.ErrInvalidAmount) {
		t.Errorf("Neg(MinInt64) error = %v, want ErrInvalidAmount", err)
	}

	if _, err := domain.NewAmount(1, domain.KZT).Add(domain.NewAmount(1, testXTB)); !errors.Is(err, domain.ErrCurrencyMismatch) {
		t.Errorf("KZT + XTB error = %v, want ErrCurrencyMismatch", err)
	}
	if _, err := domain.NewAmount(math.MaxInt64, domain.KZT).Add(domain.NewAmount(1, domain.KZT)); !errors.Is(err, domain.ErrInvalidAmount) {
		t.Errorf("MaxInt64 + 1 error = %v, want ErrInvalidAmount", err)
	}
	if _, err := domain.NewAmount(math.MinInt64, domain.KZT).Add(domain.NewAmount(-1, domain.KZT)); !errors.Is(err, domain.ErrInvalidAmount) {
		t.Errorf("MinInt64 - 1 error = %v, want ErrInvalidAmount", err)
	}
	if s, err := domain.NewAmount(150, domain.KZT).Add(domain.NewAmount(-200, domain.KZT)); err != nil || s.Minor() != -50 || s.Currency() != domain.KZT {
		t.Errorf("150 + -200 = %v, %v", s, err)
	}

	if domain.NewAmount(1, domain.KZT).Equal(domain.NewAmount(1, testXTB)) {
		t.Error("1 KZT minor unit equals 1 XTB minor unit")
	}
	if !domain.NewAmount(1, domain.KZT).Equal(domain.NewAmount(1, domain.KZT)) {
		t.Error("equal amounts compare unequal")
	}
	if d := domain.NewAmount(150001, domain.KZT).Decimal(); d.String() != "1500.01" {
		t.Errorf("Decimal() = %s, want 1500.01", d)
	}
}

func TestAmountLimitsValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		l  domain.AmountLimits
		ok bool
	}{
		{domain.AmountLimits{MinMinor: 100, MaxMinor: 50_000_000}, true},
		{domain.AmountLimits{MinMinor: 5, MaxMinor: 5}, true},
		{domain.AmountLimits{MinMinor: 0, MaxMinor: 1}, false},
		{domain.AmountLimits{MinMinor: -1, MaxMinor: 5}, false},
		{domain.AmountLimits{MinMinor: 5, MaxMinor: 4}, false},
		{domain.AmountLimits{}, false},
	} {
		err := tc.l.Validate()
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, domain.ErrInvalidInput)) {
			t.Errorf("%+v.Validate() = %v, want ok=%v", tc.l, err, tc.ok)
		}
	}
}

func TestAmountLimitsCheck(t *testing.T) {
	t.Parallel()
	l := domain.AmountLimits{MinMinor: 100, MaxMinor: 50_000_000}
	for _, tc := range []struct {
		minor int64
		ok    bool
	}{{99, false}, {100, true}, {101, true}, {49_999_999, true}, {50_000_000, true}, {50_000_001, false}, {0, false}, {-100, false}} {
		err := l.Check(domain.NewAmount(tc.minor, domain.KZT))
		if (err == nil) != tc.ok {
			t.Errorf("Check(%d) = %v, want ok=%v", tc.minor, err, tc.ok)
		}
	}
	err := l.Check(domain.NewAmount(99, domain.KZT))
	var le *domain.LimitError
	if !errors.As(err, &le) || !errors.Is(err, domain.ErrAmountOutOfLimits) {
		t.Fatalf("Check(99) = %v, want *LimitError wrapping ErrAmountOutOfLimits", err)
	}
	if le.Min.String() != "1.00" || le.Max.String() != "500000.00" || le.Amount.Minor() != 99 {
		t.Fatalf("LimitError bounds %s..%s amount %s", le.Min, le.Max, le.Amount)
	}
	for _, part := range []string{"0.99", "1.00", "500000.00", "KZT"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("LimitError message %q lacks %q", err.Error(), part)
		}
	}
}

// --- properties ---

// edgeInt64 draws int64 values with extra weight on the edges of the range.
func edgeInt64() *rapid.Generator[int64] {
	return rapid.OneOf(
		rapid.Int64(),
		rapid.SampledFrom([]int64{0, 1, -1, math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, math.MinInt64 + 1, math.MaxInt64 / 2, math.MinInt64 / 2}),
		rapid.Int64Range(math.MaxInt64-1000, math.MaxInt64),
		rapid.Int64Range(math.MinInt64, math.MinInt64+1000),
	)
}

func TestPropertyFormatParseRoundTrip(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		c := rapid.SampledFrom(allTestCurrencies).Draw(t, "currency")
		m := edgeInt64().Draw(t, "minor")
		a := domain.NewAmount(m, c)
		s := a.String()
		// Exactly the currency's number of decimals, no exponent, no '+'.
		re := `^-?[0-9]+$`
		if c.Exponent() > 0 {
			re = fmt.Sprintf(`^-?[0-9]+\.[0-9]{%d}$`, c.Exponent())
		}
		if !regexp.MustCompile(re).MatchString(s) {
			t.Fatalf("String() = %q does not match %s", s, re)
		}
		back, err := domain.ParseAmount(s, c)
		if err != nil {
			t.Fatalf("ParseAmount(%q, %s) error: %v", s, c, err)
		}
		if !back.Equal(a) {
			t.Fatalf("round trip %d %s -> %q -> %d %s", m, c, s, back.Minor(), back.Currency())
		}
	})
}

var decimalGrammar = regexp.MustCompile(`^(-?)([0-9]+)(?:\.([0-9]+))?$`)

// referenceParse is an independent model of ParseAmount built on math/big:
// it returns the minor units, or a failure category matching the reason
// ParseAmount must give.
func referenceParse(text string, exponent int32) (minor int64, failure string) {
	if len(text) > domain.MaxAmountTextLen {
		return 0, "too long"
	}
	m := decimalGrammar.FindStringSubmatch(text)
	if m == nil {
		return 0, "not a decimal number"
	}
	frac := m[3]
	if len(frac) > int(exponent) {
		return 0, "decimals"
	}
	v, ok := new(big.Int).SetString(m[2]+frac+strings.Repeat("0", int(exponent)-len(frac)), 10)
	if !ok {
		panic("reference: bad digits " + text)
	}
	if m[1] == "-" {
		v.Neg(v)
	}
	if !v.IsInt64() {
		return 0, "overflow"
	}
	return v.Int64(), ""
}

// amountText draws decimal-looking text: mostly well-formed, sometimes with
// junk, and often right at the edge of the int64 range.
func amountText(exponent int32) *rapid.Generator[string] {
	digits := rapid.RuneFrom([]rune("0123456789"))
	junky := rapid.RuneFrom([]rune("0123456789.-+e ,_x١"))
	free := rapid.Custom(func(t *rapid.T) string {
		runes := digits
		if rapid.IntRange(0, 9).Draw(t, "junk") == 0 {
			runes = junky
		}
		sign := rapid.SampledFrom([]string{"", "", "", "-", "-", "+", " ", "--"}).Draw(t, "sign")
		intPart := rapid.StringOfN(runes, 0, 24, -1).Draw(t, "int")
		text := sign + intPart
		if rapid.Bool().Draw(t, "point") {
			text += "." + rapid.StringOfN(runes, 0, 12, -1).Draw(t, "frac")
		}
		return text + rapid.SampledFrom([]string{"", "", "", "", " ", "e3", ".", ".0"}).Draw(t, "suffix")
	})
	// A value near ±2^63 minor units (possibly just outside), written with
	// a point placed anywhere from 0 to exponent+2 digits from the right.
	edge := rapid.Custom(func(t *rapid.T) string {
		v := big.NewInt(edgeInt64().Draw(t, "base"))
		v.Add(v, big.NewInt(rapid.Int64Range(-3, 3).Draw(t, "offset")))
		s := new(big.Int).Abs(v).String()
		places := rapid.IntRange(0, int(exponent)+2).Draw(t, "places")
		if places > 0 {
			if len(s) <= places {
				s = strings.Repeat("0", places-len(s)+1) + s
			}
			s = s[:len(s)-places] + "." + s[len(s)-places:]
		}
		if v.Sign() < 0 {
			s = "-" + s
		}
		return s
	})
	return rapid.OneOf(free, edge, rapid.String())
}

func TestPropertyParseAmountMatchesBigReference(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		c := rapid.SampledFrom(allTestCurrencies).Draw(t, "currency")
		text := amountText(c.Exponent()).Draw(t, "text")
		want, failure := referenceParse(text, c.Exponent())
		got, err := domain.ParseAmount(text, c)
		if failure == "" {
			if err != nil {
				t.Fatalf("ParseAmount(%q, %s) error %v, reference accepts %d", text, c, err, want)
			}
			if !got.Equal(domain.NewAmount(want, c)) {
				t.Fatalf("ParseAmount(%q, %s) = %d, reference %d", text, c, got.Minor(), want)
			}
			return
		}
		if err == nil {
			t.Fatalf("ParseAmount(%q, %s) = %d, reference refuses (%s)", text, c, got.Minor(), failure)
		}
		var ae *domain.AmountError
		if !errors.Is(err, domain.ErrInvalidAmount) || !errors.As(err, &ae) {
			t.Fatalf("ParseAmount(%q) error %v is not an ErrInvalidAmount *AmountError", text, err)
		}
		if !strings.Contains(ae.Reason, failure) {
			t.Fatalf("ParseAmount(%q, %s) reason %q, reference says %q", text, c, ae.Reason, failure)
		}
	})
}

func TestPropertyAmountLimitsCheck(t *testing.T) {
	t.Parallel()
	const lo, hi = 100, 50_000_000
	l := domain.AmountLimits{MinMinor: lo, MaxMinor: hi}
	nearBoundary := rapid.Custom(func(t *rapid.T) int64 {
		center := rapid.SampledFrom([]int64{0, lo, hi, math.MinInt64, math.MaxInt64}).Draw(t, "center")
		delta := rapid.Int64Range(-3, 3).Draw(t, "delta")
		v := new(big.Int).Add(big.NewInt(center), big.NewInt(delta))
		if !v.IsInt64() {
			return center
		}
		return v.Int64()
	})
	rapid.Check(t, func(t *rapid.T) {
		v := rapid.OneOf(nearBoundary, edgeInt64(), rapid.Int64Range(-10, hi+10)).Draw(t, "minor")
		err := l.Check(domain.NewAmount(v, domain.KZT))
		inside := v >= lo && v <= hi
		if inside != (err == nil) {
			t.Fatalf("Check(%d) = %v, inside=%v", v, err, inside)
		}
		if err != nil {
			var le *domain.LimitError
			if !errors.Is(err, domain.ErrAmountOutOfLimits) || !errors.As(err, &le) || le.Amount.Minor() != v {
				t.Fatalf("Check(%d) error %v is not a *LimitError for it", v, err)
			}
		}
	})
}

func TestPropertyAddOverflow(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		c := rapid.SampledFrom(allTestCurrencies).Draw(t, "currency")
		x := edgeInt64().Draw(t, "x")
		y := edgeInt64().Draw(t, "y")
		sum := new(big.Int).Add(big.NewInt(x), big.NewInt(y))
		got, err := domain.NewAmount(x, c).Add(domain.NewAmount(y, c))
		if sum.IsInt64() {
			if err != nil || !got.Equal(domain.NewAmount(sum.Int64(), c)) {
				t.Fatalf("%d + %d = %v, %v; want %s", x, y, got, err, sum)
			}
		} else if !errors.Is(err, domain.ErrInvalidAmount) {
			t.Fatalf("%d + %d = %v, %v; want overflow (true sum %s)", x, y, got, err, sum)
		}
		// Neg agrees with math/big too.
		neg := new(big.Int).Neg(big.NewInt(x))
		n, err := domain.NewAmount(x, c).Neg()
		if neg.IsInt64() != (err == nil) || (err == nil && n.Minor() != neg.Int64()) {
			t.Fatalf("Neg(%d) = %v, %v", x, n, err)
		}
	})
}

func TestISO4217Registry(t *testing.T) {
	t.Parallel()
	for code, exp := range map[string]int32{"KZT": 2, "USD": 2, "EUR": 2, "RUB": 2, "JPY": 0, "KRW": 0, "KWD": 3, "BHD": 3, "CLF": 4, "UYW": 4, "UZS": 2} {
		c, err := domain.LookupCurrency(code)
		if err != nil || c.Exponent() != exp || !c.Known() {
			t.Errorf("%s: %v %d, want exponent %d", code, err, c.Exponent(), exp)
		}
	}
	for _, code := range []string{"XAU", "XTS", "XXX", "kzt", "ABC", ""} {
		if _, err := domain.LookupCurrency(code); !errors.Is(err, domain.ErrUnknownCurrency) {
			t.Errorf("%q is registered: %v", code, err)
		}
	}
}

func TestUnlistedCurrency(t *testing.T) {
	t.Parallel()
	kzt := domain.UnlistedCurrency("kzt")
	if kzt == domain.KZT || kzt.Known() || kzt.Code() != "kzt" || kzt.IsZero() {
		t.Fatalf("unlisted kzt: %+v", kzt)
	}
	if a := domain.NewAmount(10000, kzt); a.String() != "10000" || a.Equal(domain.NewAmount(10000, domain.KZT)) {
		t.Fatalf("amount in an unlisted currency: %s", a)
	}
	if domain.UnlistedCurrency("") != (domain.Currency{}) {
		t.Fatal("the empty code is not the zero currency")
	}
	if _, err := domain.ParseAmount("1.00", kzt); !errors.Is(err, domain.ErrUnknownCurrency) {
		t.Fatalf("parsing in an unlisted currency: %v", err)
	}
	if domain.CurrencyOf("USD").Exponent() != 2 || domain.CurrencyOf("usd").Known() {
		t.Fatal("CurrencyOf")
	}
}
