// Package drills_test holds Tiyn's reliability drills: the real binary,
// built once per test binary, is crashed, starved of its database, shut
// down under load, fed hostile input and trickled at, and every drill then
// proves that nothing the service acknowledged was lost or doubled.
//
// The fast drills (hostile input, slow clients, a short SIGTERM drill and a
// short crash drill on SQLite) run in `make test`. The long ones run only
// when TIYN_DRILLS=full, which `make drills` sets. Everything listens on
// loopback, and every loop is bounded in count and time. Each drill prints
// its figures (t.Log, visible with -v) on a line starting with "FIGURES".
package drills_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tiyn/tiyn/tests/testkit"
)

// Environment of the drills.
const (
	// envDrills set to drillsFull runs the long drills too.
	envDrills  = "TIYN_DRILLS"
	drillsFull = "full"
	// envCI makes a missing PostgreSQL a failure instead of a skip, so
	// coverage cannot vanish silently from a CI run.
	envCI = "CI"
)

// Bounds shared by the drills.
const (
	// readyTimeout bounds how long a started server may take to answer
	// /readyz 200 (a migration on a fresh database included).
	readyTimeout = 30 * time.Second
	// readyPoll is how often /readyz is polled while waiting.
	readyPoll = 20 * time.Millisecond
	// httpTimeout bounds one request the drills send themselves.
	httpTimeout = 10 * time.Second
	// stopTimeout bounds the wait for a signalled server to exit.
	stopTimeout = 60 * time.Second
	// logTailBytes is how much of a server log a failure message quotes.
	logTailBytes = 4 << 10
)

// Credentials of the drills: project 1234 is the one the simulator and the
// corpus sign for; project 5678 exists so that a signature valid for
// another project can be tried.
const (
	projectID      = "1234"
	otherProjectID = "5678"
)

// fullDrills reports whether the long drills were asked for.
func fullDrills() bool { return os.Getenv(envDrills) == drillsFull }

// needFull skips a long drill unless TIYN_DRILLS=full.
func needFull(t *testing.T) {
	t.Helper()
	if !fullDrills() {
		t.Skipf("long drill: set %s=%s (make drills) to run it", envDrills, drillsFull)
	}
}

// parallelIfFast runs the drill beside the other fast drills in `make
// test`; under TIYN_DRILLS=full the heavy drills run one at a time, so
// their figures (latencies, exit times) are their own and two loads on a
// small machine do not push each other past their bounds.
func parallelIfFast(t *testing.T) {
	if !fullDrills() {
		t.Parallel()
	}
}

// pick chooses the fast or the full value of a drill parameter.
func pick[T any](fast, full T) T {
	if fullDrills() {
		return full
	}
	return fast
}

// build is the tiyn binary of these drills, built on first use (without
// -race: the drills' figures are the server's own).
var build testkit.Build

func TestMain(m *testing.M) {
	code := m.Run()
	_ = build.Remove()
	os.Exit(code)
}

// tiynBinary builds ./app/cmd/tiyn once per test binary and returns its
// path. The folder is world-readable so that a server started under
// another user (see dropPrivileges) can run it.
func tiynBinary(t testing.TB) string {
	t.Helper()
	bin, err := build.Path()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// randomHex returns n random bytes as hex.
func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("crypto/rand: %v", err)
	}
	return hex.EncodeToString(b)
}

// creds are one drill's REST tokens and Monetix project secrets.
type creds struct {
	writeToken string
	// operatorToken may also resolve exceptions and change account status.
	operatorToken string
	readToken     string
	secret        []byte // project 1234
	otherSecret   []byte // project 5678
}

func newCreds(t testing.TB) creds {
	return creds{
		writeToken:    "w" + randomHex(t, 16),
		operatorToken: "o" + randomHex(t, 16),
		readToken:     "r" + randomHex(t, 16),
		secret:        []byte("s" + randomHex(t, 16)),
		otherSecret:   []byte("o" + randomHex(t, 16)),
	}
}

// env is the configuration `tiyn serve` reads for these credentials.
func (c creds) env() []string {
	return []string{
		"TIYN_API_TOKENS=drill:write:" + c.writeToken + ",viewer:read:" + c.readToken + ",drill-op:operator:" + c.operatorToken,
		"TIYN_MONETIX_PROJECTS=" + projectID + "=" + string(c.secret) + "," + otherProjectID + "=" + string(c.otherSecret),
	}
}

