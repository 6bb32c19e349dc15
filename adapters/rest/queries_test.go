package rest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

type statementLineJSON struct {
	Seq               int64   `json:"seq"`
	TransferID        string  `json:"transfer_id"`
	Kind              string  `json:"kind"`
	Direction         string  `json:"direction"`
	AmountMinor       int64   `json:"amount_minor"`
	Amount            string  `json:"amount"`
	Currency          string  `json:"currency"`
	BalanceAfterMinor int64   `json:"balance_after_minor"`
	BalanceAfter      string  `json:"balance_after"`
	DepositID         *string `json:"deposit_id"`
	PaymentID         *string `json:"payment_id"`
	Description       string  `json:"description"`
	CreatedAt         string  `json:"created_at"`
}

type statementJSON struct {
	AccountID  string              `json:"account_id"`
	Items      []statementLineJSON `json:"items"`
	NextCursor *string             `json:"next_cursor"`
}

func TestStatement(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acc := e.openAccount("c1")
	paymentID := e.credit("c1", 150_000)
	mid := time.Now().UTC()
	time.Sleep(2 * time.Millisecond)
	wantStatus(t, e.do("POST", "/v1/accounts/"+acc.ID+"/debits", writeSecret, `{"amount":"100.50","description":"shop"}`, "Idempotency-Key", "d1"), http.StatusCreated)
	wantStatus(t, e.do("POST", "/v1/accounts/"+acc.ID+"/debits", writeSecret, `{"amount":"0.50"}`, "Idempotency-Key", "d2"), http.StatusCreated)

	rec := e.do("GET", "/v1/accounts/"+acc.ID+"/statement", readSecret, "")
	wantStatus(t, rec, http.StatusOK)
	st := decode[statementJSON](t, rec)
	if st.AccountID != acc.ID || len(st.Items) != 3 || st.NextCursor != nil {
		t.Fatalf("statement = %+v", st)
	}
	credit, debit := st.Items[0], st.Items[1]
	if credit.Kind != "deposit_credit" || credit.Direction != "credit" || credit.AmountMinor != 150_000 || credit.Amount != "1500.00" ||
		credit.BalanceAfterMinor != 150_000 || credit.PaymentID == nil || *credit.PaymentID != paymentID || credit.DepositID == nil {
		t.Fatalf("credit line = %+v", credit)
	}
	if debit.Kind != "debit" || debit.Direction != "debit" || debit.AmountMinor != 10_050 || debit.Amount != "100.50" ||
		debit.BalanceAfterMinor != 139_950 || debit.BalanceAfter != "1399.50" || debit.Description != "shop" || debit.PaymentID != nil {
		t.Fatalf("debit line = %+v", debit)
	}
	if !(st.Items[0].Seq < st.Items[1].Seq && st.Items[1].Seq < st.Items[2].Seq) {
		t.Fatalf("seq not increasing: %d %d %d", st.Items[0].Seq, st.Items[1].Seq, st.Items[2].Seq)
	}

	// Paging one line at a time visits all three, in order.
	var seqs []int64
	path := "/v1/accounts/" + acc.ID + "/statement?limit=1"
	for range 10 {
		page := decode[statementJSON](t, e.do("GET", path, readSecret, ""))
		for _, l := range page.Items {
			seqs = append(seqs, l.Seq)
		}
		if page.NextCursor == nil {
			break
		}
		path = "/v1/accounts/" + acc.ID + "/statement?limit=1&cursor=" + *page.NextCursor
	}
	if len(seqs) != 3 || seqs[0] != st.Items[0].Seq || seqs[2] != st.Items[2].Seq {
		t.Fatalf("paged seqs %v", seqs)
	}

	// from/to select by time.
	q := url.Values{"from": {mid.Format(time.RFC3339Nano)}}
	after := decode[statementJSON](t, e.do("GET", "/v1/accounts/"+acc.ID+"/statement?"+q.Encode(), readSecret, ""))
	if len(after.Items) != 2 || after.Items[0].Kind != "debit" {
		t.Fatalf("statement from %s = %+v", mid, after.Items)
	}
	q = url.Values{"to": {mid.Format(time.RFC3339Nano)}}
	before := decode[statementJSON](t, e.do("GET", "/v1/accounts/"+acc.ID+"/statement?"+q.Encode(), readSecret, ""))
	if len(before.Items) != 1 || before.Items[0].Kind != "deposit_credit" {
		t.Fatalf("statement to %s = %+v", mid, before.Items)
	}

	for _, bad := range []string{"from=nope", "to=2026-13-01T00:00:00Z", "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
		"from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "limit=0", "cursor=x", "cursor=" + encodeTestCursor("statement:abc"),
		"cursor=" + encodeTestCursor("statement:0"), "cursor=" + encodeTestCursor("account:5")} {
		wantError(t, e.do("GET", "/v1/accounts/"+acc.ID+"/statement?"+bad, readSecret, ""), http.StatusBadRequest, "invalid_request")
	}
	wantError(t, e.do("GET", "/v1/accounts/acc_nope/statement", readSecret, ""), http.StatusNotFound, "not_found")
}

