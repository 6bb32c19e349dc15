package signature_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tiyn/tiyn/adapters/monetix/signature"
)

// vector is one entry of signature-vectors.json (docs/protocol.md §2).
type vector struct {
	Name         string `json:"name"`
	Secret       string `json:"secret"`
	JSON         string `json:"json"`
	StringToSign string `json:"string_to_sign"`
	Signature    string `json:"signature"`
}

const (
	testdataVectors = "testdata/signature-vectors.json"
	// sharedVectors is the original beside the repository clone (CI lays
	// shared/ next to it); the testdata copy keeps the package self-contained.
	sharedVectors = "../../../../shared/monetix/signature-vectors.json"
)

func readVectors(t testing.TB, path string) ([]vector, []byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	var vs []vector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	if len(vs) == 0 {
		t.Fatalf("%s: no vectors", path)
	}
	return vs, raw
}

// loadVectors returns the testdata vectors and, when the shared original is
// reachable, checks that the copy has not drifted from it.
func loadVectors(t testing.TB) []vector {
	t.Helper()
	vs, raw := readVectors(t, testdataVectors)
	if _, err := os.Stat(sharedVectors); err == nil {
		_, shared := readVectors(t, sharedVectors)
		if !bytes.Equal(raw, shared) {
			t.Errorf("%s differs from %s: refresh the testdata copy", testdataVectors, filepath.Clean(sharedVectors))
		}
	} else {
		t.Logf("%s not reachable (%v); using the testdata copy only", sharedVectors, err)
	}
	return vs
}

// sdkVectors are the SDK-published vectors quoted at the end of docs/protocol.md
// §2. They carry no signature member; Signature is the expected result.
var sdkVectors = []vector{
	{
		Name:         "php/js SDK: frame_mode is ignored",
		Secret:       "secret",
		JSON:         `{"customer":{"project_id":0,"id":"sutm_id"},"card":{"pan":"4242424242424242","year":2020,"month":8,"card_holder":"John Smith","cvv":"123","save":true},"frame_mode":"popup"}`,
		StringToSign: "card:card_holder:John Smith;card:cvv:123;card:month:8;card:pan:4242424242424242;card:save:1;card:year:2020;customer:id:sutm_id;customer:project_id:0",
		Signature:    "lY0LTSAzpR7zGce5qfYGacOuYlHGWqkMcQlqmjlsDDZI2gVcE1qVeWANnkIR7mdOqRXJnL1kO0lUmkQ0YYLWRg==",
	},
	{
		Name:         "python SDK: nested lists",
		Secret:       "qwerty",
		JSON:         `{"payment":{"id":"test-payment"},"errors":[{"code":"123","message":"grand crash","description":["description-str",{"description1":1}]},{"code":"456","message":"minor crash","description":null}]}`,
		StringToSign: "errors:0:code:123;errors:0:description:0:description-str;errors:0:description:1:description1:1;errors:0:message:grand crash;errors:1:code:456;errors:1:description:;errors:1:message:minor crash;payment:id:test-payment",
		Signature:    "dxjnun8oySSl0CWlhhjy/k1V9CZcCtaHvu/Y5qJQbWHq8wd6TqTUt4bIfHrlWxT8ba9NOJfkgGHrGc5OgyQVGA==",
	},
}

func mustDecode(t testing.TB, body string) map[string]any {
	t.Helper()
	doc, err := signature.Decode([]byte(body))
	if err != nil {
		t.Fatalf("Decode(%s): %v", body, err)
	}
	return doc
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	return b
}

// withSignature returns the body re-encoded with the top-level signature
// member set to sig.
func withSignature(t testing.TB, body string, sig any) []byte {
	t.Helper()
	doc := mustDecode(t, body)
	doc["signature"] = sig
	return mustMarshal(t, doc)
}

