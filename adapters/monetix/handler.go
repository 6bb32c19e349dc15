package monetix

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tiyn/tiyn/ports"
)

// The fixed paths of the platform endpoints (docs/architecture.md §6).
const (
	RequestsPath  = "/v1/monetix/requests"
	CallbacksPath = "/v1/monetix/callbacks"
)

// DefaultMaxBodyBytes bounds a request or callback body when
// Config.MaxBodyBytes is not set. The largest Monetix callback is about 1 KiB;
// 64 KiB leaves room for custom callback formats and stops memory abuse.
const DefaultMaxBodyBytes = 64 << 10

// Config configures a Handler.
type Config struct {
	// Projects are the merchant's Monetix projects (at least one), usually
	// from ParseProjects.
	Projects []Project
	// Methods is the registry of payment methods served; nil means
	// {Kassa24}. The first method's currency is the one verify checks
	// accounts in (verify carries no currency on the wire), so with methods
	// of several currencies list the one verify should use first.
	Methods []Method
	// MaxBodyBytes bounds request and callback bodies (default
	// DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Logger receives warnings about rejected bodies and errors from the
	// ledger; nil discards. Secrets and raw bodies are never logged.
	Logger *slog.Logger
	// Metrics counts requests, callbacks and rejections; nil counts nothing.
	Metrics *Metrics
	// Now stamps callbacks' ReceivedAt; nil means time.Now (UTC).
	Now func() time.Time
}

// Handler serves the Monetix platform endpoints on top of a ports.Ledger. It
// is safe for concurrent use and keeps no state between requests: any number
// of instances may serve the same projects.
type Handler struct {
	ledger   ports.Ledger
	projects map[string]Project
	methods  []Method // the registry, in configured order
	maxBody  int64
	log      *slog.Logger
	metrics  *Metrics
	now      func() time.Time
}

// Validate checks a configuration without building a handler: at least one
// project, each valid and configured once; valid methods, each configured
// once; and every project's own limits within every method's limits (a
// project may narrow a method's limits, never widen them). New calls it;
// the composition root calls it at start, so a bad configuration is refused
// before anything is served. Project errors wrap ErrInvalidProjects and
// show amounts in the method's currency, in major units.
func (cfg Config) Validate() error {
	if len(cfg.Projects) == 0 {
		return fmt.Errorf("%w: no project configured", ErrInvalidProjects)
	}
	methods := cfg.methods()
	for i, m := range methods {
		if err := m.Validate(); err != nil {
			return fmt.Errorf("monetix: %w", err)
		}
		for _, prev := range methods[:i] {
			if strings.EqualFold(prev.Name, m.Name) {
				return fmt.Errorf("monetix: payment method %s configured twice", m.Name)
			}
		}
	}
	seen := make(map[string]bool, len(cfg.Projects))
	var errs []error
	for _, p := range cfg.Projects {
		if err := p.Validate(); err != nil {
			return err
		}
		if seen[p.ID] {
			return fmt.Errorf("%w: project %s configured twice", ErrInvalidProjects, p.ID)
		}
		seen[p.ID] = true
		for _, m := range methods {
			if err := p.fitLimits(m); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if cfg.MaxBodyBytes < 0 {
		return fmt.Errorf("monetix: negative MaxBodyBytes %d", cfg.MaxBodyBytes)
	}
	return nil
}

// methods is the registry served: Config.Methods, or {Kassa24}.
func (cfg Config) methods() []Method {
	if len(cfg.Methods) == 0 {
		return []Method{Kassa24}
	}
	return cfg.Methods
}

// New checks cfg (Config.Validate) and builds a Handler. It also refuses a
// nil ledger. Project secrets are copied, so the caller may wipe its own
// copies.
func New(ledger ports.Ledger, cfg Config) (*Handler, error) {
	if ledger == nil {
		return nil, errors.New("monetix.New: nil ledger")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("monetix.New: %w", err)
	}
	h := &Handler{
		ledger:   ledger,
		projects: make(map[string]Project, len(cfg.Projects)),
		maxBody:  cfg.MaxBodyBytes,
		log:      cfg.Logger,
		metrics:  cfg.Metrics,
		now:      cfg.Now,
	}
	for _, p := range cfg.Projects {
		p.Secret = append([]byte(nil), p.Secret...)
		if p.Limits != nil {
			l := *p.Limits
			p.Limits = &l
		}
		h.projects[p.ID] = p
	}
	methods := cfg.methods()
	h.methods = append([]Method(nil), methods...)
	if h.maxBody == 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = func() time.Time { return time.Now().UTC() }
	}
	return h, nil
}

// Register mounts the two endpoints on mux at their fixed paths. They take
// POST only; other methods get the handlers' own JSON 405 with Allow: POST.
// The patterns name no method on purpose: with a method, a catch-all that
// matches every method (REST's "/v1/") would win over the mux's 405 and
// answer the platform 404 for a path that exists.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc(RequestsPath, h.ServeRequests)
	mux.HandleFunc(CallbacksPath, h.ServeCallbacks)
}

