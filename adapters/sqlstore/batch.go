package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"

	"github.com/tiyn/tiyn/ports"
)

// Group commit (Store.Batch).
//
// Concurrent Batch calls are queued; a worker takes what is queued (up to
// BatchMax, waiting at most BatchWait for more) and runs all of it in one
// database transaction with one COMMIT. That cuts the database's work per
// callback — one commit and one WAL flush for many — which is where a
// credit's cost lies on both dialects.
//
// Each caller gets its own answer only after the commit that made its
// writes durable. One failing item must not fail its neighbours: the batch
// runs without savepoints (they cost two round trips per item); when an
// item fails, the transaction is rolled back, the item gets its error, and
// the rest runs again (every fn may run more than once — the port's
// contract). After maxBatchRestarts the remainder runs one transaction per
// item, so a batch full of failures costs O(n), not O(n²).
//
// How a batch writes (the write set, writes.go) and reads is one of two
// plans:
//
//   - fast (PostgreSQL's first attempt): the first reads of every item
//     are read ahead in one statement (readahead.go, from each call's
//     ports.Write), the items run, and the whole batch's writes go in one
//     statement before COMMIT. A failed write cannot say whose it was
//     (errFlush), so the batch runs again with the other plan;
//   - item by item (SQLite always, PostgreSQL after a failed fast
//     attempt): each item reads for itself and its writes are written when
//     it returns, so a failure is that item's.
//
// Batches that could lock the same rows never execute side by side: two
// batches executing at once would lock customer rows in the order their
// items happen to come in, and two such orders cross often enough to
// deadlock, which PostgreSQL breaks only after deadlock_timeout (1 s). So
// the batcher has partitions: a call's write key (keys.go: the customer
// account whose row it locks) picks the partition, and each partition
// executes one batch at a time. A batch holds its partition's exec lock
// from its first statement to just before its COMMIT and commits without
// it, so the partition's next batch runs its statements while the previous
// one waits for its WAL flush; a committing transaction waits for no lock,
// so it cannot close a cycle. Calls without a key go to partition 0.
// SQLite has one writer, so one partition. The figures behind these
// choices are in docs/decisions/0001-group-commit.md.

// maxBatchRestarts bounds how often one batch is rolled back and re-run.
const maxBatchRestarts = 2

// errStoreClosed is returned by Update after Close.
var errStoreClosed = fmt.Errorf("%w: store closed", ports.ErrUnavailable)

type batchReq struct {
	ctx  context.Context
	w    ports.Write
	fn   ports.TxFunc
	done chan error
}

type batcher struct {
	s     *Store
	parts []*partition
	max   int
	wait  time.Duration
	// fast: the first attempt of a batch reads ahead and writes once
	// (PostgreSQL, where every statement is a round trip); otherwise
	// every batch runs item by item (SQLite, in process).
	fast bool

	mu     sync.RWMutex // guards closed against sends on a closed queue
	closed bool
	wg     sync.WaitGroup

	stats batchCounters
}

// partition is one executor: its own queue, one batch executing at a time.
type partition struct {
	queue chan *batchReq
	// exec is held from a batch's formation to just before its COMMIT
	// (see above).
	exec sync.Mutex
}

// BatchStats counts group commit's work since the store opened, for
// metrics: Items ÷ Batches is the mean batch size, ExecTime ÷ Batches the
// time a batch spends running its statements, CommitTime ÷ Batches the
// time its COMMIT (the WAL flush) takes.
type BatchStats struct {
	Batches, Items, Restarts int64
	ExecTime, CommitTime     time.Duration
	// ReadAhead counts settle views and accounts answered from a batch's
	// read-ahead (readahead.go) instead of a read of their own.
	ReadAhead int64
}

type batchCounters struct {
	batches, items, restarts, readAhead atomic.Int64
	execNS, commitNS                    atomic.Int64
}

func (c *batchCounters) snapshot() BatchStats {
	return BatchStats{
		Batches: c.batches.Load(), Items: c.items.Load(), Restarts: c.restarts.Load(),
		ExecTime: time.Duration(c.execNS.Load()), CommitTime: time.Duration(c.commitNS.Load()),
		ReadAhead: c.readAhead.Load(),
	}
}

// newBatcher starts partitions executors, each with workers goroutines
// (two: one executing while the other commits).
func newBatcher(s *Store, max int, wait time.Duration, partitions, workers int) *batcher {
	b := &batcher{s: s, max: max, wait: wait}
	for range partitions {
		p := &partition{queue: make(chan *batchReq, max*workers)}
		b.parts = append(b.parts, p)
		for range workers {
			b.wg.Add(1)
			go b.work(p)
		}
	}
	return b
}

// partitionOf picks the partition of a write key (FNV-1a), or 0.
func (b *batcher) partitionOf(key string) *partition {
	if key == "" || len(b.parts) == 1 {
		return b.parts[0]
	}
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return b.parts[h%uint32(len(b.parts))]
}

