package console_test

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/console"
	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/ports"
)

// reconEnv is an env whose console reconciles CSV reports as tiyn serve
// does (the Monetix report reader, the kassa24 method, project 42).
func reconEnv(t *testing.T) *env {
	t.Helper()
	return newEnv(t, envOptions{opts: console.Options{Reconciliation: rest.Reconciliation{
		Template: ports.ReconcileDay{Provider: kassa.Provider, Method: kassa.Method, Projects: []string{kassa.Project}, Limits: limits},
		CSV: func(body io.Reader, columns, units string) (ports.OperationSource, error) {
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
		},
		MaxCSVBytes: 1 << 20,
	}}})
}

// uploadForm is the upload's multipart body; fieldsFirst=false puts the
// file before the CSRF token.
func uploadForm(t *testing.T, csrf, day, report string, fieldsFirst bool) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fields := func() {
		if csrf != "" {
			_ = mw.WriteField("csrf", csrf)
		}
		_ = mw.WriteField("day", day)
		_ = mw.WriteField("columns", "")
		_ = mw.WriteField("amount_units", "major")
	}
	file := func() {
		fw, err := mw.CreateFormFile("report", "report.csv")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(fw, report)
	}
	if fieldsFirst {
		fields()
		file()
	} else {
		file()
		fields()
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), &buf
}

func (b *browser) upload(contentType string, body io.Reader) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.e.srv.URL+"/console/reconciliations", body)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	return b.do(req)
}

