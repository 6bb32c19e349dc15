package rest_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

var decimal2 = regexp.MustCompile(`^[0-9]+\.[0-9]{2}$`)

// get fetches path from a real server with the read token.
func get(t *testing.T, srv *httptest.Server, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+readSecret)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// debitMany spends 1.00 n times straight through the service, from a few
// goroutines so that a group-commit store batches the commits.
func debitMany(t *testing.T, svc *app.Service, accountID string, n int, description string) {
	t.Helper()
	const workers = 16
	var (
		wg   sync.WaitGroup
		errs = make(chan error, workers)
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				_, err := svc.Debit(context.Background(), ports.Debit{AccountID: accountID, Amount: domain.NewAmount(100, domain.KZT),
					Description: description, IdempotencyKey: "bulk-" + itoa(i), RequestHash: "h" + itoa(i), Actor: "test"})
				if err != nil {
					errs <- fmt.Errorf("debit %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestStatementCSV(t *testing.T) {
	t.Parallel()
	e := newGroupCommitEnv(t)
	acc := e.openAccount("c1")
	e.credit("c1", 200_000)
	const debits = 1000 // with the credit: 1001 rows, pages of 500, 500 and 1
	debitMany(t, e.svc, acc.ID, debits, "=HYPERLINK(\"http://evil\")")
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)

	resp := get(t, srv, "/v1/accounts/"+acc.ID+"/statement.csv")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Fatalf("Content-Type = %q", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="statement-`+acc.ID+`.csv"` {
		t.Fatalf("Content-Disposition = %q", cd)
	}
	if resp.ContentLength != -1 {
		t.Fatalf("Content-Length %d: the export was buffered, not streamed", resp.ContentLength)
	}
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		t.Fatalf("read CSV: %v", err)
	}
	wantHeader := "seq,transfer_id,kind,direction,amount_minor,amount,currency,balance_after_minor,balance_after,deposit_id,payment_id,description,created_at"
	if strings.Join(rows[0], ",") != wantHeader {
		t.Fatalf("header = %v", rows[0])
	}
	if len(rows) != 1+1+debits {
		t.Fatalf("%d rows, want %d", len(rows), 2+debits)
	}
	if first := rows[1]; first[2] != "deposit_credit" || first[3] != "credit" || first[4] != "200000" || first[5] != "2000.00" ||
		first[7] != "200000" || first[8] != "2000.00" || first[9] == "" || first[10] == "" {
		t.Fatalf("first row = %v", first)
	}
	seqs := map[string]bool{}
	for i, row := range rows[1:] {
		if len(row) != 13 || !decimal2.MatchString(row[5]) || !decimal2.MatchString(row[8]) || row[6] != "KZT" {
			t.Fatalf("row %d = %v", i+1, row)
		}
		if !sixDigits.MatchString(row[12]) {
			t.Fatalf("row %d created_at %q", i+1, row[12])
		}
		seqs[row[0]] = true
	}
	if len(seqs) != 1+debits {
		t.Fatalf("%d distinct seqs, want %d: pages overlap", len(seqs), 1+debits)
	}
	last := rows[len(rows)-1]
	if last[3] != "debit" || last[4] != "100" || last[5] != "1.00" || last[7] != "100000" || last[8] != "1000.00" {
		t.Fatalf("last row = %v", last)
	}
	if last[11] != `'=HYPERLINK("http://evil")` {
		t.Fatalf("formula not defused: %q", last[11])
	}

	// A time range narrows the export; an unknown account is a JSON 404
	// (decided before the first byte).
	future := get(t, srv, "/v1/accounts/"+acc.ID+"/statement.csv?from=2999-01-01T00:00:00Z")
	body, _ := io.ReadAll(future.Body)
	if future.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != wantHeader {
		t.Fatalf("future export = %d %q", future.StatusCode, body)
	}
	missing := get(t, srv, "/v1/accounts/acc_nope/statement.csv")
	body, _ = io.ReadAll(missing.Body)
	if missing.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `"code":"not_found"`) ||
		missing.Header.Get("Content-Disposition") != "" {
		t.Fatalf("unknown account export = %d %q", missing.StatusCode, body)
	}
	bad := get(t, srv, "/v1/accounts/"+acc.ID+"/statement.csv?to=tomorrow")
	if bad.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad range = %d", bad.StatusCode)
	}
}

// gatedLedger serves a synthetic statement of total lines. It holds back
// every page after the first until release is closed (so a test can see
// the first page arrive while the rest is not even read: no buffering),
// and fails the failAt-th call (a store failing mid-export).
type gatedLedger struct {
	ports.Ledger
	total   int64
	calls   atomic.Int32
	release chan struct{}
	failAt  int32 // Statement call number that fails (0: none)
}

