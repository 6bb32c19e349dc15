package drills_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Bounds of the graceful shutdown drill.
const (
	// shutdownTimeout is the TIYN_SHUTDOWN_TIMEOUT the drill gives the
	// server: the process must be gone within it (plus exitSlack).
	shutdownTimeout = 5 * time.Second
	// exitSlack covers closing the store and the process exit after the
	// HTTP server's shutdown returned.
	exitSlack = 2 * time.Second
	// debitMinor is each drill debit: 1.00 KZT.
	debitMinor = 100
	// fundMinor funds the debit account: more than the debits can spend.
	fundMinor = 50_000_000
	// debitWorkers post debits concurrently with the simulation.
	debitWorkers = 2
	// debitRetryFor bounds the re-sending of debits whose answer was lost.
	debitRetryFor = 30 * time.Second
)

// debitLoad posts debits of debitMinor with unique Idempotency-Keys and
// remembers which keys got a 2xx (committed, per the API) and which got
// anything else (unknown: the server may have gone down in between).
type debitLoad struct {
	s         *server
	c         creds
	accountID string
	seq       atomic.Int64
	mu        sync.Mutex
	acked     map[string]string // key → transfer id
	unknown   []string
}

type debitAnswer struct {
	TransferID string `json:"transfer_id"`
	Replayed   bool   `json:"replayed"`
}

func (d *debitLoad) post(key string) (int, debitAnswer, error) {
	var a debitAnswer
	code, err := restJSON(d.s, d.c.writeToken, http.MethodPost, "/v1/accounts/"+d.accountID+"/debits",
		map[string]string{"amount": "1.00", "description": "drill " + key}, &a, "Idempotency-Key: "+key)
	return code, a, err
}

// run posts debits until stop is closed.
func (d *debitLoad) run(stop <-chan struct{}, wg *sync.WaitGroup) {
	for range debitWorkers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("drill-%d", d.seq.Add(1))
				code, a, err := d.post(key)
				d.mu.Lock()
				if err == nil && code/100 == 2 {
					d.acked[key] = a.TransferID
				} else {
					d.unknown = append(d.unknown, key)
				}
				d.mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond) // the server is down: do not spin
				}
			}
		})
	}
}

