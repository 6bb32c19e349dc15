package rest_test

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/rest"
)

// sixDigits is the one timestamp form the API answers.
var sixDigits = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$`)

// timeValues collects every value of a key ending in _at or named as_of,
// anywhere in a JSON document.
func timeValues(t *testing.T, body []byte) map[string][]string {
	t.Helper()
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("answer %q: %v", body, err)
	}
	out := map[string][]string{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				if s, ok := child.(string); ok && (strings.HasSuffix(k, "_at") || k == "as_of") {
					out[k] = append(out[k], s)
				}
				walk(child)
			}
		case []any:
			for _, child := range v {
				walk(child)
			}
		}
	}
	walk(doc)
	return out
}

// TestTimestampsHaveSixFractionalDigits: every time in every JSON answer
// and CSV export is RFC 3339 UTC with exactly six fractional digits, also
// when the moment falls on a whole second (where RFC3339Nano drops them).
func TestTimestampsHaveSixFractionalDigits(t *testing.T) {
	t.Parallel()
	pinned := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	base := newEnv(t)
	acc := base.openAccount("times-1")
	paymentID := base.credit("times-1", 10_000)
	base.raiseException("times-unknown", 500)
	wantStatus(t, base.do("POST", "/v1/accounts/"+acc.ID+"/debits", writeSecret, `{"amount":"1.00"}`, "Idempotency-Key", "times-k"), http.StatusCreated)
	e := newEnvWith(t, base.svc, rest.Options{Now: func() time.Time { return pinned }})

	seen := map[string]int{}
	for _, path := range []string{
		"/v1/accounts", "/v1/accounts/" + acc.ID, "/v1/accounts/" + acc.ID + "/balance",
		"/v1/accounts/" + acc.ID + "/balance?at=2026-01-02T03:04:05Z", "/v1/accounts/" + acc.ID + "/statement",
		"/v1/deposits", "/v1/deposits/" + paymentID, "/v1/exceptions", "/v1/callbacks",
	} {
		rec := e.do("GET", path, readSecret, "")
		wantStatus(t, rec, http.StatusOK)
		for key, values := range timeValues(t, rec.Body.Bytes()) {
			for _, v := range values {
				seen[key]++
				if !sixDigits.MatchString(v) {
					t.Errorf("%s: %s = %q, want RFC 3339 UTC with six fractional digits", path, key, v)
				}
			}
		}
	}
	for _, key := range []string{"created_at", "updated_at", "settled_at", "received_at", "as_of"} {
		if seen[key] == 0 {
			t.Errorf("no %s seen: the walk is broken", key)
		}
	}
	rec := e.do("GET", "/v1/accounts/"+acc.ID+"/balance", readSecret, "")
	if !strings.Contains(rec.Body.String(), `"as_of":"2026-03-04T05:06:07.000000Z"`) {
		t.Fatalf("balance = %s", rec.Body.String())
	}

	for _, path := range []string{"/v1/accounts/" + acc.ID + "/statement.csv", "/v1/deposits.csv"} {
		rec := e.do("GET", path, readSecret, "")
		wantStatus(t, rec, http.StatusOK)
		rows, err := csv.NewReader(rec.Body).ReadAll()
		if err != nil || len(rows) < 2 {
			t.Fatalf("%s: %d rows, %v", path, len(rows), err)
		}
		checked := 0
		for col, name := range rows[0] {
			if !strings.HasSuffix(name, "_at") {
				continue
			}
			for _, row := range rows[1:] {
				if row[col] == "" && name == "settled_at" {
					continue
				}
				checked++
				if !sixDigits.MatchString(row[col]) {
					t.Errorf("%s: %s = %q", path, name, row[col])
				}
			}
		}
		if checked == 0 {
			t.Errorf("%s: no time column checked", path)
		}
	}
}
