package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// The status poller: the platform as a second source of truth, intraday.
//
// A deposit that stays pending longer than After is asked about
// (ports.PaymentStatusSource: for Monetix the Gate's payment status), then
// again after each wait of the backoff, for as long as it stays pending. A
// final answer is applied through SettleDeposit — the one exactly-once
// path — with the answer as evidence (source status_poll), so a callback
// that arrives as well, before, after or at the same moment, is a replay.
// An answer that is not final (or "no such payment") only counts as an
// answer (and "no such payment" not even that); no answer at all (the platform unreachable, a 5xx, a wrong
// signature) changes nothing and is asked again later. Each round also
// applies the expiry (ExpirePending).
//
// Several instances on one database never ask about one deposit at the
// same moment: a round first claims its deposits (ports.Tx.ClaimStatusChecks,
// a conditional write) for a lease that outlasts the round; a claim an
// instance could not finish (it died) runs out and another takes it.

// Defaults and bounds of the poller's settings.
const (
	DefaultStatusPollAfter = 5 * time.Minute
	// MinStatusPollAfter: a deposit younger than this is never asked
	// about; the platform's callback normally comes within a minute.
	MinStatusPollAfter     = 10 * time.Second
	DefaultStatusPollRate  = 5.0 // requests per second, per instance
	MaxStatusPollRate      = 1000.0
	DefaultPollConcurrency = 4
	DefaultPollBatch       = 50
	// DefaultPendingExpiry is Kassa24's threshold time (36 days), after
	// which the platform declines a payment itself.
	DefaultPendingExpiry = 864 * time.Hour
	// DefaultPollRequestTimeout is what a round assumes one request may
	// take at most when it sizes its lease.
	DefaultPollRequestTimeout = 15 * time.Second
)

// StatusPollerConfig configures a StatusPoller. Zero fields take the
// defaults above.
type StatusPollerConfig struct {
	// After: a deposit pending this long is asked about (at least
	// MinStatusPollAfter).
	After time.Duration
	// Rate bounds the requests per second this poller makes, evenly
	// spaced (no bursts). Several instances each keep their own rate.
	Rate float64
	// Concurrency bounds the requests in flight.
	Concurrency int
	// Batch is how many deposits a round claims at most.
	Batch int
	// Backoff is the wait before each further check
	// (domain.DefaultStatusCheckBackoff when empty).
	Backoff []time.Duration
	// Expiry: a deposit pending this long expires (see ExpirePending);
	// negative turns expiry off.
	Expiry time.Duration
	// RequestTimeout is the longest one request may take (the source
	// enforces it); the lease of a round's claim is sized from it.
	RequestTimeout time.Duration
	// Idle is the wait between rounds that found nothing more to do
	// (default: After/10, between 1s and 30s).
	Idle time.Duration
	// OnCheck, when set, hears of every check made, for metrics and logs.
	OnCheck func(CheckEvent)
	// OnExpiry, when set, hears of every expiry pass that did something.
	OnExpiry func(ExpiryReport)
	// OnError, when set, hears of every round Run could not finish (the
	// store unavailable): Run waits Idle and tries again.
	OnError func(error)
	// Pace: the poller's pacing runs on the wall clock, not the ledger's
	// clock. Nil means time.Now and a timer; tests replace them.
	Pace *Pacer
}

// CheckEvent is one status check made.
type CheckEvent struct {
	Deposit domain.Deposit
	// Result is what came of it: credited, declined, replay, exception,
	// recorded (the settle results), not_final, not_found, or the reason
	// of a ports.NoAnswerError (unavailable, rejected, bad_signature, …).
	Result string
	Err    error // the source's or the store's error, if any
}

// StatusCheck results besides the settle effects and the no-answer
// reasons.
const (
	ResultNotFinal = "not_final"
	ResultNotFound = "not_found"
	ResultNoAnswer = "unavailable"
)

// RoundReport counts what one round did.
type RoundReport struct {
	Claimed int
	Results map[string]int
	Expiry  ExpiryReport
}

// StatusPoller asks the platform about pending deposits.
type StatusPoller struct {
	svc    *Service
	source ports.PaymentStatusSource
	cfg    StatusPollerConfig
	pace   *Pacer
}

