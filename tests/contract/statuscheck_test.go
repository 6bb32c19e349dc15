package contract_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
	"github.com/tiyn/tiyn/tests/pgtest"
)

// The status poller's part of the contract (issue 16): claims, records and
// expiry through the ports, and the poller on top of the use cases with a
// platform that answers as the tests say.

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// answerFunc answers a status check about one deposit.
type answerFunc func(d domain.Deposit) (ports.StatusAnswer, error)

// fakePlatform is a payment platform whose status answers the test sets
// per payment id; unset ones have no answer. It counts every question.
type fakePlatform struct {
	mu      sync.Mutex
	answers map[string]answerFunc
	asked   map[string]int
}

func newFakePlatform() *fakePlatform {
	return &fakePlatform{answers: map[string]answerFunc{}, asked: map[string]int{}}
}

func (p *fakePlatform) set(paymentID string, f answerFunc) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answers[paymentID] = f
}

func (p *fakePlatform) times(paymentID string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.asked[paymentID]
}

func (p *fakePlatform) PaymentStatus(_ context.Context, d domain.Deposit) (ports.StatusAnswer, error) {
	p.mu.Lock()
	p.asked[d.PaymentID]++
	f := p.answers[d.PaymentID]
	p.mu.Unlock()
	if f == nil {
		return ports.StatusAnswer{}, &ports.NoAnswerError{Reason: "unavailable", Err: errors.New("connection refused")}
	}
	return f(d)
}

// says answers with an outcome about the deposit: its own amount unless
// minor is not zero.
func says(kind domain.OutcomeKind, status, op string, minor int64) answerFunc {
	return func(d domain.Deposit) (ports.StatusAnswer, error) {
		amount := d.Amount
		if minor != 0 {
			amount = domain.NewAmount(minor, d.Amount.Currency())
		}
		return ports.StatusAnswer{Known: true, Limits: limits,
			Outcome:  domain.Outcome{Kind: kind, Status: status, OperationID: op, Amount: amount, Method: d.Channel.Method},
			Evidence: fmt.Sprintf(`{"payment":{"id":%q,"status":%q},"operations":[{"id":%q}]}`, d.PaymentID, status, op)}, nil
	}
}

func unknownPayment(domain.Deposit) (ports.StatusAnswer, error) {
	return ports.StatusAnswer{Known: false, Evidence: `{"errors":[{"code":"3061"}]}`}, nil
}

// pollEnv is a service on the test's store with a clock the test moves,
// and a poller asking fakePlatform.
type pollEnv struct {
	*env
	clock    *fakeClock
	svc      *app.Service
	platform *fakePlatform
	poller   *app.StatusPoller
	mu       sync.Mutex
	events   []app.CheckEvent
}

func newPollEnv(t *testing.T, e *env, cfg app.StatusPollerConfig) *pollEnv {
	t.Helper()
	pe := &pollEnv{env: e, clock: &fakeClock{t: base}, platform: newFakePlatform()}
	pe.svc = app.NewService(e.store, pe.clock, e.ids)
	// The tests' own calls go through the same service and clock.
	pe.env.svc = pe.svc
	if cfg.Rate == 0 {
		cfg.Rate = app.MaxStatusPollRate // the tests do not wait for pacing
	}
	cfg.OnCheck = func(ev app.CheckEvent) {
		pe.mu.Lock()
		defer pe.mu.Unlock()
		pe.events = append(pe.events, ev)
	}
	p, err := app.NewStatusPoller(pe.svc, pe.platform, cfg)
	if err != nil {
		t.Fatal(err)
	}
	pe.poller = p
	return pe
}

func (pe *pollEnv) round(t *testing.T) app.RoundReport {
	t.Helper()
	rep, err := pe.poller.Round(t.Context())
	if err != nil {
		t.Fatalf("round: %v", err)
	}
	return rep
}

func (pe *pollEnv) check(t *testing.T, d domain.Deposit) ports.StatusCheck {
	t.Helper()
	c, err := pe.store.StatusCheck(t.Context(), d.ID)
	if err != nil {
		t.Fatalf("status check of %s: %v", d.ID, err)
	}
	return c
}

