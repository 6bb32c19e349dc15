package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/tiyn/tiyn/ports"
)

// Group commit.
//
// Concurrent Update calls are queued; a worker takes what is queued (up to
// BatchMax, waiting at most BatchWait for more) and runs all of it in one
// database transaction with one COMMIT. That cuts the database's work per
// callback — one commit and one WAL flush for many — which is where a
// credit's cost lies on both dialects.
//
// Each caller gets its own answer only after the commit that made its
// writes durable. One failing item must not fail its neighbours: the batch
// runs optimistically without savepoints (they cost two round trips per
// item); when an item fails, the transaction is rolled back, the item gets
// its error, and the rest is run again (every fn may run more than once —
// the port's contract). After maxBatchRestarts the remainder runs one
// transaction per item, so a batch full of failures costs O(n), not O(n²).
//
// Several workers (PostgreSQL) do not execute batches side by side: a batch
// holds the exec lock from its first statement to just before its COMMIT,
// and commits without it, so the next batch runs its statements while the
// previous one waits for its WAL flush. Two batches executing at once would
// lock customer rows in the order their items happen to come in, and two
// such orders cross often enough to deadlock — which PostgreSQL breaks only
// after deadlock_timeout (1 s), stalling both batches (measured: 7
// deadlocks in 8 s at 16 clients, callback p95 1 s). A committing
// transaction waits for no lock, so one executing batch can never close a
// cycle. The price: statements of different batches do not overlap, so one
// connection's round trips bound the throughput (about 0.7 ms per credit
// on the 2-core reference machine). With a fast fsync that can make group
// commit slower than one transaction per request at moderate concurrency;
// bench/README.md has the figures. Running batches side by side without
// deadlocks needs a partition key from the caller (the customer), so that
// two executors never touch the same rows.

// maxBatchRestarts bounds how often one batch is rolled back and re-run.
const maxBatchRestarts = 2

// errStoreClosed is returned by Update after Close.
var errStoreClosed = fmt.Errorf("%w: store closed", ports.ErrUnavailable)

type batchReq struct {
	ctx  context.Context
	fn   func(ctx context.Context, tx ports.Tx) error
	done chan error
}

type batcher struct {
	s     *Store
	queue chan *batchReq
	max   int
	wait  time.Duration
	// exec is held from a batch's formation to just before its COMMIT
	// (see above).
	exec sync.Mutex

	mu     sync.RWMutex // guards closed against sends on a closed queue
	closed bool
	wg     sync.WaitGroup
}

func newBatcher(s *Store, max int, wait time.Duration, workers int) *batcher {
	b := &batcher{s: s, queue: make(chan *batchReq, max*workers), max: max, wait: wait}
	for range workers {
		b.wg.Add(1)
		go b.work()
	}
	return b
}

func (b *batcher) submit(ctx context.Context, fn func(ctx context.Context, tx ports.Tx) error) error {
	r := &batchReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return errStoreClosed
	}
	select {
	case b.queue <- r:
	case <-ctx.Done():
		b.mu.RUnlock()
		return fmt.Errorf("%w: %w", ports.ErrUnavailable, ctx.Err())
	}
	b.mu.RUnlock()
	// Once queued, wait for the verdict even if ctx ends: the write may be
	// committing, and the caller must not answer before knowing. A batch is
	// bounded by batchTimeout, so this wait is too.
	return <-r.done
}

func (b *batcher) stop() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.queue)
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *batcher) work() {
	defer b.wg.Done()
	batch := make([]*batchReq, 0, b.max)
	for {
		// Form the batch under the exec lock, so it takes everything that
		// queued while the previous batch was executing.
		b.exec.Lock()
		first, ok := <-b.queue
		if !ok {
			b.exec.Unlock()
			return
		}
		batch = append(batch[:0], first)
		batch = b.fill(batch)
		b.run(batch) // releases b.exec
	}
}

// fill adds what is already queued, then waits up to b.wait for more.
func (b *batcher) fill(batch []*batchReq) []*batchReq {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for len(batch) < b.max {
		select {
		case r, ok := <-b.queue:
			if !ok {
				return batch
			}
			batch = append(batch, r)
			continue
		default:
		}
		if b.wait <= 0 {
			return batch
		}
		if timer == nil {
			timer = time.NewTimer(b.wait)
		}
		select {
		case r, ok := <-b.queue:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		case <-timer.C:
			return batch
		}
	}
	return batch
}

// run executes batch and answers every request in it. It is called with
// b.exec held and releases it: before the final COMMIT, or when everything
// left is answered.
func (b *batcher) run(batch []*batchReq) {
	locked := true
	unlock := func() {
		if locked {
			locked = false
			b.exec.Unlock()
		}
	}
	defer unlock()
	pending := batch
	for restart := 0; len(pending) > 0; restart++ {
		if restart > maxBatchRestarts {
			for _, r := range pending {
				r.done <- b.s.updateSingle(r.ctx, r.fn)
			}
			return
		}
		open, failed, err := b.runOnce(pending)
		if open != nil {
			// Every item ran: commit without the exec lock, so the next
			// batch executes while this one waits for its flush.
			unlock()
			err = open.commit()
		}
		if failed < 0 {
			// Committed (err == nil) or the transaction itself failed:
			// everyone left shares the verdict.
			for _, r := range pending {
				r.done <- err
			}
			return
		}
		pending[failed].done <- err
		pending = append(pending[:failed:failed], pending[failed+1:]...)
	}
}

// runOnce runs the requests in one transaction. When every request ran it
// returns the open transaction, for run to commit; otherwise everything
// was rolled back and it returns (nil, -1, err) when the transaction could
// not begin or broke, or (nil, i, err) when request i failed.
func (b *batcher) runOnce(reqs []*batchReq) (*openBatch, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	btx, err := b.s.write.BeginTx(ctx, b.s.txOpts)
	if err != nil {
		cancel()
		return nil, -1, classify(err)
	}
	t := b.s.newTx(btx)
	for i, r := range reqs {
		if err := r.ctx.Err(); err != nil {
			_ = btx.Rollback()
			cancel()
			return nil, i, fmt.Errorf("%w: %w", ports.ErrUnavailable, err)
		}
		// Run fn with the batch's context, not the caller's: one caller
		// going away must not cancel a statement in a shared transaction.
		if err := r.fn(withValues(ctx, r.ctx), t); err != nil {
			_ = btx.Rollback()
			cancel()
			if isTxBroken(err) {
				return nil, -1, err
			}
			return nil, i, err
		}
	}
	return &openBatch{tx: btx, cancel: cancel}, -1, nil
}

// openBatch is a batch transaction whose items all ran, waiting for its
// COMMIT. Its context (bounded by batchTimeout) ends after the commit.
type openBatch struct {
	tx     bun.Tx
	cancel context.CancelFunc
}

func (o *openBatch) commit() error {
	defer o.cancel()
	if err := o.tx.Commit(); err != nil {
		return classify(err)
	}
	return nil
}

// isTxBroken reports errors that doom the whole transaction rather than
// one item: the connection went away.
func isTxBroken(err error) bool {
	return errors.Is(err, ports.ErrUnavailable) && !errors.Is(err, context.Canceled)
}

// withValues returns a context with base's deadline and cancellation and
// vals's values (loggers, request ids).
func withValues(base, vals context.Context) context.Context {
	return valuesCtx{Context: base, vals: vals}
}

type valuesCtx struct {
	context.Context
	vals context.Context
}

func (c valuesCtx) Value(key any) any { return c.vals.Value(key) }
