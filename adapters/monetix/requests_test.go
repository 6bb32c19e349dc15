package monetix_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/monetix/signature"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

func TestVerify(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b.make(t))
			e.openAccount("6552", "HFVDW42345")
			e.openAccount("plain", "")
			blocked := e.openAccount("blocked", "")
			e.setStatus(blocked.ID(), domain.AccountBlocked)
			closed := e.openAccount("closed", "")
			e.setStatus(closed.ID(), domain.AccountClosed)

			a := e.request(p1Secret, monetix.VerifyRequestBody(p1ID, "6552"))
			if a.Code != 0 || a.Currency != "KZT" || a.AdditionalCustomerID != "HFVDW42345" {
				t.Fatalf("verify ok: %+v", a)
			}
			// additional_customer_id is left out when the account has none.
			rec := e.post(monetix.RequestsPath, sign(t, p1Secret, monetix.VerifyRequestBody(p1ID, "plain")), "application/json")
			if got := rec.Body.String(); strings.Contains(got, "additional_customer_id") || !strings.Contains(got, `"code":0`) {
				t.Fatalf("verify without additional id: %s", got)
			}
			for _, tc := range []struct {
				customer string
				code     int
				message  string
			}{
				{"nobody", monetix.CodeAccountNotFound, "account does not exist"},
				{"blocked", monetix.CodeGeneralError, "account is blocked"},
				{"closed", monetix.CodeGeneralError, "account is closed"},
				{strings.Repeat("x", domain.MaxCustomerIDLen+1), monetix.CodeGeneralError, "customer_id"},
				{"bad\x01id", monetix.CodeGeneralError, "control character"},
			} {
				a := e.request(p1Secret, monetix.VerifyRequestBody(p1ID, tc.customer))
				if a.Code != tc.code || !strings.Contains(a.Message(), tc.message) {
					t.Errorf("verify %.20q: code %d %q, want %d %q", tc.customer, a.Code, a.Message(), tc.code, tc.message)
				}
			}
			// The same customer through another project: accounts are per
			// merchant, not per project.
			if a := e.request(p2Secret, monetix.VerifyRequestBody(p2ID, "6552")); a.Code != 0 {
				t.Fatalf("verify via project 2: %+v", a)
			}
		})
	}
}