// freePort returns a loopback address with a port nobody listens on now.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// server is one `tiyn serve` that a drill starts, kills and restarts on the
// same address and database. Its output of every run is appended to one log
// file.
type server struct {
	t       testing.TB
	bin     string
	addr    string
	env     []string
	logPath string
	// prepare, when set, adjusts each command before it starts.
	prepare func(cmd *exec.Cmd)

	mu     sync.Mutex
	proc   *testkit.Process // the last run
	starts int
}

// newServer configures (but does not start) a server on a free loopback
// port with the drill's credentials and database.
func newServer(t testing.TB, dbURL string, c creds, extraEnv ...string) *server {
	t.Helper()
	s := &server{
		t:       t,
		bin:     tiynBinary(t),
		addr:    freePort(t),
		logPath: filepath.Join(t.TempDir(), "serve.log"),
	}
	s.env = append(testkit.CleanEnv(), "TIYN_LISTEN="+s.addr, "TIYN_DATABASE_URL="+dbURL,
		"TIYN_LOG_FORMAT=json", "TIYN_LOG_LEVEL=warn")
	s.env = append(s.env, c.env()...)
	s.env = append(s.env, extraEnv...)
	t.Cleanup(func() {
		if s.running() {
			s.kill()
		}
	})
	return s
}

func (s *server) url() string { return "http://" + s.addr }

// start runs `tiyn serve` without waiting for it to be ready.
func (s *server) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil && !s.proc.Exited() {
		s.t.Fatal("start: the server is still running")
	}
	f, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatalf("open server log: %v", err)
	}
	// The child writes to its own copy of the file; ours is closed once
	// the child has it.
	defer func() { _ = f.Close() }()
	cmd := exec.Command(s.bin, "serve")
	cmd.Env = s.env
	cmd.Stdout, cmd.Stderr = f, f
	if s.prepare != nil {
		s.prepare(cmd)
	}
	proc, err := testkit.Start(cmd)
	if err != nil {
		s.t.Fatalf("start tiyn serve: %v", err)
	}
	s.proc = proc
	s.starts++
}

// last is the last started process (nil before the first start).
func (s *server) last() *testkit.Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// pid is the running server's process id.
func (s *server) pid() int { return s.last().Pid() }

// running reports whether the last started process has not exited.
func (s *server) running() bool {
	p := s.last()
	return p != nil && !p.Exited()
}

// waitReady polls /readyz until it answers 200, the process exits or the
// timeout passes.
func (s *server) waitReady(timeout time.Duration) error {
	p := s.last()
	if p == nil {
		return errors.New("server never started")
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.Done():
			return fmt.Errorf("tiyn serve exited before it was ready (%v); log tail:\n%s", s.exitErr(), s.logTail())
		default:
		}
		if code, _ := s.readyz(); code == http.StatusOK {
			return nil
		}
		time.Sleep(readyPoll)
	}
	return fmt.Errorf("tiyn serve not ready after %s; log tail:\n%s", timeout, s.logTail())
}

// mustReady is waitReady that fails the test.
func (s *server) mustReady() {
	s.t.Helper()
	if err := s.waitReady(readyTimeout); err != nil {
		s.t.Fatal(err)
	}
}

// readyz returns the status of GET /readyz (0 when it could not be asked).
func (s *server) readyz() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url()+"/readyz", nil)
	resp, err := probeClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *server) kill() {
	s.t.Helper()
	if _, err := s.signal(syscall.SIGKILL); err != nil {
		s.t.Fatalf("kill: %v", err)
	}
}

// signal sends sig and waits for the process to exit (SIGKILL after
// stopTimeout, and an error); it returns how long the exit took.
func (s *server) signal(sig syscall.Signal) (time.Duration, error) {
	p := s.last()
	if p == nil {
		return 0, errors.New("server never started")
	}
	return p.Stop(sig, stopTimeout)
}

// exitErr is the last run's exit status (nil for exit code 0, and while
// it runs).
func (s *server) exitErr() error {
	if p := s.last(); p != nil {
		return p.Err()
	}
	return nil
}

// logText is every run's output so far.
func (s *server) logText() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return ""
	}
	return string(b)
}

func (s *server) logTail() string {
	text := s.logText()
	if len(text) > logTailBytes {
		text = "…" + text[len(text)-logTailBytes:]
	}
	return text
}

