package console_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/console"
	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// Tokens of every test: two operators (four eyes needs two), a read
// token and the back office's write token.
const (
	annaSecret   = "anna-0123456789abcdef0123456789"
	borisSecret  = "boris-0123456789abcdef012345678"
	viewerSecret = "viewer-0123456789abcdef01234567"
	officeSecret = "office-0123456789abcdef01234567"
)

var (
	kassa  = domain.Channel{Provider: "monetix", Method: "kassa24", Project: "42"}
	limits = domain.AmountLimits{MinMinor: 100, MaxMinor: 50_000_000}
)

func tokens(t *testing.T) []rest.Token {
	t.Helper()
	toks, err := rest.ParseTokens("anna:operator:" + annaSecret + ",boris:operator:" + borisSecret +
		",viewer:read:" + viewerSecret + ",office:write:" + officeSecret)
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

// syncBuffer collects logs from concurrent requests.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// clock is a settable clock for session expiry.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// env is one test's world: a ledger over a fresh SQLite file, the console
// in front of it on a loopback test server, and its logs.
type env struct {
	t      *testing.T
	svc    *app.Service
	store  *sqlstore.Store
	srv    *httptest.Server
	logs   *syncBuffer
	clock  *clock
	zone   *time.Location
	handle *console.Console
}

type envOptions struct {
	fourEyes bool
	opts     console.Options
}

func newEnv(t *testing.T, eo envOptions) *env {
	t.Helper()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstore.Options{URL: "sqlite:" + filepath.Join(t.TempDir(), "tiyn.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	svc := app.NewService(store, system.Clock{}, &system.IDs{}, app.WithFourEyes(eo.fourEyes))
	e := &env{t: t, svc: svc, store: store, logs: &syncBuffer{}, clock: &clock{}}
	e.clock.set(time.Now())
	e.zone, err = domain.LoadBusinessZone("")
	if err != nil {
		t.Fatal(err)
	}
	opts := eo.opts
	opts.Tokens = tokens(t)
	opts.FourEyes = eo.fourEyes
	opts.Zone = e.zone
	opts.Logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if opts.Now == nil {
		opts.Now = e.clock.now
	}
	c, err := console.New(svc, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.handle = c
	mux := http.NewServeMux()
	c.Register(mux)
	rest.Register(mux, svc, rest.Options{Tokens: opts.Tokens, Logger: opts.Logger})
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// browser is a cookie-keeping client that does not follow redirects, so a
// test sees every 303, and remembers the last page's CSRF token.
type browser struct {
	t    *testing.T
	e    *env
	c    *http.Client
	csrf string
	lang string // Accept-Language
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return &browser{t: e.t, e: e, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// page is one answer.
type page struct {
	status int
	header http.Header
	body   string
}

func (p page) location() string { return p.header.Get("Location") }

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	if b.lang != "" {
		req.Header.Set("Accept-Language", b.lang)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	p := page{status: resp.StatusCode, header: resp.Header, body: string(body)}
	if m := csrfRE.FindStringSubmatch(p.body); m != nil {
		b.csrf = m[1]
	}
	return p
}

func (b *browser) get(path string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.e.srv.URL+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// post sends a form with the last page's CSRF token, unless the form
// names its own "csrf" (an empty value sends none).
func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	} else if form.Get("csrf") == "" {
		form.Del("csrf")
	}
	req, err := http.NewRequest(http.MethodPost, b.e.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// login logs in with secret and expects to land on the overview.
func (b *browser) login(secret string) {
	b.t.Helper()
	if p := b.get("/console/login"); p.status != http.StatusOK {
		b.t.Fatalf("login page: %d", p.status)
	}
	p := b.post("/console/login", url.Values{"token": {secret}})
	if p.status != http.StatusSeeOther || p.location() != "/console/" {
		b.t.Fatalf("login: %d to %q\n%s", p.status, p.location(), p.body)
	}
}

// follow GETs where a redirect points.
func (b *browser) follow(p page) page {
	b.t.Helper()
	if p.status != http.StatusSeeOther {
		b.t.Fatalf("want a 303, got %d\n%s", p.status, p.body)
	}
	return b.get(p.location())
}

// must fails unless the page has status and every want.
func must(t *testing.T, p page, status int, want ...string) {
	t.Helper()
	if p.status != status {
		t.Fatalf("status %d, want %d\n%s", p.status, status, p.body)
	}
	for _, w := range want {
		if !strings.Contains(p.body, w) {
			t.Fatalf("page lacks %q\n%s", w, p.body)
		}
	}
}

// mustNot fails if the page holds any of bad.
func mustNot(t *testing.T, p page, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(p.body, b) {
			t.Fatalf("page holds %q\n%s", b, p.body)
		}
	}
}

// openAccount opens an account for customer.
func (e *env) openAccount(customer string) domain.Account {
	e.t.Helper()
	res, err := e.svc.OpenAccount(context.Background(), ports.OpenAccount{CustomerID: customer, Currency: domain.KZT, Actor: "test"})
	if err != nil {
		e.t.Fatal(err)
	}
	return res.Account
}

// deposit opens a deposit of minor tiyn for customer.
func (e *env) deposit(customer string, minor int64) domain.Deposit {
	e.t.Helper()
	d, err := e.svc.OpenDeposit(context.Background(), ports.OpenDeposit{Channel: kassa, CustomerID: customer,
		Amount: domain.NewAmount(minor, domain.KZT), Limits: limits})
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// callback settles a payment with a success callback claiming minor.
func (e *env) callback(paymentID, operationID string, minor int64) ports.SettleResult {
	e.t.Helper()
	body := fmt.Sprintf(`{"project_id":42,"payment":{"id":%q,"type":"purchase","status":"success","method":"kassa24","sum":{"amount":%d,"currency":"KZT"}},"operation":{"id":%q,"type":"sale","status":"success"}}`,
		paymentID, minor, operationID)
	res, err := e.svc.SettleDeposit(context.Background(), ports.SettleDeposit{
		Channel: kassa, PaymentID: paymentID, RawBody: body, ReceivedAt: time.Now(), Limits: limits,
		DedupeKey: paymentID + "/" + operationID,
		Outcome: domain.Outcome{Method: "kassa24", Kind: domain.OutcomeSuccess, Status: "success", OperationID: operationID,
			Amount: domain.NewAmount(minor, domain.KZT)},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

// fund opens an account for customer and credits minor to it.
func (e *env) fund(customer string, minor int64) domain.Account {
	e.t.Helper()
	a := e.openAccount(customer)
	d := e.deposit(customer, minor)
	if res := e.callback(d.PaymentID, "op-"+d.PaymentID, minor); res.Effect != domain.EffectCredit {
		e.t.Fatalf("funding %s: %s", customer, res.Effect)
	}
	return a
}

// mismatch makes an amount_mismatch exception: a deposit of depositMinor
// and a success claiming claimMinor.
func (e *env) mismatch(customer string, depositMinor, claimMinor int64) (domain.Deposit, domain.Exception) {
	e.t.Helper()
	d := e.deposit(customer, depositMinor)
	res := e.callback(d.PaymentID, "op-x-"+d.PaymentID, claimMinor)
	if res.Exception == nil || res.Exception.Reason != domain.ReasonAmountMismatch {
		e.t.Fatalf("want an amount_mismatch, got %+v", res)
	}
	return d, *res.Exception
}

func (e *env) balance(accountID string) int64 {
	e.t.Helper()
	a, err := e.svc.Account(context.Background(), accountID)
	if err != nil {
		e.t.Fatal(err)
	}
	return a.Balance().Minor()
}

func (e *env) exception(id string) domain.Exception {
	e.t.Helper()
	x, err := e.svc.Exception(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return x
}
