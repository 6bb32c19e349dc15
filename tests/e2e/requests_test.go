package e2e_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/tiyn/tiyn/adapters/monetix"
)

// Customers of TestRequestAnswers, opened through the REST API.
const (
	custActive     = "johndoe@example.com"
	custAdditional = "HFVDW42345"
	custBare       = "cust-without-additional-id"
	custBlocked    = "cust-blocked"
	custClosed     = "cust-closed"
	custUnknown    = "cust-nobody"
)

// reqCase is one verify / check_deposit request and the answer it must get.
type reqCase struct {
	name string
	// body is signed for its project_id (or with signWith) unless raw is set.
	body     map[string]any
	signWith []byte
	// raw is sent as is.
	raw         []byte
	contentType string // default application/json
	// tamper changes the signed body before it is sent.
	tamper func(t *testing.T, signed []byte) []byte

	wantCode int
	wantMsg  []string // substrings of errors.message
	// answerSecret, when set, must verify the answer's signature; with
	// unsigned, the answer must carry none.
	answerSecret []byte
	unsigned     bool
	check        func(t *testing.T, s *server, a monetix.Answer)
}

// TestRequestAnswers sends every kind of verify / check_deposit the
// platform (or an impostor) can send to the real process and checks the
// answer code and message of each (docs/architecture.md §2).
func TestRequestAnswers(t *testing.T) {
	t.Parallel()
	verify := func(project, customer string) map[string]any {
		return monetix.VerifyRequestBody(project, customer)
	}
	deposit := func(project, customer string, amount int64) map[string]any {
		return monetix.CheckDepositRequestBody(project, customer, amount, "KZT", "kassa24")
	}
	okDeposit := deposit(projectPlain, custActive, 10_000)
	// depositOpened checks that a code-0 check_deposit opened a pending
	// deposit of the amount, visible through the REST API.
	depositOpened := func(project string, amount int64) func(t *testing.T, s *server, a monetix.Answer) {
		return func(t *testing.T, s *server, a monetix.Answer) {
			if a.PaymentID == "" || a.Description == "" {
				t.Fatalf("check_deposit answer without payment_id or description: %+v", a)
			}
			d := s.deposit(t, a.PaymentID)
			if d.Status != "pending" || d.AmountMinor != amount || d.Currency != "KZT" || d.Project != project ||
				d.Method != "kassa24" || d.CustomerID != custActive {
				t.Fatalf("deposit %+v, want pending %d KZT of %s for project %s", d, amount, custActive, project)
			}
		}
	}
	const limitsText = "1.00–500000.00"

	cases := []reqCase{
		// verify
		{name: "verify ok with additional id", body: verify(projectPlain, custActive), wantCode: 0, unsigned: true,
			check: func(t *testing.T, _ *server, a monetix.Answer) {
				if a.Currency != "KZT" || a.AdditionalCustomerID != custAdditional || a.PaymentID != "" {
					t.Fatalf("verify answer %+v, want currency KZT and additional_customer_id %s", a, custAdditional)
				}
			}},
		{name: "verify ok without additional id", body: verify(projectPlain, custBare), wantCode: 0,
			check: func(t *testing.T, _ *server, a monetix.Answer) {
				if a.Currency != "KZT" || a.AdditionalCustomerID != "" {
					t.Fatalf("verify answer %+v, want currency KZT and no additional_customer_id", a)
				}
			}},
		{name: "verify unknown customer", body: verify(projectPlain, custUnknown), wantCode: 404},
		{name: "verify blocked account", body: verify(projectPlain, custBlocked), wantCode: 500, wantMsg: []string{"blocked"}},
		{name: "verify closed account", body: verify(projectPlain, custClosed), wantCode: 500, wantMsg: []string{"closed"}},
		{name: "verify customer_id as number", body: with(verify(projectPlain, "6552"), json.Number("6552"), "customer_id"),
			wantCode: 500, wantMsg: []string{"customer_id"}},
		{name: "verify customer_id missing", body: without(verify(projectPlain, custActive), "customer_id"),
			wantCode: 500, wantMsg: []string{"customer_id", "missing"}},
		{name: "verify customer_id empty", body: verify(projectPlain, ""), wantCode: 500, wantMsg: []string{"customer_id"}},

		// check_deposit
		{name: "check_deposit ok", body: okDeposit, wantCode: 0, unsigned: true, check: depositOpened(projectPlain, 10_000)},
		{name: "check_deposit minimum 100", body: deposit(projectPlain, custActive, 100), wantCode: 0, check: depositOpened(projectPlain, 100)},
		{name: "check_deposit maximum 50000000", body: deposit(projectPlain, custActive, 50_000_000), wantCode: 0,
			check: depositOpened(projectPlain, 50_000_000)},
		{name: "check_deposit 99 below the limit", body: deposit(projectPlain, custActive, 99), wantCode: 500,
			wantMsg: []string{"0.99", limitsText}},
		{name: "check_deposit 50000001 above the limit", body: deposit(projectPlain, custActive, 50_000_001), wantCode: 500,
			wantMsg: []string{"500000.01", limitsText}},
		{name: "check_deposit zero", body: deposit(projectPlain, custActive, 0), wantCode: 500, wantMsg: []string{"amount"}},
		{name: "check_deposit negative", body: deposit(projectPlain, custActive, -100), wantCode: 500, wantMsg: []string{"amount"}},
		{name: "check_deposit unknown customer", body: deposit(projectPlain, custUnknown, 10_000), wantCode: 404},
		{name: "check_deposit blocked account", body: deposit(projectPlain, custBlocked, 10_000), wantCode: 500, wantMsg: []string{"blocked"}},
		{name: "check_deposit closed account", body: deposit(projectPlain, custClosed, 10_000), wantCode: 500, wantMsg: []string{"closed"}},
		{name: "check_deposit wrong currency", body: with(okDeposit, "USD", "currency"), wantCode: 500, wantMsg: []string{"currency", "USD"}},
		{name: "check_deposit lowercase currency", body: with(okDeposit, "kzt", "currency"), wantCode: 500, wantMsg: []string{"currency"}},
		{name: "check_deposit unknown method", body: with(okDeposit, "visa", "payment_method"), wantCode: 500,
			wantMsg: []string{"payment_method", "visa"}},
		{name: "check_deposit amount as string", body: with(okDeposit, "10000", "amount"), wantCode: 500, wantMsg: []string{"amount"}},
		{name: "check_deposit amount as float", body: with(okDeposit, json.Number("10000.5"), "amount"), wantCode: 500, wantMsg: []string{"amount"}},
		{name: "check_deposit amount with a fraction of zero", body: with(okDeposit, json.Number("10000.0"), "amount"), wantCode: 500,
			wantMsg: []string{"amount"}},
		{name: "check_deposit amount in exponent form", body: with(okDeposit, json.Number("1e4"), "amount"), wantCode: 500,
			wantMsg: []string{"amount"}},
		{name: "check_deposit customer_id as number", body: with(okDeposit, json.Number("6552"), "customer_id"), wantCode: 500,
			wantMsg: []string{"customer_id"}},
		{name: "check_deposit amount missing", body: without(okDeposit, "amount"), wantCode: 500, wantMsg: []string{"amount", "missing"}},
		{name: "check_deposit currency missing", body: without(okDeposit, "currency"), wantCode: 500, wantMsg: []string{"currency", "missing"}},
		{name: "check_deposit payment_method missing", body: without(okDeposit, "payment_method"), wantCode: 500,
			wantMsg: []string{"payment_method", "missing"}},
		{name: "check_deposit customer_id missing", body: without(okDeposit, "customer_id"), wantCode: 500,
			wantMsg: []string{"customer_id", "missing"}},

		// type
		{name: "type missing", body: without(okDeposit, "type"), wantCode: 500, wantMsg: []string{"type", "missing"}},
		{name: "unknown type", body: with(okDeposit, "refund", "type"), wantCode: 500, wantMsg: []string{"type", "refund"}},
		{name: "type as number", body: with(okDeposit, json.Number("1"), "type"), wantCode: 500, wantMsg: []string{"type"}},

		// authentication: 400, never signed, nothing revealed
		{name: "bad signature", body: okDeposit, signWith: []byte("not-the-key"), wantCode: 400, unsigned: true},
		{name: "signature of the other project", body: okDeposit, signWith: []byte(secretSigned), wantCode: 400, unsigned: true},
		{name: "body changed after signing", body: okDeposit, wantCode: 400,
			tamper: func(t *testing.T, b []byte) []byte { return replaceOnce(t, b, `"amount":10000`, `"amount":99000`) }},
		{name: "signature missing", raw: mustJSON(okDeposit), wantCode: 400},
		{name: "signature empty", raw: mustJSON(with(okDeposit, "", "signature")), wantCode: 400},
		{name: "unknown project", body: with(okDeposit, json.Number("4321"), "project_id"), signWith: []byte(secretPlain), wantCode: 400,
			wantMsg: []string{"project"}},
		{name: "project_id missing", body: without(okDeposit, "project_id"), signWith: []byte(secretPlain), wantCode: 400,
			wantMsg: []string{"project_id"}},
		{name: "project_id not an integer", body: with(okDeposit, json.Number("12.5"), "project_id"), signWith: []byte(secretPlain),
			wantCode: 400, wantMsg: []string{"project_id"}},
		{name: "not JSON", raw: []byte(`type=verify&project_id=1234`), wantCode: 400},
		{name: "JSON array", raw: []byte(`[{"type":"verify"}]`), wantCode: 400},
		{name: "empty body", raw: []byte{}, wantCode: 400},

		// transport tolerance and limits
		{name: "charset in content type", body: okDeposit, contentType: "application/json; charset=utf-8", wantCode: 0,
			check: depositOpened(projectPlain, 10_000)},
		{name: "charset upper case", body: verify(projectPlain, custActive), contentType: "Application/JSON;charset=UTF-8", wantCode: 0},
		{name: "unknown fields tolerated", body: with(with(okDeposit, map[string]any{"terminal": json.Number("77"), "tags": []any{"a", true}},
			"extra"), "2024-04-30T11:35:06+0000", "date"), wantCode: 0, check: depositOpened(projectPlain, 10_000)},
		{name: "text/plain refused", body: okDeposit, contentType: "text/plain", wantCode: 500, wantMsg: []string{"content type"}},
		{name: "body over 64 KiB", body: with(okDeposit, strings.Repeat("x", 70<<10), "padding"), wantCode: 500, wantMsg: []string{"larger"}},

		// per-project limits (10.00–100.00 KZT for projectLimited)
		{name: "project limits: below", body: deposit(projectLimited, custActive, limitedMin-1), wantCode: 500,
			wantMsg: []string{"9.99", "10.00–100.00"}},
		{name: "project limits: minimum", body: deposit(projectLimited, custActive, limitedMin), wantCode: 0,
			check: depositOpened(projectLimited, limitedMin)},
		{name: "project limits: maximum", body: deposit(projectLimited, custActive, limitedMax), wantCode: 0,
			check: depositOpened(projectLimited, limitedMax)},
		{name: "project limits: above", body: deposit(projectLimited, custActive, limitedMax+1), wantCode: 500,
			wantMsg: []string{"100.01", "10.00–100.00"}},

		// signed answers (projectSigned): every authenticated answer is
		// signed with that project's key
		{name: "signed answer: verify ok", body: verify(projectSigned, custActive), wantCode: 0, answerSecret: []byte(secretSigned)},
		{name: "signed answer: check_deposit ok", body: deposit(projectSigned, custActive, 20_000), wantCode: 0,
			answerSecret: []byte(secretSigned), check: depositOpened(projectSigned, 20_000)},
		{name: "signed answer: 404", body: verify(projectSigned, custUnknown), wantCode: 404, answerSecret: []byte(secretSigned)},
		{name: "signed answer: 500", body: deposit(projectSigned, custActive, 99), wantCode: 500, wantMsg: []string{limitsText},
			answerSecret: []byte(secretSigned)},
		{name: "signed project, bad signature: answer unsigned", body: verify(projectSigned, custActive), signWith: []byte(secretPlain),
			wantCode: 400, unsigned: true},
	}

	forEachStore(t, func(t *testing.T, s *server) {
		s.openAccount(t, custActive, custAdditional)
		s.openAccount(t, custBare, "")
		blocked := s.openAccount(t, custBlocked, "")
		s.rest(t, http.MethodPost, "/v1/accounts/"+blocked.ID+"/block", nil, http.StatusOK, nil)
		closed := s.openAccount(t, custClosed, "")
		s.rest(t, http.MethodPost, "/v1/accounts/"+closed.ID+"/close", nil, http.StatusOK, nil)

		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				body := tc.raw
				if body == nil {
					if tc.signWith != nil {
						body = signedBody(t, tc.signWith, tc.body)
					} else {
						body = signedFor(t, tc.body)
					}
				}
				if tc.tamper != nil {
					body = tc.tamper(t, body)
				}
				ct := tc.contentType
				if ct == "" {
					ct = contentJSON
				}
				a, x := s.requestAs(t, ct, body)
				if a.Code != tc.wantCode {
					t.Fatalf("code %d, want %d; answer %s", a.Code, tc.wantCode, x.Answer)
				}
				switch {
				case tc.wantCode == 0 && a.Errors != nil:
					t.Fatalf("code 0 with errors: %s", x.Answer)
				case tc.wantCode != 0 && a.Message() == "":
					t.Fatalf("code %d without errors.message: %s", a.Code, x.Answer)
				}
				for _, want := range tc.wantMsg {
					if !strings.Contains(a.Message(), want) {
						t.Errorf("errors.message %q does not mention %q", a.Message(), want)
					}
				}
				if tc.answerSecret != nil {
					if _, err := monetix.ParseAnswer(x.Answer, tc.answerSecret); err != nil {
						t.Errorf("answer signature does not verify with the project's key: %v; answer %s", err, x.Answer)
					}
					// ... and only with that key.
					if _, err := monetix.ParseAnswer(x.Answer, []byte(secretPlain)); !errors.Is(err, monetix.ErrAnswerSignature) {
						t.Errorf("answer signature verifies with another project's key (err %v)", err)
					}
				}
				if tc.unsigned && a.Signature != "" {
					t.Errorf("answer is signed, want no signature: %s", x.Answer)
				}
				if tc.check != nil && !t.Failed() {
					tc.check(t, s, a)
				}
			})
		}
	})
}

