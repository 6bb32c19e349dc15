package console

import (
	"cmp"
	"context"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// The overview: the business day's credits, the pending deposits by age
// with the oldest, the exceptions waiting by reason, and the ledger's
// health.

// pendingAges split the pending deposits: under an hour (the callback is
// merely late), under a day (the status poller is asking), under a week,
// and older (someone should look).
var pendingAges = []time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}

// pendingAgeKeys name the buckets of pendingAges, youngest first.
var pendingAgeKeys = []string{"overview.age_under_1h", "overview.age_1h_24h", "overview.age_1d_7d", "overview.age_over_7d"}

// healthKeys name the ledger check's counters, in the order get reads them.
var healthKeys = []string{"health.unbalanced_transfers", "health.balance_mismatches", "health.negative_balances",
	"health.currency_mismatches", "health.credits_without_deposit", "health.succeeded_without_credit",
	"health.duplicate_credits", "health.amounts_over_ceiling"}

// Ledger check bounds: the check reads every row, so the overview runs it
// at most once per DefaultLedgerCheckTTL (whoever asks in between sees the
// last result and its time) and gives up after ledgerCheckTimeout.
const (
	DefaultLedgerCheckTTL = 5 * time.Minute
	ledgerCheckTimeout    = 2 * time.Minute
	// healthWait is how long a page waits for a check it started.
	healthWait = 3 * time.Second
)

type overviewData struct {
	Day             string
	Credits         []ports.CreditTotal
	Pending         ports.PendingOverview
	PendingRows     []countRow
	OldestAge       time.Duration
	PendingHref     string
	Exceptions      []exceptionCountRow
	ExceptionsTotal int64
	Health          healthView
	Recon           reconOverview
}

type countRow struct {
	Label string
	Count int64
}

type exceptionCountRow struct {
	State, Reason string
	Count         int64
	Href          string
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	now := c.now()
	day := domain.DayOf(now, c.zone)
	ov, err := c.ledger.Overview(r.Context(), ports.OverviewQuery{Now: now, DayStart: day.Start(), DayEnd: day.End(),
		PendingAges: pendingAges})
	if err != nil {
		return err
	}
	data := overviewData{Day: rc.loc.Date(day.Start()), Credits: ov.Credits, Pending: ov.Pending,
		PendingHref: withQuery(Prefix+"/deposits", url.Values{"status": {domain.DepositPending.String()}})}
	for i, n := range ov.Pending.Buckets {
		if i < len(pendingAgeKeys) {
			data.PendingRows = append(data.PendingRows, countRow{Label: rc.loc.T(pendingAgeKeys[i]), Count: n})
		}
	}
	if !ov.Pending.Oldest.IsZero() {
		data.OldestAge = now.Sub(ov.Pending.Oldest)
	}
	for _, e := range ov.Exceptions {
		data.ExceptionsTotal += e.Count
		data.Exceptions = append(data.Exceptions, exceptionCountRow{State: e.State.String(), Reason: e.Reason.String(), Count: e.Count,
			Href: withQuery(Prefix+"/exceptions", url.Values{"status": {e.State.String()}, "reason": {e.Reason.String()}})})
	}
	if data.Recon, err = c.reconOverview(r.Context()); err != nil {
		return err
	}
	data.Health = c.health.get(r.Context(), c.ledger, now)
	c.render(w, r, rc, http.StatusOK, "overview", rc.loc.T("overview.title"), "overview", data)
	return nil
}

// healthCache keeps the last ledger check.
type healthCache struct {
	ttl  time.Duration
	wait time.Duration // healthWait; shorter in tests
	mu   sync.Mutex
	done chan struct{} // closed when the running check ends; nil when none runs
	last healthView
}

// healthView is a ledger check as the overview shows it.
type healthView struct {
	Known     bool // a check has finished
	Healthy   bool
	Failed    bool // the last check could not run
	CheckedAt time.Time
	Counters  []countRow // the counters that are not zero
	Transfers int64
	Running   bool // a check is running and none finished yet
}

// get returns the last check when fresh; otherwise it starts one (one at
// a time) and waits for it at most healthWait, so that a page is never
// held by a check of a large ledger: it then shows the last result, or
// that the check is running.
func (h *healthCache) get(ctx context.Context, ledger ports.Ledger, now time.Time) healthView {
	h.mu.Lock()
	if h.last.Known && now.Sub(h.last.CheckedAt) < h.ttl {
		v := h.last
		h.mu.Unlock()
		return v
	}
	if h.done == nil {
		done := make(chan struct{})
		h.done = done
		go h.run(ledger, now, done)
	}
	done := h.done
	h.mu.Unlock()

	timer := time.NewTimer(cmp.Or(h.wait, healthWait))
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	case <-ctx.Done():
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	v := h.last
	v.Running = h.done != nil && !v.Known
	return v
}

// run checks the ledger and keeps the result; it is bounded by
// ledgerCheckTimeout, not by any request.
func (h *healthCache) run(ledger ports.Ledger, now time.Time, done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), ledgerCheckTimeout)
	defer cancel()
	chk, err := ledger.CheckLedger(ctx)
	v := healthView{Known: true, CheckedAt: now}
	if err != nil {
		v.Failed = true
	} else {
		v.Healthy, v.Transfers = chk.Healthy(), chk.Transfers
		counts := []int64{chk.UnbalancedTransfers, chk.BalanceMismatches, chk.NegativeBalances, chk.CurrencyMismatches,
			chk.CreditsWithoutDeposit, chk.SucceededWithoutCredit, chk.DuplicateCredits, chk.AmountsOverCeiling}
		for i, n := range counts {
			if n != 0 {
				v.Counters = append(v.Counters, countRow{Label: healthKeys[i], Count: n})
			}
		}
	}
	h.mu.Lock()
	h.last, h.done = v, nil
	h.mu.Unlock()
	close(done)
}
