package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
	"github.com/tiyn/tiyn/tests/testkit"
)

// The fuzz targets drive the whole REST handler over a real SQLite store,
// built once per fuzzing process (the targets' inputs run one after the
// other in a process, so a target may keep a model of what it did). They
// check what must hold for any input: no 5xx, every error in the one JSON
// shape with a documented code, and nothing stored other than it was sent.

// fuzzFundMinor is what the debit target's account holds at the start:
// the kassa24 maximum of one payment, 500,000.00 KZT.
const fuzzFundMinor = 50_000_000

// fuzzAPI is one fuzzing process's handler and ledger.
type fuzzAPI struct {
	h   http.Handler
	svc *app.Service
}

func newFuzzAPI(f *testing.F) *fuzzAPI {
	f.Helper()
	store := testkit.OpenSQLite(f, sqlstore.Options{})
	tokens, err := rest.ParseTokens(writeName + ":operator:" + writeSecret + "," + readName + ":read:" + readSecret)
	if err != nil {
		f.Fatalf("tokens: %v", err)
	}
	svc := app.NewService(store, system.Clock{}, &system.IDs{})
	return &fuzzAPI{svc: svc, h: rest.New(svc, rest.Options{Tokens: tokens, Logger: slog.New(slog.DiscardHandler)})}
}

// do sends one request with the write token. target must be a valid
// request URI.
func (a *fuzzAPI) do(method, target, contentType string, body []byte, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/", bytes.NewReader(body))
	u, err := url.ParseRequestURI(target)
	if err != nil {
		panic("fuzz: bad target " + target)
	}
	req.URL, req.RequestURI = u, target
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+writeSecret)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	return rec
}

// account opens (or finds) a customer's account directly through the ledger.
func (a *fuzzAPI) account(f *testing.F, customerID string) domain.Account {
	f.Helper()
	res, err := a.svc.OpenAccount(context.Background(), ports.OpenAccount{CustomerID: customerID, Currency: domain.KZT, Actor: "fuzz"})
	if err != nil {
		f.Fatalf("open account: %v", err)
	}
	return res.Account
}

// fund credits a customer through a deposit and a success callback.
func (a *fuzzAPI) fund(f *testing.F, customerID string, minor int64) {
	f.Helper()
	ctx := context.Background()
	dep, err := a.svc.OpenDeposit(ctx, ports.OpenDeposit{Channel: testChannel, CustomerID: customerID,
		Amount: domain.NewAmount(minor, domain.KZT), Limits: testLimits})
	if err != nil {
		f.Fatalf("open deposit: %v", err)
	}
	res, err := a.svc.SettleDeposit(ctx, ports.SettleDeposit{Channel: testChannel, PaymentID: dep.PaymentID,
		Outcome: domain.Outcome{Method: "kassa24", Kind: domain.OutcomeSuccess, Status: "success", OperationID: "op-" + dep.PaymentID, Amount: dep.Amount},
		RawBody: `{}`, ReceivedAt: time.Now().UTC()})
	if err != nil || res.Effect != domain.EffectCredit {
		f.Fatalf("settle: %v %v", res.Effect, err)
	}
}

// checkAnswer asserts what every answer promises: a status the route
// documents (allowed), never a 5xx, JSON, and for errors the one error
// shape with a documented code.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, allowed ...int) {
	t.Helper()
	if rec.Code >= 500 || !slices.Contains(allowed, rec.Code) {
		t.Fatalf("status %d (allowed %v): %s", rec.Code, allowed, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if rec.Code < 400 {
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("answer is not JSON: %q", rec.Body.String())
		}
		return
	}
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Message == "" || !slices.Contains(rest.ErrorCodes(), e.Error.Code) {
		t.Fatalf("error answer %d not in the documented shape: %s", rec.Code, rec.Body.String())
	}
}

