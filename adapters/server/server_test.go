package server

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiyn/tiyn/ports"
	"github.com/tiyn/tiyn/tests/testkit"
)

// logLines decodes the JSON log lines.
func logLines(t *testing.T, b *testkit.SyncBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func newTestServer(t *testing.T, opts Options) (*Server, *testkit.SyncBuffer) {
	t.Helper()
	logs := &testkit.SyncBuffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return New(opts), logs
}

func do(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func decodeStatus(t *testing.T, rec *httptest.ResponseRecorder) statusBody {
	t.Helper()
	var b statusBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("body %q: %v", rec.Body.String(), err)
	}
	return b
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	// A failing store must not make the process unhealthy: only unready.
	p := &fakePinger{}
	p.set(errors.New("db down"))
	s, _ := newTestServer(t, Options{Ready: p})
	rec := do(t, s.Handler(), http.MethodGet, "/healthz", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, want 200", rec.Code)
	}
	if got := decodeStatus(t, rec); got.Status != "ok" || got.Reason != "" {
		t.Fatalf("body %+v", got)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	if rec := do(t, s.Handler(), http.MethodPost, "/healthz", nil); rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST /healthz: status %d, want 405", rec.Code)
	}
}

type fakePinger struct {
	mu       sync.Mutex
	err      error
	deadline time.Duration // time left on the ctx at the last ping
	calls    int
}

func (p *fakePinger) set(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err
}

func (p *fakePinger) Ping(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if d, ok := ctx.Deadline(); ok {
		p.deadline = time.Until(d)
	} else {
		p.deadline = -1
	}
	return p.err
}

func TestReadyzFlips(t *testing.T) {
	t.Parallel()
	p := &fakePinger{}
	s, logs := newTestServer(t, Options{Ready: p})
	// Store errors carry a host, a user, a driver's words: /readyz answers
	// a reason code and nothing of the error; the log has the detail.
	steps := []struct {
		err        error
		wantCode   int
		wantReason string
	}{
		{nil, http.StatusOK, ""},
		{fmt.Errorf("%w: dial tcp db.internal:5432 (user tiyn): connection refused", ports.ErrUnavailable), http.StatusServiceUnavailable, ReadyStoreUnreachable},
		{fmt.Errorf("%w: schema version 0 at db.internal, binary has 1", ports.ErrNotMigrated), http.StatusServiceUnavailable, ReadyNotMigrated},
		{fmt.Errorf("%w: ping db.internal: %w", ports.ErrUnavailable, context.DeadlineExceeded), http.StatusServiceUnavailable, ReadyStoreTimeout},
		{errors.New("pq: password authentication failed for user tiyn at db.internal"), http.StatusServiceUnavailable, ReadyStoreUnreachable},
		{nil, http.StatusOK, ""},
	}
	for i, st := range steps {
		p.set(st.err)
		rec := do(t, s.Handler(), http.MethodGet, "/readyz", nil)
		if rec.Code != st.wantCode {
			t.Fatalf("step %d: status %d, want %d", i, rec.Code, st.wantCode)
		}
		b := decodeStatus(t, rec)
		wantStatus := "ok"
		if st.wantCode != http.StatusOK {
			wantStatus = "unavailable"
		}
		if b.Status != wantStatus || b.Reason != st.wantReason {
			t.Fatalf("step %d: body %+v, want status %q reason %q", i, b, wantStatus, st.wantReason)
		}
		var raw map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil || len(raw) > 2 {
			t.Fatalf("step %d: body %s has more than status and reason", i, rec.Body)
		}
		for _, leak := range []string{"db.internal", "tiyn", "5432", "refused", "password", "schema"} {
			if strings.Contains(rec.Body.String(), leak) {
				t.Fatalf("step %d: body %s gives away %q", i, rec.Body, leak)
			}
		}
		if st.err != nil && !strings.Contains(logs.String(), st.err.Error()) {
			t.Fatalf("step %d: the error is not logged:\n%s", i, logs)
		}
	}
	p.mu.Lock()
	calls, deadline := p.calls, p.deadline
	p.mu.Unlock()
	if calls != len(steps) {
		t.Fatalf("pinged %d times, want %d", calls, len(steps))
	}
	if deadline <= 0 || deadline > ReadyTimeout {
		t.Fatalf("ping context deadline %v, want within (0, %v]", deadline, ReadyTimeout)
	}
	if !strings.Contains(logs.String(), `"msg":"not ready"`) {
		t.Fatalf("a failed readiness check is not logged:\n%s", logs)
	}
}

func TestReadyzWithoutPingerAndWhileDraining(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{})
	if rec := do(t, s.Handler(), http.MethodGet, "/readyz", nil); rec.Code != http.StatusOK {
		t.Fatalf("no pinger: status %d, want 200", rec.Code)
	}
	s.draining.Store(true)
	rec := do(t, s.Handler(), http.MethodGet, "/readyz", nil)
	if rec.Code != http.StatusServiceUnavailable || decodeStatus(t, rec).Reason != ReadyShuttingDown {
		t.Fatalf("draining: status %d body %s", rec.Code, rec.Body)
	}
	if rec := do(t, s.Handler(), http.MethodGet, "/healthz", nil); rec.Code != http.StatusOK {
		t.Fatalf("draining healthz: status %d, want 200", rec.Code)
	}
}

