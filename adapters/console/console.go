// Package console is the operator console: server-rendered HTML pages,
// in English and Russian, where the merchant's operators work the
// exceptions queue, read accounts, statements and deposits, and block,
// unblock or close accounts. It is a driving adapter like adapters/rest:
// it calls ports.Ledger only, and the rules are the ledger's — the
// console can do nothing the REST API's rules forbid.
//
// Everything it serves is embedded in the binary (templates, CSS, the
// message catalogs); no page loads anything from another host, and no
// page runs a script. An operator logs in at /console/login with an API
// token (the same tokens as the REST API, TIYN_API_TOKENS):
//
//   - a read token sees every page and changes nothing;
//   - a write token is the back office's: in the console it gets what
//     read gets (least privilege: the console offers nothing of write's
//     own — debits, opening accounts — and every action it offers needs
//     an operator);
//   - an operator token may act: resolve exceptions (credit or dismiss,
//     propose, approve, reject) and block, unblock or close accounts.
//
// See session.go for sessions, and security.go for cookies, CSRF and the
// headers every answer carries.
package console

import (
	"bytes"
	"cmp"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// Prefix is where the console is served.
const Prefix = "/console"

// Page sizes of the lists: a page of 1,000 exceptions or a statement of
// 100,000 postings is read and shown a page at a time (keyset paging).
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// maxFormBytes bounds a form's body: the largest is a resolution with a
// 1000-byte note.
const maxFormBytes = 64 << 10

// Options configure the console. Tokens is needed; the rest have defaults.
type Options struct {
	// Tokens are the API tokens one may log in with (TIYN_API_TOKENS).
	Tokens []rest.Token
	// Zone is the business time zone every time is shown in (the
	// ledger's BusinessZone when nil: the zone its business days are in).
	Zone *time.Location
	// FourEyes says that an operator's credit is a proposal another
	// operator approves (TIYN_FOUR_EYES); the ledger enforces it, the
	// console words its buttons after it.
	FourEyes bool
	// Currencies are the currencies accounts are kept in (KZT when empty),
	// the first the default of the account search.
	Currencies []domain.Currency
	// Logger receives logins, logouts and internal errors (slog.Default when nil).
	Logger *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// IdleTimeout, MaxAge and MaxSessions bound sessions (the Default…
	// constants when <= 0).
	IdleTimeout time.Duration
	MaxAge      time.Duration
	MaxSessions int
	// LedgerCheckTTL is how long the overview reuses one ledger check
	// (DefaultLedgerCheckTTL when <= 0): the check reads every row.
	LedgerCheckTTL time.Duration
	// Reconciliation is what an uploaded report is reconciled with: the
	// same settings as the REST API's POST /v1/reconciliations (its
	// Template, the CSV source, the body and time bounds). Without a CSV
	// source the console offers no upload; runs and days are shown either
	// way.
	Reconciliation rest.Reconciliation
}

// Console serves the operator console. Build one with New and mount it
// with Register (or serve it at Prefix yourself).
type Console struct {
	ledger     ports.Ledger
	auth       *rest.Authenticator
	sessions   *sessionStore
	pages      map[Lang]map[string]*template.Template
	catalogs   map[Lang]catalog
	zone       *time.Location
	fourEyes   bool
	currencies []domain.Currency
	log        *slog.Logger
	now        func() time.Time
	mux        *http.ServeMux
	health     *healthCache
	exports    chan struct{}
	recon      rest.Reconciliation
	uploads    chan struct{}
}

// New builds the console over ledger. It fails only when its embedded
// templates or catalogs are broken (a programmer error caught by tests).
func New(ledger ports.Ledger, opts Options) (*Console, error) {
	if ledger == nil {
		return nil, errors.New("console: nil ledger")
	}
	c := &Console{
		ledger:     ledger,
		auth:       rest.NewAuthenticator(opts.Tokens),
		zone:       opts.Zone,
		fourEyes:   opts.FourEyes,
		currencies: opts.Currencies,
		log:        cmp.Or(opts.Logger, slog.Default()),
		now:        opts.Now,
		exports:    make(chan struct{}, maxConcurrentExports),
		recon:      opts.Reconciliation,
		uploads:    make(chan struct{}, maxConcurrentUploads),
	}
	if c.recon.MaxCSVBytes <= 0 {
		c.recon.MaxCSVBytes = rest.DefaultMaxReconcileCSVBytes
	}
	if c.recon.Timeout <= 0 {
		c.recon.Timeout = rest.DefaultReconcileTimeout
	}
	if c.zone == nil {
		c.zone = ledger.BusinessZone() // the ledger's business days
	}
	if c.zone == nil {
		zone, err := domain.LoadBusinessZone("")
		if err != nil {
			return nil, err
		}
		c.zone = zone
	}
	if len(c.currencies) == 0 {
		c.currencies = []domain.Currency{domain.KZT}
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.sessions = newSessionStore(cmp.Or(max(opts.IdleTimeout, 0), DefaultIdleTimeout),
		cmp.Or(max(opts.MaxAge, 0), DefaultMaxAge), cmp.Or(max(opts.MaxSessions, 0), DefaultMaxSessions), c.now)
	c.health = &healthCache{ttl: cmp.Or(max(opts.LedgerCheckTTL, 0), DefaultLedgerCheckTTL)}
	var err error
	if c.catalogs, err = loadCatalogs(); err != nil {
		return nil, err
	}
	if c.pages, err = parsePages(c.catalogs, c.zone); err != nil {
		return nil, err
	}
	c.routes()
	return c, nil
}

// Register mounts the console on mux at Prefix.
func (c *Console) Register(mux *http.ServeMux) {
	mux.Handle(Prefix, c)
	mux.Handle(Prefix+"/", c)
}

// ServeHTTP serves every console path with the security headers.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	c.mux.ServeHTTP(w, r)
}

// routes registers every console page and action.
func (c *Console) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET "+Prefix, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
	})
	m.HandleFunc("GET "+Prefix+"/static/{file}", c.static)
	m.HandleFunc("GET "+Prefix+"/login", c.loginPage)
	m.HandleFunc("POST "+Prefix+"/login", c.login)
	m.HandleFunc("GET "+Prefix+"/lang", c.switchLang)
	m.Handle("POST "+Prefix+"/logout", c.action(rest.RoleRead, c.logout))

	m.Handle("GET "+Prefix+"/{$}", c.page(c.overview))
	m.Handle("GET "+Prefix+"/accounts", c.page(c.accounts))
	m.Handle("GET "+Prefix+"/accounts/{id}", c.page(c.account))
	m.Handle("GET "+Prefix+"/accounts/{id}/statement.csv", c.page(c.statementCSV))
	m.Handle("GET "+Prefix+"/accounts/{id}/status", c.page(c.confirmStatus))
	m.Handle("POST "+Prefix+"/accounts/{id}/status", c.action(rest.RoleOperator, c.changeStatus))
	m.Handle("GET "+Prefix+"/deposits", c.page(c.deposits))
	m.Handle("GET "+Prefix+"/deposits/{payment_id}", c.page(c.deposit))
	m.Handle("GET "+Prefix+"/exceptions", c.page(c.exceptions))
	m.Handle("GET "+Prefix+"/exceptions/{id}", c.page(c.exception))
	m.Handle("POST "+Prefix+"/exceptions/{id}/resolve", c.action(rest.RoleOperator, c.resolve))
	m.Handle("POST "+Prefix+"/exceptions/{id}/approve", c.action(rest.RoleOperator, c.approve))
	m.Handle("POST "+Prefix+"/exceptions/{id}/reject", c.action(rest.RoleOperator, c.reject))
	m.Handle("GET "+Prefix+"/reconciliations", c.page(c.reconciliations))
	m.HandleFunc("POST "+Prefix+"/reconciliations", c.upload)
	m.Handle("GET "+Prefix+"/reconciliations/{id}", c.page(c.reconciliation))
	m.Handle("GET "+Prefix+"/days/{date}", c.page(c.day))
	m.Handle("POST "+Prefix+"/days/{date}/close", c.action(rest.RoleOperator, c.closeDay))
	m.Handle("GET "+Prefix+"/", c.page(func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
		return errPageNotFound
	}))
	c.mux = m
}