type depositJSON struct {
	ID          string  `json:"id"`
	PaymentID   string  `json:"payment_id"`
	Provider    string  `json:"provider"`
	Method      string  `json:"method"`
	Project     string  `json:"project"`
	AccountID   string  `json:"account_id"`
	CustomerID  string  `json:"customer_id"`
	AmountMinor int64   `json:"amount_minor"`
	Amount      string  `json:"amount"`
	Currency    string  `json:"currency"`
	Status      string  `json:"status"`
	OperationID *string `json:"operation_id"`
	CreatedAt   string  `json:"created_at"`
	SettledAt   *string `json:"settled_at"`
}

func TestDeposits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a1 := e.openAccount("c1")
	e.openAccount("c2")
	p1 := e.credit("c1", 10_000)
	e.credit("c2", 20_000)
	p3 := e.credit("c1", 30_000)

	rec := e.do("GET", "/v1/deposits/"+p1, readSecret, "")
	wantStatus(t, rec, http.StatusOK)
	d := decode[depositJSON](t, rec)
	if d.PaymentID != p1 || d.AccountID != a1.ID || d.CustomerID != "c1" || d.AmountMinor != 10_000 || d.Amount != "100.00" ||
		d.Currency != "KZT" || d.Status != "succeeded" || d.Provider != "monetix" || d.Method != "kassa24" || d.Project != "42" ||
		d.OperationID == nil || d.SettledAt == nil {
		t.Fatalf("deposit = %+v", d)
	}
	wantError(t, e.do("GET", "/v1/deposits/dep_nope", readSecret, ""), http.StatusNotFound, "not_found")

	tests := []struct {
		query string
		want  int
	}{
		{"", 3},
		{"status=succeeded", 3},
		{"status=pending", 0},
		{"customer_id=c1", 2},
		{"account_id=" + a1.ID, 2},
		{"customer_id=c2&status=succeeded", 1},
		{"to=2000-01-01T00:00:00Z", 0},
		{"from=2000-01-01T00:00:00Z", 3},
	}
	for _, tc := range tests {
		list := decode[listJSON[depositJSON]](t, e.do("GET", "/v1/deposits?"+tc.query, readSecret, ""))
		if len(list.Items) != tc.want {
			t.Errorf("deposits?%s: %d items, want %d", tc.query, len(list.Items), tc.want)
		}
	}
	// Two at a time: the first page is full and has a cursor, the second
	// holds the last deposit.
	page := decode[listJSON[depositJSON]](t, e.do("GET", "/v1/deposits?limit=2", readSecret, ""))
	if len(page.Items) != 2 || page.NextCursor == nil {
		t.Fatalf("first page = %+v", page)
	}
	page = decode[listJSON[depositJSON]](t, e.do("GET", "/v1/deposits?limit=2&cursor="+*page.NextCursor, readSecret, ""))
	if len(page.Items) != 1 || page.Items[0].PaymentID != p3 || page.NextCursor != nil {
		t.Fatalf("second page = %+v", page)
	}
	for _, bad := range []string{"status=lost", "from=x", "limit=5000", "customer_id=" + strings.Repeat("c", 129)} {
		wantError(t, e.do("GET", "/v1/deposits?"+bad, readSecret, ""), http.StatusBadRequest, "invalid_request")
	}
}

type exceptionJSON struct {
	ID            string  `json:"id"`
	Status        string  `json:"status"`
	Reason        string  `json:"reason"`
	PaymentID     string  `json:"payment_id"`
	PaymentStatus string  `json:"payment_status"`
	AccountID     *string `json:"account_id"`
	AmountMinor   int64   `json:"amount_minor"`
	Amount        string  `json:"amount"`
	Evidence      string  `json:"evidence"`
	Proposal      *struct {
		AccountID   string `json:"account_id"`
		AmountMinor int64  `json:"amount_minor"`
		Amount      string `json:"amount"`
		Note        string `json:"note"`
		ProposedBy  string `json:"proposed_by"`
		ProposedAt  string `json:"proposed_at"`
	} `json:"proposal"`
	Resolution *struct {
		Action      string  `json:"action"`
		AccountID   *string `json:"account_id"`
		AmountMinor *int64  `json:"amount_minor"`
		Amount      *string `json:"amount"`
		TransferID  *string `json:"transfer_id"`
		Note        string  `json:"note"`
		Actor       string  `json:"actor"`
	} `json:"resolution"`
}