func TestCheckDeposit(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b.make(t))
			acc := e.openAccount("6552", "")
			blocked := e.openAccount("blocked", "")
			e.setStatus(blocked.ID(), domain.AccountBlocked)
			closed := e.openAccount("closed", "")
			e.setStatus(closed.ID(), domain.AccountClosed)

			ok := func(project string, secret []byte, amount int64) string {
				t.Helper()
				a := e.request(secret, monetix.CheckDepositRequestBody(project, "6552", amount, "KZT", "kassa24"))
				if a.Code != 0 || a.PaymentID == "" || a.Description != monetix.Kassa24.Description {
					t.Fatalf("check_deposit %d via %s: %+v %q", amount, project, a, a.Message())
				}
				return a.PaymentID
			}
			id := ok(p1ID, p1Secret, 10000)
			dep := e.deposit(id)
			wantCh := domain.Channel{Provider: "monetix", Method: "kassa24", Project: p1ID}
			if dep.Channel != wantCh || dep.Amount != domain.NewAmount(10000, domain.KZT) ||
				dep.Status != domain.DepositPending || dep.AccountID != acc.ID() {
				t.Fatalf("deposit %+v", dep)
			}
			if id2 := ok(p1ID, p1Secret, 10000); id2 == id {
				t.Fatalf("two check_deposits got the same payment id %s", id)
			}
			// The limits of kassa24: 1.00–500,000.00 KZT inclusive.
			ok(p1ID, p1Secret, 100)
			ok(p1ID, p1Secret, 50_000_000)
			// Project 3 has its own limits 5.00–10.00.
			ok(p3ID, p3Secret, 500)
			ok(p3ID, p3Secret, 1000)

			for _, tc := range []struct {
				name     string
				secret   []byte
				body     map[string]any
				code     int
				message  string
				unsigned bool
			}{
				{"below min", p1Secret, monetix.CheckDepositRequestBody(p1ID, "6552", 99, "KZT", "kassa24"),
					500, "amount 0.99 KZT is outside the limits 1.00–500000.00 KZT", false},
				{"above max", p1Secret, monetix.CheckDepositRequestBody(p1ID, "6552", 50_000_001, "KZT", "kassa24"),
					500, "amount 500000.01 KZT is outside the limits 1.00–500000.00 KZT", false},
				{"project below min", p3Secret, monetix.CheckDepositRequestBody(p3ID, "6552", 499, "KZT", "kassa24"),
					500, "amount 4.99 KZT is outside the limits 5.00–10.00 KZT", false},
				{"project above max", p3Secret, monetix.CheckDepositRequestBody(p3ID, "6552", 1001, "KZT", "kassa24"),
					500, "amount 10.01 KZT is outside the limits 5.00–10.00 KZT", false},
				{"unknown customer", p1Secret, monetix.CheckDepositRequestBody(p1ID, "nobody", 10000, "KZT", "kassa24"),
					404, "account does not exist", false},
				{"blocked", p1Secret, monetix.CheckDepositRequestBody(p1ID, "blocked", 10000, "KZT", "kassa24"),
					500, "account is blocked", false},
				{"closed", p1Secret, monetix.CheckDepositRequestBody(p1ID, "closed", 10000, "KZT", "kassa24"),
					500, "account is closed", false},
				{"registered other currency", p1Secret, monetix.CheckDepositRequestBody(p1ID, "6552", 10000, "USD", "kassa24"),
					500, "currency USD is not accepted by payment method kassa24 (KZT only)", false},
				{"unknown currency", p1Secret, monetix.CheckDepositRequestBody(p1ID, "6552", 10000, "XYZ", "kassa24"),
					500, "currency XYZ is not supported", false},
				{"unknown method", p1Secret, monetix.CheckDepositRequestBody(p1ID, "6552", 10000, "KZT", "qiwi"),
					500, `payment_method "qiwi" is not supported`, false},
				// One rule for case everywhere, as for "type": the platform spells it kassa24.
				{"method in capitals", p1Secret, monetix.CheckDepositRequestBody(p1ID, "6552", 10000, "KZT", "KASSA24"),
					500, `payment_method "KASSA24" is not supported`, false},
			} {
				a := e.request(tc.secret, tc.body)
				if a.Code != tc.code || a.Message() != tc.message {
					t.Errorf("%s: code %d %q, want %d %q", tc.name, a.Code, a.Message(), tc.code, tc.message)
				}
			}
			if e.fake != nil {
				// Refusals the adapter can decide never reach the ledger; the
				// ones that need an account do.
				for _, o := range e.fake.opens {
					if o.Amount.Minor() == 99 || o.Amount.Currency() != domain.KZT || o.Channel.Method != "kassa24" {
						t.Errorf("ledger asked to open %+v", o)
					}
				}
			}
		})
	}
}

// TestCheckDepositPassesLimitsAndChannel checks exactly what the ledger is
// asked for: the project's channel and the project's or the method's limits.
func TestCheckDepositPassesLimitsAndChannel(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t)
	e.openAccount("6552", "")
	e.request(p1Secret, monetix.CheckDepositRequestBody(p1ID, "6552", 700, "KZT", "kassa24"))
	e.request(p3Secret, monetix.CheckDepositRequestBody(p3ID, "6552", 700, "KZT", "kassa24"))
	if len(e.fake.opens) != 2 {
		t.Fatalf("opens: %d", len(e.fake.opens))
	}
	for i, want := range []struct {
		project string
		limits  domain.AmountLimits
	}{{p1ID, monetix.Kassa24.Limits}, {p3ID, domain.AmountLimits{MinMinor: 500, MaxMinor: 1000}}} {
		got := e.fake.opens[i]
		if got.Channel != (domain.Channel{Provider: "monetix", Method: "kassa24", Project: want.project}) ||
			got.Limits != want.limits || got.CustomerID != "6552" || got.Amount != domain.NewAmount(700, domain.KZT) {
			t.Errorf("open %d: %+v", i, got)
		}
	}
}

