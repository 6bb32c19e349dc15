package rest_test

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// pastClock is the wall clock a day back: what it writes lands on
// yesterday, a business day that has ended and can be closed.
type pastClock struct{ d time.Duration }

func (c pastClock) Now() time.Time { return time.Now().UTC().Add(-c.d).Truncate(time.Microsecond) }

// reconEnv is a REST handler that reconciles, over a ledger with
// deposits made yesterday.
type reconEnv struct {
	*env
	past      *app.Service // writes with yesterday's clock
	yesterday domain.BusinessDay
	store     ports.Store
}

// csvSource builds the report source of a text/csv body, as the
// composition root does.
func csvSource(body io.Reader, columns, units string) (ports.OperationSource, error) {
	cols, err := monetix.ParseColumns(columns)
	if err != nil {
		return nil, err
	}
	opts := monetix.ReportOptions{Columns: cols}
	if units != "" {
		if opts.Units, err = monetix.ParseAmountUnits(units); err != nil {
			return nil, err
		}
	}
	return monetix.NewReportSource(body, opts)
}

func newReconEnv(t *testing.T, data ports.OperationSource, tweak ...func(*rest.Reconciliation)) *reconEnv {
	t.Helper()
	store := newStore(t)
	svc := app.NewService(store, system.Clock{}, &system.IDs{})
	past := app.NewService(store, pastClock{24 * time.Hour}, &system.IDs{})
	rc := rest.Reconciliation{
		Template: ports.ReconcileDay{Provider: testChannel.Provider, Method: testChannel.Method, Limits: testLimits},
		CSV:      csvSource,
		DataAPI:  data,
	}
	for _, f := range tweak {
		f(&rc)
	}
	e := newEnvWith(t, svc, rest.Options{Reconciliation: rc})
	return &reconEnv{env: e, past: past, store: store,
		yesterday: domain.DayOf(time.Now().Add(-24*time.Hour), svc.BusinessZone())}
}

// deposit opens a deposit yesterday; credited settles it yesterday too.
func (e *reconEnv) deposit(customer string, minor int64, credited bool) domain.Deposit {
	e.t.Helper()
	ctx := context.Background()
	e.openAccount(customer)
	dep, err := e.past.OpenDeposit(ctx, ports.OpenDeposit{Channel: testChannel, CustomerID: customer,
		Amount: domain.NewAmount(minor, domain.KZT), Limits: testLimits})
	if err != nil {
		e.t.Fatalf("open deposit: %v", err)
	}
	if credited {
		res, err := e.past.SettleDeposit(ctx, ports.SettleDeposit{Channel: testChannel, PaymentID: dep.PaymentID,
			Outcome: domain.Outcome{Method: "kassa24", Kind: domain.OutcomeSuccess, Status: "success",
				OperationID: "op-" + dep.PaymentID, Amount: dep.Amount},
			RawBody: `{"payment":{"id":"` + dep.PaymentID + `"}}`, ReceivedAt: pastClock{24 * time.Hour}.Now()})
		if err != nil || res.Effect != domain.EffectCredit {
			e.t.Fatalf("settle: %v %v", res.Effect, err)
		}
	}
	return dep
}

// row is one report line of a successful sale completed yesterday noon.
func (e *reconEnv) row(paymentID string, minor int64) string {
	at := e.yesterday.Start().Add(12 * time.Hour).Format(time.DateTime)
	return fmt.Sprintf("%s,%s,op-%s,sale,success,%s,KZT,%s\n", testChannel.Project, paymentID, paymentID,
		domain.NewAmount(minor, domain.KZT), at)
}

// report is a day with one matched payment, one the ledger has pending
// (healed) and one Tiyn never issued (orphan_operation).
func (e *reconEnv) report() (body string, matched, healed domain.Deposit) {
	matched = e.deposit("recon-matched", 15_000, true)
	healed = e.deposit("recon-healed", 20_000, false)
	body = monetix.DefaultReportHeader + "\n" + e.row(matched.PaymentID, 15_000) + e.row(healed.PaymentID, 20_000) +
		e.row("never-issued", 5_000)
	return body, matched, healed
}

