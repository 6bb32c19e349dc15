package console

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// Exceptions: the queue, one exception with its evidence, and the
// resolutions, following every rule of the ledger's corrections (the
// ledger checks them; the console only offers what may work):
//
//   - a credit is bounded by the evidence (the amount field defaults to
//     the bound), settles the exception's deposit, and is refused for a
//     payment already credited;
//   - a dismissal moves nothing; both need a note;
//   - with four eyes, a credit is a proposal that shows who proposed it;
//     another operator approves or rejects it, and the proposer is not
//     offered (and the ledger refuses) an approval of their own.

var exceptionStatuses = []domain.ExceptionStatus{domain.ExceptionOpen, domain.ExceptionProposed, domain.ExceptionResolved, domain.ExceptionDismissed}

type exceptionsData struct {
	Status   string
	Statuses []string
	Reason   string
	Reasons  []string
	Items    []domain.Exception
	Pager    pager
}

// exceptions: GET /console/exceptions?status=open|proposed|resolved|dismissed|all
// (default open)&reason=&after=&limit=.
func (c *Console) exceptions(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	q := r.URL.Query()
	data := exceptionsData{Status: q.Get("status"), Reason: q.Get("reason")}
	for _, s := range exceptionStatuses {
		data.Statuses = append(data.Statuses, s.String())
	}
	for _, reason := range domain.ExceptionReasons() {
		data.Reasons = append(data.Reasons, reason.String())
	}
	query := ports.ExceptionQuery{State: domain.ExceptionOpen}
	var err error
	switch data.Status {
	case "":
		data.Status = domain.ExceptionOpen.String()
	case "all":
		query.State = domain.ExceptionStatus{}
	default:
		if query.State, err = domain.ParseExceptionStatus(data.Status); err != nil {
			return &queryError{"status"}
		}
	}
	if data.Reason != "" {
		if query.Reason, err = domain.ParseExceptionReason(data.Reason); err != nil {
			return &queryError{"reason"}
		}
	}
	if query.Limit, err = pageLimit(q); err != nil {
		return err
	}
	if query.AfterID, err = queryText(q, "after"); err != nil {
		return err
	}
	list, err := c.ledger.ListExceptions(r.Context(), query)
	if err != nil {
		return err
	}
	data.Items = list
	data.Pager = nextPage(r.URL, q, len(list), query.Limit, func() string { return list[len(list)-1].ID })
	c.render(w, r, rc, http.StatusOK, "exceptions", rc.loc.T("exceptions.title"), "exceptions", data)
	return nil
}

type exceptionData struct {
	Exception   domain.Exception
	Deposit     *domain.Deposit
	DepositHref string
	AccountHref string
	Evidence    []evidenceLine
	// The claim compared with the deposit.
	AmountDiffers, CurrencyDiffers bool
	// Bound is the most a credit may be (zero: none is justified).
	Bound     domain.Amount
	CanCredit bool // open, and the evidence justifies a credit
	NeedsAcct bool // no deposit: a credit must name the account
	// Proposal rights: the viewer is the proposer, or another operator.
	OwnProposal bool
	CanDecide   bool
	CanResolve  bool
	Form        resolveForm
}

// resolveForm is what the operator typed, kept when the form comes back.
type resolveForm struct {
	Amount    string
	AccountID string
	Note      string
}

func (c *Console) loadException(r *http.Request, id string) (exceptionData, error) {
	e, err := c.ledger.Exception(r.Context(), id)
	if err != nil {
		return exceptionData{}, err
	}
	data := exceptionData{Exception: e, Bound: e.CreditBound()}
	if e.AccountID != "" {
		data.AccountHref = pathOf("accounts", e.AccountID)
	}
	var against *differs
	if e.DepositID != "" {
		d, err := c.ledger.Deposit(r.Context(), e.Channel, e.PaymentID)
		switch {
		case err == nil:
			data.Deposit = &d
			data.DepositHref = pathOf("deposits", d.PaymentID)
			data.AmountDiffers = e.Amount.Minor() != d.Amount.Minor()
			data.CurrencyDiffers = e.Amount.Currency() != d.Amount.Currency()
			against = &differs{amountMinor: strconv.FormatInt(d.Amount.Minor(), 10), currency: d.Amount.Currency().Code()}
		case !errors.Is(err, ports.ErrNotFound):
			return data, err
		}
	}
	data.Evidence = prettyEvidence(e.Evidence, against)
	data.NeedsAcct = e.DepositID == ""
	data.CanCredit = e.State == domain.ExceptionOpen && data.Bound.IsPositive() &&
		(data.Deposit == nil || data.Deposit.Status != domain.DepositSucceeded)
	if data.Bound.IsPositive() {
		data.Form.Amount = data.Bound.String()
	}
	return data, nil
}