// NewStatusPoller checks cfg and builds a poller over svc's store.
func NewStatusPoller(svc *Service, source ports.PaymentStatusSource, cfg StatusPollerConfig) (*StatusPoller, error) {
	if svc == nil || source == nil {
		return nil, errors.New("app.NewStatusPoller: nil service or source")
	}
	if cfg.After == 0 {
		cfg.After = DefaultStatusPollAfter
	}
	if cfg.After < MinStatusPollAfter {
		return nil, fmt.Errorf("%w: status poll after %s is below the minimum %s", domain.ErrInvalidInput, cfg.After, MinStatusPollAfter)
	}
	if cfg.Rate == 0 {
		cfg.Rate = DefaultStatusPollRate
	}
	if !(cfg.Rate > 0 && cfg.Rate <= MaxStatusPollRate) { // also refuses NaN
		return nil, fmt.Errorf("%w: status poll rate %v must be above 0 and at most %v per second", domain.ErrInvalidInput, cfg.Rate, MaxStatusPollRate)
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultPollConcurrency
	}
	if cfg.Batch == 0 {
		cfg.Batch = DefaultPollBatch
	}
	if cfg.Concurrency < 1 || cfg.Batch < 1 || cfg.Batch > ports.MaxPageSize {
		return nil, fmt.Errorf("%w: status poll concurrency %d and batch %d must be at least 1 (batch at most %d)",
			domain.ErrInvalidInput, cfg.Concurrency, cfg.Batch, ports.MaxPageSize)
	}
	for _, d := range cfg.Backoff {
		if d <= 0 {
			return nil, fmt.Errorf("%w: status poll backoff %v must be positive", domain.ErrInvalidInput, cfg.Backoff)
		}
	}
	if cfg.Expiry == 0 {
		cfg.Expiry = DefaultPendingExpiry
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultPollRequestTimeout
	}
	if cfg.Idle <= 0 {
		cfg.Idle = min(max(cfg.After/10, time.Second), 30*time.Second)
	}
	pace := cfg.Pace
	if pace == nil {
		pace = NewPacer(cfg.Rate, nil, nil)
	}
	return &StatusPoller{svc: svc, source: source, cfg: cfg, pace: pace}, nil
}

// lease is how long a round's claim lasts: the time its requests take at
// the rate, plus two request timeouts and ten seconds for the store. A claim that outlives
// its round does no harm (the record ends it); one that ran out while the
// round still runs would let another instance ask too, which costs a
// request and is still a replay.
func (p *StatusPoller) lease(n int) time.Duration {
	paced := time.Duration(float64(n) / p.cfg.Rate * float64(time.Second))
	return paced + 2*p.cfg.RequestTimeout + 10*time.Second
}

