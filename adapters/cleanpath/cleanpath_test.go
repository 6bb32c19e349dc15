package cleanpath_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tiyn/tiyn/adapters/cleanpath"
)

// newMux has the shapes of patterns Tiyn registers: exact paths with and
// without a method, a wildcard, and the /v1/ subtree catch-all.
func newMux() *http.ServeMux {
	mux := http.NewServeMux()
	ok := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(name)) }
	}
	mux.HandleFunc("GET /healthz", ok("healthz"))
	mux.HandleFunc("/v1/monetix/requests", ok("requests"))
	mux.HandleFunc("POST /v1/accounts", ok("open"))
	mux.HandleFunc("GET /v1/accounts/{id}", ok("account"))
	mux.HandleFunc("/v1/", ok("fallback"))
	return mux
}

func TestGuardAnswersWhatTheMuxWouldRedirect(t *testing.T) {
	t.Parallel()
	mux := newMux()
	h := cleanpath.Guard(mux, nil)
	redirected := []struct{ method, target string }{
		{"GET", "/v1//accounts"},
		{"GET", "/v1/accounts/../accounts"},
		{"GET", "/v1/./accounts"},
		{"POST", "//v1/accounts"},
		{"GET", "/v1/accounts/x/.."},
		{"POST", "/v1/monetix/../monetix/requests"},
		{"POST", "/v1/monetix//requests"},
		{"POST", "/v1//monetix/callbacks"},
		{"GET", "/healthz/."},
		{"GET", "/v1"},
	}
	for _, tc := range redirected {
		req := httptest.NewRequest(tc.method, "/", nil)
		req.URL.Path, req.URL.RawPath, req.RequestURI = tc.target, "", tc.target
		// The mux alone redirects: the premise of the guard.
		bare := httptest.NewRecorder()
		mux.ServeHTTP(bare, req)
		if bare.Code/100 != 3 {
			t.Fatalf("%s %s: the bare mux answers %d, not a redirect; the test's premise is wrong", tc.method, tc.target, bare.Code)
		}
		if !cleanpath.Redirects(mux, req) {
			t.Errorf("%s %s: Redirects = false", tc.method, tc.target)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if rec.Code != http.StatusNotFound || rec.Header().Get("Location") != "" || rec.Header().Get("Content-Type") != "application/json" ||
			json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Error.Code != "not_found" || !strings.Contains(body.Error.Message, "no route") {
			t.Errorf("%s %s: %d %v %s", tc.method, tc.target, rec.Code, rec.Header(), rec.Body.String())
		}
	}

	routed := []struct{ method, target, want string }{
		{"GET", "/healthz", "healthz"},
		{"POST", "/v1/monetix/requests", "requests"},
		{"GET", "/v1/monetix/requests", "requests"},
		{"POST", "/v1/accounts", "open"},
		{"GET", "/v1/accounts/acc_1", "account"},
		{"GET", "/v1/accounts/..%2F..%2Fsecrets", "account"}, // one escaped segment, routed as the mux routes it
		{"GET", "/v1/", "fallback"},
		{"GET", "/v1/nope/deeper", "fallback"},
	}
	for _, tc := range routed {
		req := httptest.NewRequest(tc.method, tc.target, nil)
		if cleanpath.Redirects(mux, req) {
			t.Errorf("%s %s: Redirects = true", tc.method, tc.target)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || rec.Body.String() != tc.want {
			t.Errorf("%s %s: %d %q, want %q", tc.method, tc.target, rec.Code, rec.Body.String(), tc.want)
		}
	}
	// Outside any subtree, a missing path is the mux's own 404.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/nowhere", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("/nowhere: %d", rec.Code)
	}
}

func TestGuardUsesTheGivenNotFound(t *testing.T) {
	t.Parallel()
	h := cleanpath.Guard(newMux(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	req := httptest.NewRequest("GET", "/v1//x", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusTeapot {
		t.Fatalf("status %d", rec.Code)
	}
}

func TestClean(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"": "/", "/": "/", "a": "/a", "/a/": "/a/", "//a": "/a", "/a/./b": "/a/b", "/a/../b/": "/b/", "/a/..": "/", "/a//": "/a/",
	} {
		if got := cleanpath.Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
}
