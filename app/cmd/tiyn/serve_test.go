package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/tests/testkit"
)

// waitTimeout bounds every wait in these tests.
const waitTimeout = 15 * time.Second

func TestDemoSetup(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"127.0.0.1:8080", "127.0.0.2:0", "localhost:8080", "LOCALHOST:1", "[::1]:8080"} {
		cfg := Config{Listen: addr}
		random := bytes.NewReader(bytes.Repeat([]byte{0xab}, 2*demoSecretBytes))
		d, err := demoSetup(&cfg, random)
		if err != nil || d == nil {
			t.Fatalf("%s: demo %v err %v", addr, d, err)
		}
		wantHex := strings.Repeat("ab", demoSecretBytes)
		if d.token != wantHex || d.secret != wantHex || d.project != DemoProjectID {
			t.Fatalf("%s: demo %+v", addr, d)
		}
		if len(cfg.APITokens) != 1 || cfg.APITokens[0].Role != rest.RoleOperator || cfg.APITokens[0].Secret != d.token {
			t.Fatalf("%s: tokens %v", addr, cfg.APITokens)
		}
		if len(cfg.MonetixProjects) != 1 || cfg.MonetixProjects[0].ID != "1234" || string(cfg.MonetixProjects[0].Secret) != d.secret {
			t.Fatalf("%s: projects %v", addr, cfg.MonetixProjects)
		}
		var out bytes.Buffer
		d.print(&out, "127.0.0.1:8080", false)
		for _, want := range []string{"DEMO SETUP — not for production", "Authorization: Bearer " + d.token,
			`-d '{"customer_id":"6552"}' http://127.0.0.1:8080/v1/accounts`, "Monetix project id:        1234", "REST API token (operator): " + d.token, d.secret,
			"Operator console:          http://127.0.0.1:8080/console/  (log in with the token above)"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("demo block lacks %q:\n%s", want, out.String())
			}
		}
	}

	// Two starts make different credentials.
	a, b := Config{Listen: "127.0.0.1:0"}, Config{Listen: "127.0.0.1:0"}
	da, _ := demoSetup(&a, rand.Reader)
	db, _ := demoSetup(&b, rand.Reader)
	if da == nil || db == nil || da.token == db.token || da.secret == db.secret || len(da.token) != 2*demoSecretBytes {
		t.Fatalf("demo credentials not random: %+v %+v", da, db)
	}

	for _, addr := range []string{"0.0.0.0:8080", ":8080", "[::]:8080", "192.0.2.10:8080", "example.com:80", "localhost.example.com:80"} {
		cfg := Config{Listen: addr}
		d, err := demoSetup(&cfg, rand.Reader)
		var ue *usageError
		if d != nil || !errors.As(err, &ue) {
			t.Fatalf("%s: demo %v err %v, want a refusal", addr, d, err)
		}
		for _, name := range []string{"TIYN_API_TOKENS", "TIYN_MONETIX_PROJECTS", addr} {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("%s: refusal %q does not name %s", addr, err, name)
			}
		}
	}

	// Either credential configured: no demo, no refusal, on any address.
	tok, _ := rest.ParseTokens("ops:read:" + testTokenSecret)
	proj, _ := monetix.ParseProjects("1=" + testProjectSecret)
	for _, cfg := range []Config{{Listen: "0.0.0.0:8080", APITokens: tok}, {Listen: "0.0.0.0:8080", MonetixProjects: proj}, {Listen: "127.0.0.1:1", APITokens: tok}} {
		d, err := demoSetup(&cfg, rand.Reader)
		if d != nil || err != nil {
			t.Fatalf("%+v: demo %v err %v", cfg.Listen, d, err)
		}
	}

	// A failing random source is an error, not a weak secret.
	cfg := Config{Listen: "127.0.0.1:0"}
	if _, err := demoSetup(&cfg, bytes.NewReader([]byte{1, 2, 3})); err == nil {
		t.Fatal("short randomness accepted")
	}
}

// serving is a `tiyn serve` running in-process.
type serving struct {
	addr   string
	cancel context.CancelFunc
	done   chan struct{} // closed when serve returned, with err set
	err    error
	stderr *testkit.SyncBuffer
	m      *Main
	aux    map[string]string // auxiliary listeners' addresses by name
}

func startServe(t *testing.T, env map[string]string, args ...string) *serving {
	t.Helper()
	m, _, stderr := testMain(env)
	addrCh := make(chan string, 1)
	m.OnListening = func(addr string) { addrCh <- addr }
	ctx, cancel := context.WithCancel(context.Background())
	s := &serving{cancel: cancel, done: make(chan struct{}), stderr: stderr, m: m, aux: map[string]string{}}
	m.OnAuxListening = func(name, addr string) { s.aux[name] = addr } // before OnListening, on serve's goroutine
	go func() {
		err := m.ParseFlags(ctx, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...))
		if err == nil {
			err = m.Run(ctx)
		}
		if cerr := m.Close(); err == nil {
			err = cerr
		}
		s.err = err
		close(s.done)
	}()
	select {
	case s.addr = <-addrCh:
	case <-s.done:
		cancel()
		t.Fatalf("serve stopped before listening: %v\n%s", s.err, stderr)
	case <-time.After(waitTimeout):
		cancel()
		t.Fatalf("serve did not listen\n%s", stderr)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(waitTimeout):
		}
	})
	return s
}