// Run makes rounds until ctx ends, waiting Idle between rounds that left
// nothing due. A round that fails (the store unavailable) is reported to
// OnError; Run waits and tries again.
func (p *StatusPoller) Run(ctx context.Context) error {
	for {
		rep, err := p.Round(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && p.cfg.OnError != nil {
			p.cfg.OnError(err)
		}
		wait := p.cfg.Idle
		if err == nil && rep.Claimed == p.cfg.Batch {
			wait = 0 // more is due: go on at the rate
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
	}
}

// Round claims the deposits due, asks about each (at most Concurrency at
// once, paced at Rate) and applies the answers, then applies the expiry.
// It returns after every claimed deposit is done.
func (p *StatusPoller) Round(ctx context.Context) (RoundReport, error) {
	return p.round(ctx, false, p.cfg.Batch)
}

// RoundNow is an operator's round on demand (tiyn reconcile pending): it
// asks about up to limit pending deposits older than After whatever their
// backoff (not those another instance holds a claim on), then applies the
// expiry.
func (p *StatusPoller) RoundNow(ctx context.Context, limit int) (RoundReport, error) {
	if limit < 1 || limit > ports.MaxPageSize {
		return RoundReport{}, fmt.Errorf("%w: limit %d must be between 1 and %d", domain.ErrInvalidInput, limit, ports.MaxPageSize)
	}
	return p.round(ctx, true, limit)
}

func (p *StatusPoller) round(ctx context.Context, anyTime bool, limit int) (RoundReport, error) {
	rep := RoundReport{Results: map[string]int{}}
	now := p.svc.clock.Now()
	var claimed []ports.StatusCheck
	err := p.svc.store.Update(ctx, func(ctx context.Context, tx ports.Tx) error {
		var err error
		claimed, err = tx.ClaimStatusChecks(ctx, ports.ClaimStatusChecks{
			CreatedBefore: now.Add(-p.cfg.After), Now: now, LeaseUntil: now.Add(p.lease(limit)), Limit: limit,
			AnyTime: anyTime,
		})
		return err
	})
	if err != nil {
		return rep, fmt.Errorf("claim status checks: %w", err)
	}
	rep.Claimed = len(claimed)

	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		firstErr error
		work     = make(chan ports.StatusCheck)
	)
	for range min(p.cfg.Concurrency, len(claimed)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				result, err := p.check(ctx, c)
				mu.Lock()
				if result != "" {
					rep.Results[result]++
				}
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	for _, c := range claimed {
		if ctx.Err() != nil {
			break
		}
		work <- c
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return rep, firstErr
	}
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	exp, err := p.svc.ExpirePending(ctx, p.cfg.Expiry, p.cfg.Batch)
	rep.Expiry = exp
	if p.cfg.OnExpiry != nil && (exp.Expired > 0 || exp.Escalated > 0) {
		p.cfg.OnExpiry(exp)
	}
	return rep, err
}

// check asks about one claimed deposit and records what came of it. It
// returns the result, and an error only when the store failed (the claim
// then runs out and the deposit is asked about again).
func (p *StatusPoller) check(ctx context.Context, c ports.StatusCheck) (string, error) {
	if err := p.pace.Wait(ctx); err != nil {
		return "", nil // shutting down: the claim runs out
	}
	dep := c.Deposit
	ans, askErr := p.source.PaymentStatus(ctx, dep)
	if ctx.Err() != nil {
		return "", nil
	}
	now := p.svc.clock.Now()
	result, answered := "", true
	var noAnswer *ports.NoAnswerError
	switch {
	case errors.As(askErr, &noAnswer):
		result, answered = noAnswer.Reason, false
	case askErr != nil:
		result, answered = ResultNoAnswer, false
	case !ans.Known:
		// The platform does not know a payment whose cash is probably in
		// a terminal: not an answer about it. At the expiry it goes to
		// an operator rather than expire.
		result, answered = ResultNotFound, false
	case ans.Outcome.Kind == domain.OutcomeIntermediate || ans.Outcome.Kind == (domain.OutcomeKind{}):
		result = ResultNotFinal
	default:
		res, err := p.svc.SettleDeposit(ctx, ports.SettleDeposit{
			Channel: dep.Channel, PaymentID: dep.PaymentID, Outcome: ans.Outcome, Source: ports.SourceStatusPoll,
			RawBody: ans.Evidence, ReceivedAt: now, Limits: ans.Limits,
		})
		if err != nil {
			p.report(CheckEvent{Deposit: dep, Result: "store_error", Err: err})
			return "store_error", err
		}
		result = res.Effect.String()
	}
	err := p.svc.store.Update(ctx, func(ctx context.Context, tx ports.Tx) error {
		return tx.RecordStatusCheck(ctx, ports.StatusCheckResult{
			DepositID: dep.ID, At: now, Result: result, Answered: answered,
			NextAt: now.Add(domain.NextStatusCheck(p.cfg.Backoff, c.Checks+1)),
		})
	})
	p.report(CheckEvent{Deposit: dep, Result: result, Err: askErr})
	if err != nil {
		return result, fmt.Errorf("record status check of deposit %s: %w", dep.ID, err)
	}
	return result, nil
}

func (p *StatusPoller) report(e CheckEvent) {
	if p.cfg.OnCheck != nil {
		p.cfg.OnCheck(e)
	}
}

// Pacer spaces events evenly at a rate: each Wait returns at least one
// interval after the previous one returned, by the pacer's clock read as
// it returns. Waiters take turns (one sleeps toward its release, the
// others queue behind it), so no slot is handed out ahead of time: a
// process that stalls past several intervals releases one waiter when it
// resumes, and the next an interval later — never the backlog at once,
// whatever the concurrency. (Handing each waiter its slot up front let a
// stall of a second release Concurrency requests together; the simulator's
// Gate saw 4 within 5 ms at 5 per second.)
type Pacer struct {
	turn     chan struct{} // held by the waiter whose release is next
	interval time.Duration
	next     time.Time // the earliest the next release; guarded by turn
	now      func() time.Time
	sleep    func(context.Context, time.Duration) error
}

// NewPacer paces at rate events per second. now and sleep default to the
// wall clock and a timer.
func NewPacer(rate float64, now func() time.Time, sleep func(context.Context, time.Duration) error) *Pacer {
	if now == nil {
		now = time.Now
	}
	if sleep == nil {
		sleep = sleepCtx
	}
	return &Pacer{turn: make(chan struct{}, 1), interval: time.Duration(float64(time.Second) / rate), now: now, sleep: sleep}
}

// Wait blocks until the caller's turn and its release, or until ctx ends
// (its error).
func (p *Pacer) Wait(ctx context.Context) error {
	_, err := p.wait(ctx)
	return err
}

// wait is Wait; it returns the release time (the clock read as it
// returns).
func (p *Pacer) wait(ctx context.Context) (time.Time, error) {
	select {
	case p.turn <- struct{}{}:
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
	defer func() { <-p.turn }()
	if d := p.next.Sub(p.now()); d > 0 {
		if err := p.sleep(ctx, d); err != nil {
			return time.Time{}, err
		}
	}
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	at := p.now()
	p.next = at.Add(p.interval)
	return at, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
