package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tiyn/tiyn/adapters/monetix"
)

// verifyCode posts a verify request for an unknown customer, signed with
// key, to a running serve, and returns the answer's code: 404 (no such
// account) means the signature verified, 400 that it did not.
func (s *serving) verifyCode(t *testing.T, project string, key []byte) int {
	t.Helper()
	body, err := monetix.SignedJSON(key, monetix.VerifyRequestBody(project, "nobody-"+project))
	if err != nil {
		t.Fatal(err)
	}
	code, resp := s.do(t, http.MethodPost, monetix.RequestsPath, "", string(body))
	if code != http.StatusOK {
		t.Fatalf("verify: HTTP %d %s", code, resp)
	}
	a, err := monetix.ParseAnswer([]byte(resp), nil)
	if err != nil {
		t.Fatalf("verify answer %s: %v", resp, err)
	}
	return a.Code
}

// TestServeVerifiesWithExactlyTheConfiguredKey: keys holding ';', ',', '=',
// '%', quotes, spaces at either end and non-ASCII text, given percent-encoded
// in TIYN_MONETIX_PROJECTS or verbatim in a TOML TIYN_MONETIX_PROJECTS_FILE,
// are the keys `tiyn serve` verifies with — not a prefix, not a trimmed or
// still-encoded form.
func TestServeVerifiesWithExactlyTheConfiguredKey(t *testing.T) {
	t.Parallel()
	keys := map[string]string{
		"101": "SECRET;x",
		"102": "a;b,c=d%e",
		"103": " spaces at both ends ",
		"104": `quo"te's`,
		"105": "ключ ₸",
	}
	encoded := map[string]string{
		"101": "SECRET%3Bx",
		"102": "a%3Bb%2Cc%3Dd%25e",
		"103": "%20spaces at both ends%20",
		"104": `quo"te's`,
		"105": "%D0%BA%D0%BB%D1%8E%D1%87 %E2%82%B8",
	}
	var inline []string
	var toml strings.Builder
	for _, id := range []string{"101", "102", "103", "104", "105"} {
		inline = append(inline, id+"="+encoded[id])
		fmt.Fprintf(&toml, "[[project]]\nid = %s\nsecret = %q\n\n", id, keys[id])
	}
	for name, env := range map[string]map[string]string{
		"inline": {"TIYN_MONETIX_PROJECTS": strings.Join(inline, ",")},
		"toml":   {"TIYN_MONETIX_PROJECTS_FILE": writeFile(t, "monetix-projects", toml.String())},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := sqliteEnv(t)
			for k, v := range env {
				e[k] = v
			}
			e["TIYN_API_TOKENS"] = "ops:write:" + testTokenSecret
			s := startServe(t, e)
			for id, key := range keys {
				if code := s.verifyCode(t, id, []byte(key)); code != monetix.CodeAccountNotFound {
					t.Errorf("project %s, key %q: code %d, want %d (signature verified)", id, key, code, monetix.CodeAccountNotFound)
				}
				for _, miss := range []string{encoded[id], strings.TrimSpace(key), strings.SplitN(key, ";", 2)[0]} {
					if miss == key {
						continue
					}
					if code := s.verifyCode(t, id, []byte(miss)); code != monetix.CodeInvalidSignature {
						t.Errorf("project %s, near miss %q: code %d, want %d", id, miss, code, monetix.CodeInvalidSignature)
					}
				}
			}
			s.stop(t)
			for _, key := range keys {
				if len(key) >= 8 && strings.Contains(s.stderr.String(), strings.TrimSpace(key)) {
					t.Errorf("the log holds key %q", key)
				}
			}
		})
	}
}

// TestServeRefusesProjectLimitsWiderThanTheMethod: a project's own min/max
// may narrow kassa24's 1.00–500,000.00 KZT, never widen them; serve says so
// in KZT and exits 2 before it listens.
func TestServeRefusesProjectLimitsWiderThanTheMethod(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"TIYN_MONETIX_PROJECTS": "1234=" + testProjectSecret + ";min=0.01;max=900000.00"}, []string{
			"TIYN_MONETIX_PROJECTS: invalid monetix projects: project 1234: min 0.01 KZT is below the kassa24 minimum 1.00 KZT",
			"project 1234: max 900000.00 KZT is above the kassa24 maximum 500000.00 KZT"}},
		{map[string]string{"TIYN_MONETIX_PROJECTS_FILE": writeFile(t, "p.toml",
			"[[project]]\nid = 77\nsecret = '"+testProjectSecret+"'\nmin = \"1.00\"\nmax = \"500000.01\"\n")},
			[]string{"TIYN_MONETIX_PROJECTS_FILE=", "project 77: max 500000.01 KZT is above the kassa24 maximum 500000.00 KZT"}},
	} {
		env := sqliteEnv(t)
		for k, v := range tc.env {
			env[k] = v
		}
		m, _, stderr := testMain(env)
		code, err := runBounded(t, m, "serve", "--listen", "127.0.0.1:0")
		if code != exitUsage || err == nil {
			t.Fatalf("%v: exit %d err %v, want exit %d", tc.env, code, err, exitUsage)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("stderr lacks %q:\n%s", w, stderr)
			}
		}
		if strings.Contains(stderr.String(), testProjectSecret) || strings.Contains(stderr.String(), "listening") {
			t.Errorf("stderr leaks the key or it listened:\n%s", stderr)
		}
	}
	// The method's own limits are fine.
	env := sqliteEnv(t)
	env["TIYN_MONETIX_PROJECTS"] = "1234=" + testProjectSecret + ";min=1.00;max=500000.00"
	env["TIYN_API_TOKENS"] = "ops:write:" + testTokenSecret
	startServe(t, env).stop(t)
}

// runBounded runs a command line like run does, but cancels it (as SIGTERM
// would) after waitTimeout: a serve that should have refused to start but
// serves instead ends, and the test fails on its exit code.
func runBounded(t *testing.T, m *Main, args ...string) (int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	err := m.ParseFlags(ctx, args)
	if err == nil {
		err = m.Run(ctx)
	}
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	return m.exitCode(err), err
}