// mayHoldReplacement reports whether a body could legitimately carry
// U+FFFD: literally or as an escape. Anything else that comes back with
// U+FFFD was altered on the way in.
func mayHoldReplacement(body []byte) bool {
	return bytes.Contains(body, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`))
}

var openAccountSeeds = []struct {
	body, contentType string
}{
	{`{"customer_id":"fz-1"}`, "application/json"},
	{`{"customer_id":"fz-2","currency":"KZT","additional_customer_id":"x"}`, "application/json; charset=utf-8"},
	{`{"customer_id":"fz-\ud83d\ude00"}`, "application/json"},
	{`{"customer_id":"fz-\ud800"}`, "application/json"},
	{"{\"customer_id\":\"fz-\xff\"}", "application/json"},
	{`{"customer_id":6552}`, ""},
	{`{"customer_id":"a","customer_id":"b"}`, "application/json"},
	{`{"customer_id":"fz-3"} {}`, "application/json"},
	{`[]`, "application/json"},
	{`null`, "application/json"},
	{``, "application/json"},
	{`{"customer_id":"fz-4"}`, "text/plain"},
	{"\xef\xbb\xbf{\"customer_id\":\"fz-5\"}", "application/json"},
	{`{"customer_id":"\u0000"}`, "application/json"},
}

// FuzzOpenAccountBody posts any body with any Content-Type to
// POST /v1/accounts. An opened account's customer id is exactly what was
// sent: never a U+FFFD the decoder substituted for invalid UTF-8 or an
// unpaired surrogate. An accepted body has no duplicate key and names
// only the request's fields, spelled exactly. (409: the customer's
// account exists with another additional id.)
func FuzzOpenAccountBody(f *testing.F) {
	for _, s := range openAccountSeeds {
		f.Add([]byte(s.body), s.contentType)
	}
	api := newFuzzAPI(f)
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		rec := api.do(http.MethodPost, "/v1/accounts", contentType, body)
		checkAnswer(t, rec, http.StatusOK, http.StatusCreated, http.StatusBadRequest, http.StatusConflict,
			http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType)
		if rec.Code >= 300 {
			return
		}
		if !utf8.Valid(body) {
			t.Fatalf("accepted a body that is not UTF-8: %q", body)
		}
		if keys, ok := topLevelKeys(body); !ok {
			t.Fatalf("accepted a body with a duplicate or unknown key: %q (keys %q)", body, keys)
		}
		var acc struct {
			CustomerID           string  `json:"customer_id"`
			AdditionalCustomerID *string `json:"additional_customer_id"`
			BalanceMinor         int64   `json:"balance_minor"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &acc); err != nil {
			t.Fatalf("account: %v", err)
		}
		add := ""
		if acc.AdditionalCustomerID != nil {
			add = *acc.AdditionalCustomerID
		}
		if strings.ContainsRune(acc.CustomerID+add, utf8.RuneError) && !mayHoldReplacement(body) {
			t.Fatalf("stored %q for a body without U+FFFD: %q", acc.CustomerID+"/"+add, body)
		}
		if err := domain.ValidateCustomerID(acc.CustomerID); err != nil || acc.BalanceMinor < 0 {
			t.Fatalf("accepted account %+v: %v", acc, err)
		}
	})
}

// topLevelKeys reads the keys of a JSON object body with its own token
// loop, and says whether each is one of POST /v1/accounts's fields, exactly
// and once.
func topLevelKeys(body []byte) ([]string, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	allowed := map[string]bool{"customer_id": true, "currency": true, "additional_customer_id": true}
	var keys []string
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		key, isKey := tok.(string)
		if err != nil || !isKey {
			return keys, false
		}
		keys = append(keys, key)
		if seen[key] || !allowed[key] {
			return keys, false
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return keys, false
		}
	}
	return keys, true
}

// debitModel is what the debit target expects of the ledger: the balance
// and, per Idempotency-Key, the debit it made.
type debitModel struct {
	balance int64
	byKey   map[string]debitReply
}

