package rest_test

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/domain"
)

type dayLineJSON struct {
	AccountID    string `json:"account_id"`
	System       bool   `json:"system"`
	Currency     string `json:"currency"`
	OpeningMinor int64  `json:"opening_minor"`
	Opening      string `json:"opening"`
	CreditsMinor int64  `json:"credits_minor"`
	DebitsMinor  int64  `json:"debits_minor"`
	ClosingMinor int64  `json:"closing_minor"`
	Closing      string `json:"closing"`
}

type sideJSON struct {
	Accounts     int64 `json:"accounts"`
	OpeningMinor int64 `json:"opening_minor"`
	CreditsMinor int64 `json:"credits_minor"`
	DebitsMinor  int64 `json:"debits_minor"`
	ClosingMinor int64 `json:"closing_minor"`
}

type dayJSON struct {
	Day        string  `json:"day"`
	TimeZone   string  `json:"time_zone"`
	StartsAt   string  `json:"starts_at"`
	EndsAt     string  `json:"ends_at"`
	ClosedBy   string  `json:"closed_by"`
	RunID      *string `json:"run_id"`
	OpenBreaks int64   `json:"open_breaks"`
	Override   bool    `json:"override"`
	Reason     *string `json:"reason"`
	Accounts   int64   `json:"accounts"`
	Totals     []struct {
		Currency  string   `json:"currency"`
		Customers sideJSON `json:"customers"`
		System    sideJSON `json:"system"`
		Balanced  bool     `json:"balanced"`
	} `json:"totals"`
	Items      []dayLineJSON `json:"items"`
	NextCursor *string       `json:"next_cursor"`
}

// checkStatement checks every line adds up and the system accounts
// balance the customers, in the lines and in the totals.
func checkStatement(t *testing.T, d dayJSON, lines []dayLineJSON) {
	t.Helper()
	var customers, system int64
	for _, l := range lines {
		if l.OpeningMinor+l.CreditsMinor-l.DebitsMinor != l.ClosingMinor {
			t.Errorf("line %+v: opening + credits − debits ≠ closing", l)
		}
		if l.Closing != domain.NewAmount(l.ClosingMinor, domain.KZT).String() {
			t.Errorf("line %+v: closing text", l)
		}
		if l.System {
			system += l.ClosingMinor
		} else {
			customers += l.ClosingMinor
		}
	}
	if customers+system != 0 || customers == 0 {
		t.Errorf("customers close at %d, system accounts at %d: they must balance", customers, system)
	}
	if len(d.Totals) != 1 || d.Totals[0].Currency != "KZT" || !d.Totals[0].Balanced ||
		d.Totals[0].Customers.ClosingMinor != customers || d.Totals[0].System.ClosingMinor != system ||
		d.Totals[0].Customers.Accounts+d.Totals[0].System.Accounts != int64(len(lines)) || d.Accounts != int64(len(lines)) {
		t.Errorf("totals %+v, accounts %d; lines sum to customers %d, system %d over %d lines", d.Totals, d.Accounts, customers, system, len(lines))
	}
}

