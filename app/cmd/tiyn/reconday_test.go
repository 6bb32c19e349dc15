package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// bookDay is a migrated database with deposits made yesterday: one
// credited (matched by the report), one pending (healed by it).
type bookDay struct {
	env              map[string]string
	day              domain.BusinessDay
	matched, pending domain.Deposit
}

var recChannel = domain.Channel{Provider: "monetix", Method: "kassa24", Project: "1234"}

func newBookDay(t *testing.T) *bookDay {
	t.Helper()
	env := migrated(t)
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstore.Options{URL: env["TIYN_DATABASE_URL"]})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close() }()
	svc := app.NewService(store, earlierClock{24 * time.Hour}, &system.IDs{})
	b := &bookDay{env: env, day: domain.DayOf(time.Now().Add(-24*time.Hour), svc.BusinessZone())}
	open := func(customer string, minor int64) domain.Deposit {
		if _, err := svc.OpenAccount(ctx, ports.OpenAccount{CustomerID: customer, Currency: domain.KZT, Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		d, err := svc.OpenDeposit(ctx, ports.OpenDeposit{Channel: recChannel, CustomerID: customer,
			Amount: domain.NewAmount(minor, domain.KZT), Limits: monetix.Kassa24.Limits})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	b.matched, b.pending = open("cli-matched", 150_00), open("cli-pending", 75_50)
	res, err := svc.SettleDeposit(ctx, ports.SettleDeposit{Channel: recChannel, PaymentID: b.matched.PaymentID,
		Outcome: domain.Outcome{Method: "kassa24", Kind: domain.OutcomeSuccess, Status: "success",
			OperationID: "op-" + b.matched.PaymentID, Amount: b.matched.Amount},
		RawBody: "{}", ReceivedAt: earlierClock{24 * time.Hour}.Now()})
	if err != nil || res.Effect != domain.EffectCredit {
		t.Fatalf("settle: %v %v", res.Effect, err)
	}
	return b
}

// line is a report row of a successful sale of the day.
func (b *bookDay) line(paymentID, amount string) string {
	return fmt.Sprintf("1234,%s,op-%s,sale,success,%s,KZT,%s\n", paymentID, paymentID, amount,
		b.day.Start().Add(9*time.Hour).Format(time.DateTime))
}

func (b *bookDay) run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	m, stdout, stderr := testMain(b.env)
	m.Stdin = strings.NewReader(stdin)
	code, _ := run(t, m, args...)
	return code, stdout.String(), stderr.String()
}

// wantLines checks that out holds each want, runs of spaces counting as
// one (the tables are aligned).
func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	squash := func(s string) string {
		for strings.Contains(s, "  ") {
			s = strings.ReplaceAll(s, "  ", " ")
		}
		return s
	}
	for _, w := range want {
		if !strings.Contains(squash(out), squash(w)) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestReconcileDayAndClose(t *testing.T) {
	t.Parallel()
	b := newBookDay(t)
	day := b.day.String()
	report := filepath.Join(t.TempDir(), "report.csv")
	body := monetix.DefaultReportHeader + "\n" + b.line(b.matched.PaymentID, "150.00") + b.line(b.pending.PaymentID, "75.50") +
		b.line("never-issued", "10.00")
	if err := os.WriteFile(report, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := b.run(t, "", "reconcile", "day", day, "--csv", report)
	if code != exitBreaks {
		t.Fatalf("exit %d, want %d (breaks)\n%s\n%s", code, exitBreaks, out, errOut)
	}
	wantLines(t, out, "of "+day+" (Asia/Almaty), source csv: 3 rows", "matched  1  150.00  150.00",
		"healed  1  75.50  75.50", "orphan_operation (break)  1  10.00  0.00", "total  3  235.50  225.50",
		"1 breaks, each with an exception", "orphan_operation (1):", "line 4, payment never-issued, exception exc_")
	if strings.Contains(errOut, "\x1b[K") {
		t.Errorf("progress drawn on a stderr that is not a terminal: %q", errOut)
	}
	wantLines(t, errOut, "has 1 breaks", "tiyn close "+day)

	// The same report again, from standard input: unchanged, the same run.
	code, again, _ := b.run(t, body, "reconcile", "day", day, "--csv", "-")
	if code != exitBreaks {
		t.Fatalf("rerun: exit %d\n%s", code, again)
	}
	wantLines(t, again, "unchanged: this input was reconciled already", "healed  1  75.50  75.50")
	if runID(out) != runID(again) {
		t.Fatalf("rerun is run %s, first %s", runID(again), runID(out))
	}

	// Other header names and minor units: a new input, a new run; the heal
	// is now a match (credited once).
	mapped := "Project,Payment ID,operation_id,operation_type,operation_status,Sum,currency,completed_at\n" +
		b.line(b.matched.PaymentID, "15000") + b.line(b.pending.PaymentID, "7550")
	code, third, errOut := b.run(t, mapped, "reconcile", "day", day, "--csv", "-",
		"--columns", "project_id=Project,payment_id=Payment ID,amount=Sum", "--amount-units", "minor")
	if code != exitOK {
		t.Fatalf("mapped run: exit %d\n%s\n%s", code, third, errOut)
	}
	wantLines(t, third, "matched  2  225.50  225.50", "no breaks: the day can be closed")

	// Closing: refused with the open orphan of the day's latest run? The
	// latest finished run is the clean one, so the day closes.
	code, closed, errOut := b.run(t, "", "close", day)
	if code != exitOK {
		t.Fatalf("close: exit %d\n%s\n%s", code, closed, errOut)
	}
	wantLines(t, closed, "closed "+day+" (Asia/Almaty)", "reconciliation "+runID(third)+", 0 open breaks",
		"KZT  customers  1  0.00  150.00  0.00  150.00", "KZT     system  1  0.00  0.00  150.00  -150.00",
		"KZT: the system accounts balance the customers")
	code, _, errOut = b.run(t, "", "close", day)
	if code != exitError || !strings.Contains(errOut, "business day closed") {
		t.Fatalf("second close: exit %d %s", code, errOut)
	}
}

func runID(out string) string {
	_, rest, _ := strings.Cut(out, "reconciliation ")
	id, _, _ := strings.Cut(rest, " ")
	return id
}

func TestCloseNeedsACleanRunOrAnOverride(t *testing.T) {
	t.Parallel()
	b := newBookDay(t)
	day := b.day.String()
	code, _, errOut := b.run(t, "", "close", day)
	if code != exitError || !strings.Contains(errOut, "no finished reconciliation") {
		t.Fatalf("close without a run: exit %d %s", code, errOut)
	}
	for _, args := range [][]string{{"close", day, "--override"}, {"close", day, "--reason", "x"}, {"close"},
		{"close", "2026-02-30"}, {"close", day, day}} {
		if code, _, errOut := b.run(t, "", args...); code != exitUsage {
			t.Errorf("%q: exit %d %s, want %d", args, code, errOut, exitUsage)
		}
	}
	today := domain.DayOf(time.Now(), b.day.Location()).String()
	if code, _, errOut := b.run(t, "", "close", today, "--override", "--reason", "test"); code != exitError ||
		!strings.Contains(errOut, "not ended") {
		t.Fatalf("close today: exit %d %s", code, errOut)
	}
	code, out, errOut := b.run(t, "", "close", day, "--override", "--reason", "no report for this day yet")
	if code != exitOK {
		t.Fatalf("override: exit %d %s", code, errOut)
	}
	wantLines(t, out, "no reconciliation", "override: no report for this day yet", "2 statement lines")
}

func TestReconcileDayRefusals(t *testing.T) {
	t.Parallel()
	b := newBookDay(t)
	day := b.day.String()
	missing := "sqlite:" + filepath.Join(t.TempDir(), "nope.db")
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"no Data API", nil, []string{day}, exitUsage, "TIYN_MONETIX_DATA_URL is not set"},
		{"columns without a report", nil, []string{day, "--columns", "amount=Sum"}, exitUsage, "--csv"},
		{"no date", nil, nil, exitUsage, "one DATE"},
		{"bad date", nil, []string{"02.12.2026", "--csv", "-"}, exitUsage, "YYYY-MM-DD"},
		{"missing report", nil, []string{day, "--csv", "/nonexistent/report.csv"}, exitUsage, "--csv"},
		{"bad columns", nil, []string{day, "--csv", "-", "--columns", "nope=X"}, exitUsage, "not a field"},
		{"bad units", nil, []string{day, "--csv", "-", "--amount-units", "cents"}, exitUsage, "cents"},
		{"bad zone", map[string]string{"TIYN_BUSINESS_TZ": "Mars/Olympus"}, []string{day, "--csv", "-"}, exitUsage, "TIYN_BUSINESS_TZ"},
		{"data api half configured", map[string]string{"TIYN_MONETIX_DATA_URL": "https://data.example"}, []string{day}, exitUsage,
			"TIYN_MONETIX_DATA_TOKEN is not set"},
		{"no database", map[string]string{"TIYN_DATABASE_URL": missing}, []string{day, "--csv", "-"}, exitError, "does not exist"},
		{"day not begun", nil, []string{b.day.Next().Next().String(), "--csv", "-"}, exitError, "has not begun"},
		{"empty report", nil, []string{day, "--csv", "-"}, exitError, "header"},
	} {
		env := map[string]string{}
		for k, v := range b.env {
			env[k] = v
		}
		for k, v := range tc.env {
			env[k] = v
		}
		m, _, stderr := testMain(env)
		code, err := run(t, m, append([]string{"reconcile", "day"}, tc.args...)...)
		if code != tc.code || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: exit %d, %v; want %d naming %q (%s)", tc.name, code, err, tc.code, tc.want, stderr)
		}
	}
	if _, err := os.Stat(strings.TrimPrefix(missing, "sqlite:")); err == nil {
		t.Fatal("reconcile day created a database")
	}
	// The help names the exit codes and the default header.
	code, out, _ := b.run(t, "", "reconcile", "day", "--help")
	if code != exitOK {
		t.Fatalf("help: exit %d", code)
	}
	wantLines(t, out, "Exit status: 0", "3 reconciled, with breaks", monetix.DefaultReportHeader, "TIYN_BUSINESS_TZ",
		"TIYN_MONETIX_DATA_URL", "--amount-units", "--columns")
	code, out, _ = b.run(t, "", "reconcile")
	if code != exitUsage || !strings.Contains(out, "tiyn reconcile day DATE") || !strings.Contains(out, "tiyn reconcile pending") {
		t.Fatalf("reconcile alone: exit %d\n%s", code, out)
	}
}

