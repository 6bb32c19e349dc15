package rest

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tiyn/tiyn/adapters/export"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// CSV export limits. An export streams page by page and never holds the
// whole file; these bound it in rows and in time all the same (and
// limits.go bounds how many run at once).
const (
	// csvPageSize is how many rows one ledger read fetches.
	csvPageSize = 500
	// MaxCSVRows stops an export that has written this many rows; the
	// client sees a broken download, never a silently short file. Narrow
	// the from/to range to export more.
	MaxCSVRows = 10_000_000
	// MaxCSVDuration stops an export that has run this long (the default
	// of Options.ExportTimeout): a deadline on its context, so a slow
	// store read is cut too.
	MaxCSVDuration = 15 * time.Minute
	// csvPageWriteTimeout is the write deadline granted to each page, so a
	// long export is not cut by the server's whole-response WriteTimeout
	// while a stalled client still is.
	csvPageWriteTimeout = 60 * time.Second
)

// depositCSV is the deposit register as CSV.
var depositCSV = export.Table[domain.Deposit]{
	Header: []string{
		"id", "payment_id", "created_at", "settled_at", "status", "amount", "currency",
		"account_id", "customer_id", "provider", "method", "project", "operation_id",
	},
	Record: func(d domain.Deposit) []string {
		return []string{
			d.ID, export.Text(d.PaymentID), export.FormatTime(d.CreatedAt), export.FormatTime(d.SettledAt),
			d.Status.String(), d.Amount.String(), d.Amount.Currency().Code(), d.AccountID,
			export.Text(d.CustomerID), d.Channel.Provider, d.Channel.Method, export.Text(d.Channel.Project),
			export.Text(d.OperationID),
		}
	},
}

// queryExportLimit reads ?limit= of a CSV export: the most rows to export,
// validated exactly as a list's ?limit= (1..MaxPageLimit); 0 when absent,
// meaning the whole range (up to MaxCSVRows).
func queryExportLimit(q url.Values) (int, error) {
	if q.Get("limit") == "" {
		return 0, nil
	}
	return queryLimit(q)
}

// statementCSV: GET /v1/accounts/{id}/statement.csv?from=&to=&cursor=&limit=,
// in the one statement CSV format (export.Statement). The parameters are
// read exactly as the JSON statement reads them: the cursor is a
// next_cursor of GET /v1/accounts/{id}/statement, and the export starts
// after it.
func (a *api) statementCSV(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	id := r.PathValue("id")
	from, to, err := queryRange(q)
	if err != nil {
		return err
	}
	limit, err := queryExportLimit(q)
	if err != nil {
		return err
	}
	first, err := querySeqCursor(q, cursorStatement)
	if err != nil {
		return err
	}
	fetch := func(ctx context.Context, after *ports.StatementLine, n int) ([]ports.StatementLine, error) {
		sq := ports.StatementQuery{AccountID: id, From: from, To: to, AfterSeq: first, Limit: n}
		if after != nil {
			sq.AfterSeq = after.Seq
		}
		lines, err := a.ledger.Statement(ctx, sq)
		return lines, notFound(err, "account", id)
	}
	return streamCSV(a, w, r, csvExport[ports.StatementLine]{
		filename: "statement-" + id + ".csv", table: export.Statement, limit: limit, fetch: fetch,
	})
}

// depositsCSV: GET /v1/deposits.csv?status=&customer_id=&account_id=&from=&to=&cursor=&limit=:
// the deposit register, with the filters, cursor and limit of GET /v1/deposits.
func (a *api) depositsCSV(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	filter, err := depositFilter(q)
	if err != nil {
		return err
	}
	limit, err := queryExportLimit(q)
	if err != nil {
		return err
	}
	first, err := queryCursor(q, cursorDeposit)
	if err != nil {
		return err
	}
	fetch := func(ctx context.Context, after *domain.Deposit, n int) ([]domain.Deposit, error) {
		dq := filter
		dq.Limit, dq.AfterID = n, first
		if after != nil {
			dq.AfterID = after.ID
		}
		return a.ledger.ListDeposits(ctx, dq)
	}
	return streamCSV(a, w, r, csvExport[domain.Deposit]{
		filename: "deposits.csv", table: depositCSV, limit: limit, fetch: fetch,
	})
}

// csvExport is one download: its name, its format, at most how many rows
// (0: up to MaxCSVRows) and how to read the page of n items after an item
// (nil: the first page).
type csvExport[T any] struct {
	filename string
	table    export.Table[T]
	limit    int
	fetch    func(ctx context.Context, after *T, n int) ([]T, error)
}

// streamCSV writes a CSV download page by page, never holding more than
// one page: it takes an export slot (503 when all are taken) and a
// deadline (ExportTimeout), reads the first page before anything is
// written (so a bad id is still a JSON 404), then writes the header row,
// then each page followed by a flush. A failure after the first byte
// cannot change the status any more, so it aborts the connection: the
// client sees an incomplete download instead of a file that looks whole.
func streamCSV[T any](a *api, w http.ResponseWriter, r *http.Request, exp csvExport[T]) error {
	release, err := a.exports.acquire()
	if err != nil {
		return err
	}
	defer release()
	ctx, cancel := context.WithTimeout(r.Context(), a.exportTimeout)
	defer cancel()
	remaining := exp.limit
	if remaining <= 0 {
		remaining = MaxCSVRows
	}
	n := min(csvPageSize, remaining)
	page, err := exp.fetch(ctx, nil, n)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+safeFilename(exp.filename)+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	rc := http.NewResponseController(w)
	cw := export.NewWriter(w, exp.table)
	abort := func(msg string, err error) error {
		a.log.ErrorContext(r.Context(), "rest: CSV export aborted", "path", r.URL.Path,
			"actor", ActorFrom(r.Context()), "reason", msg, "err", err)
		panic(http.ErrAbortHandler)
	}
	for {
		_ = rc.SetWriteDeadline(time.Now().Add(csvPageWriteTimeout))
		if err := cw.Write(page...); err != nil {
			if r.Context().Err() != nil {
				panic(http.ErrAbortHandler) // the client went away; nothing to log
			}
			return abort("write failed", err)
		}
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return abort("flush failed", err)
		}
		remaining -= len(page)
		if len(page) < n {
			return nil // the last page
		}
		if remaining <= 0 {
			if exp.limit > 0 {
				return nil // the rows asked for
			}
			return abort("row limit reached", nil)
		}
		last := page[len(page)-1]
		n = min(csvPageSize, remaining)
		if page, err = exp.fetch(ctx, &last, n); err != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) && r.Context().Err() == nil {
				return abort("time limit reached", err)
			}
			return abort("read failed", err)
		}
	}
}

// safeFilename keeps a download name to characters every client accepts in
// a quoted Content-Disposition parameter.
func safeFilename(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, s)
}
