// Package platformsim plays the Monetix platform against a running Tiyn
// over HTTP: it opens customer accounts through the REST API, sends signed
// verify → check_deposit → callback sequences from concurrent workers —
// with declines, late successes, intermediate statuses, replayed and
// concurrently duplicated callbacks, and verifies of unknown customers —
// and finally reads every balance back and compares it with what it
// expects. It is `tiyn simulate`: the demo, the end-to-end driver and the
// benchmark's load generator.
//
// With Config.GateListeners it is the platform's Gate too: package
// platform keeps the record of every payment it makes and serves the
// Gate's payment status from it (gates.go), and with Config.DropShare it
// never delivers some payments' callbacks and waits at the end for Tiyn's
// status poller to settle them as the platform did (recover.go). The
// package's files: sim.go the run and its workers, config.go, wire.go the
// bodies (through the Monetix adapter's BodyWriter) and the answers,
// client.go HTTP, accounts.go the accounts and the balance check,
// gates.go and recover.go the platform's side, report.go, stats.go,
// progress.go.
//
// Every body is the Monetix adapter's: monetix.BodyWriter writes the
// documents of the adapter's own builders, signed by its signer. Because
// the simulator is also the load generator on small machines, the hot path
// avoids work: bodies go into reused buffers (one HMAC per body, no
// marshalling), answers are scanned without encoding/json, latency goes into
// fixed histograms owned by each sender, connections are kept alive, and
// nothing is logged per request.
package platformsim

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/tools/platformsim/platform"
)

// ErrSetup is wrapped by the error Run returns when the run could not
// start: the accounts could not be opened (wrong URL or token, server down).
var ErrSetup = errors.New("platformsim: setup failed")

// MaxPreparedPayments bounds ModeCallbacks runs: every callback body is
// built and signed before the clock starts and kept in memory (~1 KiB per
// payment).
const MaxPreparedPayments = 1_000_000

// maxErrorSamples is how many error descriptions a report keeps.
const maxErrorSamples = 10

// opsPerPayment spaces operation ids: a payment uses at most two
// operations (a decline and a late success).
const opsPerPayment = 4

// checkAfterCancel bounds the final balance check after ctx was cancelled.
const checkAfterCancel = 30 * time.Second

// sim is the state of one run.
type sim struct {
	cfg  Config
	http *http.Client

	requestsURL, callbacksURL, accountsURL *url.URL
	jsonHdr, restHdr                       http.Header

	logMinAmount, logMaxAmount float64 // of the amounts drawn

	started time.Time // when the run began

	prefix string // customer id prefix, unique per run
	runTag string
	opBase int64

	customers []customer

	senders   []*sender
	sendersMu sync.Mutex

	next      atomic.Int64 // next payment index of the current phase
	phaseDone atomic.Int64 // payments finished in the current phase

	payments, succeeded, declined, late, failed, uncertain atomic.Int64
	callbacks, retries                                     atomic.Int64
	checked, actualTotal                                   atomic.Int64
	effects                                                [numEffects]atomic.Int64
	errs                                                   errorLog

	// The platform's side (nil and empty without a Gate): its record of
	// the payments made, the Gate servers, the payments whose callbacks
	// were dropped and what came of them.
	record   *platform.Payments
	gates    []*gateServer
	drops    dropLog
	recovery recoveryResult

	// The platform's record of the day (recon.go): the Data API served
	// from it, the injected faults, the CSV reports written.
	dataAPI *platform.DataAPI
	faults  faultState
	reports []ReportFile
}

// customer is one account opened for the run.
type customer struct {
	id      string
	start   int64        // balance when the run opened it (0 for a new account)
	want    atomic.Int64 // sum of payments certainly credited
	maybe   atomic.Int64 // sum of payments whose success callback has an unknown fate
	dropped atomic.Int64 // sum of successful payments whose callbacks were dropped, not yet seen credited
}