func TestExceptions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acc := e.openAccount("c1")
	x1 := e.raiseException("pay-unknown-1", 50_000)
	x2 := e.raiseException("pay-unknown-2", 7_000)
	x3 := e.raiseException("pay-unknown-3", 1_000)

	rec := e.do("GET", "/v1/exceptions", readSecret, "")
	wantStatus(t, rec, http.StatusOK)
	open := decode[listJSON[exceptionJSON]](t, rec)
	if len(open.Items) != 3 || open.Items[0].ID != x1 || open.Items[0].Status != "open" || open.Items[0].Reason != "unknown_payment" ||
		open.Items[0].AmountMinor != 50_000 || open.Items[0].Amount != "500.00" || !strings.Contains(open.Items[0].Evidence, "pay-unknown-1") ||
		open.Items[0].Resolution != nil || open.Items[0].PaymentStatus != "success" {
		t.Fatalf("open exceptions = %+v", open.Items)
	}

	rec = e.do("GET", "/v1/exceptions/"+x2, readSecret, "")
	wantStatus(t, rec, http.StatusOK)
	if got := decode[exceptionJSON](t, rec); got.ID != x2 || got.PaymentID != "pay-unknown-2" {
		t.Fatalf("exception = %+v", got)
	}
	wantError(t, e.do("GET", "/v1/exceptions/exc_nope", readSecret, ""), http.StatusNotFound, "not_found")

	resolve := func(id, body string) *httpRecorder {
		return e.do("POST", "/v1/exceptions/"+id+"/resolve", writeSecret, body)
	}

	// Credit a chosen account with a chosen amount.
	rec = resolve(x1, `{"action":"credit","account_id":"`+acc.ID+`","amount":"450.00","note":"customer showed the receipt"}`)
	wantStatus(t, rec, http.StatusOK)
	got := decode[exceptionJSON](t, rec)
	if got.Status != "resolved" || got.Resolution == nil || got.Resolution.Action != "credit" || *got.Resolution.AmountMinor != 45_000 ||
		*got.Resolution.Amount != "450.00" || *got.Resolution.AccountID != acc.ID || got.Resolution.TransferID == nil ||
		got.Resolution.Actor != writeName || got.Resolution.Note != "customer showed the receipt" {
		t.Fatalf("resolved = %+v %+v", got, got.Resolution)
	}
	if bal := e.balanceMinor(acc.ID); bal != 45_000 {
		t.Fatalf("balance after credit resolution = %d", bal)
	}
	// Resolving twice is a conflict, and moves nothing.
	wantError(t, resolve(x1, `{"action":"credit","account_id":"`+acc.ID+`","note":"again"}`), http.StatusConflict, "conflict")
	wantError(t, resolve(x1, `{"action":"dismiss","note":"again"}`), http.StatusConflict, "conflict")
	if bal := e.balanceMinor(acc.ID); bal != 45_000 {
		t.Fatalf("balance after second resolution = %d", bal)
	}

	// Credit with the default amount (the callback's).
	rec = resolve(x3, `{"action":"credit","account_id":"`+acc.ID+`","note":"ok"}`)
	wantStatus(t, rec, http.StatusOK)
	if bal := e.balanceMinor(acc.ID); bal != 46_000 {
		t.Fatalf("balance after default-amount credit = %d", bal)
	}

	for _, tc := range []struct{ name, body, code string }{
		{"no note", `{"action":"dismiss"}`, "invalid_request"},
		{"bad action", `{"action":"refund","note":"x"}`, "invalid_request"},
		{"dismiss with amount", `{"action":"dismiss","amount":"1.00","note":"x"}`, "invalid_request"},
		{"credit without account", `{"action":"credit","note":"x"}`, "invalid_request"},
		{"number amount", `{"action":"credit","account_id":"` + acc.ID + `","amount":1,"note":"x"}`, "invalid_amount"},
		{"zero amount", `{"action":"credit","account_id":"` + acc.ID + `","amount":"0","note":"x"}`, "invalid_amount"},
		{"unknown field", `{"action":"dismiss","note":"x","why":"y"}`, "invalid_request"},
		{"note too long", `{"action":"dismiss","note":"` + strings.Repeat("n", 1001) + `"}`, "invalid_request"},
	} {
		wantError(t, resolve(x2, tc.body), http.StatusBadRequest, tc.code)
	}
	wantError(t, resolve(x2, `{"action":"credit","account_id":"acc_nope","note":"x"}`), http.StatusNotFound, "not_found")
	wantError(t, resolve(x2, `{"action":"credit","account_id":"acc_nope","amount":"1.00","note":"x"}`), http.StatusNotFound, "not_found")
	wantError(t, resolve("exc_nope", `{"action":"dismiss","note":"x"}`), http.StatusNotFound, "not_found")
	wantError(t, e.do("POST", "/v1/exceptions/"+x2+"/resolve", readSecret, `{"action":"dismiss","note":"x"}`), http.StatusForbidden, "forbidden")

	// Dismiss the last one.
	rec = resolve(x2, `{"action":"dismiss","note":"test payment"}`)
	wantStatus(t, rec, http.StatusOK)
	if got := decode[exceptionJSON](t, rec); got.Status != "dismissed" || got.Resolution == nil || got.Resolution.Action != "dismiss" ||
		got.Resolution.AmountMinor != nil {
		t.Fatalf("dismissed = %+v", got)
	}

	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", nil},
		{"status=open", nil},
		{"status=resolved", []string{x1, x3}},
		{"status=dismissed", []string{x2}},
		{"status=all", []string{x1, x2, x3}},
	} {
		list := decode[listJSON[exceptionJSON]](t, e.do("GET", "/v1/exceptions?"+tc.query, readSecret, ""))
		var ids []string
		for _, x := range list.Items {
			ids = append(ids, x.ID)
		}
		if strings.Join(ids, ",") != strings.Join(tc.want, ",") {
			t.Errorf("exceptions?%s = %v, want %v", tc.query, ids, tc.want)
		}
	}
	wantError(t, e.do("GET", "/v1/exceptions?status=closed", readSecret, ""), http.StatusBadRequest, "invalid_request")
}

func TestCallbacksAndLedgerCheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.openAccount("c1")
	p1 := e.credit("c1", 10_000)
	e.credit("c1", 20_000)
	e.raiseException("pay-x", 500)

	type callbackJSON struct {
		ID          int64   `json:"id"`
		PaymentID   string  `json:"payment_id"`
		OperationID *string `json:"operation_id"`
		Status      string  `json:"status"`
		Outcome     string  `json:"outcome"`
		DepositID   *string `json:"deposit_id"`
		ExceptionID *string `json:"exception_id"`
		Body        string  `json:"body"`
		ReceivedAt  string  `json:"received_at"`
	}
	all := decode[listJSON[callbackJSON]](t, e.do("GET", "/v1/callbacks", readSecret, ""))
	if len(all.Items) != 3 || all.Items[2].Outcome != "exception" || all.Items[2].ExceptionID == nil {
		t.Fatalf("inbox = %+v", all.Items)
	}
	one := decode[listJSON[callbackJSON]](t, e.do("GET", "/v1/callbacks?payment_id="+p1, readSecret, ""))
	if len(one.Items) != 1 || one.Items[0].PaymentID != p1 || one.Items[0].Outcome != "credited" ||
		!strings.Contains(one.Items[0].Body, `"id":"`+p1+`"`) || one.Items[0].DepositID == nil {
		t.Fatalf("inbox for %s = %+v", p1, one.Items)
	}
	page := decode[listJSON[callbackJSON]](t, e.do("GET", "/v1/callbacks?limit=2", readSecret, ""))
	if len(page.Items) != 2 || page.NextCursor == nil {
		t.Fatalf("first inbox page = %+v", page)
	}
	page = decode[listJSON[callbackJSON]](t, e.do("GET", "/v1/callbacks?limit=2&cursor="+*page.NextCursor, readSecret, ""))
	if len(page.Items) != 1 || page.Items[0].ID != all.Items[2].ID {
		t.Fatalf("second inbox page = %+v", page)
	}
	wantError(t, e.do("GET", "/v1/callbacks?cursor="+encodeTestCursor("callback:x"), readSecret, ""), http.StatusBadRequest, "invalid_request")

	rec := e.do("GET", "/v1/ledger/check", readSecret, "")
	wantStatus(t, rec, http.StatusOK)
	var check map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &check); err != nil {
		t.Fatal(err)
	}
	if check["healthy"] != true || check["customer_balance_total_minor"] != float64(30_000) || check["system_balance_total_minor"] != float64(-30_000) {
		t.Fatalf("ledger check = %v", check)
	}
}
