package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestPublicHandlerServesNoPprof: profiling is never on the public
// listener, whatever is asked.
func TestPublicHandlerServesNoPprof(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{})
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1"} {
		if rec := do(t, s.Handler(), http.MethodGet, path, nil); rec.Code != http.StatusNotFound {
			t.Errorf("public %s: status %d, want 404", path, rec.Code)
		}
	}
}

// TestPprofHandler: the pprof listener's handler serves the profiles, but
// never the command line (secrets passed as flags).
func TestPprofHandler(t *testing.T) {
	t.Parallel()
	h := PprofHandler()
	for path, want := range map[string]int{
		"/debug/pprof/":                http.StatusOK,
		"/debug/pprof/heap?debug=1":    http.StatusOK,
		"/debug/pprof/goroutine?debug": http.StatusOK,
		"/debug/pprof/symbol":          http.StatusOK,
		"/debug/pprof/cmdline":         http.StatusNotFound,
		"/debug/pprof/cmdline?debug=1": http.StatusNotFound,
		"/metrics":                     http.StatusNotFound,
	} {
		rec := do(t, h, http.MethodGet, path, nil)
		if rec.Code != want {
			t.Errorf("%s: status %d, want %d", path, rec.Code, want)
		}
		if strings.Contains(path, "cmdline") && strings.Contains(rec.Body.String(), "server.test") {
			t.Errorf("%s shows the command line: %s", path, rec.Body)
		}
	}
}

// TestPrivateMetricsOnlyOnTheMetricsHandler: what the composition root puts
// on Private (credited sums, Monetix counters) is served by MetricsHandler
// only; the public /metrics has the operational metrics alone.
func TestPrivateMetricsOnlyOnTheMetricsHandler(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{})
	credited := prometheus.NewCounter(prometheus.CounterOpts{Name: "tiyn_credited_minor_total", Help: "test"})
	credited.Add(12345)
	s.Private().MustRegister(credited)
	do(t, s.Handler(), http.MethodGet, "/healthz", nil)
	public := scrape(t, s)
	if strings.Contains(public, "tiyn_credited_minor_total") {
		t.Errorf("the public /metrics shows a private figure:\n%s", public)
	}
	private := scrapeHandler(t, s.MetricsHandler())
	for _, w := range []string{"tiyn_credited_minor_total 12345", `tiyn_http_requests_total{code="200",method="GET",route="/healthz"} 1`, "go_goroutines "} {
		if !strings.Contains(private, w) {
			t.Errorf("the metrics handler lacks %q", w)
		}
	}
	if rec := do(t, s.MetricsHandler(), http.MethodGet, "/v1/accounts", nil); rec.Code != http.StatusNotFound {
		t.Errorf("the metrics handler serves other paths: %d", rec.Code)
	}
}

// TestExceptionsCountIsCached: a storm of scrapes, sequential or at once,
// reads the store once per ExceptionsCacheTTL; a failure is cached too.
func TestExceptionsCountIsCached(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	var fail atomic.Bool
	release := make(chan struct{})
	c := newExceptionsCollector(func(ctx context.Context) (int, error) {
		n := calls.Add(1)
		if n == 1 {
			select { // hold the first count so the concurrent scrapes pile up
			case <-release:
			case <-time.After(waitTimeout):
			}
		}
		if fail.Load() {
			return 0, errors.New("store unavailable")
		}
		return int(n) * 10, nil
	}, discardLogger())
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	c.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	var wg sync.WaitGroup
	results := make([]int, 20)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _ = c.read()
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	for i, n := range results {
		if n != 10 {
			t.Fatalf("scrape %d saw %d, want 10 (the one count)", i, n)
		}
	}
	for range 1000 {
		if n, err := c.read(); n != 10 || err != nil {
			t.Fatalf("cached read %d %v", n, err)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("%d store reads for 1020 scrapes within the TTL, want 1", calls.Load())
	}
	advance(ExceptionsCacheTTL)
	if n, _ := c.read(); n != 20 || calls.Load() != 2 {
		t.Fatalf("after the TTL: %d after %d reads", n, calls.Load())
	}
	fail.Store(true)
	advance(ExceptionsCacheTTL)
	for range 100 {
		if _, err := c.read(); err == nil {
			t.Fatal("a failed count reads as a success")
		}
	}
	if calls.Load() != 3 {
		t.Fatalf("a failing store is read %d times in one TTL, want once", calls.Load()-2)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// selfSigned makes a certificate for 127.0.0.1 and the pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
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
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

// TestServeTLS: with Options.TLS the server answers HTTPS, TLS 1.2 at
// least, and a plain HTTP request gets no page.
func TestServeTLS(t *testing.T) {
	t.Parallel()
	cert, pool := selfSigned(t)
	s, _ := newTestServer(t, Options{TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS10}})
	addr, cancel, done := startServer(t, s, Timeouts{Shutdown: waitTimeout})
	client := &http.Client{Timeout: waitTimeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("https: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 || !strings.Contains(string(body), `"ok"`) {
		t.Fatalf("https healthz: %d %s (tls %+v)", resp.StatusCode, body, resp.TLS)
	}
	// A client that offers at most TLS 1.1 is refused (the server's
	// MinVersion 1.0 was raised).
	old := &http.Client{Timeout: waitTimeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if resp, err := old.Get("https://" + addr + "/healthz"); err == nil {
		_ = resp.Body.Close()
		t.Fatal("TLS 1.1 accepted")
	}
	// Plain HTTP gets Go's "client sent an HTTP request to an HTTPS server", never the page.
	if resp, err := (&http.Client{Timeout: waitTimeout}).Get("http://" + addr + "/healthz"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK || strings.Contains(string(b), `"ok"`) {
			t.Fatalf("plain HTTP answered: %d %s", resp.StatusCode, b)
		}
	}
	cancel()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("serve: %v", r.err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no shutdown")
	}
}

// TestServeAux: an auxiliary listener serves its handler until the context
// ends, then closes.
func TestServeAux(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ServeAux(ctx, "pprof", ln, PprofHandler(), discardLogger()) }()
	client := &http.Client{Timeout: waitTimeout}
	resp, err := client.Get("http://" + ln.Addr().String() + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("cmdline over the aux listener: %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("ServeAux did not stop")
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		_ = c.Close()
		t.Fatal("still accepting after ServeAux returned")
	}
}