func claim(t *testing.T, e *env, q ports.ClaimStatusChecks) []string {
	t.Helper()
	var got []ports.StatusCheck
	e.update(t, func(ctx context.Context, tx ports.Tx) error {
		var err error
		got, err = tx.ClaimStatusChecks(ctx, q)
		return err
	})
	ids := make([]string, 0, len(got))
	for _, c := range got {
		if c.Deposit.Status != domain.DepositPending {
			t.Fatalf("claimed a %s deposit %s", c.Deposit.Status, c.Deposit.ID)
		}
		ids = append(ids, c.Deposit.ID)
	}
	return ids
}

func sameIDs(got []string, want ...string) bool {
	return strings.Join(got, ",") == strings.Join(want, ",")
}

func TestStatusChecksClaimRecordAndExpiryList(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		a := e.insertAccount(t, "cust-1", domain.KZT)
		old1 := e.insertDeposit(t, a, 100_00, base.Add(-10*time.Minute))
		old2 := e.insertDeposit(t, a, 200_00, base.Add(-8*time.Minute))
		young := e.insertDeposit(t, a, 300_00, base.Add(-time.Minute))
		done := e.insertDeposit(t, a, 400_00, base.Add(-time.Hour))
		settled, err := done.Apply(domain.Decision{Effect: domain.EffectDecline}, domain.Outcome{OperationID: "op"}, base)
		if err != nil {
			t.Fatal(err)
		}
		e.update(t, func(ctx context.Context, tx ports.Tx) error {
			return tx.TransitionDeposit(ctx, settled, domain.DepositPending)
		})

		at := func(d time.Duration) time.Time { return base.Add(d) }
		q := func(now time.Duration, lease time.Duration) ports.ClaimStatusChecks {
			return ports.ClaimStatusChecks{CreatedBefore: at(now - 5*time.Minute), Now: at(now), LeaseUntil: at(now + lease), Limit: 10}
		}
		// Due: pending and older than five minutes, oldest first; the
		// young and the settled ones are not.
		if got := claim(t, e, q(0, time.Minute)); !sameIDs(got, old1.ID, old2.ID) {
			t.Fatalf("first claim = %v, want [%s %s]", got, old1.ID, old2.ID)
		}
		// A live claim is not claimed again, AnyTime or not.
		if got := claim(t, e, q(30*time.Second, time.Minute)); len(got) != 0 {
			t.Fatalf("claimed again under a live lease: %v", got)
		}
		any := q(30*time.Second, time.Minute)
		any.AnyTime = true
		if got := claim(t, e, any); len(got) != 0 {
			t.Fatalf("AnyTime claimed under a live lease: %v", got)
		}
		// The lease ran out (the instance died): claimed again.
		if got := claim(t, e, q(2*time.Minute, time.Minute)); !sameIDs(got, old1.ID, old2.ID) {
			t.Fatalf("after the lease = %v", got)
		}
		// A record ends the claim and sets when the deposit is due again.
		e.update(t, func(ctx context.Context, tx ports.Tx) error {
			return tx.RecordStatusCheck(ctx, ports.StatusCheckResult{DepositID: old1.ID, At: at(2 * time.Minute),
				Result: "not_final", Answered: true, NextAt: at(17 * time.Minute)})
		})
		c, err := e.store.StatusCheck(ctx, old1.ID)
		if err != nil || c.Checks != 1 || !c.Answered || c.Last != "not_final" || !c.NextAt.Equal(at(17*time.Minute)) ||
			!c.LastAt.Equal(at(2*time.Minute)) || c.Deposit.ID != old1.ID || c.Escalated {
			t.Fatalf("StatusCheck after a record = %+v, %v", c, err)
		}
		// old2's claim runs to +3m; old1 is due at +17m.
		if got := claim(t, e, q(4*time.Minute, time.Minute)); !sameIDs(got, old2.ID) {
			t.Fatalf("claim at +4m = %v, want only %s", got, old2.ID)
		}
		any = q(4*time.Minute, time.Minute)
		any.AnyTime = true
		if got := claim(t, e, any); !sameIDs(got, old1.ID) {
			t.Fatalf("AnyTime at +4m = %v, want %s (old2 is claimed)", got, old1.ID)
		}
		// Answered only ever turns on; checks count every record.
		e.update(t, func(ctx context.Context, tx ports.Tx) error {
			return tx.RecordStatusCheck(ctx, ports.StatusCheckResult{DepositID: old1.ID, At: at(5 * time.Minute),
				Result: "unavailable", Answered: false, NextAt: at(time.Hour)})
		})
		if c, _ := e.store.StatusCheck(ctx, old1.ID); c.Checks != 2 || !c.Answered || c.Last != "unavailable" {
			t.Fatalf("after a second record = %+v", c)
		}
		// A young deposit's record (a check on demand) is kept too.
		if c, err := e.store.StatusCheck(ctx, young.ID); err != nil || c.Checks != 0 || c.Answered || !c.NextAt.IsZero() {
			t.Fatalf("never checked = %+v, %v", c, err)
		}
		if _, err := e.store.StatusCheck(ctx, "dep_nope"); !errors.Is(err, ports.ErrNotFound) {
			t.Fatalf("StatusCheck of an unknown deposit: %v", err)
		}
		limited := q(10*time.Minute, time.Minute)
		limited.Limit = 1
		if got := claim(t, e, limited); len(got) != 1 {
			t.Fatalf("Limit 1 claimed %v", got)
		}

		// The oldest pending deposit, and the expiry's list.
		oldest, ok, err := e.store.OldestPending(ctx)
		if err != nil || !ok || !oldest.Equal(old1.CreatedAt) {
			t.Fatalf("OldestPending = %v, %v, %v; want %v", oldest, ok, err, old1.CreatedAt)
		}
		list := func() []string {
			l, err := e.store.ListExpiring(ctx, ports.ExpiryQuery{CreatedBefore: at(-7 * time.Minute), Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, c := range l {
				ids = append(ids, c.Deposit.ID)
			}
			return ids
		}
		if got := list(); !sameIDs(got, old1.ID, old2.ID) {
			t.Fatalf("ListExpiring = %v", got)
		}
		e.update(t, func(ctx context.Context, tx ports.Tx) error { return tx.MarkEscalated(ctx, old2.ID, base) })
		if got := list(); !sameIDs(got, old1.ID) {
			t.Fatalf("ListExpiring after escalating %s = %v", old2.ID, got)
		}
		if c, _ := e.store.StatusCheck(ctx, old2.ID); !c.Escalated {
			t.Fatalf("escalation not recorded: %+v", c)
		}
		// Nothing pending: no oldest.
		for _, d := range []domain.Deposit{old1, old2, young} {
			exp, err := d.Expire(base)
			if err != nil {
				t.Fatal(err)
			}
			e.update(t, func(ctx context.Context, tx ports.Tx) error {
				return tx.TransitionDeposit(ctx, exp, domain.DepositPending)
			})
		}
		if _, ok, err := e.store.OldestPending(ctx); ok || err != nil {
			t.Fatalf("OldestPending with nothing pending: ok=%v err=%v", ok, err)
		}
		if got := e.deposit(t, old1).Status; got != domain.DepositExpired {
			t.Fatalf("stored status %s, want expired", got)
		}
	})
}

