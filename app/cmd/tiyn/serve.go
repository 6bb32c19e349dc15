package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tiyn/tiyn/adapters/console"
	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/adapters/server"
	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// DemoProjectID is the Monetix project id of the demo setup.
const DemoProjectID = "1234"

// demoSecretBytes is the randomness of the demo token and project secret:
// 16 bytes, 32 hex characters.
const demoSecretBytes = 16

func init() {
	registerCommand("serve", Command{Summary: "run the service (Monetix endpoints, REST API, health, metrics)", Run: runServe})
}

var serveSpec = cmdSpec{
	Name: "serve",
	Args: "[flags]",
	Description: `Serves the Monetix platform endpoints (POST /v1/monetix/requests, /v1/monetix/callbacks),
the merchant REST API under /v1, the operator console at /console (log in with an API token), and
/healthz, /readyz, /metrics (process, HTTP and pool metrics only) — over HTTPS with
TIYN_TLS_CERT_FILE and TIYN_TLS_KEY_FILE, else plain HTTP (off loopback, put a TLS proxy in
front). The ledger's business metrics are served on TIYN_METRICS_LISTEN only, profiles on the
loopback TIYN_PPROF_LISTEN only. Migrates the database at start. Stops gracefully on SIGTERM or
SIGINT.

With no API token and no Monetix project configured and a loopback listen address, it
makes up demo credentials and prints them (not for production).`,
	Groups: groupDB | groupLog | groupServe | groupMonetix | groupPoll | groupData | groupBooks,
}

func runServe(ctx context.Context, m *Main, args []string) error {
	fs := m.FlagSet("serve")
	cfg, pos, err := m.LoadConfig(fs, serveSpec, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("serve takes no arguments, got %q", pos)
	}
	demo, err := demoSetup(&cfg, rand.Reader)
	if err != nil {
		return err
	}
	tlsConfig, err := loadTLS(cfg)
	if err != nil {
		return err
	}
	logger := server.NewLogger(m.Stderr, cfg.LogLevel, cfg.LogFormat)
	logConfig(logger, cfg, demo != nil)

	// Listen before the slow parts, so a taken port fails fast.
	var listeners []net.Listener
	defer func() {
		for _, ln := range listeners {
			_ = ln.Close()
		}
	}()
	listen := func(env, addr string) (net.Listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", env, err)
		}
		listeners = append(listeners, ln)
		return ln, nil
	}
	ln, err := listen(envListen, cfg.Listen)
	if err != nil {
		return err
	}
	var metricsLn, pprofLn net.Listener
	if cfg.MetricsListen != "" {
		if metricsLn, err = listen(envMetricsListen, cfg.MetricsListen); err != nil {
			return err
		}
	}
	if cfg.PprofListen != "" {
		if pprofLn, err = listen(envPprofListen, cfg.PprofListen); err != nil {
			return err
		}
	}
	if w := plainHTTPWarning(ln.Addr().String(), tlsConfig != nil); w != "" {
		logger.Warn(w, slog.String("listen", ln.Addr().String()))
	}

	store, err := m.openStore(ctx, cfg)
	if err != nil {
		return err
	}
	if err := store.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	svc := app.NewService(store, system.Clock{}, &system.IDs{}, app.WithFourEyes(cfg.FourEyes),
		app.WithBusinessZone(cfg.BusinessZone))

	// Two registries: reg is served on the main listener's /metrics without
	// credentials (process, Go, HTTP, pool, group commit); private holds
	// the ledger's business figures, served only on TIYN_METRICS_LISTEN.
	reg, private := prometheus.NewRegistry(), prometheus.NewRegistry()
	srv := server.New(server.Options{
		Logger:   logger,
		Registry: reg,
		Private:  private,
		Ready:    store,
		DBStats:  store.DBStats,
		ExceptionsOpen: func(ctx context.Context) (int, error) {
			return store.CountExceptions(ctx, domain.ExceptionOpen, MaxOpenExceptionsCounted)
		},
		TLS:            tlsConfig,
		PrepareContext: rest.ContextWithActorSlot,
		Actor:          rest.ActorFrom,
	})
	recon, err := newReconMetrics(private)
	if err != nil {
		return err
	}
	ledger := countingLedger{Ledger: svc, metrics: recon}
	if err := mount(srv.Mux(), ledger, cfg, logger, private); err != nil {
		return err
	}
	if cfg.GroupCommit {
		if err := registerBatchMetrics(reg, store.BatchStats); err != nil {
			return err
		}
	}

	// The auxiliary listeners stop with the main one; if one fails, the
	// whole server stops (it was asked for, so running without it would
	// hide the failure).
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var aux sync.WaitGroup
	auxErrs := make(chan error, 2)
	serveAux := func(name string, ln net.Listener, h http.Handler) {
		aux.Add(1)
		go func() {
			defer aux.Done()
			if err := server.ServeAux(ctx, name, ln, h, logger); err != nil {
				auxErrs <- err
				stop()
			}
		}()
		if m.OnAuxListening != nil {
			m.OnAuxListening(name, ln.Addr().String())
		}
	}
	if metricsLn != nil {
		serveAux("metrics", metricsLn, srv.MetricsHandler())
	}
	switch {
	case !cfg.StatusPoll:
		logger.Info("status poller off (" + envStatusPoll + "=false): a payment whose callback never comes stays pending")
	case len(cfg.MonetixProjects) == 0:
		logger.Info("status poller off: no Monetix project is configured")
	case demo != nil && !cfg.GateURLSet:
		logger.Info("status poller off in the demo setup: set " + envGateURL + " to a Gate (tiyn simulate --platform serves one)")
	default:
		waitPoller, err := startPoller(ctx, svc, store, cfg, logger, private)
		if err != nil {
			return err
		}
		defer func() { stop(); waitPoller() }() // the poller ends before the store closes
	}
	if pprofLn != nil {
		serveAux("pprof", pprofLn, server.PprofHandler())
	}

	addr := ln.Addr().String()
	if demo != nil {
		demo.print(m.Stderr, addr, tlsConfig != nil)
	}
	if m.OnListening != nil {
		m.OnListening(addr)
	}
	t := server.DefaultTimeouts()
	t.Shutdown = cfg.ShutdownTimeout
	listeners = nil // Serve and ServeAux close them
	err = srv.Serve(ctx, ln, t)
	stop()
	aux.Wait()
	close(auxErrs)
	for e := range auxErrs {
		err = errors.Join(err, e)
	}
	return err
}

