package console

import (
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/tiyn/tiyn/adapters/rest"
)

// What every console answer carries. The pages run no script at all, so
// the policy allows none; styles and images come from the console's own
// static files (and inline SVG, which needs no source).
const contentSecurityPolicy = "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: under no-referrer a browser sends
	// "Origin: null" with the console's own forms, and sameOrigin could
	// not tell them from a sandboxed attacker's.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	h.Set("Cache-Control", "no-store")
}

// secureCookies reports whether cookies get the Secure attribute: always,
// except on a plain-HTTP loopback address (a laptop's `make run`), where a
// browser would not send them back over http://127.0.0.1 otherwise.
func secureCookies(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	if strings.EqualFold(host, "localhost") {
		return false
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip == nil || !ip.IsLoopback()
}

// cookie builds a console cookie: HttpOnly, SameSite=Strict, scoped to the
// console's path, Secure off loopback.
func cookie(r *http.Request, name, value, path string, maxAge time.Duration) *http.Cookie {
	ck := &http.Cookie{Name: name, Value: value, Path: path, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: secureCookies(r)}
	switch {
	case maxAge < 0:
		ck.MaxAge = -1
	case maxAge > 0:
		ck.MaxAge = int(maxAge / time.Second)
	}
	return ck
}

// sameOrigin refuses a form posted from another site: a browser names
// where a request comes from in Sec-Fetch-Site and Origin, and SameSite
// cookies aside, a cross-site form is never legitimate here. A client that
// sends neither (curl) passes; it still needs the session and its CSRF
// token.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false // "null", or garbage
	}
	return strings.EqualFold(u.Host, r.Host)
}

// localPath reports whether s is a path within the console, safe to
// redirect to: no scheme, no host, no "//" or backslash tricks.
func localPath(s string) bool {
	if s == "" || len(s) > 2048 || strings.ContainsAny(s, "\\\r\n\t") || strings.HasPrefix(s, "//") {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return false
	}
	p := u.Path
	if p != Prefix && !strings.HasPrefix(p, Prefix+"/") {
		return false
	}
	return path.Clean(p) == strings.TrimSuffix(p, "/") || p == Prefix+"/"
}

// loginCookie carries the login form's CSRF token (a double submit: the
// form holds the same value), so that another site cannot log a browser in
// with a token of its own choosing.
const loginCookie = "tiyn_login"

// loginData is the login page's content.
type loginData struct {
	CSRF    string
	Next    string
	Message string // a translated notice or error
	Err     bool
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	rc := c.reqCtx(r, nil)
	next := r.URL.Query().Get("next")
	if !localPath(next) {
		next = ""
	}
	if sess := c.session(r); sess != nil {
		http.Redirect(w, r, cmpOr(next, Prefix+"/"), http.StatusSeeOther)
		return
	}
	data := loginData{Next: next}
	if r.URL.Query().Has("bye") {
		data.Message = rc.loc.T("login.logged_out")
	}
	c.renderLogin(w, r, rc, http.StatusOK, data)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// renderLogin renders the login form with a fresh login CSRF token.
func (c *Console) renderLogin(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, data loginData) {
	token, err := c.sessions.random()
	if err != nil {
		c.log.ErrorContext(r.Context(), "console: no randomness for the login form", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	http.SetCookie(w, cookie(r, loginCookie, token, Prefix+"/login", time.Hour))
	data.CSRF = token
	c.render(w, r, rc, status, "login", rc.loc.T("login.title"), "", data)
}

// login checks the form's token against the API tokens and starts a
// session. The token is never logged, never put in a URL, never echoed.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	rc := c.reqCtx(r, nil)
	if !sameOrigin(r) {
		c.renderStatus(w, r, rc, http.StatusForbidden, "err.cross_origin")
		return
	}
	if err := r.ParseForm(); err != nil {
		c.renderStatus(w, r, rc, http.StatusBadRequest, "err.bad_form")
		return
	}
	next := r.PostForm.Get("next")
	if !localPath(next) {
		next = ""
	}
	ck, err := r.Cookie(loginCookie)
	if err != nil || !equalSecret(ck.Value, r.PostForm.Get("csrf")) {
		c.renderLogin(w, r, rc, http.StatusForbidden, loginData{Next: next, Message: rc.loc.T("login.stale_form"), Err: true})
		return
	}
	secret := strings.TrimSpace(r.PostForm.Get("token"))
	tok, ok := rest.Token{}, false
	if secret != "" && len(secret) <= rest.MaxTokenSecretLen {
		tok, ok = c.auth.Match(secret)
	}
	if !ok {
		c.log.WarnContext(r.Context(), "console: login refused", "remote", r.RemoteAddr)
		c.renderLogin(w, r, rc, http.StatusUnauthorized, loginData{Next: next, Message: rc.loc.T("login.invalid"), Err: true})
		return
	}
	id, _, err := c.sessions.create(tok)
	if err != nil {
		c.log.ErrorContext(r.Context(), "console: session not created", "err", err)
		c.renderStatus(w, r, rc, http.StatusInternalServerError, "err.internal")
		return
	}
	rest.SetActor(r.Context(), tok.Name)
	c.log.InfoContext(r.Context(), "console: login", "actor", tok.Name, "role", string(tok.Role), "remote", r.RemoteAddr)
	http.SetCookie(w, cookie(r, sessionCookie, id, Prefix, 0))
	http.SetCookie(w, cookie(r, loginCookie, "", Prefix+"/login", -1))
	http.Redirect(w, r, cmpOr(next, Prefix+"/"), http.StatusSeeOther)
}

func equalSecret(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	x, y := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(x[:], y[:]) == 1
}

// logout ends the session and forgets its cookie.
func (c *Console) logout(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	c.sessions.end(rc.sess)
	c.log.InfoContext(r.Context(), "console: logout", "actor", rc.sess.token.Name)
	http.SetCookie(w, cookie(r, sessionCookie, "", Prefix, -1))
	http.Redirect(w, r, Prefix+"/login?bye=1", http.StatusSeeOther)
	return nil
}

// switchLang remembers a language and goes back to the page it was chosen
// on. It changes nothing but the cookie, so it is a plain link (GET).
func (c *Console) switchLang(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	back := q.Get("back")
	if !localPath(back) {
		back = Prefix + "/"
	}
	if l, ok := parseLang(q.Get("to")); ok {
		http.SetCookie(w, cookie(r, langCookie, string(l), Prefix, langCookieAge))
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

//go:embed static
var staticFiles embed.FS

// static serves the embedded CSS and icon. They may be cached for an hour
// (they change only with the binary).
func (c *Console) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := fs.ReadFile(staticFiles, "static/"+name)
	if err != nil || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "private, max-age=3600")
	_, _ = w.Write(b)
}
