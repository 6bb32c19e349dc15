package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/sqlstore"
)

// TestServeMetricsListener: the ledger's business figures are served on
// TIYN_METRICS_LISTEN only; the main listener's /metrics has the process,
// HTTP and pool metrics and none of them.
func TestServeMetricsListener(t *testing.T) {
	t.Parallel()
	env := sqliteEnv(t)
	env["TIYN_API_TOKENS"] = "ops:write:" + testTokenSecret
	env["TIYN_MONETIX_PROJECTS"] = "1234=" + testProjectSecret
	env["TIYN_METRICS_LISTEN"] = "127.0.0.1:0"
	s := startServe(t, env)
	// One credited payment and one rejected request, so every figure has a
	// value.
	if code, _ := s.do(t, http.MethodPost, "/v1/accounts", testTokenSecret, `{"customer_id":"6552"}`); code != http.StatusCreated {
		t.Fatalf("open account: %d", code)
	}
	body, _ := monetix.SignedJSON([]byte(testProjectSecret), monetix.CheckDepositRequestBody("1234", "6552", 100000, "KZT", "kassa24"))
	_, resp := s.do(t, http.MethodPost, monetix.RequestsPath, "", string(body))
	a, err := monetix.ParseAnswer([]byte(resp), nil)
	if err != nil || a.Code != monetix.CodeOK {
		t.Fatalf("check_deposit: %s %v", resp, err)
	}
	cb, _ := monetix.SignedJSON([]byte(testProjectSecret), map[string]any{
		"project_id": 1234,
		"payment":    map[string]any{"id": a.PaymentID, "status": "success", "method": "kassa24", "sum": map[string]any{"amount": 100000, "currency": "KZT"}},
		"operation":  map[string]any{"id": 1, "type": "sale", "status": "success"},
	})
	if code, resp := s.do(t, http.MethodPost, monetix.CallbacksPath, "", string(cb)); code != http.StatusOK || !strings.Contains(resp, "credited") {
		t.Fatalf("callback: %d %s", code, resp)
	}
	s.do(t, http.MethodPost, monetix.RequestsPath, "", `{"type":"verify","project_id":999,"customer_id":"1","signature":"x"}`)

	code, private := s.doAt(t, s.aux["metrics"], http.MethodGet, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("metrics listener: %d", code)
	}
	business := []string{"tiyn_exceptions_open 0", `tiyn_credits_total{currency="KZT"} 1`, `tiyn_credited_minor_total{currency="KZT"} 100000`,
		`tiyn_monetix_callbacks_total{effect="credited"} 1`, `tiyn_monetix_rejected_total{endpoint="requests",reason="unknown_project"} 1`}
	for _, w := range append(business, `tiyn_http_requests_total{code="201",method="POST",route="/v1/accounts"} 1`, "tiyn_db_open_connections", "go_goroutines") {
		if !strings.Contains(private, w) {
			t.Errorf("the metrics listener lacks %q", w)
		}
	}
	_, public := s.do(t, http.MethodGet, "/metrics", "", "")
	for _, w := range []string{"tiyn_exceptions_open", "tiyn_credits_total", "tiyn_credited_minor_total", "tiyn_monetix_"} {
		if strings.Contains(public, w) {
			t.Errorf("the main listener's /metrics shows %s", w)
		}
	}
	if !strings.Contains(public, `tiyn_http_requests_total{code="201",method="POST",route="/v1/accounts"} 1`) {
		t.Errorf("the main listener lost its HTTP metrics:\n%s", public)
	}
	// The metrics listener serves nothing else.
	for _, path := range []string{"/v1/accounts", "/healthz", "/debug/pprof/"} {
		if code, _ := s.doAt(t, s.aux["metrics"], http.MethodGet, path); code != http.StatusNotFound {
			t.Errorf("metrics listener %s: %d", path, code)
		}
	}
	s.stop(t)
	if _, err := net.DialTimeout("tcp", s.aux["metrics"], time.Second); err == nil {
		t.Error("the metrics listener still accepts after serve returned")
	}
}