// checkNoPanic fails the test when any run's output mentions a panic: a
// recovered handler panic is logged as "panic serving request", an
// unrecovered one as the runtime's "panic:" and a goroutine dump.
func (s *server) checkNoPanic(t testing.TB) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(s.logText()))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.Contains(strings.ToLower(line), "panic") || strings.HasPrefix(line, "goroutine ") {
			t.Errorf("server log line %d mentions a panic: %.500s", n, line)
			return
		}
	}
}

// countLog counts the log lines containing substr.
func (s *server) countLog(substr string) int {
	return strings.Count(s.logText(), substr)
}

// probeClient is for the drills' own requests: short timeouts, no
// connection reuse surprises across restarts.
var probeClient = &http.Client{
	Timeout: httpTimeout,
	Transport: &http.Transport{
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     5 * time.Second,
	},
}

// response is one answer: its status, headers and body.
type response struct {
	status int
	header http.Header
	body   []byte
}

// send makes one request; headers are "Name: value" strings.
func send(method, url string, body []byte, headers ...string) (response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), httpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return response{}, err
	}
	if body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// restJSON calls the REST API with a bearer token and decodes a 2xx
// answer into out (when not nil).
func restJSON(s *server, token, method, path string, body any, out any, headers ...string) (int, error) {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return 0, err
		}
		headers = append(headers, "Content-Type: application/json")
	}
	headers = append(headers, "Authorization: Bearer "+token)
	resp, err := send(method, s.url()+path, raw, headers...)
	if err != nil {
		return 0, err
	}
	if resp.status/100 == 2 && out != nil {
		if err := json.Unmarshal(resp.body, out); err != nil {
			return resp.status, fmt.Errorf("%s %s: decode %q: %w", method, path, resp.body, err)
		}
	}
	if resp.status/100 != 2 {
		return resp.status, fmt.Errorf("%s %s: %d %s", method, path, resp.status, bytes.TrimSpace(resp.body))
	}
	return resp.status, nil
}

// ledgerCheck is GET /v1/ledger/check.
type ledgerCheck struct {
	Healthy                bool  `json:"healthy"`
	Transfers              int64 `json:"transfers"`
	UnbalancedTransfers    int64 `json:"unbalanced_transfers"`
	BalanceMismatches      int64 `json:"balance_mismatches"`
	NegativeBalances       int64 `json:"negative_balances"`
	CreditsWithoutDeposit  int64 `json:"credits_without_deposit"`
	SucceededWithoutCredit int64 `json:"succeeded_without_credit"`
	DuplicateCredits       int64 `json:"duplicate_credits"`
	CustomerBalanceTotal   int64 `json:"customer_balance_total_minor"`
	SystemBalanceTotal     int64 `json:"system_balance_total_minor"`
}

// checkLedger reads the ledger check and fails the test unless it is
// healthy.
func checkLedger(t testing.TB, s *server, c creds) ledgerCheck {
	t.Helper()
	var lc ledgerCheck
	if _, err := restJSON(s, c.readToken, http.MethodGet, "/v1/ledger/check", nil, &lc); err != nil {
		t.Fatalf("ledger check: %v", err)
	}
	if !lc.Healthy || lc.DuplicateCredits != 0 || lc.SucceededWithoutCredit != 0 || lc.CreditsWithoutDeposit != 0 ||
		lc.CustomerBalanceTotal+lc.SystemBalanceTotal != 0 {
		t.Fatalf("ledger check not healthy: %+v", lc)
	}
	return lc
}

// statusCounts is tiyn_http_requests_total for one route by status code.
func statusCounts(s *server, route string) (map[string]float64, error) {
	resp, err := send(http.MethodGet, s.url()+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(resp.body))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "tiyn_http_requests_total{") || !strings.Contains(line, `route="`+route+`"`) {
			continue
		}
		i := strings.Index(line, `code="`)
		if i < 0 {
			continue
		}
		code := line[i+6:]
		code = code[:strings.IndexByte(code, '"')]
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			out[code] += v
		}
	}
	return out, nil
}

// formatCounts prints a status count map in a stable order.
func formatCounts(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%.0f", k, m[k])
	}
	return strings.Join(parts, " ")
}

// figures prints one drill's figures on a line that RELIABILITY.md quotes.
func figures(t testing.TB, drill string, kv ...any) {
	t.Helper()
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, " %v=%v", kv[i], kv[i+1])
	}
	t.Logf("FIGURES %s:%s", drill, b.String())
}