// stop cancels the context like SIGTERM does and waits for serve to return.
func (s *serving) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case <-s.done:
		if s.err != nil {
			t.Fatalf("serve returned %v\n%s", s.err, s.stderr)
		}
	case <-time.After(waitTimeout):
		t.Fatal("serve did not shut down")
	}
	if _, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
		t.Fatal("still accepting connections after serve returned")
	}
}

func (s *serving) do(t *testing.T, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: waitTimeout}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// doAt sends a request without a body to another listener of the serve.
func (s *serving) doAt(t *testing.T, addr, method, path string) (int, string) {
	t.Helper()
	if addr == "" {
		t.Fatalf("no such listener (have %v)", s.aux)
	}
	req, err := http.NewRequest(method, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: waitTimeout}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// logLines returns the JSON log lines of stderr (the demo block is not JSON).
func logLines(t *testing.T, stderr string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(stderr, "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestServeInProcessDemo(t *testing.T) {
	t.Parallel()
	env := sqliteEnv(t)
	env["TIYN_LOG_FORMAT"] = "json"
	s := startServe(t, env)

	if code, body := s.do(t, http.MethodGet, "/healthz", "", ""); code != http.StatusOK || !strings.Contains(body, `"status":"ok"`) {
		t.Fatalf("healthz %d %s", code, body)
	}
	if code, body := s.do(t, http.MethodGet, "/readyz", "", ""); code != http.StatusOK || !strings.Contains(body, `"status":"ok"`) {
		t.Fatalf("readyz %d %s", code, body)
	}

	// The demo block printed a working token.
	m := regexp.MustCompile(`Authorization: Bearer ([0-9a-f]{32})`).FindStringSubmatch(s.stderr.String())
	if m == nil || !strings.Contains(s.stderr.String(), "http://"+s.addr+"/v1/accounts") {
		t.Fatalf("no demo block with this address:\n%s", s.stderr)
	}
	token := m[1]
	if code, body := s.do(t, http.MethodPost, "/v1/accounts", token, `{"customer_id":"6552"}`); code != http.StatusCreated ||
		!strings.Contains(body, `"customer_id":"6552"`) {
		t.Fatalf("open account with the demo token: %d %s", code, body)
	}
	if code, _ := s.do(t, http.MethodGet, "/v1/accounts?customer_id=6552", "wrong-token-0123456789", ""); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	// The console is served, and asks for the token.
	if code, body := s.do(t, http.MethodGet, "/console/login", "", ""); code != http.StatusOK || !strings.Contains(body, `name="token"`) {
		t.Fatalf("console login page: %d %s", code, body)
	}
	// The Monetix endpoints know the demo project, and nothing else.
	if code, body := s.do(t, http.MethodPost, "/v1/monetix/requests", "", `{"type":"verify","project_id":999,"customer_id":"6552","signature":"x"}`); code != http.StatusOK ||
		!strings.Contains(body, `"code":400`) {
		t.Fatalf("unknown project request: %d %s", code, body)
	}
	code, body := s.do(t, http.MethodGet, "/metrics", "", "")
	if code != http.StatusOK ||
		!strings.Contains(body, `tiyn_http_requests_total{code="201",method="POST",route="/v1/accounts"} 1`) ||
		!strings.Contains(body, "tiyn_db_open_connections") ||
		// Group commit is on by default: the account's open was its one write.
		!strings.Contains(body, "tiyn_group_commit_items_total 1") || !strings.Contains(body, "tiyn_group_commit_batches_total 1") ||
		// SQLite reads no settle view ahead.
		!strings.Contains(body, "tiyn_group_commit_read_ahead_total 0") {
		t.Fatalf("metrics %d:\n%s", code, body)
	}
	// The ledger's figures are not on the public listener.
	for _, private := range []string{"tiyn_exceptions_open", "tiyn_monetix_", "tiyn_credits_total", "tiyn_credited_minor_total"} {
		if strings.Contains(body, private) {
			t.Errorf("the main listener's /metrics shows %s", private)
		}
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline"} {
		if code, _ := s.do(t, http.MethodGet, path, "", ""); code != http.StatusNotFound {
			t.Fatalf("%s on the main listener: %d", path, code)
		}
	}

	s.stop(t)
	lines := logLines(t, s.stderr.String())
	var sawStart, sawAccess, sawStopped bool
	for _, l := range lines {
		raw, _ := json.Marshal(l)
		if strings.Contains(string(raw), token) {
			t.Errorf("a log line holds the token: %s", raw)
		}
		switch l["msg"] {
		case "starting tiyn":
			sawStart = l["demo"] == true && strings.Contains(string(raw), `"monetix_projects":["1234"]`) &&
				strings.Contains(string(raw), `"api_tokens":["demo:operator"]`)
		case "http request":
			if l["route"] == "/v1/accounts" && l["actor"] == "demo" {
				sawAccess = true
			}
		case "stopped":
			sawStopped = true
		}
	}
	if !sawStart || !sawAccess || !sawStopped {
		t.Fatalf("start %v access-with-actor %v stopped %v:\n%s", sawStart, sawAccess, sawStopped, s.stderr)
	}
}

func TestServeConfiguredNoDemo(t *testing.T) {
	t.Parallel()
	env := sqliteEnv(t)
	env["TIYN_LOG_FORMAT"] = "json"
	env["TIYN_API_TOKENS"] = "backoffice:write:" + testTokenSecret
	env["TIYN_PPROF_LISTEN"] = "127.0.0.1:0"
	s := startServe(t, env)
	if strings.Contains(s.stderr.String(), "DEMO SETUP") {
		t.Fatal("demo setup with a token configured")
	}
	if code, _ := s.do(t, http.MethodPost, "/v1/accounts", testTokenSecret, `{"customer_id":"1"}`); code != http.StatusCreated {
		t.Fatalf("configured token refused: %d", code)
	}
	// No Monetix project: the platform is told "unknown project".
	code, body := s.do(t, http.MethodPost, "/v1/monetix/requests", "", `{"type":"verify"}`)
	if code != http.StatusOK || !strings.Contains(body, `"code":400`) || !strings.Contains(body, "unknown project") {
		t.Fatalf("requests without projects: %d %s", code, body)
	}
	code, body = s.do(t, http.MethodPost, "/v1/monetix/callbacks", "", `{}`)
	if code != http.StatusBadRequest || !strings.Contains(body, "unknown project") {
		t.Fatalf("callbacks without projects: %d %s", code, body)
	}
	// pprof is on its own listener, without the command line, and never on
	// the main one.
	for path, want := range map[string]int{"/debug/pprof/": http.StatusOK, "/debug/pprof/heap?debug=1": http.StatusOK,
		"/debug/pprof/cmdline": http.StatusNotFound} {
		if code, _ := s.doAt(t, s.aux["pprof"], http.MethodGet, path); code != want {
			t.Errorf("pprof listener %s: %d, want %d", path, code, want)
		}
		if code, _ := s.do(t, http.MethodGet, path, "", ""); code != http.StatusNotFound {
			t.Errorf("main listener %s: %d, want 404", path, code)
		}
	}
	s.stop(t)
	out := s.stderr.String()
	if strings.Contains(out, testTokenSecret) {
		t.Fatal("the token is in the log")
	}
	if !strings.Contains(out, "no Monetix project configured") {
		t.Fatalf("no warning about the missing projects:\n%s", out)
	}
}

func TestServeRefusesNonLoopbackWithoutCredentials(t *testing.T) {
	t.Parallel()
	m, _, stderr := testMain(sqliteEnv(t))
	code, err := run(t, m, "serve", "--listen", "0.0.0.0:0")
	if code != exitUsage || err == nil {
		t.Fatalf("exit %d err %v", code, err)
	}
	for _, name := range []string{"TIYN_API_TOKENS", "TIYN_MONETIX_PROJECTS", "refusing"} {
		if !strings.Contains(stderr.String(), name) {
			t.Errorf("stderr lacks %q: %s", name, stderr)
		}
	}
	if strings.Contains(stderr.String(), "listening") {
		t.Error("it listened anyway")
	}
}

func TestServeStartErrors(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	m, _, _ := testMain(sqliteEnv(t))
	if code, err := run(t, m, "serve", "--listen", ln.Addr().String()); code != exitError || err == nil ||
		!strings.Contains(err.Error(), "TIYN_LISTEN") {
		t.Fatalf("port taken: exit %d err %v", code, err)
	}

	m, _, _ = testMain(map[string]string{"TIYN_DATABASE_URL": "sqlite:" + t.TempDir() + "/no/such/dir/x.db"})
	if code, err := run(t, m, "serve", "--listen", "127.0.0.1:0"); code != exitError || err == nil ||
		!strings.Contains(err.Error(), "open database") {
		t.Fatalf("bad database: exit %d err %v", code, err)
	}

	m, _, _ = testMain(nil)
	if code, err := run(t, m, "serve", "extra"); code != exitUsage || err == nil {
		t.Fatalf("positional argument: exit %d err %v", code, err)
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:1": true, "127.9.9.9:1": true, "[::1]:1": true, "localhost:1": true,
		"0.0.0.0:1": false, ":1": false, "[::]:1": false, "10.0.0.1:1": false, "myhost:1": false, "garbage": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v", addr, got)
		}
	}
}
