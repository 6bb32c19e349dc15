package monetix_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/monetix/signature"
)

// Vectors V1, V2 and V3 of docs/protocol.md §2 (secret
// mx_test_secret_2024): the writer's bodies must be byte for byte these.
const (
	vectorSecret = "mx_test_secret_2024"
	vectorV1     = `{"type":"verify","project_id":1234,"customer_id":"6552","signature":"l5Y5swL0JoQyieDAJQsN7m30SgXxeq38hlK1lE6orgB+K8HYKuSOL3YhT4gsZGzARjH37+gP2IGdjrVKODxA8g=="}`
	vectorV2     = `{"type":"check_deposit","project_id":1234,"customer_id":"6552","amount":10000,"currency":"KZT","payment_method":"kassa24","signature":"cyIjHaKMvmAfuWL6bLXFf7BhESBLDCrV9sNOYnwQ/o5vy1PI7h/A4jtzxLTJW93HDt8ivXFuaCP7h+i3XszNhA=="}`
	vectorV3     = `{"project_id":1234,"payment":{"id":"1556624104","type":"purchase","status":"success","date":"2024-04-30T11:35:06+0000","method":"kassa24","sum":{"amount":10000,"currency":"KZT"},"description":""},"account":{"number":"6552"},"operation":{"id":36011000001676,"type":"sale","status":"success","date":"2024-04-30T11:35:06+0000","created_date":"2024-04-30T11:34:51+0000","request_id":"7c1b6e0f2d9a4c3b8e5f1a2b3c4d5e6f7a8b9c0d-00036012","sum_initial":{"amount":10000,"currency":"KZT"},"sum_converted":{"amount":10000,"currency":"KZT"},"provider":{"id":1217,"payment_id":"2024290410","auth_code":""},"code":"0","message":"Success"},"signature":"yopM9G06pwm5ZSZe3oyyP5Ltb7yrNzB66s/nBEbt0nQ4W4yvGbSs9EtxyqahxLRDWbyBsjeHQ4K+6sxCq1l07w=="}`
)

