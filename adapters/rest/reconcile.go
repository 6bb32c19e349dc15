package rest

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tiyn/tiyn/adapters/export"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// Reconciliation runs: POST /v1/reconciliations reconciles a business day
// against a CSV report (the body) or the Data API (no body); the GET
// routes read the runs and their items.

// Cursor kinds of the reconciliation lists.
const (
	cursorReconRun  = "recon_run"
	cursorReconItem = "recon_item"
)

// Reconciliation sources on the wire (ports.OperationSource.Kind).
const (
	sourceCSV     = "csv"
	sourceDataAPI = "data_api"
)

type classSumView struct {
	// Exact integers of any size (JSON numbers): a source may list
	// anything, and a class may mix currencies (currency_mismatch).
	PlatformMinor *big.Int `json:"platform_minor"`
	LedgerMinor   *big.Int `json:"ledger_minor"`
}

type reconRunView struct {
	ID         string  `json:"id"`
	Day        string  `json:"day"`
	TimeZone   string  `json:"time_zone"`
	Source     string  `json:"source"`
	Status     string  `json:"status"`
	Unchanged  bool    `json:"unchanged"`
	InputHash  *string `json:"input_hash"`
	StartedBy  string  `json:"started_by"`
	StartedAt  string  `json:"started_at"`
	FinishedAt *string `json:"finished_at"`
	Error      *string `json:"error"`
	Rows       int64   `json:"rows"`
	BadRows    int64   `json:"bad_rows"`
	// Breaks counts the items of break classes; Counts and Sums have an
	// entry for every class, zero when none (and while not finished).
	Breaks int64                   `json:"breaks"`
	Counts map[string]int64        `json:"counts"`
	Sums   map[string]classSumView `json:"sums"`
}

func viewReconRun(r ports.ReconRun) reconRunView {
	v := reconRunView{
		ID: r.ID, Day: r.Day.String(), Source: r.Source, Status: r.Status.String(), Unchanged: r.Unchanged,
		InputHash: optional(r.InputHash), StartedBy: r.StartedBy, StartedAt: mustTime(r.StartedAt),
		FinishedAt: formatTime(r.FinishedAt), Error: optional(r.Error), Rows: r.Rows, BadRows: r.BadRows,
		Breaks: r.Breaks(), Counts: map[string]int64{}, Sums: map[string]classSumView{},
	}
	if loc := r.Day.Location(); loc != nil {
		v.TimeZone = loc.String()
	}
	for _, c := range domain.ReconClasses() {
		t := r.Classes[c]
		sum := classSumView{PlatformMinor: new(big.Int), LedgerMinor: new(big.Int)}
		if t.Platform != nil {
			sum.PlatformMinor.Set(t.Platform)
		}
		if t.Ledger != nil {
			sum.LedgerMinor.Set(t.Ledger)
		}
		v.Counts[c.String()], v.Sums[c.String()] = t.Count, sum
	}
	return v
}

type reconRunList struct {
	Items      []reconRunView `json:"items"`
	NextCursor *string        `json:"next_cursor"`
}

// moneyView is an amount of an item: null when the side has none.
type moneyView struct {
	AmountMinor int64  `json:"amount_minor"`
	Amount      string `json:"amount"`
	Currency    string `json:"currency"`
}

func viewMoney(a domain.Amount) *moneyView {
	if a.Currency().IsZero() {
		return nil
	}
	return &moneyView{AmountMinor: a.Minor(), Amount: a.String(), Currency: a.Currency().Code()}
}

