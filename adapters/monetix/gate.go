package monetix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix/signature"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// The Gate's payment status: the platform's own record of one payment,
// asked for the deposits that stay pending (docs/protocol.md §8). Gate
// implements ports.PaymentStatusSource.
//
// The request is POST {gate}/v2/payment/status with
// {"general":{"project_id":<int>,"payment_id":"<the id Tiyn minted>",
// "signature":"…"}}, signed with the project's key by the same signer as
// every other body (the signature sits inside general; signatures are left
// out at every depth when signing). The answer carries the payment and its
// operations, each shaped like a callback's operation: it is read as the
// callback the platform would send for the payment's last sale operation,
// and classified by the same rules (Classify), so that a status answer and
// a callback that say the same thing are the same evidence.

// Gate settings' defaults and the path.
const (
	// DefaultGateURL is the production Gate host the public SDKs use.
	DefaultGateURL = "https://api.trxhost.com"
	// GateStatusPath is the payment status endpoint under the Gate URL.
	GateStatusPath = "/v2/payment/status"
	// DefaultGateTimeout bounds one status request, connection to last
	// byte. The vendor documents none; 15 s is far above what a status
	// lookup takes and keeps a stuck Gate from holding the poller.
	DefaultGateTimeout = 15 * time.Second
	// MaxGateAnswerBytes bounds an answer's body: a payment with its
	// operations is a few KiB.
	MaxGateAnswerBytes = 1 << 20
)

// Reasons a status check got no usable answer (ports.NoAnswerError.Reason,
// the tiyn_status_poll_total label).
const (
	NoAnswerUnavailable   = "unavailable"    // network error, 5xx, 429
	NoAnswerTimeout       = "timeout"        // no answer within the timeout
	NoAnswerRejected      = "rejected"       // a 4xx, or an answer that carries only errors
	NoAnswerBadSignature  = "bad_signature"  // the answer's signature is wrong
	NoAnswerUnsigned      = "unsigned"       // no signature, and one is required
	NoAnswerMalformed     = "malformed"      // not the answer's shape, or about another payment
	NoAnswerNotConfigured = "not_configured" // the deposit's project or method is not configured
)

// GateConfig configures a Gate client.
type GateConfig struct {
	// URL is the Gate's base URL (DefaultGateURL when empty). It must be
	// https, except on a loopback host (tests, the simulator).
	URL string
	// Timeout bounds one request (DefaultGateTimeout when zero).
	Timeout time.Duration
	// RequireSignature refuses answers without a signature. Whether the
	// Gate signs every status answer is not documented: by default a
	// signature is verified when present, and an answer without one is
	// accepted.
	RequireSignature bool
	// Projects and Methods are the ones the Handler serves (Methods nil:
	// {Kassa24}); a deposit of another project or method is not asked
	// about.
	Projects []Project
	Methods  []Method
	// Client sends the requests; nil means a client of its own. Its
	// timeout is not used: Timeout bounds each request.
	Client *http.Client
}

// Gate asks the platform about payments. It is safe for concurrent use.
type Gate struct {
	endpoint string
	timeout  time.Duration
	signed   bool
	projects map[string]Project
	methods  []Method
	client   *http.Client
}

var _ ports.PaymentStatusSource = (*Gate)(nil)

