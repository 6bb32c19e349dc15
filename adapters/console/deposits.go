package console

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// Deposits: the register filtered by status, customer and business day;
// and one deposit's timeline — check_deposit, every piece of platform
// evidence in the inbox (callbacks and status answers, raw bodies as
// received) and the credit.

var depositStatuses = []domain.DepositStatus{domain.DepositPending, domain.DepositSucceeded, domain.DepositDeclined, domain.DepositExpired}

type depositsData struct {
	Status     string
	Statuses   []string
	CustomerID string
	Day        string
	Items      []domain.Deposit
	Pager      pager
	Filtered   bool
}

// deposits: GET /console/deposits?status=&customer_id=&day=&after=&limit=.
func (c *Console) deposits(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	q := r.URL.Query()
	data := depositsData{Status: q.Get("status"), Day: q.Get("day")}
	for _, s := range depositStatuses {
		data.Statuses = append(data.Statuses, s.String())
	}
	var (
		query ports.DepositQuery
		err   error
	)
	if data.Status != "" {
		if query.Status, err = domain.ParseDepositStatus(data.Status); err != nil {
			return &queryError{"status"}
		}
	}
	if data.CustomerID, err = queryText(q, "customer_id"); err != nil {
		return err
	}
	query.CustomerID = data.CustomerID
	if data.Day != "" {
		day, err := domain.ParseBusinessDay(data.Day, c.zone)
		if err != nil {
			return &queryError{"day"}
		}
		query.From, query.To = day.Start(), day.End()
	}
	data.Filtered = data.Status != "" || data.CustomerID != "" || data.Day != ""
	if query.Limit, err = pageLimit(q); err != nil {
		return err
	}
	if query.AfterID, err = queryText(q, "after"); err != nil {
		return err
	}
	list, err := c.ledger.ListDeposits(r.Context(), query)
	if err != nil {
		return err
	}
	data.Items = list
	data.Pager = nextPage(r.URL, q, len(list), query.Limit, func() string { return list[len(list)-1].ID })
	c.render(w, r, rc, http.StatusOK, "deposits", rc.loc.T("deposits.title"), "deposits", data)
	return nil
}

// maxTimelineEvidence bounds the inbox records one timeline shows; a
// payment the platform told about more often than this pages on.
const maxTimelineEvidence = 100

// timelineEvent is one step of a deposit's story.
type timelineEvent struct {
	At       time.Time
	Kind     string // check_deposit, evidence, credit
	Evidence *ports.InboxRecord
	Body     []evidenceLine
	Credit   *ports.StatementLine
	// ExceptionHref links the exception an evidence raised.
	ExceptionHref string
}

type depositData struct {
	Deposit      domain.Deposit
	AccountHref  string
	Checks       ports.StatusCheck
	Events       []timelineEvent
	MoreHref     string
	CreditID     string
	CreditMissed bool // succeeded, but no credit transfer was found
}

// deposit: GET /console/deposits/{payment_id}?after=.
func (c *Console) deposit(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	paymentID := r.PathValue("payment_id")
	ctx := r.Context()
	d, err := c.ledger.DepositByPaymentID(ctx, paymentID)
	if err != nil {
		return err
	}
	checks, err := c.ledger.StatusCheck(ctx, d.ID)
	if err != nil {
		return err
	}
	d = checks.Deposit // read with the record: the later of the two
	var after int64
	if s := r.URL.Query().Get("after"); s != "" {
		if after, err = strconv.ParseInt(s, 10, 64); err != nil || after < 0 {
			return &queryError{"after"}
		}
	}
	data := depositData{Deposit: d, AccountHref: pathOf("accounts", d.AccountID), Checks: checks}
	if after == 0 {
		data.Events = append(data.Events, timelineEvent{At: d.CreatedAt, Kind: "check_deposit"})
	}
	records, err := c.ledger.ListInbox(ctx, ports.InboxQuery{PaymentID: d.PaymentID, AfterID: after, Limit: maxTimelineEvidence})
	if err != nil {
		return err
	}
	for i := range records {
		rec := records[i]
		if rec.Channel != d.Channel {
			continue // the same payment id in another project's channel
		}
		ev := timelineEvent{At: rec.ReceivedAt, Kind: "evidence", Evidence: &rec, Body: prettyEvidence(rec.Body, nil)}
		if rec.ExceptionID != "" {
			ev.ExceptionHref = pathOf("exceptions", rec.ExceptionID)
		}
		data.Events = append(data.Events, ev)
	}
	if len(records) == maxTimelineEvidence {
		data.MoreHref = withQuery(pathOf("deposits", d.PaymentID), url.Values{"after": {strconv.FormatInt(records[len(records)-1].ID, 10)}})
	}
	if d.Status == domain.DepositSucceeded {
		line, transferID, err := c.creditLine(r, d)
		switch {
		case err == nil:
			data.CreditID = transferID
			if line != nil && after == 0 {
				data.Events = append(data.Events, timelineEvent{At: line.CreatedAt, Kind: "credit", Credit: line})
			}
		case errors.Is(err, ports.ErrNotFound):
			data.CreditMissed = true
		default:
			return err
		}
	}
	sortEvents(data.Events)
	c.render(w, r, rc, http.StatusOK, "deposit", rc.loc.T("deposit.title", d.PaymentID), "deposits", data)
	return nil
}

// creditLine finds a succeeded deposit's credit: its transfer id from the
// ledger, and the posting on the account, made at the moment the deposit
// was settled (one transaction writes both with the same time).
func (c *Console) creditLine(r *http.Request, d domain.Deposit) (*ports.StatementLine, string, error) {
	transferID, err := c.ledger.DepositCredit(r.Context(), d.ID)
	if err != nil {
		return nil, "", err
	}
	if d.SettledAt.IsZero() {
		return nil, transferID, nil
	}
	lines, err := c.ledger.Statement(r.Context(), ports.StatementQuery{AccountID: d.AccountID,
		From: d.SettledAt, To: d.SettledAt.Add(time.Microsecond), Limit: ports.MaxPageSize})
	if err != nil {
		return nil, transferID, err
	}
	for i := range lines {
		if lines[i].TransferID == transferID {
			return &lines[i], transferID, nil
		}
	}
	return nil, transferID, nil
}

// sortEvents orders a timeline by time, keeping the given order for equal
// times (check_deposit first, evidence in inbox order, the credit after
// the evidence that caused it).
func sortEvents(ev []timelineEvent) {
	slices.SortStableFunc(ev, func(a, b timelineEvent) int { return a.At.Compare(b.At) })
}