func TestRequestFieldTypes(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t)
	e.openAccount("6552", "")
	good := func() map[string]any {
		return monetix.CheckDepositRequestBody(p1ID, "6552", 10000, "KZT", "kassa24")
	}
	verify := func() map[string]any { return monetix.VerifyRequestBody(p1ID, "6552") }
	num := func(s string) json.Number { return json.Number(s) }
	for _, tc := range []struct {
		name    string
		body    map[string]any
		code    int
		message string // substring
	}{
		{"good", good(), 0, ""},
		{"amount fraction", set(good(), "amount", num("100.5")), 500, "amount must be an integer number of minor units"},
		{"amount integral fraction", set(good(), "amount", num("10000.0")), 500, "amount must be an integer"},
		{"amount exponent", set(good(), "amount", num("1e2")), 500, "amount must be an integer"},
		{"amount string", set(good(), "amount", "10000"), 500, "amount must be an integer number of minor units, got a string"},
		{"amount negative", set(good(), "amount", -5), 500, "amount -0.05 KZT is outside the limits 1.00–500000.00 KZT"},
		{"amount zero", set(good(), "amount", 0), 500, "amount 0.00 KZT is outside the limits 1.00–500000.00 KZT"},
		{"amount overflow", set(good(), "amount", num("9223372036854775808")), 500, "amount is out of range"},
		{"amount bool", set(good(), "amount", true), 500, "got a boolean"},
		{"amount null", set(good(), "amount", nil), 500, "amount is missing"},
		{"amount missing", set(good(), "amount", removed), 500, "amount is missing"},
		{"customer number", set(good(), "customer_id", 6552), 500, "customer_id must be a string, got a number"},
		{"customer object", set(good(), "customer_id", map[string]any{"id": "x"}), 500, "customer_id must be a string"},
		{"customer empty", set(good(), "customer_id", ""), 500, "customer_id is empty"},
		{"customer missing", set(good(), "customer_id", removed), 500, "customer_id is missing"},
		{"verify customer number", set(verify(), "customer_id", 6552), 500, "customer_id must be a string"},
		{"verify customer missing", set(verify(), "customer_id", removed), 500, "customer_id is missing"},
		{"currency number", set(good(), "currency", 398), 500, "currency must be a string"},
		{"currency lower case", set(good(), "currency", "kzt"), 500, "currency must be an ISO 4217 alpha-3 code"},
		{"currency missing", set(good(), "currency", removed), 500, "currency is missing"},
		{"method number", set(good(), "payment_method", 24), 500, "payment_method must be a string"},
		{"method missing", set(good(), "payment_method", removed), 500, "payment_method is missing"},
		{"type missing", set(good(), "type", removed), 500, "type is missing"},
		{"type number", set(good(), "type", 1), 500, "type must be a string"},
		{"type unknown", set(good(), "type", "refund"), 500, `type "refund" is not a known request type`},
		{"type wrong case", set(good(), "type", "VERIFY"), 500, "is not a known request type"},
		// project_id: the signature cannot be checked without a project.
		{"project digit string", set(good(), "project_id", p1ID), 0, ""},
		{"project missing", set(good(), "project_id", removed), 400, "project_id is missing"},
		{"project null", set(good(), "project_id", nil), 400, "project_id is missing"},
		{"project word", set(good(), "project_id", "abc"), 400, "project_id must be a positive integer"},
		{"project fraction", set(good(), "project_id", num("1234.0")), 400, "project_id must be a positive integer"},
		{"project negative", set(good(), "project_id", num("-1234")), 400, "project_id must be a positive integer"},
		{"project leading zero", set(good(), "project_id", "01234"), 400, "project_id must be a positive integer"},
		{"project bool", set(good(), "project_id", true), 400, "project_id must be an integer, got a boolean"},
		{"project unknown", set(good(), "project_id", num("99")), 400, "unknown project"},
		{"unknown fields tolerated", set(set(good(), "extra", map[string]any{"nested": []any{1, "two", nil}}), "frame_mode", "popup"), 0, ""},
	} {
		a := e.request(p1Secret, tc.body)
		if a.Code != tc.code || !strings.Contains(a.Message(), tc.message) {
			t.Errorf("%s: code %d %q, want %d %q", tc.name, a.Code, a.Message(), tc.code, tc.message)
		}
	}
}