type reconItemView struct {
	RunID           string     `json:"run_id"`
	Seq             int64      `json:"seq"`
	Class           string     `json:"class"`
	Break           bool       `json:"break"`
	Line            *int       `json:"line"`
	ProjectID       *string    `json:"project_id"`
	PaymentID       *string    `json:"payment_id"`
	OperationID     *string    `json:"operation_id"`
	OperationType   *string    `json:"operation_type"`
	OperationStatus *string    `json:"operation_status"`
	CompletedAt     *string    `json:"completed_at"`
	Platform        *moneyView `json:"platform"`
	Ledger          *moneyView `json:"ledger"`
	DepositID       *string    `json:"deposit_id"`
	DepositStatus   *string    `json:"deposit_status"`
	ExceptionID     *string    `json:"exception_id"`
	Note            string     `json:"note"`
	Raw             *string    `json:"raw"`
}

func viewReconItem(it ports.ReconItem) reconItemView {
	v := reconItemView{
		RunID: it.RunID, Seq: it.Seq, Class: it.Class.String(), Break: it.Class.IsBreak(),
		ProjectID: optional(it.ProjectID), PaymentID: optional(it.PaymentID), OperationID: optional(it.OperationID),
		OperationType: optional(it.OperationType), OperationStatus: optional(it.OperationStatus),
		CompletedAt: formatTime(it.CompletedAt), Platform: viewMoney(it.Platform), Ledger: viewMoney(it.Ledger),
		DepositID: optional(it.DepositID), DepositStatus: optional(it.DepositStatus), ExceptionID: optional(it.ExceptionID),
		Note: it.Note, Raw: optional(it.Raw),
	}
	if it.Line > 0 {
		line := it.Line
		v.Line = &line
	}
	return v
}

type reconItemList struct {
	Items      []reconItemView `json:"items"`
	NextCursor *string         `json:"next_cursor"`
}

// reconcile: POST /v1/reconciliations?day=YYYY-MM-DD[&columns=…][&amount_units=major|minor]
// (operator role). A text/csv body is the day's report, streamed to the
// report reader; no body asks the Data API. 201 with the new run, 200
// with the earlier run when the same input was reconciled already
// (unchanged: true). One run of a day at a time (409 run_in_progress).
func (a *api) reconcile(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := onlyParams(q, "day", "columns", "amount_units"); err != nil {
		return err
	}
	day, err := a.queryDay(q)
	if err != nil {
		return err
	}
	src, err := a.reconSource(r, q)
	if err != nil {
		return err
	}
	release, err := a.recons.acquire()
	if err != nil {
		return err
	}
	defer release()
	// A report upload or a Data API day may take longer than the server's
	// read and write timeouts, which are meant for ordinary requests.
	deadline := time.Now().Add(a.recon.Timeout)
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline.Add(time.Minute))
	ctx, cancel := context.WithDeadline(r.Context(), deadline)
	defer cancel()

	cmd := a.recon.Template
	cmd.Day, cmd.Source, cmd.StartedBy, cmd.Progress = day, src, ActorFrom(r.Context()), nil
	run, err := a.ledger.ReconcileDay(ctx, cmd)
	if err != nil {
		return reconcileError(err, src, day)
	}
	status := http.StatusCreated
	if run.Unchanged {
		status = http.StatusOK
	}
	w.Header().Set("Location", "/v1/reconciliations/"+url.PathEscape(run.ID))
	return a.writeJSON(w, status, viewReconRun(run))
}

// reconSource picks the run's source: the body's report, or the Data API.
func (a *api) reconSource(r *http.Request, q url.Values) (*watchedSource, error) {
	columns, units := q.Get("columns"), q.Get("amount_units")
	if r.ContentLength == 0 {
		if q.Has("columns") || q.Has("amount_units") {
			return nil, errInvalidRequest("columns and amount_units describe a CSV body; this request has none")
		}
		if a.recon.DataAPI == nil {
			return nil, errUnprocessable(CodeDataAPINotConfigured,
				"no CSV body, and the Monetix Data API is not configured on this server (TIYN_MONETIX_DATA_URL, "+
					"TIYN_MONETIX_DATA_TOKEN, TIYN_MONETIX_DATA_SECRET): send the day's report as a text/csv body")
		}
		return &watchedSource{OperationSource: a.recon.DataAPI}, nil
	}
	if a.recon.CSV == nil {
		return nil, errUnprocessable(CodeInvalidRequest, "this server does not reconcile CSV reports")
	}
	if units != "" && units != "major" && units != "minor" {
		return nil, errInvalidRequest("amount_units must be major or minor")
	}
	src, err := a.recon.CSV(r.Body, columns, units)
	if err != nil {
		return nil, errInvalidRequest("%s", truncate(err.Error(), 500))
	}
	return &watchedSource{OperationSource: src}, nil
}

