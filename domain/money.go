package domain

import (
	"fmt"
	"math"
	"sync"

	"github.com/shopspring/decimal"
)

// MaxCurrencyExponent bounds the minor-unit exponent a currency may declare.
// ISO 4217 has none above 4; 9 leaves room and keeps 10^exp far from the
// int64 range.
const MaxCurrencyExponent = 9

// MaxAmountTextLen bounds the decimal text ParseAmount looks at, so a huge
// string cannot make decimal parsing do unbounded work. An int64 has 19
// digits; with a sign, a point and nine decimals 32 is plenty.
const MaxAmountTextLen = 32

// Currency is an ISO 4217 currency as far as money arithmetic cares: its code
// and the number of minor-unit digits. The zero value is "no currency" and is
// never valid; values come from the registry only.
type Currency struct {
	code     string
	exponent int32
}

// Code is the ISO 4217 alpha-3 code, e.g. "KZT".
func (c Currency) Code() string { return c.code }

// Exponent is the number of minor-unit digits (2 for KZT: 1 tenge = 100 tiyn).
func (c Currency) Exponent() int32 { return c.exponent }

// IsZero reports whether c is the zero value (no currency).
func (c Currency) IsZero() bool { return c.code == "" }

// String returns the code.
func (c Currency) String() string { return c.code }

var currencies = struct {
	sync.RWMutex
	byCode map[string]Currency
}{byCode: map[string]Currency{}}

// KZT is the Kazakhstani tenge: exponent 2 (the minor unit is the tiyn).
var KZT = MustRegisterCurrency("KZT", 2)

// RegisterCurrency adds a currency to the registry. Registering the same code
// twice with the same exponent is a no-op; with another exponent it fails,
// since amounts already stored would change meaning.
func RegisterCurrency(code string, exponent int32) (Currency, error) {
	if len(code) != 3 || !isUpperASCII(code) {
		return Currency{}, fmt.Errorf("%w: currency code %q must be three letters A-Z", ErrInvalidInput, code)
	}
	if exponent < 0 || exponent > MaxCurrencyExponent {
		return Currency{}, fmt.Errorf("%w: currency %s exponent %d outside 0..%d", ErrInvalidInput, code, exponent, MaxCurrencyExponent)
	}
	currencies.Lock()
	defer currencies.Unlock()
	if existing, ok := currencies.byCode[code]; ok {
		if existing.exponent != exponent {
			return Currency{}, fmt.Errorf("%w: currency %s already registered with exponent %d", ErrInvalidInput, code, existing.exponent)
		}
		return existing, nil
	}
	c := Currency{code: code, exponent: exponent}
	currencies.byCode[code] = c
	return c, nil
}

// MustRegisterCurrency is RegisterCurrency for package initialisation; it
// panics on a programmer error.
func MustRegisterCurrency(code string, exponent int32) Currency {
	c, err := RegisterCurrency(code, exponent)
	if err != nil {
		panic(err)
	}
	return c
}

// LookupCurrency finds a registered currency by its code (case-sensitive, as
// ISO 4217 codes are upper case on every wire Tiyn speaks).
func LookupCurrency(code string) (Currency, error) {
	currencies.RLock()
	c, ok := currencies.byCode[code]
	currencies.RUnlock()
	if !ok {
		return Currency{}, fmt.Errorf("%w: %q", ErrUnknownCurrency, truncate(code, 16))
	}
	return c, nil
}

func isUpperASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// Amount is an exact quantity of money: an integer number of minor units of
// one currency. It is never a float. The zero value has no currency and is
// only useful as "absent".
type Amount struct {
	minor    int64
	currency Currency
}

// NewAmount makes an amount of minor units (tiyn for KZT).
func NewAmount(minor int64, currency Currency) Amount {
	return Amount{minor: minor, currency: currency}
}

// Minor is the amount in minor units.
func (a Amount) Minor() int64 { return a.minor }

// Currency is the amount's currency.
func (a Amount) Currency() Currency { return a.currency }

// IsZero reports whether the amount is zero minor units.
func (a Amount) IsZero() bool { return a.minor == 0 }

// IsPositive reports whether the amount is above zero.
func (a Amount) IsPositive() bool { return a.minor > 0 }

// IsNegative reports whether the amount is below zero.
func (a Amount) IsNegative() bool { return a.minor < 0 }

// Neg returns -a. It fails for math.MinInt64, which has no positive twin.
func (a Amount) Neg() (Amount, error) {
	if a.minor == math.MinInt64 {
		return Amount{}, &AmountError{Input: a.String(), Reason: "overflow", Err: ErrInvalidAmount}
	}
	return Amount{minor: -a.minor, currency: a.currency}, nil
}

// Add returns a+b, refusing different currencies and int64 overflow.
func (a Amount) Add(b Amount) (Amount, error) {
	if a.currency != b.currency {
		return Amount{}, fmt.Errorf("%w: %s + %s", ErrCurrencyMismatch, a.currency, b.currency)
	}
	sum := a.minor + b.minor
	if (b.minor > 0 && sum < a.minor) || (b.minor < 0 && sum > a.minor) {
		return Amount{}, &AmountError{Input: a.String() + " + " + b.String(), Reason: "overflow", Err: ErrInvalidAmount}
	}
	return Amount{minor: sum, currency: a.currency}, nil
}

