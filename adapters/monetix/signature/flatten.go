package signature

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// item locates one "path:value" entry inside flattener.buf: the path is
// buf[start:mid], buf[mid] is ':' and the value is buf[mid+1:end].
type item struct {
	start, mid, end int
}

// flattener holds the scratch memory for one signature computation. It is
// pooled so the hot path (thousands of callbacks per second) allocates only
// what encoding/json and crypto/hmac allocate themselves.
type flattener struct {
	buf   []byte // all items back to back
	path  []byte // path of the member being visited
	out   []byte // the joined string to sign
	items []item
	sum   [sha512.Size]byte
	got   [sha512.Size + 3]byte // decoded signature (DecodedLen(88) == 66)
	enc   [128]byte             // Base64 text of a signature (88 bytes)
}

var flattenerPool = sync.Pool{New: func() any { return new(flattener) }}

// maxPooledBytes keeps an occasional huge message from pinning its scratch
// buffers in the pool forever.
const maxPooledBytes = 64 << 10

func getFlattener() *flattener { return flattenerPool.Get().(*flattener) }

func putFlattener(f *flattener) {
	if cap(f.buf) > maxPooledBytes || cap(f.out) > maxPooledBytes || cap(f.items) > maxPooledBytes/24 {
		return
	}
	f.buf, f.path, f.out, f.items = f.buf[:0], f.path[:0], f.out[:0], f.items[:0]
	flattenerPool.Put(f)
}

// mac returns HMAC-SHA512(secret, StringToSign(doc)) in f.sum.
func (f *flattener) mac(secret []byte, doc map[string]any) []byte {
	h := hmac.New(sha512.New, secret)
	h.Write(f.stringToSign(doc))
	return h.Sum(f.sum[:0])
}

// stringToSign flattens, sorts and joins doc into f.out and returns it.
func (f *flattener) stringToSign(doc map[string]any) []byte {
	f.buf, f.path, f.out, f.items = f.buf[:0], f.path[:0], f.out[:0], f.items[:0]
	f.object(doc, 1, 0)

	buf := f.buf
	// Sort by the whole item first, then stably by path in natural order.
	// The first pass fixes the input order of the second, so the result does
	// not depend on Go's randomised map iteration order: ties (distinct paths
	// that strnatcmp calls equal, and identical paths) end up in byte order,
	// and the output would stay deterministic even if strnatcmp were not a
	// strict weak ordering for some inputs (an exhaustive search over short
	// strings found none).
	slices.SortFunc(f.items, func(a, b item) int {
		return bytes.Compare(buf[a.start:a.end], buf[b.start:b.end])
	})
	slices.SortStableFunc(f.items, func(a, b item) int {
		return natCompare(buf[a.start:a.mid], buf[b.start:b.mid])
	})

	n := 0
	for _, it := range f.items {
		n += it.end - it.start + 1
	}
	out := slices.Grow(f.out[:0], n)
	for i, it := range f.items {
		if i > 0 {
			out = append(out, ';')
		}
		out = append(out, buf[it.start:it.end]...)
	}
	f.out = out
	return out
}

// childStart prepares a visit of the children of a container whose own path
// is f.path[off:]. A child's path is the parent's path, ':', then its name,
// except when the parent path is "" (top level) or "0": the PHP reference
// adds the prefix only when it is truthy, so there the child's path is its
// name alone. The parent path stays in f.path in that case and the child's
// path starts after it (childOff). base is where children are appended and
// sep tells whether a ':' goes first.
func (f *flattener) childStart(off int) (base, childOff int, sep bool) {
	base = len(f.path)
	p := f.path[off:]
	if len(p) == 0 || (len(p) == 1 && p[0] == '0') {
		return base, base, false
	}
	return base, off, true
}

