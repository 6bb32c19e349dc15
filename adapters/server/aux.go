package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// AuxShutdownTimeout bounds the shutdown of an auxiliary listener: a scrape
// or a profile in flight is not worth waiting for.
const AuxShutdownTimeout = 2 * time.Second

// AuxWriteTimeout bounds a response of an auxiliary listener: long enough
// for a CPU profile or a trace of a few minutes, short enough that a client
// that stops reading is let go.
const AuxWriteTimeout = 5 * time.Minute

// PprofHandler serves Go's profiles under /debug/pprof/ — the index, the
// named profiles (heap, goroutine, …), profile, symbol and trace — except
// /debug/pprof/cmdline, which is 404: the command line may hold secrets
// passed as flags. Profiles expose internals and cost CPU, and the handler
// has no authentication: serve it only on a loopback listener of its own
// (ServeAux), never on the public one.
func PprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", http.NotFound)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// ServeAux serves h on ln — an auxiliary listener such as the metrics or
// the pprof one, named name in the logs — until ctx is cancelled, then shuts
// down within AuxShutdownTimeout. It has the slow-client bounds of the
// default timeouts, except that a response may take up to AuxWriteTimeout
// (a CPU profile or a trace lasts as long as its seconds parameter). It returns nil
// after a shutdown, or the error that stopped serving. ServeAux closes ln.
func ServeAux(ctx context.Context, name string, ln net.Listener, h http.Handler, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.Default()
	}
	d := DefaultTimeouts()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: d.ReadHeader,
		ReadTimeout:       d.Read,
		WriteTimeout:      AuxWriteTimeout,
		IdleTimeout:       d.Idle,
		MaxHeaderBytes:    d.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("listening", slog.String("listener", name), slog.String("addr", ln.Addr().String()))
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("%s listener: %w", name, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), AuxShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s listener: %w", name, err)
	}
	return nil
}
