package rest

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tiyn/tiyn/adapters/export"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

type openAccountRequest struct {
	CustomerID           string `json:"customer_id"`
	Currency             string `json:"currency"`
	AdditionalCustomerID string `json:"additional_customer_id"`
}

// openAccount: POST /v1/accounts. 201 for a new account, 200 for the one
// the customer already has in that currency.
func (a *api) openAccount(w http.ResponseWriter, r *http.Request) error {
	var req openAccountRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return err
	}
	if err := domain.ValidateCustomerID(req.CustomerID); err != nil {
		return err
	}
	currency, err := a.parseCurrency(req.Currency)
	if err != nil {
		return err
	}
	res, err := a.ledger.OpenAccount(r.Context(), ports.OpenAccount{
		CustomerID:           req.CustomerID,
		AdditionalCustomerID: req.AdditionalCustomerID,
		Currency:             currency,
		Actor:                ActorFrom(r.Context()),
	})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	w.Header().Set("Location", "/v1/accounts/"+url.PathEscape(res.Account.ID()))
	return a.writeJSON(w, status, viewAccount(res.Account))
}

// parseCurrency reads an account currency: one of the currencies accounts
// are kept in (Options.AccountCurrencies), the first when code is empty.
func (a *api) parseCurrency(code string) (domain.Currency, error) {
	if code == "" {
		return a.currencies[0], nil
	}
	for _, c := range a.currencies {
		if c.Code() == code {
			return c, nil
		}
	}
	kept := make([]string, len(a.currencies))
	for i, c := range a.currencies {
		kept[i] = c.Code()
	}
	return domain.Currency{}, errInvalidRequest("unknown currency %q: accounts are kept in %s", truncate(code, 16), strings.Join(kept, ", "))
}

// listAccounts: GET /v1/accounts. With ?customer_id= it answers that
// customer's one account in ?currency= (404 when there is none); otherwise
// a page of accounts.
func (a *api) listAccounts(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if q.Has("customer_id") {
		customerID := q.Get("customer_id")
		if err := domain.ValidateCustomerID(customerID); err != nil {
			return err
		}
		currency, err := a.parseCurrency(q.Get("currency"))
		if err != nil {
			return err
		}
		acc, err := a.ledger.AccountByCustomer(r.Context(), customerID, currency)
		if err != nil {
			return notFound(err, "account of customer", customerID)
		}
		return a.writeJSON(w, http.StatusOK, viewAccount(acc))
	}
	limit, err := queryLimit(q)
	if err != nil {
		return err
	}
	after, err := queryCursor(q, cursorAccount)
	if err != nil {
		return err
	}
	query := ports.AccountQuery{AfterID: after, Limit: limit}
	if s := q.Get("status"); s != "" {
		if query.Status, err = domain.ParseAccountStatus(s); err != nil {
			return errInvalidRequest("status must be active, blocked or closed")
		}
	}
	accounts, err := a.ledger.ListAccounts(r.Context(), query)
	if err != nil {
		return err
	}
	out := accountList{Items: make([]accountView, 0, len(accounts))}
	for _, acc := range accounts {
		out.Items = append(out.Items, viewAccount(acc))
	}
	if n := len(accounts); n > 0 {
		out.NextCursor = nextCursor(cursorAccount, n, limit, accounts[n-1].ID())
	}
	return a.writeJSON(w, http.StatusOK, out)
}

// getAccount: GET /v1/accounts/{id}.
func (a *api) getAccount(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	acc, err := a.ledger.Account(r.Context(), id)
	if err != nil {
		return notFound(err, "account", id)
	}
	return a.writeJSON(w, http.StatusOK, viewAccount(acc))
}

func (a *api) blockAccount(w http.ResponseWriter, r *http.Request) error {
	return a.changeStatus(w, r, domain.AccountBlocked)
}

func (a *api) unblockAccount(w http.ResponseWriter, r *http.Request) error {
	return a.changeStatus(w, r, domain.AccountActive)
}

func (a *api) closeAccount(w http.ResponseWriter, r *http.Request) error {
	return a.changeStatus(w, r, domain.AccountClosed)
}

// changeStatus: POST /v1/accounts/{id}/block|unblock|close. The body is
// optional and, when sent, must be an empty JSON object. Asking for the
// status the account already has is a no-op answered 200.
func (a *api) changeStatus(w http.ResponseWriter, r *http.Request, to domain.AccountStatus) error {
	var req struct{}
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	id := r.PathValue("id")
	acc, err := a.ledger.ChangeAccountStatus(r.Context(), ports.ChangeAccountStatus{
		AccountID: id, To: to, Actor: ActorFrom(r.Context()),
	})
	if err != nil {
		return notFound(err, "account", id)
	}
	return a.writeJSON(w, http.StatusOK, viewAccount(acc))
}

// balance: GET /v1/accounts/{id}/balance[?at=RFC3339]. Without at (or
// with an empty one) it answers the balance now, stamped with the server's
// now. With at it answers the balance as of that moment, echoed as as_of:
// 0.00 for any moment before the account's first posting (Go's zero time
// is such a moment, not "no at"), 400 for a moment after the server's now
// (no slack: a future balance is not known yet; omit at to ask for now).
func (a *api) balance(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	q := r.URL.Query()
	var (
		amount domain.Amount
		asOf   time.Time
		err    error
	)
	if q.Get("at") == "" {
		asOf = a.now()
		amount, err = a.ledger.Balance(r.Context(), id, time.Time{})
	} else {
		if asOf, err = queryTime(q, "at"); err != nil {
			return err
		}
		if now := a.now(); asOf.After(now) {
			return errInvalidRequest("at %s is in the future (the server's time is %s); omit at for the balance now",
				export.FormatTime(asOf), export.FormatTime(now))
		}
		amount, err = a.ledger.BalanceAt(r.Context(), id, asOf)
	}
	if err != nil {
		return notFound(err, "account", id)
	}
	return a.writeJSON(w, http.StatusOK, balanceView{
		AccountID:    id,
		Currency:     amount.Currency().Code(),
		BalanceMinor: amount.Minor(),
		Balance:      amount.String(),
		AsOf:         asOf.UTC().Format(export.TimeLayout), // the zero time too: it was asked for
	})
}

// statement: GET /v1/accounts/{id}/statement?from=&to=&limit=&cursor=.
func (a *api) statement(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	id := r.PathValue("id")
	from, to, err := queryRange(q)
	if err != nil {
		return err
	}
	limit, err := queryLimit(q)
	if err != nil {
		return err
	}
	after, err := querySeqCursor(q, cursorStatement)
	if err != nil {
		return err
	}
	lines, err := a.ledger.Statement(r.Context(), ports.StatementQuery{
		AccountID: id, From: from, To: to, AfterSeq: after, Limit: limit,
	})
	if err != nil {
		return notFound(err, "account", id)
	}
	out := statementView{AccountID: id, Items: make([]statementLineView, 0, len(lines))}
	for _, l := range lines {
		out.Items = append(out.Items, viewStatementLine(l))
	}
	if n := len(lines); n > 0 {
		out.NextCursor = nextCursor(cursorStatement, n, limit, strconv.FormatInt(lines[n-1].Seq, 10))
	}
	return a.writeJSON(w, http.StatusOK, out)
}