// errorLog counts unexpected outcomes and keeps the first few.
type errorLog struct {
	n       atomic.Int64
	mu      sync.Mutex
	samples []string
}

func (e *errorLog) add(msg string) {
	if e.n.Add(1) > maxErrorSamples {
		return
	}
	e.mu.Lock()
	e.samples = append(e.samples, msg)
	e.mu.Unlock()
}

// Run plays cfg against the Tiyn at cfg.BaseURL and returns the report.
// With GateListeners it is the platform's Gate as well, for the whole run,
// and at the end it waits for the dropped payments to be recovered.
// Unexpected answers, failed requests and balance mismatches are in the
// report (see Report.OK), not in the error. The error wraps ErrConfig for a
// refused Config, ErrSetup when the accounts could not be opened, or is
// ctx's error when the run was cancelled (the report then covers what ran,
// and balances are still checked, with payments in flight as uncertain).
func Run(ctx context.Context, cfg Config) (Report, error) {
	defer closeListeners(cfg.GateListeners)
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return Report{}, err
	}
	if cfg.Mode == ModeCallbacks && cfg.Payments > MaxPreparedPayments {
		return Report{}, fmt.Errorf("%w: mode %q keeps every callback in memory: at most %d payments",
			ErrConfig, ModeCallbacks, MaxPreparedPayments)
	}
	s, err := newSim(cfg)
	if err != nil {
		return Report{}, err
	}
	defer s.http.CloseIdleConnections()
	s.startGates()
	defer s.stopGates()

	if err := s.openAccounts(ctx); err != nil {
		return s.report(0, nil), err
	}
	var elapsed time.Duration
	switch cfg.Mode {
	case ModeCallbacks:
		elapsed = s.runCallbacks(ctx)
	default:
		elapsed = s.runPhase(ctx, "payments", int64(cfg.Payments), cfg.Duration, cfg.Rate, (*worker).fullPayment)
	}

	s.recoverDropped(ctx)
	if cfg.ReconFaults {
		s.injectOrphans()
	}

	checkCtx := ctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		checkCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), checkAfterCancel)
		defer cancel()
	}
	mismatches := s.checkBalances(checkCtx)
	var reportErr error
	s.reports, reportErr = s.writeReports()
	if reportErr != nil {
		s.errs.add(reportErr.Error())
	}
	r, runErr := s.report(elapsed, mismatches), ctx.Err()
	s.serveAfter(ctx, r)
	return r, runErr
}

