package platformsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Dropped callbacks and their recovery: a payment whose callbacks the
// simulator never delivers (Config.DropShare) is known only to the
// platform's record, which the Gate answers from. At the end of the run
// the simulator waits for Tiyn's status poller to settle each one as the
// platform did, reading the deposits back through the REST API.

// recoveryPoll is how often the dropped payments still unsettled are read
// again: one page of the pending deposits (maxPendingPages at most), then
// each dropped payment no longer among them — little load on the server
// while its poller works.
const (
	recoveryPoll    = 500 * time.Millisecond
	pendingPageSize = 1000
	maxPendingPages = 50
)

// droppedPayment is a payment whose callbacks were never delivered.
type droppedPayment struct {
	paymentID string
	customer  int
	amount    int64
	success   bool      // the platform's final word: success (else decline)
	op        int64     // the operation that ended it
	due       time.Time // when its final callback would have gone out
}

// dropLog collects the dropped payments from the workers.
type dropLog struct {
	mu   sync.Mutex
	list []droppedPayment
	// callbacks counts the final callbacks dropped (one per payment);
	// earlier the callbacks before them (processing, or the decline
	// before a late success), never delivered either.
	callbacks, earlier atomic.Int64
}

// dropPayment books a payment whose steps were recorded but not sent.
func (s *sim) dropPayment(p *plan, paymentID string, steps []step) {
	final := steps[len(steps)-1]
	d := droppedPayment{paymentID: paymentID, customer: p.customer, amount: p.amount,
		success: final.kind == cbSuccess, op: final.op, due: time.Now()}
	s.drops.callbacks.Add(1)
	s.drops.earlier.Add(int64(len(steps) - 1))
	if d.success {
		s.customers[p.customer].dropped.Add(p.amount)
	}
	s.drops.mu.Lock()
	s.drops.list = append(s.drops.list, d)
	s.drops.mu.Unlock()
}

// recoveryResult is what came of the dropped payments. Written by
// recoverDropped alone, after the load.
type recoveryResult struct {
	recovered, succeeded, declined, lost int
	// elapsed is from the end of the load to the check that found the
	// last payment settled; longest is the longest time one payment took
	// from its dropped callback to being found settled.
	elapsed, longest time.Duration
}

// depositState is the part of GET /v1/deposits/{payment_id} read here.
type depositState struct {
	PaymentID    string  `json:"payment_id"`
	Status       string  `json:"status"`
	AmountMinor  int64   `json:"amount_minor"`
	OperationID  *string `json:"operation_id"`
	StatusChecks *struct {
		Checks int `json:"checks"`
	} `json:"status_checks"`
}

// verdict of one read of a dropped payment's deposit.
type verdict uint8

const (
	vPending   verdict = iota // not settled yet (or its status check not recorded yet)
	vRecovered                // settled as the platform did, by a status check
	vWrong                    // settled otherwise: final, and lost
)

// judge compares a deposit with the platform's record of its payment.
func (d *droppedPayment) judge(st depositState) (verdict, string) {
	if st.Status == "pending" {
		return vPending, ""
	}
	if st.StatusChecks == nil || st.StatusChecks.Checks == 0 {
		// Settled, and the status check that did it is recorded just
		// after: read again. Settled by something else, it stays so and
		// is lost at the deadline.
		return vPending, "settled as " + st.Status + " without a status check"
	}
	want := "declined"
	if d.success {
		want = "succeeded"
	}
	op := strconv.FormatInt(d.op, 10)
	switch {
	case st.PaymentID != d.paymentID:
		return vWrong, fmt.Sprintf("the deposit answered is of payment %q", st.PaymentID)
	case st.Status != want:
		return vWrong, fmt.Sprintf("%s, the platform says %s", st.Status, want)
	case st.AmountMinor != d.amount:
		return vWrong, fmt.Sprintf("amount %d, the platform collected %d", st.AmountMinor, d.amount)
	case st.OperationID == nil || *st.OperationID != op:
		got := "none"
		if st.OperationID != nil {
			got = *st.OperationID
		}
		return vWrong, fmt.Sprintf("settled by operation %s, the platform's last is %s", got, op)
	}
	return vRecovered, ""
}