// plainHTTPWarning is the start-up warning for serving plain HTTP where
// others can connect ("" on loopback or with TLS).
func plainHTTPWarning(addr string, https bool) string {
	if https || isLoopback(addr) {
		return ""
	}
	return "serving plain HTTP on a non-loopback address: bearer tokens and the platform's callbacks travel in clear text; " +
		"set " + envTLSCert + " and " + envTLSKey + ", or put a TLS-terminating proxy in front"
}

// MaxOpenExceptionsCounted bounds the open exceptions gauge: the count is
// one indexed read of at most this many entries (a gauge at the bound means
// "this many or more"; an operator with that many has bigger problems than
// an exact number).
const MaxOpenExceptionsCounted = 100_000

// loadTLS reads the certificate and key of TIYN_TLS_CERT_FILE and
// TIYN_TLS_KEY_FILE (nil without them). A file that cannot be read or a
// pair that does not match is a configuration error: exit 2 before
// anything listens. The certificate is read once, at start: restart to
// rotate it.
func loadTLS(cfg Config) (*tls.Config, error) {
	if cfg.TLSCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
	if err != nil {
		return nil, usagef("%s, %s: %v", envTLSCert, envTLSKey, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// mount puts the REST API and the Monetix endpoints on mux. The Monetix
// endpoints go first: their exact patterns win over REST's "/v1/"
// catch-all either way, but registering them first keeps a clash loud.
func mount(mux *http.ServeMux, ledger ports.Ledger, cfg Config, logger *slog.Logger, reg *prometheus.Registry) error {
	if len(cfg.MonetixProjects) > 0 {
		h, err := monetix.New(ledger, monetix.Config{
			Projects: cfg.MonetixProjects,
			Logger:   logger,
			Metrics:  monetix.NewMetrics(reg),
		})
		if err != nil {
			if errors.Is(err, monetix.ErrInvalidProjects) {
				return &usageError{fmt.Errorf("%s: %w", cfg.MonetixProjectsFrom, err)}
			}
			return fmt.Errorf("%s: %w", cfg.MonetixProjectsFrom, err)
		}
		h.Register(mux)
	} else {
		mountNoMonetix(mux)
	}
	rc := rest.Reconciliation{Template: reconTemplate(cfg), CSV: reportSource}
	if cfg.Data.URL != "" {
		data, err := cfg.DataSource()
		if err != nil {
			return usagef("%s: %v", envDataURL, err)
		}
		rc.DataAPI = data
	}
	rest.Register(mux, ledger, rest.Options{Tokens: cfg.APITokens, Logger: logger, Reconciliation: rc})
	// The console reconciles uploaded reports as REST does, with the same
	// settings; it offers no Data API run (a report upload only).
	con, err := console.New(ledger, console.Options{Tokens: cfg.APITokens, Zone: cfg.businessZone(), FourEyes: cfg.FourEyes,
		Logger: logger, Reconciliation: rc})
	if err != nil {
		return err
	}
	con.Register(mux)
	return nil
}

// msgNoProjects explains the answer of the Monetix endpoints when no project
// is configured.
const msgNoProjects = "unknown project: no Monetix project is configured"

// mountNoMonetix answers the platform endpoints when no project is
// configured as the Monetix handler answers an unknown project: a request
// gets code 400 (in an HTTP 200, as the protocol wants), a callback HTTP
// 400, so the platform keeps retrying it until an operator fixes the setup.
func mountNoMonetix(mux *http.ServeMux) {
	mux.HandleFunc("POST "+monetix.RequestsPath, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"code": monetix.CodeInvalidSignature, "errors": map[string]string{"message": msgNoProjects},
		})
	})
	mux.HandleFunc("POST "+monetix.CallbacksPath, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusBadRequest, monetix.CallbackReply{Status: "error", Error: msgNoProjects})
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// logConfig logs the effective configuration: token names and project ids,
// never a secret; the database URL without its password.
func logConfig(logger *slog.Logger, cfg Config, demo bool) {
	names := make([]string, len(cfg.APITokens))
	for i, t := range cfg.APITokens {
		names[i] = t.Name + ":" + string(t.Role)
	}
	ids := make([]string, len(cfg.MonetixProjects))
	for i, p := range cfg.MonetixProjects {
		ids[i] = p.ID
	}
	engine := "postgresql"
	if !strings.HasPrefix(cfg.DatabaseURL, "postgres") {
		engine = sqlstore.SQLiteEngine()
	}
	logger.Info("starting tiyn",
		slog.String("version", version),
		slog.String("listen", cfg.Listen),
		slog.String("database", sqlstore.RedactURL(cfg.DatabaseURL)),
		slog.String("database_from", cfg.DatabaseURLFrom),
		slog.String("engine", engine),
		slog.Bool("group_commit", cfg.GroupCommit),
		slog.Any("api_tokens", names),
		slog.String("api_tokens_from", cfg.APITokensFrom),
		slog.Any("monetix_projects", ids),
		slog.String("monetix_projects_from", cfg.MonetixProjectsFrom),
		slog.Bool("demo", demo),
		slog.Bool("four_eyes", cfg.FourEyes),
		slog.Bool("tls", cfg.TLSCertFile != ""),
		slog.String("business_tz", cfg.businessZone().String()),
		slog.String("monetix_data_url", cfg.Data.URL),
		slog.String("monetix_data_token_from", cfg.Data.TokenFrom),
		slog.String("metrics_listen", cfg.MetricsListen),
		slog.String("pprof_listen", cfg.PprofListen))
	switch {
	case demo:
	case len(cfg.APITokens) == 0:
		logger.Warn("no REST API token configured: every /v1 REST request will be refused with 401 (set " + envTokens + ")")
	case len(cfg.MonetixProjects) == 0:
		logger.Warn("no Monetix project configured: the platform's requests and callbacks will be refused as from an unknown project (set " + envProjects + ")")
	}
}

// demo is the made-up configuration of a first run.
type demo struct {
	token   string
	project string
	secret  string
}

// demoSetup makes demo credentials when neither tokens nor projects are
// configured and the listen address is loopback, so a first `tiyn serve`
// just works on a laptop. On any other address it refuses to start:
// an open ledger on a network must be configured on purpose.
func demoSetup(cfg *Config, random io.Reader) (*demo, error) {
	if len(cfg.APITokens) > 0 || len(cfg.MonetixProjects) > 0 {
		return nil, nil
	}
	if !isLoopback(cfg.Listen) {
		return nil, usagef("refusing to serve on %s without credentials: set %s (or %s) and %s (or %s); "+
			"a demo setup is only made on a loopback address such as %s",
			cfg.Listen, envTokens, envTokensFile, envProjects, envProjectsFile, defaultListen)
	}
	hexOf := func() (string, error) {
		b := make([]byte, demoSecretBytes)
		if _, err := io.ReadFull(random, b); err != nil {
			return "", fmt.Errorf("demo setup: %w", err)
		}
		return hex.EncodeToString(b), nil
	}
	d := &demo{project: DemoProjectID}
	var err error
	if d.token, err = hexOf(); err != nil {
		return nil, err
	}
	if d.secret, err = hexOf(); err != nil {
		return nil, err
	}
	if cfg.APITokens, err = rest.ParseTokens("demo:operator:" + d.token); err != nil {
		return nil, fmt.Errorf("demo setup: %w", err)
	}
	if cfg.MonetixProjects, err = monetix.ParseProjects(d.project + "=" + d.secret); err != nil {
		return nil, fmt.Errorf("demo setup: %w", err)
	}
	cfg.APITokensFrom, cfg.MonetixProjectsFrom = "demo setup", "demo setup"
	return d, nil
}

// isLoopback reports whether a listen address only accepts local
// connections: "localhost" or a loopback IP. An empty host means every
// interface.
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil || host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (d *demo) print(w io.Writer, addr string, https bool) {
	base := "http://" + addr
	if https {
		base = "https://" + addr
	}
	fmt.Fprintf(w, `
==================== DEMO SETUP — not for production ====================
No %s and no %s are set, and Tiyn listens on a loopback
address, so it made up credentials for this run (new ones on every start):

  REST API token (operator): %s
  Monetix project id:        %s
  Monetix secret key:        %s

  Operator console:          %s/console/  (log in with the token above)

Try it:
  curl -s -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \
       -d '{"customer_id":"6552"}' %s/v1/accounts

Set %s and %s (or their _FILE forms) for real use.
=========================================================================

`, envTokens, envProjects, d.token, d.project, d.secret, base, d.token, base, envTokens, envProjects)
}

// openStore opens the store named by the configuration and registers its
// Close with Main.
func (m *Main) openStore(ctx context.Context, cfg Config) (*sqlstore.Store, error) {
	store, err := sqlstore.Open(ctx, cfg.StoreOptions())
	if err != nil {
		return nil, sqlstore.RedactError(fmt.Errorf("open database %s: %w", sqlstore.RedactURL(cfg.DatabaseURL), err), cfg.DatabaseURL)
	}
	m.OnClose(store.Close)
	return store, nil
}

// registerBatchMetrics exports group commit's counters, read at scrape
// time: rate(items) ÷ rate(batches) is the mean batch size.
func registerBatchMetrics(reg prometheus.Registerer, stats func() sqlstore.BatchStats) error {
	counter := func(name, help string, v func(sqlstore.BatchStats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tiyn_group_commit_" + name, Help: help},
			func() float64 { return v(stats()) })
	}
	for _, c := range []prometheus.Collector{
		counter("batches_total", "Group-commit transactions committed.",
			func(s sqlstore.BatchStats) float64 { return float64(s.Batches) }),
		counter("items_total", "Writes (callbacks, check_deposits, debits, …) committed by group-commit transactions.",
			func(s sqlstore.BatchStats) float64 { return float64(s.Items) }),
		counter("restarts_total", "Batches rolled back and run again without an item that failed.",
			func(s sqlstore.BatchStats) float64 { return float64(s.Restarts) }),
		counter("exec_seconds_total", "Time batches spent running their statements, waiting for a connection included (one batch per partition executes at a time).",
			func(s sqlstore.BatchStats) float64 { return s.ExecTime.Seconds() }),
		counter("commit_seconds_total", "Time batches spent in COMMIT (the WAL flush).",
			func(s sqlstore.BatchStats) float64 { return s.CommitTime.Seconds() }),
		counter("read_ahead_total", "Settle views and accounts answered from their batch's read-ahead instead of a read of their own (PostgreSQL).",
			func(s sqlstore.BatchStats) float64 { return float64(s.ReadAhead) }),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	return nil
}
