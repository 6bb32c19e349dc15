package monetix_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/monetix/signature"
)

func newJSONRequest(path string, body []byte) *http.Request {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return req
}

func TestSignedJSON(t *testing.T) {
	t.Parallel()
	// V2 of docs/protocol.md §2, built from Go values.
	body := monetix.CheckDepositRequestBody("1234", "6552", 10000, "KZT", "kassa24")
	b, err := monetix.SignedJSON(p1Secret, body)
	if err != nil {
		t.Fatal(err)
	}
	const v2 = "cyIjHaKMvmAfuWL6bLXFf7BhESBLDCrV9sNOYnwQ/o5vy1PI7h/A4jtzxLTJW93HDt8ivXFuaCP7h+i3XszNhA=="
	doc, err := signature.VerifyBody(p1Secret, b)
	if err != nil || doc["signature"] != v2 {
		t.Fatalf("SignedJSON: %s %v", b, err)
	}
	if _, ok := body["signature"]; ok {
		t.Fatal("SignedJSON modified its argument")
	}
	// A stale signature in the input is replaced, not signed over.
	body["signature"] = "stale"
	if b2, err := monetix.SignedJSON(p1Secret, body); err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("with stale signature: %s %v", b2, err)
	}
	// A float is signed the way the receiver decodes it.
	if b, err := monetix.SignedJSON(p1Secret, map[string]any{"x": 100.0, "y": 0.1}); err != nil {
		t.Fatal(err)
	} else if _, err := signature.VerifyBody(p1Secret, b); err != nil {
		t.Fatalf("float body: %v", err)
	}
	if _, err := monetix.SignedJSON(nil, body); err == nil {
		t.Fatal("SignedJSON with an empty secret")
	}
	if _, err := monetix.SignedJSON(p1Secret, map[string]any{"c": make(chan int)}); err == nil {
		t.Fatal("SignedJSON of an unmarshalable value")
	}
}

func TestBuildCallbackMatchesThePage(t *testing.T) {
	t.Parallel()
	body := monetix.BuildCallback(monetix.CallbackParams{
		ProjectID: "1234", PaymentID: "1556624104", PaymentStatus: "success", Method: "kassa24",
		AmountMinor: 10000, Currency: "KZT", CustomerID: "6552", OperationID: bigOperationID,
		ProviderPayment: "2024290410", Date: time.Date(2024, 4, 30, 11, 35, 6, 0, time.UTC),
	})
	b := sign(t, p1Secret, body)
	c, err := monetix.DecodeCallback(b)
	if err != nil {
		t.Fatal(err)
	}
	want := monetix.Callback{ProjectID: "1234", PaymentID: "1556624104", PaymentStatus: "success", PaymentMethod: "kassa24",
		AmountMinor: 10000, Currency: "KZT", OperationID: "36011000001676", OperationType: "sale", OperationStatus: "success"}
	if c != want {
		t.Fatalf("decoded %+v", c)
	}
	for _, s := range []string{`"date":"2024-04-30T11:35:06+0000"`, `"payment_id":"2024290410"`, `"account":{"number":"6552"}`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("callback lacks %s: %s", s, b)
		}
	}
}

// TestDecodePageExample decodes the method page's callback example verbatim
// (its signature is truncated on the page, so only decoding is checked).
func TestDecodePageExample(t *testing.T) {
	t.Parallel()
	c, err := monetix.DecodeCallback([]byte(pageCallback))
	if err != nil {
		t.Fatal(err)
	}
	if c.OperationID != "36011000001676" || c.AmountMinor != 10000 || c.PaymentID != "1556624104" || c.ProjectID != "1234" {
		t.Fatalf("%+v", c)
	}
}

// TestOverHTTP runs the whole flow through a real loopback HTTP server with
// the real app over SQLite: verify, check_deposit, callback, redelivery.
func TestOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newSQLiteLedger(t), withMaxBody(4096))
	acc := e.openAccount("johndoe@example.com", "HFVDW42345")
	srv := httptest.NewServer(e.mux)
	t.Cleanup(srv.Close)
	client := &http.Client{Timeout: 10 * time.Second}
	post := func(path string, body []byte, ct string) (int, []byte) {
		t.Helper()
		resp, err := client.Post(srv.URL+path, ct, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, out
	}

	status, out := post(monetix.RequestsPath, sign(t, p1Secret, monetix.VerifyRequestBody(p1ID, "johndoe@example.com")), "application/json; charset=utf-8")
	a, err := monetix.ParseAnswer(out, nil)
	if status != 200 || err != nil || a.Code != 0 || a.AdditionalCustomerID != "HFVDW42345" {
		t.Fatalf("verify: %d %s", status, out)
	}
	status, out = post(monetix.RequestsPath, sign(t, p1Secret, monetix.CheckDepositRequestBody(p1ID, "johndoe@example.com", 150000, "KZT", "kassa24")), "application/json")
	a, err = monetix.ParseAnswer(out, nil)
	if status != 200 || err != nil || a.Code != 0 || a.PaymentID == "" {
		t.Fatalf("check_deposit: %d %s", status, out)
	}
	body := sign(t, p1Secret, cb(a.PaymentID, "success", 150000, bigOperationID))
	for i, want := range []string{`"effect":"credited"`, `"effect":"replay"`} {
		status, out = post(monetix.CallbacksPath, body, "application/json")
		if status != 200 || !strings.Contains(string(out), want) {
			t.Fatalf("callback %d: %d %s", i, status, out)
		}
	}
	if bal := e.balance(acc.ID()); bal != 150000 {
		t.Fatalf("balance %d", bal)
	}
	// Over the wire, an oversized body is cut off at the limit: 413.
	status, _ = post(monetix.CallbacksPath, bytes.Repeat([]byte(" "), 5000), "application/json")
	if status != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized callback: %d", status)
	}
	// Chunked (no Content-Length) oversized body: MaxBytesReader stops it.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+monetix.CallbacksPath, io.MultiReader(strings.NewReader(`{"a":"`), strings.NewReader(strings.Repeat("x", 5000)), strings.NewReader(`"}`)))
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = -1
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked oversized callback: %d", resp.StatusCode)
	}
	status, _ = post(monetix.RequestsPath, sign(t, p1Secret, monetix.VerifyRequestBody(p1ID, "x")), "text/xml")
	if status != 200 {
		t.Fatalf("wrong content type on requests: HTTP %d", status)
	}
}

const pageCallback = `{ "project_id": 1234, "payment": { "id": "1556624104", "type": "purchase", "status": "success", "date": "2024-04-30T11:35:06+0000", "method": "kassa24", "sum": { "amount": 10000, "currency": "KZT" }, "description": "" }, "account": { "number": "6552" }, "operation": { "id": 36011000001676, "type": "sale", "status": "success", "date": "2024-04-30T11:35:06+0000", "created_date": "2024-04-30T11:35:05+0000", "request_id": "cea199572b36a148f0c20d105b0ee0abf737e06e512e8", "sum_initial": { "amount": 10000, "currency": "KZT" }, "sum_converted": { "amount": 10000, "currency": "KZT" }, "provider": { "id": 1217, "payment_id": "2024290410", "auth_code": "" }, "code": "0", "message": "Success" }, "signature": "jvqLGHIaGdHeF68GtTxAtVFCGzkLxOCFU1crar0RmQpLy8Yw==" }`