func newSim(cfg Config) (*sim, error) {
	parse := func(path string) (*url.URL, error) {
		u, err := url.Parse(cfg.BaseURL + path)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
		return u, nil
	}
	s := &sim{cfg: cfg, http: newHTTPClient(cfg.Concurrency, cfg.RequestTimeout), started: time.Now(),
		logMinAmount: math.Log(float64(cfg.AmountMinMinor)), logMaxAmount: math.Log(float64(cfg.AmountMaxMinor))}
	var err error
	if s.requestsURL, err = parse(monetix.RequestsPath); err != nil {
		return nil, err
	}
	if s.callbacksURL, err = parse(monetix.CallbacksPath); err != nil {
		return nil, err
	}
	if s.accountsURL, err = parse(accountsPath); err != nil {
		return nil, err
	}
	s.jsonHdr = http.Header{"Content-Type": {"application/json"}, "User-Agent": {"tiyn-simulate"}}
	s.restHdr = http.Header{
		"Content-Type":  {"application/json"},
		"Accept":        {"application/json"},
		"Authorization": {"Bearer " + cfg.APIToken},
		"User-Agent":    {"tiyn-simulate"},
	}

	var r [13]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil, fmt.Errorf("platformsim: crypto/rand: %w", err)
	}
	tag := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(r[:5]))
	s.prefix = "sim-" + tag + "-"
	s.runTag = "sim" + tag
	// Operation ids: a random base in [1e13, 2^52) leaves room for
	// MaxPayments·opsPerPayment ids above it within int64 and keeps them
	// in the range of the platform's (the page shows 36011000001676).
	const lo, span = int64(1e13), int64(1<<52) - int64(1e13)
	s.opBase = lo + int64(binary.BigEndian.Uint64(r[5:])%uint64(span))

	if _, err := newSigner(cfg.Secret, cfg.ProjectID, s.runTag); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if len(cfg.GateListeners) > 0 || cfg.ReportCSV != "" || cfg.ReconFaults {
		s.record = platform.NewPayments()
	}
	if cfg.ReconFaults {
		s.planFaults()
	}
	if len(cfg.GateListeners) > 0 {
		if err := s.newDataAPI(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
		if err := s.newGates(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
	}
	s.customers = make([]customer, cfg.Customers)
	for i := range s.customers {
		s.customers[i].id = s.prefix + strconv.Itoa(i+1)
	}
	return s, nil
}

// plan is what happens to one payment. It depends only on the seed and the
// payment's index.
type plan struct {
	index         int64
	customer      int
	amount        int64
	decline       bool // final outcome is a decline
	late          bool // declined, then a late success
	intermediate  bool // a "processing" callback first
	replay        bool // final callback delivered again after its 200
	concurrent    bool // final callback delivered twice at once
	unknownVerify bool // an extra verify for an unknown customer
	drop          bool // no callback delivered: the platform's record (the Gate) alone knows the outcome
	// fault is the reconciliation break injected into the payment's
	// record (Config.ReconFaults; recon.go).
	fault platform.Fault
}

// makePlan draws the plan of payment i from a generator reseeded with
// (Seed, i), so plans do not depend on which worker runs them.
func (s *sim) makePlan(pcg *mrand.PCG, rng *mrand.Rand, i int64) plan {
	pcg.Seed(uint64(s.cfg.Seed), uint64(i))
	c := &s.cfg
	p := plan{index: i, customer: rng.IntN(len(s.customers))}
	// Log-uniform within the project's limits: with kassa24's, as many
	// payments between 1 and 10 KZT as between 10,000 and 100,000 KZT, so
	// most are small and a few are large.
	a := math.Round(math.Exp(s.logMinAmount + rng.Float64()*(s.logMaxAmount-s.logMinAmount)))
	p.amount = min(max(int64(a), c.AmountMinMinor), c.AmountMaxMinor)
	switch u := rng.Float64(); {
	case u < c.DeclineShare:
		p.decline = true
	case u < c.DeclineShare+c.LateSuccessShare:
		p.late = true
	}
	p.intermediate = rng.Float64() < c.IntermediateShare
	p.replay = rng.Float64() < c.DuplicateShare
	p.concurrent = rng.Float64() < c.ConcurrentDupShare
	p.unknownVerify = rng.Float64() < c.UnknownVerifyShare
	p.drop = rng.Float64() < c.DropShare // drawn last: the other draws of a seed stay as they were
	s.applyFault(&p)
	return p
}

// step is one callback of a payment; its body is bodies[start:end] of the
// payment's buffer.
type step struct {
	kind       cbKind
	final      bool
	op         int64 // operation.id
	start, end int
}

// maxSteps is the most callbacks a plan has: processing, decline, success.
const maxSteps = 3

// worker runs payments one after the other.
type worker struct {
	sim       *sim
	sg        *signer
	main, aux *sender // aux sends the second copy of a concurrent duplicate
	pcg       *mrand.PCG
	rng       *mrand.Rand
	body      []byte // request scratch
	arena     []byte // callback bodies of the current payment (ModeFull)
	steps     [maxSteps]step
	timer     *time.Timer
}

func (s *sim) newWorker() *worker {
	pcg := mrand.NewPCG(0, 0)
	sg, err := newSigner(s.cfg.Secret, s.cfg.ProjectID, s.runTag)
	if err != nil { // newSim made one from the same config
		panic(fmt.Sprintf("platformsim: a validated config refused: %v", err))
	}
	w := &worker{
		sim: s, sg: sg,
		main: newSender(s), aux: newSender(s),
		pcg: pcg, rng: mrand.New(pcg),
		body: make([]byte, 0, 512), arena: make([]byte, 0, 4<<10),
	}
	s.sendersMu.Lock()
	s.senders = append(s.senders, w.main, w.aux)
	s.sendersMu.Unlock()
	return w
}

// runPhase runs job for payment indices 0, 1, … on Concurrency workers
// until n jobs (n > 0) or d (d > 0) or ctx ends, starting at most rate
// jobs per second (rate > 0). Jobs in flight at the end are completed.
// It returns the phase's wall time.
func (s *sim) runPhase(ctx context.Context, name string, n int64, d time.Duration, rate float64, job func(*worker, context.Context, int64)) time.Duration {
	s.next.Store(0)
	s.phaseDone.Store(0)
	start := time.Now()
	var deadline time.Time
	if d > 0 {
		deadline = start.Add(d)
	}
	stopProgress := s.startProgress(name, n, start, d)
	var wg sync.WaitGroup
	for range s.cfg.Concurrency {
		w := s.newWorker()
		wg.Go(func() {
			for {
				i := s.next.Add(1) - 1
				if (n > 0 && i >= n) || ctx.Err() != nil {
					return
				}
				if rate > 0 {
					due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
					if !deadline.IsZero() && due.After(deadline) {
						return
					}
					if wait := time.Until(due); wait > 0 && !w.sleep(ctx, wait) {
						return
					}
				}
				if !deadline.IsZero() && !time.Now().Before(deadline) {
					return
				}
				job(w, ctx, i)
				s.phaseDone.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	return elapsed
}

// sleep waits d on the worker's reused timer unless ctx ends first.
func (w *worker) sleep(ctx context.Context, d time.Duration) bool {
	if w.timer == nil {
		w.timer = time.NewTimer(d)
	} else {
		w.timer.Reset(d)
	}
	select {
	case <-w.timer.C:
		return true
	case <-ctx.Done():
		w.timer.Stop()
		return false
	}
}

// fullPayment plays payment i from verify to its last callback (ModeFull).
func (w *worker) fullPayment(ctx context.Context, i int64) {
	s := w.sim
	p := s.makePlan(w.pcg, w.rng, i)
	s.payments.Add(1)
	paymentID, ok := w.openDeposit(ctx, &p)
	if !ok {
		s.failed.Add(1)
		return
	}
	s.recordOpen(&p, paymentID)
	n := w.buildSteps(&p, paymentID)
	w.deliver(ctx, &p, paymentID, w.arena, w.steps[:n])
}

// openDeposit sends the payment's verify (and the unknown-customer verify
// if planned) and its check_deposit; it returns the payment id.
func (w *worker) openDeposit(ctx context.Context, p *plan) (string, bool) {
	cust := w.sim.customers[p.customer].id
	if !w.verify(ctx, cust, monetix.CodeOK) {
		return "", false
	}
	if p.unknownVerify {
		w.verify(ctx, w.sim.prefix+"ghost-"+strconv.FormatInt(p.index, 10), monetix.CodeAccountNotFound)
	}
	return w.checkDeposit(ctx, cust, p.amount)
}

// verify sends a verify and checks its answer code.
func (w *worker) verify(ctx context.Context, customerID string, want int) bool {
	s := w.sim
	w.body = w.sg.verifyBody(w.body[:0], customerID)
	fail := w.main.retrying(ctx, func() (string, bool) {
		status, ans, err := w.main.post(ctx, latVerify, s.requestsURL, s.jsonHdr, w.body)
		if err != nil || status != http.StatusOK {
			return httpFailure("verify "+customerID, status, ans, err)
		}
		a, ok := parseAnswer(ans, false)
		switch {
		case !ok:
			return "verify " + customerID + ": unreadable answer " + snippet(ans), false
		case a.Code == want:
			return "", false
		case a.Code == monetix.CodeGeneralError:
			return fmt.Sprintf("verify %s: code %d %s", customerID, a.Code, snippet(ans)), true
		}
		return fmt.Sprintf("verify %s: code %d, want %d: %s", customerID, a.Code, want, snippet(ans)), false
	})
	if fail != "" {
		s.errs.add(fail)
		return false
	}
	return true
}

// checkDeposit sends a check_deposit and returns the payment id answered.
func (w *worker) checkDeposit(ctx context.Context, customerID string, amount int64) (string, bool) {
	s := w.sim
	w.body = w.sg.checkDepositBody(w.body[:0], customerID, amount)
	var paymentID string
	fail := w.main.retrying(ctx, func() (string, bool) {
		status, ans, err := w.main.post(ctx, latCheckDeposit, s.requestsURL, s.jsonHdr, w.body)
		if err != nil || status != http.StatusOK {
			return httpFailure("check_deposit "+customerID, status, ans, err)
		}
		a, ok := parseAnswer(ans, true)
		switch {
		case !ok:
			return "check_deposit " + customerID + ": unreadable answer " + snippet(ans), false
		case a.Code == monetix.CodeOK && a.PaymentID != "":
			paymentID = a.PaymentID
			return "", false
		case a.Code == monetix.CodeOK:
			return "check_deposit " + customerID + ": code 0 without a payment_id: " + snippet(ans), false
		case a.Code == monetix.CodeGeneralError:
			return fmt.Sprintf("check_deposit %s: code %d %s", customerID, a.Code, snippet(ans)), true
		}
		return fmt.Sprintf("check_deposit %s: code %d, want 0: %s", customerID, a.Code, snippet(ans)), false
	})
	if fail != "" {
		s.errs.add(fail)
		return "", false
	}
	return paymentID, true
}

// buildSteps writes the payment's callbacks into w.arena and w.steps and
// returns how many there are.
func (w *worker) buildSteps(p *plan, paymentID string) int {
	s := w.sim
	w.arena = w.arena[:0]
	base := s.opBase + p.index*opsPerPayment
	params := cbParams{
		paymentID:   paymentID,
		operationID: base + 1,
		amount:      p.amount,
		customerID:  s.customers[p.customer].id,
		providerPay: "k24-" + strconv.FormatInt(base+1, 10),
	}
	n := 0
	add := func(kind cbKind, final bool) {
		params.kind = kind
		start := len(w.arena)
		w.arena = w.sg.callbackBody(w.arena, params)
		w.steps[n] = step{kind: kind, final: final, op: params.operationID, start: start, end: len(w.arena)}
		n++
	}
	if p.intermediate {
		add(cbProcessing, false)
	}
	switch {
	case p.decline:
		add(cbDecline, true)
	case p.late:
		add(cbDecline, false)
		params.operationID = base + 2 // the late success is a new operation
		add(cbSuccess, true)
	default:
		add(cbSuccess, true)
	}
	return n
}

// deliver sends the payment's callbacks in order and books the outcome:
// a success answered 200 is credited for sure; a success never answered
// 200 may or may not have been applied (uncertain). Each step changes the
// platform's record first, then the platform tells Tiyn — or, for a
// dropped payment, does not (dropPayment).
func (w *worker) deliver(ctx context.Context, p *plan, paymentID string, bodies []byte, steps []step) {
	s := w.sim
	if p.fault != platform.FaultNone {
		w.deliverFault(ctx, p, paymentID, bodies, steps)
		return
	}
	if p.drop {
		for _, st := range steps {
			s.recordStep(paymentID, st)
		}
		s.dropPayment(p, paymentID, steps)
		return
	}
	what := "payment " + strconv.FormatInt(p.index, 10)
	var credited, unknown, declined bool
	for _, st := range steps {
		s.recordStep(paymentID, st)
		body := bodies[st.start:st.end]
		var got bool
		if st.final && p.concurrent {
			got = w.sendTwice(ctx, st.kind, body, what)
		} else {
			got = w.main.sendCallback(ctx, st.kind, body, what)
		}
		if st.final && p.replay && got {
			w.main.sendCallback(ctx, st.kind, body, what+" (replay)")
		}
		switch {
		case st.kind == cbSuccess && got:
			credited = true
		case st.kind == cbSuccess:
			unknown = true
		case st.kind == cbDecline && st.final && got:
			declined = true
		}
	}
	c := &s.customers[p.customer]
	switch {
	case credited:
		c.want.Add(p.amount)
		s.succeeded.Add(1)
		if p.late {
			s.late.Add(1)
		}
	case unknown:
		c.maybe.Add(p.amount)
		s.uncertain.Add(1)
	case declined:
		s.declined.Add(1)
	}
}

// sendTwice delivers the same callback from two goroutines at once and
// reports whether either got a 200.
func (w *worker) sendTwice(ctx context.Context, kind cbKind, body []byte, what string) bool {
	var second bool
	var wg sync.WaitGroup
	wg.Go(func() { second = w.aux.sendCallback(ctx, kind, body, what+" (concurrent copy)") })
	first := w.main.sendCallback(ctx, kind, body, what)
	wg.Wait()
	return first || second
}

// sendCallback delivers one callback: once, or in Platform mode until it
// is answered 200. It checks the effect Tiyn names and reports whether the
// callback got a 200.
func (snd *sender) sendCallback(ctx context.Context, kind cbKind, body []byte, what string) bool {
	s := snd.sim
	s.callbacks.Add(1)
	fail := snd.retrying(ctx, func() (string, bool) {
		status, ans, err := snd.post(ctx, latCallback, s.callbacksURL, s.jsonHdr, body)
		if err != nil || status != http.StatusOK {
			msg, _ := httpFailure("callback "+kind.String()+" of "+what, status, ans, err)
			return msg, true // the platform retries anything but a 200
		}
		eff := callbackEffect(ans)
		s.effects[eff].Add(1)
		if !effectFits(kind, eff) {
			s.errs.add(fmt.Sprintf("callback %s of %s: answered effect %q: %s", kind, what, effectNames[eff], snippet(ans)))
		}
		return "", false
	})
	if fail != "" {
		s.errs.add(fail)
		return false
	}
	return true
}

// prepared is a payment whose deposit is open and whose callbacks are
// built (ModeCallbacks).
type prepared struct {
	plan      plan
	paymentID string
	bodies    []byte
	steps     [maxSteps]step
	n         uint8
	ok        bool
}

// runCallbacks opens every deposit (untimed), then times the callbacks.
func (s *sim) runCallbacks(ctx context.Context) time.Duration {
	ready := make([]prepared, s.cfg.Payments)
	s.runPhase(ctx, "opening deposits", int64(len(ready)), 0, 0, func(w *worker, ctx context.Context, i int64) {
		pr := &ready[i]
		pr.plan = s.makePlan(w.pcg, w.rng, i)
		paymentID, ok := w.openDeposit(ctx, &pr.plan)
		if !ok {
			s.failed.Add(1)
			return
		}
		s.recordOpen(&pr.plan, paymentID)
		pr.paymentID = paymentID
		pr.n = uint8(w.buildSteps(&pr.plan, paymentID))
		pr.bodies = append([]byte(nil), w.arena...)
		pr.steps = w.steps
		pr.ok = true
	})
	if ctx.Err() != nil {
		return 0
	}
	return s.runPhase(ctx, "callbacks", int64(len(ready)), s.cfg.Duration, s.cfg.Rate, func(w *worker, ctx context.Context, i int64) {
		pr := &ready[i]
		if !pr.ok {
			return
		}
		s.payments.Add(1)
		w.deliver(ctx, &pr.plan, pr.paymentID, pr.bodies, pr.steps[:pr.n])
		pr.bodies = nil
	})
}
