package rest

import (
	"encoding/csv"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// CSV export limits. An export streams page by page and never holds the
// whole file; these bound it in rows and in time all the same.
const (
	// csvPageSize is how many rows one ledger read fetches.
	csvPageSize = 500
	// MaxCSVRows stops an export that has written this many rows; the
	// client sees a broken download, never a silently short file. Narrow
	// the from/to range to export more.
	MaxCSVRows = 10_000_000
	// MaxCSVDuration stops an export that has run this long.
	MaxCSVDuration = 15 * time.Minute
	// csvPageWriteTimeout is the write deadline granted to each page, so a
	// long export is not cut by the server's whole-response WriteTimeout
	// while a stalled client still is.
	csvPageWriteTimeout = 60 * time.Second
)

var statementCSVHeader = []string{
	"seq", "created_at", "transfer_id", "kind", "direction", "amount", "currency",
	"balance_after", "deposit_id", "payment_id", "description",
}

func statementCSVRecord(l ports.StatementLine) []string {
	direction, amount := lineMoney(l)
	return []string{
		strconv.FormatInt(l.Seq, 10), mustTime(l.CreatedAt), l.TransferID, l.Kind.String(), direction,
		amount.String(), amount.Currency().Code(), l.BalanceAfter.String(), l.DepositID, l.PaymentID,
		csvText(l.Description),
	}
}

var depositCSVHeader = []string{
	"id", "payment_id", "created_at", "settled_at", "status", "amount", "currency",
	"account_id", "customer_id", "provider", "method", "project", "operation_id",
}

func depositCSVRecord(d domain.Deposit) []string {
	settled := ""
	if s := formatTime(d.SettledAt); s != nil {
		settled = *s
	}
	return []string{
		d.ID, csvText(d.PaymentID), mustTime(d.CreatedAt), settled, d.Status.String(), d.Amount.String(),
		d.Amount.Currency().Code(), d.AccountID, csvText(d.CustomerID), d.Channel.Provider, d.Channel.Method,
		csvText(d.Channel.Project), csvText(d.OperationID),
	}
}

// csvText defuses spreadsheet formula injection (OWASP "CSV injection"):
// free text starting with = + - @ or a tab/CR is prefixed with a quote, so
// a description like "=HYPERLINK(…)" is shown, not run, when the export is
// opened in a spreadsheet.
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// statementCSV: GET /v1/accounts/{id}/statement.csv?from=&to=.
func (a *api) statementCSV(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	from, to, err := queryRange(r.URL.Query())
	if err != nil {
		return err
	}
	fetch := func(after *ports.StatementLine) ([]ports.StatementLine, error) {
		q := ports.StatementQuery{AccountID: id, From: from, To: to, Limit: csvPageSize}
		if after != nil {
			q.AfterSeq = after.Seq
		}
		lines, err := a.ledger.Statement(r.Context(), q)
		return lines, notFound(err, "account", id)
	}
	return streamCSV(a, w, r, "statement-"+id+".csv", statementCSVHeader, fetch, statementCSVRecord)
}

// depositsCSV: GET /v1/deposits.csv?status=&customer_id=&account_id=&from=&to=:
// the deposit register.
func (a *api) depositsCSV(w http.ResponseWriter, r *http.Request) error {
	filter, err := depositFilter(r.URL.Query())
	if err != nil {
		return err
	}
	fetch := func(after *domain.Deposit) ([]domain.Deposit, error) {
		q := filter
		q.Limit = csvPageSize
		if after != nil {
			q.AfterID = after.ID
		}
		return a.ledger.ListDeposits(r.Context(), q)
	}
	return streamCSV(a, w, r, "deposits.csv", depositCSVHeader, fetch, depositCSVRecord)
}

// streamCSV writes a CSV download page by page: the first page is read
// before anything is written (so a bad id is still a JSON 404), then the
// header row, then each page followed by a flush. A failure after the
// first byte cannot change the status any more, so it aborts the
// connection: the client sees an incomplete download instead of a file
// that looks whole.
func streamCSV[T any](a *api, w http.ResponseWriter, r *http.Request, filename string, header []string,
	fetch func(after *T) ([]T, error), record func(T) []string) error {
	start := time.Now()
	page, err := fetch(nil)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+safeFilename(filename)+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	rc := http.NewResponseController(w)
	cw := csv.NewWriter(w)
	abort := func(msg string, err error) error {
		a.log.ErrorContext(r.Context(), "rest: CSV export aborted", "path", r.URL.Path,
			"actor", ActorFrom(r.Context()), "reason", msg, "err", err)
		panic(http.ErrAbortHandler)
	}
	_ = cw.Write(header)
	rows := 0
	for {
		_ = rc.SetWriteDeadline(time.Now().Add(csvPageWriteTimeout))
		for _, item := range page {
			_ = cw.Write(record(item))
		}
		rows += len(page)
		cw.Flush()
		if err := cw.Error(); err != nil {
			if r.Context().Err() != nil {
				panic(http.ErrAbortHandler) // the client went away; nothing to log
			}
			return abort("write failed", err)
		}
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return abort("flush failed", err)
		}
		if len(page) < csvPageSize {
			return nil
		}
		if rows >= MaxCSVRows {
			return abort("row limit reached", nil)
		}
		if time.Since(start) > MaxCSVDuration {
			return abort("time limit reached", nil)
		}
		last := page[len(page)-1]
		if page, err = fetch(&last); err != nil {
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