func (f *flattener) object(m map[string]any, depth, off int) {
	base, childOff, sep := f.childStart(off)
	for k, v := range m {
		if k == signatureKey || k == frameModeKey {
			continue
		}
		f.path = f.path[:base]
		if sep {
			f.path = append(f.path, ':')
		}
		f.path = appendEscapedKey(f.path, k)
		f.value(v, depth, childOff)
	}
	f.path = f.path[:base]
}

func (f *flattener) list(l []any, depth, off int) {
	base, childOff, sep := f.childStart(off)
	for i, v := range l {
		f.path = f.path[:base]
		if sep {
			f.path = append(f.path, ':')
		}
		f.path = strconv.AppendInt(f.path, int64(i), 10)
		f.value(v, depth, childOff)
	}
	f.path = f.path[:base]
}

// value visits v, whose container (object or list) is at the given depth.
// Its path is f.path[off:].
func (f *flattener) value(v any, depth, off int) {
	switch x := v.(type) {
	case map[string]any:
		if depth < MaxDepth {
			f.object(x, depth+1, off)
		}
	case []any:
		if depth < MaxDepth {
			f.list(x, depth+1, off)
		}
	default:
		start := len(f.buf)
		f.buf = append(f.buf, f.path[off:]...)
		mid := len(f.buf)
		f.buf = append(f.buf, ':')
		f.buf = appendScalar(f.buf, x)
		f.items = append(f.items, item{start: start, mid: mid, end: len(f.buf)})
	}
}

// appendEscapedKey appends key with every ':' written as '::'.
func appendEscapedKey(dst []byte, key string) []byte {
	for {
		i := strings.IndexByte(key, ':')
		if i < 0 {
			return append(dst, key...)
		}
		dst = append(dst, key[:i+1]...)
		dst = append(dst, ':')
		key = key[i+1:]
	}
}

// appendScalar appends the text PHP's SignatureHandler produces for a scalar
// leaf: strings as-is, booleans 1/0, null as nothing, integers in decimal,
// floats as PHP's (string) cast prints them. Decode only produces string,
// json.Number, bool and nil; the other cases serve documents built in Go.
// Values of any other type are written with fmt's %v as a last resort (they
// have no defined Monetix form and will not match a peer's signature).
func appendScalar(dst []byte, v any) []byte {
	switch x := v.(type) {
	case string:
		return append(dst, x...)
	case json.Number:
		return appendNumber(dst, string(x))
	case bool:
		if x {
			return append(dst, '1')
		}
		return append(dst, '0')
	case nil:
		return dst
	case int:
		return strconv.AppendInt(dst, int64(x), 10)
	case int8:
		return strconv.AppendInt(dst, int64(x), 10)
	case int16:
		return strconv.AppendInt(dst, int64(x), 10)
	case int32:
		return strconv.AppendInt(dst, int64(x), 10)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case uint:
		return strconv.AppendUint(dst, uint64(x), 10)
	case uint8:
		return strconv.AppendUint(dst, uint64(x), 10)
	case uint16:
		return strconv.AppendUint(dst, uint64(x), 10)
	case uint32:
		return strconv.AppendUint(dst, uint64(x), 10)
	case uint64:
		return strconv.AppendUint(dst, x, 10)
	case float64:
		return appendPHPFloat(dst, x)
	case float32:
		return appendPHPFloat(dst, float64(x))
	default:
		return fmt.Append(dst, x)
	}
}

// appendNumber renders a JSON number literal. An integer literal (optional
// '-' and digits only) is copied verbatim, so 36011000001676 stays exact.
// Any other literal (fraction or exponent) is what PHP's json_decode turns
// into a float, so it is parsed as float64 and printed like PHP does. Text
// that is not a number at all (only possible for a json.Number built in Go)
// is copied verbatim.
func appendNumber(dst []byte, s string) []byte {
	if isIntLiteral(s) {
		return append(dst, s...)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		// ErrRange: f is ±Inf (overflow), which PHP also produces; print it.
		if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
			return append(dst, s...)
		}
	}
	return appendPHPFloat(dst, f)
}