// reqCtx is what a page or an action knows of its request.
type reqCtx struct {
	sess *session
	lang Lang
	loc  localizer
}

// canAct reports whether the session may change anything.
func (rc *reqCtx) canAct() bool {
	return rc.sess != nil && rc.sess.token.Role.Allows(rest.RoleOperator)
}

// handler is a page's or an action's body; an error is rendered as the
// error page (or, for an action, a flash on the page it returns to).
type handler func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error

func (c *Console) localizer(l Lang) localizer {
	return localizer{lang: l, msgs: c.catalogs[l], zone: c.zone}
}

func (c *Console) reqCtx(r *http.Request, sess *session) *reqCtx {
	l := negotiate(r)
	return &reqCtx{sess: sess, lang: l, loc: c.localizer(l)}
}

// page wraps a GET page: a session is needed (else to the login page,
// with the path to come back to).
func (c *Console) page(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess := c.session(r)
		if sess == nil {
			target := Prefix + "/login"
			if next := r.URL.RequestURI(); localPath(next) && r.URL.Path != Prefix+"/" {
				target += "?next=" + url.QueryEscape(next)
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		rest.SetActor(r.Context(), sess.token.Name)
		rc := c.reqCtx(r, sess)
		if err := h(w, r, rc); err != nil {
			c.renderError(w, r, rc, err)
		}
	})
}