func (e *reconEnv) postCSV(day, query, body string) *httpRecorder {
	e.t.Helper()
	path := "/v1/reconciliations?day=" + day
	if query != "" {
		path += "&" + query
	}
	return e.do("POST", path, writeSecret, body, "Content-Type", "text/csv; charset=utf-8")
}

type runJSON struct {
	ID        string           `json:"id"`
	Day       string           `json:"day"`
	TimeZone  string           `json:"time_zone"`
	Source    string           `json:"source"`
	Status    string           `json:"status"`
	Unchanged bool             `json:"unchanged"`
	InputHash *string          `json:"input_hash"`
	StartedBy string           `json:"started_by"`
	Error     *string          `json:"error"`
	Rows      int64            `json:"rows"`
	Breaks    int64            `json:"breaks"`
	Counts    map[string]int64 `json:"counts"`
	Sums      map[string]struct {
		PlatformMinor int64 `json:"platform_minor"`
		LedgerMinor   int64 `json:"ledger_minor"`
	} `json:"sums"`
}

type itemJSON struct {
	Seq         int64   `json:"seq"`
	Class       string  `json:"class"`
	Break       bool    `json:"break"`
	Line        *int    `json:"line"`
	PaymentID   *string `json:"payment_id"`
	ExceptionID *string `json:"exception_id"`
	Platform    *struct {
		AmountMinor int64  `json:"amount_minor"`
		Amount      string `json:"amount"`
		Currency    string `json:"currency"`
	} `json:"platform"`
	DepositStatus *string `json:"deposit_status"`
	Raw           *string `json:"raw"`
}

// wantCounts checks that every class is present and the listed ones
// have their number, the others zero.
func wantCounts(t *testing.T, run runJSON, want map[string]int64) {
	t.Helper()
	for _, c := range domain.ReconClasses() {
		n, ok := run.Counts[c.String()]
		if !ok {
			t.Errorf("counts lacks class %s: %v", c, run.Counts)
		}
		if _, ok := run.Sums[c.String()]; !ok {
			t.Errorf("sums lacks class %s", c)
		}
		if n != want[c.String()] {
			t.Errorf("counts[%s] = %d, want %d", c, n, want[c.String()])
		}
	}
	if len(run.Counts) != len(domain.ReconClasses()) {
		t.Errorf("counts has %d classes, want %d: %v", len(run.Counts), len(domain.ReconClasses()), run.Counts)
	}
}