func TestCloseDay(t *testing.T) {
	t.Parallel()
	e := newReconEnv(t, nil)
	body, _, _ := e.report()
	day := e.yesterday.String()
	closePath := "/v1/days/" + day + "/close"

	today := domain.DayOf(time.Now(), e.svc.BusinessZone()).String()
	wantError(t, e.do("POST", "/v1/days/"+today+"/close", writeSecret, ""), http.StatusConflict, "day_not_ended")
	msg := wantError(t, e.do("POST", closePath, writeSecret, ""), http.StatusConflict, "open_breaks")
	if !strings.Contains(msg, "no finished reconciliation") {
		t.Fatalf("message %q", msg)
	}
	run := decode[runJSON](t, e.postCSV(day, "", body))
	msg = wantError(t, e.do("POST", closePath, writeSecret, `{}`), http.StatusConflict, "open_breaks")
	if !strings.Contains(msg, "orphan_operation 1") || !strings.Contains(msg, run.ID) {
		t.Fatalf("message %q does not name the breaks and the run", msg)
	}
	wantError(t, e.do("POST", closePath, writeSecret, `{"override":true}`), http.StatusBadRequest, rest400)
	wantError(t, e.do("POST", closePath, writeSecret, `{"override":true,"reason":"  "}`), http.StatusBadRequest, rest400)
	wantError(t, e.do("POST", closePath, writeSecret, `{"reason":"why not"}`), http.StatusBadRequest, rest400)
	wantError(t, e.do("POST", closePath, writeSecret, `{"override":"yes"}`), http.StatusBadRequest, rest400)
	wantError(t, e.do("POST", closePath, writeSecret, `{"override":true,"reason":"x","extra":1}`), http.StatusBadRequest, rest400)
	wantError(t, e.do("POST", "/v1/days/2026-02-30/close", writeSecret, ""), http.StatusBadRequest, rest400)
	wantError(t, e.do("GET", "/v1/days/"+day, readSecret, ""), http.StatusNotFound, "not_found")
	wantError(t, e.do("GET", "/v1/days/"+day+".csv", readSecret, ""), http.StatusNotFound, "not_found")

	rec := e.do("POST", closePath, writeSecret, `{"override":true,"reason":"the orphan is another merchant's payment"}`)
	wantStatus(t, rec, http.StatusOK)
	closed := decode[dayJSON](t, rec)
	if closed.Day != day || closed.ClosedBy != writeName || !closed.Override || closed.Reason == nil ||
		closed.RunID == nil || *closed.RunID != run.ID || closed.OpenBreaks != 1 || closed.TimeZone != "Asia/Almaty" {
		t.Fatalf("closed day %+v", closed)
	}
	checkStatement(t, closed, closed.Items)
	wantError(t, e.do("POST", closePath, writeSecret, `{"override":true,"reason":"again"}`), http.StatusConflict, "day_closed")
	wantError(t, e.do("POST", closePath, writeSecret, ""), http.StatusConflict, "day_closed")

	// The statement in pages, and whole as CSV.
	var lines []dayLineJSON
	cursor := ""
	for range 10 {
		path := "/v1/days/" + day + "?limit=1"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		page := decode[dayJSON](t, e.do("GET", path, readSecret, ""))
		lines = append(lines, page.Items...)
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	// The customer credited yesterday and the clearing account; the heal
	// landed today, on the day the run made it.
	if len(lines) != len(closed.Items) || len(lines) != 2 {
		t.Fatalf("paged %d lines, the first page had %d", len(lines), len(closed.Items))
	}
	checkStatement(t, closed, lines)

	rec = e.do("GET", "/v1/days/"+day+".csv", readSecret, "")
	wantStatus(t, rec, http.StatusOK)
	rows, err := csv.NewReader(strings.NewReader(rec.Body.String())).ReadAll()
	if err != nil || len(rows) != len(lines)+1 {
		t.Fatalf("CSV %q: %v", rec.Body.String(), err)
	}
	if strings.Join(rows[0], ",") != "day,account_id,system,currency,opening_minor,opening,credits_minor,credits,debits_minor,debits,closing_minor,closing" {
		t.Fatalf("CSV header %q", rows[0])
	}
	var sum int64
	for i, r := range rows[1:] {
		n := func(col int) int64 {
			v, err := strconv.ParseInt(r[col], 10, 64)
			if err != nil {
				t.Fatalf("row %q col %d: %v", r, col, err)
			}
			return v
		}
		if r[0] != day || r[1] != lines[i].AccountID || n(4)+n(6)-n(8) != n(10) {
			t.Errorf("CSV row %q, JSON line %+v", r, lines[i])
		}
		sum += n(10)
	}
	if sum != 0 {
		t.Fatalf("closings sum to %d", sum)
	}
	if cd := rec.Header().Get("Content-Disposition"); !strings.Contains(cd, "day-"+day+".csv") {
		t.Fatalf("Content-Disposition %q", cd)
	}
	wantError(t, e.do("GET", "/v1/days/yesterday", readSecret, ""), http.StatusBadRequest, rest400)
	wantError(t, e.do("GET", "/v1/days/yesterday.csv", readSecret, ""), http.StatusBadRequest, rest400)
	wantError(t, e.do("GET", "/v1/days/"+e.yesterday.Prev().String(), readSecret, ""), http.StatusNotFound, "not_found")
	wantError(t, e.do("GET", "/v1/days/"+day+".json", readSecret, ""), http.StatusBadRequest, rest400)
	wantError(t, e.do("POST", "/v1/days/"+day, writeSecret, ""), http.StatusMethodNotAllowed, "method_not_allowed")

	// A write dated inside the closed day is refused by the store: 409
	// day_closed, never a 500. (Only a clock inside the day can try.)
	back := newEnvWith(t, e.past, rest.Options{})
	acc := decode[accountJSON](t, e.do("GET", "/v1/accounts?customer_id=recon-matched", readSecret, ""))
	rec = back.do("POST", "/v1/accounts/"+acc.ID+"/debits", writeSecret, `{"amount":"1.00","description":"backdated"}`,
		"Idempotency-Key", "backdated-1")
	wantError(t, rec, http.StatusConflict, "day_closed")
	if strings.Contains(back.logs.String(), "internal error") {
		t.Fatalf("the refusal was logged as an internal error: %s", back.logs.String())
	}
	// Today's debit is fine and lands in the next open day.
	rec = e.do("POST", "/v1/accounts/"+acc.ID+"/debits", writeSecret, `{"amount":"1.00","description":"today"}`,
		"Idempotency-Key", "today-1")
	wantStatus(t, rec, http.StatusCreated)
	after := decode[dayJSON](t, e.do("GET", "/v1/days/"+day, readSecret, ""))
	checkStatement(t, after, after.Items)
	if after.Totals[0].Customers.ClosingMinor != closed.Totals[0].Customers.ClosingMinor {
		t.Fatalf("a debit today changed the closed day: %+v then %+v", closed.Totals, after.Totals)
	}
}

// TestCloseDayAfterCleanRun: a day whose latest run has no open break
// closes without an override.
func TestCloseDayAfterCleanRun(t *testing.T) {
	t.Parallel()
	e := newReconEnv(t, nil)
	dep := e.deposit("clean", 10_000, true)
	day := e.yesterday.String()
	wantStatus(t, e.postCSV(day, "", "project_id,payment_id,operation_id,operation_type,operation_status,amount,currency,completed_at\n"+
		e.row(dep.PaymentID, 10_000)), http.StatusCreated)
	rec := e.do("POST", "/v1/days/"+day+"/close", writeSecret, "")
	wantStatus(t, rec, http.StatusOK)
	d := decode[dayJSON](t, rec)
	if d.Override || d.Reason != nil || d.OpenBreaks != 0 {
		t.Fatalf("day %+v", d)
	}
	checkStatement(t, d, d.Items)
}
