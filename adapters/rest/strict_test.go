package rest_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestStrictContentType: a POST with a body must say it is JSON; a POST
// without a body needs no Content-Type (there is nothing to type).
func TestStrictContentType(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acc := e.openAccount("strict-ct")

	// A body and no Content-Type: 415, nothing opened.
	rec := e.do("POST", "/v1/accounts", writeSecret, `{"customer_id":"strict-none"}`, "Content-Type", "")
	wantError(t, rec, http.StatusUnsupportedMediaType, "unsupported_media_type")
	wantStatus(t, e.do("GET", "/v1/accounts?customer_id=strict-none", readSecret, ""), http.StatusNotFound)

	// Chunked (no Content-Length) and no Content-Type: 415 as well.
	req := newChunkedRequest("POST", "/v1/accounts", `{"customer_id":"strict-chunked"}`)
	req.Header.Del("Content-Type")
	req.Header.Set("Authorization", "Bearer "+writeSecret)
	wantError(t, serve(e.h, req), http.StatusUnsupportedMediaType, "unsupported_media_type")

	// A charset other than UTF-8 is not JSON as RFC 8259 defines it.
	rec = e.do("POST", "/v1/accounts", writeSecret, `{"customer_id":"strict-latin"}`, "Content-Type", "application/json; charset=iso-8859-1")
	wantError(t, rec, http.StatusUnsupportedMediaType, "unsupported_media_type")
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON; charset=UTF-8"} {
		rec = e.do("POST", "/v1/accounts", writeSecret, `{"customer_id":"strict-ok"}`, "Content-Type", ct)
		if rec.Code != http.StatusCreated && rec.Code != http.StatusOK {
			t.Fatalf("Content-Type %q: %d %s", ct, rec.Code, rec.Body.String())
		}
	}

	// A bodyless POST (block, unblock, close) needs no Content-Type.
	for _, action := range []string{"block", "unblock"} {
		rec = e.do("POST", "/v1/accounts/"+acc.ID+"/"+action, writeSecret, "")
		wantStatus(t, rec, http.StatusOK)
	}
	// The same route with a body still has to type it.
	rec = e.do("POST", "/v1/accounts/"+acc.ID+"/block", writeSecret, `{}`, "Content-Type", "")
	wantError(t, rec, http.StatusUnsupportedMediaType, "unsupported_media_type")
	wantStatus(t, e.do("POST", "/v1/accounts/"+acc.ID+"/block", writeSecret, `{}`), http.StatusOK)
}

// TestStrictFieldNames: field names match exactly; encoding/json alone
// would take "AMOUNT" for "amount".
func TestStrictFieldNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acc := e.openAccount("strict-case")
	e.credit("strict-case", 100_000)
	tests := []struct {
		name, path, body, key string
	}{
		{"upper-case amount", "/v1/accounts/" + acc.ID + "/debits", `{"AMOUNT":"1.00"}`, "k-upper"},
		{"title-case amount", "/v1/accounts/" + acc.ID + "/debits", `{"Amount":"1.00","description":"x"}`, "k-title"},
		{"case-variant description", "/v1/accounts/" + acc.ID + "/debits", `{"amount":"1.00","Description":"x"}`, "k-desc"},
		{"upper-case customer", "/v1/accounts", `{"Customer_ID":"strict-new"}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var headers []string
			if tc.key != "" {
				headers = []string{"Idempotency-Key", tc.key}
			}
			msg := wantError(t, e.do("POST", tc.path, writeSecret, tc.body, headers...), http.StatusBadRequest, "invalid_request")
			if !strings.Contains(msg, "unknown field") {
				t.Fatalf("message %q does not say unknown field", msg)
			}
		})
	}
	msg := wantError(t, e.do("POST", "/v1/accounts/"+acc.ID+"/debits", writeSecret, `{"AMOUNT":"1.00"}`, "Idempotency-Key", "k-hint"),
		http.StatusBadRequest, "invalid_request")
	if !strings.Contains(msg, `"AMOUNT"`) || !strings.Contains(msg, `"amount"`) {
		t.Fatalf("message %q should name the field sent and the one meant", msg)
	}
	if b := decode[accountJSON](t, e.do("GET", "/v1/accounts/"+acc.ID, readSecret, "")); b.BalanceMinor != 100_000 {
		t.Fatalf("a refused debit moved money: balance %d", b.BalanceMinor)
	}
	wantStatus(t, e.do("GET", "/v1/accounts?customer_id=strict-new", readSecret, ""), http.StatusNotFound)
}

// TestStrictDuplicateKeys: a key twice in one object is refused, at any
// depth, naming the key; encoding/json alone keeps the last one.
func TestStrictDuplicateKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acc := e.openAccount("strict-dup")
	e.credit("strict-dup", 100_000)
	tests := []struct {
		name, path, body, key, want string
	}{
		{"top-level", "/v1/accounts", `{"customer_id":"strict-a","customer_id":"strict-b"}`, "", `"customer_id"`},
		{"same value", "/v1/accounts", `{"customer_id":"strict-a","customer_id":"strict-a"}`, "", `"customer_id"`},
		{"escaped spelling", "/v1/accounts", `{"customer_id":"strict-a","\u0063ustomer_id":"strict-b"}`, "", `"customer_id"`},
		{"debit amount", "/v1/accounts/" + acc.ID + "/debits", `{"amount":"1.00","amount":"1000.00"}`, "k-dup", `"amount"`},
		{"nested", "/v1/accounts/" + acc.ID + "/block", `{"x":{"y":1,"y":2}}`, "", `"y"`},
		{"in an array", "/v1/accounts/" + acc.ID + "/block", `{"x":[{"a":1},{"b":1,"b":2}]}`, "", `"b"`},
		{"deep", "/v1/accounts", `{"a":{"b":{"c":{"d":1,"d":1}}}}`, "", `"d"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var headers []string
			if tc.key != "" {
				headers = []string{"Idempotency-Key", tc.key}
			}
			msg := wantError(t, e.do("POST", tc.path, writeSecret, tc.body, headers...), http.StatusBadRequest, "invalid_json")
			if !strings.Contains(msg, "duplicate") || !strings.Contains(msg, tc.want) {
				t.Fatalf("message %q does not name the duplicate key %s", msg, tc.want)
			}
		})
	}
	// Keys that differ only in case are two keys of an object (and, on a
	// request type, one of them is unknown).
	wantError(t, e.do("POST", "/v1/accounts", writeSecret, `{"customer_id":"strict-a","CUSTOMER_ID":"strict-b"}`),
		http.StatusBadRequest, "invalid_request")
	for _, c := range []string{"strict-a", "strict-b"} {
		wantStatus(t, e.do("GET", "/v1/accounts?customer_id="+c, readSecret, ""), http.StatusNotFound)
	}
	got := decode[accountJSON](t, e.do("GET", "/v1/accounts/"+acc.ID, readSecret, ""))
	if got.BalanceMinor != 100_000 || got.Status != "active" {
		t.Fatalf("a refused request changed the account: %+v", got)
	}
}
