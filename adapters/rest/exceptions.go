package rest

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// statusAll is the ?status= value that lists exceptions in every state.
const statusAll = "all"

// listExceptions: GET /v1/exceptions?status=open|resolved|dismissed|all
// (default open: the operator's work queue)&limit=&cursor=.
func (a *api) listExceptions(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	query := ports.ExceptionQuery{State: domain.ExceptionOpen}
	var err error
	switch s := q.Get("status"); s {
	case "":
	case statusAll:
		query.State = domain.ExceptionStatus{}
	default:
		if query.State, err = domain.ParseExceptionStatus(s); err != nil {
			return errInvalidRequest("status must be open, resolved, dismissed or all")
		}
	}
	if r := q.Get("reason"); r != "" {
		if query.Reason, err = domain.ParseExceptionReason(r); err != nil {
			return errInvalidRequest("reason must be one of %s", reasonNames())
		}
	}
	if query.Limit, err = queryLimit(q); err != nil {
		return err
	}
	if query.AfterID, err = queryCursor(q, cursorException); err != nil {
		return err
	}
	list, err := a.ledger.ListExceptions(r.Context(), query)
	if err != nil {
		return err
	}
	out := exceptionList{Items: make([]exceptionView, 0, len(list))}
	for _, e := range list {
		out.Items = append(out.Items, viewException(e))
	}
	if n := len(list); n > 0 {
		out.NextCursor = nextCursor(cursorException, n, query.Limit, list[n-1].ID)
	}
	return a.writeJSON(w, http.StatusOK, out)
}

// getException: GET /v1/exceptions/{id}.
func (a *api) getException(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	e, err := a.ledger.Exception(r.Context(), id)
	if err != nil {
		return notFound(err, "exception", id)
	}
	return a.writeJSON(w, http.StatusOK, viewException(e))
}

type resolveRequest struct {
	Action    string      `json:"action"`
	AccountID string      `json:"account_id"`
	Amount    decimalText `json:"amount"`
	Note      string      `json:"note"`
}

// resolveException: POST /v1/exceptions/{id}/resolve (operator role).
//
//   - "dismiss" moves nothing.
//   - "credit" credits the exception's payment, once: an exception of a
//     deposit settles that deposit (to its account, or to account_id), one
//     of an unknown payment needs account_id. The amount defaults to what
//     the evidence claims and may not exceed it nor the method's
//     per-payment maximum (422 amount_exceeds_evidence); a payment already
//     credited answers 409 already_credited, naming the transfer.
//
// Both need a note, kept in the audit trail. With four eyes
// (TIYN_FOUR_EYES) a credit answers 202 with the exception proposed: no
// money moves until another operator approves it.
func (a *api) resolveException(w http.ResponseWriter, r *http.Request) error {
	var req resolveRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return err
	}
	if req.Note == "" {
		return errInvalidRequest("note is required: say why")
	}
	if err := validateText("note", req.Note, domain.MaxNoteLen); err != nil {
		return err
	}
	id := r.PathValue("id")
	// Read the exception first: a 404 then names the right thing, and a
	// credit's default account and currency come from it.
	e, err := a.ledger.Exception(r.Context(), id)
	if err != nil {
		return notFound(err, "exception", id)
	}
	cmd := ports.ResolveException{ExceptionID: id, Note: req.Note, Actor: ActorFrom(r.Context())}
	switch req.Action {
	case actionDismiss:
		if req.AccountID != "" || req.Amount.set {
			return errInvalidRequest("a dismissal takes no account_id or amount")
		}
	case actionCredit:
		cmd.Credit = true
		cmd.AccountID = req.AccountID
		target := req.AccountID
		if target == "" {
			target = e.AccountID
		}
		if req.Amount.set {
			// The amount's decimals depend on the currency of the account
			// the money goes to (or, without one, of the evidence).
			currency := e.Amount.Currency()
			if target != "" {
				acc, err := a.ledger.Account(r.Context(), target)
				if err != nil {
					return notFound(err, "account", target)
				}
				currency = acc.Currency()
			}
			if currency.IsZero() {
				return errUnprocessable(CodeCurrencyMismatch, "exception %s has evidence in an unknown currency; it cannot be credited", id)
			}
			if cmd.Amount, err = domain.ParsePositiveAmount(req.Amount.text, currency); err != nil {
				return err
			}
		}
	default:
		return errInvalidRequest("action must be %q or %q", actionCredit, actionDismiss)
	}
	resolved, err := a.ledger.ResolveException(r.Context(), cmd)
	if err != nil {
		if cmd.Credit && req.AccountID != "" {
			return notFound(err, "account", req.AccountID)
		}
		return notFound(err, "exception", id)
	}
	status := http.StatusOK
	if resolved.State == domain.ExceptionProposed {
		status = http.StatusAccepted
	}
	return a.writeJSON(w, status, viewException(resolved))
}