func TestRequestAuthentication(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t)
	e.openAccount("6552", "")
	body := monetix.VerifyRequestBody(p1ID, "6552")
	signed := sign(t, p1Secret, body)

	tampered := strings.Replace(string(signed), `"6552"`, `"6553"`, 1)
	otherProjectKey := sign(t, p2Secret, body) // signed with project 2's key, claims project 1
	var doc map[string]any
	if err := json.Unmarshal(signed, &doc); err != nil {
		t.Fatal(err)
	}
	delete(doc, "signature")
	unsigned, _ := json.Marshal(doc)
	doc["signature"] = 12345
	numericSig, _ := json.Marshal(doc)
	doc["signature"] = "bm90IGEgc2lnbmF0dXJl"
	shortSig, _ := json.Marshal(doc)

	for _, tc := range []struct {
		name    string
		body    string
		code    int
		reason  string
		message string
	}{
		{"valid", string(signed), 0, "", ""},
		{"tampered", tampered, 400, monetix.ReasonBadSignature, "invalid signature"},
		{"other project's key", string(otherProjectKey), 400, monetix.ReasonBadSignature, "invalid signature"},
		{"no signature", string(unsigned), 400, monetix.ReasonBadSignature, "invalid signature"},
		{"numeric signature", string(numericSig), 400, monetix.ReasonBadSignature, "invalid signature"},
		{"short signature", string(shortSig), 400, monetix.ReasonBadSignature, "invalid signature"},
		{"not json", `{"type":"verify",`, 400, monetix.ReasonMalformed, "malformed request"},
		{"array", `[1,2]`, 400, monetix.ReasonMalformed, "malformed request"},
		{"empty", ``, 400, monetix.ReasonMalformed, "malformed request"},
		{"trailing data", string(signed) + `{}`, 400, monetix.ReasonMalformed, "malformed request"},
		{"invalid utf-8", "{\"type\":\"verify\",\"customer_id\":\"\xff\"}", 400, monetix.ReasonMalformed, "malformed request"},
	} {
		a := e.requestRaw([]byte(tc.body), "application/json")
		if a.Code != tc.code || !strings.Contains(a.Message(), tc.message) {
			t.Errorf("%s: code %d %q, want %d %q", tc.name, a.Code, a.Message(), tc.code, tc.message)
		}
	}
	// Each rejection is counted with its reason.
	for reason, want := range map[string]float64{monetix.ReasonBadSignature: 5, monetix.ReasonMalformed: 5} {
		if got := counterValue(t, e.reg, "tiyn_monetix_rejected_total", map[string]string{"endpoint": "requests", "reason": reason}); got != want {
			t.Errorf("rejected{%s} = %v, want %v", reason, got, want)
		}
	}
	if got := counterValue(t, e.reg, "tiyn_monetix_requests_total", map[string]string{"type": "verify", "code": "400"}); got != 5 {
		t.Errorf("requests{verify,400} = %v, want 5", got)
	}
}