func scrape(t *testing.T, s *Server) string {
	t.Helper()
	rec := do(t, s.Handler(), http.MethodGet, "/metrics", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics status %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func TestMetricsExposition(t *testing.T) {
	t.Parallel()
	stats := sql.DBStats{MaxOpenConnections: 8, OpenConnections: 5, InUse: 2, Idle: 3, WaitCount: 7, WaitDuration: 1500 * time.Millisecond}
	var exceptionsCalls atomic.Int32
	s, _ := newTestServer(t, Options{
		DBStats: func() sql.DBStats { return stats },
		ExceptionsOpen: func(ctx context.Context) (int, error) {
			exceptionsCalls.Add(1)
			if _, ok := ctx.Deadline(); !ok {
				return 0, errors.New("no deadline")
			}
			return 3, nil
		},
	})
	s.Mux().HandleFunc("GET /v1/things/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "thing "+r.PathValue("id"))
	})
	s.Mux().HandleFunc("POST /v1/things", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusCreated)
	})
	for range 2 {
		do(t, s.Handler(), http.MethodGet, "/v1/things/42", nil)
	}
	do(t, s.Handler(), http.MethodGet, "/v1/things/43", nil)
	do(t, s.Handler(), http.MethodPost, "/v1/things", nil)
	do(t, s.Handler(), http.MethodGet, "/wp-admin/setup.php", nil)
	do(t, s.Handler(), http.MethodDelete, "/v1/things", nil) // 405
	do(t, s.Handler(), "BREW", "/v1/things", nil)

	body := scrape(t, s)
	want := []string{
		`tiyn_http_requests_total{code="200",method="GET",route="/v1/things/{id}"} 3`,
		`tiyn_http_requests_total{code="201",method="POST",route="/v1/things"} 1`,
		`tiyn_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`tiyn_http_requests_total{code="405",method="DELETE",route="unmatched"} 1`,
		`tiyn_http_requests_total{code="405",method="other",route="unmatched"} 1`,
		`tiyn_http_request_duration_seconds_count{method="GET",route="/v1/things/{id}"} 3`,
		`tiyn_http_request_duration_seconds_bucket{method="GET",route="/v1/things/{id}",le="+Inf"} 3`,
		"tiyn_db_max_open_connections 8",
		"tiyn_db_open_connections 5",
		"tiyn_db_in_use_connections 2",
		"tiyn_db_idle_connections 3",
		"tiyn_db_wait_count_total 7",
		"tiyn_db_wait_duration_seconds_total 1.5",
		"go_goroutines ",
		"process_open_fds ",
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("metrics lack %q", w)
		}
	}
	// The business figures are not on the public listener's /metrics, and
	// nothing was counted for it.
	if strings.Contains(body, "tiyn_exceptions_open") || exceptionsCalls.Load() != 0 {
		t.Errorf("the public /metrics counts or shows the open exceptions (%d counts):\n%s", exceptionsCalls.Load(), body)
	}
	private := scrapeHandler(t, s.MetricsHandler())
	for _, w := range append(want[:4], "tiyn_exceptions_open 3", "tiyn_exceptions_open_scrape_errors_total 0") {
		if !strings.Contains(private, w) {
			t.Errorf("the metrics listener lacks %q", w)
		}
	}
	for _, bad := range []string{`route="/v1/things/42"`, "/wp-admin", `method="BREW"`} {
		if strings.Contains(body, bad) {
			t.Errorf("metrics carry an unbounded label %q", bad)
		}
	}
	if exceptionsCalls.Load() != 1 {
		t.Errorf("exceptions counted %d times in one scrape", exceptionsCalls.Load())
	}
	// The scrape itself shows up on the next scrape.
	if body := scrape(t, s); !strings.Contains(body, `tiyn_http_requests_total{code="200",method="GET",route="/metrics"} 1`) {
		t.Errorf("the first scrape is not counted")
	}
}

// scrapeHandler scrapes a metrics handler such as MetricsHandler.
func scrapeHandler(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := do(t, h, http.MethodGet, "/metrics", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics status %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func TestMetricsExceptionsError(t *testing.T) {
	t.Parallel()
	s, logs := newTestServer(t, Options{
		ExceptionsOpen: func(context.Context) (int, error) { return 0, errors.New("store unavailable") },
	})
	body := scrapeHandler(t, s.MetricsHandler())
	if strings.Contains(body, "tiyn_exceptions_open ") {
		t.Errorf("a gauge that could not be read is exported")
	}
	if !strings.Contains(body, "tiyn_exceptions_open_scrape_errors_total 1") {
		t.Errorf("the failed count is not counted:\n%s", body)
	}
	if !strings.Contains(logs.String(), "store unavailable") {
		t.Errorf("the failed count is not logged")
	}
}

func TestSharedRegistryAndDuplicateMetric(t *testing.T) {
	t.Parallel()
	s1, _ := newTestServer(t, Options{})
	// A second server on the same registry must not fail on the runtime
	// collectors, but must on its own metrics (a programmer error).
	defer func() {
		if recover() == nil {
			t.Fatal("registering tiyn_http_requests_total twice did not panic")
		}
	}()
	New(Options{Registry: s1.Registry(), Logger: slog.New(slog.DiscardHandler)})
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{})
	var seen atomic.Value
	s.Mux().HandleFunc("GET /echo", func(w http.ResponseWriter, r *http.Request) {
		seen.Store(RequestID(r.Context()) + "|" + r.Header.Get(RequestIDHeader))
	})
	tests := []struct {
		name, in string
		keep     bool
	}{
		{"OK", "abc-123_x.y:z", true},
		{"OKUUID", "0b7e1f4c-3c5e-4d3a-9f0e-1d2c3b4a5f6e", true},
		{"OKMaxLen", strings.Repeat("a", MaxRequestIDLen), true},
		{"Absent", "", false},
		{"TooLong", strings.Repeat("a", MaxRequestIDLen+1), false},
		{"Space", "abc def", false},
		{"Newline", "abc\\ninjected", false},
		{"Quote", `a"b`, false},
		{"NonASCII", "идентификатор", false},
	}
	for _, tc := range tests {
		rec := do(t, s.Handler(), http.MethodGet, "/echo", map[string]string{RequestIDHeader: tc.in})
		got := rec.Header().Get(RequestIDHeader)
		if tc.keep {
			if got != tc.in {
				t.Errorf("%s: response id %q, want %q", tc.name, got, tc.in)
			}
		} else if len(got) != 2*generatedRequestIDBytes || strings.Trim(got, "0123456789abcdef") != "" || got == tc.in {
			t.Errorf("%s: response id %q, want 16 fresh hex characters", tc.name, got)
		}
		if s := seen.Load().(string); s != got+"|"+got {
			t.Errorf("%s: handler saw %q, response says %q", tc.name, s, got)
		}
	}
	a := do(t, s.Handler(), http.MethodGet, "/echo", nil).Header().Get(RequestIDHeader)
	b := do(t, s.Handler(), http.MethodGet, "/echo", nil).Header().Get(RequestIDHeader)
	if a == b {
		t.Errorf("two requests got the same generated id %q", a)
	}
	// 404s get an id too.
	if got := do(t, s.Handler(), http.MethodGet, "/nope", nil).Header().Get(RequestIDHeader); got == "" {
		t.Errorf("404 without request id")
	}
}