func TestReconcileCSVThenUnchanged(t *testing.T) {
	t.Parallel()
	e := newReconEnv(t, nil)
	body, matched, healed := e.report()
	day := e.yesterday.String()

	rec := e.postCSV(day, "", body)
	wantStatus(t, rec, http.StatusCreated)
	run := decode[runJSON](t, rec)
	if run.Day != day || run.Source != "csv" || run.Status != "finished" || run.Unchanged || run.StartedBy != writeName ||
		run.InputHash == nil || run.Rows != 3 || run.TimeZone != "Asia/Almaty" {
		t.Fatalf("run = %+v", run)
	}
	wantCounts(t, run, map[string]int64{"matched": 1, "healed": 1, "orphan_operation": 1})
	if run.Breaks != 1 || run.Sums["healed"].PlatformMinor != 20_000 || run.Sums["healed"].LedgerMinor != 20_000 ||
		run.Sums["orphan_operation"].PlatformMinor != 5_000 || run.Sums["orphan_operation"].LedgerMinor != 0 {
		t.Fatalf("breaks %d, sums %+v", run.Breaks, run.Sums)
	}
	if loc := rec.Header().Get("Location"); loc != "/v1/reconciliations/"+run.ID {
		t.Fatalf("Location = %q", loc)
	}
	// The heal credited the pending deposit, once.
	dep := decode[struct {
		Status string `json:"status"`
	}](t, e.do("GET", "/v1/deposits/"+healed.PaymentID, readSecret, ""))
	if dep.Status != "succeeded" {
		t.Fatalf("healed deposit is %s", dep.Status)
	}

	// The same input again: the same run, 200, unchanged.
	rec = e.postCSV(day, "", body)
	wantStatus(t, rec, http.StatusOK)
	again := decode[runJSON](t, rec)
	if again.ID != run.ID || !again.Unchanged {
		t.Fatalf("rerun = %+v, want run %s unchanged", again, run.ID)
	}
	wantCounts(t, again, map[string]int64{"matched": 1, "healed": 1, "orphan_operation": 1})
	got := decode[runJSON](t, e.do("GET", "/v1/reconciliations/"+run.ID, readSecret, ""))
	if got.ID != run.ID || got.Unchanged || got.Counts["healed"] != 1 {
		t.Fatalf("GET run = %+v", got)
	}
	list := decode[listJSON[runJSON]](t, e.do("GET", "/v1/reconciliations?day="+day, readSecret, ""))
	if len(list.Items) != 1 || list.Items[0].ID != run.ID || list.NextCursor != nil {
		t.Fatalf("runs of %s = %+v", day, list)
	}

	// A changed input is a new run: the heal is now a match, nothing is
	// credited twice.
	rec = e.postCSV(day, "", body+e.row(matched.PaymentID, 15_000))
	wantStatus(t, rec, http.StatusCreated)
	second := decode[runJSON](t, rec)
	if second.ID == run.ID || second.Unchanged {
		t.Fatalf("a new input answered %+v", second)
	}
	wantCounts(t, second, map[string]int64{"matched": 2, "orphan_operation": 1, "duplicate_in_source": 1})
	acc := decode[accountJSON](t, e.do("GET", "/v1/accounts?customer_id=recon-healed", readSecret, ""))
	if acc.BalanceMinor != 20_000 {
		t.Fatalf("healed account balance %d, want 20000 (one credit)", acc.BalanceMinor)
	}

	// Paging, newest first.
	page := decode[listJSON[runJSON]](t, e.do("GET", "/v1/reconciliations?limit=1", readSecret, ""))
	if len(page.Items) != 1 || page.Items[0].ID != second.ID || page.NextCursor == nil {
		t.Fatalf("first page = %+v", page)
	}
	page = decode[listJSON[runJSON]](t, e.do("GET", "/v1/reconciliations?limit=1&cursor="+*page.NextCursor, readSecret, ""))
	if len(page.Items) != 1 || page.Items[0].ID != run.ID {
		t.Fatalf("second page = %+v", page)
	}
	other := e.yesterday.Prev().String()
	if l := decode[listJSON[runJSON]](t, e.do("GET", "/v1/reconciliations?day="+other, readSecret, "")); len(l.Items) != 0 {
		t.Fatalf("runs of %s = %+v", other, l)
	}
}