// settle re-sends every debit with an unknown fate until it gets a 2xx
// (a replay if it had been committed), then checks that every
// acknowledged debit is still there: its key replays with the same
// transfer. It returns how many debits exist now and how many had to be
// re-sent.
func (d *debitLoad) settle(t *testing.T) (acked, resent int) {
	t.Helper()
	deadline := time.Now().Add(debitRetryFor)
	for _, key := range d.unknown {
		for {
			code, a, err := d.post(key)
			if err == nil && code/100 == 2 {
				d.acked[key] = a.TransferID
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("debit %s: no 2xx within %s: %v", key, debitRetryFor, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for key, transfer := range d.acked {
		code, a, err := d.post(key)
		if err != nil || code != http.StatusOK || !a.Replayed || a.TransferID != transfer {
			t.Fatalf("acknowledged debit %s (transfer %s) is not a replay after the restart: %d %+v %v", key, transfer, code, a, err)
		}
	}
	return len(d.acked), len(d.unknown)
}

// TestDrillGracefulShutdown sends SIGTERM to `tiyn serve` while the
// simulator plays payments and the drill posts debits, restarts it, and
// repeats. The process must exit cleanly within TIYN_SHUTDOWN_TIMEOUT,
// and every answer it gave with a 2xx must be committed: each acknowledged
// callback credited (the simulator's balance check), each acknowledged
// debit still there after the restart (its key replays the same
// transfer), and the debit account's balance exactly what the debits
// leave. Last, a request held open longer than the timeout is cut off at
// the bound, with a non-zero exit status and nothing changed.
func TestDrillGracefulShutdown(t *testing.T) {
	parallelIfFast(t)
	rounds := pick(2, 8)
	c := newCreds(t)
	s := newServer(t, "sqlite:"+filepath.Join(t.TempDir(), "tiyn.db"), c,
		"TIYN_SHUTDOWN_TIMEOUT="+shutdownTimeout.String(), "TIYN_LOG_LEVEL=info")
	s.start()
	s.mustReady()

	customer := "debtor-" + randomHex(t, 4)
	acc := openAccount(t, s, c, customer)
	fund(t, s, c, customer, fundMinor)
	d := &debitLoad{s: s, c: c, accountID: acc.ID, acked: map[string]string{}}

	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 2))
	const upMin, upMax = 700 * time.Millisecond, 1500 * time.Millisecond
	sim := startSimulate(t, s, c, simOptions{duration: time.Duration(rounds) * (upMax + time.Second), concurrency: 8, seed: seed})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	d.run(stop, &wg)

	var exits []string
	var slowest time.Duration
	for i := range rounds {
		time.Sleep(upMin + time.Duration(rng.Int64N(int64(upMax-upMin))))
		took, err := s.signal(sigterm)
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if s.exitErr() != nil {
			t.Fatalf("round %d: tiyn serve exited with %v after SIGTERM; log tail:\n%s", i, s.exitErr(), s.logTail())
		}
		if took > shutdownTimeout+exitSlack {
			t.Fatalf("round %d: exit took %s, TIYN_SHUTDOWN_TIMEOUT is %s", i, took, shutdownTimeout)
		}
		slowest = max(slowest, took)
		exits = append(exits, took.Round(time.Millisecond).String())
		s.start()
		s.mustReady()
	}
	close(stop)
	wg.Wait()

	rep := sim.wait(t)
	checkSim(t, sim, rep)
	ackedUnderLoad := len(d.acked)
	acked, resent := d.settle(t)
	if got, want := balanceOf(t, s, c, acc.ID), int64(fundMinor-acked*debitMinor); got != want {
		t.Fatalf("debit account: balance %d tiyn, want %d after %d debits", got, want, acked)
	}
	lc := checkLedger(t, s, c)
	lost, doubled := lostDoubled(rep, lc, int64(1+acked))
	if lost != 0 || doubled != 0 || lc.CustomerBalanceTotal != rep.ExpectedMinor+fundMinor-int64(acked*debitMinor) {
		t.Fatalf("lost %d, doubled %d, customer balances %d", lost, doubled, lc.CustomerBalanceTotal)
	}
	if n := s.countLog(`"msg":"stopped"`); n != rounds {
		t.Fatalf("%d clean stops logged, want %d", n, rounds)
	}

	// A request that never finishes (a body trickling in, slower than the
	// shutdown timeout) must not hold the process: it is cut off at the
	// bound, and the exit status says so.
	held := make(chan slowConn, 1)
	head := "POST " + callbacksPath + " HTTP/1.1\r\nHost: " + s.addr + "\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
	go func() { held <- trickle(s.addr, head, "{", shutdownTimeout+stopTimeout) }()
	time.Sleep(1500 * time.Millisecond) // the request is in its handler, reading the body
	cutOff, err := s.signal(sigterm)
	if err != nil {
		t.Fatal(err)
	}
	if cutOff > shutdownTimeout+exitSlack || cutOff < shutdownTimeout {
		t.Fatalf("with a request held open, exit took %s; TIYN_SHUTDOWN_TIMEOUT is %s", cutOff, shutdownTimeout)
	}
	if s.exitErr() == nil || s.countLog("graceful shutdown timed out") != 1 {
		t.Fatalf("a cut-off shutdown exited with %v and logged no timeout; log tail:\n%s", s.exitErr(), s.logTail())
	}
	if r := <-held; r.err != nil {
		t.Fatalf("held request: %v", r.err)
	}
	s.start()
	s.mustReady()
	if got := checkLedger(t, s, c); got.Transfers != lc.Transfers || got.CustomerBalanceTotal != lc.CustomerBalanceTotal {
		t.Fatalf("the cut-off request changed the ledger: %+v, before %+v", got, lc)
	}
	s.checkNoPanic(t)
	figures(t, "graceful-shutdown", "sigterms", rounds, "exit_times", strings.Join(exits, ","),
		"slowest_exit", slowest.Round(time.Millisecond), "bound", shutdownTimeout, "exit_with_request_held", cutOff.Round(time.Millisecond),
		"debits_acknowledged", ackedUnderLoad, "debits_resent_after_unknown", resent,
		"payments", rep.Payments, "credited", rep.Succeeded, "retries", rep.Retries, "lost", lost, "doubled", doubled)
}
