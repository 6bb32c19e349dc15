package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestUncleanPathsAreNotRedirected: the main handler answers an unclean
// path with a JSON 404 in the REST error shape, for the REST routes and
// the Monetix endpoints alike, where a bare ServeMux sends an HTML 307.
func TestUncleanPathsAreNotRedirected(t *testing.T) {
	t.Parallel()
	s, logs := newTestServer(t, Options{})
	hit := func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "routed") }
	s.Mux().HandleFunc("/v1/monetix/requests", hit)
	s.Mux().HandleFunc("/v1/monetix/callbacks", hit)
	s.Mux().HandleFunc("GET /v1/accounts", hit)
	s.Mux().HandleFunc("/v1/", hit)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	for _, tc := range []struct{ method, path string }{
		{"GET", "/v1/accounts/../accounts"},
		{"GET", "/v1//accounts"},
		{"POST", "/v1/monetix/../monetix/requests"},
		{"POST", "/v1/monetix//requests"},
		{"POST", "/v1/./monetix/callbacks"},
		{"POST", "//v1/monetix/callbacks"},
		{"GET", "/healthz/../healthz"},
		{"GET", "/v1"},
	} {
		req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Location") != "" || err != nil ||
			resp.Header.Get("Content-Type") != "application/json" || body.Error.Code != "not_found" || body.Error.Message == "" {
			t.Errorf("%s %s: %d Location %q, %+v (%v)", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Location"), body, err)
		}
	}
	// Clean paths still route.
	for _, path := range []string{"/v1/monetix/requests", "/v1/accounts", "/v1/else"} {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "routed" {
			t.Errorf("GET %s: %d %q", path, resp.StatusCode, b)
		}
	}
	// They are logged and counted as unmatched, with their status.
	n := 0
	for _, l := range logLines(t, logs) {
		if l["msg"] == "http request" && l["status"] == float64(http.StatusNotFound) && l["route"] == UnmatchedRoute {
			n++
		}
	}
	if n != 8 {
		t.Errorf("%d unmatched 404 access lines, want 8", n)
	}
}
