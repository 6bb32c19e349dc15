package drills_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	serverpkg "github.com/tiyn/tiyn/adapters/server"
)

// Bounds of the slow-client drill.
const (
	// trickleEvery is the pace of a slow client: one byte a second.
	trickleEvery = time.Second
	// closeSlack is how long after its timeout the server may take to
	// close a slow connection.
	closeSlack = 3 * time.Second
	// normalRequests are sent while the slow clients hold their
	// connections; each must be answered within normalLatencyMax.
	normalRequests   = 60
	normalLatencyMax = 2 * time.Second
)

// slowConn is one trickling client and what became of it.
type slowConn struct {
	closedAfter time.Duration // when the server closed it (or answered)
	answer      string        // the first bytes the server sent, if any
	err         error         // a failure of the drill itself
}

// trickle opens a connection, writes head at once, then one byte of tail
// per trickleEvery until the server closes the connection or limit passes.
func trickle(addr, head, tail string, limit time.Duration) slowConn {
	start := time.Now()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return slowConn{err: err}
	}
	defer func() { _ = conn.Close() }()
	if _, err := io.WriteString(conn, head); err != nil {
		return slowConn{err: err}
	}
	closed := make(chan slowConn, 1)
	go func() {
		buf := make([]byte, 64)
		n, _ := conn.Read(buf) // returns on close, reset or an answer
		closed <- slowConn{closedAfter: time.Since(start), answer: string(buf[:n])}
	}()
	for i := 0; ; i++ {
		select {
		case res := <-closed:
			return res
		case <-time.After(trickleEvery):
		}
		if time.Since(start) > limit {
			return slowConn{err: fmt.Errorf("still open after %s", limit)}
		}
		_, _ = io.WriteString(conn, tail[i%len(tail):i%len(tail)+1]) // errors show up as the read returning
	}
}

// TestDrillSlowClients holds many connections that trickle their headers
// (slowloris) or their body one byte a second, and meanwhile sends normal
// requests: those must be answered promptly, and the server's
// ReadHeaderTimeout and ReadTimeout must close the slow connections.
func TestDrillSlowClients(t *testing.T) {
	t.Parallel()
	headerConns, bodyConns := pick(40, 200), pick(10, 50)
	c := newCreds(t)
	s := newServer(t, "sqlite:"+filepath.Join(t.TempDir(), "tiyn.db"), c)
	s.start()
	s.mustReady()
	customer := "slow-" + randomHex(t, 4)
	openAccount(t, s, c, customer)

	headerLimit := serverpkg.DefaultReadHeaderTimeout + closeSlack
	bodyLimit := serverpkg.DefaultReadTimeout + closeSlack
	results := make([]slowConn, headerConns+bodyConns)
	var wg sync.WaitGroup
	for i := range headerConns {
		wg.Go(func() {
			results[i] = trickle(s.addr, "POST "+callbacksPath+" HTTP/1.1\r\nHost: "+s.addr+"\r\n", "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", headerLimit+trickleEvery)
		})
	}
	body := string(callbackBody(t, c, "slow-unknown-payment", "success", 100))
	for i := range bodyConns {
		wg.Go(func() {
			head := "POST " + callbacksPath + " HTTP/1.1\r\nHost: " + s.addr + "\r\nContent-Type: application/json\r\nContent-Length: " +
				strconv.Itoa(len(body)) + "\r\n\r\n"
			results[headerConns+i] = trickle(s.addr, head, body, bodyLimit+trickleEvery)
		})
	}

	// Normal traffic while the slow clients hold their connections.
	time.Sleep(500 * time.Millisecond)
	var latencies []time.Duration
	verify := signed(t, c.secret, map[string]any{"type": "verify", "project_id": projectID, "customer_id": customer})
	for i := range normalRequests {
		start := time.Now()
		resp, err := send(http.MethodPost, s.url()+requestsPath, verify, "Content-Type: application/json")
		took := time.Since(start)
		if err != nil || resp.status != http.StatusOK {
			t.Fatalf("normal request %d during the slow clients: %v %d %s", i, err, resp.status, resp.body)
		}
		latencies = append(latencies, took)
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()

	slices.Sort(latencies)
	var headerMax, bodyMax time.Duration
	for i, r := range results {
		limit, kind := headerLimit, "header"
		if i >= headerConns {
			limit, kind = bodyLimit, "body"
		}
		switch {
		case r.err != nil:
			t.Errorf("slow %s connection %d: %v", kind, i, r.err)
		case r.closedAfter > limit:
			t.Errorf("slow %s connection %d closed after %s, bound %s", kind, i, r.closedAfter, limit)
		}
		if kind == "header" {
			headerMax = max(headerMax, r.closedAfter)
		} else {
			bodyMax = max(bodyMax, r.closedAfter)
		}
	}
	if p := latencies[len(latencies)-1]; p > normalLatencyMax {
		t.Errorf("a normal request took %s while slow clients were connected (bound %s)", p, normalLatencyMax)
	}
	if code, _ := s.readyz(); code != http.StatusOK || !s.running() {
		t.Fatalf("server not ready after the slow clients (/readyz %d)", code)
	}
	s.checkNoPanic(t)
	figures(t, "slow-clients", "header_tricklers", headerConns, "body_tricklers", bodyConns,
		"header_closed_by", headerMax.Round(100*time.Millisecond), "header_bound", serverpkg.DefaultReadHeaderTimeout,
		"body_closed_by", bodyMax.Round(100*time.Millisecond), "body_bound", serverpkg.DefaultReadTimeout,
		"normal_requests", normalRequests, "normal_p50", latencies[len(latencies)/2].Round(time.Microsecond),
		"normal_max", latencies[len(latencies)-1].Round(time.Microsecond))
}
