package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// waitTimeout bounds every wait in these tests.
const waitTimeout = 5 * time.Second

type serveResult struct{ err error }

func startServer(t *testing.T, s *Server, tm Timeouts) (addr string, cancel context.CancelFunc, done <-chan serveResult) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan serveResult, 1)
	go func() { ch <- serveResult{s.ListenAndServe(ctx, "127.0.0.1:0", tm)} }()
	select {
	case <-s.Listening():
	case r := <-ch:
		cancel()
		t.Fatalf("serve stopped before listening: %v", r.err)
	case <-time.After(waitTimeout):
		cancel()
		t.Fatal("server did not start listening")
	}
	t.Cleanup(cancel)
	return s.Addr(), cancel, ch
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	s, logs := newTestServer(t, Options{})
	started := make(chan struct{})
	release := make(chan struct{})
	s.Mux().HandleFunc("GET /slow", func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		select {
		case <-release:
		case <-time.After(waitTimeout):
		}
		time.Sleep(300 * time.Millisecond) // still working while the server drains
		_, _ = io.WriteString(w, "done")
	})
	addr, cancel, done := startServer(t, s, Timeouts{Shutdown: waitTimeout})
	if !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Fatalf("bound address %q", addr)
	}
	client := &http.Client{Timeout: waitTimeout}
	if resp, err := client.Get("http://" + addr + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz before shutdown: %v %v", resp, err)
	} else {
		_ = resp.Body.Close()
	}

	type slowResult struct {
		code int
		body string
		err  error
	}
	slow := make(chan slowResult, 1)
	go func() {
		resp, err := client.Get("http://" + addr + "/slow")
		if err != nil {
			slow <- slowResult{err: err}
			return
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		slow <- slowResult{code: resp.StatusCode, body: string(b), err: err}
	}()
	select {
	case <-started:
	case <-time.After(waitTimeout):
		t.Fatal("slow request did not start")
	}

	cancel()
	// Shutdown has begun once the listener refuses connections; the slow
	// request is still in flight (blocked on release).
	deadline := time.Now().Add(waitTimeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		_ = conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("new connections still accepted after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case r := <-done:
		t.Fatalf("Serve returned (%v) while a request was in flight", r.err)
	default:
	}
	close(release)

	select {
	case r := <-slow:
		if r.err != nil || r.code != http.StatusOK || r.body != "done" {
			t.Fatalf("in-flight request: code %d body %q err %v", r.code, r.body, r.err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("in-flight request did not finish")
	}
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("Serve: %v", r.err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Serve did not return after shutdown")
	}
	for _, msg := range []string{`"msg":"listening"`, `"msg":"shutting down"`, `"msg":"stopped"`} {
		if !strings.Contains(logs.String(), msg) {
			t.Errorf("log lacks %s", msg)
		}
	}
}

func TestShutdownTimeout(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, Options{})
	started := make(chan struct{})
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	s.Mux().HandleFunc("GET /stuck", func(http.ResponseWriter, *http.Request) {
		close(started)
		<-stuck
	})
	addr, cancel, done := startServer(t, s, Timeouts{Shutdown: 100 * time.Millisecond})
	go func() {
		client := &http.Client{Timeout: waitTimeout}
		if resp, err := client.Get("http://" + addr + "/stuck"); err == nil {
			_ = resp.Body.Close()
		}
	}()
	select {
	case <-started:
	case <-time.After(waitTimeout):
		t.Fatal("request did not start")
	}
	cancel()
	select {
	case r := <-done:
		if !errors.Is(r.err, ErrShutdownTimeout) || !errors.Is(r.err, context.DeadlineExceeded) {
			t.Fatalf("Serve = %v, want ErrShutdownTimeout", r.err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Serve did not give up after the shutdown timeout")
	}
}

func TestListenErrors(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	for _, addr := range []string{ln.Addr().String(), "127.0.0.1:99999", "not an address"} {
		s, _ := newTestServer(t, Options{})
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		err := s.ListenAndServe(ctx, addr, Timeouts{})
		cancel()
		if err == nil || !strings.Contains(err.Error(), "listen on") {
			t.Errorf("ListenAndServe(%q) = %v, want a listen error", addr, err)
		}
		if s.Addr() != "" {
			t.Errorf("Addr() = %q after a failed listen", s.Addr())
		}
	}
}

func TestTimeoutsDefaults(t *testing.T) {
	t.Parallel()
	got := Timeouts{Read: time.Second, Idle: -1}.withDefaults()
	want := DefaultTimeouts()
	want.Read = time.Second
	if got != want {
		t.Fatalf("withDefaults = %+v, want %+v", got, want)
	}
	if d := DefaultTimeouts(); d.ReadHeader != 5*time.Second || d.Read != 15*time.Second || d.Write != 30*time.Second ||
		d.Idle != 120*time.Second || d.MaxHeaderBytes != 64*1024 || d.Shutdown != 20*time.Second {
		t.Fatalf("defaults %+v", d)
	}
}

func TestServerAppliesTimeouts(t *testing.T) {
	t.Parallel()
	// A client that never finishes its headers is cut off after ReadHeader.
	s, _ := newTestServer(t, Options{})
	addr, _, _ := startServer(t, s, Timeouts{ReadHeader: 100 * time.Millisecond})
	conn, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(waitTimeout))
	start := time.Now()
	_, err = io.ReadAll(conn)
	if err != nil {
		t.Fatalf("read: %v (want the server to close the connection)", err)
	}
	if el := time.Since(start); el > waitTimeout/2 {
		t.Fatalf("connection held %v", el)
	}

	// Headers above MaxHeaderBytes are refused.
	s2, _ := newTestServer(t, Options{})
	addr2, _, _ := startServer(t, s2, Timeouts{MaxHeaderBytes: 1024})
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr2+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 8<<10))
	resp, err := (&http.Client{Timeout: waitTimeout}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("big headers: status %d, want 431", resp.StatusCode)
	}
}
