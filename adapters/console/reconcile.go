package console

import (
	"context"
	"errors"
	"io"
	"math/big"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// Reconciliation: the runs, one run's counts per class and its items (the
// breaks linked to their deposits and exceptions), a day's report
// uploaded to start a run, and closing a business day. The ledger's rules
// are the REST API's: one run of a day at a time, the same input changes
// nothing twice, a day closes once it has ended and its latest run has no
// open break (or with an override and a reason).

// maxConcurrentUploads bounds the reconciliations the console runs at once
// (each reads a whole day; the ledger runs one per day anyway).
const maxConcurrentUploads = 2

// maxUploadField bounds each small field of the upload form (the CSRF
// token, the day, the column mapping).
const maxUploadField = 4 << 10

type reconRunsData struct {
	Day         string
	Runs        []ports.ReconRun
	Pager       pager
	CanUpload   bool
	Yesterday   string    // the last day that has ended (YYYY-MM-DD), for the forms
	YesterdayAt time.Time // its start, to show
}

// reconciliations: GET /console/reconciliations?day=&before=&limit=.
func (c *Console) reconciliations(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	q := r.URL.Query()
	data := reconRunsData{Day: q.Get("day"), CanUpload: rc.canAct() && c.recon.CSV != nil}
	query := ports.ReconRunQuery{}
	var err error
	if data.Day != "" {
		if query.Day, err = c.ledger.ParseDay(data.Day); err != nil {
			return &queryError{"day"}
		}
	}
	if query.Limit, err = pageLimit(q); err != nil {
		return err
	}
	if query.BeforeID, err = queryText(q, "before"); err != nil {
		return err
	}
	runs, err := c.ledger.ListReconRuns(r.Context(), query)
	if err != nil {
		return err
	}
	data.Runs = runs
	if n := len(runs); n > 0 && n >= query.Limit {
		next := cloneValues(q)
		next.Set("before", runs[n-1].ID)
		data.Pager.Next = withQuery(r.URL.Path, next)
	}
	if q.Get("before") != "" {
		first := cloneValues(q)
		first.Del("before")
		data.Pager.First = withQuery(r.URL.Path, first)
	}
	y := c.lastEndedDay()
	data.Yesterday, data.YesterdayAt = y.String(), y.Start()
	c.render(w, r, rc, http.StatusOK, "reconciliations", rc.loc.T("recon.title"), "reconciliations", data)
	return nil
}

// lastEndedDay is yesterday in the business zone: the latest day an
// operator can reconcile in full and close.
func (c *Console) lastEndedDay() domain.BusinessDay {
	today := domain.DayOf(c.now(), c.zone)
	return domain.DayOf(today.Start().Add(-time.Hour), c.zone)
}

// classRow is one class of a run.
type classRow struct {
	Class    string
	Break    bool
	Count    int64
	Platform string // the sum, formatted
	Ledger   string
	Href     string // the run's items of this class
}

type reconRunData struct {
	Run     ports.ReconRun
	Classes []classRow
	Breaks  int64
	Class   string // the item filter
	Items   []reconItemRow
	Pager   pager
	DayHref string
	AllHref string
}

type reconItemRow struct {
	ports.ReconItem
	Break         bool
	DepositHref   string
	ExceptionHref string
}

// reconciliation: GET /console/reconciliations/{id}?class=&after=&limit=.
func (c *Console) reconciliation(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id := r.PathValue("id")
	run, err := c.ledger.ReconRun(r.Context(), id)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	data := reconRunData{Run: run, Breaks: run.Breaks(), Class: q.Get("class"),
		DayHref: pathOf("days", run.Day.String()), AllHref: pathOf("reconciliations", run.ID)}
	cur := c.currencies[0]
	for _, cl := range domain.ReconClasses() {
		t := run.Classes[cl]
		data.Classes = append(data.Classes, classRow{Class: cl.String(), Break: cl.IsBreak(), Count: t.Count,
			Platform: rc.loc.bigMoney(t.Platform, cur), Ledger: rc.loc.bigMoney(t.Ledger, cur),
			Href: withQuery(pathOf("reconciliations", run.ID), url.Values{"class": {cl.String()}})})
	}
	query := ports.ReconItemQuery{RunID: run.ID}
	if data.Class != "" {
		if query.Class, err = domain.ParseReconClass(data.Class); err != nil {
			return &queryError{"class"}
		}
	}
	if query.Limit, err = pageLimit(q); err != nil {
		return err
	}
	if s := q.Get("after"); s != "" {
		if query.AfterSeq, err = strconv.ParseInt(s, 10, 64); err != nil || query.AfterSeq < 0 {
			return &queryError{"after"}
		}
	}
	items, err := c.ledger.ListReconItems(r.Context(), query)
	if err != nil {
		return err
	}
	for _, it := range items {
		row := reconItemRow{ReconItem: it, Break: it.Class.IsBreak()}
		if it.DepositID != "" && it.PaymentID != "" {
			row.DepositHref = pathOf("deposits", it.PaymentID)
		}
		if it.ExceptionID != "" {
			row.ExceptionHref = pathOf("exceptions", it.ExceptionID)
		}
		data.Items = append(data.Items, row)
	}
	data.Pager = nextPage(r.URL, q, len(items), query.Limit, func() string { return strconv.FormatInt(items[len(items)-1].Seq, 10) })
	c.render(w, r, rc, http.StatusOK, "reconciliation", rc.loc.T("recon.run_title", rc.loc.Date(run.Day.Start())), "reconciliations", data)
	return nil
}

// bigMoney formats an exact sum of minor units in currency cur ("" for
// nil).
func (l localizer) bigMoney(v *big.Int, cur domain.Currency) string {
	if v == nil {
		v = new(big.Int)
	}
	if v.IsInt64() {
		return l.Money(domain.NewAmount(v.Int64(), cur))
	}
	// Beyond an amount: the digits, with the currency's decimals.
	s := v.String()
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	exp := int(cur.Exponent())
	for len(s) <= exp {
		s = "0" + s
	}
	text := sign + s
	if exp > 0 {
		text = sign + s[:len(s)-exp] + "." + s[len(s)-exp:]
	}
	return l.number(text) + nbsp + l.currency(cur)
}

// watchedSource remembers the error its source stopped with, so that a
// failed run is told as the report's fault rather than the ledger's.
type watchedSource struct {
	ports.OperationSource
	err error
}

func (s *watchedSource) Operations(ctx context.Context, day domain.BusinessDay, row func(ports.SourceRow) error, bad func(ports.RowError) error) (ports.SourceSummary, error) {
	sum, err := s.OperationSource.Operations(ctx, day, row, bad)
	s.err = err
	return sum, err
}

// errSourceFailed: the uploaded report could not be read to its end.
var errSourceFailed = errors.New("the report could not be read to its end")

type sourceError struct{ err error }

func (e *sourceError) Error() string { return errSourceFailed.Error() + ": " + e.err.Error() }
func (e *sourceError) Unwrap() error { return errSourceFailed }

// upload: POST /console/reconciliations (operator), multipart/form-data
// with, in this order, csrf, day, columns, amount_units and the report
// file (field report). The fields come first, so the CSRF token is
// checked before a byte of the file is read; the file is streamed to the
// report reader, never held whole.
func (c *Console) upload(w http.ResponseWriter, r *http.Request) {
	back := Prefix + "/reconciliations"
	sess, rc := c.postSession(w, r)
	if sess == nil {
		return
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		c.renderStatus(w, r, rc, http.StatusBadRequest, "err.bad_form")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, c.recon.MaxCSVBytes+64<<10)
	mr, err := r.MultipartReader()
	if err != nil {
		c.renderStatus(w, r, rc, http.StatusBadRequest, "err.bad_form")
		return
	}
	fields := url.Values{}
	var file io.Reader
	for file == nil {
		part, err := mr.NextPart()
		if err != nil {
			c.renderStatus(w, r, rc, http.StatusBadRequest, "err.bad_form")
			return
		}
		name := part.FormName()
		if name == "report" {
			file = part
			break
		}
		b, err := io.ReadAll(io.LimitReader(part, maxUploadField+1))
		if err != nil || len(b) > maxUploadField {
			c.renderStatus(w, r, rc, http.StatusBadRequest, "err.bad_form")
			return
		}
		fields.Set(name, string(b))
	}
	if !c.postAllowed(w, r, rc, rest.RoleOperator, fields.Get("csrf")) {
		return
	}
	if c.recon.CSV == nil {
		_ = c.redirectFlash(w, r, rc, back, flash{key: "err.recon_not_configured", err: true})
		return
	}
	day, err := c.ledger.ParseDay(strings.TrimSpace(fields.Get("day")))
	if err != nil {
		_ = c.redirectFlash(w, r, rc, back, flash{key: "err.bad_day", err: true})
		return
	}
	units := fields.Get("amount_units")
	if units != "" && units != "major" && units != "minor" {
		_ = c.redirectFlash(w, r, rc, back, flash{key: "err.bad_form", err: true})
		return
	}
	select {
	case c.uploads <- struct{}{}:
		defer func() { <-c.uploads }()
	default:
		_ = c.redirectFlash(w, r, rc, back, flash{key: "err.exports_busy", err: true})
		return
	}
	src, err := c.recon.CSV(file, strings.TrimSpace(fields.Get("columns")), units)
	if err != nil {
		_ = c.redirectFlash(w, r, rc, back, flash{key: "err.bad_columns", err: true, detail: err.Error()})
		return
	}
	// A day's report may take longer than the server's timeouts for
	// ordinary requests allow.
	deadline := time.Now().Add(c.recon.Timeout)
	ctl := http.NewResponseController(w)
	_ = ctl.SetReadDeadline(deadline)
	_ = ctl.SetWriteDeadline(deadline.Add(time.Minute))
	ctx, cancel := context.WithDeadline(r.Context(), deadline)
	defer cancel()
	watched := &watchedSource{OperationSource: src}
	cmd := c.recon.Template
	cmd.Day, cmd.Source, cmd.StartedBy, cmd.Progress = day, watched, sess.token.Name, nil
	run, err := c.ledger.ReconcileDay(ctx, cmd)
	if err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			err = errUploadTooLarge
		case watched.err != nil && !errors.Is(watched.err, context.Canceled) && !errors.Is(watched.err, context.DeadlineExceeded):
			err = &sourceError{watched.err}
		}
		if e := c.actionError(w, r, rc, back, err); e != nil {
			c.renderError(w, r, rc, e)
		}
		return
	}
	c.log.InfoContext(r.Context(), "console: reconciliation", "actor", sess.token.Name, "day", day.String(), "run", run.ID,
		"unchanged", run.Unchanged, "breaks", run.Breaks())
	key := "recon.done_flash"
	if run.Unchanged {
		key = "recon.unchanged_flash"
	}
	_ = c.redirectFlash(w, r, rc, pathOf("reconciliations", run.ID), flash{key: key,
		args: []any{rc.loc.Date(run.Day.Start()), rc.loc.Count(run.Rows), rc.loc.Count(run.Breaks())}})
}

