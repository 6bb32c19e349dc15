package rest

import (
	"net/http"
	"net/url"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// getDeposit: GET /v1/deposits/{payment_id}.
func (a *api) getDeposit(w http.ResponseWriter, r *http.Request) error {
	paymentID := r.PathValue("payment_id")
	d, err := a.ledger.DepositByPaymentID(r.Context(), paymentID)
	if err != nil {
		return notFound(err, "deposit with payment id", paymentID)
	}
	v := viewDeposit(d)
	c, err := a.ledger.StatusCheck(r.Context(), d.ID)
	if err != nil {
		return err
	}
	v.StatusChecks = viewStatusChecks(c)
	v.Status = c.Deposit.Status.String() // read with the record, the later of the two
	return a.writeJSON(w, http.StatusOK, v)
}

// depositFilter reads the filters shared by the deposit list and its CSV
// register: ?status=&customer_id=&account_id=&from=&to=.
func depositFilter(q url.Values) (ports.DepositQuery, error) {
	var (
		query ports.DepositQuery
		err   error
	)
	if s := q.Get("status"); s != "" {
		if query.Status, err = domain.ParseDepositStatus(s); err != nil {
			return query, errInvalidRequest("status must be pending, succeeded, declined or expired")
		}
	}
	query.CustomerID = q.Get("customer_id")
	query.AccountID = q.Get("account_id")
	if len(query.CustomerID) > domain.MaxCustomerIDLen {
		return query, errInvalidRequest("customer_id is longer than %d bytes", domain.MaxCustomerIDLen)
	}
	query.From, query.To, err = queryRange(q)
	return query, err
}

// listDeposits: GET /v1/deposits?status=&customer_id=&account_id=&from=&to=&limit=&cursor=.
func (a *api) listDeposits(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	query, err := depositFilter(q)
	if err != nil {
		return err
	}
	if query.Limit, err = queryLimit(q); err != nil {
		return err
	}
	if query.AfterID, err = queryCursor(q, cursorDeposit); err != nil {
		return err
	}
	deposits, err := a.ledger.ListDeposits(r.Context(), query)
	if err != nil {
		return err
	}
	out := depositList{Items: make([]depositView, 0, len(deposits))}
	for _, d := range deposits {
		out.Items = append(out.Items, viewDeposit(d))
	}
	if n := len(deposits); n > 0 {
		out.NextCursor = nextCursor(cursorDeposit, n, query.Limit, deposits[n-1].ID)
	}
	return a.writeJSON(w, http.StatusOK, out)
}