// exception: GET /console/exceptions/{id}.
func (c *Console) exception(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	data, err := c.loadException(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	c.renderException(w, r, rc, http.StatusOK, data)
	return nil
}

func (c *Console) renderException(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, data exceptionData) {
	e := data.Exception
	data.CanResolve = rc.canAct() && e.State == domain.ExceptionOpen
	data.CanCredit = data.CanCredit && rc.canAct()
	if p := e.Proposal; p != nil && e.State == domain.ExceptionProposed && rc.canAct() {
		data.OwnProposal = p.Actor == rc.sess.token.Name
		data.CanDecide = !data.OwnProposal
	}
	c.render(w, r, rc, status, "exception", rc.loc.T("exception.title", rc.loc.Enum("reason", e.Reason.String())), "exceptions", data)
}

// confirmResolveData is the confirmation step of a credit.
type confirmResolveData struct {
	Exception domain.Exception
	Amount    domain.Amount
	Account   domain.Account
	Form      resolveForm
	Back      string
}

// resolve: POST /console/exceptions/{id}/resolve (operator) with
// action=credit|dismiss, note, and for a credit amount (default: the
// evidence's bound) and account_id (default: the deposit's account). A
// credit is confirmed first: without confirm=yes the answer is the
// confirmation page.
func (c *Console) resolve(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id := r.PathValue("id")
	back := pathOf("exceptions", id)
	f := r.PostForm
	form := resolveForm{Amount: strings.TrimSpace(f.Get("amount")), AccountID: strings.TrimSpace(f.Get("account_id")), Note: strings.TrimSpace(f.Get("note"))}
	if form.Note == "" {
		return c.redirectFlash(w, r, rc, back, flash{key: "err.note_required", err: true})
	}
	if utf8.RuneCountInString(form.Note) > domain.MaxNoteLen || len(form.Note) > 4*domain.MaxNoteLen {
		return c.redirectFlash(w, r, rc, back, flash{key: "err.note_too_long", args: []any{domain.MaxNoteLen}, err: true})
	}
	e, err := c.ledger.Exception(r.Context(), id)
	if err != nil {
		return err
	}
	cmd := ports.ResolveException{ExceptionID: id, Note: form.Note, Actor: rc.sess.token.Name}
	switch f.Get("action") {
	case "dismiss":
	case "credit":
		cmd.Credit = true
		cmd.AccountID = form.AccountID
		target := form.AccountID
		if target == "" {
			target = e.AccountID
		}
		if target == "" {
			return c.redirectFlash(w, r, rc, back, flash{key: "err.account_required", err: true})
		}
		acc, err := c.ledger.Account(r.Context(), target)
		if err != nil {
			if errors.Is(err, ports.ErrNotFound) {
				return c.redirectFlash(w, r, rc, back, flash{key: "err.account_not_found", args: []any{target}, err: true})
			}
			return err
		}
		amount := e.CreditBound()
		if form.Amount != "" {
			if amount, err = domain.ParsePositiveAmount(form.Amount, acc.Currency()); err != nil {
				return c.actionError(w, r, rc, back, err)
			}
		}
		cmd.Amount = amount
		// Within the evidence, before anything is confirmed (the ledger
		// checks it again, with everything else, when it credits).
		if err := e.CheckCredit(amount); err != nil {
			return c.actionError(w, r, rc, back, err)
		}
		// The confirmation step; with four eyes the second operator is it.
		if f.Get("confirm") != "yes" && !c.fourEyes {
			c.render(w, r, rc, http.StatusOK, "confirm_credit", rc.loc.T("confirm_credit.title"), "exceptions", confirmResolveData{
				Exception: e, Amount: amount, Account: acc, Form: form, Back: back,
			})
			return nil
		}
	default:
		return c.redirectFlash(w, r, rc, back, flash{key: "err.bad_action", err: true})
	}
	out, err := c.ledger.ResolveException(r.Context(), cmd)
	if err != nil {
		return c.actionError(w, r, rc, back, err)
	}
	c.log.InfoContext(r.Context(), "console: exception resolved", "actor", rc.sess.token.Name, "exception", id,
		"state", out.State.String())
	switch {
	case out.State == domain.ExceptionProposed && out.Proposal != nil:
		return c.redirectFlash(w, r, rc, back, flash{key: "exception.proposed_flash", args: []any{rc.loc.Money(out.Proposal.Amount)}})
	case out.Resolution != nil && out.Resolution.Credit:
		return c.redirectFlash(w, r, rc, back, flash{key: "exception.credited_flash", args: []any{rc.loc.Money(out.Resolution.Amount)}})
	}
	return c.redirectFlash(w, r, rc, back, flash{key: "exception.dismissed_flash"})
}

// approve: POST /console/exceptions/{id}/approve (operator, not the
// proposer) with an optional note.
func (c *Console) approve(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	return c.decide(w, r, rc, false)
}

// reject: POST /console/exceptions/{id}/reject (operator) with a note.
func (c *Console) reject(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	return c.decide(w, r, rc, true)
}

func (c *Console) decide(w http.ResponseWriter, r *http.Request, rc *reqCtx, reject bool) error {
	id := r.PathValue("id")
	back := pathOf("exceptions", id)
	note := strings.TrimSpace(r.PostForm.Get("note"))
	if reject && note == "" {
		return c.redirectFlash(w, r, rc, back, flash{key: "err.note_required", err: true})
	}
	if utf8.RuneCountInString(note) > domain.MaxNoteLen || len(note) > 4*domain.MaxNoteLen {
		return c.redirectFlash(w, r, rc, back, flash{key: "err.note_too_long", args: []any{domain.MaxNoteLen}, err: true})
	}
	cmd := ports.DecideProposal{ExceptionID: id, Note: note, Actor: rc.sess.token.Name}
	var (
		out domain.Exception
		err error
	)
	if reject {
		out, err = c.ledger.RejectException(r.Context(), cmd)
	} else {
		out, err = c.ledger.ApproveException(r.Context(), cmd)
	}
	if err != nil {
		return c.actionError(w, r, rc, back, err)
	}
	c.log.InfoContext(r.Context(), "console: proposal decided", "actor", rc.sess.token.Name, "exception", id,
		"state", out.State.String())
	if reject {
		return c.redirectFlash(w, r, rc, back, flash{key: "exception.rejected_flash"})
	}
	amount := domain.Amount{}
	if out.Resolution != nil {
		amount = out.Resolution.Amount
	}
	return c.redirectFlash(w, r, rc, back, flash{key: "exception.approved_flash", args: []any{rc.loc.Money(amount)}})
}
