package rest

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// Bounds of the expensive reads. A CSV export pages through a whole range
// of the ledger and a ledger check runs whole-table queries; any read
// token may ask for either, so each handler lets only a few run at once
// and each run only so long. They are per handler (per instance): N
// instances allow N times as many.
const (
	// DefaultMaxConcurrentExports is how many CSV exports run at once.
	DefaultMaxConcurrentExports = 4
	// DefaultMaxConcurrentChecks is how many ledger checks run at once:
	// one answers the question, a second is someone impatient.
	DefaultMaxConcurrentChecks = 1
	// DefaultLedgerCheckTimeout bounds one ledger check.
	DefaultLedgerCheckTimeout = 2 * time.Minute
	// BusyRetryAfter is the Retry-After, in seconds, of the 503 answered
	// when every slot is taken.
	BusyRetryAfter = 5
	// DefaultMaxReconcileCSVBytes bounds the text/csv body of POST
	// /v1/reconciliations: 256 MiB is a day of two million operations
	// of a Dashboard export's width. The body is streamed to the report
	// reader, never held; past the bound the run fails with 413.
	DefaultMaxReconcileCSVBytes = 256 << 20
	// DefaultReconcileTimeout bounds one POST /v1/reconciliations, the
	// upload of the body and every Data API page included (a page may
	// take minutes: TIYN_MONETIX_DATA_TIMEOUT). The server's read and
	// write deadlines are moved out to it for this route only.
	DefaultReconcileTimeout = 60 * time.Minute
	// DefaultMaxConcurrentReconciliations is how many reconciliations
	// one handler runs at once (a day has at most one running anyway).
	DefaultMaxConcurrentReconciliations = 2
)

// limiter is a counting semaphore that never waits: a request that finds
// every slot taken is answered at once (503 unavailable with Retry-After),
// rather than queueing behind exports that may run for minutes.
type limiter struct {
	what  string
	slots chan struct{}
}

func newLimiter(what string, n int) *limiter {
	return &limiter{what: what, slots: make(chan struct{}, n)}
}

// acquire takes a slot, or answers why not; release gives it back.
func (l *limiter) acquire() (release func(), err error) {
	select {
	case l.slots <- struct{}{}:
		return func() { <-l.slots }, nil
	default:
		e := newHTTPError(http.StatusServiceUnavailable, CodeUnavailable,
			"%d %s are already running on this instance, the most it allows; retry in %d seconds",
			cap(l.slots), l.what, BusyRetryAfter)
		e.retryAfter = strconv.Itoa(BusyRetryAfter)
		return nil, e
	}
}

// boundedCheckLedger is GET /v1/ledger/check within its bounds: a slot of
// a.checks and a deadline of a.checkTimeout.
func (a *api) boundedCheckLedger(w http.ResponseWriter, r *http.Request) error {
	release, err := a.checks.acquire()
	if err != nil {
		return err
	}
	defer release()
	ctx, cancel := context.WithTimeout(r.Context(), a.checkTimeout)
	defer cancel()
	err = a.checkLedger(w, r.WithContext(ctx))
	// The store may wrap the deadline in its own error; the context says.
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && r.Context().Err() == nil {
		e := newHTTPError(http.StatusServiceUnavailable, CodeUnavailable,
			"the ledger check did not finish within %s; retry when the store is less busy", a.checkTimeout)
		e.retryAfter = strconv.Itoa(BusyRetryAfter)
		return e
	}
	return err
}
