package rest_test

import (
	"context"
	"encoding/csv"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/ports"
)

// csvRows reads a CSV answer.
func csvRows(t *testing.T, rec *httptest.ResponseRecorder) [][]string {
	t.Helper()
	wantStatus(t, rec, http.StatusOK)
	rows, err := csv.NewReader(rec.Body).ReadAll()
	if err != nil {
		t.Fatalf("CSV %q: %v", rec.Body.String(), err)
	}
	return rows
}

// TestStatementCSVIsTheJSONStatement: a statement CSV row is the JSON
// statement line, column for column, in the JSON's order and sign
// convention (a non-negative amount and a direction).
func TestStatementCSVIsTheJSONStatement(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acc := e.openAccount("csv-json")
	e.credit("csv-json", 150_000)
	e.credit("csv-json", 2_505)
	wantStatus(t, e.do("POST", "/v1/accounts/"+acc.ID+"/debits", writeSecret, `{"amount":"500.00","description":"order, \"7\""}`,
		"Idempotency-Key", "csv-json-1"), http.StatusCreated)

	page := decode[struct {
		Items []statementLineJSON `json:"items"`
	}](t, e.do("GET", "/v1/accounts/"+acc.ID+"/statement", readSecret, ""))
	rows := csvRows(t, e.do("GET", "/v1/accounts/"+acc.ID+"/statement.csv", readSecret, ""))
	wantHeader := []string{"seq", "transfer_id", "kind", "direction", "amount_minor", "amount", "currency",
		"balance_after_minor", "balance_after", "deposit_id", "payment_id", "description", "created_at"}
	if strings.Join(rows[0], ",") != strings.Join(wantHeader, ",") {
		t.Fatalf("header %q", rows[0])
	}
	if len(rows) != 1+len(page.Items) || len(page.Items) != 3 {
		t.Fatalf("%d CSV rows for %d JSON lines", len(rows)-1, len(page.Items))
	}
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	for i, l := range page.Items {
		want := []string{strconv.FormatInt(l.Seq, 10), l.TransferID, l.Kind, l.Direction, strconv.FormatInt(l.AmountMinor, 10),
			l.Amount, l.Currency, strconv.FormatInt(l.BalanceAfterMinor, 10), l.BalanceAfter, deref(l.DepositID),
			deref(l.PaymentID), l.Description, l.CreatedAt}
		if strings.Join(rows[i+1], "|") != strings.Join(want, "|") {
			t.Errorf("row %d\n CSV  %q\n JSON %q", i+1, rows[i+1], want)
		}
	}
	if debit := rows[3]; debit[3] != "debit" || debit[4] != "50000" || debit[5] != "500.00" {
		t.Fatalf("a debit is a positive amount with direction debit: %q", debit)
	}
}