// action wraps a POST: a live session, a same-origin request, the
// session's CSRF token and a role at least need; then the body runs and
// redirects (post/redirect/get).
func (c *Console) action(need rest.Role, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		sess, rc := c.postSession(w, r)
		if sess == nil {
			return
		}
		if err := r.ParseForm(); err != nil {
			c.renderStatus(w, r, rc, http.StatusBadRequest, "err.bad_form")
			return
		}
		if !c.postAllowed(w, r, rc, need, r.PostForm.Get("csrf")) {
			return
		}
		if err := h(w, r, rc); err != nil {
			c.renderError(w, r, rc, err)
		}
	})
}

// postSession is a POST's first check, before its body is read: a live
// session (whose token becomes the request's actor) and a same-origin
// request. Otherwise it answers 403 and returns a nil session.
func (c *Console) postSession(w http.ResponseWriter, r *http.Request) (*session, *reqCtx) {
	sess := c.session(r)
	rc := c.reqCtx(r, sess)
	if sess == nil {
		c.renderStatus(w, r, rc, http.StatusForbidden, "err.session_expired")
		return nil, rc
	}
	rest.SetActor(r.Context(), sess.token.Name)
	if !sameOrigin(r) {
		c.renderStatus(w, r, rc, http.StatusForbidden, "err.cross_origin")
		return nil, rc
	}
	return sess, rc
}

// postAllowed is a POST's last check before it acts, once its fields are
// read: the session's CSRF token (csrf, the form's) and a role at least
// need. Otherwise it answers 403 and returns false.
func (c *Console) postAllowed(w http.ResponseWriter, r *http.Request, rc *reqCtx, need rest.Role, csrf string) bool {
	if !validCSRF(rc.sess, csrf) {
		c.log.WarnContext(r.Context(), "console: form refused without its CSRF token",
			"path", r.URL.Path, "actor", rc.sess.token.Name)
		c.renderStatus(w, r, rc, http.StatusForbidden, "err.csrf")
		return false
	}
	if !rc.sess.token.Role.Allows(need) {
		c.renderStatus(w, r, rc, http.StatusForbidden, "err.role")
		return false
	}
	return true
}

// session returns the request's live session, or nil.
func (c *Console) session(r *http.Request) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	return c.sessions.get(ck.Value)
}

// view is what every page's template receives.
type view struct {
	Lang     Lang
	Title    string // the page title, already translated
	Nav      string // the menu entry of the page
	User     string
	Role     string
	CanAct   bool
	FourEyes bool
	CSRF     string
	Flash    *flashView
	// LangLinks switch the language and come back to this page.
	LangLinks []langLink
	Zone      string
	Data      any
}

type flashView struct {
	Text   string
	Err    bool
	Detail string // the ledger's own sentence, when it refused
}

type langLink struct {
	Lang    Lang
	Label   string
	Href    string
	Current bool
}

