package signature_test

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"testing"

	"pgregory.net/rapid"

	"github.com/tiyn/tiyn/adapters/monetix/signature"
)

// keyGen draws member names that stress the path rules: colons (escaped as
// "::"), digits (natural order), whitespace (skipped by strnatcmp), names
// that are prefixes of each other, the ignored names, "" and "0" (PHP-falsy
// parent paths), and arbitrary Unicode.
var keyGen = rapid.OneOf(
	rapid.SampledFrom([]string{
		"id", "amount", "a", "b", "B", "a:b", "a-b", ":", "::", "k:", ":k",
		"x1", "x2", "x10", "x01", "items", "phone", "phone2", "a b",
		"signature", "frame_mode", "", "0", "1", "10", "ü", "Қаз",
	}),
	rapid.StringMatching(`[a-c0-9: _-]{0,6}`),
	rapid.String(),
)

var stringGen = rapid.OneOf(
	rapid.String(),
	rapid.SampledFrom([]string{"", "x;y:z", "Қазақ-ü€😀", "10", "\u2028<&>\"\\/", " "}),
)

// floatGen draws non-integer JSON number literals, which are signed the way
// PHP prints floats.
var floatGen = rapid.OneOf(
	rapid.SampledFrom([]string{"10.5", "100.0", "1e2", "-0.0", "0.30000000000000004", "1.5e300", "1E-7", "1e400"}),
	rapid.Map(rapid.Float64(), func(f float64) string {
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return "1.25"
		}
		return strconv.FormatFloat(f, 'e', -1, 64)
	}),
)

// genScalar draws a leaf as Decode would produce it.
func genScalar(t *rapid.T, label string) any {
	switch rapid.IntRange(0, 4).Draw(t, label+"-kind") {
	case 0:
		return stringGen.Draw(t, label+"-string")
	case 1:
		return json.Number(strconv.FormatInt(rapid.Int64().Draw(t, label+"-int"), 10))
	case 2:
		return rapid.Bool().Draw(t, label+"-bool")
	case 3:
		return nil
	default:
		return json.Number(floatGen.Draw(t, label+"-float"))
	}
}

func genValue(t *rapid.T, depth int) any {
	kinds := 6
	if depth >= 4 {
		kinds = 0 // scalars only below depth 4
	}
	switch rapid.IntRange(0, kinds).Draw(t, "kind") {
	case 5:
		return genObject(t, depth+1)
	case 6:
		n := rapid.IntRange(0, 12).Draw(t, "list-len") // ≥ 10 exercises natural order
		l := make([]any, n)
		for i := range l {
			l[i] = genValue(t, depth+1)
		}
		return l
	default:
		return genScalar(t, "leaf")
	}
}

func genObject(t *rapid.T, depth int) map[string]any {
	n := rapid.IntRange(0, 6).Draw(t, "object-len")
	m := make(map[string]any, n)
	for range n {
		m[keyGen.Draw(t, "key")] = genValue(t, depth)
	}
	return m
}

// leaves returns a setter for every scalar leaf below v.
func leaves(v any, out []func(any)) []func(any) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			switch c.(type) {
			case map[string]any, []any:
				out = leaves(c, out)
			default:
				out = append(out, func(n any) { x[k] = n })
			}
		}
	case []any:
		for i, c := range x {
			switch c.(type) {
			case map[string]any, []any:
				out = leaves(c, out)
			default:
				out = append(out, func(n any) { x[i] = n })
			}
		}
	}
	return out
}

func marshal(t *rapid.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	return b
}

// Signing any generated document and inserting the signature yields a body
// that verifies, and whose string to sign is stable across map orders.
func TestPropertySignVerifyRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		doc := genObject(t, 1)
		secret := rapid.SliceOfN(rapid.Byte(), 1, 80).Draw(t, "secret")
		sig, err := signature.SignBody(secret, marshal(t, doc))
		if err != nil {
			t.Fatalf("SignBody: %v", err)
		}
		doc["signature"] = sig
		got, err := signature.VerifyBody(secret, marshal(t, doc))
		if err != nil {
			t.Fatalf("VerifyBody: %v", err)
		}
		s := signature.StringToSign(got)
		for range 3 {
			if again := signature.StringToSign(got); again != s {
				t.Fatalf("StringToSign not deterministic:\n%q\n%q", s, again)
			}
		}
		// Same length, one bit flipped: a different HMAC key. (Appending
		// zero bytes would not be: HMAC zero-pads short keys.)
		other := append([]byte(nil), secret...)
		other[0] ^= 1
		if _, err := signature.VerifyBody(other, marshal(t, doc)); !errors.Is(err, signature.ErrInvalidSignature) {
			t.Fatalf("VerifyBody(other secret) = %v", err)
		}
	})
}