func TestPanicRecovery(t *testing.T) {
	t.Parallel()
	s, logs := newTestServer(t, Options{})
	s.Mux().HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
	rec := do(t, s.Handler(), http.MethodGet, "/boom", map[string]string{RequestIDHeader: "req-1"})
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", rec.Code)
	}
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["error"] != "internal error" || body["request_id"] != "req-1" {
		t.Fatalf("body %q (%v)", rec.Body, err)
	}
	if strings.Contains(rec.Body.String(), "kaboom") {
		t.Fatalf("the panic value leaks to the client: %s", rec.Body)
	}
	var panicLine, accessLine map[string]any
	for _, l := range logLines(t, logs) {
		switch l["msg"] {
		case "panic serving request":
			panicLine = l
		case "http request":
			accessLine = l
		}
	}
	if panicLine == nil || panicLine["panic"] != "kaboom" || panicLine["request_id"] != "req-1" ||
		!strings.Contains(panicLine["stack"].(string), "server_test.go") || panicLine["level"] != "ERROR" {
		t.Fatalf("panic log line %v", panicLine)
	}
	if accessLine == nil || accessLine["status"] != float64(500) || accessLine["level"] != "ERROR" {
		t.Fatalf("access line %v", accessLine)
	}
	if !strings.Contains(scrape(t, s), `tiyn_http_requests_total{code="500",method="GET",route="/boom"} 1`) {
		t.Fatalf("the 500 is not counted")
	}
}