func TestReconcileItems(t *testing.T) {
	t.Parallel()
	e := newReconEnv(t, nil)
	body, _, healed := e.report()
	run := decode[runJSON](t, e.postCSV(e.yesterday.String(), "", body))
	base := "/v1/reconciliations/" + run.ID + "/items"

	all := decode[listJSON[itemJSON]](t, e.do("GET", base, readSecret, ""))
	if len(all.Items) != 3 {
		t.Fatalf("items = %+v", all)
	}
	for i, it := range all.Items {
		if it.Line == nil || *it.Line != i+2 || it.Raw == nil || it.Platform == nil || it.Platform.Currency != "KZT" {
			t.Errorf("item %d = %+v", i, it)
		}
	}
	healedItems := decode[listJSON[itemJSON]](t, e.do("GET", base+"?class=healed", readSecret, ""))
	if len(healedItems.Items) != 1 || *healedItems.Items[0].PaymentID != healed.PaymentID ||
		*healedItems.Items[0].DepositStatus != "succeeded" || healedItems.Items[0].Break {
		t.Fatalf("healed items = %+v", healedItems)
	}
	orphans := decode[listJSON[itemJSON]](t, e.do("GET", base+"?class=orphan_operation", readSecret, ""))
	if len(orphans.Items) != 1 || !orphans.Items[0].Break || orphans.Items[0].ExceptionID == nil {
		t.Fatalf("orphan items = %+v", orphans)
	}
	exc := e.do("GET", "/v1/exceptions/"+*orphans.Items[0].ExceptionID, readSecret, "")
	wantStatus(t, exc, http.StatusOK)

	page := decode[listJSON[itemJSON]](t, e.do("GET", base+"?limit=2", readSecret, ""))
	if len(page.Items) != 2 || page.NextCursor == nil {
		t.Fatalf("page = %+v", page)
	}
	rest := decode[listJSON[itemJSON]](t, e.do("GET", base+"?limit=2&cursor="+*page.NextCursor, readSecret, ""))
	if len(rest.Items) != 1 || rest.Items[0].Seq <= page.Items[1].Seq || rest.NextCursor != nil {
		t.Fatalf("rest = %+v", rest)
	}

	wantError(t, e.do("GET", base+"?class=bogus", readSecret, ""), http.StatusBadRequest, rest400)
	wantError(t, e.do("GET", base+".csv?class=Matched", readSecret, ""), http.StatusBadRequest, rest400)
	wantError(t, e.do("GET", "/v1/reconciliations/rcn_nope/items", readSecret, ""), http.StatusNotFound, "not_found")
	wantError(t, e.do("GET", "/v1/reconciliations/rcn_nope/items.csv", readSecret, ""), http.StatusNotFound, "not_found")
	wantError(t, e.do("GET", "/v1/reconciliations/rcn_nope", readSecret, ""), http.StatusNotFound, "not_found")
	wantError(t, e.do("GET", base+"?cursor="+encodeTestCursor("recon_run:5"), readSecret, ""), http.StatusBadRequest, rest400)

	// The CSV streams every item, or one class.
	rec := e.do("GET", base+".csv", readSecret, "")
	wantStatus(t, rec, http.StatusOK)
	if ct := rec.Header().Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	rows, err := csv.NewReader(strings.NewReader(rec.Body.String())).ReadAll()
	if err != nil || len(rows) != 4 || strings.Join(rows[0], ",") != strings.Join(exportHeader(), ",") {
		t.Fatalf("CSV %q: %v", rec.Body.String(), err)
	}
	if rows[2][1] != "healed" || rows[2][5] != healed.PaymentID || rows[2][11] != "200.00" || rows[2][17] != "succeeded" {
		t.Fatalf("healed row %q", rows[2])
	}
	rec = e.do("GET", base+".csv?class=orphan_operation", readSecret, "")
	rows, _ = csv.NewReader(strings.NewReader(rec.Body.String())).ReadAll()
	if len(rows) != 2 || rows[1][1] != "orphan_operation" || rows[1][2] != "true" || rows[1][14] != "" {
		t.Fatalf("orphan CSV %q", rec.Body.String())
	}
	if cd := rec.Header().Get("Content-Disposition"); !strings.Contains(cd, run.ID+"-orphan_operation.csv") {
		t.Fatalf("Content-Disposition %q", cd)
	}
}

const rest400 = "invalid_request"

func exportHeader() []string {
	return []string{"seq", "class", "break", "line", "project_id", "payment_id", "operation_id", "operation_type",
		"operation_status", "completed_at", "platform_amount_minor", "platform_amount", "platform_currency",
		"ledger_amount_minor", "ledger_amount", "ledger_currency", "deposit_id", "deposit_status", "exception_id", "note"}
}