// fakeDataAPI answers the Data API's operations/get with items, checking
// each request's signature, token and interval.
type fakeDataAPI struct {
	*httptest.Server
	mu       sync.Mutex
	requests []monetix.DataRequest
}

func newFakeDataAPI(t *testing.T, token string, secret []byte, items []monetix.DataAPIItem) *fakeDataAPI {
	t.Helper()
	f := &fakeDataAPI{}
	m := monetix.DefaultDataMapping()
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := monetix.ParseDataRequest(m, body, func(tok string) []byte {
			if tok == token {
				return secret
			}
			return nil
		})
		if err != nil || r.URL.Path != monetix.DataOperationsPath {
			t.Errorf("data api request %s %s: %v", r.URL.Path, body, err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.requests = append(f.requests, req)
		f.mu.Unlock()
		page := monetix.DataAPIPage{}
		if req.Offset < len(items) {
			page.Items = items[req.Offset:min(len(items), req.Offset+req.Limit)]
		}
		out, err := page.Body(m, secret, req.Zone)
		if err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	}))
	t.Cleanup(f.Close)
	return f
}

func TestReconcileDayFromTheDataAPI(t *testing.T) {
	t.Parallel()
	b := newBookDay(t)
	at := b.day.Start().Add(10 * time.Hour)
	items := []monetix.DataAPIItem{
		{ProjectID: "1234", PaymentID: b.matched.PaymentID, OperationID: "op-" + b.matched.PaymentID, OperationType: "sale",
			OperationStatus: "success", AmountMinor: 150_00, Currency: "KZT", CreatedAt: at, CompletedAt: at},
		{ProjectID: "1234", PaymentID: b.pending.PaymentID, OperationID: "77", OperationType: "sale",
			OperationStatus: "success", AmountMinor: 75_50, Currency: "KZT", CreatedAt: at, CompletedAt: at},
	}
	secret := []byte("data-api-secret-key")
	api := newFakeDataAPI(t, "data-token-1", secret, items)
	b.env["TIYN_MONETIX_DATA_URL"] = api.URL
	b.env["TIYN_MONETIX_DATA_TOKEN"] = "data-token-1"
	b.env["TIYN_MONETIX_DATA_SECRET"] = string(secret)
	code, out, errOut := b.run(t, "", "reconcile", "day", b.day.String())
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	wantLines(t, out, "source data_api: 2 rows", "matched  1  150.00", "healed  1  75.50", "no breaks")
	if strings.Contains(out+errOut, string(secret)) || strings.Contains(out+errOut, "data-token-1") {
		t.Fatal("a Data API secret was printed")
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if len(api.requests) != 1 || !api.requests[0].From.Equal(b.day.Start()) || !api.requests[0].To.Equal(b.day.End()) ||
		api.requests[0].Zone.String() != "Asia/Almaty" {
		t.Fatalf("requests %+v", api.requests)
	}
}

func TestProgressLine(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := newProgressLine(&buf, true)
	p.size = 1000
	p.read.Store(500)
	p.update(ports.ReconProgress{Phase: ports.PhaseReading, Rows: 10})
	p.update(ports.ReconProgress{Phase: ports.PhaseReading, Rows: 11}) // within the interval: not drawn
	p.update(ports.ReconProgress{Phase: ports.PhaseMatching, Rows: 10, Done: 10})
	p.update(ports.ReconProgress{Phase: ports.PhaseFinished, Rows: 10, Done: 10})
	p.clear()
	want := "\r\x1b[K[===============               ]  50% reading the report: 10 rows" +
		"\r\x1b[K[==============================] 100% matching: 10 of 10 rows\r\x1b[K"
	if buf.String() != want {
		t.Fatalf("drew %q\nwant %q", buf.String(), want)
	}
	var quiet bytes.Buffer
	q := newProgressLine(&quiet, false)
	q.update(ports.ReconProgress{Phase: ports.PhaseReading, Rows: 10})
	q.clear()
	if quiet.Len() != 0 {
		t.Fatalf("off a terminal it drew %q", quiet.String())
	}
	if got := bar(3, 0); got != "" {
		t.Fatalf("bar of an unknown whole %q", got)
	}
}

func TestMajorKZT(t *testing.T) {
	t.Parallel()
	for minor, want := range map[int64]string{0: "0.00", 5: "0.05", 150: "1.50", -150: "-1.50", 123456789: "1234567.89", -1: "-0.01"} {
		if got := majorKZT(big.NewInt(minor)); got != want {
			t.Errorf("majorKZT(%d) = %q, want %q", minor, got, want)
		}
	}
	huge, _ := new(big.Int).SetString("123456789012345678901234567", 10)
	if got := majorKZT(huge); got != "1234567890123456789012345.67" {
		t.Errorf("majorKZT(huge) = %q", got)
	}
	if got := majorKZT(nil); got != "0.00" {
		t.Errorf("majorKZT(nil) = %q", got)
	}
}

func TestReconMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := newReconMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	classes := map[domain.ReconClass]ports.ClassTotal{domain.ClassMatched: {Count: 5}, domain.ClassOrphanOperation: {Count: 2}}
	m.observe("csv", ports.ReconRun{Classes: classes}, nil)
	m.observe("csv", ports.ReconRun{Classes: classes, Unchanged: true}, nil)
	m.observe("data_api", ports.ReconRun{Classes: map[domain.ReconClass]ports.ClassTotal{domain.ClassMatched: {Count: 1}}}, nil)
	m.observe("data_api", ports.ReconRun{}, fmt.Errorf("x: %w", ports.ErrRunInProgress))
	m.observe("data_api", ports.ReconRun{}, fmt.Errorf("read: %w", io.ErrUnexpectedEOF))
	m.observe("csv", ports.ReconRun{}, fmt.Errorf("x: %w", domain.ErrInvalidInput))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			key := f.GetName()
			for _, l := range mt.GetLabel() {
				key += " " + l.GetName() + "=" + l.GetValue() // labels come sorted by name
			}
			got[key] = mt.GetCounter().GetValue()
		}
	}
	for key, want := range map[string]float64{
		"tiyn_reconciliation_runs_total result=breaks source=csv":           1,
		"tiyn_reconciliation_runs_total result=unchanged source=csv":        1,
		"tiyn_reconciliation_runs_total result=refused source=csv":          1,
		"tiyn_reconciliation_runs_total result=clean source=data_api":       1,
		"tiyn_reconciliation_runs_total result=in_progress source=data_api": 1,
		"tiyn_reconciliation_runs_total result=failed source=data_api":      1,
		"tiyn_reconciliation_runs_total result=clean source=csv":            0,
		"tiyn_reconciliation_items_total class=matched":                     6, // the unchanged rerun adds nothing
		"tiyn_reconciliation_items_total class=orphan_operation":            2,
		"tiyn_reconciliation_items_total class=healed":                      0,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
	// Every class and every result is a series from the start.
	if n := len(got); n != len(domain.ReconClasses())+12 {
		t.Errorf("%d series, want %d classes and 12 runs: %v", n, len(domain.ReconClasses()), got)
	}
}