// Equal reports whether a and b are the same amount of the same currency.
func (a Amount) Equal(b Amount) bool { return a == b }

// Decimal is the amount in major units as an exact decimal. An amount in
// a currency whose minor units are unknown (UnlistedCurrency) is the
// integer that was sent.
func (a Amount) Decimal() decimal.Decimal {
	return decimal.New(a.minor, -max(a.currency.exponent, 0))
}

// String formats the amount in major units with exactly the currency's number
// of decimals ("1500.00" for 150000 tiyn), without the currency code.
func (a Amount) String() string {
	return a.Decimal().StringFixed(max(a.currency.exponent, 0))
}

// AmountError explains why a piece of text is not an acceptable amount. It
// wraps ErrInvalidAmount (or ErrAmountOutOfLimits), so callers can match with
// errors.Is and still show the reason.
type AmountError struct {
	Input  string
	Reason string
	Err    error
}

func (e *AmountError) Error() string {
	return fmt.Sprintf("%v %q: %s", e.Err, e.Input, e.Reason)
}

func (e *AmountError) Unwrap() error { return e.Err }

// ParseAmount reads decimal text in major units ("1500.00", "1500", "0.01",
// "-5.5") into an exact amount of currency. It refuses junk (anything but an
// optional leading '-', digits and at most one '.' followed by digits:
// no exponent, no '+', no spaces, no thousands separators), more decimals
// than the currency has, and values outside int64 minor units.
func ParseAmount(text string, currency Currency) (Amount, error) {
	if !currency.Known() {
		return Amount{}, fmt.Errorf("%w: no currency with known minor units", ErrUnknownCurrency)
	}
	bad := func(reason string) (Amount, error) {
		return Amount{}, &AmountError{Input: truncate(text, MaxAmountTextLen), Reason: reason, Err: ErrInvalidAmount}
	}
	if len(text) > MaxAmountTextLen {
		return bad("too long")
	}
	digits, decimals, ok := scanDecimal(text)
	if !ok {
		return bad("not a decimal number")
	}
	if digits == 0 {
		return bad("no digits")
	}
	if decimals > int(currency.exponent) {
		return bad(fmt.Sprintf("more than %d decimals for %s", currency.exponent, currency.code))
	}
	d, err := decimal.NewFromString(text)
	if err != nil {
		return bad("not a decimal number")
	}
	minor := d.Shift(currency.exponent)
	if !minor.IsInteger() {
		return bad(fmt.Sprintf("more than %d decimals for %s", currency.exponent, currency.code))
	}
	big := minor.BigInt()
	if !big.IsInt64() {
		return bad("overflow")
	}
	return Amount{minor: big.Int64(), currency: currency}, nil
}

// ParsePositiveAmount is ParseAmount for places where only money moving in
// one direction makes sense (a debit, a deposit): zero and negatives are
// refused with a clear reason.
func ParsePositiveAmount(text string, currency Currency) (Amount, error) {
	a, err := ParseAmount(text, currency)
	if err != nil {
		return Amount{}, err
	}
	if !a.IsPositive() {
		return Amount{}, &AmountError{Input: text, Reason: "must be greater than zero", Err: ErrInvalidAmount}
	}
	return a, nil
}

// scanDecimal checks the grammar -?[0-9]+(\.[0-9]+)? and counts the digits
// before and after the point.
func scanDecimal(s string) (digits, decimals int, ok bool) {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	intDigits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		intDigits++
	}
	if intDigits == 0 {
		return 0, 0, false
	}
	if i == len(s) {
		return intDigits, 0, true
	}
	if s[i] != '.' {
		return 0, 0, false
	}
	i++
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		decimals++
	}
	if decimals == 0 || i != len(s) {
		return 0, 0, false
	}
	return intDigits + decimals, decimals, true
}

// AmountLimits are inclusive per-payment bounds in minor units.
type AmountLimits struct {
	MinMinor int64
	MaxMinor int64
}

// Validate checks that the limits make sense: 0 < min <= max.
func (l AmountLimits) Validate() error {
	if l.MinMinor <= 0 || l.MaxMinor < l.MinMinor {
		return fmt.Errorf("%w: limits need 0 < min (%d) <= max (%d)", ErrInvalidInput, l.MinMinor, l.MaxMinor)
	}
	return nil
}

// LimitError says an amount lies outside the limits, with the bounds in the
// amount's currency so the message can be shown as is.
type LimitError struct {
	Amount Amount
	Min    Amount
	Max    Amount
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("amount %s %s is outside the limits %s–%s %s",
		e.Amount, e.Amount.currency, e.Min, e.Max, e.Amount.currency)
}

func (e *LimitError) Unwrap() error { return ErrAmountOutOfLimits }

// Check returns a *LimitError when a is below the minimum or above the
// maximum.
func (l AmountLimits) Check(a Amount) error {
	if a.minor >= l.MinMinor && a.minor <= l.MaxMinor {
		return nil
	}
	return &LimitError{
		Amount: a,
		Min:    NewAmount(l.MinMinor, a.currency),
		Max:    NewAmount(l.MaxMinor, a.currency),
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