// TestRequestVectors feeds the independently computed vectors of
// docs/protocol.md §2 (V1 verify, V2 check_deposit, V8 unicode
// customer id, literally and with \u escapes) to the endpoint.
func TestRequestVectors(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t)
	e.openAccount("6552", "")
	e.openAccount("Қазақ-ü€😀", "")
	for _, tc := range []struct{ name, body string }{
		{"V1", `{"type":"verify","project_id":1234,"customer_id":"6552","signature":"l5Y5swL0JoQyieDAJQsN7m30SgXxeq38hlK1lE6orgB+K8HYKuSOL3YhT4gsZGzARjH37+gP2IGdjrVKODxA8g=="}`},
		{"V2", `{"type":"check_deposit","project_id":1234,"customer_id":"6552","amount":10000,"currency":"KZT","payment_method":"kassa24","signature":"cyIjHaKMvmAfuWL6bLXFf7BhESBLDCrV9sNOYnwQ/o5vy1PI7h/A4jtzxLTJW93HDt8ivXFuaCP7h+i3XszNhA=="}`},
		{"V8", `{"type":"verify","project_id":1234,"customer_id":"Қазақ-ü€😀","signature":"ucEIWbF9n0+KPw+muFoKLnLy4iLfh439XvfzGRypfnYcwCKKzDHZOyX65LikuaaRSUbtInvOBUlYg7dOx/5Ceg=="}`},
		{"V8 escaped", `{"type":"verify","project_id":1234,"customer_id":"\u049a\u0430\u0437\u0430\u049b-\u00fc\u20ac\ud83d\ude00","signature":"ucEIWbF9n0+KPw+muFoKLnLy4iLfh439XvfzGRypfnYcwCKKzDHZOyX65LikuaaRSUbtInvOBUlYg7dOx/5Ceg=="}`},
	} {
		if a := e.requestRaw([]byte(tc.body), "application/json"); a.Code != 0 {
			t.Errorf("%s: code %d %q", tc.name, a.Code, a.Message())
		}
	}
	// One changed character in V1's signature is refused.
	bad := `{"type":"verify","project_id":1234,"customer_id":"6552","signature":"m5Y5swL0JoQyieDAJQsN7m30SgXxeq38hlK1lE6orgB+K8HYKuSOL3YhT4gsZGzARjH37+gP2IGdjrVKODxA8g=="}`
	if a := e.requestRaw([]byte(bad), "application/json"); a.Code != 400 {
		t.Fatalf("altered V1: code %d", a.Code)
	}
}

func TestRequestContentType(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t)
	e.openAccount("6552", "")
	body := sign(t, p1Secret, monetix.VerifyRequestBody(p1ID, "6552"))
	for _, tc := range []struct {
		ct   string
		code int
	}{
		{"application/json", 0},
		{"application/json; charset=utf-8", 0},
		{"application/json;charset=UTF-8", 0},
		{"APPLICATION/JSON; Charset=\"utf-8\"", 0},
		{"Application/Json;charset=utf8", 0},
		{"", 0}, // no header: the body is JSON and authenticated anyway
		{"text/plain", 500},
		{"application/x-www-form-urlencoded", 500},
		{"application/json; charset=windows-1251", 500},
		{"application/jsonp", 500},
		{"application/json; charset", 500}, // unparseable
	} {
		a := e.requestRaw(body, tc.ct)
		if a.Code != tc.code {
			t.Errorf("Content-Type %q: code %d %q, want %d", tc.ct, a.Code, a.Message(), tc.code)
		}
		if tc.code == 500 && a.Message() != "unsupported content type" {
			t.Errorf("Content-Type %q: message %q", tc.ct, a.Message())
		}
	}
}

func TestRequestBodyLimit(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t, withMaxBody(512))
	e.openAccount("6552", "")
	small := monetix.VerifyRequestBody(p1ID, "6552")
	if a := e.request(p1Secret, small); a.Code != 0 {
		t.Fatalf("small body: %+v", a)
	}
	big := set(monetix.VerifyRequestBody(p1ID, "6552"), "padding", strings.Repeat("x", 600))
	a := e.request(p1Secret, big)
	if a.Code != 500 || a.Message() != "body larger than 512 bytes" {
		t.Fatalf("big body: code %d %q", a.Code, a.Message())
	}
	if got := counterValue(t, e.reg, "tiyn_monetix_rejected_total", map[string]string{"endpoint": "requests", "reason": "too_large"}); got != 1 {
		t.Fatalf("too_large counted %v times", got)
	}
}