func isIntLiteral(s string) bool {
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// phpPrecision is PHP's default `precision` ini setting, which (string) casts
// of floats use in every PHP version (serialize_precision=-1 only affects
// var_export, json_encode and serialize).
const phpPrecision = 14

// appendPHPFloat appends f exactly as PHP's (string)$f does with
// precision=14: php_gcvt(f, 14, '.', 'E') / zend_gcvt, i.e. "%.14G" where
// the digits are the correctly rounded 14 significant digits with trailing
// zeros dropped; scientific form "d.dddE+X" (at least one fractional digit,
// unpadded exponent) when the decimal exponent is < -4 or >= 15; INF, -INF,
// NAN for the specials and "-0" for negative zero. Examples: 10.5 "10.5",
// 100.0 "100", 0.1+0.2 "0.3", 1e15 "1.0E+15", 0.00001 "1.0E-5".
func appendPHPFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NAN"...)
	case math.IsInf(f, 1):
		return append(dst, "INF"...)
	case math.IsInf(f, -1):
		return append(dst, "-INF"...)
	case f == 0:
		if math.Signbit(f) {
			return append(dst, "-0"...)
		}
		return append(dst, '0')
	}
	// "-d.ddddddddddddde±XX": 14 correctly rounded significant digits.
	var tmp [32]byte
	e := strconv.AppendFloat(tmp[:0], f, 'e', phpPrecision-1, 64)
	if e[0] == '-' {
		dst = append(dst, '-')
		e = e[1:]
	}
	ePos := bytes.IndexByte(e, 'e')
	if ePos < 2 {
		return append(dst, e...) // cannot happen for finite non-zero f
	}
	var digits [phpPrecision]byte
	nd := copy(digits[:], e[:1])
	nd += copy(digits[nd:], e[2:ePos])
	if !keepsTrailingZeros(f) {
		for nd > 1 && digits[nd-1] == '0' {
			nd--
		}
	}
	exp, err := strconv.Atoi(string(e[ePos+1:]))
	if err != nil {
		return append(dst, e...) // cannot happen
	}
	decpt := exp + 1 // position of the decimal point relative to digits

	switch {
	case decpt > phpPrecision || decpt < -3:
		dst = append(dst, digits[0], '.')
		if nd == 1 {
			dst = append(dst, '0')
		} else {
			dst = append(dst, digits[1:nd]...)
		}
		dst = append(dst, 'E')
		if exp < 0 {
			dst = append(dst, '-')
			exp = -exp
		} else {
			dst = append(dst, '+')
		}
		return strconv.AppendInt(dst, int64(exp), 10)
	case decpt < 0:
		dst = append(dst, '0', '.')
		for i := decpt; i < 0; i++ {
			dst = append(dst, '0')
		}
		return append(dst, digits[:nd]...)
	default:
		for i := 0; i < decpt; i++ {
			if i < nd {
				dst = append(dst, digits[i])
			} else {
				dst = append(dst, '0')
			}
		}
		if nd > decpt {
			if decpt == 0 {
				dst = append(dst, '0')
			}
			dst = append(dst, '.')
			dst = append(dst, digits[decpt:nd]...)
		}
		return dst
	}
}

// keepsTrailingZeros reports the one case where zend_dtoa (mode 2, 14
// digits) returns its digits without dropping trailing zeros: an integral
// |f| in [1e14, 1e15) whose 15th digit is a 5 that rounds down to an even
// 14th digit. Its fast floating-point path cannot decide such exact ties and
// its "small integer" fallback does not trim, so PHP prints
// 634658263822905.0 as "6.3465826382290E+14" (but 634658263822915.0 as
// "6.3465826382292E+14" and 100000000000001.0 as "1.0E+14").
func keepsTrailingZeros(f float64) bool {
	a := math.Abs(f)
	if a < 1e14 || a >= 1e15 || a != math.Trunc(a) {
		return false
	}
	n := uint64(a)
	return n%10 == 5 && (n/10)%2 == 0
}