// watchedSource remembers the error its source stopped with, so that a
// failed run is answered as the source's failure (the client's file, or
// the platform) rather than the ledger's.
type watchedSource struct {
	ports.OperationSource
	err error
}

func (s *watchedSource) Operations(ctx context.Context, day domain.BusinessDay, row func(ports.SourceRow) error, bad func(ports.RowError) error) (ports.SourceSummary, error) {
	sum, err := s.OperationSource.Operations(ctx, day, row, bad)
	s.err = err
	return sum, err
}

// reconcileError answers a run that did not finish. A source that could
// not be read to its end failed the run (recorded as failed, nothing
// applied): a report is the client's (400, or 413 past the body limit),
// the Data API the platform's (502 source_unavailable). Anything else is
// the ledger's, mapped as everywhere.
func reconcileError(err error, src *watchedSource, day domain.BusinessDay) error {
	var tooBig *http.MaxBytesError
	switch {
	case src.err == nil, errors.As(err, &tooBig), errors.Is(src.err, context.Canceled), errors.Is(src.err, context.DeadlineExceeded):
		return err
	case src.Kind() == sourceDataAPI:
		return newHTTPError(http.StatusBadGateway, CodeSourceUnavailable,
			"the Monetix Data API did not give the whole of %s (%s); the run is recorded as failed and nothing was applied "+
				"(GET /v1/reconciliations?day=%s)", day, truncate(src.err.Error(), 300), day)
	}
	return errInvalidRequest("the CSV report could not be read to its end: %s; the run is recorded as failed and nothing "+
		"was applied", truncate(src.err.Error(), 500))
}

// queryDay reads ?day= as a business day (required).
func (a *api) queryDay(q url.Values) (domain.BusinessDay, error) {
	v := q.Get("day")
	if v == "" {
		return domain.BusinessDay{}, errInvalidRequest("day is required: YYYY-MM-DD, a business day in %s", a.ledger.BusinessZone())
	}
	return a.parseDay(v)
}

func (a *api) parseDay(v string) (domain.BusinessDay, error) {
	day, err := a.ledger.ParseDay(v)
	if err != nil {
		return domain.BusinessDay{}, errInvalidRequest("day %q is not a date YYYY-MM-DD (a business day in %s)",
			truncate(v, 32), a.ledger.BusinessZone())
	}
	return day, nil
}

// onlyParams refuses query parameters a route does not take: a misspelt
// filter must not pass for no filter.
func onlyParams(q url.Values, names ...string) error {
	for k := range q {
		known := false
		for _, n := range names {
			known = known || k == n
		}
		if !known {
			return errInvalidRequest("unknown query parameter %q; this route takes %s", truncate(k, 40), strings.Join(names, ", "))
		}
	}
	return nil
}

// listReconRuns: GET /v1/reconciliations?day=&limit=&cursor=: runs, newest
// first, of one day or every day.
func (a *api) listReconRuns(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var query ports.ReconRunQuery
	var err error
	if q.Get("day") != "" {
		if query.Day, err = a.parseDay(q.Get("day")); err != nil {
			return err
		}
	}
	if query.Limit, err = queryLimit(q); err != nil {
		return err
	}
	if query.BeforeID, err = queryCursor(q, cursorReconRun); err != nil {
		return err
	}
	runs, err := a.ledger.ListReconRuns(r.Context(), query)
	if err != nil {
		return err
	}
	out := reconRunList{Items: make([]reconRunView, 0, len(runs))}
	for _, run := range runs {
		out.Items = append(out.Items, viewReconRun(run))
	}
	if n := len(runs); n > 0 {
		out.NextCursor = nextCursor(cursorReconRun, n, query.Limit, runs[n-1].ID)
	}
	return a.writeJSON(w, http.StatusOK, out)
}

