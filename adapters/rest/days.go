package rest

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"

	"github.com/tiyn/tiyn/adapters/export"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// Business days: closing one (POST /v1/days/{date}/close) and its
// statement (GET /v1/days/{date}, GET /v1/days/{date}.csv).

const cursorDayBalance = "day_balance"

// totalsPage is how many statement lines one read of the totals fetches.
const totalsPage = ports.MaxPageSize

type dayBalanceView struct {
	AccountID    string `json:"account_id"`
	System       bool   `json:"system"`
	Currency     string `json:"currency"`
	OpeningMinor int64  `json:"opening_minor"`
	Opening      string `json:"opening"`
	CreditsMinor int64  `json:"credits_minor"`
	Credits      string `json:"credits"`
	DebitsMinor  int64  `json:"debits_minor"`
	Debits       string `json:"debits"`
	ClosingMinor int64  `json:"closing_minor"`
	Closing      string `json:"closing"`
}

func viewDayBalance(b ports.DayBalance) dayBalanceView {
	text := func(minor int64) string { return domain.NewAmount(minor, b.Currency).String() }
	return dayBalanceView{
		AccountID: b.AccountID, System: b.System, Currency: b.Currency.Code(),
		OpeningMinor: b.Opening, Opening: text(b.Opening), CreditsMinor: b.Credits, Credits: text(b.Credits),
		DebitsMinor: b.Debits, Debits: text(b.Debits), ClosingMinor: b.Closing, Closing: text(b.Closing),
	}
}

// sideTotalsView sums one side (customers, or system accounts) of a
// currency: exact integers of any size.
type sideTotalsView struct {
	Accounts     int64    `json:"accounts"`
	OpeningMinor *big.Int `json:"opening_minor"`
	CreditsMinor *big.Int `json:"credits_minor"`
	DebitsMinor  *big.Int `json:"debits_minor"`
	ClosingMinor *big.Int `json:"closing_minor"`
}

func newSideTotals() *sideTotalsView {
	return &sideTotalsView{OpeningMinor: new(big.Int), CreditsMinor: new(big.Int), DebitsMinor: new(big.Int), ClosingMinor: new(big.Int)}
}

func (t *sideTotalsView) add(b ports.DayBalance) {
	t.Accounts++
	t.OpeningMinor.Add(t.OpeningMinor, big.NewInt(b.Opening))
	t.CreditsMinor.Add(t.CreditsMinor, big.NewInt(b.Credits))
	t.DebitsMinor.Add(t.DebitsMinor, big.NewInt(b.Debits))
	t.ClosingMinor.Add(t.ClosingMinor, big.NewInt(b.Closing))
}

// dayTotalsView is a currency's totals over the whole statement.
// Balanced says the customers' and the system accounts' closings sum to
// zero (the clearing accounts balance the customers).
type dayTotalsView struct {
	Currency  string          `json:"currency"`
	Customers *sideTotalsView `json:"customers"`
	System    *sideTotalsView `json:"system"`
	Balanced  bool            `json:"balanced"`
}

type dayView struct {
	Day        string  `json:"day"`
	TimeZone   string  `json:"time_zone"`
	StartsAt   string  `json:"starts_at"`
	EndsAt     string  `json:"ends_at"`
	ClosedAt   string  `json:"closed_at"`
	ClosedBy   string  `json:"closed_by"`
	RunID      *string `json:"run_id"`
	OpenBreaks int64   `json:"open_breaks"`
	Override   bool    `json:"override"`
	Reason     *string `json:"reason"`
	// Accounts counts the statement's lines; Totals sums all of them, per
	// currency; Items is one page of them, by account id.
	Accounts   int64            `json:"accounts"`
	Totals     []dayTotalsView  `json:"totals"`
	Items      []dayBalanceView `json:"items"`
	NextCursor *string          `json:"next_cursor"`
}

type closeDayRequest struct {
	Override bool   `json:"override"`
	Reason   string `json:"reason"`
}

// closeDay: POST /v1/days/{date}/close (operator role), body optional:
// {"override":true,"reason":"…"}. 200 with the day's record and the
// first page of its statement. 409 day_not_ended before the day's end in
// the business zone, day_closed when closed already, open_breaks when the
// day has no finished reconciliation or its latest has open breaks (the
// message names the counts) and no override.
func (a *api) closeDay(w http.ResponseWriter, r *http.Request) error {
	var req closeDayRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	if req.Override && strings.TrimSpace(req.Reason) == "" {
		return errInvalidRequest("an override needs a reason: say why the day closes with open breaks")
	}
	if !req.Override && req.Reason != "" {
		return errInvalidRequest("a reason is only taken with \"override\": true")
	}
	if err := validateText("reason", req.Reason, domain.MaxNoteLen); err != nil {
		return err
	}
	day, err := a.parseDay(r.PathValue("date"))
	if err != nil {
		return err
	}
	_, err = a.ledger.CloseDay(r.Context(), ports.CloseDay{Day: day, By: ActorFrom(r.Context()), Override: req.Override, Reason: req.Reason})
	switch {
	case errors.Is(err, ports.ErrDayClosed):
		return newHTTPError(http.StatusConflict, CodeDayClosed, "business day %s is closed already (GET /v1/days/%s)", day, day)
	case errors.Is(err, ports.ErrOpenBreaks):
		return a.openBreaksError(r.Context(), day, err)
	case err != nil:
		return err
	}
	return a.writeDay(w, r, day)
}

