package monetix

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/tiyn/tiyn/adapters/monetix/signature"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// Label of tiyn_monetix_requests_total{type} for anything but the two known
// request types, so the label's values stay bounded.
const typeUnknown = "unknown"

// answer is one verify/check_deposit answer: always HTTP 200, the result in
// code. project is set once the request is authenticated, so the answer can
// be signed when that project wants it.
type answer struct {
	typ     string // metric label
	code    int
	message string // errors.message when code != 0
	fields  map[string]any
	project *Project
}

// ServeRequests answers the platform's synchronous requests at
// POST /v1/monetix/requests, dispatched on "type":
//
//   - verify {customer_id} → {"code":0,"currency":"KZT"[,"additional_customer_id":"…"]}.
//     verify carries no currency, so the account is looked up in the first
//     configured method's currency (KZT for kassa24); additional_customer_id
//     is left out when the account has none.
//   - check_deposit {customer_id, amount, currency, payment_method} → opens
//     a pending deposit → {"code":0,"payment_id":"…","description":"…"}.
//     The amount must lie within the project's limits (Project.Limits) or
//     else the method's. A retried check_deposit opens another pending
//     deposit; only the one whose payment_id comes back in a callback is
//     ever settled, so that is harmless.
//
// The answer is always HTTP 200 (docs/protocol.md §4: the result travels in
// "code"; a non-200 has no documented meaning for these calls) with
// Content-Type application/json:
//
//   - 0 ok;
//   - 400 when the request cannot be authenticated: not a JSON object (no
//     signature can be checked on it), project_id missing, not an integer
//     (a string of digits is accepted, see ProjectIDOf) or not configured,
//     signature missing or wrong (checked with that project's key);
//   - 404 when the customer has no account;
//   - 500 with errors.message for everything else: unsupported content
//     type, body too large, blocked or closed account, unknown type,
//     missing or mistyped fields, unknown payment method, wrong or unknown
//     currency, amount outside the limits (the message states them), and
//     store failures ("service temporarily unavailable").
//
// Every non-zero answer carries {"errors":{"message":"…"}}. Fields are only
// validated after the signature is: an unauthenticated sender learns nothing
// but "400". When the project has SignAnswers, the answer gets a top-level
// "signature" computed like the platform's over the rest of the answer
// (answers to requests that failed authentication are never signed).
func (h *Handler) ServeRequests(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		requestsMethodNotAllowed(w)
		return
	}
	a := h.handleRequest(w, r)
	h.metrics.request(a.typ, a.code)
	body := map[string]any{"code": a.code}
	for k, v := range a.fields {
		body[k] = v
	}
	if a.code != CodeOK {
		body["errors"] = map[string]any{"message": a.message}
	}
	if a.project != nil && a.project.SignAnswers {
		body["signature"] = signature.Sign(a.project.Secret, body)
	}
	h.writeJSON(w, http.StatusOK, body)
}