// NewGate checks cfg and builds a client.
func NewGate(cfg GateConfig) (*Gate, error) {
	base := cfg.URL
	if base == "" {
		base = DefaultGateURL
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("monetix gate: URL %q must be scheme://host[:port][/path]", redactURL(base))
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
	default:
		return nil, fmt.Errorf("monetix gate: URL %q must be https (plain http only on a loopback host)", redactURL(base))
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("monetix gate: negative timeout %s", cfg.Timeout)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultGateTimeout
	}
	if len(cfg.Projects) == 0 {
		return nil, fmt.Errorf("%w: the gate needs at least one project", ErrInvalidProjects)
	}
	projects := make(map[string]Project, len(cfg.Projects))
	for _, p := range cfg.Projects {
		if err := p.Validate(); err != nil {
			return nil, err
		}
		p.Secret = append([]byte(nil), p.Secret...)
		projects[p.ID] = p
	}
	methods := cfg.Methods
	if len(methods) == 0 {
		methods = []Method{Kassa24}
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	return &Gate{
		endpoint: strings.TrimSuffix(u.String(), "/") + GateStatusPath,
		timeout:  timeout, signed: cfg.RequireSignature, projects: projects,
		methods: append([]Method(nil), methods...), client: client,
	}, nil
}

// Endpoint is the status URL the client posts to.
func (g *Gate) Endpoint() string { return g.endpoint }

func noAnswer(reason string, err error) error { return &ports.NoAnswerError{Reason: reason, Err: err} }

// PaymentStatus asks the Gate about the payment of deposit d. An answer is
// used only when it is authentic (its signature verifies, when it has one
// or one is required) and about d's payment in d's project; anything else
// is a *ports.NoAnswerError. HTTP 404 is the platform saying it has no
// such payment (Known false); any other 4xx is rejected, a 5xx or 429 is
// unavailable.
func (g *Gate) PaymentStatus(ctx context.Context, d domain.Deposit) (ports.StatusAnswer, error) {
	p, ok := g.projects[d.Channel.Project]
	if d.Channel.Provider != ProviderName || !ok {
		return ports.StatusAnswer{}, noAnswer(NoAnswerNotConfigured,
			fmt.Errorf("deposit %s is of %s project %s, which is not configured", d.ID, d.Channel.Provider, d.Channel.Project))
	}
	m, ok := g.method(d.Channel.Method)
	if !ok {
		return ports.StatusAnswer{}, noAnswer(NoAnswerNotConfigured,
			fmt.Errorf("deposit %s is of payment method %q, which is not configured", d.ID, d.Channel.Method))
	}
	body, err := StatusRequestBody(p.Secret, p.ID, d.PaymentID)
	if err != nil {
		return ports.StatusAnswer{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.endpoint, bytes.NewReader(body))
	if err != nil {
		return ports.StatusAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := g.client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return ports.StatusAnswer{}, noAnswer(NoAnswerTimeout, fmt.Errorf("no answer within %s", g.timeout))
		}
		return ports.StatusAnswer{}, noAnswer(NoAnswerUnavailable, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxGateAnswerBytes+1))
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return ports.StatusAnswer{}, noAnswer(NoAnswerTimeout, fmt.Errorf("answer not complete within %s", g.timeout))
		}
		return ports.StatusAnswer{}, noAnswer(NoAnswerUnavailable, err)
	}
	if len(raw) > MaxGateAnswerBytes {
		return ports.StatusAnswer{}, noAnswer(NoAnswerMalformed, fmt.Errorf("answer larger than %d bytes", MaxGateAnswerBytes))
	}
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return ports.StatusAnswer{}, noAnswer(NoAnswerUnavailable, fmt.Errorf("HTTP %d", resp.StatusCode))
	case resp.StatusCode == http.StatusNotFound:
		if err := g.authentic(p, raw, true); err != nil {
			return ports.StatusAnswer{}, err
		}
		return ports.StatusAnswer{Known: false, Evidence: string(raw), Limits: m.limitsFor(p)}, nil
	case resp.StatusCode != http.StatusOK:
		return ports.StatusAnswer{}, noAnswer(NoAnswerRejected, fmt.Errorf("HTTP %d: %s", resp.StatusCode, errorText(raw)))
	}
	if err := g.authentic(p, raw, false); err != nil {
		return ports.StatusAnswer{}, err
	}
	doc, err := signature.Decode(raw)
	if err != nil {
		return ports.StatusAnswer{}, noAnswer(NoAnswerMalformed, err)
	}
	cb, err := ParseStatusAnswer(doc)
	if errors.Is(err, errOnlyErrors) {
		return ports.StatusAnswer{}, noAnswer(NoAnswerRejected, err)
	}
	if err != nil {
		return ports.StatusAnswer{}, noAnswer(NoAnswerMalformed, err)
	}
	if cb.ProjectID != p.ID || cb.PaymentID != d.PaymentID {
		return ports.StatusAnswer{}, noAnswer(NoAnswerMalformed,
			fmt.Errorf("the answer is about payment %q of project %s, not %q of %s",
				truncateText(cb.PaymentID, 32), cb.ProjectID, d.PaymentID, p.ID))
	}
	kind, status := Classify(cb)
	return ports.StatusAnswer{
		Known: true,
		Outcome: domain.Outcome{Kind: kind, Status: status, OperationID: cb.OperationID,
			Amount: domain.NewAmount(cb.AmountMinor, domain.CurrencyOf(cb.Currency)), Method: cb.PaymentMethod},
		Evidence: string(raw),
		Limits:   m.limitsFor(p),
	}, nil
}