// TestCSVQueryValidation: the CSV routes read cursor, limit and filters
// exactly as their JSON routes do, with the same 400s, and honour them.
func TestCSVQueryValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acc := e.openAccount("csv-q")
	for i := range 5 {
		e.credit("csv-q", int64(100*(i+1)))
	}
	routes := []struct{ json, csv string }{
		{"/v1/accounts/" + acc.ID + "/statement", "/v1/accounts/" + acc.ID + "/statement.csv"},
		{"/v1/deposits", "/v1/deposits.csv"},
	}
	bad := []string{
		"limit=0", "limit=-1", "limit=1e3", "limit=1001", "limit=abc", "limit=99999999999999999999",
		"cursor=%00%ff", "cursor=" + encodeTestCursor("account:x"), "cursor=" + strings.Repeat("A", 600),
		"cursor=" + encodeTestCursor("statement:0"), "from=yesterday", "to=2026-13-01T00:00:00Z",
		"from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z",
	}
	for _, rt := range routes {
		for _, query := range append(bad, "status=frozen") {
			jsonRec := e.do("GET", rt.json+"?"+query, readSecret, "")
			csvRec := e.do("GET", rt.csv+"?"+query, readSecret, "")
			if jsonRec.Code == http.StatusOK && query == "status=frozen" {
				continue // the statement has no status filter
			}
			jsonMsg := wantError(t, jsonRec, http.StatusBadRequest, "invalid_request")
			csvMsg := wantError(t, csvRec, http.StatusBadRequest, "invalid_request")
			if jsonMsg != csvMsg {
				t.Errorf("%s?%s: CSV says %q, JSON says %q", rt.csv, query, csvMsg, jsonMsg)
			}
		}
	}

	// Honoured: limit is the most rows, cursor a JSON next_cursor to
	// start after.
	for _, rt := range routes {
		first := decode[listJSON[map[string]any]](t, e.do("GET", rt.json+"?limit=2", readSecret, ""))
		if first.NextCursor == nil || len(first.Items) != 2 {
			t.Fatalf("%s: first page %+v", rt.json, first)
		}
		rest := decode[listJSON[map[string]any]](t, e.do("GET", rt.json+"?cursor="+url.QueryEscape(*first.NextCursor), readSecret, ""))
		if rows := csvRows(t, e.do("GET", rt.csv+"?limit=2", readSecret, "")); len(rows) != 1+2 {
			t.Errorf("%s?limit=2: %d rows", rt.csv, len(rows)-1)
		}
		rows := csvRows(t, e.do("GET", rt.csv+"?cursor="+url.QueryEscape(*first.NextCursor), readSecret, ""))
		if len(rows) != 1+len(rest.Items) || len(rest.Items) != 3 {
			t.Fatalf("%s after the cursor: %d rows, JSON has %d", rt.csv, len(rows)-1, len(rest.Items))
		}
		if rows := csvRows(t, e.do("GET", rt.csv+"?limit=1&cursor="+url.QueryEscape(*first.NextCursor), readSecret, "")); len(rows) != 2 {
			t.Errorf("%s?limit=1&cursor=: %d rows", rt.csv, len(rows)-1)
		}
	}
}

// secondPageGate serves a synthetic statement of total lines; every read
// after an export's first page waits for release (or its context).
type secondPageGate struct {
	ports.Ledger
	total   int64
	waiting atomic.Int32
	release chan struct{}
}

func (g *secondPageGate) Statement(ctx context.Context, q ports.StatementQuery) ([]ports.StatementLine, error) {
	if q.AfterSeq > 0 {
		g.waiting.Add(1)
		defer g.waiting.Add(-1)
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Second):
			return nil, errors.New("gate never opened")
		}
	}
	return (&gatedLedger{total: g.total}).Statement(ctx, q)
}

