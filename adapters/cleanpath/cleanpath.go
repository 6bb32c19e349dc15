// Package cleanpath keeps net/http's ServeMux from answering a path with a
// redirect of its own. ServeMux answers an unclean path (/v1//accounts,
// /v1/accounts/../accounts, /v1/./accounts) and a subtree's name without
// its slash (/v1 when /v1/ is registered) with a 307 and an HTML body,
// before any handler runs: a JSON API client gets a redirect it did not
// ask for, in a shape no document describes, and a platform posting a
// callback may follow it with a GET. Guard answers those requests with a
// JSON 404 instead; every other request goes to the mux untouched.
package cleanpath

import (
	"encoding/json"
	"net/http"
	"path"
	"strings"
)

// Guard returns mux behind the check: a request the mux would redirect is
// answered by notFound (NotFound when nil) instead.
func Guard(mux *http.ServeMux, notFound http.Handler) http.Handler {
	if notFound == nil {
		notFound = NotFound
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Redirects(mux, r) {
			notFound.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Redirects reports whether mux would answer r with its own redirect
// rather than route it: r's path is not clean, or it names a subtree
// pattern ("/v1/") without the trailing slash. CONNECT requests are not
// canonicalised by ServeMux and never count.
func Redirects(mux *http.ServeMux, r *http.Request) bool {
	if r.Method == http.MethodConnect {
		return false
	}
	p := r.URL.EscapedPath()
	if p != Clean(p) {
		return true
	}
	if strings.HasSuffix(p, "/") {
		return false
	}
	// The /tree → /tree/ redirect: the mux matched the pattern of the path
	// with a slash added. A subtree pattern that matches p itself has fewer
	// segments than p.
	_, pattern := mux.Handler(r)
	i := strings.IndexByte(pattern, '/')
	if i < 0 {
		return false
	}
	patternPath := pattern[i:]
	return strings.HasSuffix(patternPath, "/") && strings.Count(patternPath, "/") == strings.Count(p, "/")+1
}

// Clean is the path ServeMux routes p as (its cleanPath): rooted, without
// empty, "." and ".." segments, keeping a trailing slash.
func Clean(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// MaxPathInMessage bounds how much of a path a 404 message repeats.
const MaxPathInMessage = 200

// NotFound answers 404 in the REST API's one error shape,
// {"error":{"code":"not_found","message":"no route …"}}.
var NotFound http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	msg := "no route " + p
	if len(p) > MaxPathInMessage {
		msg = "no route " + p[:MaxPathInMessage] + "…"
	}
	if p != Clean(p) {
		msg += " (a path must be clean: no //, /./ or /../ segments)"
	}
	body, _ := json.Marshal(map[string]map[string]string{"error": {"code": "not_found", "message": msg}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write(append(body, '\n'))
})