// authentic verifies an answer's signature: a wrong one is never an
// answer; a missing one only when signatures are required. A body that is
// not a JSON object has no signature to check (lenient: a 404 page).
func (g *Gate) authentic(p Project, raw []byte, lenient bool) error {
	doc, err := signature.Decode(raw)
	if err != nil {
		if lenient && !g.signed {
			return nil
		}
		return noAnswer(NoAnswerMalformed, err)
	}
	if _, has := doc["signature"]; !has {
		if g.signed {
			return noAnswer(NoAnswerUnsigned, errors.New("the answer carries no signature and TIYN_MONETIX_GATE_REQUIRE_SIGNATURE is on"))
		}
		return nil
	}
	if err := signature.Verify(p.Secret, doc); err != nil {
		return noAnswer(NoAnswerBadSignature, err)
	}
	return nil
}

func (g *Gate) method(name string) (Method, bool) {
	for _, m := range g.methods {
		if m.Name == name {
			return m, true
		}
	}
	return Method{}, false
}

// StatusRequestBody builds the signed status request for a payment.
func StatusRequestBody(secret []byte, projectID, paymentID string) ([]byte, error) {
	if len(secret) == 0 {
		return nil, signature.ErrNoSecret
	}
	general := map[string]any{"project_id": json.Number(projectID), "payment_id": paymentID}
	doc := map[string]any{"general": general}
	// Sign what the Gate will decode: marshal, decode, sign.
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("monetix status request: %w", err)
	}
	decoded, err := signature.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("monetix status request: %w", err)
	}
	general["signature"] = signature.Sign(secret, decoded)
	return json.Marshal(doc)
}

// errOnlyErrors: an answer with errors and no payment.
var errOnlyErrors = errors.New("the answer carries errors and no payment")

// ParseStatusAnswer reads a decoded status answer as the callback the
// platform would send for the payment's last sale operation: project_id,
// payment (id, status, method, sum, as in ParseCallback) and, from
// operations, the last one whose type is "sale" (id, type, status). With
// no sale operation the callback has none (operation id "", type ""), so
// that a success without the sale that collected the money is not final
// (Classify). An answer with no payment but errors wraps errOnlyErrors.
func ParseStatusAnswer(doc map[string]any) (Callback, error) {
	if _, has := doc["payment"]; !has {
		if list, ok := doc["errors"].([]any); ok && len(list) > 0 {
			return Callback{}, fmt.Errorf("%w: %s", errOnlyErrors, errorsText(list))
		}
	}
	cb, err := parsePayment(doc)
	if err != nil {
		return Callback{}, err
	}
	op, i, err := saleOperation(doc)
	if err != nil || op == nil {
		return cb, err
	}
	if err := parseOperation(op, fmt.Sprintf("operations[%d].", i), &cb); err != nil {
		return Callback{}, err
	}
	return cb, nil
}

// saleOperation returns the last operation of type "sale" and its index,
// or nil.
func saleOperation(doc map[string]any) (map[string]any, int, error) {
	v, has := doc["operations"]
	if !has || v == nil {
		return nil, -1, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, -1, fieldErr("operations", "must be an array, got %s", jsonType(v))
	}
	for i := len(list) - 1; i >= 0; i-- {
		op, ok := list[i].(map[string]any)
		if !ok {
			return nil, -1, fieldErr(fmt.Sprintf("operations[%d]", i), "must be an object, got %s", jsonType(list[i]))
		}
		if t, _ := op["type"].(string); t == OperationSale {
			return op, i, nil
		}
	}
	return nil, -1, nil
}

// errorsText renders an answer's errors for a log line: codes and
// messages, bounded.
func errorsText(list []any) string {
	var parts []string
	for _, e := range list {
		m, _ := e.(map[string]any)
		var code, msg string
		if m != nil {
			code = fmt.Sprint(m["code"])
			msg, _ = m["message"].(string)
		}
		parts = append(parts, strings.TrimSpace(code+" "+truncateText(msg, 80)))
		if len(parts) == 3 {
			break
		}
	}
	return strings.Join(parts, "; ")
}

// errorText is what a refused answer says, for the log: its errors when it
// has them, else a short prefix of the body.
func errorText(raw []byte) string {
	if doc, err := signature.Decode(raw); err == nil {
		if list, ok := doc["errors"].([]any); ok && len(list) > 0 {
			return errorsText(list)
		}
	}
	return truncateText(strings.ToValidUTF8(string(raw), "?"), 80)
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redactURL drops a URL's user info for messages.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		u.User = nil
		return u.String()
	}
	return s
}