func TestReconcileRefusals(t *testing.T) {
	t.Parallel()
	e := newReconEnv(t, nil, func(rc *rest.Reconciliation) { rc.MaxCSVBytes = 4096 })
	body, _, _ := e.report()
	day := e.yesterday.String()
	path := "/v1/reconciliations?day=" + day

	// Roles: reconciling and closing are the operator's.
	wantError(t, e.do("POST", path, readSecret, body, "Content-Type", "text/csv"), http.StatusForbidden, "forbidden")
	wantError(t, e.do("POST", path, backofficeSecret, body, "Content-Type", "text/csv"), http.StatusForbidden, "forbidden")
	wantError(t, e.do("POST", "/v1/days/"+day+"/close", backofficeSecret, ""), http.StatusForbidden, "forbidden")
	wantError(t, e.do("POST", "/v1/days/"+day+"/close", readSecret, ""), http.StatusForbidden, "forbidden")
	wantError(t, e.do("POST", path, "", body, "Content-Type", "text/csv"), http.StatusUnauthorized, "unauthorized")
	wantStatus(t, e.do("GET", "/v1/reconciliations", readSecret, ""), http.StatusOK)

	for name, tc := range map[string]struct {
		path, body, ctype string
		status            int
		code              string
	}{
		"no day":           {"/v1/reconciliations", body, "text/csv", 400, rest400},
		"bad day":          {"/v1/reconciliations?day=2026-13-01", body, "text/csv", 400, rest400},
		"day with time":    {"/v1/reconciliations?day=2026-12-01T00:00:00Z", body, "text/csv", 400, rest400},
		"future day":       {"/v1/reconciliations?day=" + e.yesterday.Next().Next().String(), body, "text/csv", 400, rest400},
		"unknown param":    {path + "&colums=x", body, "text/csv", 400, rest400},
		"bad columns":      {path + "&columns=nope=Payment", body, "text/csv", 400, rest400},
		"bad units":        {path + "&amount_units=cents", body, "text/csv", 400, rest400},
		"columns, no body": {path + "&columns=payment_id=Payment%20ID", "", "", 400, rest400},
		"no data api":      {path, "", "", 422, "data_api_not_configured"},
		"json body":        {path, `{"day":"x"}`, "application/json", 415, "unsupported_media_type"},
		"latin-1 csv":      {path, body, "text/csv; charset=latin1", 415, "unsupported_media_type"},
		"too large":        {path, body + strings.Repeat(e.row("pad", 100), 100), "text/csv", 413, "payload_too_large"},
		"empty csv body":   {path, "", "text/csv", 422, "data_api_not_configured"},
		"bad header":       {path, "a,b,c\n1,2,3\n", "text/csv", 400, rest400},
	} {
		t.Run(name, func(t *testing.T) {
			var headers []string
			if tc.ctype != "" {
				headers = []string{"Content-Type", tc.ctype}
			}
			msg := wantError(t, e.do("POST", tc.path, writeSecret, tc.body, headers...), tc.status, tc.code)
			if tc.code == "data_api_not_configured" && !strings.Contains(msg, "TIYN_MONETIX_DATA_URL") {
				t.Errorf("message %q does not say what to configure", msg)
			}
		})
	}
	// A chunked body of unknown length is cut at the limit while the run
	// reads it: the run fails, 413.
	req := httptest.NewRequest("POST", path, io.MultiReader(strings.NewReader(body+strings.Repeat(e.row("pad", 100), 100))))
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Authorization", "Bearer "+writeSecret)
	wantError(t, serve(e.h, req), http.StatusRequestEntityTooLarge, "payload_too_large")

	// The files that could not be read left failed runs, nothing else.
	runs := decode[listJSON[runJSON]](t, e.do("GET", "/v1/reconciliations?day="+day, readSecret, ""))
	failed := 0
	for _, r := range runs.Items {
		if r.Status != "failed" || r.Error == nil {
			t.Errorf("run %+v", r)
		}
		failed++
	}
	if failed != 2 { // the bad header and the chunked body over the limit
		t.Fatalf("%d failed runs, want 2: %+v", failed, runs)
	}
	deps := decode[listJSON[struct {
		Status string `json:"status"`
	}]](t, e.do("GET", "/v1/deposits?status=succeeded", readSecret, ""))
	if len(deps.Items) != 1 { // only the one credited yesterday
		t.Fatalf("succeeded deposits %+v", deps)
	}
}