// claimAll claims from stores until nothing is left, from workers
// goroutines at once, and returns how often each deposit was claimed.
func claimAll(t *testing.T, stores []*sqlstore.Store, workers int) map[string]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[string]int{}
	errs := race(t, workers, func(ctx context.Context, i int) error {
		s := stores[i%len(stores)]
		for range 100 { // bounded: 40 deposits, 3 per claim
			var got []ports.StatusCheck
			err := s.Update(ctx, func(ctx context.Context, tx ports.Tx) error {
				var err error
				got, err = tx.ClaimStatusChecks(ctx, ports.ClaimStatusChecks{CreatedBefore: base, Now: base,
					LeaseUntil: base.Add(time.Hour), Limit: 3})
				return err
			})
			if errors.Is(err, ports.ErrConflict) {
				continue // lost a race on a fresh row: claim again
			}
			if err != nil {
				return err
			}
			if len(got) == 0 {
				return nil
			}
			mu.Lock()
			for _, c := range got {
				counts[c.Deposit.ID]++
			}
			mu.Unlock()
		}
		return errors.New("claims did not run dry")
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
	}
	return counts
}

func seedPending(t *testing.T, e *env, n int) []domain.Deposit {
	t.Helper()
	a := e.insertAccount(t, "cust-claims", domain.KZT)
	out := make([]domain.Deposit, n)
	for i := range out {
		out[i] = e.insertDeposit(t, a, int64(100_00+i), base.Add(-time.Hour+time.Duration(i)*time.Second))
	}
	return out
}

