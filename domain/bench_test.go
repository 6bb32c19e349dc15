package domain_test

import (
	"testing"

	"github.com/tiyn/tiyn/domain"
)

// Amount parsing runs on every debit and every REST amount; the callback
// path reads integer minor units and does not parse text. These benchmarks
// keep its cost (and allocations, mostly shopspring/decimal's big.Int)
// visible: `make microbench`.

// BenchmarkParseAmount parses typical and edge inputs, each checked, so a
// regression in correctness fails the benchmark rather than speeding it up.
func BenchmarkParseAmount(b *testing.B) {
	cases := []struct {
		name, text string
		minor      int64
	}{
		{"integer", "1500", 150000},
		{"two_decimals", "1500.00", 150000},
		{"one_tiyn", "0.01", 1},
		{"large", "92233720368547758.07", 9223372036854775807},
		{"negative", "-5.5", -550},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				a, err := domain.ParseAmount(c.text, domain.KZT)
				if err != nil || a.Minor() != c.minor {
					b.Fatalf("ParseAmount(%q) = %d, %v; want %d", c.text, a.Minor(), err, c.minor)
				}
			}
		})
	}
}

// BenchmarkParseAmountRefused is the cost of refusing input: junk must be
// cheap to turn away (it is caught by the grammar scan before any decimal
// arithmetic), and overflow is caught after it.
func BenchmarkParseAmountRefused(b *testing.B) {
	for _, c := range []struct{ name, text string }{
		{"junk", "1,500.00"},
		{"too_many_decimals", "1.001"},
		{"overflow", "92233720368547758.08"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := domain.ParseAmount(c.text, domain.KZT); err == nil {
					b.Fatalf("ParseAmount(%q) accepted", c.text)
				}
			}
		})
	}
}

// BenchmarkAmountString formats an amount back (every JSON answer with a
// balance does this).
func BenchmarkAmountString(b *testing.B) {
	a := domain.NewAmount(150000, domain.KZT)
	b.ReportAllocs()
	for b.Loop() {
		if s := a.String(); s != "1500.00" {
			b.Fatal(s)
		}
	}
}
