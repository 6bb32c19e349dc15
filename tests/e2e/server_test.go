package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tiyn/tiyn/tests/pgtest"
	"github.com/tiyn/tiyn/tests/testkit"
)

// The configuration every server of the suite runs with. The secrets are
// test keys (they appear in testdata/exchange.txt on purpose).
const (
	// apiToken is the REST bearer token of the tests: an operator, who may
	// do everything (open accounts, debit, resolve, block).
	apiToken = "e2e-write-token-0123456789abcdef"
	// backofficeToken has the write role: accounts and debits, no
	// corrections, no account status.
	backofficeToken = "e2e-backoffice-token-0123456789abcdef"
	// readToken has the read role only.
	readToken = "e2e-read-token-0123456789abcdef"

	// projectPlain: default limits, answers not signed (the default).
	projectPlain = "1234"
	secretPlain  = "e2e-secret-of-project-1234"
	// projectSigned asks for signed verify/check_deposit answers.
	projectSigned = "5678"
	secretSigned  = "e2e-secret-of-project-5678"
	// projectLimited has its own per-payment limits, 10.00–100.00 KZT.
	projectLimited = "9012"
	secretLimited  = "e2e-secret-of-project-9012"
	limitedMin     = 1_000  // tiyn
	limitedMax     = 10_000 // tiyn
)

// Bounds of the harness: every wait ends.
const (
	// StartTimeout bounds the wait for "listening" and for /readyz.
	StartTimeout = 30 * time.Second
	// ReadyPoll is the pause between two /readyz probes.
	ReadyPoll = 25 * time.Millisecond
	// StopTimeout bounds the wait after SIGTERM; SIGKILL follows.
	StopTimeout = 15 * time.Second
	// ShutdownTimeout is the server's own graceful-shutdown bound
	// (TIYN_SHUTDOWN_TIMEOUT), below StopTimeout.
	ShutdownTimeout = "5s"
	// RequestTimeout bounds one HTTP request of the tests.
	RequestTimeout = 20 * time.Second
	// MaxPages bounds the pages a listing helper reads.
	MaxPages = 100
)

// projectsSetting is TIYN_MONETIX_PROJECTS of every server.
var projectsSetting = strings.Join([]string{
	projectPlain + "=" + secretPlain,
	projectSigned + "=" + secretSigned + ";sign_answers=true",
	projectLimited + "=" + secretLimited + ";min=10.00;max=100.00",
}, ",")

// secrets maps the configured project ids to their keys.
var secrets = map[string][]byte{
	projectPlain:   []byte(secretPlain),
	projectSigned:  []byte(secretSigned),
	projectLimited: []byte(secretLimited),
}

// store is one database a server can run on.
type store struct {
	name string
	url  func(t *testing.T) string
}

// stores are the two stores every end-to-end test runs on. PostgreSQL
// comes from tests/pgtest: a fresh migrated database per test, skipped
// only when no server answers (and failed instead when CI is set).
var stores = []store{
	{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "tiyn.db") }},
	{"postgres", func(t *testing.T) string { return pgtest.URL(t) }},
}

// forEachStore runs fn as a parallel subtest per store, each with its own
// freshly started server.
func forEachStore(t *testing.T, fn func(t *testing.T, s *server)) {
	t.Helper()
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			fn(t, startServer(t, st.url(t)))
		})
	}
}

// server is one running `tiyn serve`.
type server struct {
	base   string // http://127.0.0.1:PORT
	dbURL  string
	client *http.Client
	logs   *logSink
}

// startServer starts `tiyn serve` on 127.0.0.1:0 over dbURL (with extra
// settings NAME=VALUE, if any), waits for its "listening" log line and for
// /readyz, and stops it when the test ends: SIGTERM, then SIGKILL after
// StopTimeout. The server's log goes to a file; its tail is shown when the
// test fails.
func startServer(t *testing.T, dbURL string, extraEnv ...string) *server {
	t.Helper()
	logs, err := newLogSink(filepath.Join(t.TempDir(), "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tiynBin, "serve")
	cmd.Env = append(testkit.CleanEnv(),
		"TIYN_LISTEN=127.0.0.1:0",
		"TIYN_DATABASE_URL="+dbURL,
		"TIYN_API_TOKENS=e2e:operator:"+apiToken+",e2e-read:read:"+readToken+",e2e-backoffice:write:"+backofficeToken,
		"TIYN_MONETIX_PROJECTS="+projectsSetting,
		"TIYN_LOG_FORMAT=json",
		"TIYN_LOG_LEVEL=info",
		"TIYN_SHUTDOWN_TIMEOUT="+ShutdownTimeout,
	)
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.Stdout = logs
	cmd.Stderr = logs
	cmd.Dir = t.TempDir()
	testkit.TieToParent(cmd)
	proc, err := testkit.Start(cmd)
	if err != nil {
		t.Fatalf("start tiyn serve: %v", err)
	}

	var exitErr error
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			exitErr = stop(proc)
		}
		if exitErr != nil {
			t.Errorf("tiyn serve did not stop cleanly: %v", exitErr)
		}
		if race := logs.contains("WARNING: DATA RACE"); race {
			t.Errorf("the race detector reported a data race in tiyn serve (log: %s)", logs.path)
		}
		if t.Failed() {
			t.Logf("tiyn serve log (%s), last lines:\n%s", logs.path, logs.tail(25))
		}
		_ = logs.Close()
	})

	var addr string
	select {
	case addr = <-logs.addr:
	case <-proc.Done():
		stopped = true
		t.Fatalf("tiyn serve exited before listening: %v\n%s", proc.Err(), logs.tail(20))
	case <-time.After(StartTimeout):
		t.Fatalf("tiyn serve did not log its address within %s\n%s", StartTimeout, logs.tail(20))
	}
	s := &server{
		base:  "http://" + addr,
		dbURL: dbURL,
		logs:  logs,
		client: &http.Client{
			Timeout: RequestTimeout,
			Transport: &http.Transport{
				Proxy:               nil, // loopback only, never through a proxy
				MaxIdleConnsPerHost: 64,
			},
		},
	}
	t.Cleanup(s.client.CloseIdleConnections)
	if err := testkit.WaitReady(s.client, s.base, StartTimeout, ReadyPoll); err != nil {
		t.Fatalf("tiyn serve: %v", err)
	}
	return s
}