func wantClaimedOnce(t *testing.T, deps []domain.Deposit, counts map[string]int) {
	t.Helper()
	for _, d := range deps {
		if counts[d.ID] != 1 {
			t.Errorf("deposit %s claimed %d times, want once", d.ID, counts[d.ID])
		}
	}
	if len(counts) != len(deps) {
		t.Errorf("%d deposits claimed, want %d", len(counts), len(deps))
	}
}

func TestStatusChecksClaimedOnceUnderRaces(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		deps := seedPending(t, e, 40)
		wantClaimedOnce(t, deps, claimAll(t, []*sqlstore.Store{e.store}, 8))
	})
}

// Two instances (two pools) on one PostgreSQL database never claim one
// deposit both.
func TestStatusChecksClaimedOnceTwoInstancesPostgres(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	var stores []*sqlstore.Store
	for range 2 {
		s, err := sqlstore.Open(context.Background(), sqlstore.Options{URL: url, MaxOpenConns: pgMaxConns})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		stores = append(stores, s)
	}
	e := &env{cfg: storeConfig{name: "postgres", dialect: sqlstore.Postgres}, store: stores[0], ids: &system.IDs{}}
	deps := seedPending(t, e, 40)
	wantClaimedOnce(t, deps, claimAll(t, stores, 8))
}

