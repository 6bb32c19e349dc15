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
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
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
	// Reconciliation configures POST /v1/reconciliations: where a day's
	// operations come from. Without it, reconciling is refused (the read
	// routes of runs and days work either way).
	Reconciliation Reconciliation
}

// Reconciliation configures POST /v1/reconciliations (reconcile.go).
type Reconciliation struct {
	// Template is the reconciliation asked for: its Provider, Method,
	// Projects and Limits are used as they are; Day, Source and StartedBy
	// are set per request.
	Template ports.ReconcileDay
	// CSV builds the source that reads a text/csv body, with the columns
	// and amount_units query parameters as given ("" when absent). An
	// error is the client's (a bad mapping): 400. Nil refuses CSV bodies.
	CSV func(body io.Reader, columns, amountUnits string) (ports.OperationSource, error)
	// DataAPI is the source of a POST without a body; nil when the Data
	// API is not configured (422 data_api_not_configured).
	DataAPI ports.OperationSource
	// MaxCSVBytes bounds a text/csv body (DefaultMaxReconcileCSVBytes when
	// <= 0).
	MaxCSVBytes int64
	// Timeout bounds one run, reading the body included
	// (DefaultReconcileTimeout when <= 0).
	Timeout time.Duration
}

// Route describes one registered route: what the OpenAPI test compares
// with the document, and what tooling may list.
type Route struct {
	Method string // GET or POST (GET routes also answer HEAD, as net/http does)
	Path   string // a Go 1.22 ServeMux path pattern, e.g. /v1/accounts/{id}
	Role   Role   // the least role a token needs
}

// bodyKind is what a POST route reads.
type bodyKind uint8

const (
	bodyJSON bodyKind = iota // application/json (or none), Options.MaxBodyBytes
	bodyCSV                  // text/csv (or none), Reconciliation.MaxCSVBytes
)

// handlerFunc is a route's handler: it writes a success response or
// returns an error that api.fail turns into the one JSON error shape.
type handlerFunc func(a *api, w http.ResponseWriter, r *http.Request) error

type route struct {
	Route
	handle handlerFunc
	body   bodyKind
}

// routeTable is every route this package serves, in one place.
var routeTable = []route{
	{Route{http.MethodPost, "/v1/accounts", RoleWrite}, (*api).openAccount, bodyJSON},
	{Route{http.MethodGet, "/v1/accounts", RoleRead}, (*api).listAccounts, bodyJSON},
	{Route{http.MethodGet, "/v1/accounts/{id}", RoleRead}, (*api).getAccount, bodyJSON},
	{Route{http.MethodPost, "/v1/accounts/{id}/block", RoleOperator}, (*api).blockAccount, bodyJSON},
	{Route{http.MethodPost, "/v1/accounts/{id}/unblock", RoleOperator}, (*api).unblockAccount, bodyJSON},
	{Route{http.MethodPost, "/v1/accounts/{id}/close", RoleOperator}, (*api).closeAccount, bodyJSON},
	{Route{http.MethodGet, "/v1/accounts/{id}/balance", RoleRead}, (*api).balance, bodyJSON},
	{Route{http.MethodGet, "/v1/accounts/{id}/statement", RoleRead}, (*api).statement, bodyJSON},
	{Route{http.MethodGet, "/v1/accounts/{id}/statement.csv", RoleRead}, (*api).statementCSV, bodyJSON},
	{Route{http.MethodPost, "/v1/accounts/{id}/debits", RoleWrite}, (*api).debit, bodyJSON},
	{Route{http.MethodGet, "/v1/deposits", RoleRead}, (*api).listDeposits, bodyJSON},
	{Route{http.MethodGet, "/v1/deposits.csv", RoleRead}, (*api).depositsCSV, bodyJSON},
	{Route{http.MethodGet, "/v1/deposits/{payment_id}", RoleRead}, (*api).getDeposit, bodyJSON},
	{Route{http.MethodGet, "/v1/exceptions", RoleRead}, (*api).listExceptions, bodyJSON},
	{Route{http.MethodGet, "/v1/exceptions/{id}", RoleRead}, (*api).getException, bodyJSON},
	{Route{http.MethodPost, "/v1/exceptions/{id}/resolve", RoleOperator}, (*api).resolveException, bodyJSON},
	{Route{http.MethodPost, "/v1/exceptions/{id}/approve", RoleOperator}, (*api).approveException, bodyJSON},
	{Route{http.MethodPost, "/v1/exceptions/{id}/reject", RoleOperator}, (*api).rejectException, bodyJSON},
	{Route{http.MethodGet, "/v1/callbacks", RoleRead}, (*api).listCallbacks, bodyJSON},
	{Route{http.MethodGet, "/v1/ledger/check", RoleRead}, (*api).boundedCheckLedger, bodyJSON},
	{Route{http.MethodPost, "/v1/reconciliations", RoleOperator}, (*api).reconcile, bodyCSV},
	{Route{http.MethodGet, "/v1/reconciliations", RoleRead}, (*api).listReconRuns, bodyJSON},
	{Route{http.MethodGet, "/v1/reconciliations/{id}", RoleRead}, (*api).getReconRun, bodyJSON},
	{Route{http.MethodGet, "/v1/reconciliations/{id}/items", RoleRead}, (*api).listReconItems, bodyJSON},
	{Route{http.MethodGet, "/v1/reconciliations/{id}/items.csv", RoleRead}, (*api).reconItemsCSV, bodyJSON},
	{Route{http.MethodPost, "/v1/days/{date}/close", RoleOperator}, (*api).closeDay, bodyJSON},
	{Route{http.MethodGet, "/v1/days/{date}", RoleRead}, (*api).getDay, bodyJSON},
	{Route{http.MethodGet, "/v1/days/{date}.csv", RoleRead}, (*api).dayCSV, bodyJSON},
	{Route{http.MethodGet, "/v1/openapi.json", RoleRead}, (*api).openAPI, bodyJSON},
}