// stop sends SIGTERM and waits for the exit, SIGKILL after StopTimeout.
// A graceful stop exits 0; anything else is returned.
func stop(proc *testkit.Process) error {
	if _, err := proc.Stop(syscall.SIGTERM, StopTimeout); err != nil {
		return err
	}
	return proc.Err()
}

// logSink is the server's stdout and stderr: written to a file, scanned
// for the "listening" line (JSON log) to learn the bound address.
type logSink struct {
	path string
	addr chan string

	mu      sync.Mutex
	f       *os.File
	partial []byte
	found   bool
	lines   []string // the last tailLines lines
}

// tailLines is how many log lines a sink keeps for failure reports.
const tailLines = 200

func newLogSink(path string) (*logSink, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &logSink{path: path, f: f, addr: make(chan string, 1)}, nil
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.Write(p); err != nil {
		return 0, err
	}
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		l.lines = append(l.lines, line)
		if len(l.lines) > tailLines {
			l.lines = l.lines[len(l.lines)-tailLines:]
		}
		if !l.found {
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" && rec.Addr != "" {
				l.found = true
				l.addr <- rec.Addr
			}
		}
	}
	return len(p), nil
}

// tail returns the last n lines seen.
func (l *logSink) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	from := max(0, len(l.lines)-n)
	return strings.Join(l.lines[from:], "\n")
}

// contains reports whether the whole log file contains s.
func (l *logSink) contains(s string) bool {
	b, err := os.ReadFile(l.path)
	return err == nil && bytes.Contains(b, []byte(s))
}

func (l *logSink) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// ---- HTTP ----------------------------------------------------------------

// exchange is one HTTP request and its answer, as sent and received.
type exchange struct {
	Method, Path, ContentType string
	Request                   []byte
	Status                    int
	Header                    http.Header
	Answer                    []byte
}

// send performs one request. It is safe to call from any goroutine: it
// returns errors instead of failing the test.
func (s *server) send(ctx context.Context, method, path, contentType, token string, body []byte) (exchange, error) {
	x := exchange{Method: method, Path: path, ContentType: contentType, Request: body}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, rd)
	if err != nil {
		return x, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return x, err
	}
	defer func() { _ = resp.Body.Close() }()
	x.Status, x.Header = resp.StatusCode, resp.Header
	x.Answer, err = io.ReadAll(resp.Body)
	return x, err
}

// mustSend is send for the test goroutine: any transport error is fatal.
func (s *server) mustSend(t *testing.T, method, path, contentType, token string, body []byte) exchange {
	t.Helper()
	x, err := s.send(context.Background(), method, path, contentType, token, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return x
}

// rest calls the REST API (GETs with the read token, the rest with the
// write token) and decodes a JSON answer into out (when not nil), failing
// unless the status is want.
func (s *server) rest(t *testing.T, method, path string, body any, want int, out any) {
	t.Helper()
	var raw []byte
	ct := ""
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
		ct = "application/json"
	}
	token := apiToken
	if method == http.MethodGet {
		token = readToken // reads work with the read role
	}
	x := s.mustSend(t, method, path, ct, token, raw)
	if x.Status != want {
		t.Fatalf("%s %s: HTTP %d, want %d: %s", method, path, x.Status, want, x.Answer)
	}
	if out != nil {
		if err := json.Unmarshal(x.Answer, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, x.Answer, err)
		}
	}
}

// ---- REST shapes (the parts the tests read) ------------------------------

type accountJSON struct {
	ID                   string  `json:"id"`
	CustomerID           string  `json:"customer_id"`
	AdditionalCustomerID *string `json:"additional_customer_id"`
	Currency             string  `json:"currency"`
	Status               string  `json:"status"`
	BalanceMinor         int64   `json:"balance_minor"`
	Balance              string  `json:"balance"`
}

