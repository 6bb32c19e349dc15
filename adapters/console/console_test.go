package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/console"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

func TestLoginLogout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	b := e.browser()

	// No session: every page goes to the login page, with the way back.
	p := b.get("/console/accounts?customer_id=42")
	if p.status != http.StatusSeeOther || p.location() != "/console/login?next="+url.QueryEscape("/console/accounts?customer_id=42") {
		t.Fatalf("no session: %d to %q", p.status, p.location())
	}
	if p := b.get("/console"); p.status != http.StatusSeeOther || p.location() != "/console/" {
		t.Fatalf("/console: %d to %q", p.status, p.location())
	}

	// A wrong token: 401, no session, and the token never in a log.
	must(t, b.get("/console/login"), http.StatusOK, `name="token"`, `type="password"`)
	wrong := "not-a-token-but-long-enough-0123"
	p = b.post("/console/login", url.Values{"token": {wrong}})
	must(t, p, http.StatusUnauthorized, "This token is not valid.")
	if ck := p.header.Values("Set-Cookie"); strings.Contains(strings.Join(ck, ";"), "tiyn_session=") {
		t.Fatalf("a refused login set a session cookie: %q", ck)
	}
	if p := b.get("/console/"); p.status != http.StatusSeeOther {
		t.Fatalf("after a refused login: %d", p.status)
	}

	// The right token: a session cookie with every attribute.
	b.get("/console/login")
	p = b.post("/console/login", url.Values{"token": {viewerSecret}, "next": {"/console/deposits?status=pending"}})
	if p.status != http.StatusSeeOther || p.location() != "/console/deposits?status=pending" {
		t.Fatalf("login with next: %d to %q", p.status, p.location())
	}
	var session *http.Cookie
	for _, ck := range (&http.Response{Header: p.header}).Cookies() {
		if ck.Name == "tiyn_session" {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/console" || session.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/console, not Secure on loopback", session)
	}
	must(t, b.get("/console/"), http.StatusOK, "Today at a glance", "viewer (read only)")

	// Logout ends the session on the server: the old cookie is dead.
	p = b.post("/console/logout", nil)
	if p.status != http.StatusSeeOther || p.location() != "/console/login?bye=1" {
		t.Fatalf("logout: %d to %q", p.status, p.location())
	}
	must(t, b.get("/console/login?bye=1"), http.StatusOK, "You are logged out.")
	replay := e.browser()
	u, _ := url.Parse(e.srv.URL + "/console/")
	replay.c.Jar.SetCookies(u, []*http.Cookie{{Name: "tiyn_session", Value: session.Value, Path: "/console"}})
	if p := replay.get("/console/"); p.status != http.StatusSeeOther {
		t.Fatalf("the cookie of a logged-out session still works: %d", p.status)
	}

	for _, secret := range []string{viewerSecret, wrong, annaSecret} {
		if strings.Contains(e.logs.String(), secret) {
			t.Fatalf("a token is in the log:\n%s", e.logs.String())
		}
	}
	if !strings.Contains(e.logs.String(), "console: login refused") || !strings.Contains(e.logs.String(), "actor=viewer") {
		t.Fatalf("logins are not logged:\n%s", e.logs.String())
	}
}

