// Package server is Tiyn's serving layer: everything an operator expects of
// a well-run HTTP service, independent of the routes mounted on it. It
// gives a ServeMux with /healthz, /readyz and /metrics, wraps it with
// request ids, panic recovery, one structured log line and Prometheus
// metrics per request, and runs it with timeouts, optional TLS and a
// graceful shutdown.
//
// What the public listener gives away without credentials is kept small:
// /readyz answers a reason code, never a store error; /metrics there holds
// only the process, Go runtime, HTTP and connection-pool metrics. The
// ledger's business figures (Options.Private) are served by MetricsHandler
// and profiling by PprofHandler, each meant for a listener of its own
// (ServeAux), never the public one.
//
// The package knows nothing of the ledger: the REST and Monetix adapters
// register their routes on Mux(), and the composition root passes in what
// readiness and the gauges need as small functions.
package server

import (
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tiyn/tiyn/adapters/cleanpath"
	"github.com/tiyn/tiyn/ports"
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
	// Registry receives the HTTP, Go, process and database-pool metrics and
	// is served on the handler's /metrics, which needs no credentials: put
	// nothing on it that an outsider should not read (no money, no queue).
	// A new registry when nil; see Server.Registry.
	Registry *prometheus.Registry
	// Private receives the ledger's business figures: the open exceptions
	// gauge here, and whatever the composition root adds (credited sums,
	// Monetix counters). It is served only by MetricsHandler, with Registry,
	// on a listener of its own. A new registry when nil; see Server.Private.
	Private *prometheus.Registry
	// Ready is pinged by /readyz (always ready when nil).
	Ready Pinger
	// DBStats, when set, exports the connection pool as gauges at scrape
	// time (sql.DB.Stats, or the store's own DBStats).
	DBStats func() sql.DBStats
	// ExceptionsOpen, when set, is called for the tiyn_exceptions_open gauge
	// (the operator's work queue, on Private): at most once per
	// ExceptionsCacheTTL whatever the scrape rate, so it should be one
	// bounded read.
	ExceptionsOpen func(ctx context.Context) (int, error)
	// TLS, when set, makes Serve speak HTTPS with it (Certificates set;
	// MinVersion is raised to TLS 1.2 at least).
	TLS *tls.Config
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
	private  *prometheus.Registry
	tls      *tls.Config
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
		private:   opts.Private,
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
	if s.private == nil {
		s.private = prometheus.NewRegistry()
	}
	if opts.TLS != nil {
		s.tls = opts.TLS.Clone()
		if s.tls.MinVersion < tls.VersionTLS12 {
			s.tls.MinVersion = tls.VersionTLS12
		}
	}
	s.metrics = newHTTPMetrics()
	mustRegister(s.registry, s.metrics.requests, s.metrics.duration)
	registerRuntimeCollectors(s.registry)
	if opts.DBStats != nil {
		mustRegister(s.registry, newDBStatsCollector(opts.DBStats))
	}
	if opts.ExceptionsOpen != nil {
		mustRegister(s.private, newExceptionsCollector(opts.ExceptionsOpen, s.logger))
	}

	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", s.metricsHandler(s.registry))
	// cleanpath.Guard: ServeMux would answer /v1//accounts and the like with
	// an HTML 307 before any handler runs; they get a JSON 404 instead.
	s.handler = s.withRequestID(s.withAccessLog(s.withRecover(cleanpath.Guard(s.mux, nil))))
	return s
}

// metricsHandler serves what g gathers, counting its own scrape errors on
// the public registry.
func (s *Server) metricsHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		Registry:            s.registry,
		ErrorLog:            slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: MaxMetricsScrapesInFlight,
		Timeout:             MetricsScrapeTimeout,
	})
}

// MetricsHandler serves GET /metrics with every metric: the public registry
// and the private one (the ledger's business figures). It has no
// authentication of its own: serve it only on a listener of its own
// (ServeAux) that only the monitoring system can reach — loopback, or a
// private interface — never on the public listener. Other paths are 404.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metricsHandler(prometheus.Gatherers{s.registry, s.private}))
	return s.withRecover(mux)
}

// MaxMetricsScrapesInFlight bounds concurrent /metrics scrapes, so a
// misconfigured scraper cannot pile up collections.
const MaxMetricsScrapesInFlight = 4

// MetricsScrapeTimeout bounds one /metrics scrape.
const MetricsScrapeTimeout = 10 * time.Second

// Mux is where routes are registered. Use Go 1.22 patterns with a method
// ("POST /v1/accounts"): the pattern becomes the route label of the metrics.
func (s *Server) Mux() *http.ServeMux { return s.mux }

// Handler is the mux wrapped with request ids, panic recovery, the access
// log and metrics: what to serve, or to mount in a server of your own.
func (s *Server) Handler() http.Handler { return s.handler }

// Registry is the Prometheus registry the public /metrics serves (the one
// passed in Options, or the one New made), so other adapters can register
// operational metrics on it.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Private is the registry of business figures, served only by
// MetricsHandler.
func (s *Server) Private() *prometheus.Registry { return s.private }

// Logger is the logger the server writes to.
func (s *Server) Logger() *slog.Logger { return s.logger }

type statusBody struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// Reasons /readyz answers with 503. They are all it says: the store's own
// error (its host, its driver's words) goes to the log, not to whoever asks.
const (
	ReadyShuttingDown     = "shutting_down"
	ReadyNotMigrated      = "not_migrated"
	ReadyStoreTimeout     = "store_timeout"
	ReadyStoreUnreachable = "store_unreachable"
)

// readyReason names why a ping failed.
func readyReason(err error) string {
	switch {
	case errors.Is(err, ports.ErrNotMigrated):
		return ReadyNotMigrated
	case errors.Is(err, context.DeadlineExceeded):
		return ReadyStoreTimeout
	}
	return ReadyStoreUnreachable
}

// healthz says the process is up and serving: no dependency is checked, so
// an orchestrator does not restart a healthy process because the database
// is briefly away (that is what readiness is for).
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, statusBody{Status: "ok"})
}

// readyz says whether this instance should get traffic: the store answers a
// ping within ReadyTimeout and the server is not shutting down. A 503
// carries a reason code only; the error itself is logged.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, statusBody{Status: "unavailable", Reason: ReadyShuttingDown})
		return
	}
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
		defer cancel()
		if err := s.ready.Ping(ctx); err != nil {
			reason := readyReason(err)
			s.logger.LogAttrs(r.Context(), slog.LevelWarn, "not ready", slog.String("reason", reason),
				slog.String("error", err.Error()), slog.String("request_id", RequestID(r.Context())))
			writeJSON(w, http.StatusServiceUnavailable, statusBody{Status: "unavailable", Reason: reason})
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
