package monetix

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/tiyn/tiyn/adapters/monetix/signature"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// CallbackReply is the JSON body of every callback answer: {"status":"ok",
// "effect":"credited"} after the ledger applied the callback, or
// {"status":"error","error":"…"} otherwise. The platform only looks at the
// HTTP status; the body is for people and the simulator.
type CallbackReply struct {
	Status string `json:"status"`           // "ok" or "error"
	Effect string `json:"effect,omitempty"` // credited, declined, replay, recorded, exception
	Error  string `json:"error,omitempty"`
}

// ServeCallbacks takes the platform's payment callbacks at
// POST /v1/monetix/callbacks.
//
// The platform counts a callback as delivered only on HTTP 200 and retries
// anything else for about 11 days. Every authentic callback — its
// signature verifies with its project's key — is kept, whatever else is
// wrong with it; only what cannot be authenticated is refused:
//
//   - 200 {"status":"ok","effect":…} only after the ledger committed the raw
//     body and its effect. Replays, intermediate statuses and exceptions are
//     all 200: they are stored, and retrying them would change nothing. An
//     exception is anything that cannot be applied safely: an unknown
//     payment, an amount, currency (any currency, known to ISO 4217 or not,
//     or none) or payment method that differs from the deposit's, a second
//     success, a decline after success — and a body that verifies but
//     cannot be read as an outcome at all (amount as a string, operation
//     missing, …), kept as a malformed_callback exception with its raw body
//     (RecordUnreadable).
//   - 400 when the body cannot be authenticated: not a JSON object, the
//     project_id missing, mistyped or not configured, the signature missing
//     or wrong. Nothing is stored; the reason is logged at warn (never the
//     secret, nor the body of an unauthenticated sender) and counted in
//     tiyn_monetix_rejected_total. The platform keeps retrying, which gives
//     an operator eleven days to fix a wrong key.
//   - 400 also when the ledger refuses the callback as permanently invalid
//     (domain.ErrInvalidInput).
//   - 413 for a body over the limit, 415 for a Content-Type other than JSON
//     (415 names the problem exactly; a 400 would hide it among bad
//     signatures).
//   - 503 when the store is unavailable or the request was cancelled, 500
//     for any other ledger error: nothing was committed, and the retry will
//     settle it. Logged at error.
//
// The deposit's channel is monetix / method / project. The method is the
// callback's payment.method when it names a configured method exactly;
// otherwise the only configured method, or (with several) the method of the
// deposit that has this payment id in this project. If none matches, the
// first method is used and the ledger records an unknown-payment exception.
// The ledger compares the callback's own payment.method with the deposit's:
// another method, or none, is an exception, never a credit.
func (h *Handler) ServeCallbacks(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w)
		return
	}
	ctx := r.Context()
	reject := func(status int, reason, detail string, attrs ...slog.Attr) {
		h.metrics.reject(endpointCallbacks, reason)
		h.log.LogAttrs(ctx, slog.LevelWarn, "monetix callback rejected",
			append(attrs, slog.String("reason", reason), slog.String("detail", detail), slog.String("remote", r.RemoteAddr))...)
		h.writeJSON(w, status, CallbackReply{Status: "error", Error: detail})
	}

	body, problem := h.readBody(w, r)
	if problem != nil {
		status := http.StatusBadRequest
		switch problem.reason {
		case ReasonTooLarge:
			status = http.StatusRequestEntityTooLarge
		case ReasonWrongContentType:
			status = http.StatusUnsupportedMediaType
		}
		reject(status, problem.reason, problem.detail)
		return
	}
	doc, err := signature.Decode(body)
	if err != nil {
		reject(http.StatusBadRequest, ReasonMalformed, "malformed callback: not a JSON object", slog.Int("body_bytes", len(body)))
		return
	}
	pid, err := ProjectIDOf(doc)
	if err != nil {
		reject(http.StatusBadRequest, ReasonUnknownProject, err.Error())
		return
	}
	p, ok := h.projects[pid]
	if !ok {
		reject(http.StatusBadRequest, ReasonUnknownProject, "unknown project", slog.String("project", pid))
		return
	}
	if err := signature.Verify(p.Secret, doc); err != nil {
		if !errors.Is(err, signature.ErrInvalidSignature) { // ErrNoSecret: New refuses empty secrets
			h.log.LogAttrs(ctx, slog.LevelError, "monetix: cannot verify callback", slog.String("project", pid), slog.Any("error", err))
			h.writeJSON(w, http.StatusInternalServerError, CallbackReply{Status: "error", Error: msgInternal})
			return
		}
		reject(http.StatusBadRequest, ReasonBadSignature, "invalid signature", slog.String("project", pid))
		return
	}
	cb, err := ParseCallback(doc)
	if err != nil {
		h.keepUnreadable(ctx, w, p, doc, body, err)
		return
	}
	// Any currency code: an ISO 4217 one is an exact amount, any other text
	// is kept as it came; either way the ledger compares it with the
	// deposit's.
	currency := domain.CurrencyOf(cb.Currency)

	attrs := []slog.Attr{slog.String("project", pid), slog.String("payment_id", cb.PaymentID),
		slog.String("operation_id", cb.OperationID), slog.String("status", cb.PaymentStatus)}
	m, err := h.callbackMethod(ctx, p, cb)
	if err != nil {
		h.failCallback(ctx, w, err, attrs)
		return
	}
	kind, status := Classify(cb)
	res, err := h.ledger.SettleDeposit(ctx, ports.SettleDeposit{
		Channel:   domain.Channel{Provider: ProviderName, Method: m.Name, Project: p.ID},
		PaymentID: cb.PaymentID,
		Outcome: domain.Outcome{
			Kind:        kind,
			Status:      status,
			OperationID: cb.OperationID,
			Amount:      domain.NewAmount(cb.AmountMinor, currency),
			Method:      cb.PaymentMethod,
		},
		RawBody:    string(body),
		ReceivedAt: h.now(),
		Limits:     m.limitsFor(p),
	})
	if err != nil {
		h.failCallback(ctx, w, err, attrs)
		return
	}

	effect := res.Effect.String()
	h.metrics.callback(effect)
	attrs = append(attrs, slog.String("effect", effect), slog.Int64("inbox_id", res.InboxID))
	level := slog.LevelDebug
	switch res.Effect {
	case domain.EffectCredit:
		credited := domain.NewAmount(cb.AmountMinor, currency)
		if res.Deposit != nil {
			credited = res.Deposit.Amount
		}
		h.metrics.credit(credited.Currency().Code(), credited.Minor())
		level = slog.LevelInfo
	case domain.EffectDecline:
		level = slog.LevelInfo
	case domain.EffectException:
		attrs = append(attrs, slog.String("exception_reason", res.Decision.Reason.String()),
			slog.String("exception_detail", res.Decision.Detail))
		if res.Exception != nil {
			attrs = append(attrs, slog.String("exception_id", res.Exception.ID))
		}
		level = slog.LevelWarn
	}
	h.log.LogAttrs(ctx, level, "monetix callback applied", attrs...)
	h.writeJSON(w, http.StatusOK, CallbackReply{Status: "ok", Effect: effect})
}