// muxPattern is the ServeMux pattern of a route path. A wildcard must be a
// whole segment, so "/v1/days/{date}.csv" is served by the pattern of
// "/v1/days/{date}" (dispatched on the suffix; see register); it returns
// the pattern's path and the suffix ("" for most routes).
func muxPattern(path string) (string, string) {
	if i := strings.LastIndex(path, "}."); i >= 0 && !strings.Contains(path[i:], "/") {
		return path[:i+1], path[i+1:]
	}
	return path, ""
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
	// recon configures reconciling; recons bounds the runs at once.
	recon  Reconciliation
	recons *limiter
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
	a.recon = opts.Reconciliation
	a.recon.MaxCSVBytes = cmp.Or(max(a.recon.MaxCSVBytes, 0), DefaultMaxReconcileCSVBytes)
	a.recon.Timeout = cmp.Or(max(a.recon.Timeout, 0), DefaultReconcileTimeout)
	a.recons = newLimiter("reconciliations", DefaultMaxConcurrentReconciliations)
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	// Routes that share a mux pattern (a wildcard with a suffix) are one
	// handler that picks by the last segment's suffix, the longest first.
	type variant struct {
		suffix string
		h      http.Handler
	}
	shared := map[string][]variant{}
	var order []string
	for _, rt := range routeTable {
		path, suffix := muxPattern(rt.Path)
		pattern := rt.Method + " " + path
		if _, seen := shared[pattern]; !seen {
			order = append(order, pattern)
		}
		shared[pattern] = append(shared[pattern], variant{suffix, a.wrap(rt)})
	}
	for _, pattern := range order {
		vs := shared[pattern]
		slices.SortFunc(vs, func(x, y variant) int { return len(y.suffix) - len(x.suffix) })
		if len(vs) == 1 && vs[0].suffix == "" {
			mux.Handle(pattern, vs[0].h)
		} else {
			mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for _, v := range vs {
					if strings.HasSuffix(r.URL.Path, v.suffix) {
						v.h.ServeHTTP(w, r)
						return
					}
				}
				a.writeError(w, r, errRouteNotFound(r.URL.Path))
			}))
		}
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
			limit, check := a.maxBody, a.checkBody
			if rt.body == bodyCSV {
				limit, check = a.recon.MaxCSVBytes, a.checkCSVBody
			}
			if err := check(r); err != nil {
				a.writeError(w, r, err)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, limit)
		}
		if err := rt.handle(a, w, r); err != nil {
			a.writeError(w, r, err)
		}
	})
}