func TestLoginFormProtection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})

	// Without the login form's token (another site posting a token of its
	// choosing): refused.
	b := e.browser()
	p := b.post("/console/login", url.Values{"token": {annaSecret}, "csrf": {""}})
	must(t, p, http.StatusForbidden, "The login form expired")
	b.get("/console/login")
	p = b.post("/console/login", url.Values{"token": {annaSecret}, "csrf": {"forged-value"}})
	must(t, p, http.StatusForbidden, "The login form expired")

	// A cross-site post, whatever it carries.
	b.get("/console/login")
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/console/login",
		strings.NewReader(url.Values{"token": {annaSecret}, "csrf": {b.csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	must(t, b.do(req), http.StatusForbidden, "sent from another site")

	// An open redirect through next is not followed.
	b.get("/console/login")
	for _, next := range []string{"https://evil.example/", "//evil.example/x", "/console/../v1/accounts", "/\\evil.example", "javascript:alert(1)"} {
		b := e.browser()
		b.get("/console/login")
		p := b.post("/console/login", url.Values{"token": {annaSecret}, "next": {next}})
		if p.status != http.StatusSeeOther || p.location() != "/console/" {
			t.Fatalf("next %q: %d to %q", next, p.status, p.location())
		}
	}
}

func TestSecureCookieOffLoopback(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	mux := http.NewServeMux()
	e.handle.Register(mux)
	// The login form as served on a public name: the cookie is Secure.
	req := httptest.NewRequest(http.MethodGet, "http://console.example.kz/console/login", nil)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	cks := rec.Result().Cookies()
	if len(cks) != 1 || !cks[0].Secure || !cks[0].HttpOnly || cks[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookies off loopback: %+v", cks)
	}
	csrf := csrfRE.FindStringSubmatch(rec.Body.String())[1]
	form := url.Values{"token": {annaSecret}, "csrf": {csrf}}
	req = httptest.NewRequest(http.MethodPost, "http://console.example.kz/console/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(cks[0])
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	var session *http.Cookie
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == "tiyn_session" {
			session = ck
		}
	}
	if rec.Code != http.StatusSeeOther || session == nil || !session.Secure {
		t.Fatalf("login off loopback: %d, %+v", rec.Code, session)
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	b := e.browser()
	b.login(annaSecret)
	for _, path := range []string{"/console/login", "/console/", "/console/accounts", "/console/deposits", "/console/exceptions",
		"/console/nope", "/console/static/console.css", "/console/accounts/acc_missing"} {
		p := b.get(path)
		h := p.header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'none'", "frame-ancestors 'none'", "object-src 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				t.Fatalf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "same-origin" || h.Get("X-Frame-Options") != "DENY" {
			t.Fatalf("%s: headers %v", path, h)
		}
	}
	// Nothing on any page is loaded from another host, and no page has a
	// script or an inline style.
	for _, path := range []string{"/console/login", "/console/", "/console/accounts", "/console/deposits", "/console/exceptions"} {
		p := b.get(path)
		mustNot(t, p, "<script", "style=", "http://", "https://")
		if m := regexp.MustCompile(`\son[a-z]+\s*=`).FindString(p.body); m != "" {
			t.Fatalf("%s: an event handler attribute %q", path, m)
		}
	}
	if p := b.get("/console/static/../console.go"); p.status == http.StatusOK {
		t.Fatalf("a static path escaped: %d", p.status)
	}
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{opts: console.Options{IdleTimeout: 10 * time.Minute, MaxAge: time.Hour}})
	b := e.browser()
	b.login(annaSecret)
	must(t, b.get("/console/"), http.StatusOK)
	// Used every 9 minutes it stays alive, until an hour after login.
	for range 6 {
		e.clock.advance(9 * time.Minute)
		must(t, b.get("/console/accounts"), http.StatusOK)
	}
	e.clock.advance(7 * time.Minute) // 61 minutes after login
	if p := b.get("/console/accounts"); p.status != http.StatusSeeOther {
		t.Fatalf("a session past its max age: %d", p.status)
	}
	// Idle for longer than the idle timeout.
	b.login(annaSecret)
	e.clock.advance(10 * time.Minute)
	if p := b.get("/console/"); p.status != http.StatusSeeOther {
		t.Fatalf("an idle session: %d", p.status)
	}
	// A form posted by an expired session is refused, not run.
	e.fund("c-1", 10_000)
	b.login(annaSecret)
	acc := e.openAccount("c-2")
	b.get("/console/accounts/" + acc.ID())
	e.clock.advance(11 * time.Minute)
	p := b.post("/console/accounts/"+acc.ID()+"/status", url.Values{"to": {"blocked"}, "confirm": {"yes"}})
	must(t, p, http.StatusForbidden, "Your session has ended")
	if a, _ := e.svc.Account(context.Background(), acc.ID()); a.Status() != domain.AccountActive {
		t.Fatalf("an expired session blocked an account")
	}
}

func TestSessionTableBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{opts: console.Options{MaxSessions: 3}})
	var browsers []*browser
	for range 5 {
		b := e.browser()
		b.login(viewerSecret)
		browsers = append(browsers, b)
		e.clock.advance(time.Second)
	}
	// The two least recently used were dropped; the last three live.
	for i, b := range browsers {
		p := b.get("/console/")
		if live := p.status == http.StatusOK; live != (i >= 2) {
			t.Fatalf("session %d: status %d", i, p.status)
		}
	}
}