func (h *Handler) handleRequest(w http.ResponseWriter, r *http.Request) answer {
	ctx := r.Context()
	a := answer{typ: typeUnknown}
	reject := func(reason string, code int, message string, attrs ...slog.Attr) answer {
		h.metrics.reject(endpointRequests, reason)
		h.log.LogAttrs(ctx, slog.LevelWarn, "monetix request rejected",
			append(attrs, slog.String("reason", reason), slog.String("detail", message), slog.String("remote", r.RemoteAddr))...)
		a.code, a.message = code, message
		return a
	}
	body, problem := h.readBody(w, r)
	if problem != nil {
		// Before a body is read nothing can be authenticated; an unreadable
		// body is treated like an undecodable one (400), the rest are
		// general errors (500) with the reason.
		if problem.reason == ReasonMalformed {
			return reject(problem.reason, CodeInvalidSignature, "malformed request: "+problem.detail)
		}
		return reject(problem.reason, CodeGeneralError, problem.detail)
	}
	doc, err := signature.Decode(body)
	if err != nil {
		return reject(ReasonMalformed, CodeInvalidSignature, "malformed request: not a JSON object",
			slog.Int("body_bytes", len(body)))
	}
	if t, ok := doc["type"].(string); ok && (t == TypeVerify || t == TypeCheckDeposit) {
		a.typ = t
	}
	pid, err := ProjectIDOf(doc)
	if err != nil {
		return reject(ReasonUnknownProject, CodeInvalidSignature, err.Error())
	}
	p, ok := h.projects[pid]
	if !ok {
		return reject(ReasonUnknownProject, CodeInvalidSignature, "unknown project", slog.String("project", pid))
	}
	if err := signature.Verify(p.Secret, doc); err != nil {
		if !errors.Is(err, signature.ErrInvalidSignature) { // ErrNoSecret: New refuses empty secrets
			h.log.LogAttrs(ctx, slog.LevelError, "monetix: cannot verify request", slog.String("project", pid), slog.Any("error", err))
			a.code, a.message = CodeGeneralError, msgInternal
			return a
		}
		return reject(ReasonBadSignature, CodeInvalidSignature, "invalid signature", slog.String("project", pid))
	}
	// Only answers to authenticated requests are signed: signing whatever
	// a forger sends would hand out signatures for free.
	a.project = &p

	req, err := ParseRequest(doc)
	if err != nil {
		a.code, a.message = CodeGeneralError, err.Error()
		h.log.LogAttrs(ctx, slog.LevelWarn, "monetix request refused",
			slog.String("project", pid), slog.String("type", a.typ), slog.String("detail", err.Error()))
		return a
	}
	var fields map[string]any
	switch req.Type {
	case TypeVerify:
		fields, err = h.verify(ctx, req)
	default:
		fields, err = h.checkDeposit(ctx, p, req)
	}
	if err != nil {
		code, message, serverSide := requestFailure(err)
		level := slog.LevelDebug
		if serverSide {
			level = slog.LevelError
		}
		h.log.LogAttrs(ctx, level, "monetix request failed",
			slog.String("project", pid), slog.String("type", req.Type), slog.Int("code", code),
			slog.String("detail", message), slog.Any("error", err))
		a.code, a.message = code, message
		return a
	}
	a.code, a.fields = CodeOK, fields
	return a
}

// verify answers whether the customer's account exists and takes payments.
func (h *Handler) verify(ctx context.Context, req Request) (map[string]any, error) {
	currency := h.methods[0].Currency
	acc, err := h.ledger.VerifyCustomer(ctx, req.CustomerID, currency)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"currency": acc.Currency().Code()}
	if add := acc.AdditionalCustomerID(); add != "" {
		out["additional_customer_id"] = add
	}
	return out, nil
}

// checkDeposit opens a pending deposit and answers its payment id.
func (h *Handler) checkDeposit(ctx context.Context, p Project, req Request) (map[string]any, error) {
	m, ok := h.method(req.PaymentMethod)
	if !ok {
		return nil, fieldErr("payment_method", "%q is not supported", truncateText(req.PaymentMethod, 32))
	}
	currency, err := domain.LookupCurrency(req.Currency)
	if err != nil {
		return nil, fieldErr("currency", "%s is not supported", req.Currency)
	}
	if currency != m.Currency {
		return nil, fieldErr("currency", "%s is not accepted by payment method %s (%s only)", currency, m.Name, m.Currency)
	}
	amount := domain.NewAmount(req.AmountMinor, currency)
	limits := m.limitsFor(p)
	// The ledger checks the limits too; checking here first answers without
	// a store round trip and does not depend on the ledger's wording.
	if err := limits.Check(amount); err != nil {
		return nil, err
	}
	dep, err := h.ledger.OpenDeposit(ctx, ports.OpenDeposit{
		Channel:    domain.Channel{Provider: ProviderName, Method: m.Name, Project: p.ID},
		CustomerID: req.CustomerID,
		Amount:     amount,
		Limits:     limits,
	})
	if err != nil {
		return nil, err
	}
	if dep.PaymentID == "" {
		return nil, fmt.Errorf("monetix: ledger opened deposit %s without a payment id", dep.ID)
	}
	return map[string]any{"payment_id": dep.PaymentID, "description": m.Description}, nil
}