func checkVector(t *testing.T, v vector) {
	secret := []byte(v.Secret)
	doc := mustDecode(t, v.JSON)
	if got := signature.StringToSign(doc); got != v.StringToSign {
		t.Errorf("StringToSign:\n got %q\nwant %q", got, v.StringToSign)
	}
	if got := signature.Sign(secret, doc); got != v.Signature {
		t.Errorf("Sign = %q, want %q", got, v.Signature)
	}
	got, err := signature.SignBody(secret, []byte(v.JSON))
	if err != nil || got != v.Signature {
		t.Errorf("SignBody = %q, %v; want %q", got, err, v.Signature)
	}

	// A body carrying the correct signature verifies, as sent.
	signed := []byte(v.JSON)
	if _, ok := doc["signature"]; !ok {
		signed = withSignature(t, v.JSON, v.Signature)
	}
	vdoc, err := signature.VerifyBody(secret, signed)
	if err != nil {
		t.Fatalf("VerifyBody(valid): %v", err)
	}
	if vdoc["signature"] != v.Signature {
		t.Errorf("VerifyBody returned doc with signature %v", vdoc["signature"])
	}

	// Every way of spoiling the signature is rejected.
	sig := v.Signature
	oneByte := []byte(sig)
	if oneByte[10] == 'A' {
		oneByte[10] = 'B'
	} else {
		oneByte[10] = 'A'
	}
	otherSecret := signature.Sign([]byte(v.Secret+"x"), doc)
	bad := map[string]any{
		"one byte changed":        string(oneByte),
		"last data char changed":  sig[:84] + flip(sig[84]) + sig[85:],
		"truncated":               sig[:len(sig)-4],
		"truncated padding":       strings.TrimRight(sig, "="),
		"valid for other secret":  otherSecret,
		"empty":                   "",
		"not base64":              strings.Repeat("!", len(sig)),
		"extra data":              sig + "AAAA",
		"newline inside":          sig[:40] + "\n" + sig[41:],
		"non-canonical pad bits":  sig[:85] + nextPadChar(sig[85]) + sig[86:],
		"number instead of text":  json.Number("1"),
		"null":                    nil,
		"nested object":           map[string]any{"signature": sig},
		"lower-cased":             strings.ToLower(sig),
		"url-safe alphabet":       strings.NewReplacer("+", "-", "/", "_").Replace(sig),
		"signature of empty body": signature.Sign(secret, map[string]any{}),
	}
	for name, s := range bad {
		if s == sig {
			continue // e.g. no '+' or '/' to replace
		}
		body := withSignature(t, v.JSON, s)
		if doc, err := signature.VerifyBody(secret, body); !errors.Is(err, signature.ErrInvalidSignature) || doc != nil {
			t.Errorf("VerifyBody(%s) = %v, %v; want nil, ErrInvalidSignature", name, doc, err)
		}
	}
	noSig := mustDecode(t, v.JSON)
	delete(noSig, "signature")
	if err := signature.Verify(secret, noSig); !errors.Is(err, signature.ErrInvalidSignature) {
		t.Errorf("Verify(missing signature) = %v", err)
	}
	// The same body verified with another secret fails.
	if _, err := signature.VerifyBody([]byte(v.Secret+"x"), signed); !errors.Is(err, signature.ErrInvalidSignature) {
		t.Errorf("VerifyBody(other secret) = %v", err)
	}
	if _, err := signature.VerifyBody(nil, signed); !errors.Is(err, signature.ErrNoSecret) {
		t.Errorf("VerifyBody(no secret) = %v", err)
	}
}

// flip returns a different Base64 character.
func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// nextPadChar changes only the two low bits of the last Base64 character
// before "==", which are padding bits a lax decoder ignores.
func nextPadChar(c byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := strings.IndexByte(alphabet, c)
	return string(alphabet[i^1])
}

func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) { checkVector(t, v) })
	}
}

func TestSDKVectors(t *testing.T) {
	for _, v := range sdkVectors {
		t.Run(v.Name, func(t *testing.T) { checkVector(t, v) })
	}
}

// V8 sent with \u escapes (and an escaped slash) signs like the raw UTF-8.
func TestUnicodeEscapes(t *testing.T) {
	vs := loadVectors(t)
	var v8 vector
	for _, v := range vs {
		if strings.HasPrefix(v.Name, "unicode") {
			v8 = v
		}
	}
	if v8.JSON == "" {
		t.Fatal("unicode vector not found")
	}
	escaped := `{"type":"verify","project_id":1234,"customer_id":"\u049a\u0430\u0437\u0430\u049b-\u00fc\u20ac\ud83d\ude00","signature":"` + v8.Signature + `"}`
	doc, err := signature.VerifyBody([]byte(v8.Secret), []byte(escaped))
	if err != nil {
		t.Fatalf("VerifyBody(escaped V8): %v", err)
	}
	if got := signature.StringToSign(doc); got != v8.StringToSign {
		t.Errorf("StringToSign = %q, want %q", got, v8.StringToSign)
	}
	upper := strings.ReplaceAll(escaped, `\ud83d\ude00`, `\uD83D\uDE00`)
	if _, err := signature.VerifyBody([]byte(v8.Secret), []byte(upper)); err != nil {
		t.Errorf("VerifyBody(upper-case escapes): %v", err)
	}
}