// TestCSVExportsAreBounded: at most MaxConcurrentExports run at once (one
// more is 503 unavailable with Retry-After, at once, not queued), and an
// export that outlives ExportTimeout is cut.
func TestCSVExportsAreBounded(t *testing.T) {
	t.Parallel()
	gated := &secondPageGate{total: 1200, release: make(chan struct{})}
	e := newEnvWith(t, gated, rest.Options{})
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)

	// DefaultMaxConcurrentExports exports hold their slot: each has its
	// first page and waits at the gate for the second.
	var wg sync.WaitGroup
	results := make(chan error, rest.DefaultMaxConcurrentExports)
	for range rest.DefaultMaxConcurrentExports {
		resp := get(t, srv, "/v1/accounts/acc_1/statement.csv")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("export within the bound: %d", resp.StatusCode)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := io.Copy(io.Discard, resp.Body)
			results <- err
		}()
	}
	waitFor(t, func() bool { return gated.waiting.Load() == rest.DefaultMaxConcurrentExports })
	start := time.Now()
	rec := e.do("GET", "/v1/accounts/acc_1/statement.csv", readSecret, "")
	msg := wantError(t, rec, http.StatusServiceUnavailable, "unavailable")
	if rec.Header().Get("Retry-After") != strconv.Itoa(rest.BusyRetryAfter) || !strings.Contains(msg, "CSV exports") {
		t.Fatalf("busy answer: Retry-After %q, message %q", rec.Header().Get("Retry-After"), msg)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("a busy export waited for a slot instead of being answered at once")
	}
	wantError(t, e.do("GET", "/v1/deposits.csv", readSecret, ""), http.StatusServiceUnavailable, "unavailable")
	// A bad request is still a 400, whatever the load.
	wantError(t, e.do("GET", "/v1/accounts/acc_1/statement.csv?limit=0", readSecret, ""), http.StatusBadRequest, "invalid_request")
	close(gated.release)
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil {
			t.Fatalf("a bounded export failed: %v", err)
		}
	}
	// The slots are free again.
	if rows := csvRows(t, e.do("GET", "/v1/accounts/acc_1/statement.csv", readSecret, "")); len(rows) != 1+1200 {
		t.Fatalf("%d rows after the slots were released", len(rows)-1)
	}

	// The deadline: the second page never comes, the export is cut.
	slow := &secondPageGate{total: 1200, release: make(chan struct{})}
	t.Cleanup(func() { close(slow.release) })
	e = newEnvWith(t, slow, rest.Options{ExportTimeout: 200 * time.Millisecond})
	srv2 := httptest.NewServer(e.h)
	t.Cleanup(srv2.Close)
	resp := get(t, srv2, "/v1/accounts/acc_1/statement.csv")
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("an export past its deadline ended cleanly: the client would take it for complete")
	}
	if !strings.Contains(e.logs.String(), "time limit reached") {
		t.Fatalf("the cut is not logged as the time limit: %s", e.logs.String())
	}
}

// checkLedgerGate is a ledger whose check waits for release or for its
// context.
type checkLedgerGate struct {
	ports.Ledger
	release chan struct{}
	started chan struct{}
}

func (g checkLedgerGate) CheckLedger(ctx context.Context) (ports.LedgerCheck, error) {
	g.started <- struct{}{}
	select {
	case <-g.release:
		return ports.LedgerCheck{Transfers: 1}, nil
	case <-ctx.Done():
		return ports.LedgerCheck{}, ctx.Err()
	case <-time.After(20 * time.Second):
		return ports.LedgerCheck{}, context.DeadlineExceeded
	}
}

// TestLedgerCheckIsBounded: one check at a time per instance, and each
// within LedgerCheckTimeout.
func TestLedgerCheckIsBounded(t *testing.T) {
	t.Parallel()
	gate := checkLedgerGate{release: make(chan struct{}), started: make(chan struct{}, 4)}
	e := newEnvWith(t, gate, rest.Options{})
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() { done <- e.do("GET", "/v1/ledger/check", readSecret, "") }()
	select {
	case <-gate.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the first check never started")
	}
	rec := e.do("GET", "/v1/ledger/check", readSecret, "")
	msg := wantError(t, rec, http.StatusServiceUnavailable, "unavailable")
	if rec.Header().Get("Retry-After") != strconv.Itoa(rest.BusyRetryAfter) || !strings.Contains(msg, "ledger checks") {
		t.Fatalf("busy check: Retry-After %q, message %q", rec.Header().Get("Retry-After"), msg)
	}
	close(gate.release)
	wantStatus(t, <-done, http.StatusOK)
	wantStatus(t, e.do("GET", "/v1/ledger/check", readSecret, ""), http.StatusOK)

	slow := checkLedgerGate{release: make(chan struct{}), started: make(chan struct{}, 4)}
	t.Cleanup(func() { close(slow.release) })
	e = newEnvWith(t, slow, rest.Options{LedgerCheckTimeout: 100 * time.Millisecond})
	start := time.Now()
	msg = wantError(t, e.do("GET", "/v1/ledger/check", readSecret, ""), http.StatusServiceUnavailable, "unavailable")
	if !strings.Contains(msg, "did not finish within 100ms") || time.Since(start) > 10*time.Second {
		t.Fatalf("check past its deadline: %q after %s", msg, time.Since(start))
	}
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