func TestPollerSettlesThroughTheOnePath(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		pe := newPollEnv(t, e, app.StatusPollerConfig{After: 5 * time.Minute})
		a := pe.openAccount(t, "cust-1")
		open := func() domain.Deposit { return pe.openDeposit(t, "cust-1", 1500_00) }
		lost, declined, slow, silent, wrong, called, unknown := open(), open(), open(), open(), open(), open(), open()
		pe.platform.set(lost.PaymentID, says(domain.OutcomeSuccess, "success", "op-lost", 0))
		pe.platform.set(declined.PaymentID, says(domain.OutcomeDecline, "decline", "op-decl", 0))
		pe.platform.set(slow.PaymentID, says(domain.OutcomeIntermediate, "processing", "op-slow", 0))
		pe.platform.set(wrong.PaymentID, says(domain.OutcomeSuccess, "success", "op-wrong", 1500_01))
		pe.platform.set(called.PaymentID, says(domain.OutcomeSuccess, "success", "op-called", 0))
		pe.platform.set(unknown.PaymentID, unknownPayment)
		// called's callback arrives: it is no longer pending, nobody asks.
		if res := pe.settle(t, pe.success(called, "op-called")); res.Effect != domain.EffectCredit {
			t.Fatalf("callback: %s", res.Effect)
		}

		// Too young: nothing is asked.
		if rep := pe.round(t); rep.Claimed != 0 {
			t.Fatalf("a round before 5 minutes claimed %d", rep.Claimed)
		}
		pe.clock.advance(6 * time.Minute)
		young := pe.openDeposit(t, "cust-1", 1500_00) // opened now: too young
		rep := pe.round(t)
		want := map[string]int{"credited": 1, "declined": 1, "not_final": 1, "unavailable": 1, "exception": 1, "not_found": 1}
		if fmt.Sprint(rep.Results) != fmt.Sprint(want) || rep.Claimed != 6 {
			t.Fatalf("round = %+v, want claimed 6 and %v", rep, want)
		}
		if n := pe.platform.times(called.PaymentID); n != 0 {
			t.Fatalf("asked %d times about a deposit its callback settled", n)
		}
		if n := pe.platform.times(young.PaymentID); n != 0 {
			t.Fatal("asked about a deposit younger than After")
		}
		if got := pe.deposit(t, lost).Status; got != domain.DepositSucceeded {
			t.Fatalf("lost callback: deposit %s, want succeeded", got)
		}
		if got := pe.deposit(t, declined).Status; got != domain.DepositDeclined {
			t.Fatalf("declined: %s", got)
		}
		for _, d := range []domain.Deposit{slow, silent, wrong, unknown} {
			if got := pe.deposit(t, d).Status; got != domain.DepositPending {
				t.Fatalf("%s: %s, want pending", d.PaymentID, got)
			}
		}
		if c := pe.check(t, slow); c.Checks != 1 || !c.Answered || c.Last != "not_final" {
			t.Fatalf("slow = %+v", c)
		}
		if c := pe.check(t, silent); c.Checks != 1 || c.Answered || c.Last != "unavailable" {
			t.Fatalf("silent = %+v", c)
		}
		if c := pe.check(t, unknown); c.Answered || c.Last != "not_found" {
			t.Fatalf("unknown = %+v", c)
		}
		// The answer is the evidence, kept with its source.
		recs, err := pe.store.ListInbox(ctx, ports.InboxQuery{PaymentID: lost.PaymentID})
		if err != nil || len(recs) != 1 || recs[0].Source != ports.SourceStatusPoll || recs[0].Outcome != domain.EffectCredit ||
			!strings.Contains(recs[0].Body, "op-lost") {
			t.Fatalf("inbox of the recovered payment = %+v, %v", recs, err)
		}
		polled, err := pe.store.ListInbox(ctx, ports.InboxQuery{Source: ports.SourceStatusPoll, Limit: 100})
		if err != nil || len(polled) != 3 { // credited, declined, the mismatch
			t.Fatalf("status_poll records = %d (%v), want 3", len(polled), err)
		}
		cbs, err := pe.store.ListInbox(ctx, ports.InboxQuery{Source: ports.SourceCallback, Limit: 100})
		if err != nil || len(cbs) != 1 || cbs[0].PaymentID != called.PaymentID {
			t.Fatalf("callback records = %+v, %v", cbs, err)
		}
		// A mismatch is an exception, as for a callback.
		exc, err := pe.store.ListExceptions(ctx, ports.ExceptionQuery{Reason: domain.ReasonAmountMismatch})
		if err != nil || len(exc) != 1 || exc[0].PaymentID != wrong.PaymentID {
			t.Fatalf("mismatch exceptions = %+v, %v", exc, err)
		}
		// The lost callback arrives after all: a replay, credited once.
		if res := pe.settle(t, pe.success(lost, "op-lost")); res.Effect != domain.EffectReplay {
			t.Fatalf("the late callback: %s, want replay", res.Effect)
		}
		if got := pe.balance(t, a.ID()); got != 2*1500_00 {
			t.Fatalf("balance %d, want 3000.00 (lost + called)", got)
		}

		// The backoff: nothing is due a minute later; after 15 minutes the
		// pending ones are asked again.
		pe.clock.advance(time.Minute)
		if rep := pe.round(t); rep.Claimed != 0 {
			t.Fatalf("a round a minute later claimed %d", rep.Claimed)
		}
		pe.platform.set(slow.PaymentID, says(domain.OutcomeSuccess, "success", "op-slow", 0))
		pe.clock.advance(15 * time.Minute)
		rep = pe.round(t)
		if rep.Results["credited"] != 1 || pe.deposit(t, slow).Status != domain.DepositSucceeded {
			t.Fatalf("second round = %+v; slow %s", rep, pe.deposit(t, slow).Status)
		}
		if c := pe.check(t, silent); c.Checks != 2 || !c.NextAt.Equal(pe.clock.Now().Add(time.Hour)) {
			t.Fatalf("silent after two checks = %+v, want next in 1h", c)
		}
		pe.healthy(t)
	})
}