func TestPanicAfterWriteAbortsResponse(t *testing.T) {
	t.Parallel()
	s, logs := newTestServer(t, Options{})
	s.Mux().HandleFunc("GET /half", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "100")
		_, _ = io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic("late")
	})
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	resp, err := ts.Client().Get(ts.URL + "/half")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
	}
	if err == nil {
		t.Fatal("a response cut by a panic was read as complete")
	}
	if !strings.Contains(logs.String(), `"panic":"late"`) {
		t.Fatalf("the late panic is not logged")
	}
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	type slot struct{ actor atomic.Value }
	s, logs := newTestServer(t, Options{
		// As the REST adapter does: a slot installed before routing, filled
		// by the handler on a context of its own, read after it returned.
		PrepareContext: func(ctx context.Context) context.Context {
			return context.WithValue(ctx, actorTestKey{}, &slot{})
		},
		Actor: func(ctx context.Context) string {
			sl, ok := ctx.Value(actorTestKey{}).(*slot)
			if !ok {
				return "no slot"
			}
			v, _ := sl.actor.Load().(string)
			return v
		},
	})
	s.Mux().HandleFunc("POST /v1/accounts/{id}/debits", func(w http.ResponseWriter, r *http.Request) {
		inner := r.WithContext(context.WithValue(r.Context(), derivedKey{}, "derived"))
		inner.Context().Value(actorTestKey{}).(*slot).actor.Store("backoffice")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "12345")
	})
	s.Mux().HandleFunc("GET /anon", func(http.ResponseWriter, *http.Request) {})
	do(t, s.Handler(), http.MethodPost, "/v1/accounts/acc_1/debits", map[string]string{RequestIDHeader: "r-1"})
	do(t, s.Handler(), http.MethodGet, "/anon", nil)
	do(t, s.Handler(), http.MethodGet, "/healthz", nil)

	var access []map[string]any
	for _, l := range logLines(t, logs) {
		if l["msg"] == "http request" {
			access = append(access, l)
		}
	}
	if len(access) != 3 {
		t.Fatalf("%d access lines for 3 requests", len(access))
	}
	first := access[0]
	want := map[string]any{
		"method": "POST", "path": "/v1/accounts/acc_1/debits", "route": "/v1/accounts/{id}/debits",
		"status": float64(201), "bytes": float64(5), "request_id": "r-1", "actor": "backoffice", "level": "INFO",
	}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("%s = %v, want %v", k, first[k], v)
		}
	}
	for _, k := range []string{"duration_ms", "remote"} {
		if _, ok := first[k]; !ok {
			t.Errorf("access line lacks %s: %v", k, first)
		}
	}
	if _, ok := access[1]["actor"]; ok {
		t.Errorf("anonymous request logged with an actor: %v", access[1])
	}
	if access[2]["level"] != "DEBUG" || access[2]["route"] != "/healthz" {
		t.Errorf("probe line %v, want debug level", access[2])
	}
}

