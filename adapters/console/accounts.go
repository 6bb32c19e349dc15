package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/tiyn/tiyn/adapters/export"
	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// Accounts: find one by customer id, list them by status, read one with
// its statement (running balance, a chart, a CSV download) and, as an
// operator, block, unblock or close it after a confirmation.

type pager struct {
	Next  string
	First string
}

type accountsData struct {
	CustomerID string
	Currency   string
	Currencies []string
	Status     string
	Statuses   []string
	NotFound   bool
	Items      []domain.Account
	Pager      pager
}

// accountStatuses are the statuses the list filters by.
var accountStatuses = []domain.AccountStatus{domain.AccountActive, domain.AccountBlocked, domain.AccountClosed}

func (c *Console) currency(code string) (domain.Currency, error) {
	if code == "" {
		return c.currencies[0], nil
	}
	for _, cur := range c.currencies {
		if cur.Code() == code {
			return cur, nil
		}
	}
	return domain.Currency{}, &queryError{"currency"}
}

// accounts: GET /console/accounts?customer_id=&currency= finds a
// customer's account (and goes to it); without a customer id it lists
// accounts, optionally by ?status=, a page at a time.
func (c *Console) accounts(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	q := r.URL.Query()
	data := accountsData{Currency: q.Get("currency"), Status: q.Get("status")}
	for _, cur := range c.currencies {
		data.Currencies = append(data.Currencies, cur.Code())
	}
	for _, s := range accountStatuses {
		data.Statuses = append(data.Statuses, s.String())
	}
	customerID, err := queryText(q, "customer_id")
	if err != nil {
		return err
	}
	data.CustomerID = customerID
	if customerID != "" {
		cur, err := c.currency(data.Currency)
		if err != nil {
			return err
		}
		acc, err := c.ledger.AccountByCustomer(r.Context(), customerID, cur)
		switch {
		case err == nil:
			http.Redirect(w, r, pathOf("accounts", acc.ID()), http.StatusSeeOther)
			return nil
		case errors.Is(err, ports.ErrNotFound), errors.Is(err, domain.ErrInvalidInput):
			data.NotFound = true
			c.render(w, r, rc, http.StatusNotFound, "accounts", rc.loc.T("accounts.title"), "accounts", data)
			return nil
		default:
			return err
		}
	}
	query := ports.AccountQuery{}
	if data.Status != "" {
		if query.Status, err = domain.ParseAccountStatus(data.Status); err != nil {
			return &queryError{"status"}
		}
	}
	if query.Limit, err = pageLimit(q); err != nil {
		return err
	}
	if query.AfterID, err = queryText(q, "after"); err != nil {
		return err
	}
	list, err := c.ledger.ListAccounts(r.Context(), query)
	if err != nil {
		return err
	}
	data.Items = list
	data.Pager = nextPage(r.URL, q, len(list), query.Limit, func() string { return list[len(list)-1].ID() })
	c.render(w, r, rc, http.StatusOK, "accounts", rc.loc.T("accounts.title"), "accounts", data)
	return nil
}