func TestServeReconcilesAndCounts(t *testing.T) {
	t.Parallel()
	env := sqliteEnv(t)
	env["TIYN_API_TOKENS"] = "ops:operator:" + testTokenSecret
	env["TIYN_MONETIX_PROJECTS"] = "1234=" + testProjectSecret
	env["TIYN_METRICS_LISTEN"] = "127.0.0.1:0"
	env["TIYN_STATUS_POLL"] = "false"
	s := startServe(t, env)
	b := &bookDay{day: domain.DayOf(time.Now().Add(-24*time.Hour), mustZone(t))}
	day := b.day.String()
	post := func(body string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, "http://"+s.addr+"/v1/reconciliations?day="+day, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+testTokenSecret)
		req.Header.Set("Content-Type", "text/csv")
		resp, err := (&http.Client{Timeout: waitTimeout}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	code, out := post(monetix.DefaultReportHeader + "\n" + b.line("not-ours", "10.00"))
	if code != http.StatusCreated || !strings.Contains(out, `"orphan_operation":1`) {
		t.Fatalf("POST: %d %s", code, out)
	}
	if code, out := post(""); code != http.StatusUnprocessableEntity || !strings.Contains(out, "data_api_not_configured") {
		t.Fatalf("POST without a body: %d %s", code, out)
	}
	_, metrics := s.doAt(t, s.aux["metrics"], http.MethodGet, "/metrics")
	for _, w := range []string{`tiyn_reconciliation_runs_total{result="breaks",source="csv"} 1`,
		`tiyn_reconciliation_items_total{class="orphan_operation"} 1`, `tiyn_reconciliation_items_total{class="healed"} 0`} {
		if !strings.Contains(metrics, w) {
			t.Errorf("metrics lack %q", w)
		}
	}
	_, public := s.do(t, http.MethodGet, "/metrics", "", "")
	if strings.Contains(public, "tiyn_reconciliation_") {
		t.Error("the main listener's /metrics shows reconciliation figures")
	}
	s.stop(t)
}

func mustZone(t *testing.T) *time.Location {
	t.Helper()
	loc, err := domain.LoadBusinessZone("")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestServeRefusesABadBusinessZone(t *testing.T) {
	t.Parallel()
	env := sqliteEnv(t)
	env["TIYN_BUSINESS_TZ"] = "Asia/Nowhere"
	m, _, _ := testMain(env)
	code, err := run(t, m, "serve", "--listen", "127.0.0.1:0")
	if code != exitUsage || err == nil || !strings.Contains(err.Error(), "TIYN_BUSINESS_TZ") {
		t.Fatalf("exit %d, %v", code, err)
	}
	cfg, _, err := load(t, map[string]string{"TIYN_BUSINESS_TZ": "UTC"})
	if err != nil || cfg.BusinessZone == nil || cfg.BusinessZone.String() != "UTC" {
		t.Fatalf("UTC: %v %v", cfg.BusinessZone, err)
	}
	cfg, _, err = load(t, nil)
	if err != nil || cfg.businessZone().String() != "Asia/Almaty" {
		t.Fatalf("default: %v %v", cfg.BusinessZone, err)
	}
}

// TestBooksInREADME: the README's reconciliation section prints the
// default Data API mapping and the report header as the code has them,
// names the exit codes, the settings and every route of the books.
func TestBooksInREADME(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "### Reconciling and closing a business day")
	if !ok {
		t.Fatal("README has no reconciliation section")
	}
	section, _, _ = strings.Cut(section, "\n### ")
	want := []string{"`" + monetix.DefaultDataMapping().String() + "`", "`" + monetix.DefaultReportHeader + "`",
		"`3`", "TIYN_BUSINESS_TZ", "TIYN_MONETIX_DATA_URL", "TIYN_MONETIX_DATA_MAPPING", "day_closed",
		"`POST /v1/reconciliations?day=", "`GET /v1/reconciliations[?day=]`", "`GET /v1/reconciliations/{id}`",
		"`GET /v1/reconciliations/{id}/items[?class=]`", "`…/items.csv[?class=]`", "`POST /v1/days/{date}/close`",
		"`GET /v1/days/{date}`", "`GET /v1/days/{date}.csv`", "tiyn_reconciliation_runs_total", "tiyn_reconciliation_items_total"}
	for _, c := range domain.ReconClasses() {
		want = append(want, "`"+c.String()+"`")
	}
	for _, w := range want {
		if !strings.Contains(section, w) {
			t.Errorf("README's reconciliation section lacks %s", w)
		}
	}
	if !strings.Contains(string(b), "| `"+envBusinessTZ+"` | `"+domain.DefaultBusinessZone+"` |") {
		t.Error("README's settings table lacks TIYN_BUSINESS_TZ with its default")
	}
}
