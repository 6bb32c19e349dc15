// Package browser_test drives the operator console in a real browser:
// Debian's chromium, headless, driven over the DevTools protocol with
// chromedp, against the real tiyn binary serving on 127.0.0.1. It logs in,
// finds an account and reads its statement, resolves an exception by
// credit under four eyes (one operator proposes, another approves, the
// balance moves once), switches to Russian, and fails on any error the
// page's console reports (a script error, a refused resource, a CSP
// violation). Each page is photographed (see screenshotDir).
//
// Without a browser the tests skip, except when CI is set, where they fail:
// .ci/run installs chromium.
package browser_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/tests/testkit"
)

// Bounds of the harness.
const (
	startTimeout   = 60 * time.Second
	stopTimeout    = 15 * time.Second
	requestTimeout = 20 * time.Second
	// flowTimeout bounds one flow in the browser (chromium's start, every
	// page and every wait).
	flowTimeout = 3 * time.Minute
)

// Tokens and the project of the server under test.
const (
	annaToken   = "anna-browser-token-0123456789abcdef"
	borisToken  = "boris-browser-token-0123456789abcdef"
	viewerToken = "viewer-browser-token-0123456789abcdef"
	project     = "4242"
	secret      = "browser-test-secret-of-project-4242"
)

// envBrowser names another browser binary (default: chromium on PATH,
// then /usr/bin/chromium).
const envBrowser = "TIYN_BROWSER"

// envScreenshots names the folder the screenshots go to: `make
// screenshots` sets docs/screenshots (the committed ones the README
// shows); by default they go to .tmp/screenshots, so a test run leaves the
// tracked files alone.
const envScreenshots = "TIYN_SCREENSHOTS"

var build = testkit.Build{Race: testkit.RaceEnabled}

func TestMain(m *testing.M) {
	code := m.Run()
	_ = build.Remove()
	os.Exit(code)
}

// browserPath finds chromium, or skips (fails under CI).
func browserPath(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv(envBrowser), "chromium", "chromium-browser", "/usr/bin/chromium"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("no browser: install chromium (apt-get install -y chromium; .ci/run does) or set %s", envBrowser)
	}
	t.Skipf("no browser (chromium) on this machine: skipped; set CI to make this a failure")
	return ""
}