// render executes a page's template into a buffer and writes it, so that
// a template error is a clean 500 rather than half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, name, title, nav string, data any) {
	v := view{Lang: rc.lang, Title: title, Nav: nav, FourEyes: c.fourEyes, Zone: rc.loc.Zone(c.now()), Data: data}
	if rc.sess != nil {
		v.User, v.Role, v.CanAct, v.CSRF = rc.sess.token.Name, string(rc.sess.token.Role), rc.canAct(), rc.sess.csrf
		if f := c.sessions.takeFlash(rc.sess); f != nil {
			v.Flash = &flashView{Text: rc.loc.T(f.key, f.args...), Err: f.err, Detail: f.detail}
		}
	}
	back := r.URL.RequestURI()
	if r.Method != http.MethodGet || !localPath(back) {
		back = Prefix + "/"
	}
	for _, l := range Langs() {
		v.LangLinks = append(v.LangLinks, langLink{Lang: l, Label: c.localizer(l).T("lang.name"),
			Href: Prefix + "/lang?to=" + string(l) + "&back=" + url.QueryEscape(back), Current: l == rc.lang})
	}
	t := c.pages[rc.lang][name]
	if t == nil {
		c.log.ErrorContext(r.Context(), "console: no template", "name", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		c.log.ErrorContext(r.Context(), "console: template failed", "name", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", string(rc.lang))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// errorData is the error page's content.
type errorData struct {
	Status  int
	Message string
	Detail  string
	Back    string
}

// renderStatus renders the error page with a message key.
func (c *Console) renderStatus(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, key string, args ...any) {
	c.render(w, r, rc, status, "error", rc.loc.T("error.title"), "", errorData{Status: status, Message: rc.loc.T(key, args...), Back: Prefix + "/"})
}

// renderError renders what a handler returned: a known error as its
// message and status, anything else as a 500 that is logged.
func (c *Console) renderError(w http.ResponseWriter, r *http.Request, rc *reqCtx, err error) {
	status, key, args, detail := c.classify(rc, err)
	if status >= 500 {
		c.log.ErrorContext(r.Context(), "console: request failed", "path", r.URL.Path, "err", err)
	}
	c.render(w, r, rc, status, "error", rc.loc.T("error.title"), "", errorData{Status: status, Message: rc.loc.T(key, args...), Detail: detail, Back: Prefix + "/"})
}

// Errors the pages raise themselves.
var (
	errPageNotFound = errors.New("no such page")
	errBadQuery     = errors.New("bad query")
)

// queryError is a query parameter the page cannot use.
type queryError struct{ param string }

func (e *queryError) Error() string { return "bad query parameter " + e.param }
func (e *queryError) Unwrap() error { return errBadQuery }

// classify maps an error to a status, a message key and its arguments, and
// (for the ledger's own refusals) the ledger's sentence as a detail.
func (c *Console) classify(rc *reqCtx, err error) (status int, key string, args []any, detail string) {
	var (
		bound *domain.CreditBoundError
		qe    *queryError
	)
	switch {
	case errors.Is(err, errPageNotFound):
		return http.StatusNotFound, "err.page_not_found", nil, ""
	case errors.As(err, &qe):
		return http.StatusBadRequest, "err.bad_query", []any{qe.param}, ""
	case errors.Is(err, ports.ErrNotFound):
		return http.StatusNotFound, "err.not_found", nil, ""
	case errors.As(err, &bound):
		if bound.Credit.IsPositive() && bound.Credit.Minor() > bound.Evidence.Minor() && bound.Evidence.IsPositive() {
			return http.StatusUnprocessableEntity, "err.exceeds_evidence", []any{rc.loc.Money(bound.Evidence)}, err.Error()
		}
		return http.StatusUnprocessableEntity, "err.no_evidence", nil, err.Error()
	case errors.Is(err, domain.ErrAlreadyCredited):
		return http.StatusConflict, "err.already_credited", nil, err.Error()
	case errors.Is(err, domain.ErrSelfApproval):
		return http.StatusForbidden, "err.self_approval", nil, err.Error()
	case errors.Is(err, domain.ErrInvalidTransition):
		return http.StatusConflict, "err.invalid_transition", nil, err.Error()
	case errors.Is(err, domain.ErrAccountHasBalance):
		return http.StatusConflict, "err.account_has_balance", nil, err.Error()
	case errors.Is(err, domain.ErrAccountClosed):
		return http.StatusConflict, "err.account_closed", nil, err.Error()
	case errors.Is(err, domain.ErrAccountBlocked):
		return http.StatusConflict, "err.account_blocked", nil, err.Error()
	case errors.Is(err, domain.ErrBalanceCeiling):
		return http.StatusUnprocessableEntity, "err.balance_ceiling", nil, err.Error()
	case errors.Is(err, domain.ErrCurrencyMismatch):
		return http.StatusUnprocessableEntity, "err.currency_mismatch", nil, err.Error()
	case errors.Is(err, domain.ErrInvalidAmount), errors.Is(err, domain.ErrAmountOutOfLimits):
		return http.StatusUnprocessableEntity, "err.invalid_amount", nil, err.Error()
	case errors.Is(err, domain.ErrInvalidInput):
		return http.StatusBadRequest, "err.invalid_input", nil, err.Error()
	case errors.Is(err, ports.ErrAmbiguous):
		return http.StatusConflict, "err.ambiguous", nil, err.Error()
	case errors.Is(err, ports.ErrUnavailable):
		return http.StatusServiceUnavailable, "err.unavailable", nil, ""
	case errors.Is(err, ports.ErrConflict):
		return http.StatusConflict, "err.conflict", nil, ""
	case errors.Is(err, errExportsBusy):
		return http.StatusServiceUnavailable, "err.exports_busy", nil, ""
	case errors.Is(err, ports.ErrRunInProgress):
		return http.StatusConflict, "err.run_in_progress", nil, ""
	case errors.Is(err, ports.ErrDayClosed):
		return http.StatusConflict, "err.day_closed", nil, err.Error()
	case errors.Is(err, ports.ErrDayNotEnded):
		return http.StatusConflict, "err.day_not_ended", nil, err.Error()
	case errors.Is(err, ports.ErrOpenBreaks):
		return http.StatusConflict, "err.open_breaks", nil, err.Error()
	case errors.Is(err, errSourceFailed):
		return http.StatusBadRequest, "err.source_failed", nil, err.Error()
	case errors.Is(err, errUploadTooLarge):
		return http.StatusRequestEntityTooLarge, "err.too_large", nil, ""
	}
	return http.StatusInternalServerError, "err.internal", nil, ""
}

// pageLimit reads ?limit= (DefaultPageSize when absent).
func pageLimit(q url.Values) (int, error) {
	s := q.Get("limit")
	if s == "" {
		return DefaultPageSize, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxPageSize {
		return 0, &queryError{"limit"}
	}
	return n, nil
}

// maxQueryText bounds a free-text query parameter (a customer id, a
// cursor): longer is refused, not truncated.
const maxQueryText = 256

func queryText(q url.Values, name string) (string, error) {
	s := strings.TrimSpace(q.Get(name))
	if len(s) > maxQueryText {
		return "", &queryError{name}
	}
	return s, nil
}

// withQuery returns path with q encoded (sorted; empty values dropped).
func withQuery(path string, q url.Values) string {
	clean := url.Values{}
	for k, vs := range q {
		for _, v := range vs {
			if v != "" {
				clean.Add(k, v)
			}
		}
	}
	if len(clean) == 0 {
		return path
	}
	return path + "?" + clean.Encode()
}

// pathOf builds a console path from escaped segments.
func pathOf(segments ...string) string {
	var b strings.Builder
	b.WriteString(Prefix)
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// redirectFlash ends an action: the message for the next page, and a 303
// to it.
func (c *Console) redirectFlash(w http.ResponseWriter, r *http.Request, rc *reqCtx, to string, f flash) error {
	c.sessions.setFlash(rc.sess, f)
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

// actionError turns a ledger refusal of an action into a flash on the page
// the action came from; an unexpected error is the error page.
func (c *Console) actionError(w http.ResponseWriter, r *http.Request, rc *reqCtx, back string, err error) error {
	status, key, args, detail := c.classify(rc, err)
	if status >= 500 {
		return err
	}
	return c.redirectFlash(w, r, rc, back, flash{key: key, args: args, err: true, detail: detail})
}
