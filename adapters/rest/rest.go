// Package rest is the merchant's REST API: the back office reads accounts,
// balances, statements, deposits, exceptions and the callback inbox, and
// spends balances with idempotent debits. It drives ports.Ledger only; the
// HTTP concerns (bearer tokens, JSON bodies, error codes, cursors, CSV
// streaming) live here and nowhere else.
//
// Every route is in one table (routeTable) so that the handler, the
// OpenAPI document and its test cannot drift apart.
package rest

import (
	"cmp"
	"log/slog"
	"net/http"
	"time"

	"github.com/tiyn/tiyn/adapters/cleanpath"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// DefaultMaxBodyBytes bounds request bodies when Options.MaxBodyBytes is
// zero. The largest body the API takes is an exception resolution with a
// 1000-byte note; 64 KiB leaves ample room and keeps a hostile client from
// making the server buffer megabytes.
const DefaultMaxBodyBytes = 64 << 10

// Options configure the REST handler. Only Tokens is needed; the rest have
// sensible defaults.
type Options struct {
	// Tokens are the bearer tokens allowed in (see ParseTokens). With none,
	// every request is refused with 401.
	Tokens []Token
	// MaxBodyBytes bounds request bodies (DefaultMaxBodyBytes when <= 0).
	MaxBodyBytes int64
	// Logger receives internal errors with their request (slog.Default when nil).
	Logger *slog.Logger
	// Now is the clock for "as of now" answers (time.Now when nil), so tests
	// can pin it.
	Now func() time.Time
	// AccountCurrencies are the currencies accounts are kept in (default
	// KZT, the currency of the kassa24 method). Tiyn knows every ISO 4217
	// currency, so that a callback's evidence in any of them is exact, but
	// an account in a currency no payment method pays in would never
	// receive a payment.
	AccountCurrencies []domain.Currency
	// MaxConcurrentExports bounds the CSV exports running at once in this
	// handler (DefaultMaxConcurrentExports when <= 0); one more is answered
	// 503 unavailable with Retry-After.
	MaxConcurrentExports int
	// ExportTimeout bounds one CSV export (MaxCSVDuration when <= 0).
	ExportTimeout time.Duration
	// MaxConcurrentChecks bounds the GET /v1/ledger/check runs at once
	// (DefaultMaxConcurrentChecks when <= 0), answered like exports when full.
	MaxConcurrentChecks int
	// LedgerCheckTimeout bounds one ledger check (DefaultLedgerCheckTimeout
	// when <= 0).
	LedgerCheckTimeout time.Duration
}

// Route describes one registered route: what the OpenAPI test compares
// with the document, and what tooling may list.
type Route struct {
	Method string // GET or POST (GET routes also answer HEAD, as net/http does)
	Path   string // a Go 1.22 ServeMux path pattern, e.g. /v1/accounts/{id}
	Role   Role   // the least role a token needs
}

// handlerFunc is a route's handler: it writes a success response or
// returns an error that api.fail turns into the one JSON error shape.
type handlerFunc func(a *api, w http.ResponseWriter, r *http.Request) error

type route struct {
	Route
	handle handlerFunc
}

// routeTable is every route this package serves, in one place.
var routeTable = []route{
	{Route{http.MethodPost, "/v1/accounts", RoleWrite}, (*api).openAccount},
	{Route{http.MethodGet, "/v1/accounts", RoleRead}, (*api).listAccounts},
	{Route{http.MethodGet, "/v1/accounts/{id}", RoleRead}, (*api).getAccount},
	{Route{http.MethodPost, "/v1/accounts/{id}/block", RoleOperator}, (*api).blockAccount},
	{Route{http.MethodPost, "/v1/accounts/{id}/unblock", RoleOperator}, (*api).unblockAccount},
	{Route{http.MethodPost, "/v1/accounts/{id}/close", RoleOperator}, (*api).closeAccount},
	{Route{http.MethodGet, "/v1/accounts/{id}/balance", RoleRead}, (*api).balance},
	{Route{http.MethodGet, "/v1/accounts/{id}/statement", RoleRead}, (*api).statement},
	{Route{http.MethodGet, "/v1/accounts/{id}/statement.csv", RoleRead}, (*api).statementCSV},
	{Route{http.MethodPost, "/v1/accounts/{id}/debits", RoleWrite}, (*api).debit},
	{Route{http.MethodGet, "/v1/deposits", RoleRead}, (*api).listDeposits},
	{Route{http.MethodGet, "/v1/deposits.csv", RoleRead}, (*api).depositsCSV},
	{Route{http.MethodGet, "/v1/deposits/{payment_id}", RoleRead}, (*api).getDeposit},
	{Route{http.MethodGet, "/v1/exceptions", RoleRead}, (*api).listExceptions},
	{Route{http.MethodGet, "/v1/exceptions/{id}", RoleRead}, (*api).getException},
	{Route{http.MethodPost, "/v1/exceptions/{id}/resolve", RoleOperator}, (*api).resolveException},
	{Route{http.MethodPost, "/v1/exceptions/{id}/approve", RoleOperator}, (*api).approveException},
	{Route{http.MethodPost, "/v1/exceptions/{id}/reject", RoleOperator}, (*api).rejectException},
	{Route{http.MethodGet, "/v1/callbacks", RoleRead}, (*api).listCallbacks},
	{Route{http.MethodGet, "/v1/ledger/check", RoleRead}, (*api).boundedCheckLedger},
	{Route{http.MethodGet, "/v1/openapi.json", RoleRead}, (*api).openAPI},
}

// fallbackPattern catches every other path under /v1 so that unknown routes
// and wrong methods answer the same JSON error shape as everything else.
const fallbackPattern = "/v1/"

// Routes returns the routes New and Register serve (a copy), so the OpenAPI
// document can be checked against them and tooling can list them.
func Routes() []Route {
	out := make([]Route, len(routeTable))
	for i, rt := range routeTable {
		out[i] = rt.Route
	}
	return out
}

// api holds what every handler needs.
type api struct {
	ledger     ports.Ledger
	currencies []domain.Currency
	auth       *authenticator
	maxBody    int64
	log        *slog.Logger
	now        func() time.Time
	// matcher has every route registered with a no-op handler; the fallback
	// asks it whether a path exists with another method (405) or not (404).
	matcher *http.ServeMux
	// exports and checks are semaphores bounding the expensive reads:
	// CSV exports and ledger checks (see limits.go).
	exports, checks             *limiter
	exportTimeout, checkTimeout time.Duration
}

// New returns a handler serving every /v1 REST route of this package (not
// /v1/monetix/*, /healthz and the like, which other adapters serve), plus
// JSON 404/405 answers for anything else under /v1, and a JSON 404 for an
// unclean path (/v1//accounts, /v1/accounts/../accounts), which ServeMux
// alone would redirect.
func New(ledger ports.Ledger, opts Options) http.Handler {
	mux := http.NewServeMux()
	a := register(mux, ledger, opts)
	return cleanpath.Guard(mux, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath()
		if p != cleanpath.Clean(p) {
			a.writeError(w, r, newHTTPError(http.StatusNotFound, CodeNotFound,
				"no route %s (a path must be clean: no //, /./ or /../ segments)", truncate(p, 200)))
			return
		}
		a.writeError(w, r, errRouteNotFound(p))
	}))
}