// A status answer and the callback for the same payment at the same
// moment: one credit, whichever wins; the other is a replay.
func TestPollerRacesCallbacks(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		pe := newPollEnv(t, e, app.StatusPollerConfig{After: 5 * time.Minute, Concurrency: 8})
		a := pe.openAccount(t, "cust-race")
		const n = 30
		deps := make([]domain.Deposit, n)
		for i := range deps {
			deps[i] = pe.openDeposit(t, "cust-race", int64(100_00+i))
			pe.platform.set(deps[i].PaymentID, says(domain.OutcomeSuccess, "success", fmt.Sprintf("op-%d", i), 0))
		}
		pe.clock.advance(10 * time.Minute)
		errs := race(t, n+1, func(ctx context.Context, i int) error {
			if i == n {
				_, err := pe.poller.Round(ctx)
				return err
			}
			_, err := pe.svc.SettleDeposit(ctx, pe.success(deps[i], fmt.Sprintf("op-%d", i)))
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("racer %d: %v", i, err)
			}
		}
		var want int64
		for i, d := range deps {
			want += int64(100_00 + i)
			if got := pe.deposit(t, d).Status; got != domain.DepositSucceeded {
				t.Fatalf("deposit %d: %s", i, got)
			}
		}
		if got := pe.balance(t, a.ID()); got != want {
			t.Fatalf("balance %d, want %d: a payment was credited twice or not at all", got, want)
		}
		if c := pe.healthy(t); c.DuplicateCredits != 0 {
			t.Fatalf("duplicate credits: %+v", c)
		}
	})
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		pe := newPollEnv(t, e, app.StatusPollerConfig{After: 5 * time.Minute})
		a := pe.openAccount(t, "cust-1")
		slow := pe.openDeposit(t, "cust-1", 1000_00)    // the platform answers, never finally
		silent := pe.openDeposit(t, "cust-1", 2000_00)  // the platform never answers
		late := pe.openDeposit(t, "cust-1", 3000_00)    // expires, then a success arrives
		refused := pe.openDeposit(t, "cust-1", 4000_00) // expires, then the platform's decline
		ghost := pe.openDeposit(t, "cust-1", 5000_00)   // the platform says it has no such payment
		pe.platform.set(ghost.PaymentID, unknownPayment)
		for _, d := range []domain.Deposit{slow, late, refused} {
			pe.platform.set(d.PaymentID, says(domain.OutcomeIntermediate, "processing", "", 0))
		}
		pe.clock.advance(6 * time.Minute)
		pe.round(t)

		// Not yet: a day short of the threshold.
		pe.clock.advance(app.DefaultPendingExpiry - 24*time.Hour)
		if rep := pe.round(t); rep.Expiry != (app.ExpiryReport{}) {
			t.Fatalf("expired before the threshold: %+v", rep.Expiry)
		}
		pe.clock.advance(24 * time.Hour)
		rep := pe.round(t)
		if rep.Expiry != (app.ExpiryReport{Expired: 3, Escalated: 2}) {
			t.Fatalf("expiry = %+v, want 3 expired and 2 escalated", rep.Expiry)
		}
		if got := pe.deposit(t, ghost).Status; got != domain.DepositPending {
			t.Fatalf("a payment the platform does not know: %s, want pending and raised", got)
		}
		for _, d := range []domain.Deposit{slow, late, refused} {
			if got := pe.deposit(t, d).Status; got != domain.DepositExpired {
				t.Fatalf("%s: %s, want expired", d.PaymentID, got)
			}
		}
		if got := pe.deposit(t, silent).Status; got != domain.DepositPending {
			t.Fatalf("never answered: %s, want still pending (raised, not expired silently)", got)
		}
		unknown, err := pe.store.ListExceptions(ctx, ports.ExceptionQuery{Reason: domain.ReasonStatusUnknown})
		if err != nil || len(unknown) != 2 || unknown[0].DepositID != silent.ID || unknown[0].AccountID != a.ID() ||
			unknown[1].DepositID != ghost.ID {
			t.Fatalf("status_unknown exceptions = %+v, %v", unknown, err)
		}
		// Raised once, however many rounds pass.
		pe.clock.advance(13 * time.Hour)
		if rep := pe.round(t); rep.Expiry != (app.ExpiryReport{}) {
			t.Fatalf("a later round: %+v", rep.Expiry)
		}
		if got, _ := pe.store.ListExceptions(ctx, ports.ExceptionQuery{Reason: domain.ReasonStatusUnknown}); len(got) != 2 {
			t.Fatalf("%d status_unknown exceptions, want 2", len(got))
		}
		// Expired deposits are not asked about any more.
		before := pe.platform.times(slow.PaymentID)
		pe.clock.advance(13 * time.Hour)
		pe.round(t)
		if pe.platform.times(slow.PaymentID) != before {
			t.Fatal("asked about an expired deposit")
		}
		// A late success still credits (the cash was collected); the
		// platform's decline of an expired deposit records its word.
		if res := pe.settle(t, pe.success(late, "op-late")); res.Effect != domain.EffectCredit {
			t.Fatalf("late success on expired: %s", res.Effect)
		}
		if res := pe.settle(t, pe.decline(refused, "op-refused")); res.Effect != domain.EffectDecline {
			t.Fatalf("decline on expired: %s", res.Effect)
		}
		if pe.deposit(t, refused).Status != domain.DepositDeclined || pe.balance(t, a.ID()) != 3000_00 {
			t.Fatalf("after the late answers: refused %s, balance %d", pe.deposit(t, refused).Status, pe.balance(t, a.ID()))
		}
		// The status_unknown exception claims nothing: no credit from it.
		if _, err := pe.svc.ResolveException(ctx, ports.ResolveException{ExceptionID: unknown[0].ID, Credit: true,
			Note: "customer says they paid", Actor: "op-1"}); !errors.Is(err, domain.ErrExceedsEvidence) {
			t.Fatalf("credit of a status_unknown exception: %v, want ErrExceedsEvidence", err)
		}
		// An operator who dismisses it expires the deposit.
		if _, err := pe.svc.ResolveException(ctx, ports.ResolveException{ExceptionID: unknown[0].ID,
			Note: "Monetix support: payment never completed", Actor: "op-1"}); err != nil {
			t.Fatal(err)
		}
		if got := pe.deposit(t, silent).Status; got != domain.DepositExpired {
			t.Fatalf("after the dismissal: %s, want expired", got)
		}
		pe.healthy(t)
	})
}