type decideRequest struct {
	Note string `json:"note"`
}

// approveException: POST /v1/exceptions/{id}/approve (operator role): a
// proposed credit is made, by an operator other than its proposer (403
// self_approval otherwise), after every rule of a credit is checked again.
// The body is optional: {"note":"…"}.
func (a *api) approveException(w http.ResponseWriter, r *http.Request) error {
	return a.decideProposal(w, r, false, a.ledger.ApproveException)
}

// rejectException: POST /v1/exceptions/{id}/reject (operator role) with
// {"note":"…"}: the proposal is dropped and the exception is open again.
func (a *api) rejectException(w http.ResponseWriter, r *http.Request) error {
	return a.decideProposal(w, r, true, a.ledger.RejectException)
}

func (a *api) decideProposal(w http.ResponseWriter, r *http.Request, noteRequired bool,
	decide func(context.Context, ports.DecideProposal) (domain.Exception, error)) error {
	var req decideRequest
	if err := decodeJSON(r, &req, noteRequired); err != nil {
		return err
	}
	if noteRequired && req.Note == "" {
		return errInvalidRequest("note is required: say why")
	}
	if err := validateText("note", req.Note, domain.MaxNoteLen); err != nil {
		return err
	}
	id := r.PathValue("id")
	e, err := decide(r.Context(), ports.DecideProposal{ExceptionID: id, Note: req.Note, Actor: ActorFrom(r.Context())})
	if err != nil {
		return notFound(err, "exception", id)
	}
	return a.writeJSON(w, http.StatusOK, viewException(e))
}

func reasonNames() string {
	var names []string
	for _, r := range domain.ExceptionReasons() {
		names = append(names, r.String())
	}
	return strings.Join(names, ", ")
}

// inboxOutcomes are the outcomes ?outcome= takes.
var inboxOutcomes = []domain.Effect{domain.EffectCredit, domain.EffectDecline, domain.EffectReplay, domain.EffectRecord, domain.EffectException}

// listCallbacks: GET /v1/callbacks?payment_id=&outcome=&source=&limit=&cursor=:
// the inbox, every piece of platform evidence as received — callbacks and
// status answers (source) — raw body included, with the reason of the
// exception it raised.
func (a *api) listCallbacks(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	query := ports.InboxQuery{PaymentID: q.Get("payment_id")}
	var err error
	if o := q.Get("outcome"); o != "" {
		for _, e := range inboxOutcomes {
			if e.String() == o {
				query.Outcome = e
			}
		}
		if query.Outcome.String() == "" {
			return errInvalidRequest("outcome must be credited, declined, replay, recorded or exception")
		}
	}
	if s := q.Get("source"); s != "" {
		if query.Source, err = ports.ParseSource(s); err != nil {
			return errInvalidRequest("source must be callback or status_poll")
		}
	}
	if query.Limit, err = queryLimit(q); err != nil {
		return err
	}
	if query.AfterID, err = querySeqCursor(q, cursorCallback); err != nil {
		return err
	}
	records, err := a.ledger.ListInbox(r.Context(), query)
	if err != nil {
		return err
	}
	out := callbackList{Items: make([]callbackView, 0, len(records))}
	for _, rec := range records {
		out.Items = append(out.Items, viewCallback(rec))
	}
	if n := len(records); n > 0 {
		out.NextCursor = nextCursor(cursorCallback, n, query.Limit, strconv.FormatInt(records[n-1].ID, 10))
	}
	return a.writeJSON(w, http.StatusOK, out)
}

// checkLedger: GET /v1/ledger/check: the invariants recomputed, with
// "healthy". It answers 200 either way: the request worked, and the body
// says what it found.
func (a *api) checkLedger(w http.ResponseWriter, r *http.Request) error {
	c, err := a.ledger.CheckLedger(r.Context())
	if err != nil {
		return err
	}
	return a.writeJSON(w, http.StatusOK, viewLedgerCheck(c))
}