// getReconRun: GET /v1/reconciliations/{id}.
func (a *api) getReconRun(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	run, err := a.ledger.ReconRun(r.Context(), id)
	if err != nil {
		return notFound(err, "reconciliation", id)
	}
	return a.writeJSON(w, http.StatusOK, viewReconRun(run))
}

// itemQuery reads the filters of a run's items: ?class= (one class name,
// validated) and the cursor.
func itemQuery(r *http.Request) (ports.ReconItemQuery, error) {
	q := r.URL.Query()
	query := ports.ReconItemQuery{RunID: r.PathValue("id")}
	if c := q.Get("class"); c != "" {
		var err error
		if query.Class, err = domain.ParseReconClass(c); err != nil {
			return query, errInvalidRequest("class must be one of %s", classNames())
		}
	}
	var err error
	query.AfterSeq, err = querySeqCursor(q, cursorReconItem)
	return query, err
}

func classNames() string {
	var names []string
	for _, c := range domain.ReconClasses() {
		names = append(names, c.String())
	}
	return strings.Join(names, ", ")
}

// listReconItems: GET /v1/reconciliations/{id}/items?class=&limit=&cursor=:
// a run's items in source order (the ledger-only deposits last).
func (a *api) listReconItems(w http.ResponseWriter, r *http.Request) error {
	query, err := itemQuery(r)
	if err != nil {
		return err
	}
	if query.Limit, err = queryLimit(r.URL.Query()); err != nil {
		return err
	}
	items, err := a.ledger.ListReconItems(r.Context(), query)
	if err != nil {
		return notFound(err, "reconciliation", query.RunID)
	}
	out := reconItemList{Items: make([]reconItemView, 0, len(items))}
	for _, it := range items {
		out.Items = append(out.Items, viewReconItem(it))
	}
	if n := len(items); n > 0 {
		out.NextCursor = nextCursor(cursorReconItem, n, query.Limit, strconv.FormatInt(items[n-1].Seq, 10))
	}
	return a.writeJSON(w, http.StatusOK, out)
}

// reconItemsCSV: GET /v1/reconciliations/{id}/items.csv?class=&cursor=&limit=:
// the items as CSV (export.ReconItems), streamed.
func (a *api) reconItemsCSV(w http.ResponseWriter, r *http.Request) error {
	query, err := itemQuery(r)
	if err != nil {
		return err
	}
	limit, err := queryExportLimit(r.URL.Query())
	if err != nil {
		return err
	}
	first := query.AfterSeq
	fetch := func(ctx context.Context, after *ports.ReconItem, n int) ([]ports.ReconItem, error) {
		iq := query
		iq.Limit, iq.AfterSeq = n, first
		if after != nil {
			iq.AfterSeq = after.Seq
		}
		items, err := a.ledger.ListReconItems(ctx, iq)
		return items, notFound(err, "reconciliation", query.RunID)
	}
	name := "reconciliation-" + query.RunID
	if !query.Class.IsZero() {
		name += "-" + query.Class.String()
	}
	return streamCSV(a, w, r, csvExport[ports.ReconItem]{
		filename: name + ".csv", table: export.ReconItems, limit: limit, fetch: fetch,
	})
}

// breaksByClass names a run's break counts, for a refused close.
func breaksByClass(run ports.ReconRun) string {
	var parts []string
	for _, c := range domain.ReconClasses() {
		if n := run.Count(c); c.IsBreak() && n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", c, n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
