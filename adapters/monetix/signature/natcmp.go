package signature

// Compare is PHP's strnatcmp (case-sensitive natural order), the order in
// which the reference SDK's ksort(..., SORT_NATURAL) puts signature items.
// It returns -1, 0 or +1. Exported so callers and tests can check orderings
// such as Compare("items:2", "items:10") < 0.
//
// It is a port of strnatcmp_ex in php-src ext/standard/strnatcmp.c (PHP 7/8,
// fold_case off), plus a shortcut over common prefixes that gives identical
// results:
//   - an empty string sorts before any non-empty one;
//   - zeros at the very start of a string are skipped when a digit follows;
//   - ASCII whitespace (C isspace: space, \t, \n, \v, \f, \r) is skipped in
//     both strings at the start of every step;
//   - where both strings are at a digit, the two digit runs are compared:
//     left-aligned digit by digit if either starts with '0' (the shorter run
//     loses when equal so far), otherwise as integers (the longer run wins,
//     equal lengths are decided by the first differing digit); after equal
//     runs a string that has ended sorts first, else comparison continues
//     right after the runs;
//   - other bytes compare as unsigned values (UTF-8 sorts by code point);
//   - a string that is a prefix of the other sorts first.
//
// Where the C code reads the terminating NUL of a string after skipping
// trailing whitespace, this port uses a 0 byte too.
func Compare(a, b string) int { return natCompare(a, b) }

func natCompare[S ~string | ~[]byte](a, b S) int {
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

	// Fast path (not in the C code): signature paths share long prefixes
	// such as "operation:sum_converted:". Inside an identical prefix the
	// C loop advances both strings in lockstep, and right after it has
	// compared an identical byte that is neither a digit nor whitespace it
	// is back at the top of its loop with ai == bi and no pending state. So
	// resume there: after the last such byte of the common prefix. The
	// exhaustive and random tests check this against the plain port.
	p := 0
	for p < na && p < nb && a[p] == b[p] {
		p++
	}
	for q := p; q > 0; q-- {
		if c := a[q-1]; !isDigit(c) && !isSpace(c) {
			switch {
			case q >= na && q >= nb:
				return 0
			case q >= na:
				return -1
			case q >= nb:
				return 1
			}
			return natLoop(a, q, b, q)
		}
	}

	ai, bi := 0, 0
	// Skip over leading zeros.
	for a[ai] == '0' && ai+1 < na && isDigit(a[ai+1]) {
		ai++
	}
	for b[bi] == '0' && bi+1 < nb && isDigit(b[bi+1]) {
		bi++
	}
	return natLoop(a, ai, b, bi)
}

// natLoop is the main loop of strnatcmp_ex, started at a[ai] and b[bi]
// (both in range): either after the leading-zero skip, or at a point where
// the C loop would begin an iteration.
func natLoop[S ~string | ~[]byte](a S, ai int, b S, bi int) int {
	na, nb := len(a), len(b)
	for {
		// Skip consecutive whitespace.
		for ai < na && isSpace(a[ai]) {
			ai++
		}
		for bi < nb && isSpace(b[bi]) {
			bi++
		}
		var ca, cb byte // 0 at the end, like the C string terminator
		if ai < na {
			ca = a[ai]
		}
		if bi < nb {
			cb = b[bi]
		}

		// Process a run of digits.
		if isDigit(ca) && isDigit(cb) {
			var r int
			if ca == '0' || cb == '0' {
				r, ai, bi = compareLeft(a, ai, b, bi)
			} else {
				r, ai, bi = compareRight(a, ai, b, bi)
			}
			switch {
			case r != 0:
				return r
			case ai == na && bi == nb:
				return 0
			case ai == na:
				return -1
			case bi == nb:
				return 1
			}
			ca, cb = a[ai], b[bi]
		}

		if ca < cb {
			return -1
		} else if ca > cb {
			return 1
		}

		ai++
		bi++
		switch {
		case ai >= na && bi >= nb:
			return 0
		case ai >= na:
			return -1
		case bi >= nb:
			return 1
		}
	}
}

// compareRight compares two right-aligned digit runs (integers): the longer
// run wins; for equal lengths the first differing digit (remembered in bias)
// decides. It returns the result and the positions after the runs.
func compareRight[S ~string | ~[]byte](a S, ai int, b S, bi int) (int, int, int) {
	bias := 0
	for ; ; ai, bi = ai+1, bi+1 {
		aEnd := ai >= len(a) || !isDigit(a[ai])
		bEnd := bi >= len(b) || !isDigit(b[bi])
		switch {
		case aEnd && bEnd:
			return bias, ai, bi
		case aEnd:
			return -1, ai, bi
		case bEnd:
			return 1, ai, bi
		case a[ai] < b[bi]:
			if bias == 0 {
				bias = -1
			}
		case a[ai] > b[bi]:
			if bias == 0 {
				bias = 1
			}
		}
	}
}

// compareLeft compares two left-aligned digit runs (fractional parts): the
// first differing digit wins and a run that ends first loses.
func compareLeft[S ~string | ~[]byte](a S, ai int, b S, bi int) (int, int, int) {
	for ; ; ai, bi = ai+1, bi+1 {
		aEnd := ai >= len(a) || !isDigit(a[ai])
		bEnd := bi >= len(b) || !isDigit(b[bi])
		switch {
		case aEnd && bEnd:
			return 0, ai, bi
		case aEnd:
			return -1, ai, bi
		case bEnd:
			return 1, ai, bi
		case a[ai] < b[bi]:
			return -1, ai, bi
		case a[ai] > b[bi]:
			return 1, ai, bi
		}
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isSpace is C's isspace in the "C" locale.
func isSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}