type debitReply struct {
	TransferID        string `json:"transfer_id"`
	AmountMinor       int64  `json:"amount_minor"`
	Description       string `json:"description"`
	BalanceAfterMinor int64  `json:"balance_after_minor"`
	Replayed          bool   `json:"replayed"`
}

// FuzzDebitBody posts any body under any Idempotency-Key to
// POST /v1/accounts/{id}/debits and keeps a model: a 201 is a new key and
// takes exactly its amount off the balance, a 200 replays the key's first
// debit, a 409 reuses a key for another request, nothing else moves money
// and the balance never goes below zero.
func FuzzDebitBody(f *testing.F) {
	seeds := []struct{ body, key string }{
		{`{"amount":"1.00","description":"seed"}`, "k1"},
		{`{"amount":"1.00","description":"seed"}`, "k1"},
		{`{"amount":"1.0","description":"seed"}`, "k1"},
		{`{"amount":"2.00"}`, "k1"},
		{`{"amount":"0.01"}`, "k2"},
		{`{"amount":"-0"}`, "k3"},
		{`{"amount":"1e400"}`, "k4"},
		{`{"amount":150}`, "k5"},
		{`{"amount":"10000.0"}`, "k6"},
		{`{"amount":"500000.01"}`, "k7"},
		{`{"amount":"1.00","amount":"2.00"}`, "k8"},
		{`{"amount":"1.00","description":"caf\u00e9"}`, "k9"},
		{"{\"amount\":\"1.00\",\"description\":\"caf\xe9\"}", "k10"},
		{`{"amount":"1.00","description":"\ud800"}`, "k11"},
		{`{"amount":"1.00"}`, ""},
		{`{"amount":"1.00"}`, "a b"},
	}
	for _, s := range seeds {
		f.Add([]byte(s.body), s.key)
	}
	api := newFuzzAPI(f)
	acc := api.account(f, "fz-debtor")
	api.fund(f, "fz-debtor", fuzzFundMinor)
	path := "/v1/accounts/" + acc.ID() + "/debits"
	model := &debitModel{balance: fuzzFundMinor, byKey: map[string]debitReply{}}
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		var headers []string
		if key != "" && !strings.ContainsAny(key, "\r\n") {
			headers = []string{"Idempotency-Key", key}
		}
		rec := api.do(http.MethodPost, path, "application/json", body, headers...)
		checkAnswer(t, rec, http.StatusOK, http.StatusCreated, http.StatusBadRequest, http.StatusConflict,
			http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity)
		var got debitReply
		if rec.Code < 300 {
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("debit: %v", err)
			}
			if !utf8.Valid(body) || (strings.ContainsRune(got.Description, utf8.RuneError) && !mayHoldReplacement(body)) {
				t.Fatalf("accepted %q, stored description %q", body, got.Description)
			}
		}
		prev, seen := model.byKey[key]
		switch rec.Code {
		case http.StatusCreated:
			if seen {
				t.Fatalf("key %q debited twice: %+v then %+v", key, prev, got)
			}
			if got.AmountMinor <= 0 || got.BalanceAfterMinor != model.balance-got.AmountMinor || got.BalanceAfterMinor < 0 {
				t.Fatalf("debit %+v from balance %d", got, model.balance)
			}
			model.balance = got.BalanceAfterMinor
			model.byKey[key] = got
		case http.StatusOK:
			if !seen || !got.Replayed || got.TransferID != prev.TransferID || got.AmountMinor != prev.AmountMinor {
				t.Fatalf("replay of key %q: %+v, first %+v (seen %v)", key, got, prev, seen)
			}
		}
		if b, err := api.svc.Balance(context.Background(), acc.ID(), time.Time{}); err != nil || b.Minor() != model.balance {
			t.Fatalf("balance %v (%v), model %d", b, err, model.balance)
		}
	})
}