// TestServeReadyzGivesAReasonNotAnError: an unmigrated store makes /readyz
// answer a reason code; the store's error is in the log only.
func TestServeReadyzGivesAReasonNotAnError(t *testing.T) {
	t.Parallel()
	env := sqliteEnv(t)
	env["TIYN_LOG_FORMAT"] = "json"
	s := startServe(t, env)
	other, err := sqlstore.Open(context.Background(), sqlstore.Options{URL: env["TIYN_DATABASE_URL"]})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Close() }()
	if _, err := other.DB().ExecContext(context.Background(), "DELETE FROM schema_migrations"); err != nil {
		t.Fatal(err)
	}
	code, body := s.do(t, http.MethodGet, "/readyz", "", "")
	if code != http.StatusServiceUnavailable || strings.TrimSpace(body) != `{"status":"unavailable","reason":"not_migrated"}` {
		t.Fatalf("readyz %d %s", code, body)
	}
	s.stop(t)
	if !strings.Contains(s.stderr.String(), `"reason":"not_migrated"`) || !strings.Contains(s.stderr.String(), "schema version 0") {
		t.Errorf("the detail is not logged:\n%s", s.stderr)
	}
}

// writeSelfSigned writes a certificate for 127.0.0.1 and its key as PEM
// files and returns their paths and a pool that trusts the certificate.
func writeSelfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "tiyn test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestServeTLS: with TIYN_TLS_CERT_FILE and TIYN_TLS_KEY_FILE serve answers
// HTTPS (TLS 1.2 or later) and nothing over plain HTTP; the demo block
// prints an https:// URL.
func TestServeTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := writeSelfSigned(t)
	env := sqliteEnv(t)
	env["TIYN_TLS_CERT_FILE"], env["TIYN_TLS_KEY_FILE"] = certFile, keyFile
	s := startServe(t, env)
	client := &http.Client{Timeout: waitTimeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + s.addr + "/readyz")
	if err != nil {
		t.Fatalf("https: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("https readyz %d %s %+v", resp.StatusCode, b, resp.TLS)
	}
	tls11 := &http.Client{Timeout: waitTimeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if resp, err := tls11.Get("https://" + s.addr + "/readyz"); err == nil {
		_ = resp.Body.Close()
		t.Fatal("TLS 1.1 accepted")
	}
	if resp, err := (&http.Client{Timeout: waitTimeout}).Get("http://" + s.addr + "/readyz"); err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered 200")
		}
	}
	if !strings.Contains(s.stderr.String(), "https://"+s.addr+"/v1/accounts") {
		t.Errorf("the demo block does not show https:\n%s", s.stderr)
	}
	s.stop(t)

	// A missing file or a key that is not the certificate's stops serve
	// with exit 2 before it listens.
	_, otherKey, _ := writeSelfSigned(t)
	for _, files := range [][2]string{{certFile, certFile + ".missing"}, {certFile, otherKey}} {
		env := sqliteEnv(t)
		env["TIYN_TLS_CERT_FILE"], env["TIYN_TLS_KEY_FILE"] = files[0], files[1]
		m, _, stderr := testMain(env)
		if code, err := runBounded(t, m, "serve", "--listen", "127.0.0.1:0"); code != exitUsage || err == nil ||
			!strings.Contains(err.Error(), "TIYN_TLS_CERT_FILE, TIYN_TLS_KEY_FILE") || strings.Contains(stderr.String(), "listening") {
			t.Errorf("%v: exit %d err %v", files, code, err)
		}
	}
}

// TestPlainHTTPWarning: serving plain HTTP off loopback is warned about at
// start (tests may not listen off loopback: the decision is tested).
func TestPlainHTTPWarning(t *testing.T) {
	t.Parallel()
	for addr, warn := range map[string]bool{"0.0.0.0:8080": true, "[::]:8080": true, "10.1.2.3:8080": true,
		"127.0.0.1:8080": false, "[::1]:8080": false} {
		if got := plainHTTPWarning(addr, false) != ""; got != warn {
			t.Errorf("%s: warning %v, want %v", addr, got, warn)
		}
		if plainHTTPWarning(addr, true) != "" {
			t.Errorf("%s with TLS: warned", addr)
		}
	}
	if w := plainHTTPWarning("0.0.0.0:8080", false); !strings.Contains(w, "TIYN_TLS_CERT_FILE") || !strings.Contains(w, "proxy") {
		t.Errorf("warning %q", w)
	}
}
