package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"
)

// RequestIDHeader carries the request id in and out, so one id follows a
// request through a proxy, Tiyn's log and the caller's own log.
const RequestIDHeader = "X-Request-Id"

// MaxRequestIDLen bounds an incoming request id: it goes into every log
// line of the request, so a client must not be able to make it huge.
const MaxRequestIDLen = 64

// generatedRequestIDBytes is the randomness of a generated id: 8 bytes, 16
// hex characters, plenty to tell a day's requests apart.
const generatedRequestIDBytes = 8

// UnmatchedRoute is the route label of requests no pattern matched (404s,
// 405s): scanners must not be able to mint label values.
const UnmatchedRoute = "unmatched"

type ctxKey int

const requestIDKey ctxKey = 0

// RequestID returns the request id the middleware put in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

func (s *Server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			id = newRequestID()
			r.Header.Set(RequestIDHeader, id)
		}
		w.Header().Set(RequestIDHeader, id)
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// validRequestID accepts 1..MaxRequestIDLen characters from a set safe in
// logs and headers: letters, digits, '-', '_', '.', ':'. A UUID, a ULID and
// a trace id all pass.
func validRequestID(id string) bool {
	if id == "" || len(id) > MaxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [generatedRequestIDBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// withRecover turns a panicking handler into a 500 with a JSON body and an
// error log line with the stack, instead of a dropped connection and a
// trace on stderr. http.ErrAbortHandler is let through: it is net/http's
// way to abort a response on purpose.
func (s *Server) withRecover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // net/http compares it the same way
				panic(v)
			}
			id := RequestID(r.Context())
			s.logger.LogAttrs(r.Context(), slog.LevelError, "panic serving request",
				slog.String("panic", fmt.Sprint(v)),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.String("request_id", id),
				slog.String("stack", string(debug.Stack())))
			if rw, ok := w.(*responseWriter); ok && rw.wroteHeader {
				// Too late for a status: cut the response so the client
				// sees it incomplete rather than believing it whole.
				panic(http.ErrAbortHandler)
			}
			writeJSON(w, http.StatusInternalServerError, map[string]string{
				"error": "internal error", "request_id": id,
			})
		}()
		next.ServeHTTP(w, r)
	})
}

// withAccessLog writes one log line and updates the metrics per request.
// The route label is the ServeMux pattern that matched (set on the request
// by the mux, after routing), so its values are bounded by the routes.
func (s *Server) withAccessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if s.prepare != nil {
			r = r.WithContext(s.prepare(r.Context()))
		}
		rw := &responseWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			// Runs even when an ErrAbortHandler panic passes through.
			elapsed := time.Since(start)
			route := routeLabel(r.Pattern)
			s.metrics.observe(route, r.Method, rw.status, elapsed)
			level := accessLevel(route, rw.status)
			if !s.logger.Enabled(r.Context(), level) {
				return
			}
			actor := ""
			if s.actor != nil {
				actor = s.actor(r.Context())
			}
			attrs := []slog.Attr{
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.String("route", route),
				slog.Int("status", rw.status),
				slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
				slog.Int64("bytes", rw.bytes),
				slog.String("request_id", RequestID(r.Context())),
				slog.String("remote", r.RemoteAddr),
			}
			if actor != "" {
				attrs = append(attrs, slog.String("actor", actor))
			}
			s.logger.LogAttrs(r.Context(), level, "http request", attrs...)
		}()
		next.ServeHTTP(rw, r)
	})
}

// probeRoutes are polled every few seconds by orchestrators and scrapers;
// their access lines go to debug so they do not drown the real traffic.
var probeRoutes = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

func accessLevel(route string, status int) slog.Level {
	switch {
	case status >= 500:
		return slog.LevelError
	case probeRoutes[route] && status < 400:
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// routeLabel turns a ServeMux pattern ("POST /v1/accounts/{id}") into the
// route label ("/v1/accounts/{id}"); the method has a label of its own.
func routeLabel(pattern string) string {
	if pattern == "" {
		return UnmatchedRoute
	}
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		pattern = strings.TrimLeft(pattern[i+1:], " \t")
	}
	return pattern
}

// responseWriter records the status and the size of the body for the log
// line and the metrics. Unwrap lets http.ResponseController reach the
// connection underneath (deadlines, flushing).
type responseWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.wroteHeader && code >= 200 {
		w.status = code
		w.wroteHeader = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush passes flushing through, for handlers that stream.
func (w *responseWriter) Flush() {
	w.wroteHeader = true
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap returns the wrapped writer for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