type depositJSON struct {
	ID          string  `json:"id"`
	PaymentID   string  `json:"payment_id"`
	Project     string  `json:"project"`
	Method      string  `json:"method"`
	CustomerID  string  `json:"customer_id"`
	AmountMinor int64   `json:"amount_minor"`
	Currency    string  `json:"currency"`
	Status      string  `json:"status"`
	OperationID *string `json:"operation_id"`
}

type callbackJSON struct {
	ID          int64   `json:"id"`
	Project     string  `json:"project"`
	PaymentID   string  `json:"payment_id"`
	OperationID *string `json:"operation_id"`
	Status      string  `json:"status"`
	Outcome     string  `json:"outcome"`
	Source      string  `json:"source"`
	ExceptionID *string `json:"exception_id"`
	Body        string  `json:"body"`
}

type exceptionJSON struct {
	ID          string  `json:"id"`
	Status      string  `json:"status"`
	Reason      string  `json:"reason"`
	Project     string  `json:"project"`
	PaymentID   string  `json:"payment_id"`
	OperationID *string `json:"operation_id"`
	AmountMinor int64   `json:"amount_minor"`
	Evidence    string  `json:"evidence"`
}

type ledgerCheckJSON struct {
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

type page[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// openAccount opens a KZT account through POST /v1/accounts.
func (s *server) openAccount(t *testing.T, customerID, additional string) accountJSON {
	t.Helper()
	body := map[string]any{"customer_id": customerID, "currency": "KZT"}
	if additional != "" {
		body["additional_customer_id"] = additional
	}
	var a accountJSON
	s.rest(t, http.MethodPost, "/v1/accounts", body, http.StatusCreated, &a)
	if a.CustomerID != customerID || a.Status != "active" || a.BalanceMinor != 0 {
		t.Fatalf("opened account %+v, want an active empty account of %s", a, customerID)
	}
	return a
}

// account reads a customer's KZT account through the REST API.
func (s *server) account(t *testing.T, customerID string) accountJSON {
	t.Helper()
	var a accountJSON
	s.rest(t, http.MethodGet, "/v1/accounts?currency=KZT&customer_id="+url.QueryEscape(customerID), nil, http.StatusOK, &a)
	return a
}

// balance is a customer's balance in tiyn, read through the REST API.
func (s *server) balance(t *testing.T, customerID string) int64 {
	t.Helper()
	return s.account(t, customerID).BalanceMinor
}

// deposit reads GET /v1/deposits/{payment_id}.
func (s *server) deposit(t *testing.T, paymentID string) depositJSON {
	t.Helper()
	var d depositJSON
	s.rest(t, http.MethodGet, "/v1/deposits/"+url.PathEscape(paymentID), nil, http.StatusOK, &d)
	return d
}

// listAll pages through a REST list (path has its own query, or none).
func listAll[T any](t *testing.T, s *server, path string) []T {
	t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	var all []T
	cursor := ""
	for range MaxPages {
		p := path + sep + "limit=1000"
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		var pg page[T]
		s.rest(t, http.MethodGet, p, nil, http.StatusOK, &pg)
		all = append(all, pg.Items...)
		if pg.NextCursor == nil {
			return all
		}
		cursor = *pg.NextCursor
	}
	t.Fatalf("%s: more than %d pages", path, MaxPages)
	return nil
}

// callbacks lists the inbox (GET /v1/callbacks), for one payment id or, with
// "", all of it.
func (s *server) callbacks(t *testing.T, paymentID string) []callbackJSON {
	t.Helper()
	path := "/v1/callbacks"
	if paymentID != "" {
		path += "?payment_id=" + url.QueryEscape(paymentID)
	}
	return listAll[callbackJSON](t, s, path)
}

// exceptions lists every exception, open or resolved.
func (s *server) exceptions(t *testing.T) []exceptionJSON {
	t.Helper()
	return listAll[exceptionJSON](t, s, "/v1/exceptions?status=all")
}

// ledgerCheck reads GET /v1/ledger/check.
func (s *server) ledgerCheck(t *testing.T) ledgerCheckJSON {
	t.Helper()
	var c ledgerCheckJSON
	s.rest(t, http.MethodGet, "/v1/ledger/check", nil, http.StatusOK, &c)
	return c
}

// requireHealthy fails unless the ledger check reports every invariant.
func requireHealthy(t *testing.T, s *server) ledgerCheckJSON {
	t.Helper()
	c := s.ledgerCheck(t)
	if !c.Healthy || c.DuplicateCredits != 0 || c.UnbalancedTransfers != 0 || c.BalanceMismatches != 0 ||
		c.CreditsWithoutDeposit != 0 || c.SucceededWithoutCredit != 0 || c.NegativeBalances != 0 ||
		c.CustomerBalanceTotal+c.SystemBalanceTotal != 0 {
		t.Fatalf("ledger check not healthy: %+v", c)
	}
	return c
}

// lineScanner splits b into lines (for the exchange file).
func lineScanner(b []byte) *bufio.Scanner {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	return sc
}
