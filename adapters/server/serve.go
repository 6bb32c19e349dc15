package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Default timeouts of the HTTP server. Each bounds what a slow or hostile
// client can hold: a connection that never finishes its headers
// (slowloris), a body that trickles in, a response nobody reads, an idle
// keep-alive connection, and headers of any size.
const (
	// DefaultReadHeaderTimeout: time to read the request headers.
	DefaultReadHeaderTimeout = 5 * time.Second
	// DefaultReadTimeout: time to read the whole request, body included.
	// Tiyn's bodies are a few kilobytes.
	DefaultReadTimeout = 15 * time.Second
	// DefaultWriteTimeout: time from the end of the request headers to the
	// end of the response. Above the slowest store commit Tiyn waits for.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultIdleTimeout: how long a keep-alive connection may sit idle.
	DefaultIdleTimeout = 120 * time.Second
	// DefaultMaxHeaderBytes: 64 KiB of headers is far above any legitimate
	// request (a bearer token, a signature) and far below net/http's 1 MiB.
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultShutdownTimeout: how long a graceful shutdown waits for
	// requests in flight before cutting them off. Below Kubernetes' default
	// 30s grace period, so the process exits on its own terms.
	DefaultShutdownTimeout = 20 * time.Second
)

// Timeouts configures the HTTP server; a zero field takes its default.
type Timeouts struct {
	ReadHeader     time.Duration
	Read           time.Duration
	Write          time.Duration
	Idle           time.Duration
	Shutdown       time.Duration
	MaxHeaderBytes int
}

// DefaultTimeouts returns the defaults above.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		ReadHeader:     DefaultReadHeaderTimeout,
		Read:           DefaultReadTimeout,
		Write:          DefaultWriteTimeout,
		Idle:           DefaultIdleTimeout,
		Shutdown:       DefaultShutdownTimeout,
		MaxHeaderBytes: DefaultMaxHeaderBytes,
	}
}

func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts()
	if t.ReadHeader <= 0 {
		t.ReadHeader = d.ReadHeader
	}
	if t.Read <= 0 {
		t.Read = d.Read
	}
	if t.Write <= 0 {
		t.Write = d.Write
	}
	if t.Idle <= 0 {
		t.Idle = d.Idle
	}
	if t.Shutdown <= 0 {
		t.Shutdown = d.Shutdown
	}
	if t.MaxHeaderBytes <= 0 {
		t.MaxHeaderBytes = d.MaxHeaderBytes
	}
	return t
}

// ErrShutdownTimeout: requests were still running when the shutdown timeout
// ran out; they were cut off.
var ErrShutdownTimeout = errors.New("graceful shutdown timed out")

// ListenAndServe listens on addr ("127.0.0.1:8080"; port 0 picks a free
// one, see Addr) and serves until ctx is cancelled, then shuts down
// gracefully: see Serve.
func (s *Server) ListenAndServe(ctx context.Context, addr string, t Timeouts) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return s.Serve(ctx, ln, t)
}

// Serve serves on ln (HTTPS when Options.TLS is set) until ctx is cancelled (the caller turns SIGTERM and
// SIGINT into that), then shuts down gracefully: /readyz starts answering
// 503, the listener closes (new connections are refused), idle connections
// close, and requests in flight run to completion, for at most t.Shutdown.
// It returns nil after a clean shutdown, ErrShutdownTimeout (wrapped) when
// requests had to be cut off, or the error that stopped serving. Serve
// closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener, t Timeouts) error {
	t = t.withDefaults()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    t.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		// Requests keep a context of their own (the default): cancelling
		// ctx must not cancel requests in flight, only stop taking new ones.
	}
	s.setAddr(ln.Addr().String())
	s.logger.Info("listening", slog.String("addr", ln.Addr().String()), slog.Bool("tls", s.tls != nil))

	serveErr := make(chan error, 1)
	if s.tls != nil {
		srv.TLSConfig = s.tls
		go func() { serveErr <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { serveErr <- srv.Serve(ln) }()
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	s.draining.Store(true)
	s.logger.Info("shutting down", slog.String("timeout", t.Shutdown.String()))
	sctx, cancel := context.WithTimeout(context.Background(), t.Shutdown)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		_ = srv.Close()
		<-serveErr //nolint:errcheck // http.ErrServerClosed after Close: the shutdown error is the one to report
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w after %s: %w", ErrShutdownTimeout, t.Shutdown, err)
		}
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	s.logger.Info("stopped")
	return nil
}

func (s *Server) setAddr(addr string) {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	if s.addr == "" {
		s.addr = addr
		close(s.listening)
	}
}

// Addr returns the address the server is bound to ("127.0.0.1:41234" when
// asked for port 0), or "" before it listens.
func (s *Server) Addr() string {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	return s.addr
}

// Listening is closed once the server is bound: wait on it, then read Addr.
func (s *Server) Listening() <-chan struct{} { return s.listening }
