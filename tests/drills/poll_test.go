package drills_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
)

// The status poller under SIGKILL: payments whose callbacks never come,
// a Gate that answers their status truthfully, and `tiyn serve` killed at
// random moments while it asks. Whatever a kill interrupts — a claim, a
// request, the settle of an answer — every payment is credited exactly
// once in the end, by its status answer.

// drillGate is the platform's Gate for the drill: it knows the payments
// the drill made and answers their status as successes, signed.
type drillGate struct {
	secret []byte
	srv    *http.Server
	addr   string

	mu       sync.Mutex
	payments map[string]int64 // payment id → amount
	ops      map[string]int64 // payment id → the operation that collected it
	asked    map[string]int
	requests int
}

func startDrillGate(t *testing.T, secret []byte) *drillGate {
	t.Helper()
	g := &drillGate{secret: secret, payments: map[string]int64{}, ops: map[string]int64{}, asked: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.addr = ln.Addr().String()
	g.srv = &http.Server{Handler: g, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = g.srv.Serve(ln) }()
	t.Cleanup(func() { _ = g.srv.Close() })
	return g
}

func (g *drillGate) add(paymentID string, amount int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.payments[paymentID] = amount
	g.ops[paymentID] = operationSeq.Add(1)
}

func (g *drillGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	project, paymentID, err := monetix.VerifyStatusRequest(func(id string) []byte {
		if id == projectID {
			return g.secret
		}
		return nil
	}, body)
	if err != nil || r.URL.Path != monetix.GateStatusPath {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	g.mu.Lock()
	g.requests++
	g.asked[paymentID]++
	amount, known := g.payments[paymentID]
	op := g.ops[paymentID]
	g.mu.Unlock()
	answer, code := monetix.StatusNotFoundBody(project, paymentID), http.StatusNotFound
	if known {
		answer, code = monetix.BuildStatusAnswer(monetix.StatusAnswerParams{ProjectID: project, PaymentID: paymentID,
			PaymentStatus: "success", Method: "kassa24", AmountMinor: amount, Currency: "KZT",
			Operations: []monetix.StatusOperation{{ID: op, Status: "success"}}}), http.StatusOK
	}
	out, err := monetix.SignedJSON(g.secret, answer)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(out)
}

func (g *drillGate) counts() (requests, askedTwice int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, n := range g.asked {
		if n > 1 {
			askedTwice++
		}
	}
	return g.requests, askedTwice
}

// pollPlan bounds one kill-while-polling drill.
type pollPlan struct {
	customers, payments int
	kills               int
	gapMin, gapMax      time.Duration // between a restart and the next kill
	downMax             time.Duration
}

// TestDrillKillWhilePolling runs the drill on SQLite.
func TestDrillKillWhilePolling(t *testing.T) {
	parallelIfFast(t)
	plan := pick(
		pollPlan{customers: 5, payments: 60, kills: 4, gapMin: 300 * time.Millisecond, gapMax: 900 * time.Millisecond, downMax: 150 * time.Millisecond},
		pollPlan{customers: 20, payments: 400, kills: 20, gapMin: 200 * time.Millisecond, gapMax: 900 * time.Millisecond, downMax: 300 * time.Millisecond},
	)
	runPollDrill(t, "poll-sqlite", "sqlite:"+filepath.Join(t.TempDir(), "tiyn.db"), plan)
}

// TestDrillKillWhilePollingPostgres is the drill on a fresh PostgreSQL database.
func TestDrillKillWhilePollingPostgres(t *testing.T) {
	needFull(t)
	plan := pollPlan{customers: 20, payments: 400, kills: 20, gapMin: 200 * time.Millisecond, gapMax: 900 * time.Millisecond, downMax: 300 * time.Millisecond}
	runPollDrill(t, "poll-postgres", freshPostgres(t), plan)
}

// pollRate is the drill's TIYN_STATUS_POLL_RATE: fast enough that the
// rounds run while the kills come, slow enough that a round is still
// asking when one does.
const pollRate = 40

func runPollDrill(t *testing.T, name, dbURL string, plan pollPlan) {
	c := newCreds(t)
	gate := startDrillGate(t, c.secret)
	s := newServer(t, dbURL, c, "TIYN_MONETIX_GATE_URL=http://"+gate.addr, "TIYN_STATUS_POLL_AFTER=10s",
		fmt.Sprintf("TIYN_STATUS_POLL_RATE=%d", pollRate), "TIYN_MONETIX_GATE_TIMEOUT=1s")
	s.start()
	s.mustReady()
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	t.Logf("%s: seed %d, database %s, gate %s", name, seed, dbURL, gate.addr)

	// Payments whose callbacks the platform never sends.
	accounts := map[string]string{}
	want := map[string]int64{} // account id → balance expected
	payments := make([]string, 0, plan.payments)
	for i := range plan.customers {
		cust := fmt.Sprintf("%s-c%d", name, i)
		accounts[cust] = openAccount(t, s, c, cust).ID
	}
	opened := time.Now()
	for i := range plan.payments {
		cust := fmt.Sprintf("%s-c%d", name, i%plan.customers)
		amount := 100 + rng.Int64N(5_000_000)
		pid, err := openDeposit(t, s, c, cust, amount)
		if err != nil {
			t.Fatal(err)
		}
		gate.add(pid, amount)
		want[accounts[cust]] += amount
		payments = append(payments, pid)
	}

	// The first round comes 10 s after the deposits; kill from then on.
	time.Sleep(time.Until(opened.Add(10 * time.Second)))
	firstAsk := time.Now()
	for range 200 { // bounded: wait for the poller to start asking
		if n, _ := gate.counts(); n > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	kills := 0
	for kills < plan.kills {
		time.Sleep(plan.gapMin + time.Duration(rng.Int64N(int64(plan.gapMax-plan.gapMin))))
		s.kill()
		kills++
		time.Sleep(time.Duration(rng.Int64N(int64(plan.downMax))))
		s.start()
		s.mustReady()
	}
	lastKill := time.Now()

	// Every payment is settled by its status answer: a killed round's
	// claims run out (their lease: the round at the rate, two timeouts and
	// 10 s) and are asked about again.
	deadline := time.Now().Add(90 * time.Second)
	pending := payments
	for len(pending) > 0 && time.Now().Before(deadline) {
		var still []string
		for _, pid := range pending {
			var d struct {
				Status string `json:"status"`
			}
			if _, err := restJSON(s, c.readToken, http.MethodGet, "/v1/deposits/"+pid, nil, &d); err != nil {
				t.Fatal(err)
			}
			if d.Status != "succeeded" {
				still = append(still, pid)
			}
		}
		pending = still
		if len(pending) > 0 {
			time.Sleep(500 * time.Millisecond)
		}
	}
	recovered := time.Now()
	if len(pending) > 0 {
		t.Fatalf("%d of %d payments not credited 90 s after the last kill (e.g. %s)\n%s", len(pending), len(payments), pending[0], s.logTail())
	}

	// Exactly once: each balance is the sum of its payments, one credit
	// per payment, and each payment's evidence is a status answer.
	for _, id := range accounts {
		if got := balanceOf(t, s, c, id); got != want[id] {
			t.Errorf("account %s: balance %d, want %d", id, got, want[id])
		}
	}
	lc := checkLedger(t, s, c)
	if lc.Transfers != int64(len(payments)) {
		t.Errorf("%d transfers for %d payments", lc.Transfers, len(payments))
	}
	for _, pid := range payments {
		var page struct {
			Items []struct {
				Source  string `json:"source"`
				Outcome string `json:"outcome"`
			} `json:"items"`
		}
		if _, err := restJSON(s, c.readToken, http.MethodGet, "/v1/callbacks?payment_id="+pid, nil, &page); err != nil {
			t.Fatal(err)
		}
		credited := 0
		for _, it := range page.Items {
			if it.Source != "status_poll" {
				t.Errorf("payment %s: evidence from %q, want status_poll only", pid, it.Source)
			}
			if it.Outcome == "credited" {
				credited++
			}
		}
		if credited != 1 {
			t.Errorf("payment %s: %d credited records, want 1", pid, credited)
		}
	}
	s.checkNoPanic(t)
	requests, twice := gate.counts()
	if requests < len(payments) {
		t.Errorf("the Gate was asked %d times for %d payments", requests, len(payments))
	}
	figures(t, name, "payments", len(payments), "kills", kills, "gate_requests", requests, "asked_twice", twice,
		"polling_s", fmt.Sprintf("%.1f", lastKill.Sub(firstAsk).Seconds()),
		"recovered_after_last_kill_s", fmt.Sprintf("%.1f", recovered.Sub(lastKill).Seconds()), "lost", len(pending), "doubled", lc.DuplicateCredits)
	if t.Failed() {
		t.Log(s.logTail())
	}
}