// screenshotDir is where the screenshots go.
func screenshotDir(t *testing.T) string {
	t.Helper()
	root, err := testkit.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv(envScreenshots)
	if dir == "" {
		dir = filepath.Join(".tmp", "screenshots")
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(root, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// server is one running `tiyn serve`.
type server struct {
	base   string
	client *http.Client
	log    *lockedBuffer
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServer runs tiyn serve on 127.0.0.1:0 over a fresh SQLite file
// with four eyes on, waits for /readyz, and stops it when the test ends.
func startServer(t *testing.T) *server {
	t.Helper()
	bin, err := build.Path()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(bin, "serve")
	cmd.Dir = dir
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TIYN_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env,
		"TIYN_LISTEN=127.0.0.1:0",
		"TIYN_DATABASE_URL=sqlite:"+filepath.Join(dir, "tiyn.db"),
		"TIYN_API_TOKENS=anna:operator:"+annaToken+",boris:operator:"+borisToken+",viewer:read:"+viewerToken,
		"TIYN_MONETIX_PROJECTS="+project+"="+secret,
		"TIYN_FOUR_EYES=true",
		"TIYN_STATUS_POLL=false",
		"TIYN_LOG_FORMAT=json",
	)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	cmd.Stdout = logs
	testkit.TieToParent(cmd)
	proc, err := testkit.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			_, _ = logs.Write([]byte(line + "\n"))
			if sent || !strings.Contains(line, `"msg":"listening"`) {
				continue
			}
			var rec struct{ Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Addr != "" {
				addrCh <- rec.Addr
				sent = true
			}
		}
	}()
	t.Cleanup(func() {
		if _, err := proc.Stop(syscall.SIGTERM, stopTimeout); err != nil {
			t.Errorf("tiyn serve: %v", err)
		} else if err := proc.Err(); err != nil {
			t.Errorf("tiyn serve exited with %v", err)
		}
		if strings.Contains(logs.String(), "WARNING: DATA RACE") {
			t.Errorf("a data race in tiyn serve:\n%s", logs.String())
		}
		if t.Failed() {
			t.Logf("tiyn serve log:\n%s", tail(logs.String(), 40))
		}
	})
	var addr string
	select {
	case addr = <-addrCh:
	case <-proc.Done():
		t.Fatalf("tiyn serve exited: %v\n%s", proc.Err(), logs.String())
	case <-time.After(startTimeout):
		t.Fatalf("tiyn serve did not listen within %s\n%s", startTimeout, logs.String())
	}
	s := &server{base: "http://" + addr, log: logs,
		client: &http.Client{Timeout: requestTimeout, Transport: &http.Transport{Proxy: nil}}}
	t.Cleanup(s.client.CloseIdleConnections)
	if err := testkit.WaitReady(s.client, s.base, startTimeout, 50*time.Millisecond); err != nil {
		t.Fatalf("tiyn serve: %v", err)
	}
	return s
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// do sends one request and decodes a JSON answer into out (when not nil).
func (s *server) do(t *testing.T, method, path, token, contentType string, body []byte, header map[string]string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

// account is what the tests read of an account.
type account struct {
	ID           string `json:"id"`
	CustomerID   string `json:"customer_id"`
	BalanceMinor int64  `json:"balance_minor"`
}

func (s *server) openAccount(t *testing.T, customer string) account {
	t.Helper()
	var a account
	if st := s.do(t, http.MethodPost, "/v1/accounts", annaToken, "application/json",
		[]byte(fmt.Sprintf(`{"customer_id":%q}`, customer)), nil, &a); st != http.StatusCreated {
		t.Fatalf("open account %s: %d", customer, st)
	}
	return a
}

// accountOf finds a customer's account.
func (s *server) accountOf(t *testing.T, customer string) account {
	t.Helper()
	var a account
	if st := s.do(t, http.MethodGet, "/v1/accounts?customer_id="+customer, viewerToken, "", nil, nil, &a); st != http.StatusOK {
		t.Fatalf("account of %s: %d", customer, st)
	}
	return a
}

func (s *server) account(t *testing.T, id string) account {
	t.Helper()
	var a account
	if st := s.do(t, http.MethodGet, "/v1/accounts/"+id, viewerToken, "", nil, nil, &a); st != http.StatusOK {
		t.Fatalf("account %s: %d", id, st)
	}
	return a
}

// checkDeposit opens a deposit through a signed check_deposit.
func (s *server) checkDeposit(t *testing.T, customer string, minor int64) string {
	t.Helper()
	body, err := monetix.SignedJSON([]byte(secret), monetix.CheckDepositRequestBody(project, customer, minor, "KZT", "kassa24"))
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		Code      int    `json:"code"`
		PaymentID string `json:"payment_id"`
	}
	if st := s.do(t, http.MethodPost, monetix.RequestsPath, "", "application/json", body, nil, &answer); st != http.StatusOK ||
		answer.Code != 0 || answer.PaymentID == "" {
		t.Fatalf("check_deposit: %d %+v", st, answer)
	}
	return answer.PaymentID
}

// callback sends a signed success callback claiming minor.
func (s *server) callback(t *testing.T, paymentID, customer string, operationID, minor int64) {
	t.Helper()
	body, err := monetix.SignedJSON([]byte(secret), monetix.BuildCallback(monetix.CallbackParams{
		ProjectID: project, PaymentID: paymentID, PaymentStatus: "success", Method: "kassa24",
		AmountMinor: minor, Currency: "KZT", CustomerID: customer, OperationID: operationID,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if st := s.do(t, http.MethodPost, monetix.CallbacksPath, "", "application/json", body, nil, nil); st != http.StatusOK {
		t.Fatalf("callback %s: %d", paymentID, st)
	}
}

// debit spends from an account through REST.
func (s *server) debit(t *testing.T, accountID string, amount, description, key string) {
	t.Helper()
	body := []byte(fmt.Sprintf(`{"amount":%q,"description":%q}`, amount, description))
	if st := s.do(t, http.MethodPost, "/v1/accounts/"+accountID+"/debits", annaToken, "application/json", body,
		map[string]string{"Idempotency-Key": key}, nil); st != http.StatusCreated && st != http.StatusOK {
		t.Fatalf("debit: %d", st)
	}
}
