package rest_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestOpenAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	rec := e.do("POST", "/v1/accounts", writeSecret, `{"customer_id":"cust-1","additional_customer_id":"77010000000"}`)
	wantStatus(t, rec, http.StatusCreated)
	acc := decode[accountJSON](t, rec)
	if acc.ID == "" || acc.CustomerID != "cust-1" || acc.Currency != "KZT" || acc.Status != "active" ||
		acc.BalanceMinor != 0 || acc.Balance != "0.00" || acc.Version != 1 ||
		acc.AdditionalCustomerID == nil || *acc.AdditionalCustomerID != "77010000000" {
		t.Fatalf("account = %+v", acc)
	}
	for _, ts := range []string{acc.CreatedAt, acc.UpdatedAt} {
		parsed, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || !strings.HasSuffix(ts, "Z") || time.Since(parsed) > time.Minute {
			t.Fatalf("timestamp %q is not recent RFC 3339 UTC (%v)", ts, err)
		}
	}
	if loc := rec.Header().Get("Location"); loc != "/v1/accounts/"+acc.ID {
		t.Fatalf("Location = %q", loc)
	}

	// Idempotent on (customer_id, currency): 200 and the same account.
	rec = e.do("POST", "/v1/accounts", writeSecret, `{"customer_id":"cust-1","currency":"KZT"}`)
	wantStatus(t, rec, http.StatusOK)
	if again := decode[accountJSON](t, rec); again.ID != acc.ID {
		t.Fatalf("second open gave %s, want %s", again.ID, acc.ID)
	}

	// A customer without additional id answers null, not "".
	rec = e.do("POST", "/v1/accounts", writeSecret, `{"customer_id":"cust-2"}`)
	wantStatus(t, rec, http.StatusCreated)
	if !strings.Contains(rec.Body.String(), `"additional_customer_id":null`) {
		t.Fatalf("body %s lacks additional_customer_id null", rec.Body.String())
	}
	// Every field the design fixes is present.
	for _, field := range []string{"id", "customer_id", "currency", "status", "balance_minor", "balance", "additional_customer_id", "version", "created_at", "updated_at"} {
		if !strings.Contains(rec.Body.String(), `"`+field+`":`) {
			t.Errorf("account JSON lacks %q: %s", field, rec.Body.String())
		}
	}
}

func TestOpenAccountRejects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	long := strings.Repeat("x", 129)
	tests := []struct {
		name, body, contentType string
		status                  int
		code                    string
	}{
		{"empty body", "", "", http.StatusBadRequest, "invalid_json"},
		{"malformed", `{"customer_id":`, "application/json", http.StatusBadRequest, "invalid_json"},
		{"syntax", `{"customer_id" "x"}`, "application/json", http.StatusBadRequest, "invalid_json"},
		{"not an object", `["x"]`, "application/json", http.StatusBadRequest, "invalid_json"},
		{"unknown field", `{"customer_id":"a","colour":"red"}`, "application/json", http.StatusBadRequest, "invalid_request"},
		{"trailing data", `{"customer_id":"a"} {"customer_id":"b"}`, "application/json", http.StatusBadRequest, "invalid_json"},
		{"trailing garbage", `{"customer_id":"a"}x`, "application/json", http.StatusBadRequest, "invalid_json"},
		{"wrong type", `{"customer_id":5}`, "application/json", http.StatusBadRequest, "invalid_request"},
		{"missing customer", `{"currency":"KZT"}`, "application/json", http.StatusBadRequest, "invalid_request"},
		{"customer too long", `{"customer_id":"` + long + `"}`, "application/json", http.StatusBadRequest, "invalid_request"},
		{"control character", `{"customer_id":"a\u0007b"}`, "application/json", http.StatusBadRequest, "invalid_request"},
		{"unknown currency", `{"customer_id":"a","currency":"XXX"}`, "application/json", http.StatusBadRequest, "invalid_request"},
		{"lower-case currency", `{"customer_id":"a","currency":"kzt"}`, "application/json", http.StatusBadRequest, "invalid_request"},
		{"text content type", `{"customer_id":"a"}`, "text/plain", http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"form content type", `customer_id=a`, "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"garbled content type", `{"customer_id":"a"}`, "application/", http.StatusUnsupportedMediaType, "unsupported_media_type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var headers []string
			if tc.contentType != "" {
				headers = []string{"Content-Type", tc.contentType}
			}
			rec := e.do("POST", "/v1/accounts", writeSecret, tc.body, headers...)
			wantError(t, rec, tc.status, tc.code)
		})
	}
	// Nothing was opened by any of them.
	rec := e.do("GET", "/v1/accounts", readSecret, "")
	if list := decode[listJSON[accountJSON]](t, rec); len(list.Items) != 0 {
		t.Fatalf("rejected requests opened %d accounts", len(list.Items))
	}
}

