package platformsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"
)

// Limits of the HTTP side.
const (
	// maxAnswerBytes bounds how much of an answer is read; Tiyn's answers
	// are a few hundred bytes.
	maxAnswerBytes = 64 << 10
	// initialAnswerBuf is each sender's answer buffer to start with.
	initialAnswerBuf = 1 << 10
	// snippetLen bounds the part of an unexpected answer kept in an error sample.
	snippetLen = 160
	// Platform-mode backoff: 50 ms, doubling, capped at 2 s, jittered to
	// [d/2, d].
	backoffStart = 50 * time.Millisecond
	backoffCap   = 2 * time.Second
)

// Latency kinds, the keys of Report.Latency.
const (
	latVerify = iota
	latCheckDeposit
	latCallback
	numLat
)

var latNames = [numLat]string{"verify", "check_deposit", "callback"}

// newHTTPClient returns a client that keeps one idle connection per worker
// and sender (a concurrent duplicate uses a second one), so the run reuses
// its connections instead of paying a TCP handshake per request.
func newHTTPClient(concurrency int, timeout time.Duration) *http.Client {
	conns := 2*concurrency + 4
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil, // loopback only; never through a proxy
			DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// sender sends requests from one goroutine: it owns an answer buffer and
// its latency histograms, so recording needs neither locks nor allocation.
type sender struct {
	sim  *sim
	rbuf []byte
	lat  [numLat]histogram
}

func newSender(s *sim) *sender {
	return &sender{sim: s, rbuf: make([]byte, initialAnswerBuf)}
}

// post sends body to u and reads the answer into the sender's buffer (valid
// until the next call). A latency is recorded for answers with status 200.
// Headers are shared read-only maps built once per run.
func (snd *sender) post(ctx context.Context, lat int, u *url.URL, hdr http.Header, body []byte) (int, []byte, error) {
	return snd.do(ctx, lat, http.MethodPost, u, hdr, body)
}

func (snd *sender) do(ctx context.Context, lat int, method string, u *url.URL, hdr http.Header, body []byte) (int, []byte, error) {
	req := &http.Request{
		Method: method, URL: u, Host: u.Host, Header: hdr,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
	}
	start := time.Now()
	resp, err := snd.sim.http.Do(req.WithContext(ctx))
	if err != nil {
		return 0, nil, err
	}
	ans, err := snd.readAnswer(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return resp.StatusCode, ans, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode == http.StatusOK && lat >= 0 {
		snd.lat[lat].record(time.Since(start))
	}
	return resp.StatusCode, ans, nil
}

// readAnswer reads at most maxAnswerBytes into the reused buffer and
// drains (a bounded amount of) the rest so the connection can be reused.
func (snd *sender) readAnswer(r io.Reader) ([]byte, error) {
	buf := snd.rbuf[:cap(snd.rbuf)]
	n := 0
	for {
		if n == len(buf) {
			if len(buf) >= maxAnswerBytes {
				_, _ = io.CopyN(io.Discard, r, maxAnswerBytes)
				break
			}
			buf = append(buf, make([]byte, len(buf))...)
			buf = buf[:cap(buf)]
		}
		m, err := r.Read(buf[n:])
		n += m
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			snd.rbuf = buf
			return buf[:n], err
		}
	}
	snd.rbuf = buf
	return buf[:n], nil
}

// attemptFunc tries something once. It returns "" on success, or why it
// failed and whether trying again may help.
type attemptFunc func() (fail string, transient bool)

// retrying runs try once, or in Platform mode until it succeeds, fails
// permanently, ctx ends or RetryFor has passed, sleeping with jittered
// exponential backoff between attempts. It returns the last failure or "".
func (snd *sender) retrying(ctx context.Context, try attemptFunc) string {
	fail, transient := try()
	cfg := &snd.sim.cfg
	if fail == "" || !transient || !cfg.Platform {
		return fail
	}
	giveUp := time.Now().Add(cfg.RetryFor)
	delay := backoffStart
	for {
		d := delay/2 + rand.N(delay/2+1)
		if time.Now().Add(d).After(giveUp) {
			return fail + fmt.Sprintf(" (still failing after retrying for %s)", cfg.RetryFor)
		}
		if !sleepCtx(ctx, d) {
			return fail + " (" + ctx.Err().Error() + ")"
		}
		snd.sim.retries.Add(1)
		if fail, transient = try(); fail == "" || !transient {
			return fail
		}
		delay = min(2*delay, backoffCap)
	}
}

// sleepCtx sleeps for d unless ctx ends first; it reports whether it slept.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// snippet quotes the start of an answer for an error sample.
func snippet(b []byte) string {
	if len(b) > snippetLen {
		b = b[:snippetLen]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
		return fmt.Sprintf("%q…", b)
	}
	return fmt.Sprintf("%q", b)
}

// httpFailure describes a failed exchange and says whether it is transient
// (connection refused, timeout, 5xx: worth retrying in Platform mode).
func httpFailure(what string, status int, ans []byte, err error) (string, bool) {
	if err != nil {
		return what + ": " + err.Error(), true
	}
	return fmt.Sprintf("%s: HTTP %d %s", what, status, snippet(ans)), status >= 500
}
