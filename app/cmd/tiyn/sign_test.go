package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type vector struct {
	Name, Secret, JSON, StringToSign, Signature string
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "adapters", "monetix", "signature", "testdata", "signature-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vs []struct {
		Name         string `json:"name"`
		Secret       string `json:"secret"`
		JSON         string `json:"json"`
		StringToSign string `json:"string_to_sign"`
		Signature    string `json:"signature"`
	}
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	out := make([]vector, len(vs))
	for i, v := range vs {
		out[i] = vector(v)
	}
	if len(out) < 11 {
		t.Fatalf("only %d vectors", len(out))
	}
	return out
}

func runTiyn(t *testing.T, stdin string, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	m := &Main{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut,
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	err := m.ParseFlags(context.Background(), args)
	if err == nil {
		err = m.Run(context.Background())
	}
	return out.String(), errOut.String(), m.exitCode(err)
}

// TestSignReproducesEveryVector runs `tiyn sign` on each published vector.
func TestSignReproducesEveryVector(t *testing.T) {
	t.Parallel()
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			out, errOut, code := runTiyn(t, v.JSON, nil, "sign", "--secret", v.Secret)
			if code != exitOK || strings.TrimSpace(out) != v.Signature {
				t.Fatalf("sign: code %d out %q err %q, want %s", code, out, errOut, v.Signature)
			}
			out, _, code = runTiyn(t, v.JSON, map[string]string{envSignSecret: v.Secret}, "sign", "--explain")
			if code != exitOK || !strings.Contains(out, v.StringToSign+"\n") || !strings.Contains(out, v.Signature) {
				t.Fatalf("explain: code %d out %q", code, out)
			}
			out, _, code = runTiyn(t, v.JSON, nil, "sign", "--secret", v.Secret, "--verify")
			if code != exitOK || !strings.Contains(out, "signature OK") {
				t.Fatalf("verify: code %d out %q", code, out)
			}
			_, _, code = runTiyn(t, v.JSON, nil, "sign", "--secret", v.Secret+"x", "--verify")
			if code != exitError {
				t.Fatalf("verify with a wrong key: code %d, want %d", code, exitError)
			}
		})
	}
}

func TestSignRefusesBadUsage(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		stdin string
		env   map[string]string
		args  []string
	}{
		"no secret":     {`{"a":1}`, nil, []string{"sign"}},
		"not JSON":      {`{"a":`, nil, []string{"sign", "--secret", "k"}},
		"not an object": {`[1,2]`, nil, []string{"sign", "--secret", "k"}},
		"argument":      {`{"a":1}`, nil, []string{"sign", "--secret", "k", "extra"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, errOut, code := runTiyn(t, tc.stdin, tc.env, tc.args...)
			if code != exitUsage {
				t.Fatalf("code %d (%s), want %d", code, errOut, exitUsage)
			}
		})
	}
	// A missing signature is a wrong one, not a usage error.
	_, _, code := runTiyn(t, `{"a":1}`, nil, "sign", "--secret", "k", "--verify")
	if code != exitError {
		t.Fatalf("verify without signature: code %d", code)
	}
}