func TestContentTypeWithCharsetAccepted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := e.do("POST", "/v1/accounts", writeSecret, `{"customer_id":"a"}`, "Content-Type", "application/json; charset=utf-8")
	wantStatus(t, rec, http.StatusCreated)
	// A body without any Content-Type is refused: TestStrictContentType.
}

func TestBodyTooLarge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	big := `{"customer_id":"a","additional_customer_id":"` + strings.Repeat("x", 70<<10) + `"}`
	rec := e.do("POST", "/v1/accounts", writeSecret, big)
	wantError(t, rec, http.StatusRequestEntityTooLarge, "payload_too_large")

	// Without a Content-Length (chunked), the limit is enforced while reading.
	req := newChunkedRequest("POST", "/v1/accounts", big)
	req.Header.Set("Authorization", "Bearer "+writeSecret)
	rec = serve(e.h, req)
	wantError(t, rec, http.StatusRequestEntityTooLarge, "payload_too_large")

	// Trailing data past the limit is still "too large", not "trailing data".
	padded := `{"customer_id":"a"}` + strings.Repeat(" ", 70<<10) + "x"
	req = newChunkedRequest("POST", "/v1/accounts", padded)
	req.Header.Set("Authorization", "Bearer "+writeSecret)
	wantError(t, serve(e.h, req), http.StatusRequestEntityTooLarge, "payload_too_large")
}

func TestFindAndListAccounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var ids []string
	for i := range 5 {
		ids = append(ids, e.openAccount("cust-"+itoa(i)).ID)
	}

	t.Run("by customer", func(t *testing.T) {
		t.Parallel()
		rec := e.do("GET", "/v1/accounts?customer_id=cust-3&currency=KZT", readSecret, "")
		wantStatus(t, rec, http.StatusOK)
		if got := decode[accountJSON](t, rec); got.ID != ids[3] {
			t.Fatalf("got %s, want %s", got.ID, ids[3])
		}
		wantError(t, e.do("GET", "/v1/accounts?customer_id=nobody", readSecret, ""), http.StatusNotFound, "not_found")
		wantError(t, e.do("GET", "/v1/accounts?customer_id=cust-3&currency=XYZ", readSecret, ""), http.StatusBadRequest, "invalid_request")
		// USD is a currency (ISO 4217), but accounts are kept in KZT.
		wantError(t, e.do("GET", "/v1/accounts?customer_id=cust-3&currency=USD", readSecret, ""), http.StatusBadRequest, "invalid_request")
		wantError(t, e.do("GET", "/v1/accounts?customer_id=", readSecret, ""), http.StatusBadRequest, "invalid_request")
	})

	t.Run("paginate", func(t *testing.T) {
		t.Parallel()
		var seen []string
		path := "/v1/accounts?limit=2"
		for page := 0; page < 10; page++ {
			rec := e.do("GET", path, readSecret, "")
			wantStatus(t, rec, http.StatusOK)
			list := decode[listJSON[accountJSON]](t, rec)
			if len(list.Items) > 2 {
				t.Fatalf("page of %d items with limit 2", len(list.Items))
			}
			for _, a := range list.Items {
				seen = append(seen, a.ID)
			}
			if list.NextCursor == nil {
				break
			}
			path = "/v1/accounts?limit=2&cursor=" + url.QueryEscape(*list.NextCursor)
		}
		if strings.Join(seen, ",") != strings.Join(ids, ",") {
			t.Fatalf("paged ids %v, want %v in order", seen, ids)
		}
		if !strings.Contains(e.do("GET", "/v1/accounts?limit=1000", readSecret, "").Body.String(), `"next_cursor":null`) {
			t.Fatal("a short page must answer next_cursor null")
		}
	})

	t.Run("status filter", func(t *testing.T) {
		t.Parallel()
		// cust-4 gets blocked in this subtest only; others stay active.
		wantStatus(t, e.do("POST", "/v1/accounts/"+ids[4]+"/block", writeSecret, ""), http.StatusOK)
		list := decode[listJSON[accountJSON]](t, e.do("GET", "/v1/accounts?status=blocked", readSecret, ""))
		if len(list.Items) != 1 || list.Items[0].ID != ids[4] || list.Items[0].Status != "blocked" {
			t.Fatalf("blocked list = %+v", list.Items)
		}
		wantError(t, e.do("GET", "/v1/accounts?status=sleeping", readSecret, ""), http.StatusBadRequest, "invalid_request")
	})

	t.Run("bad paging", func(t *testing.T) {
		t.Parallel()
		for _, q := range []string{"limit=0", "limit=1001", "limit=abc", "limit=-1", "limit=1.5", "cursor=a.b!", "cursor=bm90LWEtY3Vyc29y",
			"cursor=" + strings.Repeat("A", 600)} {
			wantError(t, e.do("GET", "/v1/accounts?"+q, readSecret, ""), http.StatusBadRequest, "invalid_request")
		}
		// A cursor from another list is refused.
		st := decode[listJSON[accountJSON]](t, e.do("GET", "/v1/accounts?limit=1", readSecret, ""))
		wantError(t, e.do("GET", "/v1/deposits?cursor="+*st.NextCursor, readSecret, ""), http.StatusBadRequest, "invalid_request")
		wantStatus(t, e.do("GET", "/v1/accounts?limit=1000", readSecret, ""), http.StatusOK)
	})

	t.Run("get", func(t *testing.T) {
		t.Parallel()
		rec := e.do("GET", "/v1/accounts/"+ids[0], readSecret, "")
		wantStatus(t, rec, http.StatusOK)
		if got := decode[accountJSON](t, rec); got.CustomerID != "cust-0" {
			t.Fatalf("got %+v", got)
		}
		msg := wantError(t, e.do("GET", "/v1/accounts/acc_nope", readSecret, ""), http.StatusNotFound, "not_found")
		if !strings.Contains(msg, "acc_nope") {
			t.Fatalf("404 message %q does not name the id", msg)
		}
	})
}

func TestAccountStatusChanges(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acc := e.openAccount("c1")
	base := "/v1/accounts/" + acc.ID

	rec := e.do("POST", base+"/block", writeSecret, "")
	wantStatus(t, rec, http.StatusOK)
	if got := decode[accountJSON](t, rec); got.Status != "blocked" || got.Version != 2 {
		t.Fatalf("after block: %+v", got)
	}
	// Blocking again is a no-op, not an error.
	rec = e.do("POST", base+"/block", writeSecret, "{}")
	wantStatus(t, rec, http.StatusOK)
	if got := decode[accountJSON](t, rec); got.Version != 2 {
		t.Fatalf("repeat block changed version to %d", got.Version)
	}
	// The optional body must be an empty object.
	wantError(t, e.do("POST", base+"/block", writeSecret, `{"reason":"x"}`), http.StatusBadRequest, "invalid_request")
	wantError(t, e.do("POST", base+"/block", writeSecret, `{} {}`), http.StatusBadRequest, "invalid_json")

	rec = e.do("POST", base+"/unblock", writeSecret, "")
	wantStatus(t, rec, http.StatusOK)
	if got := decode[accountJSON](t, rec); got.Status != "active" {
		t.Fatalf("after unblock: %+v", got)
	}

	e.credit("c1", 1000)
	wantError(t, e.do("POST", base+"/close", writeSecret, ""), http.StatusConflict, "account_has_balance")
	wantStatus(t, e.do("POST", base+"/debits", writeSecret, `{"amount":"10.00"}`, "Idempotency-Key", "drain"), http.StatusCreated)
	rec = e.do("POST", base+"/close", writeSecret, "")
	wantStatus(t, rec, http.StatusOK)
	if got := decode[accountJSON](t, rec); got.Status != "closed" {
		t.Fatalf("after close: %+v", got)
	}
	// Closed is final.
	wantError(t, e.do("POST", base+"/unblock", writeSecret, ""), http.StatusConflict, "account_closed")
	wantError(t, e.do("POST", base+"/block", writeSecret, ""), http.StatusConflict, "account_closed")
	wantError(t, e.do("POST", "/v1/accounts/acc_nope/block", writeSecret, ""), http.StatusNotFound, "not_found")
}

