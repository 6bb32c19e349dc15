package monetix_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/monetix/signature"
	"github.com/tiyn/tiyn/domain"
)

var fuzzSeeds = []string{
	pageCallback,
	`{"type":"verify","project_id":1234,"customer_id":"6552","signature":"l5Y5swL0JoQyieDAJQsN7m30SgXxeq38hlK1lE6orgB+K8HYKuSOL3YhT4gsZGzARjH37+gP2IGdjrVKODxA8g=="}`,
	`{"type":"check_deposit","project_id":"1234","customer_id":"6552","amount":10000,"currency":"KZT","payment_method":"kassa24"}`,
	`{"type":"check_deposit","project_id":1234,"customer_id":6552,"amount":1e2,"currency":"KZT","payment_method":"kassa24"}`,
	`{"project_id":1234,"payment":{"id":"p","status":"decline","sum":{"amount":0,"currency":"KZT"}},"operation":{"id":"op-1","status":"decline"}}`,
	`{"project_id":1234,"payment":{"id":"p","status":"success","sum":{"amount":-1,"currency":"KZT"}},"operation":{"id":1.5,"status":"success"}}`,
	`{"project_id":99999999999999999999,"payment":null,"operation":[]}`,
	`{"a":{"b":{"c":[1,2,{"d":null}]}}}`,
	`[]`, `null`, ``, `{`, `{"project_id":01}`,
}

// checkCallback asserts what an accepted callback guarantees to the handler.
func checkCallback(t *testing.T, body []byte, c monetix.Callback) {
	t.Helper()
	if _, ok := monetix.CanonicalProjectID(c.ProjectID); !ok {
		t.Fatalf("accepted project id %q", c.ProjectID)
	}
	if c.PaymentID == "" || len(c.PaymentID) > monetix.MaxPaymentIDLen || c.PaymentStatus == "" ||
		c.OperationStatus == "" || len(c.PaymentStatus) > monetix.MaxStatusLen || len(c.OperationStatus) > monetix.MaxStatusLen {
		t.Fatalf("accepted texts %+v", c)
	}
	// Any currency text is kept (the ledger compares it with the deposit's),
	// bounded and without control characters.
	if c.AmountMinor < 0 || len(c.Currency) > monetix.MaxWireTextLen || strings.ContainsFunc(c.Currency, unicode.IsControl) {
		t.Fatalf("accepted sum %+v", c)
	}
	if c.OperationID == "" || len(c.OperationID) > monetix.MaxOperationIDLen {
		t.Fatalf("accepted operation id %q", c.OperationID)
	}
	// The types in the document are the ones the fields claim.
	doc, err := signature.Decode(body)
	if err != nil {
		t.Fatalf("accepted a body Decode refuses: %v", err)
	}
	payment := doc["payment"].(map[string]any)
	if _, ok := payment["id"].(string); !ok {
		t.Fatalf("payment.id is %T", payment["id"])
	}
	sum := payment["sum"].(map[string]any)
	if n, ok := sum["amount"].(json.Number); !ok || string(n) != itoa64(c.AmountMinor) && string(n) != "-0" {
		t.Fatalf("payment.sum.amount is %T %v, decoded %d", sum["amount"], sum["amount"], c.AmountMinor)
	}
	switch v := doc["operation"].(map[string]any)["id"].(type) {
	case json.Number:
		if string(v) != c.OperationID {
			t.Fatalf("operation.id %s decoded as %q", v, c.OperationID)
		}
	case string:
		if v != c.OperationID {
			t.Fatalf("operation.id %q decoded as %q", v, c.OperationID)
		}
	default:
		t.Fatalf("operation.id is %T", v)
	}
	kind, _ := monetix.Classify(c)
	switch kind {
	case domain.OutcomeSuccess, domain.OutcomeDecline, domain.OutcomeIntermediate, domain.OutcomeReversal:
	default:
		t.Fatalf("Classify gave %v", kind)
	}
}

func FuzzCallbackDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := monetix.DecodeCallback(body)
		if err != nil {
			if c != (monetix.Callback{}) {
				t.Fatalf("error %v with a partial callback %+v", err, c)
			}
			return
		}
		checkCallback(t, body, c)
	})
}

func FuzzRequestDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := monetix.DecodeRequest(body)
		if err != nil {
			if r != (monetix.Request{}) {
				t.Fatalf("error %v with a partial request %+v", err, r)
			}
			return
		}
		if _, ok := monetix.CanonicalProjectID(r.ProjectID); !ok || r.CustomerID == "" {
			t.Fatalf("accepted %+v", r)
		}
		doc, _ := signature.Decode(body)
		if _, ok := doc["customer_id"].(string); !ok {
			t.Fatalf("customer_id is %T", doc["customer_id"])
		}
		switch r.Type {
		case monetix.TypeVerify:
			if r.AmountMinor != 0 || r.Currency != "" || r.PaymentMethod != "" {
				t.Fatalf("verify with deposit fields %+v", r)
			}
		case monetix.TypeCheckDeposit:
			n, ok := doc["amount"].(json.Number)
			if !ok || r.AmountMinor <= 0 || string(n) != itoa64(r.AmountMinor) {
				t.Fatalf("amount %T %v decoded as %d", doc["amount"], doc["amount"], r.AmountMinor)
			}
			if len(r.Currency) != 3 || strings.ToUpper(r.Currency) != r.Currency || r.PaymentMethod == "" {
				t.Fatalf("accepted %+v", r)
			}
		default:
			t.Fatalf("accepted type %q", r.Type)
		}
	})
}

// FuzzServeCallbacks throws arbitrary bodies at the endpoint: it never
// panics, and a body that does not authenticate never reaches the ledger;
// one that does always does (settled, or kept as unreadable).
func FuzzServeCallbacks(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Add(sign(f, p1Secret, map[string]any{"project_id": 1234, "payment": map[string]any{"id": 5}}))
	f.Fuzz(func(t *testing.T, body []byte) {
		e := newFakeEnv(t)
		status, _ := e.callbackRaw(body, "application/json")
		reached := len(e.fake.settles) + len(e.fake.unreadable)
		if !authentic(body) {
			if status == 200 || reached != 0 {
				t.Fatalf("unsigned body accepted: HTTP %d, reached the ledger %d times", status, reached)
			}
		} else if status != 200 || reached != 1 {
			t.Fatalf("authentic body not kept: HTTP %d, reached the ledger %d times", status, reached)
		}
		a := e.requestRaw(body, "application/json")
		if a.Code == 0 || len(e.fake.opens) != 0 {
			t.Fatalf("unsigned request accepted: %+v", a)
		}
	})
}

func itoa64(i int64) string { return strconv.FormatInt(i, 10) }

// authentic reports whether body is a JSON object whose signature verifies
// with its (configured) project's key.
func authentic(body []byte) bool {
	doc, err := signature.Decode(body)
	if err != nil {
		return false
	}
	pid, err := monetix.ProjectIDOf(doc)
	if err != nil {
		return false
	}
	for _, p := range testProjects() {
		if p.ID == pid {
			return signature.Verify(p.Secret, doc) == nil
		}
	}
	return false
}

func BenchmarkDecodeCallback(b *testing.B) {
	body := sign(b, p1Secret, cb("dep_01jd8r5m6a1b2c3d4e5f6g7h8j", "success", 10000, bigOperationID))
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := monetix.DecodeCallback(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyAndDecodeCallback is the full per-callback work before the
// ledger: decode, verify the HMAC, read the typed fields.
func BenchmarkVerifyAndDecodeCallback(b *testing.B) {
	body := sign(b, p1Secret, cb("dep_01jd8r5m6a1b2c3d4e5f6g7h8j", "success", 10000, bigOperationID))
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		doc, err := signature.VerifyBody(p1Secret, body)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := monetix.ParseCallback(doc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServeCallbackReplay is one HTTP callback through the handler
// against the in-memory fake (a replay after the first): the adapter's
// overhead without a database.
func BenchmarkServeCallbackReplay(b *testing.B) {
	e := newFakeEnv(b)
	e.openAccount("6552", "")
	id := e.checkDeposit("6552", 10000)
	body := sign(b, p1Secret, cb(id, "success", 10000, bigOperationID))
	b.ReportAllocs()
	for b.Loop() {
		e.fake.mu.Lock()
		e.fake.settles, e.fake.inbox = e.fake.settles[:0], e.fake.inbox[:0]
		e.fake.mu.Unlock()
		if rec := e.post(monetix.CallbacksPath, body, "application/json"); rec.Code != 200 {
			b.Fatalf("HTTP %d %s", rec.Code, rec.Body)
		}
	}
}