func TestStringToSignRules(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"empty object", `{}`, ""},
		{"only signature", `{"signature":"x"}`, ""},
		// PHP's removeParam uses isset(), so it would keep "signature":null
		// (and sign "signature:"); we remove the member whatever its value.
		{"signature removed in lists too, even null", `{"l":[{"signature":"x","a":1}],"signature":null}`, "l:0:a:1"},
		{"frame_mode at every depth", `{"frame_mode":"popup","a":{"frame_mode":"x","b":[{"frame_mode":1}]}}`, ""},
		{"similar names are kept", `{"Signature":"1","signatures":"2","frame_modes":"3"}`, "Signature:1;frame_modes:3;signatures:2"},
		{"colons doubled at every level", `{"a:":{":b":{"c::":1}}}`, "a:::::b:c:::::1"},
		{"values are not escaped", `{"a":"x;y:z"}`, "a:x;y:z"},
		{"empty key", `{"":"v","x":{"":1}}`, ":v;x::1"},
		{"parent path empty adds no separator (PHP)", `{"":{"a":1}}`, "a:1"},
		{"parent path 0 adds no separator (PHP)", `{"0":{"a":1,"b":[true]},"1":{"a":2}}`, "1:a:2;a:1;b:0:1"},
		{"nested parent path 0", `{"0":{"0":{"x":"y"}}}`, "x:y"},
		{"list index 0 is not a falsy prefix", `{"l":[{"a":1}]}`, "l:0:a:1"},
		{"empty containers", `{"a":{},"b":[],"c":[{}, []],"d":""}`, "d:"},
		{"scalars", `{"s":"str","t":true,"f":false,"n":null,"i":-12,"z":0}`, "f:0;i:-12;n:;s:str;t:1;z:0"},
		// PHP's json_decode turns integers beyond int64 into floats
		// ("1.2345678901235E+29"); integer literals are signed verbatim here.
		{"large integers verbatim", `{"id":36011000001676,"big":123456789012345678901234567890}`, "big:123456789012345678901234567890;id:36011000001676"},
		{"floats as PHP prints them", `{"a":10.5,"b":100.0,"c":1e2,"d":-0.0,"e":0.30000000000000004,"f":1e15,"g":0.00001,"h":1.5e300,"i":1E400,"j":-1e400,"k":1e-400,"l":12345678901234.5}`,
			"a:10.5;b:100;c:100;d:-0;e:0.3;f:1.0E+15;g:1.0E-5;h:1.5E+300;i:INF;j:-INF;k:0;l:12345678901234"},
		// zend_dtoa keeps trailing zeros for exact ties at the 15th digit of
		// integral values in [1e14, 1e15) that round down (PHP 8.2 checked).
		{"PHP float digits at 1e14..1e15", `{"a":634658263822905.0,"b":100000000000005.0,"c":100000000000015.0,"d":100000000000001.0,"e":999999999999995.0,"f":-5.00000000000005e14,"g":100000000000000.0}`,
			"a:6.3465826382290E+14;b:1.0000000000000E+14;c:1.0000000000002E+14;d:1.0E+14;e:1.0E+15;f:-5.0000000000000E+14;g:1.0E+14"},
		{"number and numeric string sign alike", `{"amount":"10000","x":10000}`, "amount:10000;x:10000"},
		{"natural order across levels", `{"b10":1,"b9":{"x":1},"a":[0,1,2,3,4,5,6,7,8,9,10]}`,
			"a:0:0;a:1:1;a:2:2;a:3:3;a:4:4;a:5:5;a:6:6;a:7:7;a:8:8;a:9:9;a:10:10;b9:x:1;b10:1"},
		{"sort by path not item", `{"a":"2","a-b":"1"}`, "a:2;a-b:1"},
		{"upper case sorts first", `{"b":1,"B":2,"a":3}`, "B:2;a:3;b:1"},
		// strnatcmp calls these equal; PHP keeps document order (not
		// available from a Go map), so ties are broken by byte order.
		{"whitespace-equal paths tie-break by bytes", `{"ab":"1","a b":"2"}`, "a b:2;ab:1"},
		{"duplicate keys: last wins", `{"a":1,"a":2}`, "a:2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := mustDecode(t, tc.body)
			for range 10 { // map iteration order differs between runs
				if got := signature.StringToSign(doc); got != tc.want {
					t.Fatalf("StringToSign(%s)\n got %q\nwant %q", tc.body, got, tc.want)
				}
			}
		})
	}
}