// TestRequestAnswersChangeNothing checks that refused check_deposits open
// no deposit: after a burst of refused requests, the deposit list is empty.
func TestRequestAnswersChangeNothing(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *server) {
		s.openAccount(t, custActive, "")
		blocked := s.openAccount(t, custBlocked, "")
		s.rest(t, http.MethodPost, "/v1/accounts/"+blocked.ID+"/block", nil, http.StatusOK, nil)
		ok := monetix.CheckDepositRequestBody(projectPlain, custActive, 10_000, "KZT", "kassa24")
		refused := [][]byte{
			signedFor(t, with(ok, json.Number("99"), "amount")),
			signedFor(t, with(ok, "USD", "currency")),
			signedFor(t, with(ok, "visa", "payment_method")),
			signedFor(t, with(ok, custBlocked, "customer_id")),
			signedFor(t, with(ok, custUnknown, "customer_id")),
			signedBody(t, []byte("wrong key"), ok),
		}
		for _, b := range refused {
			if a, x := s.request(t, b); a.Code == monetix.CodeOK {
				t.Fatalf("refused request answered 0: %s", x.Answer)
			}
		}
		if got := listAll[depositJSON](t, s, "/v1/deposits"); len(got) != 0 {
			t.Fatalf("refused check_deposits opened %d deposits: %+v", len(got), got)
		}
		// The control: the same request, well formed, opens one.
		s.checkDeposit(t, projectPlain, custActive, 10_000)
		if got := listAll[depositJSON](t, s, "/v1/deposits"); len(got) != 1 {
			t.Fatalf("after one good check_deposit: %d deposits, want 1", len(got))
		}
	})
}

// replaceOnce replaces the one occurrence of old in b, failing when there
// is not exactly one.
func replaceOnce(t *testing.T, b []byte, old, new string) []byte {
	t.Helper()
	if n := strings.Count(string(b), old); n != 1 {
		t.Fatalf("%q occurs %d times in %s, want once", old, n, b)
	}
	return []byte(strings.Replace(string(b), old, new, 1))
}

// mustJSON marshals v (maps of plain values cannot fail).
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