func TestStatusPollerSettings(t *testing.T) {
	t.Parallel()
	svc := app.NewService(nopStore{}, &fakeClock{t: base}, &system.IDs{})
	for _, tc := range []struct {
		name string
		cfg  app.StatusPollerConfig
	}{
		{"after below the minimum", app.StatusPollerConfig{After: 9 * time.Second}},
		{"negative rate", app.StatusPollerConfig{Rate: -1}},
		{"rate above the maximum", app.StatusPollerConfig{Rate: app.MaxStatusPollRate + 1}},
		{"negative concurrency", app.StatusPollerConfig{Concurrency: -1}},
		{"batch above a page", app.StatusPollerConfig{Batch: ports.MaxPageSize + 1}},
		{"zero backoff step", app.StatusPollerConfig{Backoff: []time.Duration{time.Minute, 0}}},
	} {
		if _, err := app.NewStatusPoller(svc, newFakePlatform(), tc.cfg); !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("%s: %v, want ErrInvalidInput", tc.name, err)
		}
	}
	if _, err := app.NewStatusPoller(svc, newFakePlatform(), app.StatusPollerConfig{After: app.MinStatusPollAfter}); err != nil {
		t.Errorf("the minimum: %v", err)
	}
	if _, err := app.NewStatusPoller(svc, nil, app.StatusPollerConfig{}); err == nil {
		t.Error("a poller without a source")
	}
}

// nopStore is a store nothing is asked of.
type nopStore struct{ ports.Store }