// openBreaksError names what stands in the way of a close: the latest
// finished run's breaks by class, and where to read them.
func (a *api) openBreaksError(ctx context.Context, day domain.BusinessDay, cause error) error {
	msg := cause.Error()
	runs, err := a.ledger.ListReconRuns(ctx, ports.ReconRunQuery{Day: day, Limit: ports.MaxPageSize})
	if err == nil {
		for _, run := range runs {
			if run.Status == ports.RunFinished {
				msg = fmt.Sprintf("%s; the run's breaks: %s (GET /v1/reconciliations/%s/items?class=…); resolve or dismiss "+
					"their exceptions, or close with an override and a reason", msg, breaksByClass(run), run.ID)
				break
			}
		}
	}
	return newHTTPError(http.StatusConflict, CodeOpenBreaks, "%s", msg)
}

// getDay: GET /v1/days/{date}?limit=&cursor=: a closed day's record, its
// totals and a page of its statement (404 while the day is not closed).
// The same path with .csv is the whole statement as CSV (dayCSV).
func (a *api) getDay(w http.ResponseWriter, r *http.Request) error {
	day, err := a.parseDay(r.PathValue("date"))
	if err != nil {
		return err
	}
	return a.writeDay(w, r, day)
}

func (a *api) writeDay(w http.ResponseWriter, r *http.Request, day domain.BusinessDay) error {
	q := r.URL.Query()
	limit, err := queryLimit(q)
	if err != nil {
		return err
	}
	after, err := queryCursor(q, cursorDayBalance)
	if err != nil {
		return err
	}
	view, err := a.ledger.Day(r.Context(), ports.DayBalanceQuery{Day: day, AfterAccountID: after, Limit: limit})
	if err != nil {
		return dayNotFound(err, day)
	}
	totals, err := a.dayTotals(r.Context(), day)
	if err != nil {
		return dayNotFound(err, day)
	}
	rec := view.Record
	out := dayView{
		Day: day.String(), TimeZone: day.Location().String(), StartsAt: mustTime(day.Start()), EndsAt: mustTime(day.End()),
		ClosedAt: mustTime(rec.ClosedAt), ClosedBy: rec.ClosedBy, RunID: optional(rec.RunID), OpenBreaks: rec.OpenBreaks,
		Override: rec.Override, Reason: optional(rec.Reason), Accounts: rec.Accounts, Totals: totals,
		Items: make([]dayBalanceView, 0, len(view.Balances)),
	}
	for _, b := range view.Balances {
		out.Items = append(out.Items, viewDayBalance(b))
	}
	if n := len(view.Balances); n > 0 {
		out.NextCursor = nextCursor(cursorDayBalance, n, limit, view.Balances[n-1].AccountID)
	}
	return a.writeJSON(w, http.StatusOK, out)
}

func dayNotFound(err error, day domain.BusinessDay) error {
	if errors.Is(err, ports.ErrNotFound) {
		return newHTTPError(http.StatusNotFound, CodeNotFound,
			"business day %s is not closed: only a closed day has a statement (POST /v1/days/%s/close)", day, day)
	}
	return err
}

// dayTotals sums the whole statement per currency, page by page. It reads
// every line, so it takes an export slot (503 when all are busy).
func (a *api) dayTotals(ctx context.Context, day domain.BusinessDay) ([]dayTotalsView, error) {
	release, err := a.exports.acquire()
	if err != nil {
		return nil, err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, a.exportTimeout)
	defer cancel()
	byCurrency := map[string]*dayTotalsView{}
	after := ""
	for range MaxCSVRows/totalsPage + 1 {
		view, err := a.ledger.Day(ctx, ports.DayBalanceQuery{Day: day, AfterAccountID: after, Limit: totalsPage})
		if err != nil {
			return nil, err
		}
		for _, b := range view.Balances {
			t := byCurrency[b.Currency.Code()]
			if t == nil {
				t = &dayTotalsView{Currency: b.Currency.Code(), Customers: newSideTotals(), System: newSideTotals()}
				byCurrency[b.Currency.Code()] = t
			}
			if b.System {
				t.System.add(b)
			} else {
				t.Customers.add(b)
			}
		}
		if len(view.Balances) < totalsPage {
			out := make([]dayTotalsView, 0, len(byCurrency))
			for _, t := range byCurrency {
				t.Balanced = new(big.Int).Add(t.Customers.ClosingMinor, t.System.ClosingMinor).Sign() == 0
				out = append(out, *t)
			}
			slices.SortFunc(out, func(x, y dayTotalsView) int { return strings.Compare(x.Currency, y.Currency) })
			return out, nil
		}
		after = view.Balances[len(view.Balances)-1].AccountID
	}
	return nil, fmt.Errorf("day %s: the statement has more than %d lines", day, MaxCSVRows)
}

// dayCSV: GET /v1/days/{date}.csv?cursor=&limit=: the closed day's whole
// statement as CSV (export.DayStatement), streamed.
func (a *api) dayCSV(w http.ResponseWriter, r *http.Request) error {
	date := strings.TrimSuffix(r.PathValue("date"), ".csv")
	day, err := a.parseDay(date)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit, err := queryExportLimit(q)
	if err != nil {
		return err
	}
	first, err := queryCursor(q, cursorDayBalance)
	if err != nil {
		return err
	}
	fetch := func(ctx context.Context, after *ports.DayBalance, n int) ([]ports.DayBalance, error) {
		dq := ports.DayBalanceQuery{Day: day, AfterAccountID: first, Limit: n}
		if after != nil {
			dq.AfterAccountID = after.AccountID
		}
		view, err := a.ledger.Day(ctx, dq)
		return view.Balances, dayNotFound(err, day)
	}
	return streamCSV(a, w, r, csvExport[ports.DayBalance]{
		filename: "day-" + day.String() + ".csv", table: export.DayStatement(day), limit: limit, fetch: fetch,
	})
}