func (b *batcher) submit(ctx context.Context, w ports.Write, fn ports.TxFunc) error {
	r := &batchReq{ctx: ctx, w: w, fn: fn, done: make(chan error, 1)}
	p := b.parts[0]
	if len(b.parts) > 1 {
		p = b.partitionOf(b.s.writeKey(ctx, w))
	}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return errStoreClosed
	}
	select {
	case p.queue <- r:
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
		for _, p := range b.parts {
			close(p.queue)
		}
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *batcher) work(p *partition) {
	defer b.wg.Done()
	batch := make([]*batchReq, 0, b.max)
	for {
		// Form the batch under the exec lock, so it takes everything that
		// queued while the previous batch was executing.
		p.exec.Lock()
		first, ok := <-p.queue
		if !ok {
			p.exec.Unlock()
			return
		}
		batch = append(batch[:0], first)
		batch = b.fill(p, batch)
		b.run(p, batch) // releases p.exec
	}
}

// fill adds what is already queued, then waits up to b.wait for more.
func (b *batcher) fill(p *partition, batch []*batchReq) []*batchReq {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for len(batch) < b.max {
		select {
		case r, ok := <-p.queue:
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
		case r, ok := <-p.queue:
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
// p.exec held and releases it: before the final COMMIT, or when everything
// left is answered.
func (b *batcher) run(p *partition, batch []*batchReq) {
	locked := true
	unlock := func() {
		if locked {
			locked = false
			p.exec.Unlock()
		}
	}
	defer unlock()
	pending := batch
	fast := b.fast
	for restart := 0; len(pending) > 0; restart++ {
		if restart > maxBatchRestarts {
			for _, r := range pending {
				r.done <- b.s.updateSingle(r.ctx, r.fn)
			}
			return
		}
		if restart > 0 {
			b.stats.restarts.Add(1)
		}
		start := time.Now()
		open, failed, err := b.runOnce(pending, fast)
		b.stats.execNS.Add(int64(time.Since(start)))
		if errors.Is(err, errFlush) {
			// The batch's writes (or its read-ahead) failed and cannot
			// say whose fault it was: run everything again item by item.
			fast = false
			continue
		}
		if open != nil {
			// Every item ran: commit without the exec lock, so the next
			// batch executes while this one waits for its flush.
			unlock()
			start = time.Now()
			err = open.commit()
			b.stats.commitNS.Add(int64(time.Since(start)))
			if err == nil {
				b.stats.batches.Add(1)
				b.stats.items.Add(int64(len(pending)))
			}
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

// runOnce runs the requests in one transaction, with the fast plan or
// item by item (see above). When every request ran it returns the open
// transaction, for run to commit; otherwise everything was rolled back and
// it returns (nil, -1, err) when the transaction could not begin or broke,
// (nil, -1, err wrapping errFlush) when the fast plan's writes or reads
// failed, or (nil, i, err) when request i failed.
func (b *batcher) runOnce(reqs []*batchReq, fast bool) (*openBatch, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	btx, err := b.s.write.BeginTx(ctx, b.s.txOpts)
	if err != nil {
		cancel()
		return nil, -1, classify(err)
	}
	// In the fast plan the write set holds every item's writes; item by
	// item, only the running one's.
	t := b.s.newTx(btx, fast)
	abort := func(i int, err error) (*openBatch, int, error) {
		_ = btx.Rollback()
		cancel()
		return nil, i, err
	}
	if fast {
		// With the writes in one statement, what is left of the items'
		// round trips is their first reads: make them one.
		var keys []ports.SettleKey
		var accounts []ports.AccountKey
		for _, r := range reqs {
			keys = append(keys, r.w.Settle...)
			accounts = append(accounts, r.w.Accounts...)
		}
		var err error
		if len(keys) > 0 {
			err = t.readAhead(ctx, keys)
		}
		if err == nil && len(accounts) > 0 {
			err = t.readAheadAccounts(ctx, accounts)
		}
		if err != nil {
			// Whose row could not be read is unknown: run again with
			// each item reading for itself.
			return abort(-1, fmt.Errorf("%w: %w", errFlush, err))
		}
	}
	for i, r := range reqs {
		if err := r.ctx.Err(); err != nil {
			return abort(i, fmt.Errorf("%w: %w", ports.ErrUnavailable, err))
		}
		// Run fn with the batch's context, not the caller's: one caller
		// going away must not cancel a statement in a shared transaction.
		err := r.fn(withValues(ctx, r.ctx), t)
		if err == nil && !fast {
			err = t.flush(ctx) // item by item: its writes, its failure
		}
		if err != nil {
			switch {
			case fast && t.ws.err != nil:
				// A write an item asked for failed: the fault may lie
				// with any earlier item.
				return abort(-1, t.ws.err)
			case isTxBroken(err):
				return abort(-1, err)
			}
			return abort(i, err)
		}
	}
	if err := t.flush(ctx); err != nil {
		return abort(-1, err)
	}
	b.stats.readAhead.Add(int64(t.hits))
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