// fakeData is a Data API source: rows, or a failure, optionally held
// until released.
type fakeData struct {
	rows    []ports.SourceRow
	fail    error
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (f *fakeData) Kind() string { return "data_api" }

func (f *fakeData) Authenticated() bool { return true }

func (f *fakeData) Operations(ctx context.Context, day domain.BusinessDay, row func(ports.SourceRow) error, _ func(ports.RowError) error) (ports.SourceSummary, error) {
	if f.started != nil {
		f.once.Do(func() { close(f.started) })
		select {
		case <-f.release:
		case <-ctx.Done():
			return ports.SourceSummary{}, ctx.Err()
		}
	}
	if f.fail != nil {
		return ports.SourceSummary{}, f.fail
	}
	for _, r := range f.rows {
		if err := row(r); err != nil {
			return ports.SourceSummary{}, err
		}
	}
	return ports.SourceSummary{Hash: fmt.Sprintf("%064x", len(f.rows)), Rows: len(f.rows)}, nil
}

func TestReconcileDataAPI(t *testing.T) {
	t.Parallel()
	data := &fakeData{}
	e := newReconEnv(t, data)
	dep := e.deposit("recon-data", 30_000, false)
	data.rows = []ports.SourceRow{{Line: 1, ProjectID: testChannel.Project, PaymentID: dep.PaymentID, OperationID: "op-1",
		Type: "sale", Status: "success", Amount: domain.NewAmount(30_000, domain.KZT),
		CompletedAt: e.yesterday.Start().Add(time.Hour), Raw: `{"payment_id":"` + dep.PaymentID + `"}`}}
	rec := e.do("POST", "/v1/reconciliations?day="+e.yesterday.String(), writeSecret, "")
	wantStatus(t, rec, http.StatusCreated)
	run := decode[runJSON](t, rec)
	if run.Source != "data_api" {
		t.Fatalf("run %+v", run)
	}
	wantCounts(t, run, map[string]int64{"healed": 1})

	failing := &fakeData{fail: errors.New("monetix data api: page at offset 1000: timeout: deadline")}
	e2 := newReconEnv(t, failing)
	msg := wantError(t, e2.do("POST", "/v1/reconciliations?day="+e2.yesterday.String(), writeSecret, ""),
		http.StatusBadGateway, "source_unavailable")
	if !strings.Contains(msg, "timeout") {
		t.Fatalf("message %q", msg)
	}
}

func TestReconcileOneRunOfADayAtATime(t *testing.T) {
	t.Parallel()
	data := &fakeData{started: make(chan struct{}), release: make(chan struct{})}
	e := newReconEnv(t, data)
	day := e.yesterday.String()
	done := make(chan *httpRecorder, 1)
	go func() { done <- e.do("POST", "/v1/reconciliations?day="+day, writeSecret, "") }()
	select {
	case <-data.started:
	case <-time.After(30 * time.Second):
		t.Fatal("the first run did not start")
	}
	msg := wantError(t, e.do("POST", "/v1/reconciliations?day="+day, writeSecret, ""), http.StatusConflict, "run_in_progress")
	if !strings.Contains(msg, "rcn_") {
		t.Fatalf("message %q does not name the running run", msg)
	}
	running := decode[listJSON[runJSON]](t, e.do("GET", "/v1/reconciliations?day="+day, readSecret, ""))
	if len(running.Items) != 1 || running.Items[0].Status != "running" || running.Items[0].Counts["matched"] != 0 ||
		len(running.Items[0].Counts) != len(domain.ReconClasses()) {
		t.Fatalf("while running: %+v", running)
	}
	close(data.release)
	select {
	case rec := <-done:
		wantStatus(t, rec, http.StatusCreated)
	case <-time.After(30 * time.Second):
		t.Fatal("the first run did not finish")
	}
}