func (g *gatedLedger) Statement(ctx context.Context, q ports.StatementQuery) ([]ports.StatementLine, error) {
	n := g.calls.Add(1)
	if n == g.failAt {
		return nil, errors.New("store exploded mid-export")
	}
	if n > 1 && g.release != nil {
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Second):
			return nil, errors.New("gate never opened")
		}
	}
	var lines []ports.StatementLine
	for seq := q.AfterSeq + 1; seq <= g.total && len(lines) < q.Limit; seq++ {
		lines = append(lines, ports.StatementLine{Seq: seq, TransferID: "trf_" + itoa(int(seq)), Kind: domain.TransferDebit,
			Amount: domain.NewAmount(-100, domain.KZT), BalanceAfter: domain.NewAmount(1_000_000-100*seq, domain.KZT),
			CreatedAt: time.Unix(1_800_000_000+seq, 0)})
	}
	return lines, nil
}

func TestStatementCSVStreams(t *testing.T) {
	t.Parallel()
	gated := &gatedLedger{total: 701, release: make(chan struct{})}
	e := newEnvWith(t, gated, rest.Options{})
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)

	resp := get(t, srv, "/v1/accounts/acc_1/statement.csv")
	lines := bufio.NewScanner(resp.Body)
	got := make(chan int, 1)
	go func() {
		n := 0
		for n < 501 && lines.Scan() {
			n++
		}
		got <- n
	}()
	select {
	case n := <-got:
		if n != 501 {
			t.Fatalf("read %d lines of the first page, want header + 500", n)
		}
	case <-time.After(10 * time.Second):
		close(gated.release)
		t.Fatal("the first page did not arrive before the second was read: the export is buffered")
	}
	if calls := gated.calls.Load(); calls > 2 {
		t.Fatalf("%d pages read before the gate opened", calls)
	}
	close(gated.release)
	rest := 0
	var last string
	for lines.Scan() {
		rest++
		last = lines.Text()
	}
	if err := lines.Err(); err != nil || rest != 701-500 {
		t.Fatalf("after the gate: %d more lines, err %v", rest, err)
	}
	if !strings.HasPrefix(last, "701,") || !strings.Contains(last, ",debit,100,1.00,KZT,929900,9299.00,") {
		t.Fatalf("last line = %q", last)
	}
	if calls := gated.calls.Load(); calls != 2 {
		t.Fatalf("%d Statement calls for 701 lines, want 2 pages", calls)
	}
}

func TestStatementCSVAbortsOnFailure(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, &gatedLedger{total: 1200, failAt: 2}, rest.Options{})
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)

	resp := get(t, srv, "/v1/accounts/acc_1/statement.csv")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("a failed export ended cleanly after %d bytes: the client would take it for complete", len(body))
	}
	if !strings.Contains(e.logs.String(), "store exploded mid-export") {
		t.Fatalf("the failure is not logged: %s", e.logs.String())
	}
	// A failure on the first page is still a clean JSON error.
	e = newEnvWith(t, &gatedLedger{total: 1200, failAt: 1}, rest.Options{})
	rec := e.do("GET", "/v1/accounts/acc_1/statement.csv", readSecret, "")
	wantError(t, rec, http.StatusInternalServerError, "internal")
	if rec.Header().Get("Content-Disposition") != "" {
		t.Fatal("an error answer must not be an attachment")
	}
}

func TestDepositsCSV(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.openAccount("c1")
	e.openAccount("c2")
	var paymentIDs []string
	for i := range 7 {
		customer := "c1"
		if i%2 == 1 {
			customer = "c2"
		}
		paymentIDs = append(paymentIDs, e.credit(customer, int64(100*(i+1))+5))
	}
	// One pending deposit too.
	if _, err := e.svc.OpenDeposit(context.Background(), ports.OpenDeposit{Channel: testChannel, CustomerID: "c1",
		Amount: domain.NewAmount(12_345, domain.KZT), Limits: testLimits}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)

	resp := get(t, srv, "/v1/deposits.csv")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Disposition") != `attachment; filename="deposits.csv"` {
		t.Fatalf("status %d, disposition %q", resp.StatusCode, resp.Header.Get("Content-Disposition"))
	}
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != "id,payment_id,created_at,settled_at,status,amount,currency,account_id,customer_id,provider,method,project,operation_id" {
		t.Fatalf("header = %v", rows[0])
	}
	if len(rows) != 1+8 {
		t.Fatalf("%d rows, want 9", len(rows))
	}
	for i, row := range rows[1:8] {
		if row[1] != paymentIDs[i] || row[4] != "succeeded" || !decimal2.MatchString(row[5]) || row[3] == "" || row[12] == "" {
			t.Fatalf("row %d = %v", i+1, row)
		}
	}
	if rows[1][5] != "1.05" || rows[7][5] != "7.05" {
		t.Fatalf("amounts %q %q", rows[1][5], rows[7][5])
	}
	if pending := rows[8]; pending[4] != "pending" || pending[5] != "123.45" || pending[3] != "" || pending[12] != "" {
		t.Fatalf("pending row = %v", pending)
	}

	filtered := get(t, srv, "/v1/deposits.csv?status=succeeded&customer_id=c2")
	rows, err = csv.NewReader(filtered.Body).ReadAll()
	if err != nil || len(rows) != 1+3 {
		t.Fatalf("filtered export: %d rows, %v", len(rows), err)
	}
	bad := get(t, srv, "/v1/deposits.csv?status=nope")
	if bad.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad filter = %d", bad.StatusCode)
	}
}