func newBodyWriter(t testing.TB) *monetix.BodyWriter {
	t.Helper()
	w, err := monetix.NewBodyWriter([]byte(vectorSecret), "1234")
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func vectorV3Params() monetix.CallbackParams {
	return monetix.CallbackParams{
		ProjectID: "1234", PaymentID: "1556624104", PaymentStatus: "success", Method: "kassa24",
		AmountMinor: 10000, Currency: "KZT", CustomerID: "6552", OperationID: 36011000001676,
		ProviderPayment: "2024290410", RequestID: "7c1b6e0f2d9a4c3b8e5f1a2b3c4d5e6f7a8b9c0d-00036012",
		Date:        time.Date(2024, 4, 30, 11, 35, 6, 0, time.UTC),
		CreatedDate: time.Date(2024, 4, 30, 11, 34, 51, 0, time.UTC),
	}
}

func TestBodyWriterMatchesVectors(t *testing.T) {
	t.Parallel()
	w := newBodyWriter(t)
	if got := string(w.AppendVerify(nil, "6552")); got != vectorV1 {
		t.Errorf("verify body\n got %s\nwant %s", got, vectorV1)
	}
	if got := string(w.AppendCheckDeposit(nil, "6552", 10000, "KZT", "kassa24")); got != vectorV2 {
		t.Errorf("check_deposit body\n got %s\nwant %s", got, vectorV2)
	}
	if got := string(w.AppendCallback(nil, vectorV3Params())); got != vectorV3 {
		t.Errorf("callback body\n got %s\nwant %s", got, vectorV3)
	}
	// Appending keeps what is in dst.
	other := w.AppendVerify([]byte("prefix"), "other")
	if !bytes.HasPrefix(other, []byte("prefix")) || bytes.Contains(other, []byte("6552")) {
		t.Errorf("verify body appended wrongly: %s", other)
	}
	if _, err := signature.VerifyBody([]byte(vectorSecret), other[len("prefix"):]); err != nil {
		t.Errorf("second verify body: %v", err)
	}
}

// decodeUseNumber decodes a body the way the receiver does.
func decodeUseNumber(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return doc
}

// sameDocument fails unless the fast body and the SignedJSON body decode
// to the same document, signature included.
func sameDocument(t *testing.T, name string, fast []byte, doc map[string]any) {
	t.Helper()
	slow, err := monetix.SignedJSON([]byte(vectorSecret), doc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signature.VerifyBody([]byte(vectorSecret), fast); err != nil {
		t.Errorf("%s: the fast body does not verify: %v\n%s", name, err, fast)
	}
	if got, want := decodeUseNumber(t, fast), decodeUseNumber(t, slow); !reflect.DeepEqual(got, want) {
		t.Errorf("%s: documents differ\nfast %s\nslow %s", name, fast, slow)
	}
}

// TestBodyWriterEqualsBuilders holds the fast writer to the builders it
// stands for, over every optional member and strings that need escaping,
// calling one writer in turn so that nothing of one body leaks into the
// next.
func TestBodyWriterEqualsBuilders(t *testing.T) {
	t.Parallel()
	w := newBodyWriter(t)
	strs := []string{"6552", `pay"quoted\id`, "Қазақ-ü€😀", "p\n1\x01\t\r", "<&>\u2028"}
	when := time.Date(2026, 12, 3, 7, 47, 22, 123456789, time.FixedZone("ALMT", 5*3600))
	for i, s := range strs {
		sameDocument(t, "verify "+s, w.AppendVerify(nil, s), monetix.VerifyRequestBody("1234", s))
		sameDocument(t, "check_deposit "+s, w.AppendCheckDeposit(nil, s, int64(100+i), "KZT", s),
			monetix.CheckDepositRequestBody("1234", s, int64(100+i), "KZT", s))
	}
	cases := []monetix.CallbackParams{
		vectorV3Params(),
		{PaymentID: "dep_1", PaymentStatus: "decline", Method: "kassa24", AmountMinor: 50_000_000, Currency: "KZT",
			CustomerID: strs[2], OperationID: 1, Code: "20000", Message: "General decline", Date: when},
		// No method, no account, no provider payment: those members are left out.
		{PaymentID: strs[1], PaymentStatus: "processing", AmountMinor: 1, Currency: "KZT", OperationID: 2, Date: when},
		{PaymentID: "dep_2", PaymentStatus: "success", OperationType: "refund", OperationStatus: strs[3], Method: strs[4],
			AmountMinor: 7, Currency: "XXX", CustomerID: strs[3], OperationID: 1 << 53, ProviderPayment: strs[4],
			RequestID: strs[1], Date: when, CreatedDate: when.Add(-time.Hour)},
		vectorV3Params(),
	}
	for i, p := range cases {
		p.ProjectID = "1234"
		sameDocument(t, "callback "+p.PaymentStatus, w.AppendCallback(nil, p), monetix.BuildCallback(p))
		if i == 2 {
			doc := decodeUseNumber(t, w.AppendCallback(nil, p))
			if _, has := doc["account"]; has {
				t.Errorf("an account without a customer id: %v", doc)
			}
			if _, has := doc["payment"].(map[string]any)["method"]; has {
				t.Errorf("a method when none was given: %v", doc)
			}
		}
	}
	// A zero date is now.
	doc := decodeUseNumber(t, w.AppendCallback(nil, monetix.CallbackParams{PaymentID: "x", PaymentStatus: "success", Currency: "KZT"}))
	at, err := time.Parse(monetix.CallbackDateLayout, doc["payment"].(map[string]any)["date"].(string))
	if err != nil || time.Since(at) > time.Minute || time.Since(at) < -time.Minute {
		t.Errorf("date of a zero Date: %v %v", at, err)
	}
}

func TestNewBodyWriterRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		secret, project string
	}{{"", "1234"}, {"s", ""}, {"s", "0"}, {"s", "012"}, {"s", "-1"}, {"s", "1,2"}, {"s", "99999999999999999999"}} {
		if _, err := monetix.NewBodyWriter([]byte(tc.secret), tc.project); err == nil {
			t.Errorf("NewBodyWriter(%q, %q) accepted", tc.secret, tc.project)
		}
	}
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "nl\nr\rt\t", "\x00\x01\x1f\x7f", "Қазақ-ü€😀", "<&>", "\u2028"} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		got := string(monetix.AppendJSONString(nil, s))
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil || back != s {
			t.Errorf("%q: %s decodes to %q (%v)", s, got, back, err)
		}
		if utf8.ValidString(s) && !strings.Contains(s, "\u2028") && got != strings.TrimSuffix(b.String(), "\n") {
			t.Errorf("%q: got %s, encoding/json %s", s, got, b.String())
		}
	}
}

// The writer's cost per body: one signature and the bytes. On the
// benchmark machine the simulator's CPU is taken from the server.
func BenchmarkBodyWriterCallback(b *testing.B) {
	w, err := monetix.NewBodyWriter([]byte(vectorSecret), "1234")
	if err != nil {
		b.Fatal(err)
	}
	p := monetix.CallbackParams{PaymentID: "dep_01jd8r5m6a1b2c3d4e5f6g7h8j", PaymentStatus: "success", Method: "kassa24",
		AmountMinor: 10000, Currency: "KZT", CustomerID: "sim-abcdefgh-17", OperationID: 36011000001676,
		ProviderPayment: "k24-36011000001676", RequestID: "simabcdefgh-36011000001676"}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		p.OperationID++
		buf = w.AppendCallback(buf[:0], p)
	}
}

func BenchmarkBodyWriterCheckDeposit(b *testing.B) {
	w, err := monetix.NewBodyWriter([]byte(vectorSecret), "1234")
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = w.AppendCheckDeposit(buf[:0], "sim-abcdefgh-17", 10000, "KZT", "kassa24")
	}
}