// Changing one scalar leaf invalidates the signature exactly when it changes
// the string to sign (it does not when the leaf sits under an ignored
// member, or renders the same, e.g. "1" vs 1 vs true).
func TestPropertyTamperedLeaf(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		doc := genObject(t, 1)
		secret := rapid.SliceOfN(rapid.Byte(), 1, 80).Draw(t, "secret")
		doc["signature"] = signature.Sign(secret, doc)
		signed, err := signature.Decode(marshal(t, doc))
		if err != nil {
			t.Fatalf("Decode(signed): %v", err)
		}
		before := signature.StringToSign(signed)

		sig := doc["signature"]
		delete(doc, "signature")
		set := leaves(doc, nil)
		if len(set) == 0 {
			return
		}
		i := rapid.IntRange(0, len(set)-1).Draw(t, "leaf")
		set[i](genScalar(t, "new"))
		doc["signature"] = sig
		body := marshal(t, doc)

		tampered, err := signature.Decode(body)
		if err != nil {
			t.Fatalf("Decode(tampered): %v", err)
		}
		after := signature.StringToSign(tampered)
		_, err = signature.VerifyBody(secret, body)
		switch {
		case before != after && !errors.Is(err, signature.ErrInvalidSignature):
			t.Fatalf("string changed (%q -> %q) but VerifyBody = %v", before, after, err)
		case before == after && err != nil:
			t.Fatalf("string unchanged but VerifyBody = %v", err)
		}
	})
}

// FuzzVerifyBody checks that no body makes the package panic or return an
// unexpected error, and that every document Decode accepts round-trips:
// signed, re-encoded with encoding/json and verified again.
func FuzzVerifyBody(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add([]byte(v.JSON))
	}
	for _, v := range sdkVectors {
		f.Add([]byte(v.JSON))
	}
	for _, s := range []string{
		`{}`, `[]`, `null`, ``, `{"a":1} x`, `{"a":"\ud800"}`, `{"a":"\ud83d\ude00"}`,
		`{"a":[1,2,3,4,5,6,7,8,9,10,11],"b":{"c:d":null,"frame_mode":1},"signature":"x"}`,
		`{"f":[10.5,100.0,1e2,-0.0,1e400,1e-400,0.30000000000000004]}`,
		`{"0":{"a":1},"":{"b":[{"":2}]}}`,
		`{"a b":1,"ab":2," ab":3,"007":4,"7":5}`,
		nested(signature.MaxDepth), nested(signature.MaxDepth + 1),
	} {
		f.Add([]byte(s))
	}
	secret := []byte("mx_test_secret_2024")
	f.Fuzz(func(t *testing.T, body []byte) {
		doc, err := signature.VerifyBody(secret, body)
		if err != nil && (doc != nil || !(errors.Is(err, signature.ErrMalformed) || errors.Is(err, signature.ErrInvalidSignature))) {
			t.Fatalf("VerifyBody = %v, %v", doc, err)
		}
		doc, err = signature.Decode(body)
		if err != nil {
			if !errors.Is(err, signature.ErrMalformed) {
				t.Fatalf("Decode error %v does not wrap ErrMalformed", err)
			}
			return
		}
		s := signature.StringToSign(doc)
		if again := signature.StringToSign(doc); again != s {
			t.Fatalf("StringToSign not deterministic:\n%q\n%q", s, again)
		}
		doc["signature"] = signature.Sign(secret, doc)
		resigned, err := json.Marshal(doc)
		if err != nil {
			t.Fatalf("json.Marshal(decoded doc): %v", err)
		}
		back, err := signature.VerifyBody(secret, resigned)
		if err != nil {
			t.Fatalf("VerifyBody(re-signed %s): %v", resigned, err)
		}
		if got := signature.StringToSign(back); got != s {
			t.Fatalf("string to sign changed in the round trip:\n%q\n%q", s, got)
		}
	})
}