func TestHostileInputShownAsText(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	hostile := `<script>alert("x")</script><img src=x onerror=alert(1)>`
	acc := e.fund(hostile, 50_000)
	if _, err := e.svc.Debit(context.Background(), ports.Debit{AccountID: acc.ID(), Amount: domain.NewAmount(1_000, domain.KZT),
		Description: `<b onmouseover="alert(2)">coffee</b>`, IdempotencyKey: "k-1", RequestHash: "h", Actor: "office"}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.login(annaSecret)
	pages := []page{
		b.follow(b.get("/console/accounts?customer_id=" + url.QueryEscape(hostile))),
		b.get("/console/accounts"),
		b.get("/console/deposits?customer_id=" + url.QueryEscape(hostile)),
		b.get("/console/accounts?customer_id=" + url.QueryEscape(`<script>nope</script>`)),
	}
	for i, p := range pages {
		if p.status != http.StatusOK && p.status != http.StatusNotFound {
			t.Fatalf("page %d: %d", i, p.status)
		}
		mustNot(t, p, "<script>", "<img src=x", "<b onmouseover")
	}
	must(t, pages[0], http.StatusOK, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;", "&lt;b onmouseover=&#34;alert(2)&#34;&gt;coffee&lt;/b&gt;")
	must(t, pages[3], http.StatusNotFound, "No account for customer &lt;script&gt;nope&lt;/script&gt;.")
	// A hostile payment id in a path is a 404 page, escaped.
	p := b.get("/console/deposits/" + url.PathEscape(`<svg onload=alert(1)>`))
	must(t, p, http.StatusNotFound)
	mustNot(t, p, "<svg onload")
}

func TestFormsNeedTheirCSRFToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	acc := e.openAccount("c-1")
	_, x := e.mismatch("c-1", 10_000, 9_000)
	b := e.browser()
	b.login(annaSecret)
	b.get("/console/exceptions/" + x.ID)
	good := b.csrf
	for name, csrf := range map[string]string{"without": "", "wrong": "0" + good[1:], "another session's": ""} {
		form := url.Values{"action": {"credit"}, "note": {"paid"}, "confirm": {"yes"}, "csrf": {csrf}}
		if name == "another session's" {
			other := e.browser()
			other.login(borisSecret)
			form.Set("csrf", other.csrf)
		}
		p := b.post("/console/exceptions/"+x.ID+"/resolve", form)
		must(t, p, http.StatusForbidden, "This form is out of date")
		p = b.post("/console/accounts/"+acc.ID()+"/status", url.Values{"to": {"blocked"}, "confirm": {"yes"}, "csrf": {form.Get("csrf")}})
		must(t, p, http.StatusForbidden, "This form is out of date")
		p = b.post("/console/logout", url.Values{"csrf": {form.Get("csrf")}})
		must(t, p, http.StatusForbidden)
	}
	if got := e.exception(x.ID); got.State != domain.ExceptionOpen || e.balance(acc.ID()) != 0 {
		t.Fatalf("a form without its CSRF token acted: %s, balance %d", got.State, e.balance(acc.ID()))
	}
	if a, _ := e.svc.Account(context.Background(), acc.ID()); a.Status() != domain.AccountActive {
		t.Fatal("a form without its CSRF token blocked the account")
	}
	// The same session still works with its token.
	must(t, b.get("/console/"), http.StatusOK)
	// A cross-site form with the right token is refused too.
	b.get("/console/exceptions/" + x.ID)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/console/exceptions/"+x.ID+"/resolve",
		strings.NewReader(url.Values{"action": {"dismiss"}, "note": {"n"}, "csrf": {b.csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	must(t, b.do(req), http.StatusForbidden)
	if got := e.exception(x.ID); got.State != domain.ExceptionOpen {
		t.Fatalf("a cross-site form dismissed the exception")
	}
}

func TestReadAndWriteTokensCannotAct(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	acc := e.openAccount("c-1")
	_, x := e.mismatch("c-1", 10_000, 9_000)
	for _, secret := range []string{viewerSecret, officeSecret} {
		b := e.browser()
		b.login(secret)
		// Everything is visible, no action is offered.
		p := b.get("/console/exceptions/" + x.ID)
		must(t, p, http.StatusOK, "amount mismatch")
		mustNot(t, p, `/resolve"`, `/approve"`)
		p = b.get("/console/accounts/" + acc.ID())
		must(t, p, http.StatusOK)
		mustNot(t, p, "status?to=")
		must(t, b.get("/console/accounts/"+acc.ID()+"/status?to=blocked"), http.StatusForbidden, "an operator token is needed")
		// And a post with the session's own CSRF token is refused.
		for _, form := range []struct {
			path string
			v    url.Values
		}{
			{"/console/exceptions/" + x.ID + "/resolve", url.Values{"action": {"credit"}, "note": {"n"}, "confirm": {"yes"}}},
			{"/console/exceptions/" + x.ID + "/resolve", url.Values{"action": {"dismiss"}, "note": {"n"}}},
			{"/console/accounts/" + acc.ID() + "/status", url.Values{"to": {"blocked"}, "confirm": {"yes"}}},
		} {
			must(t, b.post(form.path, form.v), http.StatusForbidden, "an operator token is needed")
		}
		// Logout is for everyone.
		if p := b.post("/console/logout", nil); p.status != http.StatusSeeOther {
			t.Fatalf("logout: %d", p.status)
		}
	}
	if got := e.exception(x.ID); got.State != domain.ExceptionOpen || e.balance(acc.ID()) != 0 {
		t.Fatalf("a read or write token acted")
	}
}

func TestCreditWithConfirmation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	acc := e.openAccount("c-1")
	d, x := e.mismatch("c-1", 50_000, 60_000) // check_deposit 500.00, success claiming 600.00
	b := e.browser()
	b.login(annaSecret)
	p := b.get("/console/exceptions/" + x.ID)
	must(t, p, http.StatusOK, "amount mismatch", "600.00\u00a0KZT", "500.00\u00a0KZT", `class="differs"`, "differs</mark>",
		`value="600.00"`, "Review the credit", "Dismiss the exception")

	// Above the evidence: refused with the bound, nothing moves.
	p = b.follow(b.post("/console/exceptions/"+x.ID+"/resolve", url.Values{"action": {"credit"}, "amount": {"600.01"}, "note": {"n"}}))
	must(t, p, http.StatusOK, "The credit exceeds its evidence: at most 600.00")
	// No note: refused.
	p = b.follow(b.post("/console/exceptions/"+x.ID+"/resolve", url.Values{"action": {"credit"}, "note": {"  "}}))
	must(t, p, http.StatusOK, "A note is required")
	// A credit is confirmed first: the confirmation moves nothing.
	p = b.post("/console/exceptions/"+x.ID+"/resolve", url.Values{"action": {"credit"}, "amount": {"500.00"}, "note": {"cash counted: 500"}})
	must(t, p, http.StatusOK, "Confirm the credit", "500.00\u00a0KZT", `name="confirm" value="yes"`)
	if e.balance(acc.ID()) != 0 {
		t.Fatal("the confirmation step moved money")
	}
	p = b.follow(b.post("/console/exceptions/"+x.ID+"/resolve", url.Values{"action": {"credit"}, "amount": {"500.00"},
		"note": {"cash counted: 500"}, "confirm": {"yes"}}))
	must(t, p, http.StatusOK, "500.00\u00a0KZT credited.", "anna credited")
	if got := e.balance(acc.ID()); got != 50_000 {
		t.Fatalf("balance %d, want 50000", got)
	}
	// Again: the ledger refuses, the balance holds.
	p = b.follow(b.post("/console/exceptions/"+x.ID+"/resolve", url.Values{"action": {"credit"}, "note": {"again"}, "confirm": {"yes"}}))
	must(t, p, http.StatusOK, "flash-err")
	// The platform's correct success later is a replay or an exception, never a second credit.
	e.callback(d.PaymentID, "op-late", 50_000)
	if got := e.balance(acc.ID()); got != 50_000 {
		t.Fatalf("a late callback credited again: %d", got)
	}
}

func TestFourEyes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{fourEyes: true})
	acc := e.openAccount("c-1")
	_, x := e.mismatch("c-1", 50_000, 45_000)
	anna, boris := e.browser(), e.browser()
	anna.login(annaSecret)
	boris.login(borisSecret)

	p := anna.get("/console/exceptions/" + x.ID)
	must(t, p, http.StatusOK, "Propose a credit", "Four eyes are on")
	p = anna.follow(anna.post("/console/exceptions/"+x.ID+"/resolve", url.Values{"action": {"credit"}, "note": {"the customer paid 450"}}))
	must(t, p, http.StatusOK, "Credit of 450.00\u00a0KZT proposed", "anna proposed on", "You proposed this credit")
	mustNot(t, p, `/approve"`)
	if e.balance(acc.ID()) != 0 {
		t.Fatal("a proposal moved money")
	}
	// The proposer cannot approve, even by posting the form.
	p = anna.follow(anna.post("/console/exceptions/"+x.ID+"/approve", nil))
	must(t, p, http.StatusOK, "You proposed this credit; another operator must approve it.")
	if got := e.exception(x.ID); got.State != domain.ExceptionProposed || e.balance(acc.ID()) != 0 {
		t.Fatalf("self approval: %s, balance %d", got.State, e.balance(acc.ID()))
	}
	// The queue shows who proposed.
	must(t, boris.get("/console/exceptions?status=proposed"), http.StatusOK, "<td>anna</td>")
	// Another operator sees the proposal with its proposer, and approves.
	p = boris.get("/console/exceptions/" + x.ID)
	must(t, p, http.StatusOK, "anna proposed on", "Approve and credit", "Reject")
	p = boris.follow(boris.post("/console/exceptions/"+x.ID+"/approve", url.Values{"note": {"checked"}}))
	must(t, p, http.StatusOK, "Approved: 450.00\u00a0KZT credited.", "boris credited")
	if got := e.balance(acc.ID()); got != 45_000 {
		t.Fatalf("balance %d, want 45000", got)
	}
	// Approving twice moves nothing more.
	p = boris.follow(boris.post("/console/exceptions/"+x.ID+"/approve", nil))
	must(t, p, http.StatusOK, "no longer in a state")
	if got := e.balance(acc.ID()); got != 45_000 {
		t.Fatalf("a second approval moved the balance to %d", got)
	}

	// Rejection needs a note and reopens the exception.
	_, y := e.mismatch("c-1", 10_000, 9_000)
	anna.get("/console/exceptions/" + y.ID)
	anna.post("/console/exceptions/"+y.ID+"/resolve", url.Values{"action": {"credit"}, "note": {"n"}})
	boris.get("/console/exceptions/" + y.ID)
	p = boris.follow(boris.post("/console/exceptions/"+y.ID+"/reject", url.Values{"note": {""}}))
	must(t, p, http.StatusOK, "A note is required")
	p = boris.follow(boris.post("/console/exceptions/"+y.ID+"/reject", url.Values{"note": {"not confirmed by the platform"}}))
	must(t, p, http.StatusOK, "Proposal rejected")
	if got := e.exception(y.ID); got.State != domain.ExceptionOpen || e.balance(acc.ID()) != 45_000 {
		t.Fatalf("after rejection: %s, balance %d", got.State, e.balance(acc.ID()))
	}
}

func TestDismissal(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	acc := e.openAccount("c-1")
	_, x := e.mismatch("c-1", 10_000, 9_000)
	b := e.browser()
	b.login(annaSecret)
	b.get("/console/exceptions/" + x.ID)
	p := b.follow(b.post("/console/exceptions/"+x.ID+"/resolve", url.Values{"action": {"dismiss"}, "note": {"<i>duplicate report</i>"}}))
	must(t, p, http.StatusOK, "Exception dismissed; nothing was credited.", "&lt;i&gt;duplicate report&lt;/i&gt;")
	if got := e.exception(x.ID); got.State != domain.ExceptionDismissed || e.balance(acc.ID()) != 0 {
		t.Fatalf("dismissal: %s, %d", got.State, e.balance(acc.ID()))
	}
	// A note beyond the bound is refused.
	_, y := e.mismatch("c-1", 10_000, 9_000)
	b.get("/console/exceptions/" + y.ID)
	p = b.follow(b.post("/console/exceptions/"+y.ID+"/resolve", url.Values{"action": {"dismiss"}, "note": {strings.Repeat("я", domain.MaxNoteLen+1)}}))
	must(t, p, http.StatusOK, "longer than 1000 characters")
}

func TestAccountStatusChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	acc := e.fund("c-1", 10_000)
	b := e.browser()
	b.login(annaSecret)
	p := b.get("/console/accounts/" + acc.ID())
	must(t, p, http.StatusOK, "Block the account", "Close the account")
	p = b.get("/console/accounts/" + acc.ID() + "/status?to=blocked")
	must(t, p, http.StatusOK, "Block the account of customer c-1 (balance 100.00", `name="confirm" value="yes"`)
	if a, _ := e.svc.Account(context.Background(), acc.ID()); a.Status() != domain.AccountActive {
		t.Fatal("the confirmation page changed the status")
	}
	// Without the confirmation: nothing.
	p = b.follow(b.post("/console/accounts/"+acc.ID()+"/status", url.Values{"to": {"blocked"}}))
	must(t, p, http.StatusOK, "the change was not confirmed")
	p = b.follow(b.post("/console/accounts/"+acc.ID()+"/status", url.Values{"to": {"blocked"}, "confirm": {"yes"}}))
	must(t, p, http.StatusOK, "The account is now blocked.", "Unblock the account")
	// Closing an account with money is refused by the ledger.
	b.get("/console/accounts/" + acc.ID() + "/status?to=closed")
	p = b.follow(b.post("/console/accounts/"+acc.ID()+"/status", url.Values{"to": {"closed"}, "confirm": {"yes"}}))
	must(t, p, http.StatusOK, "An account with money on it cannot be closed.")
	if a, _ := e.svc.Account(context.Background(), acc.ID()); a.Status() != domain.AccountBlocked {
		t.Fatalf("status %s", a.Status())
	}
}