// Documents built in Go (e.g. answers we sign) may use native Go types.
func TestSignGoValues(t *testing.T) {
	doc := map[string]any{
		"i": 7, "i8": int8(-8), "i16": int16(16), "i32": int32(-32), "i64": int64(36011000001676),
		"u": uint(1), "u8": uint8(8), "u16": uint16(16), "u32": uint32(32), "u64": uint64(1 << 63),
		"f": 100.0, "f2": 10.5, "f32": float32(0.5), "n": json.Number("1.50"),
		"nested": map[string]any{"list": []any{"x", nil, false}},
	}
	want := "f:100;f2:10.5;f32:0.5;i:7;i8:-8;i16:16;i32:-32;i64:36011000001676;n:1.5;nested:list:0:x;nested:list:1:;nested:list:2:0;" +
		"u:1;u8:8;u16:16;u32:32;u64:9223372036854775808"
	if got := signature.StringToSign(doc); got != want {
		t.Errorf("StringToSign\n got %q\nwant %q", got, want)
	}
	// A signed Go document verifies after a JSON round trip.
	secret := []byte("k")
	doc["signature"] = signature.Sign(secret, doc)
	if _, err := signature.VerifyBody(secret, mustMarshal(t, doc)); err != nil {
		t.Errorf("VerifyBody(round trip): %v", err)
	}
}

func TestSignCyclicDocTerminates(t *testing.T) {
	doc := map[string]any{"a": "1"}
	doc["self"] = doc
	l := []any{"x"}
	l = append(l, nil)
	l[1] = l
	doc["list"] = l
	if got := signature.StringToSign(doc); !strings.HasPrefix(got, "a:1;list:0:x;") {
		t.Errorf("StringToSign(cyclic) = %.80q…", got)
	}
}

func nested(depth int) string {
	return strings.Repeat(`{"a":`, depth-1) + `{"a":1}` + strings.Repeat("}", depth-1)
}

func TestDecode(t *testing.T) {
	ok := []string{
		`{}`,
		" \t\r\n{\"a\":1} \n\t\r",
		nested(signature.MaxDepth),
		`{"a":` + strings.Repeat("[", signature.MaxDepth-1) + strings.Repeat("]", signature.MaxDepth-1) + `}`,
		`{"s":"\ud83d\ude00 \\ud800 \" \\"}`, // escaped backslash: not a surrogate escape
		`{"a":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}`,
	}
	for _, body := range ok {
		if _, err := signature.Decode([]byte(body)); err != nil {
			t.Errorf("Decode(%.60q): %v", body, err)
		}
	}
	malformed := []string{
		``,
		` `,
		`null`,
		`[]`,
		`[{"a":1}]`,
		`"str"`,
		`1`,
		`true`,
		`{`,
		`{"a":1`,
		`{"a":1}}`,
		`{"a":1} {"b":2}`,
		`{"a":1} x`,
		`{"a":1},`,
		`{"a":1}` + "\x00",
		`{'a':1}`,
		`{"a":01}`,
		`{"a":NaN}`,
		`{"a":.5}`,
		`{"a":"` + "\x01" + `"}`,
		`{"a":"\x"}`,
		"{\"a\":\"\xff\"}",
		"\xef\xbb\xbf{}", // BOM
		`{"a":"\ud800"}`,
		`{"a":"\udc00"}`,
		`{"a":"\ud800\u0041"}`,
		`{"a":"\ud800\\"}`,
		`{"a":"\ud83d"}`,
		`{"\udc00":1}`,
		nested(signature.MaxDepth + 1),
		`{"a":` + strings.Repeat("[", signature.MaxDepth) + strings.Repeat("]", signature.MaxDepth) + `}`,
		strings.Repeat("{", 1_000_000),
		`{"a":` + strings.Repeat("[", 1_000_000),
	}
	for _, body := range malformed {
		doc, err := signature.Decode([]byte(body))
		if !errors.Is(err, signature.ErrMalformed) || doc != nil {
			t.Errorf("Decode(%.60q) = %v, %v; want ErrMalformed", body, doc, err)
		}
		if _, err := signature.SignBody([]byte("k"), []byte(body)); !errors.Is(err, signature.ErrMalformed) {
			t.Errorf("SignBody(%.60q) = %v; want ErrMalformed", body, err)
		}
		if _, err := signature.VerifyBody([]byte("k"), []byte(body)); !errors.Is(err, signature.ErrMalformed) {
			t.Errorf("VerifyBody(%.60q) = %v; want ErrMalformed", body, err)
		}
	}
}