func TestBalance(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acc := e.openAccount("c1")
	before := time.Now().UTC()
	time.Sleep(2 * time.Millisecond)
	e.credit("c1", 150_000)

	type balanceJSON struct {
		AccountID    string `json:"account_id"`
		Currency     string `json:"currency"`
		BalanceMinor int64  `json:"balance_minor"`
		Balance      string `json:"balance"`
		AsOf         string `json:"as_of"`
	}
	rec := e.do("GET", "/v1/accounts/"+acc.ID+"/balance", readSecret, "")
	wantStatus(t, rec, http.StatusOK)
	now := decode[balanceJSON](t, rec)
	if now.AccountID != acc.ID || now.Currency != "KZT" || now.BalanceMinor != 150_000 || now.Balance != "1500.00" || now.AsOf == "" {
		t.Fatalf("balance now = %+v", now)
	}

	at := before.Format(time.RFC3339Nano)
	rec = e.do("GET", "/v1/accounts/"+acc.ID+"/balance?at="+url.QueryEscape(at), readSecret, "")
	wantStatus(t, rec, http.StatusOK)
	past := decode[balanceJSON](t, rec)
	if past.BalanceMinor != 0 || past.Balance != "0.00" {
		t.Fatalf("balance before the credit = %+v", past)
	}
	// as_of echoes at to the microsecond, the precision of the ledger.
	if asOf, _ := time.Parse(time.RFC3339Nano, past.AsOf); !asOf.Equal(before.Truncate(time.Microsecond)) {
		t.Fatalf("as_of %s, want %s to the microsecond", past.AsOf, at)
	}
	// An unescaped '+' offset (decoded as a space) still parses.
	plus := before.In(time.FixedZone("ALMT", 5*3600)).Format(time.RFC3339Nano)
	wantStatus(t, e.do("GET", "/v1/accounts/"+acc.ID+"/balance?at="+plus, readSecret, ""), http.StatusOK)

	wantError(t, e.do("GET", "/v1/accounts/"+acc.ID+"/balance?at=yesterday", readSecret, ""), http.StatusBadRequest, "invalid_request")
	wantError(t, e.do("GET", "/v1/accounts/acc_nope/balance", readSecret, ""), http.StatusNotFound, "not_found")
}

// TestBalanceAtEdges: ?at= is a moment, whatever it is. Go's zero time is
// a moment long before any account (0.00, not today's balance), and a
// moment after the server's now has no balance yet (400).
func TestBalanceAtEdges(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acc := e.openAccount("at-edges")
	e.credit("at-edges", 150_000)
	type balanceJSON struct {
		BalanceMinor int64  `json:"balance_minor"`
		Balance      string `json:"balance"`
		AsOf         string `json:"as_of"`
	}
	path := "/v1/accounts/" + acc.ID + "/balance"
	for at, want := range map[string]string{
		"0001-01-01T00:00:00Z":      "0001-01-01T00:00:00.000000Z",
		"1970-01-01T00:00:00Z":      "1970-01-01T00:00:00.000000Z",
		"1969-12-31T23:59:59Z":      "1969-12-31T23:59:59.000000Z",
		"2000-01-01T05:00:00+05:00": "2000-01-01T00:00:00.000000Z",
	} {
		rec := e.do("GET", path+"?at="+url.QueryEscape(at), readSecret, "")
		wantStatus(t, rec, http.StatusOK)
		got := decode[balanceJSON](t, rec)
		if got.BalanceMinor != 0 || got.Balance != "0.00" || got.AsOf != want {
			t.Errorf("at=%s (before the account existed): %+v, want 0.00 as of %s", at, got, want)
		}
	}
	// Now, and a moment just past, are the balance.
	for _, at := range []string{time.Now().UTC().Format(time.RFC3339Nano), time.Now().Add(-time.Millisecond).UTC().Format(time.RFC3339Nano)} {
		got := decode[balanceJSON](t, e.do("GET", path+"?at="+url.QueryEscape(at), readSecret, ""))
		if got.BalanceMinor != 150_000 {
			t.Errorf("at=%s: %+v", at, got)
		}
	}
	// The future is refused, by a second or by years.
	for _, at := range []string{time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339Nano), "2999-01-01T00:00:00Z", "9999-12-31T23:59:59Z"} {
		msg := wantError(t, e.do("GET", path+"?at="+url.QueryEscape(at), readSecret, ""), http.StatusBadRequest, "invalid_request")
		if !strings.Contains(msg, "future") {
			t.Errorf("at=%s: message %q does not say it is in the future", at, msg)
		}
	}
	// An empty ?at= is no at: now.
	if got := decode[balanceJSON](t, e.do("GET", path+"?at=", readSecret, "")); got.BalanceMinor != 150_000 {
		t.Errorf("at= (empty): %+v", got)
	}
}