// keepUnreadable keeps an authentic callback that cannot be read as an
// outcome: the raw body in the inbox and a malformed_callback exception
// with what could be read of it, answered 200 (the platform would only
// retry the same bytes).
func (h *Handler) keepUnreadable(ctx context.Context, w http.ResponseWriter, p Project, doc map[string]any, body []byte, parseErr error) {
	paymentID, operationID, status, method := PeekCallback(doc)
	m, ok := h.method(method)
	if !ok {
		m = h.methods[0]
	}
	attrs := []slog.Attr{slog.String("project", p.ID), slog.String("payment_id", paymentID),
		slog.String("operation_id", operationID), slog.String("detail", parseErr.Error())}
	res, err := h.ledger.RecordUnreadable(ctx, ports.RecordUnreadable{
		Channel:   domain.Channel{Provider: ProviderName, Method: m.Name, Project: p.ID},
		PaymentID: paymentID, OperationID: operationID, Status: status,
		RawBody: string(body), Detail: "unreadable callback: " + parseErr.Error(), ReceivedAt: h.now(),
	})
	if err != nil {
		h.failCallback(ctx, w, err, attrs)
		return
	}
	effect := res.Effect.String()
	h.metrics.callback(effect)
	attrs = append(attrs, slog.String("effect", effect), slog.Int64("inbox_id", res.InboxID))
	if res.Exception != nil {
		attrs = append(attrs, slog.String("exception_id", res.Exception.ID))
	}
	h.log.LogAttrs(ctx, slog.LevelWarn, "monetix callback is authentic but unreadable: kept as a malformed_callback exception", attrs...)
	h.writeJSON(w, http.StatusOK, CallbackReply{Status: "ok", Effect: effect})
}

// failCallback answers a ledger error: 503/500 so the platform retries, or
// 400 for a permanent refusal.
func (h *Handler) failCallback(ctx context.Context, w http.ResponseWriter, err error, attrs []slog.Attr) {
	status, permanent := callbackFailure(err)
	attrs = append(attrs, slog.Int("http_status", status), slog.Any("error", err))
	if permanent {
		h.metrics.reject(endpointCallbacks, ReasonRejectedByLedger)
		h.log.LogAttrs(ctx, slog.LevelWarn, "monetix callback refused by the ledger", attrs...)
		h.writeJSON(w, status, CallbackReply{Status: "error", Error: err.Error()})
		return
	}
	h.log.LogAttrs(ctx, slog.LevelError, "monetix callback not stored; the platform will retry", attrs...)
	msg := msgInternal
	if status == http.StatusServiceUnavailable {
		msg = msgUnavailable
	}
	h.writeJSON(w, status, CallbackReply{Status: "error", Error: msg})
}

// callbackMethod picks the payment method of the deposit a callback settles
// (see ServeCallbacks).
func (h *Handler) callbackMethod(ctx context.Context, p Project, cb Callback) (Method, error) {
	if cb.PaymentMethod != "" {
		if m, ok := h.method(cb.PaymentMethod); ok {
			return m, nil
		}
		h.log.LogAttrs(ctx, slog.LevelWarn, "monetix callback names a payment method that is not configured",
			slog.String("project", p.ID), slog.String("payment_id", cb.PaymentID),
			slog.String("method", truncateText(cb.PaymentMethod, 32)))
	}
	if len(h.methods) == 1 {
		return h.methods[0], nil
	}
	dep, err := h.ledger.DepositByPaymentID(ctx, cb.PaymentID)
	switch {
	case err == nil:
		if dep.Channel.Provider == ProviderName && dep.Channel.Project == p.ID {
			if m, ok := h.method(dep.Channel.Method); ok {
				return m, nil
			}
		}
	case errors.Is(err, ports.ErrNotFound), errors.Is(err, ports.ErrAmbiguous):
	default:
		return Method{}, err
	}
	return h.methods[0], nil
}