// The deepest accepted document is signed completely.
func TestMaxDepthSigned(t *testing.T) {
	doc := mustDecode(t, nested(signature.MaxDepth))
	want := strings.Repeat("a:", signature.MaxDepth) + "1"
	if got := signature.StringToSign(doc); got != want {
		t.Errorf("StringToSign(depth %d) = %q, want %q", signature.MaxDepth, got, want)
	}
}

func TestDecodeKeepsNumbers(t *testing.T) {
	doc := mustDecode(t, `{"id":36011000001676,"x":1.50}`)
	if got, ok := doc["id"].(json.Number); !ok || got != "36011000001676" {
		t.Errorf("id = %#v", doc["id"])
	}
	if got, ok := doc["x"].(json.Number); !ok || got != "1.50" {
		t.Errorf("x = %#v", doc["x"])
	}
}

func TestVerifyInputs(t *testing.T) {
	secret := []byte("k")
	doc := map[string]any{"a": "1"}
	if err := signature.Verify(secret, nil); !errors.Is(err, signature.ErrInvalidSignature) {
		t.Errorf("Verify(nil doc) = %v", err)
	}
	if err := signature.Verify(nil, doc); !errors.Is(err, signature.ErrNoSecret) {
		t.Errorf("Verify(no secret) = %v", err)
	}
	doc["signature"] = signature.Sign(secret, doc)
	if err := signature.Verify(secret, doc); err != nil {
		t.Errorf("Verify(valid) = %v", err)
	}
	if err := signature.Verify([]byte{}, doc); !errors.Is(err, signature.ErrNoSecret) || errors.Is(err, signature.ErrInvalidSignature) {
		t.Errorf("Verify(empty secret) = %v", err)
	}
	// A nested signature is neither required nor checked.
	doc["general"] = map[string]any{"signature": "garbage"}
	if err := signature.Verify(secret, doc); err != nil {
		t.Errorf("Verify(with nested signature) = %v", err)
	}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"items:2", "items:10", -1},
		{"items:10", "items:2", 1},
		{"field2", "field10", -1},
		{"items:9:x", "items:10:x", -1},
		{"a", "a", 0},
		{"", "", 0},
		{"", "0", -1},
		{"0", "", 1},
		{"phone", "phone2", -1}, // prefix sorts first
		{"a", "a-b", -1},
		{"a", "a ", -1},
		{"a\x00b", "a", 1},
		{"007", "7", 0}, // leading zeros skipped
		{"00", "0", 0},
		{"0a", "a", -1}, // a leading zero is kept unless a digit follows
		{"a01", "a1", -1},
		{"a1b", "a01b", 1},
		{"x0.05", "x0.1", -1},   // a run starting with '0' compares left-aligned
		{"x0.25", "x0.250", -1}, // ... and the shorter run loses
		{"x0.5", "x0.25", -1},   // only the run starting with '0' is left-aligned
		{"x1.5", "x1.25", -1},   // both runs start non-zero: integers
		{"a b", "ab", 0},        // whitespace skipped
		{"x 1", "x1", 0},
		{" a", "a", 0},
		{"a\t\n\v\f\rb", "ab", 0},
		{"a\u00a0b", "ab", 1}, // only ASCII whitespace
		{"a b", "a  c", -1},
		{"B", "a", -1}, // case-sensitive
		{"a", "ü", -1},
		{"item99", "item100", -1},
		{"item100", "item0100", 1},
		{"12345678901234567890", "12345678901234567891", -1},
		{"2x", "10x", -1},
		{"v1.2.10", "v1.2.9", 1},
		{"a:b", "a::b", 1}, // 'b' > ':'
		{"a:0:x", "a:00:x", -1},
		{"a:01", "a:1", -1},
	}
	for _, tc := range tests {
		if got := signature.Compare(tc.a, tc.b); got != tc.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := signature.Compare(tc.b, tc.a); got != -tc.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}
