package property_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"pgregory.net/rapid"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
)

// The lossy platform: payments whose callback the platform never
// delivers, and its Gate, which answers the status of every payment it
// made — truthfully, not yet finally, about another amount or method, or
// with a wrong signature. Each instance has a status poller that asks this
// Gate, in process (no network), and the machine asks it for rounds on
// demand. The rule stays the one of model.go: a payment whose cash was
// collected is credited once — by its callback or by its status answer,
// whichever comes first; the other is a replay.

// pollerAhead is how far the pollers' clock runs ahead of the deposits':
// every deposit of a check is then older than the poller's "after".
const pollerAhead = time.Hour

// pRecord is what the platform knows of one payment whose callback it
// dropped, and what its Gate answers about it.
type pRecord struct {
	paymentID string
	status    string // success, decline, processing
	op        int64
	amount    int64  // what the platform says was paid (a mismatch: not the deposit's)
	method    string // what the platform names
	badSig    bool   // the Gate's answer is signed with the wrong key
	body      []byte // the Gate's answer, byte for byte
	answer    *mCallback
	callback  *mCallback // the dropped callback, delivered late or never
}

// platform is the machine's Gate.
type platform struct {
	mu      sync.Mutex
	records map[string]*pRecord
}

func (p *platform) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	secret := func(id string) []byte {
		if id == projectID {
			return projectSecret
		}
		return nil
	}
	project, paymentID, err := monetix.VerifyStatusRequest(secret, body)
	if err != nil || r.URL.Path != monetix.GateStatusPath {
		http.Error(w, `{"errors":[{"message":"bad request"}]}`, http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	rec := p.records[paymentID]
	var answer []byte
	if rec != nil {
		answer = rec.body
	}
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if answer == nil {
		out, _ := monetix.SignedJSON(projectSecret, monetix.StatusNotFoundBody(project, paymentID))
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write(out)
		return
	}
	_, _ = w.Write(answer)
}

// inProcess sends every request to a handler, without a network.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// aheadClock is the wall clock run ahead.
type aheadClock struct{}

func (aheadClock) Now() time.Time { return time.Now().UTC().Add(pollerAhead) }

// attachPollers gives every instance a poller that asks the machine's Gate.
func (s *machine) attachPollers(t *rapid.T) {
	s.platform = &platform{records: map[string]*pRecord{}}
	s.m.answers = map[string]*mCallback{}
	gate, err := monetix.NewGate(monetix.GateConfig{URL: "http://127.0.0.1", Projects: []monetix.Project{{ID: projectID, Secret: projectSecret}},
		Client: &http.Client{Transport: inProcess{s.platform}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range s.instances {
		svc := app.NewService(in.faults, aheadClock{}, &system.IDs{})
		if in.poller, err = app.NewStatusPoller(svc, gate, app.StatusPollerConfig{Rate: app.MaxStatusPollRate, Concurrency: 4}); err != nil {
			t.Fatal(err)
		}
	}
}

// setAnswer fixes what the Gate answers about r (call with the lock free).
func (s *machine) setAnswer(t *rapid.T, r *pRecord) {
	key := projectSecret
	if r.badSig {
		key = []byte("not-the-project-key")
	}
	body, err := monetix.SignedJSON(key, monetix.BuildStatusAnswer(monetix.StatusAnswerParams{
		ProjectID: projectID, PaymentID: r.paymentID, PaymentStatus: r.status, Method: r.method, AmountMinor: r.amount,
		Currency: "KZT", CustomerID: s.m.deposits[r.paymentID].customerID,
		Operations: []monetix.StatusOperation{{ID: r.op, Status: r.status}},
		Date:       time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC),
	}))
	if err != nil {
		t.Fatal(err)
	}
	s.platform.mu.Lock()
	r.body = body
	s.platform.records[r.paymentID] = r
	s.platform.mu.Unlock()
	r.answer = s.m.answers[string(body)]
	if r.answer == nil {
		r.answer = &mCallback{body: body, paymentID: r.paymentID}
		s.m.answers[string(body)] = r.answer
	}
}

// paymentLost is a terminal payment whose callback the platform never
// delivers: check_deposit, then the platform's own record of the outcome.
func (s *machine) paymentLost(t *rapid.T) {
	acc := s.drawAccount(t, func(a *mAccount) bool { return a.status == "active" && a.balance < ceilingTiyn/2 })
	before := len(s.payments)
	s.openDeposit(t, acc, rapid.Int64Range(minTiyn, 5_000_000).Draw(t, "amount"))
	if len(s.payments) == before {
		t.Fatalf("check_deposit for active account %s opened nothing", acc.customerID)
	}
	d := s.m.deposits[s.payments[len(s.payments)-1]]
	r := &pRecord{paymentID: d.paymentID, op: s.ops.Add(1), amount: d.amount, method: "kassa24",
		status: rapid.SampledFrom([]string{"success", "success", "success", "decline", "processing", "processing"}).Draw(t, "platform status")}
	switch rapid.IntRange(0, 9).Draw(t, "platform variant") {
	case 0:
		r.amount += rapid.SampledFrom([]int64{-1, 1}).Draw(t, "delta")
	case 1:
		r.method = "qiwi"
	}
	s.setAnswer(t, r)
	s.dropCallback(t, r)
	// Often the late callback and a status round meet at once.
	if r.callback != nil && rapid.IntRange(0, 3).Draw(t, "race now") == 0 {
		s.pollRacesCallback(t)
		s.counts.add("PollRacesCallback")
	}
}

// dropCallback builds the callback the platform would have sent for r,
// without sending it.
func (s *machine) dropCallback(t *rapid.T, r *pRecord) {
	if r.status == "processing" {
		r.callback = nil
		return
	}
	body, err := monetix.SignedJSON(projectSecret, monetix.BuildCallback(monetix.CallbackParams{
		ProjectID: projectID, PaymentID: r.paymentID, PaymentStatus: r.status, Method: r.method,
		AmountMinor: r.amount, Currency: "KZT", OperationID: r.op, Date: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC),
	}))
	if err != nil {
		t.Fatal(err)
	}
	r.callback = &mCallback{body: body, paymentID: r.paymentID}
	s.m.callbacks = append(s.m.callbacks, r.callback)
}

func (s *machine) drawRecord(t *rapid.T, ok func(*pRecord) bool) *pRecord {
	var pool []string
	for _, p := range s.payments {
		if r := s.platform.records[p]; r != nil && ok(r) {
			pool = append(pool, p)
		}
	}
	if len(pool) == 0 {
		t.Skip("no suitable platform payment")
	}
	return s.platform.records[rapid.SampledFrom(pool).Draw(t, "platform payment")]
}

// platformSettles: a payment the platform was still processing is done.
func (s *machine) platformSettles(t *rapid.T) {
	r := s.drawRecord(t, func(r *pRecord) bool { return r.status == "processing" })
	r.status = rapid.SampledFrom([]string{"success", "success", "decline"}).Draw(t, "final status")
	r.op = s.ops.Add(1)
	s.setAnswer(t, r)
	s.dropCallback(t, r)
}

// statusWrongSignature: the Gate's answer about a payment turns out signed
// with another key (or is fixed again): never an answer.
func (s *machine) statusWrongSignature(t *rapid.T) {
	r := s.drawRecord(t, func(r *pRecord) bool { return s.m.deposits[r.paymentID].state == "pending" })
	r.badSig = !r.badSig
	s.setAnswer(t, r)
	s.statusPoll(t)
}

// expectPoll is the model's verdict on a status round: every deposit of
// this check still pending whose payment the platform finished and whose
// answer is authentic is settled as its callback would settle it (apply
// the rule once, now); the others change nothing. skip names a payment
// left out (its outcome is raced). It returns the count per result.
func (s *machine) expectPoll(skip string) map[string]int {
	want := map[string]int{}
	for _, p := range s.payments {
		d := s.m.deposits[p]
		if d.state != "pending" || p == skip {
			continue
		}
		r := s.platform.records[p]
		switch {
		case r == nil:
			want["not_found"]++
		case r.badSig:
			want[monetix.NoAnswerBadSignature]++
		case r.status == "processing":
			want[app.ResultNotFinal]++
		default:
			want[s.m.expectFor(p, r.op, r.status, r.amount, "KZT", r.method)]++
			r.answer.acked++
			r.answer.delivered++
		}
	}
	return want
}

// statusPoll runs one status round on demand on an instance and holds its
// results to the model's.
func (s *machine) statusPoll(t *rapid.T) {
	in := s.pick(t)
	want := s.expectPoll("")
	rep, err := in.poller.RoundNow(context.Background(), 1000)
	if err != nil {
		t.Fatalf("status round: %v", err)
	}
	for _, result := range []string{"credited", "declined", "exception", "replay", app.ResultNotFinal, monetix.NoAnswerBadSignature} {
		if rep.Results[result] != want[result] {
			t.Fatalf("status round: %s %d, model %d (results %v, model %v)", result, rep.Results[result], want[result], rep.Results, want)
		}
	}
	// Deposits of earlier checks on a shared database are unknown to this
	// platform: at least this check's own are not found.
	if rep.Results["not_found"] < want["not_found"] {
		t.Fatalf("status round: not_found %d, model at least %d", rep.Results["not_found"], want["not_found"])
	}
}

// lostCallbackLate: the dropped callback arrives after all, days late —
// a replay when the status answer settled the payment first.
func (s *machine) lostCallbackLate(t *rapid.T) {
	r := s.drawRecord(t, func(r *pRecord) bool { return r.callback != nil && r.callback.acked == 0 })
	want := s.m.expectFor(r.paymentID, r.op, r.status, r.amount, "KZT", r.method)
	s.deliver(t, r.callback, want, s.pick(t))
}

// pollRacesCallback: the status round and the late callback for the same
// payment at the same moment, on two instances when there are two. One of
// them applies it; the other is a replay (or, when the status round comes
// second and the payment is no longer pending, it is not asked about).
func (s *machine) pollRacesCallback(t *rapid.T) {
	r := s.drawRecord(t, func(r *pRecord) bool {
		return r.callback != nil && r.callback.acked == 0 && !r.badSig && s.m.deposits[r.paymentID].state == "pending"
	})
	poller, sender := s.pick(t), s.pick(t)
	s.expectPoll(r.paymentID)
	want := s.m.expectFor(r.paymentID, r.op, r.status, r.amount, "KZT", r.method)
	r.answer.delivered++ // the round may or may not apply it
	var (
		wg      sync.WaitGroup
		roundEr error
		code    int
		got     reply
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, roundEr = poller.poller.RoundNow(context.Background(), 1000)
	}()
	go func() {
		defer wg.Done()
		code, got = s.send(sender, r.callback)
	}()
	wg.Wait()
	r.callback.delivered++
	if roundEr != nil {
		t.Fatalf("status round racing a callback: %v", roundEr)
	}
	if code != http.StatusOK {
		t.Fatalf("callback racing a status round: HTTP %d", code)
	}
	r.callback.acked++
	if got.Effect != want && got.Effect != "replay" {
		t.Fatalf("callback racing a status round: effect %q, want %q or replay", got.Effect, want)
	}
	if want == "replay" && got.Effect != "replay" {
		t.Fatalf("callback racing a status round: effect %q for a payment already settled", got.Effect)
	}
}

// lostPending reports whether a lost payment is pending on a.
func (s *machine) lostPending(a *mAccount) bool {
	for _, p := range s.payments {
		d := s.m.deposits[p]
		if d.customerID == a.customerID && d.state == "pending" && s.platform.records[p] != nil {
			return true
		}
	}
	return false
}