// FuzzResolveBody posts any body to POST /v1/exceptions/{id}/resolve of
// an open exception: whatever it says, no 5xx, and money moves only on a
// 200 credit.
func FuzzResolveBody(f *testing.F) {
	seeds := []string{
		`{"action":"dismiss","note":"seed"}`,
		`{"action":"credit","note":"seed","amount":"1.00"}`,
		`{"action":"credit","note":"seed","amount":"-1.00","account_id":"acc_x"}`,
		`{"action":"credit"}`,
		`{"action":"steal","note":"x"}`,
		`{"action":"dismiss","note":"\ud800"}`,
		"{\"action\":\"dismiss\",\"note\":\"\xff\"}",
		`{"action":"dismiss","note":"x","amount":"1.00"}`,
		`[]`, ``, `{`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	api := newFuzzAPI(f)
	acc := api.account(f, "fz-resolver")
	res, err := api.svc.SettleDeposit(context.Background(), ports.SettleDeposit{Channel: testChannel, PaymentID: "fz-unknown",
		Outcome: domain.Outcome{Method: "kassa24", Kind: domain.OutcomeSuccess, Status: "success", OperationID: "op-fz",
			Amount: domain.NewAmount(100, domain.KZT)}, RawBody: `{}`, ReceivedAt: time.Now().UTC()})
	if err != nil || res.Exception == nil {
		f.Fatalf("exception: %v", err)
	}
	path := "/v1/exceptions/" + res.Exception.ID + "/resolve"
	f.Fuzz(func(t *testing.T, body []byte) {
		before, err := api.svc.Balance(context.Background(), acc.ID(), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		rec := api.do(http.MethodPost, path, "application/json", body)
		checkAnswer(t, rec, http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusConflict,
			http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity)
		after, err := api.svc.Balance(context.Background(), acc.ID(), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if rec.Code != http.StatusOK && after != before {
			t.Fatalf("balance moved from %v to %v on a %d", before, after, rec.Code)
		}
		// Whatever was sent, the evidence (1.00 KZT) bounds what arrives.
		if after.Minor() > 100 {
			t.Fatalf("balance %v: more than the exception's evidence of 1.00 was credited", after)
		}
		if rec.Code == http.StatusOK && !utf8.Valid(body) {
			t.Fatalf("resolved with a body that is not UTF-8: %q", body)
		}
	})
}

// FuzzListQuery sends any query string to the list routes: each answers
// 200 or a documented 400/404, never 5xx.
func FuzzListQuery(f *testing.F) {
	seeds := []string{
		"limit=10", "limit=0", "limit=-1", "limit=1e3", "limit=99999999999999999999",
		"cursor=YWNjb3VudDp4", "cursor=%00%ff", "cursor=ZGVwb3NpdDp4",
		"customer_id=fz-1&currency=KZT", "customer_id=", "currency=kzt&customer_id=x",
		"status=active", "status=frozen", "from=2020-01-01T00:00:00Z&to=2030-01-01T00:00:00Z",
		"from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z", "at=yesterday", "payment_id=%ff",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	api := newFuzzAPI(f)
	acc := api.account(f, "fz-lister")
	routes := []string{"/v1/accounts", "/v1/deposits", "/v1/exceptions", "/v1/callbacks",
		"/v1/accounts/" + acc.ID() + "/statement", "/v1/accounts/" + acc.ID() + "/balance"}
	f.Fuzz(func(t *testing.T, query string) {
		if strings.ContainsAny(query, " #\r\n") || !utf8.ValidString(query) {
			return // not a query a client can put on a request line
		}
		if _, err := url.ParseRequestURI("/v1/accounts?" + query); err != nil {
			return
		}
		for _, route := range routes {
			rec := api.do(http.MethodGet, route+"?"+query, "", nil)
			checkAnswer(t, rec, http.StatusOK, http.StatusBadRequest, http.StatusNotFound)
		}
	})
}

// FuzzCSVQuery sends any query string to each CSV export and to its JSON
// list: the CSV route refuses exactly what the JSON route refuses, with the
// same code and message, and otherwise answers CSV.
func FuzzCSVQuery(f *testing.F) {
	seeds := []string{
		"limit=10", "limit=0", "limit=1001", "limit=1e3", "cursor=%00%ff", "cursor=c3RhdGVtZW50OjE",
		"cursor=ZGVwb3NpdDp4", "status=succeeded", "status=frozen", "customer_id=fz-1",
		"from=2020-01-01T00:00:00Z&to=2030-01-01T00:00:00Z", "from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	api := newFuzzAPI(f)
	acc := api.account(f, "fz-exporter")
	api.fund(f, "fz-exporter", 10_000)
	pairs := [][2]string{
		{"/v1/accounts/" + acc.ID() + "/statement", "/v1/accounts/" + acc.ID() + "/statement.csv"},
		{"/v1/deposits", "/v1/deposits.csv"},
	}
	f.Fuzz(func(t *testing.T, query string) {
		if strings.ContainsAny(query, " #\r\n") || !utf8.ValidString(query) {
			return
		}
		if _, err := url.ParseRequestURI("/v1/deposits?" + query); err != nil {
			return
		}
		for _, p := range pairs {
			jsonRec := api.do(http.MethodGet, p[0]+"?"+query, "", nil)
			csvRec := api.do(http.MethodGet, p[1]+"?"+query, "", nil)
			if jsonRec.Code == http.StatusOK {
				if csvRec.Code != http.StatusOK || !strings.HasPrefix(csvRec.Header().Get("Content-Type"), "text/csv") {
					t.Fatalf("%s?%s: JSON 200, CSV %d %s", p[1], query, csvRec.Code, csvRec.Body.String())
				}
				continue
			}
			checkAnswer(t, csvRec, http.StatusBadRequest, http.StatusNotFound)
			if csvRec.Code != jsonRec.Code || csvRec.Body.String() != jsonRec.Body.String() {
				t.Fatalf("%s?%s: CSV %d %s, JSON %d %s", p[1], query, csvRec.Code, csvRec.Body.String(), jsonRec.Code, jsonRec.Body.String())
			}
		}
	})
}

// TestDecodeRefusesAlteredText pins the fix the hostile-input drill
// found: invalid UTF-8 and unpaired surrogate escapes are refused
// (invalid_json), not replaced by U+FFFD and stored; paired surrogates
// and an escaped U+FFFD are fine.
func TestDecodeRefusesAlteredText(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cases := []struct {
		name, body string
		status     int
	}{
		{"invalid UTF-8", "{\"customer_id\":\"x-\xff\"}", http.StatusBadRequest},
		{"overlong UTF-8", "{\"customer_id\":\"x-\xc0\xaf\"}", http.StatusBadRequest},
		{"lone high surrogate", `{"customer_id":"x-\ud800"}`, http.StatusBadRequest},
		{"lone low surrogate", `{"customer_id":"x-\udc00y"}`, http.StatusBadRequest},
		{"high surrogate then a letter escape", `{"customer_id":"x-\ud800\u0041"}`, http.StatusBadRequest},
		{"swapped pair", `{"customer_id":"x-\ude00\ud83d"}`, http.StatusBadRequest},
		{"surrogate in a key", `{"customer_id":"x-k","\udfff":1}`, http.StatusBadRequest},
		{"escaped backslash before u", `{"customer_id":"x-\\ud800"}`, http.StatusCreated},
		{"pair", `{"customer_id":"x-\ud83d\ude00"}`, http.StatusCreated},
		{"escaped replacement character", `{"customer_id":"x-\ufffd"}`, http.StatusCreated},
		{"literal replacement character", "{\"customer_id\":\"x-\uFFFD-lit\"}", http.StatusCreated},
	}
	for _, c := range cases {
		rec := e.do(http.MethodPost, "/v1/accounts", writeSecret, c.body)
		if rec.Code != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, rec.Code, rec.Body.String(), c.status)
		}
		if c.status == http.StatusBadRequest {
			wantError(t, rec, http.StatusBadRequest, rest.CodeInvalidJSON)
		}
	}
}