// nextPage builds a list's pager: "next" when the page is full (keyset:
// after the last item), "first" when this is not the first page.
func nextPage(u *url.URL, q url.Values, n, limit int, last func() string) pager {
	var p pager
	if n > 0 && n >= limit {
		next := cloneValues(q)
		next.Set("after", last())
		p.Next = withQuery(u.Path, next)
	}
	if q.Get("after") != "" {
		first := cloneValues(q)
		first.Del("after")
		p.First = withQuery(u.Path, first)
	}
	return p
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// statementRow is one statement line as the page shows it.
type statementRow struct {
	ports.StatementLine
	Direction   string
	Abs         domain.Amount
	DepositHref string
}

type accountData struct {
	Account  domain.Account
	From, To string // the filter as typed (YYYY-MM-DD)
	Lines    []statementRow
	Chart    *chart
	Pager    pager
	CSVHref  string
	Actions  []statusAction
	Filtered bool
}

// statusAction is a status change offered on an account.
type statusAction struct {
	To   string
	Href string
	Key  string // the button's message key
}

// statusChanges are the changes each status allows, in the order offered.
func statusChanges(from domain.AccountStatus) []domain.AccountStatus {
	switch from {
	case domain.AccountActive:
		return []domain.AccountStatus{domain.AccountBlocked, domain.AccountClosed}
	case domain.AccountBlocked:
		return []domain.AccountStatus{domain.AccountActive, domain.AccountClosed}
	}
	return nil
}

// statusActionKeys name the buttons of each target status.
var statusActionKeys = map[string]string{
	domain.AccountBlocked.String(): "account.block",
	domain.AccountActive.String():  "account.unblock",
	domain.AccountClosed.String():  "account.close",
}

// dayRange reads ?from= and ?to= as business days (YYYY-MM-DD): postings
// from the start of from to the end of to.
func (c *Console) dayRange(q url.Values) (from, to time.Time, fromText, toText string, err error) {
	fromText, toText = q.Get("from"), q.Get("to")
	if fromText != "" {
		d, err := domain.ParseBusinessDay(fromText, c.zone)
		if err != nil {
			return from, to, "", "", &queryError{"from"}
		}
		from = d.Start()
	}
	if toText != "" {
		d, err := domain.ParseBusinessDay(toText, c.zone)
		if err != nil {
			return from, to, "", "", &queryError{"to"}
		}
		to = d.End()
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return from, to, "", "", &queryError{"to"}
	}
	return from, to, fromText, toText, nil
}

// account: GET /console/accounts/{id}?from=&to=&after=&limit=.
func (c *Console) account(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id := r.PathValue("id")
	acc, err := c.ledger.Account(r.Context(), id)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	from, to, fromText, toText, err := c.dayRange(q)
	if err != nil {
		return err
	}
	limit, err := pageLimit(q)
	if err != nil {
		return err
	}
	var after int64
	if s := q.Get("after"); s != "" {
		if after, err = strconv.ParseInt(s, 10, 64); err != nil || after < 0 {
			return &queryError{"after"}
		}
	}
	lines, err := c.ledger.Statement(r.Context(), ports.StatementQuery{AccountID: id, From: from, To: to, AfterSeq: after, Limit: limit})
	if err != nil {
		return err
	}
	data := accountData{Account: acc, From: fromText, To: toText, Filtered: fromText != "" || toText != ""}
	for _, l := range lines {
		dir, abs := export.Direction(l)
		row := statementRow{StatementLine: l, Direction: dir, Abs: abs}
		if l.PaymentID != "" {
			row.DepositHref = pathOf("deposits", l.PaymentID)
		}
		data.Lines = append(data.Lines, row)
	}
	data.Chart = balanceChart(lines, rc.loc)
	data.Pager = nextPage(r.URL, q, len(lines), limit, func() string { return strconv.FormatInt(lines[len(lines)-1].Seq, 10) })
	data.CSVHref = withQuery(pathOf("accounts", id)+"/statement.csv", url.Values{"from": {fromText}, "to": {toText}})
	if rc.canAct() {
		for _, to := range statusChanges(acc.Status()) {
			data.Actions = append(data.Actions, statusAction{To: to.String(), Key: statusActionKeys[to.String()],
				Href: withQuery(pathOf("accounts", id)+"/status", url.Values{"to": {to.String()}})})
		}
	}
	c.render(w, r, rc, http.StatusOK, "account", rc.loc.T("account.title", acc.CustomerID()), "accounts", data)
	return nil
}

type confirmStatusData struct {
	Account domain.Account
	To      string
	Key     string
	Back    string
}

// confirmStatus: GET /console/accounts/{id}/status?to=blocked|active|closed
// asks the operator to confirm (the POST does it).
func (c *Console) confirmStatus(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if !rc.canAct() {
		c.renderStatus(w, r, rc, http.StatusForbidden, "err.role")
		return nil
	}
	acc, err := c.ledger.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	to, err := domain.ParseAccountStatus(r.URL.Query().Get("to"))
	if err != nil {
		return &queryError{"to"}
	}
	c.render(w, r, rc, http.StatusOK, "confirm_status", rc.loc.T(statusActionKeys[to.String()]), "accounts", confirmStatusData{
		Account: acc, To: to.String(), Key: statusActionKeys[to.String()], Back: pathOf("accounts", acc.ID()),
	})
	return nil
}

// changeStatus: POST /console/accounts/{id}/status (operator) with to and
// confirm=yes.
func (c *Console) changeStatus(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id := r.PathValue("id")
	back := pathOf("accounts", id)
	to, err := domain.ParseAccountStatus(r.PostForm.Get("to"))
	if err != nil || r.PostForm.Get("confirm") != "yes" {
		return c.redirectFlash(w, r, rc, back, flash{key: "err.not_confirmed", err: true})
	}
	acc, err := c.ledger.ChangeAccountStatus(r.Context(), ports.ChangeAccountStatus{AccountID: id, To: to, Actor: rc.sess.token.Name})
	if err != nil {
		return c.actionError(w, r, rc, back, err)
	}
	c.log.InfoContext(r.Context(), "console: account status changed", "actor", rc.sess.token.Name, "account", id, "to", to.String())
	return c.redirectFlash(w, r, rc, back, flash{key: "account.status_changed", args: []any{rc.loc.Enum("account_status", acc.Status().String())}})
}

// Statement CSV downloads: the one statement format (export.Statement,
// byte for byte what GET /v1/accounts/{id}/statement.csv and `tiyn
// statement --csv` write), streamed a page at a time with REST's bounds.
const (
	maxConcurrentExports = 2
	csvPage              = 500
	csvPageWriteTimeout  = 60 * time.Second
)

var errExportsBusy = errors.New("too many exports at once")

// statementCSV: GET /console/accounts/{id}/statement.csv?from=&to=.
func (c *Console) statementCSV(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id := r.PathValue("id")
	from, to, _, _, err := c.dayRange(r.URL.Query())
	if err != nil {
		return err
	}
	select {
	case c.exports <- struct{}{}:
		defer func() { <-c.exports }()
	default:
		return errExportsBusy
	}
	ctx, cancel := context.WithTimeout(r.Context(), rest.MaxCSVDuration)
	defer cancel()
	page, err := c.ledger.Statement(ctx, ports.StatementQuery{AccountID: id, From: from, To: to, Limit: csvPage})
	if err != nil {
		return err // nothing written yet: the error page
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="statement-`+safeName(id)+`.csv"`)
	w.WriteHeader(http.StatusOK)
	rc2 := http.NewResponseController(w)
	cw := export.NewWriter(w, export.Statement)
	rows := 0
	for {
		_ = rc2.SetWriteDeadline(time.Now().Add(csvPageWriteTimeout))
		if err := cw.Write(page...); err != nil {
			panic(http.ErrAbortHandler)
		}
		_ = rc2.Flush()
		rows += len(page)
		if len(page) < csvPage {
			return nil
		}
		if rows >= rest.MaxCSVRows {
			c.log.ErrorContext(r.Context(), "console: statement export cut at the row limit", "account", id)
			panic(http.ErrAbortHandler) // a broken download, never a file that looks whole
		}
		if page, err = c.ledger.Statement(ctx, ports.StatementQuery{AccountID: id, From: from, To: to,
			AfterSeq: page[len(page)-1].Seq, Limit: csvPage}); err != nil {
			c.log.ErrorContext(r.Context(), "console: statement export aborted", "account", id, "err", err)
			panic(http.ErrAbortHandler)
		}
	}
}

// safeName keeps a download name to characters every client accepts.
func safeName(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '_' || ch == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}
