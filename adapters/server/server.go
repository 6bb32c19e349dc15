// Package server is Tiyn's serving layer: everything an operator expects of
// a well-run HTTP service, independent of the routes mounted on it. It
// gives a ServeMux with /healthz, /readyz, /metrics (and /debug/pprof when
// asked), wraps it with request ids, panic recovery, one structured log line
// and Prometheus metrics per request, and runs it with timeouts and a
// graceful shutdown.
//
// The package knows nothing of the ledger: the REST and Monetix adapters
// register their routes on Mux(), and the composition root passes in what
// readiness and the gauges need as small functions.
package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tiyn/tiyn/adapters/cleanpath"
)

// ReadyTimeout bounds one readiness check: a load balancer probing /readyz
// wants a quick answer, and a store that cannot answer a ping in 2s is not
// ready to take payments either.
const ReadyTimeout = 2 * time.Second

// Pinger is what readiness needs: ports.Store satisfies it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Options configures a Server. Every field is optional.
type Options struct {
	// Logger receives the access log and server errors (slog.Default when nil).
	Logger *slog.Logger
	// Registry receives the HTTP, Go, process and database metrics and is
	// served on /metrics (a new registry when nil; see Server.Registry).
	Registry *prometheus.Registry
	// Ready is pinged by /readyz (always ready when nil).
	Ready Pinger
	// DBStats, when set, exports the connection pool as gauges at scrape
	// time (sql.DB.Stats, or the store's own DBStats).
	DBStats func() sql.DBStats
	// Pprof serves /debug/pprof/*: useful, but it exposes internals and
	// costs CPU when used, so it is off unless the operator turns it on.
	Pprof bool
	// ExceptionsOpen, when set, is called at scrape time for the
	// tiyn_exceptions_open gauge: the operator's work queue.
	ExceptionsOpen func(ctx context.Context) (int, error)
	// PrepareContext, when set, derives each request's context before
	// routing. A context value set deeper in the chain is invisible to the
	// access log (handlers derive contexts of their own), so a handler that
	// wants to report something installs a slot here and fills it later
	// (rest.ContextWithActorSlot).
	PrepareContext func(ctx context.Context) context.Context
	// Actor, when set, names the caller in the access log line; it is
	// called with the prepared request context after the handler returned
	// (rest.ActorFrom).
	Actor func(ctx context.Context) string
}

// Server is a ServeMux wrapped with the operational middleware. Build one
// with New, register routes on Mux, then ListenAndServe (or mount Handler in
// a server of your own).
type Server struct {
	mux      *http.ServeMux
	handler  http.Handler
	logger   *slog.Logger
	registry *prometheus.Registry
	ready    Pinger
	actor    func(ctx context.Context) string
	prepare  func(ctx context.Context) context.Context
	metrics  *httpMetrics

	draining atomic.Bool

	addrMu    sync.Mutex
	addr      string
	listening chan struct{}
}

// New builds a Server: the built-in endpoints are registered and the
// middleware is in place. It panics when a metric cannot be registered on
// opts.Registry (a name clash is a programmer error in the composition root).
func New(opts Options) *Server {
	s := &Server{
		mux:       http.NewServeMux(),
		logger:    opts.Logger,
		registry:  opts.Registry,
		ready:     opts.Ready,
		actor:     opts.Actor,
		prepare:   opts.PrepareContext,
		listening: make(chan struct{}),
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	s.metrics = newHTTPMetrics()
	mustRegister(s.registry, s.metrics.requests, s.metrics.duration)
	registerRuntimeCollectors(s.registry)
	if opts.DBStats != nil {
		mustRegister(s.registry, newDBStatsCollector(opts.DBStats))
	}
	if opts.ExceptionsOpen != nil {
		mustRegister(s.registry, newExceptionsCollector(opts.ExceptionsOpen, s.logger))
	}

	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		Registry:            s.registry, // counts its own scrape errors
		ErrorLog:            slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: MaxMetricsScrapesInFlight,
		Timeout:             MetricsScrapeTimeout,
	}))
	if opts.Pprof {
		s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		s.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		s.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		s.mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
		s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	// cleanpath.Guard: ServeMux would answer /v1//accounts and the like with
	// an HTML 307 before any handler runs; they get a JSON 404 instead.
	s.handler = s.withRequestID(s.withAccessLog(s.withRecover(cleanpath.Guard(s.mux, nil))))
	return s
}

// MaxMetricsScrapesInFlight bounds concurrent /metrics scrapes, so a
// misconfigured scraper cannot pile up expensive collections (the open
// exceptions gauge reads the store).
const MaxMetricsScrapesInFlight = 4

// MetricsScrapeTimeout bounds one /metrics scrape.
const MetricsScrapeTimeout = 10 * time.Second

// Mux is where routes are registered. Use Go 1.22 patterns with a method
// ("POST /v1/accounts"): the pattern becomes the route label of the metrics.
func (s *Server) Mux() *http.ServeMux { return s.mux }

// Handler is the mux wrapped with request ids, panic recovery, the access
// log and metrics: what to serve, or to mount in a server of your own.
func (s *Server) Handler() http.Handler { return s.handler }

// Registry is the Prometheus registry /metrics serves (the one passed in
// Options, or the one New made), so other adapters can register on it.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Logger is the logger the server writes to.
func (s *Server) Logger() *slog.Logger { return s.logger }

type statusBody struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// healthz says the process is up and serving: no dependency is checked, so
// an orchestrator does not restart a healthy process because the database
// is briefly away (that is what readiness is for).
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, statusBody{Status: "ok"})
}

// readyz says whether this instance should get traffic: the store answers a
// ping within ReadyTimeout and the server is not shutting down.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, statusBody{Status: "unavailable", Error: "shutting down"})
		return
	}
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
		defer cancel()
		if err := s.ready.Ping(ctx); err != nil {
			s.logger.LogAttrs(r.Context(), slog.LevelWarn, "not ready", slog.String("error", err.Error()),
				slog.String("request_id", RequestID(r.Context())))
			writeJSON(w, http.StatusServiceUnavailable, statusBody{Status: "unavailable", Error: err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, statusBody{Status: "ok"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}