// recoverDropped waits, at most RecoveryTimeout, for every dropped payment
// to be settled as the platform did, and books the outcome: a success
// found credited joins the balance expected. What is not settled by then
// (or when ctx ends) is lost.
func (s *sim) recoverDropped(ctx context.Context) {
	s.drops.mu.Lock()
	pending := slices.Clone(s.drops.list)
	s.drops.mu.Unlock()
	if len(pending) == 0 {
		return
	}
	r := &s.recovery
	start := time.Now()
	deadline := start.Add(s.cfg.RecoveryTimeout)
	why := make(map[string]string) // payment id → why it is not recovered yet
	for {
		// Those still in the pending list need no reading of their own.
		var toRead []droppedPayment
		still := pending[:0:0]
		if open, err := s.pendingPayments(ctx, s.started.Add(-time.Minute)); err == nil {
			for _, d := range pending {
				if open[d.paymentID] {
					why[d.paymentID] = "still pending"
					still = append(still, d)
				} else {
					toRead = append(toRead, d)
				}
			}
		} else {
			toRead = pending
		}
		states, fails := s.readDeposits(ctx, toRead)
		now := time.Now()
		for i := range toRead {
			d := &toRead[i]
			if fails[i] != "" {
				why[d.paymentID] = fails[i]
				still = append(still, *d)
				continue
			}
			v, reason := d.judge(states[i])
			switch v {
			case vPending:
				why[d.paymentID] = reason
				still = append(still, *d)
			case vWrong:
				r.lost++
				s.errs.add(fmt.Sprintf("dropped payment %s: %s", d.paymentID, reason))
			case vRecovered:
				r.recovered++
				r.elapsed = now.Sub(start)
				r.longest = max(r.longest, now.Sub(d.due))
				if d.success {
					r.succeeded++
					c := &s.customers[d.customer]
					c.want.Add(d.amount)
					c.dropped.Add(-d.amount)
				} else {
					r.declined++
				}
			}
		}
		pending = still
		if len(pending) == 0 || ctx.Err() != nil || !now.Before(deadline) {
			break
		}
		if !sleepCtx(ctx, min(recoveryPoll, time.Until(deadline))) {
			break
		}
	}
	for _, d := range pending {
		r.lost++
		state := why[d.paymentID]
		if state == "" {
			state = "still pending"
		}
		outcome := "decline"
		if d.success {
			outcome = "success of " + FormatKZT(d.amount)
		}
		s.errs.add(fmt.Sprintf("dropped payment %s (%s): not settled by Tiyn within %s of the end of the load (%s)",
			d.paymentID, outcome, s.cfg.RecoveryTimeout, state))
	}
}

// pendingPayments lists the payment ids of the deposits pending that were
// opened since from (GET /v1/deposits?status=pending&from=…, paged).
func (s *sim) pendingPayments(ctx context.Context, from time.Time) (map[string]bool, error) {
	snd := newSender(s)
	open := map[string]bool{}
	cursor := ""
	for range maxPendingPages {
		q := url.Values{"status": {"pending"}, "from": {from.UTC().Format(time.RFC3339Nano)},
			"limit": {strconv.Itoa(pendingPageSize)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		u, err := url.Parse(s.cfg.BaseURL + strings.TrimSuffix(depositsPath, "/") + "?" + q.Encode())
		if err != nil {
			return nil, err
		}
		status, ans, err := snd.do(ctx, -1, http.MethodGet, u, s.restHdr, nil)
		if err != nil || status != http.StatusOK {
			msg, _ := httpFailure("GET "+depositsPath, status, ans, err)
			return nil, errors.New(msg)
		}
		var page struct {
			Items []struct {
				PaymentID string `json:"payment_id"`
			} `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		if err := json.Unmarshal(ans, &page); err != nil {
			return nil, fmt.Errorf("GET %s: unreadable page %s", depositsPath, snippet(ans))
		}
		for _, it := range page.Items {
			open[it.PaymentID] = true
		}
		if page.NextCursor == nil {
			return open, nil
		}
		cursor = *page.NextCursor
	}
	return nil, fmt.Errorf("more than %d pending deposits", maxPendingPages*pendingPageSize)
}

// readDeposits reads the deposit of every payment in list, Concurrency at
// a time; fails[i] says why list[i] could not be read.
func (s *sim) readDeposits(ctx context.Context, list []droppedPayment) (states []depositState, fails []string) {
	states, fails = make([]depositState, len(list)), make([]string, len(list))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(s.cfg.Concurrency, len(list)) {
		snd := newSender(s)
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(list) {
					return
				}
				if ctx.Err() != nil {
					fails[i] = ctx.Err().Error()
					continue
				}
				states[i], fails[i] = s.readDeposit(ctx, snd, list[i].paymentID)
			}
		})
	}
	wg.Wait()
	return states, fails
}

func (s *sim) readDeposit(ctx context.Context, snd *sender, paymentID string) (depositState, string) {
	u, err := url.Parse(s.cfg.BaseURL + depositsPath + url.PathEscape(paymentID))
	if err != nil {
		return depositState{}, err.Error()
	}
	status, ans, err := snd.do(ctx, -1, http.MethodGet, u, s.restHdr, nil)
	if err != nil || status != http.StatusOK {
		msg, _ := httpFailure("GET "+depositsPath+paymentID, status, ans, err)
		return depositState{}, msg
	}
	var st depositState
	if err := json.Unmarshal(ans, &st); err != nil {
		return depositState{}, "GET " + depositsPath + paymentID + ": unreadable deposit " + snippet(ans)
	}
	return st, ""
}