var errUploadTooLarge = errors.New("the report is larger than the console takes")

// dayData is a business day's page.
type dayData struct {
	Day      domain.BusinessDay
	Date     string // YYYY-MM-DD
	Closed   bool
	Record   ports.DayRecord
	Balances []dayBalanceRow
	Pager    pager
	LastRun  *ports.ReconRun
	RunHref  string
	Ended    bool
	CanClose bool
}

type dayBalanceRow struct {
	ports.DayBalance
	Opening, Credits, Debits, Closing domain.Amount
	AccountHref                       string
}

// day: GET /console/days/{date}?after=&limit=: a closed day's record and
// statement, or an open day's latest run and the close form.
func (c *Console) day(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	day, err := c.ledger.ParseDay(r.PathValue("date"))
	if err != nil {
		return &queryError{"date"}
	}
	q := r.URL.Query()
	limit, err := pageLimit(q)
	if err != nil {
		return err
	}
	after, err := queryText(q, "after")
	if err != nil {
		return err
	}
	data := dayData{Day: day, Date: day.String(), Ended: !c.now().Before(day.End())}
	view, err := c.ledger.Day(r.Context(), ports.DayBalanceQuery{Day: day, AfterAccountID: after, Limit: limit})
	switch {
	case err == nil:
		data.Closed, data.Record = true, view.Record
		for _, b := range view.Balances {
			row := dayBalanceRow{DayBalance: b, Opening: domain.NewAmount(b.Opening, b.Currency), Credits: domain.NewAmount(b.Credits, b.Currency),
				Debits: domain.NewAmount(b.Debits, b.Currency), Closing: domain.NewAmount(b.Closing, b.Currency)}
			if !b.System {
				row.AccountHref = pathOf("accounts", b.AccountID)
			}
			data.Balances = append(data.Balances, row)
		}
		data.Pager = nextPage(r.URL, q, len(view.Balances), limit, func() string { return view.Balances[len(view.Balances)-1].AccountID })
	case errors.Is(err, ports.ErrNotFound):
	default:
		return err
	}
	runs, err := c.ledger.ListReconRuns(r.Context(), ports.ReconRunQuery{Day: day, Limit: 1})
	if err != nil {
		return err
	}
	if len(runs) > 0 {
		data.LastRun = &runs[0]
		data.RunHref = pathOf("reconciliations", runs[0].ID)
	}
	data.CanClose = rc.canAct() && !data.Closed && data.Ended
	c.render(w, r, rc, http.StatusOK, "day", rc.loc.T("day.title", rc.loc.Date(day.Start())), "reconciliations", data)
	return nil
}

