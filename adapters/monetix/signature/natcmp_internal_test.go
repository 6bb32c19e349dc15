package signature

import (
	"math/rand/v2"
	"testing"
)

// natCompareSlow is the plain port of strnatcmp_ex, without natCompare's
// common-prefix fast path.
func natCompareSlow(a, b string) int {
	na, nb := len(a), len(b)
	if na == 0 || nb == 0 {
		switch {
		case na == nb:
			return 0
		case na > nb:
			return 1
		default:
			return -1
		}
	}
	ai, bi := 0, 0
	for a[ai] == '0' && ai+1 < na && isDigit(a[ai+1]) {
		ai++
	}
	for b[bi] == '0' && bi+1 < nb && isDigit(b[bi+1]) {
		bi++
	}
	return natLoop(a, ai, b, bi)
}

// The fast path must not change any result: every pair of strings of up to
// 4 bytes over an alphabet with every byte class strnatcmp distinguishes.
func TestNatCompareFastPathExhaustive(t *testing.T) {
	const alphabet = "0 19a:\x00"
	all := []string{""}
	for n, prev := 0, []string{""}; n < 4; n++ {
		var next []string
		for _, p := range prev {
			for i := range len(alphabet) {
				next = append(next, p+alphabet[i:i+1])
			}
		}
		all = append(all, next...)
		prev = next
	}
	for _, a := range all {
		for _, b := range all {
			if got, want := natCompare(a, b), natCompareSlow(a, b); got != want {
				t.Fatalf("natCompare(%q, %q) = %d, plain port %d", a, b, got, want)
			}
			if got := natCompare([]byte(a), []byte(b)); got != natCompareSlow(a, b) {
				t.Fatalf("natCompare([]byte %q, %q) = %d", a, b, got)
			}
		}
	}
}

// Longer strings that share prefixes, as signature paths do.
func TestNatCompareFastPathRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "00123456789 \t:ab"
	word := func() string {
		b := make([]byte, r.IntN(8))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	for range 200_000 {
		prefix := word() + word()
		a, b := prefix+word(), prefix+word()
		if got, want := natCompare(a, b), natCompareSlow(a, b); got != want {
			t.Fatalf("natCompare(%q, %q) = %d, plain port %d", a, b, got, want)
		}
	}
}