// method finds a registered method by its wire name, exactly as the
// platform spells it: one rule for case everywhere (a "KASSA24" is no more
// kassa24 than a "VERIFY" is verify).
func (h *Handler) method(name string) (Method, bool) {
	for _, m := range h.methods {
		if m.Name == name {
			return m, true
		}
	}
	return Method{}, false
}

// bodyProblem is why a body was not read; its reason is a metric label.
type bodyProblem struct {
	reason string
	detail string
}

// readBody checks the method and the content type and reads at most
// h.maxBody bytes. A nil problem means body holds the whole request.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *bodyProblem) {
	if !jsonContentType(r.Header.Get("Content-Type")) {
		return nil, &bodyProblem{ReasonWrongContentType, "unsupported content type"}
	}
	tooLarge := &bodyProblem{ReasonTooLarge, "body larger than " + strconv.FormatInt(h.maxBody, 10) + " bytes"}
	if r.ContentLength > h.maxBody {
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge
		}
		return nil, &bodyProblem{ReasonMalformed, "body could not be read"}
	}
	return body, nil
}

// jsonContentType accepts application/json, with or without parameters,
// in any letter case, with a UTF-8 charset or none (JSON is UTF-8; the
// decoder refuses anything else anyway). An absent header is accepted too:
// the body is parsed as JSON and authenticated by its signature whatever the
// header says, and refusing a header-less sender would lose its callbacks.
func jsonContentType(header string) bool {
	if strings.TrimSpace(header) == "" {
		return true
	}
	mt, params, err := mime.ParseMediaType(header)
	if err != nil || mt != "application/json" {
		return false
	}
	if cs, ok := params["charset"]; ok {
		switch strings.ToLower(cs) {
		case "utf-8", "utf8":
		default:
			return false
		}
	}
	return true
}

// writeJSON sends v as a JSON answer with the given HTTP status.
func (h *Handler) writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only maps of strings and ints are passed: cannot happen
		h.log.Error("monetix: cannot encode answer", slog.Any("error", err))
		http.Error(w, `{"code":500}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// methodNotAllowed answers a wrong method on the callbacks endpoint: HTTP
// 405 with Allow: POST, in the callbacks' own answer shape (CallbackReply).
// requestsMethodNotAllowed is the same for the requests endpoint in its
// shape. Whoever reads one endpoint thus reads one shape, errors included.
func methodNotAllowed(w http.ResponseWriter) {
	writeMethodNotAllowed(w, `{"status":"error","error":"method not allowed"}`)
}

// requestsMethodNotAllowed answers a wrong method on the requests endpoint
// in the Monetix answer shape, code 500 being the protocol's "any other
// error" with the reason in errors.message.
func requestsMethodNotAllowed(w http.ResponseWriter) {
	writeMethodNotAllowed(w, `{"code":500,"errors":{"message":"method not allowed"}}`)
}

func writeMethodNotAllowed(w http.ResponseWriter, body string) {
	w.Header().Set("Allow", http.MethodPost)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusMethodNotAllowed)
	_, _ = io.WriteString(w, body+"\n")
}