type (
	actorTestKey struct{}
	derivedKey   struct{}
)

func TestRouteLabel(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                          UnmatchedRoute,
		"GET /healthz":              "/healthz",
		"/v1/":                      "/v1/",
		"POST example.com/v1/x":     "example.com/v1/x",
		"GET  /v1/accounts/{id}":    "/v1/accounts/{id}",
		"DELETE /v1/things/{id...}": "/v1/things/{id...}",
	} {
		if got := routeLabel(in); got != want {
			t.Errorf("routeLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoggerAddsRequestID(t *testing.T) {
	t.Parallel()
	logs := &testkit.SyncBuffer{}
	s := New(Options{Logger: NewLogger(logs, slog.LevelInfo, LogFormatJSON)})
	s.Mux().HandleFunc("GET /x", func(_ http.ResponseWriter, r *http.Request) {
		// An adapter logs with the request's context and knows nothing of ids.
		s.Logger().With("adapter", "monetix").InfoContext(r.Context(), "adapter line")
	})
	do(t, s.Handler(), http.MethodGet, "/x", map[string]string{RequestIDHeader: "rid-7"})
	s.Logger().Info("no request")
	var adapter, access, plain map[string]any
	for _, l := range logLines(t, logs) {
		switch l["msg"] {
		case "adapter line":
			adapter = l
		case "http request":
			access = l
		case "no request":
			plain = l
		}
	}
	if adapter["request_id"] != "rid-7" || adapter["adapter"] != "monetix" {
		t.Errorf("adapter line %v", adapter)
	}
	if access["request_id"] != "rid-7" || strings.Count(logs.String(), `"request_id"`) != 2 {
		t.Errorf("access line %v; request_id duplicated or missing:\n%s", access, logs)
	}
	if _, ok := plain["request_id"]; ok {
		t.Errorf("a line without a request has a request_id: %v", plain)
	}
}

func TestNewLogger(t *testing.T) {
	t.Parallel()
	tests := []struct {
		format   string
		wantJSON bool
	}{
		{LogFormatJSON, true},
		{LogFormatAuto, true}, // a buffer is not a terminal
		{LogFormatText, false},
		{"yaml", true},
	}
	for _, tc := range tests {
		var buf bytes.Buffer
		l := NewLogger(&buf, slog.LevelWarn, tc.format)
		l.Info("hidden")
		l.Warn("shown", "k", "v")
		out := buf.String()
		if strings.Contains(out, "hidden") {
			t.Errorf("%s: level not applied: %s", tc.format, out)
		}
		isJSON := json.Valid([]byte(strings.TrimSpace(out)))
		if isJSON != tc.wantJSON || !strings.Contains(out, "shown") {
			t.Errorf("%s: output %q, JSON=%v want %v", tc.format, out, isJSON, tc.wantJSON)
		}
	}
	for f, ok := range map[string]bool{"auto": true, "json": true, "text": true, "JSON": false, "": false, "yaml": false} {
		if err := ValidateLogFormat(f); (err == nil) != ok {
			t.Errorf("ValidateLogFormat(%q) = %v", f, err)
		}
	}
}