func TestSignedAnswers(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t)
	e.openAccount("6552", "ADD-1")
	for _, tc := range []struct {
		name string
		body map[string]any
		code int
	}{
		{"verify", monetix.VerifyRequestBody(p3ID, "6552"), 0},
		{"check_deposit", monetix.CheckDepositRequestBody(p3ID, "6552", 700, "KZT", "kassa24"), 0},
		{"not found", monetix.VerifyRequestBody(p3ID, "nobody"), 404},
		{"limits", monetix.CheckDepositRequestBody(p3ID, "6552", 10_000, "KZT", "kassa24"), 500},
	} {
		rec := e.post(monetix.RequestsPath, sign(t, p3Secret, tc.body), "application/json")
		a, err := monetix.ParseAnswer(rec.Body.Bytes(), p3Secret)
		if err != nil || a.Code != tc.code || a.Signature == "" {
			t.Errorf("%s: %+v %v (%s)", tc.name, a, err, rec.Body)
		}
		// The signature is over the answer: another key or a changed answer fails.
		if _, err := monetix.ParseAnswer(rec.Body.Bytes(), p1Secret); !isSignatureErr(err) {
			t.Errorf("%s: answer verified with another project's key: %v", tc.name, err)
		}
		changed := strings.Replace(rec.Body.String(), `"code":`+itoa(tc.code), `"code":`+itoa(tc.code+1), 1)
		if _, err := monetix.ParseAnswer([]byte(changed), p3Secret); !isSignatureErr(err) {
			t.Errorf("%s: changed answer still verifies: %v", tc.name, err)
		}
	}
	// A forged request for the signing project gets an unsigned 400: the
	// endpoint is no signing oracle.
	forged := sign(t, p1Secret, monetix.VerifyRequestBody(p3ID, "6552"))
	rec := e.post(monetix.RequestsPath, forged, "application/json")
	if a, err := monetix.ParseAnswer(rec.Body.Bytes(), nil); err != nil || a.Code != 400 || a.Signature != "" {
		t.Fatalf("forged request: %s %v", rec.Body, err)
	}
	// Projects without SignAnswers answer without a signature.
	rec = e.post(monetix.RequestsPath, sign(t, p1Secret, monetix.VerifyRequestBody(p1ID, "6552")), "application/json")
	if strings.Contains(rec.Body.String(), "signature") {
		t.Fatalf("unsigned project answered with a signature: %s", rec.Body)
	}
}

func TestRequestLedgerFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		err     error
		code    int
		message string
	}{
		{"unavailable", ports.ErrUnavailable, 500, "service temporarily unavailable, try again later"},
		{"unexpected", errString("disk on fire"), 500, "internal error"},
		{"not found", ports.ErrNotFound, 404, "account does not exist"},
	} {
		e := newFakeEnv(t)
		e.openAccount("6552", "")
		e.fake.verifyErr, e.fake.openErr = tc.err, tc.err
		for _, body := range []map[string]any{
			monetix.VerifyRequestBody(p1ID, "6552"),
			monetix.CheckDepositRequestBody(p1ID, "6552", 10000, "KZT", "kassa24"),
		} {
			a := e.request(p1Secret, body)
			if a.Code != tc.code || a.Message() != tc.message {
				t.Errorf("%s %s: code %d %q, want %d %q", tc.name, body["type"], a.Code, a.Message(), tc.code, tc.message)
			}
			if strings.Contains(a.Message(), "disk") {
				t.Errorf("%s: internal error text leaked: %q", tc.name, a.Message())
			}
		}
	}
}

func TestRequestsMethodNotAllowed(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t)
	for _, path := range []string{monetix.RequestsPath, monetix.CallbacksPath} {
		req, _ := http.NewRequest(http.MethodGet, path, nil)
		rec := newRecorder()
		e.mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("GET %s: %d", path, rec.Code)
		}
		// Called directly (not through Register's mux), the handler refuses too.
		rec = newRecorder()
		if path == monetix.RequestsPath {
			e.h.ServeRequests(rec, req)
		} else {
			e.h.ServeCallbacks(rec, req)
		}
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != http.MethodPost {
			t.Errorf("direct GET %s: %d %v", path, rec.Code, rec.Header())
		}
	}
}

func isSignatureErr(err error) bool {
	return err != nil && isErrIs(err, monetix.ErrAnswerSignature) && isErrIs(err, signature.ErrInvalidSignature)
}