func TestReconcileAndCloseADay(t *testing.T) {
	t.Parallel()
	e := reconEnv(t)
	acc := e.openAccount("c-1")
	paid := e.deposit("c-1", 50_000)
	e.callback(paid.PaymentID, "op-paid", 50_000)
	missed := e.deposit("c-1", 30_000) // the callback never came: the report heals it
	odd := e.deposit("c-1", 20_000)    // the report claims another amount
	now := time.Now().In(e.zone)
	day := now.Format(time.DateOnly)
	at := now.Format(time.DateTime)
	report := monetix.DefaultReportHeader + "\n" + strings.Join([]string{
		fmt.Sprintf("42,%s,op-paid,sale,success,500.00,KZT,%s", paid.PaymentID, at),
		fmt.Sprintf("42,%s,op-missed,sale,success,300.00,KZT,%s", missed.PaymentID, at),
		fmt.Sprintf("42,%s,op-odd,sale,success,250.00,KZT,%s", odd.PaymentID, at),
		fmt.Sprintf("42,never-issued,op-orphan,sale,success,10.00,KZT,%s", at),
	}, "\n") + "\n"

	// A read token sees the page but no upload form, and cannot post one.
	viewer := e.browser()
	viewer.login(viewerSecret)
	p := viewer.get("/console/reconciliations")
	must(t, p, http.StatusOK, "Reconciliation with the platform")
	mustNot(t, p, `enctype="multipart/form-data"`)
	ct, body := uploadForm(t, viewer.csrf, day, report, true)
	must(t, viewer.upload(ct, body), http.StatusForbidden, "an operator token is needed")

	b := e.browser()
	b.login(annaSecret)
	p = b.get("/console/reconciliations")
	must(t, p, http.StatusOK, `enctype="multipart/form-data"`, `name="report"`)
	// Without the CSRF token, or with the file before it: refused, no run.
	ct, body = uploadForm(t, "", day, report, true)
	must(t, b.upload(ct, body), http.StatusForbidden, "This form is out of date")
	ct, body = uploadForm(t, b.csrf, day, report, false)
	must(t, b.upload(ct, body), http.StatusForbidden, "This form is out of date")
	if got := e.balance(acc.ID()); got != 50_000 {
		t.Fatalf("a refused upload moved money: %d", got)
	}

	ct, body = uploadForm(t, b.csrf, day, report, true)
	p = b.upload(ct, body)
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), "/console/reconciliations/") {
		t.Fatalf("upload: %d to %q\n%s", p.status, p.location(), p.body)
	}
	runPath := p.location()
	p = b.get(runPath)
	must(t, p, http.StatusOK, "reconciled: 4 rows, 2 breaks.", "Counts per class",
		"healed (credited now)", "amount mismatch", "operation of an unknown payment", "Open the exception",
		`href="/console/deposits/`+missed.PaymentID+`"`)
	counts := map[string]string{}
	for _, m := range regexp.MustCompile(`(?s)<th scope="row">(?:<a href="[^"]*">)?([^<]+)(?:</a>)?.*?</th><td class="num">([0-9,]+)</td>`).FindAllStringSubmatch(p.body, -1) {
		counts[m[1]] = m[2]
	}
	for class, n := range map[string]string{"matched": "1", "healed (credited now)": "1", "amount mismatch": "1",
		"operation of an unknown payment": "1", "pending on both sides": "0"} {
		if counts[class] != n {
			t.Fatalf("class %q counts %q, want %s (all: %v)", class, counts[class], n, counts)
		}
	}
	// The heal went through the one credit path: 300.00 more, once.
	if got := e.balance(acc.ID()); got != 80_000 {
		t.Fatalf("balance after the heal %d, want 80000", got)
	}
	// Filter the items by class.
	p = b.get(runPath + "?class=amount_mismatch")
	must(t, p, http.StatusOK, "Items: amount mismatch", odd.PaymentID)
	mustNot(t, p, missed.PaymentID+"</a></td><td class=\"mono\">op-missed")

	// The same file again changes nothing, and says so.
	b.get("/console/reconciliations")
	ct, body = uploadForm(t, b.csrf, day, report, true)
	p = b.follow(b.upload(ct, body))
	must(t, p, http.StatusOK, "already reconciled with this very file")
	if got := e.balance(acc.ID()); got != 80_000 {
		t.Fatalf("a second upload moved money: %d", got)
	}
	// A broken report is a flash on the runs page, nothing applied.
	b.get("/console/reconciliations")
	ct, body = uploadForm(t, b.csrf, day, "not,a,report\n", true)
	p = b.follow(b.upload(ct, body))
	must(t, p, http.StatusOK, "flash-err")

	// The overview names the last run.
	must(t, b.get("/console/"), http.StatusOK, "Last run: ", ", failed</a>", "is not closed yet.") // the broken report's run

	// Closing today: the day has not ended.
	p = b.get("/console/days/" + day)
	must(t, p, http.StatusOK, "Open", "The day has not ended yet")
	mustNot(t, p, "/close\"")
	p = b.follow(b.post("/console/days/"+day+"/close", url.Values{"confirm": {"yes"}}))
	must(t, p, http.StatusOK, "The day has not ended yet.")

	// A past day without a run: refused, unless overridden with a reason.
	past := "2026-01-05"
	p = b.get("/console/days/" + past)
	must(t, p, http.StatusOK, "Close the day", `name="override"`)
	p = b.follow(b.post("/console/days/"+past+"/close", url.Values{"confirm": {"yes"}}))
	must(t, p, http.StatusOK, "open breaks")
	p = b.follow(b.post("/console/days/"+past+"/close", url.Values{"confirm": {"yes"}, "override": {"yes"}, "reason": {" "}}))
	must(t, p, http.StatusOK, "An override needs a reason.")
	p = b.follow(b.post("/console/days/"+past+"/close", url.Values{"override": {"yes"}, "reason": {"no payments that day"}}))
	must(t, p, http.StatusOK, "the change was not confirmed")
	p = b.follow(b.post("/console/days/"+past+"/close", url.Values{"confirm": {"yes"}, "override": {"yes"}, "reason": {"no <b>payments</b> that day"}}))
	must(t, p, http.StatusOK, "is closed.", "Closed with an override", "no &lt;b&gt;payments&lt;/b&gt; that day")
	mustNot(t, p, "Close the day</button>")
	p = b.follow(b.post("/console/days/"+past+"/close", url.Values{"confirm": {"yes"}}))
	must(t, p, http.StatusOK, "The day is closed already.")
	// A read token cannot close.
	viewer.get("/console/days/2026-01-06")
	must(t, viewer.post("/console/days/2026-01-06/close", url.Values{"confirm": {"yes"}, "override": {"yes"}, "reason": {"r"}}),
		http.StatusForbidden, "an operator token is needed")
	must(t, b.get("/console/days/not-a-day"), http.StatusBadRequest)
}

func TestReconcileWithoutACSVSource(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	b := e.browser()
	b.login(annaSecret)
	p := b.get("/console/reconciliations")
	must(t, p, http.StatusOK, "Reconciliation with the platform")
	mustNot(t, p, `enctype="multipart/form-data"`)
	ct, body := uploadForm(t, b.csrf, "2026-01-05", monetix.DefaultReportHeader+"\n", true)
	must(t, b.follow(b.upload(ct, body)), http.StatusOK, "This server does not reconcile reports.")
}