func TestStatementPagesAndCSV(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	acc := e.openAccount("c-1")
	const n = 23
	for i := range n {
		d := e.deposit("c-1", int64(1_000+i))
		e.callback(d.PaymentID, fmt.Sprintf("op-%d", i), int64(1_000+i))
	}
	b := e.browser()
	b.login(viewerSecret)
	// Find it as the search form does, then page through 10 lines at a time.
	p := b.get("/console/accounts?customer_id=c-1")
	if p.status != http.StatusSeeOther || p.location() != "/console/accounts/"+acc.ID() {
		t.Fatalf("search: %d to %q", p.status, p.location())
	}
	p = b.get("/console/accounts/" + acc.ID() + "?limit=10")
	must(t, p, http.StatusOK, "Account of customer c-1", "<svg", "chart-line", "payment credited", "Download CSV")
	rows := regexp.MustCompile(`<tr><td>[^<]+</td><td>payment credited</td>`)
	seen := 0
	pages := 0
	next := regexp.MustCompile(`href="([^"]+)" rel="next"`)
	for {
		pages++
		seen += len(rows.FindAllString(p.body, -1))
		m := next.FindStringSubmatch(p.body)
		if m == nil {
			break
		}
		p = b.get(strings.ReplaceAll(m[1], "&amp;", "&"))
		must(t, p, http.StatusOK, "First page")
		if pages > 10 {
			t.Fatal("paging does not end")
		}
	}
	if seen != n || pages != 3 {
		t.Fatalf("paged %d lines in %d pages, want %d in 3", seen, pages, n)
	}
	// The running balance: the last line's balance is the account's.
	must(t, p, http.StatusOK, "232.53\u00a0KZT")

	// The CSV download is the REST statement CSV, byte for byte.
	csv := b.get("/console/accounts/" + acc.ID() + "/statement.csv")
	if csv.status != http.StatusOK || !strings.HasPrefix(csv.header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(csv.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("csv: %d %v", csv.status, csv.header)
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/accounts/"+acc.ID()+"/statement.csv", nil)
	req.Header.Set("Authorization", "Bearer "+viewerSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	restCSV, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(restCSV) != csv.body || strings.Count(csv.body, "\n") != n+1 {
		t.Fatalf("console CSV differs from REST's:\n%s\n---\n%s", csv.body, restCSV)
	}
	// Bad filters are a 400 page, not a 500.
	for _, q := range []string{"?from=2026-13-01", "?to=yesterday", "?after=-1", "?limit=0", "?limit=100000", "?from=2026-12-02&to=2026-12-01"} {
		must(t, b.get("/console/accounts/"+acc.ID()+q), http.StatusBadRequest)
	}
	must(t, b.get("/console/accounts/acc_nope"), http.StatusNotFound, "Not found.")
}

func TestDepositTimeline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.openAccount("c-1")
	d := e.deposit("c-1", 50_000)
	e.callback(d.PaymentID, "op-a", 60_000) // an amount mismatch
	e.callback(d.PaymentID, "op-b", 50_000) // the right one: credited
	e.callback(d.PaymentID, "op-b", 50_000) // a replay
	b := e.browser()
	b.login(viewerSecret)
	p := b.get("/console/deposits?status=succeeded")
	must(t, p, http.StatusOK, d.PaymentID)
	p = b.get("/console/deposits/" + d.PaymentID)
	must(t, p, http.StatusOK, "check_deposit", "the platform asked for a payment id for 500.00\u00a0KZT",
		"Callback", "sent to the exceptions queue", "Raised an exception: amount mismatch",
		"credited", "a repeat, nothing changed", "500.00\u00a0KZT credited; balance after: 500.00\u00a0KZT",
		"&#34;amount&#34;: 60000", "&#34;amount&#34;: 50000")
	// The events are in time order: check_deposit first, the credit after the evidence that made it.
	iCheck, iCredit, iReplay := strings.Index(p.body, "event-check_deposit"), strings.Index(p.body, "event-credit"), strings.LastIndex(p.body, "event-evidence")
	if iCheck < 0 || iCredit < iCheck || iReplay < iCredit {
		t.Fatalf("timeline order: check %d, credit %d, last evidence %d", iCheck, iCredit, iReplay)
	}
	// Filters: status, customer, day.
	today := time.Now().In(e.zone).Format(time.DateOnly)
	must(t, b.get("/console/deposits?day="+today+"&customer_id=c-1"), http.StatusOK, d.PaymentID)
	mustNot(t, b.get("/console/deposits?day=2020-01-01"), d.PaymentID)
	mustNot(t, b.get("/console/deposits?status=pending"), d.PaymentID)
	must(t, b.get("/console/deposits?status=nope"), http.StatusBadRequest)
	must(t, b.get("/console/deposits?day=2026-02-30"), http.StatusBadRequest)
}

func TestLanguages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	acc := e.fund("c-1", 150_000_00) // 150,000.00
	b := e.browser()
	b.lang = "ru-RU,ru;q=0.9,en;q=0.5"
	b.login(annaSecret)
	p := b.get("/console/accounts/" + acc.ID())
	must(t, p, http.StatusOK, `lang="ru"`, "Счёт клиента c-1", "150\u202f000,00\u00a0₸", "Выписка")
	mustNot(t, p, "150,000.00")
	// The switcher remembers English over the browser's Russian, and comes back here.
	back := "/console/accounts/" + acc.ID()
	p = b.get("/console/lang?to=en&back=" + url.QueryEscape(back))
	if p.status != http.StatusSeeOther || p.location() != back {
		t.Fatalf("switch: %d to %q", p.status, p.location())
	}
	p = b.get(back)
	must(t, p, http.StatusOK, `lang="en"`, "Account of customer c-1", "150,000.00\u00a0KZT", "Statement")
	// Back to Russian; an open redirect is not followed.
	if p := b.get("/console/lang?to=ru&back=https://evil.example/"); p.location() != "/console/" {
		t.Fatalf("open redirect: %q", p.location())
	}
	must(t, b.get("/console/"), http.StatusOK, "Сегодня коротко", "Зачисления за")
	// An unknown language changes nothing.
	b.get("/console/lang?to=fr")
	must(t, b.get("/console/"), http.StatusOK, "Сегодня коротко")
	// Without a cookie, Accept-Language decides; English by default.
	for header, want := range map[string]string{"": "Today at a glance", "de-DE,ru;q=0.8": "Сегодня коротко",
		"ru;q=0.1,en;q=0.9": "Today at a glance", "kk-KZ, ru;q=0.7": "Сегодня коротко", "*": "Today at a glance"} {
		c := e.browser()
		c.lang = header
		c.login(viewerSecret)
		must(t, c.get("/console/"), http.StatusOK, want)
	}
}

func TestExceptionQueuePages(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("makes 1,000 exceptions")
	}
	e := newEnv(t, envOptions{})
	e.openAccount("c-1")
	const n = 1000
	for i := range n {
		// Unknown payments: one exception each, cheap to make.
		_, err := e.svc.SettleDeposit(context.Background(), ports.SettleDeposit{
			Channel: kassa, PaymentID: fmt.Sprintf("unknown-%04d", i), RawBody: "{}", ReceivedAt: time.Now(), Limits: limits,
			DedupeKey: fmt.Sprintf("u-%d", i),
			Outcome:   domain.Outcome{Method: "kassa24", Kind: domain.OutcomeSuccess, Status: "success", OperationID: "op", Amount: domain.NewAmount(100, domain.KZT)},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	b := e.browser()
	b.login(viewerSecret)
	must(t, b.get("/console/"), http.StatusOK, ">1,000</a>")
	row := regexp.MustCompile(`<td class="mono">(unknown-\d{4})</td>`)
	next := regexp.MustCompile(`href="([^"]+)" rel="next"`)
	seen := map[string]bool{}
	p := b.get("/console/exceptions?limit=200")
	for pages := 1; ; pages++ {
		must(t, p, http.StatusOK)
		for _, m := range row.FindAllStringSubmatch(p.body, -1) {
			if seen[m[1]] {
				t.Fatalf("%s on two pages", m[1])
			}
			seen[m[1]] = true
		}
		m := next.FindStringSubmatch(p.body)
		if m == nil {
			break
		}
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		p = b.get(strings.ReplaceAll(m[1], "&amp;", "&"))
	}
	if len(seen) != n {
		t.Fatalf("paged %d exceptions, want %d", len(seen), n)
	}
}

func TestOverview(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.fund("c-1", 150_000)
	e.fund("c-2", 50_000)
	e.deposit("c-1", 1_000) // pending
	e.mismatch("c-2", 10_000, 9_000)
	b := e.browser()
	b.login(viewerSecret)
	p := b.get("/console/")
	must(t, p, http.StatusOK, "2,000.00\u00a0KZT", "credits: 2", "Pending deposits", "The oldest was opened",
		"amount mismatch", "Healthy", "under an hour")
}

func TestUnknownPagesAndMethods(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	b := e.browser()
	b.login(viewerSecret)
	must(t, b.get("/console/nope"), http.StatusNotFound, "There is no such page.")
	must(t, b.get("/console/exceptions/exc_nope"), http.StatusNotFound, "Not found.")
	must(t, b.get("/console/exceptions?status=nope"), http.StatusBadRequest, "The value of status cannot be used.")
	must(t, b.get("/console/accounts?customer_id="+strings.Repeat("x", 300)), http.StatusBadRequest)
	req, _ := http.NewRequest(http.MethodDelete, e.srv.URL+"/console/", nil)
	if p := b.do(req); p.status != http.StatusMethodNotAllowed {
		t.Fatalf("DELETE: %d", p.status)
	}
}