// TestReopenAccount: opening is idempotent only for the same account. An
// existing account with another additional_customer_id, or a closed one,
// is a 409 saying what differs, never silently the other account.
func TestReopenAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	open := func(body string) *httpRecorder {
		return e.do("POST", "/v1/accounts", writeSecret, body)
	}
	rec := open(`{"customer_id":"6552","additional_customer_id":"x"}`)
	wantStatus(t, rec, http.StatusCreated)
	acc := decode[accountJSON](t, rec)

	// The same request, and one that names no additional id: the account.
	for _, body := range []string{`{"customer_id":"6552","additional_customer_id":"x"}`, `{"customer_id":"6552","currency":"KZT"}`} {
		rec = open(body)
		wantStatus(t, rec, http.StatusOK)
		if got := decode[accountJSON](t, rec); got.ID != acc.ID || got.AdditionalCustomerID == nil || *got.AdditionalCustomerID != "x" {
			t.Fatalf("%s: %+v", body, got)
		}
	}
	// Another additional id: 409, naming the account and both ids.
	msg := wantError(t, open(`{"customer_id":"6552","additional_customer_id":"y"}`), http.StatusConflict, "conflict")
	for _, want := range []string{`customer "6552"`, acc.ID, "KZT", `additional_customer_id "x"`, `"y"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %s", msg, want)
		}
	}
	if got := decode[accountJSON](t, e.do("GET", "/v1/accounts/"+acc.ID, readSecret, "")); *got.AdditionalCustomerID != "x" || got.Version != acc.Version {
		t.Fatalf("a refused reopen changed the account: %+v", got)
	}
	// An account without one, asked with one.
	bare := decode[accountJSON](t, open(`{"customer_id":"6553"}`))
	msg = wantError(t, open(`{"customer_id":"6553","additional_customer_id":"z"}`), http.StatusConflict, "conflict")
	if !strings.Contains(msg, "no additional_customer_id") || !strings.Contains(msg, bare.ID) {
		t.Errorf("message %q", msg)
	}

	// Blocked: still the customer's account, answered 200.
	blocked := decode[accountJSON](t, open(`{"customer_id":"6554"}`))
	wantStatus(t, e.do("POST", "/v1/accounts/"+blocked.ID+"/block", writeSecret, ""), http.StatusOK)
	rec = open(`{"customer_id":"6554"}`)
	wantStatus(t, rec, http.StatusOK)
	if got := decode[accountJSON](t, rec); got.ID != blocked.ID || got.Status != "blocked" {
		t.Fatalf("reopen of a blocked account: %+v", got)
	}
	// Closed: 409 whatever the additional id.
	closed := decode[accountJSON](t, open(`{"customer_id":"6555","additional_customer_id":"c"}`))
	wantStatus(t, e.do("POST", "/v1/accounts/"+closed.ID+"/close", writeSecret, ""), http.StatusOK)
	for _, body := range []string{`{"customer_id":"6555"}`, `{"customer_id":"6555","additional_customer_id":"c"}`, `{"customer_id":"6555","additional_customer_id":"d"}`} {
		msg = wantError(t, open(body), http.StatusConflict, "conflict")
		if !strings.Contains(msg, closed.ID) || !strings.Contains(msg, "is closed") {
			t.Errorf("%s: message %q", body, msg)
		}
	}
}