// closeDay: POST /console/days/{date}/close (operator) with confirm=yes,
// and override=yes with a reason to close despite open breaks.
func (c *Console) closeDay(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	day, err := c.ledger.ParseDay(r.PathValue("date"))
	if err != nil {
		return &queryError{"date"}
	}
	back := pathOf("days", day.String())
	f := r.PostForm
	if f.Get("confirm") != "yes" {
		return c.redirectFlash(w, r, rc, back, flash{key: "err.not_confirmed", err: true})
	}
	override := f.Get("override") == "yes"
	reason := strings.TrimSpace(f.Get("reason"))
	if override && reason == "" {
		return c.redirectFlash(w, r, rc, back, flash{key: "err.reason_required", err: true})
	}
	if !override {
		reason = ""
	}
	if len(reason) > 4*domain.MaxNoteLen {
		return c.redirectFlash(w, r, rc, back, flash{key: "err.note_too_long", args: []any{domain.MaxNoteLen}, err: true})
	}
	rec, err := c.ledger.CloseDay(r.Context(), ports.CloseDay{Day: day, By: rc.sess.token.Name, Override: override, Reason: reason})
	if err != nil {
		return c.actionError(w, r, rc, back, err)
	}
	c.log.InfoContext(r.Context(), "console: day closed", "actor", rc.sess.token.Name, "day", day.String(), "override", override)
	return c.redirectFlash(w, r, rc, back, flash{key: "day.closed_flash", args: []any{rc.loc.Date(rec.Day.Start())}})
}

// reconOverview is the overview's reconciliation card: the latest run and
// whether yesterday is closed.
type reconOverview struct {
	Run       *ports.ReconRun
	RunHref   string
	Yesterday time.Time // the start of the last day that has ended
	DayHref   string
	Closed    bool
}

func (c *Console) reconOverview(ctx context.Context) (reconOverview, error) {
	var out reconOverview
	runs, err := c.ledger.ListReconRuns(ctx, ports.ReconRunQuery{Limit: 1})
	if err != nil {
		return out, err
	}
	if len(runs) > 0 {
		out.Run = &runs[0]
		out.RunHref = pathOf("reconciliations", runs[0].ID)
	}
	y := c.lastEndedDay()
	out.Yesterday, out.DayHref = y.Start(), pathOf("days", y.String())
	switch _, err := c.ledger.Day(ctx, ports.DayBalanceQuery{Day: y, Limit: 1}); {
	case err == nil:
		out.Closed = true
	case !errors.Is(err, ports.ErrNotFound):
		return out, err
	}
	return out, nil
}