// Register mounts the same routes on an existing mux, for a program that
// embeds Tiyn next to its own handlers. It also registers the catch-all
// pattern "/v1/" (JSON 404/405); more specific patterns registered by
// others, such as POST /v1/monetix/callbacks, still take precedence. It
// panics if a pattern is already registered, as ServeMux does.
//
// ServeMux answers an unclean path with its own HTML 307 before any
// handler runs; serve the mux behind cleanpath.Guard (as adapters/server
// does) to answer those with a JSON 404 too.
func Register(mux *http.ServeMux, ledger ports.Ledger, opts Options) {
	register(mux, ledger, opts)
}

func register(mux *http.ServeMux, ledger ports.Ledger, opts Options) *api {
	if ledger == nil {
		panic("rest.Register: nil ledger")
	}
	a := &api{
		ledger:     ledger,
		currencies: opts.AccountCurrencies,
		auth:       newAuthenticator(opts.Tokens),
		maxBody:    opts.MaxBodyBytes,
		log:        opts.Logger,
		now:        opts.Now,
		matcher:    http.NewServeMux(),
	}
	if len(a.currencies) == 0 {
		a.currencies = []domain.Currency{domain.KZT}
	}
	if a.maxBody <= 0 {
		a.maxBody = DefaultMaxBodyBytes
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.exports = newLimiter("CSV exports", cmp.Or(max(opts.MaxConcurrentExports, 0), DefaultMaxConcurrentExports))
	a.checks = newLimiter("ledger checks", cmp.Or(max(opts.MaxConcurrentChecks, 0), DefaultMaxConcurrentChecks))
	a.exportTimeout = cmp.Or(max(opts.ExportTimeout, 0), MaxCSVDuration)
	a.checkTimeout = cmp.Or(max(opts.LedgerCheckTimeout, 0), DefaultLedgerCheckTimeout)
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, rt := range routeTable {
		pattern := rt.Method + " " + rt.Path
		mux.Handle(pattern, a.wrap(rt))
		a.matcher.Handle(pattern, noop)
	}
	mux.HandleFunc(fallbackPattern, a.fallback)
	return a
}

// fallback answers paths under /v1 that no route serves: 405 with an Allow
// header when the path exists for another method, 404 otherwise.
func (a *api) fallback(w http.ResponseWriter, r *http.Request) {
	h, pattern := a.matcher.Handler(r)
	if pattern == "" {
		// The matcher's own answer is 404 or 405 (with Allow); capture the
		// status and headers, drop its plain-text body.
		probe := &statusProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			if allow := probe.header.Get("Allow"); allow != "" {
				w.Header().Set("Allow", allow)
			}
			a.writeError(w, r, errMethodNotAllowed(r.Method))
			return
		}
	}
	a.writeError(w, r, errRouteNotFound(r.URL.Path))
}

// statusProbe is a ResponseWriter that only remembers the status and
// headers a handler chose.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header { return p.header }

func (p *statusProbe) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}

func (p *statusProbe) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}

// wrap turns a route's handler into an http.Handler: authenticate, check
// the role, bound and check the body, run, and map any error.
func (a *api) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		tok, err := a.auth.authenticate(r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		setActorSlot(r.Context(), tok.Name)
		r = r.WithContext(withActor(r.Context(), tok.Name))
		if !tok.Role.allows(rt.Role) {
			a.writeError(w, r, errForbidden(tok.Name, rt.Role))
			return
		}
		if r.Method == http.MethodPost {
			if err := a.checkBody(r); err != nil {
				a.writeError(w, r, err)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, a.maxBody)
		}
		if err := rt.handle(a, w, r); err != nil {
			a.writeError(w, r, err)
		}
	})
}
