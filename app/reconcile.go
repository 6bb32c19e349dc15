package app

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// A business day's reconciliation (ports.Reconciler.ReconcileDay).
//
// A run is a record (reconciliation_runs, one running run per day) and
// works in bounded memory, whatever the size of the day:
//
//  1. reading: the source streams its rows; they are staged
//     (reconciliation_rows) in pages of reconPage rows, each page one
//     transaction. A row that cannot be read, or that belongs to another
//     day, is staged as unreadable_row. Nothing else is written yet.
//  2. If the source could not be read to its end the run fails; nothing
//     was applied. If its input hash is the one of the day's latest
//     finished run, the new run is deleted again and the earlier one
//     comes back with Unchanged set: a rerun of the same input changes
//     nothing.
//  3. matching: the staged rows are read back in payment order (every
//     operation of a payment is consecutive), in pages; each payment's
//     operations and its deposit go to domain.DecideReconciliation, and
//     the verdict is applied in the transaction that stores the items
//     with their classes: a heal, a decline or a mismatch goes through the settle
//     path (Service.settle, the function SettleDeposit runs: the
//     conditional transition, the one-credit-per-deposit index, the inbox
//     record with source reconciliation and the row as evidence), so a
//     callback or a status answer racing the run is a replay on one side
//     or the other, never a second credit.
//  4. ledger: every deposit of the provider created or settled within the
//     day that no operation mentioned is classified by
//     domain.DecideLedgerOnly and becomes an item.
//  5. every break has its exception (found or raised once, in the
//     transaction that stores its item), and the run is finished with its
//     counts and sums per class; its staged rows are dropped.
//
// While it runs, a heartbeat goroutine marks the run alive every fifth of
// staleAfter; a run whose heartbeat stopped (its process crashed) is failed
// and replaced by the next run of the day. A run that was taken over stops
// at its next write. Heals a crashed run made stay made (each in its own
// committed transaction, with its inbox record); the run that takes over
// sees them as credited deposits: matched.

// Bounds of a run.
const (
	// reconPage is how many rows one staging or matching transaction holds.
	reconPage = 500
	// MaxOpsPerPayment bounds the operations of one payment in one day's
	// source, so that the memory of a run stays bounded; a source that
	// lists more fails the run.
	MaxOpsPerPayment = 10_000
	// maxReconID bounds a project, payment or operation id of a row;
	// longer ones are unreadable rows.
	maxReconID = 256
	// maxReconRaw bounds the evidence kept per row.
	maxReconRaw = 8 << 10
)

// ReconcileDay reconciles one business day (see ports.Reconciler).
func (s *Service) ReconcileDay(ctx context.Context, cmd ports.ReconcileDay) (ports.ReconRun, error) {
	if err := s.checkReconcile(cmd); err != nil {
		return ports.ReconRun{}, err
	}
	r := &reconRun{svc: s, cmd: cmd, totals: newTotals()}
	if err := r.start(ctx); err != nil {
		return ports.ReconRun{}, err
	}
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	beat := r.heartbeat(runCtx, stop)
	run, err := r.work(runCtx)
	stop(nil)
	beat.Wait()
	if err != nil {
		if cause := context.Cause(runCtx); cause != nil && !errors.Is(cause, context.Canceled) {
			err = cause
		}
		r.fail(err)
		return ports.ReconRun{}, err
	}
	return run, nil
}

func (s *Service) checkReconcile(cmd ports.ReconcileDay) error {
	switch {
	case cmd.Day.IsZero():
		return fmt.Errorf("%w: a reconciliation needs a day", domain.ErrInvalidInput)
	case cmd.Source == nil:
		return fmt.Errorf("%w: a reconciliation needs a source", domain.ErrInvalidInput)
	case cmd.Provider == "" || cmd.Method == "":
		return fmt.Errorf("%w: a reconciliation needs a provider and a method", domain.ErrInvalidInput)
	case cmd.StartedBy == "":
		return fmt.Errorf("%w: a reconciliation needs who started it", domain.ErrInvalidInput)
	case cmd.Day.Location().String() != s.zone.String():
		return fmt.Errorf("%w: day %s is in %s, the business zone is %s", domain.ErrInvalidInput, cmd.Day, cmd.Day.Location(), s.zone)
	case !s.clock.Now().After(cmd.Day.Start()):
		return fmt.Errorf("%w: business day %s has not begun", domain.ErrInvalidInput, cmd.Day)
	}
	kind := cmd.Source.Kind()
	if kind == "" || len(kind) > 32 {
		return fmt.Errorf("%w: source kind %q", domain.ErrInvalidInput, kind)
	}
	return nil
}

// reconRun is one run in progress.
type reconRun struct {
	svc    *Service
	cmd    ports.ReconcileDay
	run    ports.ReconRun
	seq    int64 // the last item's seq
	totals map[domain.ReconClass]*classTotal
	done   int64 // items classified
}

type classTotal struct {
	count            int64
	platform, ledger big.Int
}

func newTotals() map[domain.ReconClass]*classTotal {
	t := make(map[domain.ReconClass]*classTotal)
	for _, c := range domain.ReconClasses() {
		t[c] = &classTotal{}
	}
	return t
}

// start records the run as running, taking over a run of the day whose
// heartbeat stopped.
func (r *reconRun) start(ctx context.Context) error {
	s := r.svc
	now := s.clock.Now()
	r.run = ports.ReconRun{
		ID: s.ids.NewID("rcn"), Day: r.cmd.Day, Source: r.cmd.Source.Kind(), StartedBy: r.cmd.StartedBy,
		StartedAt: now, HeartbeatAt: now, Status: ports.RunRunning,
	}
	return s.store.Update(ctx, func(ctx context.Context, tx ports.Tx) error {
		cur, err := tx.LatestReconRun(ctx, r.cmd.Day, ports.RunRunning)
		switch {
		case errors.Is(err, ports.ErrNotFound):
		case err != nil:
			return err
		case cur.HeartbeatAt.Before(now.Add(-s.staleAfter)):
			reason := fmt.Sprintf("taken over by run %s: no heartbeat since %s", r.run.ID, cur.HeartbeatAt.UTC().Format(time.RFC3339))
			if err := tx.TakeOverReconRun(ctx, cur.ID, now.Add(-s.staleAfter), now, reason); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: run %s, started by %s at %s", ports.ErrRunInProgress, cur.ID, cur.StartedBy,
				cur.StartedAt.UTC().Format(time.RFC3339))
		}
		if err := tx.InsertReconRun(ctx, r.run); err != nil {
			if errors.Is(err, ports.ErrConflict) {
				return fmt.Errorf("%w: another run of %s started at the same moment", ports.ErrRunInProgress, r.cmd.Day)
			}
			return err
		}
		return nil
	})
}

// errTakenOver stops a run whose record another run took over.
var errTakenOver = errors.New("reconciliation run taken over by another (its heartbeat was late)")

// heartbeat beats until ctx ends; a beat that finds the run taken over
// stops the run.
func (r *reconRun) heartbeat(ctx context.Context, stop context.CancelCauseFunc) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(max(r.svc.staleAfter/5, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := r.svc.store.Update(ctx, func(ctx context.Context, tx ports.Tx) error {
				return tx.BeatReconRun(ctx, r.run.ID, r.svc.clock.Now())
			})
			if errors.Is(err, ports.ErrConflict) {
				stop(fmt.Errorf("run %s: %w", r.run.ID, errTakenOver))
				return
			}
		}
	}()
	return &wg
}

// fail records the run as failed, whatever its context: a run that cannot
// say so stays running and is taken over once its heartbeat is late.
func (r *reconRun) fail(cause error) {
	if errors.Is(cause, errTakenOver) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	run := r.run
	run.Status, run.Error, run.FinishedAt = ports.RunFailed, truncateText(cause.Error(), 1000), r.svc.clock.Now()
	_ = r.svc.store.Update(ctx, func(ctx context.Context, tx ports.Tx) error {
		if err := tx.FinishReconRun(ctx, run); err != nil {
			return err
		}
		return tx.DropStagedRows(ctx, run.ID)
	})
}

func (r *reconRun) progress(phase string, rows, done int64) {
	if r.cmd.Progress != nil {
		r.cmd.Progress(ports.ReconProgress{Phase: phase, Rows: rows, Done: done})
	}
}

func (r *reconRun) work(ctx context.Context) (ports.ReconRun, error) {
	sum, err := r.stage(ctx)
	if err != nil {
		return ports.ReconRun{}, err
	}
	r.run.InputHash, r.run.Rows, r.run.BadRows = sum.Hash, int64(sum.Rows), int64(sum.Bad)
	if prev, ok, err := r.unchanged(ctx); err != nil || ok {
		return prev, err
	}
	if err := r.match(ctx); err != nil {
		return ports.ReconRun{}, err
	}
	if err := r.ledger(ctx); err != nil {
		return ports.ReconRun{}, err
	}
	return r.finish(ctx)
}

// stage reads the source to its end, staging its rows.
func (r *reconRun) stage(ctx context.Context) (ports.SourceSummary, error) {
	day := r.cmd.Day
	page := make([]ports.ReconItem, 0, reconPage)
	var read int64
	flush := func() error {
		if len(page) == 0 {
			return nil
		}
		err := r.svc.store.Update(ctx, func(ctx context.Context, tx ports.Tx) error {
			return tx.StageReconRows(ctx, page)
		})
		if err != nil {
			return fmt.Errorf("stage rows of run %s: %w", r.run.ID, err)
		}
		page = page[:0]
		r.progress(ports.PhaseReading, read, 0)
		return nil
	}
	add := func(it ports.ReconItem) error {
		r.seq++
		read++
		it.RunID, it.Seq = r.run.ID, r.seq
		page = append(page, it)
		if len(page) == reconPage {
			return flush()
		}
		return nil
	}
	sum, err := r.cmd.Source.Operations(ctx, day, func(row ports.SourceRow) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		it := ports.ReconItem{
			Line: row.Line, ProjectID: row.ProjectID, PaymentID: row.PaymentID, OperationID: row.OperationID,
			OperationType: row.Type, OperationStatus: row.Status, CompletedAt: row.CompletedAt, Platform: row.Amount,
			Raw: truncateText(row.Raw, maxReconRaw),
		}
		if why := unusableRow(row, day); why != "" {
			// Kept as text the store can hold, shortened: a row that cannot
			// be reconciled is evidence, not a key.
			it.Class, it.Note = domain.ClassUnreadableRow, why
			for _, f := range []*string{&it.ProjectID, &it.PaymentID, &it.OperationID, &it.OperationType, &it.OperationStatus} {
				*f = cleanText(*f, maxReconID)
			}
			if !it.Platform.Currency().Known() {
				it.Platform = domain.NewAmount(it.Platform.Minor(), domain.UnlistedCurrency(cleanText(it.Platform.Currency().Code(), 16)))
			}
		}
		return add(it)
	}, func(bad ports.RowError) error {
		note := cleanText(bad.Message, 1000)
		if bad.Column != "" {
			note = "column " + cleanText(bad.Column, 100) + ": " + note
		}
		return add(ports.ReconItem{Line: bad.Line, Class: domain.ClassUnreadableRow, Note: note})
	})
	if err != nil {
		return sum, fmt.Errorf("read the %s source of %s: %w", r.run.Source, day, err)
	}
	if err := flush(); err != nil {
		return sum, err
	}
	if sum.Hash == "" {
		return sum, fmt.Errorf("the %s source of %s gave no input hash", r.run.Source, day)
	}
	return sum, nil
}

// cleanText is s as text every store holds: valid UTF-8 without NUL,
// at most n bytes.
func cleanText(s string, n int) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", "\uFFFD"), "\uFFFD")
	return truncateText(s, n)
}

// plainText reports whether s is valid UTF-8 without NUL.
func plainText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// unusableRow says why a row read fine but cannot be reconciled, or "".
func unusableRow(row ports.SourceRow, day domain.BusinessDay) string {
	switch {
	case len(row.ProjectID) > maxReconID || len(row.PaymentID) > maxReconID || len(row.OperationID) > maxReconID ||
		len(row.Type) > maxReconID || len(row.Status) > maxReconID:
		return fmt.Sprintf("an id, type or status longer than %d bytes", maxReconID)
	case !plainText(row.ProjectID) || !plainText(row.PaymentID) || !plainText(row.OperationID) || !plainText(row.Type) ||
		!plainText(row.Status) || !plainText(row.Amount.Currency().Code()):
		return "an id, type, status or currency that is not UTF-8 text"
	case row.ProjectID == "" || row.PaymentID == "" || row.OperationID == "":
		return "project_id, payment_id and operation_id are required"
	case row.Amount.Currency().IsZero():
		return "the amount has no currency"
	case row.CompletedAt.IsZero():
		return "no completion time"
	case !day.Contains(row.CompletedAt):
		return fmt.Sprintf("completed at %s, outside business day %s", row.CompletedAt.In(day.Location()).Format(time.DateTime), day)
	}
	return ""
}

// ledgerMark fingerprints the run's ledger side of the day.
func (r *reconRun) ledgerMark(ctx context.Context) (string, error) {
	return r.svc.store.LedgerMark(ctx, r.cmd.Provider, r.cmd.Projects, r.cmd.Day.Start(), r.cmd.Day.End())
}

// unchanged returns the day's latest finished run when it reconciled the
// same input against the same ledger side (no deposit of the day was
// opened or moved since: a day still in progress keeps changing), after
// deleting this run: nothing of it remains.
func (r *reconRun) unchanged(ctx context.Context) (ports.ReconRun, bool, error) {
	prev, err := r.svc.store.LatestReconRun(ctx, r.cmd.Day, ports.RunFinished)
	if errors.Is(err, ports.ErrNotFound) {
		return ports.ReconRun{}, false, nil
	}
	if err != nil {
		return ports.ReconRun{}, false, err
	}
	if prev.Source != r.run.Source || prev.InputHash != r.run.InputHash {
		return ports.ReconRun{}, false, nil
	}
	if mark, err := r.ledgerMark(ctx); err != nil || mark != prev.LedgerMark {
		return ports.ReconRun{}, false, err
	}
	if err := r.svc.store.Update(ctx, func(ctx context.Context, tx ports.Tx) error {
		return tx.DeleteReconRun(ctx, r.run.ID)
	}); err != nil {
		return ports.ReconRun{}, false, err
	}
	prev.Unchanged = true
	return prev, true, nil
}

// match reads the staged rows back in payment order and reconciles each
// payment.
func (r *reconRun) match(ctx context.Context) error {
	q := ports.StagedQuery{RunID: r.run.ID, Limit: reconPage}
	var (
		group  []ports.ReconItem // the payment in hand, possibly continued on the next page
		groups [][]ports.ReconItem
		queued int
	)
	for {
		rows, err := r.svc.store.ListStagedRows(ctx, q)
		if err != nil {
			return fmt.Errorf("read staged rows of run %s: %w", r.run.ID, err)
		}
		for _, it := range rows {
			if !it.Class.IsZero() {
				// Unreadable: classified when staged, a group of its own.
				groups = append(groups, []ports.ReconItem{it})
				queued++
				continue
			}
			if len(group) > 0 && (group[0].ProjectID != it.ProjectID || group[0].PaymentID != it.PaymentID) {
				groups = append(groups, group)
				queued += len(group)
				group = nil
			}
			if len(group) == MaxOpsPerPayment {
				return fmt.Errorf("%w: payment %q of project %q has more than %d operations in the source", domain.ErrInvalidInput,
					truncateText(it.PaymentID, 64), truncateText(it.ProjectID, 64), MaxOpsPerPayment)
			}
			group = append(group, it)
		}
		last := len(rows) < q.Limit
		if last && len(group) > 0 {
			groups = append(groups, group)
			queued += len(group)
			group = nil
		}
		if queued >= reconPage || (last && len(groups) > 0) {
			if err := r.apply(ctx, groups); err != nil {
				return err
			}
			groups, queued = nil, 0
		}
		if last {
			return nil
		}
		end := rows[len(rows)-1]
		q.AfterProject, q.AfterPayment, q.AfterSeq = end.ProjectID, end.PaymentID, end.Seq
	}
}

// apply reconciles payments in one transaction; when that keeps losing
// races (callbacks settling the same deposits), payment by payment.
func (r *reconRun) apply(ctx context.Context, groups [][]ports.ReconItem) error {
	var out []reconResult
	err := r.svc.store.Update(ctx, func(ctx context.Context, tx ports.Tx) error {
		out = out[:0]
		return r.reconcilePayments(ctx, tx, groups, &out)
	})
	if errors.Is(err, ports.ErrConflict) {
		out = out[:0]
		for _, g := range groups {
			res, err := retryOnConflict(ctx, func() (reconResult, error) {
				var one []reconResult
				err := r.svc.store.Update(ctx, func(ctx context.Context, tx ports.Tx) error {
					one = one[:0]
					return r.reconcilePayments(ctx, tx, [][]ports.ReconItem{g}, &one)
				})
				if err != nil {
					return reconResult{}, err
				}
				return one[0], nil
			})
			if err != nil {
				return fmt.Errorf("reconcile payment %q: %w", truncateText(g[0].PaymentID, 64), err)
			}
			out = append(out, res)
		}
		err = nil
	}
	if err != nil {
		return fmt.Errorf("reconcile run %s: %w", r.run.ID, err)
	}
	for _, res := range out {
		r.count(res)
	}
	r.progress(ports.PhaseMatching, r.run.Rows, r.done)
	return nil
}

// reconResult is what reconciling one payment (or one ledger-only
// deposit) gave, for the run's totals.
type reconResult struct {
	items   []ports.ReconItem
	decider int // the item whose ledger amount counts (-1: none)
}

func (r *reconRun) count(res reconResult) {
	for i, it := range res.items {
		t := r.totals[it.Class]
		if t == nil {
			continue
		}
		t.count++
		t.platform.Add(&t.platform, big.NewInt(it.Platform.Minor()))
		if i == res.decider {
			t.ledger.Add(&t.ledger, big.NewInt(it.Ledger.Minor()))
		}
		r.done++
	}
}

// reconcilePayments reconciles payments in tx: their deposits in one
// read, each payment decided and applied, their items stored in one
// write.
func (r *reconRun) reconcilePayments(ctx context.Context, tx ports.Tx, groups [][]ports.ReconItem, out *[]reconResult) error {
	keys := make([]ports.PaymentKey, len(groups))
	for i, g := range groups {
		keys[i] = ports.PaymentKey{Project: g[0].ProjectID, PaymentID: g[0].PaymentID}
	}
	deps, err := tx.DepositsByPayment(ctx, r.cmd.Provider, keys)
	if err != nil {
		return err
	}
	byKey := make(map[ports.PaymentKey]domain.Deposit, len(deps))
	for _, d := range deps {
		byKey[ports.PaymentKey{Project: d.Channel.Project, PaymentID: d.PaymentID}] = d
	}
	credited, err := creditedAmounts(ctx, tx, deps)
	if err != nil {
		return err
	}
	var items []ports.ReconItem
	for i, g := range groups {
		var (
			res reconResult
			err error
		)
		if g[0].Class == domain.ClassUnreadableRow {
			res, err = r.reconcileUnreadable(ctx, tx, g[0])
		} else {
			var dep *domain.Deposit
			if d, ok := byKey[keys[i]]; ok {
				dep = &d
			}
			res, err = r.reconcilePayment(ctx, tx, g, dep, credited)
		}
		if err != nil {
			return err
		}
		*out = append(*out, res)
		items = append(items, res.items...)
	}
	return tx.InsertReconItems(ctx, items)
}

// creditedAmounts reads what the credited deposits among deps were
// credited with (ports.Tx.CreditedAmounts).
func creditedAmounts(ctx context.Context, tx ports.Tx, deps []domain.Deposit) (map[string]domain.Amount, error) {
	var ids []string
	for _, d := range deps {
		if d.Status == domain.DepositSucceeded {
			ids = append(ids, d.ID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return tx.CreditedAmounts(ctx, ids)
}

// ledgerSide is the deposit as the ledger's record of the payment: a
// credited deposit with the amount it was credited. A callback credits
// the deposit's amount; an operator resolving an exception may have
// credited another one (within the exception's evidence), and the
// platform's record is compared with what the ledger paid, not with what
// the deposit asked for. over reports that the two differ.
func ledgerSide(dep *domain.Deposit, credited map[string]domain.Amount) (side *domain.Deposit, over bool) {
	if dep == nil || dep.Status != domain.DepositSucceeded {
		return dep, false
	}
	amt, ok := credited[dep.ID]
	if !ok || amt == dep.Amount {
		return dep, false
	}
	d := *dep
	d.Amount = amt
	return &d, true
}

// reconcilePayment decides one payment's operations against its deposit
// (nil: none has its payment id) and applies the verdict in tx. It returns
// the items with their classes; the caller stores them.
func (r *reconRun) reconcilePayment(ctx context.Context, tx ports.Tx, items []ports.ReconItem, dep *domain.Deposit,
	credited map[string]domain.Amount) (reconResult, error) {
	s := r.svc
	now := s.clock.Now()
	first := items[0]
	ch := domain.Channel{Provider: r.cmd.Provider, Method: r.cmd.Method, Project: first.ProjectID}
	if dep != nil {
		ch = dep.Channel
	}
	ops := make([]domain.PlatformOperation, len(items))
	for i, it := range items {
		ops[i] = domain.PlatformOperation{Seq: it.Seq, OperationID: it.OperationID, Type: it.OperationType,
			Status: it.OperationStatus, Amount: it.Platform, CompletedAt: it.CompletedAt}
	}
	side, over := ledgerSide(dep, credited)
	v := domain.DecideReconciliation(side, ops)
	if over && v.Action == domain.ActionSettle && (v.Class == domain.ClassAmountMismatch || v.Class == domain.ClassCurrencyMismatch) {
		// The settle path compares the platform's operation with the
		// deposit's amount and would call it a replay of the credit: the
		// break is the reconciliation's to raise.
		v.Action = domain.ActionRaise
		v.Detail = fmt.Sprintf("platform amount %s %s, the ledger credited %s %s (deposit amount %s)", ops[v.Decider].Amount,
			ops[v.Decider].Amount.Currency(), side.Amount, side.Amount.Currency(), dep.Amount)
		v.Notes[v.Decider] = v.Detail
	}
	out := make([]ports.ReconItem, len(items))
	copy(out, items)
	for i := range out {
		out[i].Class, out[i].Note = v.Classes[i], v.Notes[i]
	}
	dec := &out[v.Decider]
	var exceptionID string
	switch v.Action {
	case domain.ActionSettle:
		op := ops[v.Decider]
		cmd := ports.SettleDeposit{
			Channel: ch, PaymentID: first.PaymentID, Outcome: op.Outcome(ch.Method), Source: ports.SourceReconciliation,
			RawBody: dec.Raw, ReceivedAt: now, Limits: r.cmd.Limits,
		}
		cmd.DedupeKey = DedupeKey(cmd.Channel, cmd.PaymentID, cmd.Outcome)
		res, _, err := s.settle(ctx, tx, cmd)
		if err != nil {
			return reconResult{}, err
		}
		exc := res.Exception
		if exc == nil && res.Effect == domain.EffectReplay && v.Class.IsBreak() {
			// Applied before (a callback, an earlier run): the exception it
			// raised is the break's.
			if exc, err = exceptionOfEvidence(ctx, tx, cmd.PaymentID, cmd.DedupeKey); err != nil {
				return reconResult{}, err
			}
		}
		if exc != nil {
			dec.Class = domain.ReconClassOfSettlement(domain.EffectException, exc.Reason)
			exceptionID = exc.ID
			if exc.Detail != "" {
				dec.Note = truncateText(exc.Detail, 1000)
			}
		} else {
			dec.Class = domain.ReconClassOfSettlement(res.Effect, domain.ExceptionReason{})
			if res.Effect == domain.EffectReplay && v.Class == domain.ClassHealed {
				dec.Note = "settled meanwhile by another source: " + truncateText(res.Decision.Detail, 200)
			}
		}
		if res.Deposit != nil {
			dep = res.Deposit
		}
		if dec.Class == domain.ClassOrphanOperation {
			for i := range out { // the payment's one exception explains all its operations
				if out[i].Class == domain.ClassOrphanOperation {
					out[i].ExceptionID = exceptionID
				}
			}
		}
	case domain.ActionRaise:
		e := domain.CreditedWithoutPlatformSuccessException(s.ids.NewID("exc"), *dep, v.Detail, dec.Raw, now)
		if v.Class == domain.ClassAmountMismatch || v.Class == domain.ClassCurrencyMismatch {
			// What the ledger credited differs from what the platform
			// collected: an exception that, like credited_without_platform_success,
			// claims nothing (it justifies no credit), once per deposit.
			e.Reason = domain.ReasonAmountMismatch
			if v.Class == domain.ClassCurrencyMismatch {
				e.Reason = domain.ReasonCurrencyMismatch
			}
			e.DedupeKey = "recon:credited_" + e.Reason.String() + ":" + dep.ID
		}
		stored, _, err := tx.InsertException(ctx, e)
		if err != nil {
			return reconResult{}, err
		}
		exceptionID = stored.ID
	}
	dec.ExceptionID = exceptionID
	for i := range out {
		it := &out[i]
		if dep != nil {
			it.DepositID, it.DepositStatus, it.Ledger = dep.ID, dep.Status.String(), dep.Amount
			if side, _ := ledgerSide(dep, credited); side != nil {
				it.Ledger = side.Amount
			}
		}
		if it.Class == domain.ClassDuplicateInSource && it.ExceptionID == "" {
			accountID := ""
			if dep != nil {
				accountID = dep.AccountID
			}
			id, err := r.raiseDuplicate(ctx, tx, ch, *it, accountID, now)
			if err != nil {
				return reconResult{}, err
			}
			it.ExceptionID = id
		}
	}
	return reconResult{items: out, decider: v.Decider}, nil
}

// exceptionOfEvidence finds the exception an applied piece of evidence
// raised, by its dedupe key (nil when it raised none).
func exceptionOfEvidence(ctx context.Context, tx ports.Tx, paymentID, dedupeKey string) (*domain.Exception, error) {
	q := ports.InboxQuery{PaymentID: paymentID, Limit: ports.MaxPageSize}
	for range 100 { // a payment's evidence is a handful of records; bound the search anyway
		recs, err := tx.ListInbox(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, rec := range recs {
			if rec.DedupeKey == dedupeKey && rec.ExceptionID != "" {
				e, err := tx.ExceptionByID(ctx, rec.ExceptionID)
				if err != nil {
					return nil, err
				}
				return &e, nil
			}
		}
		if len(recs) < q.Limit {
			return nil, nil
		}
		q.AfterID = recs[len(recs)-1].ID
	}
	return nil, nil
}

// raiseDuplicate raises (once per listed operation) the exception of a
// duplicate_in_source item. Its evidence is the repeated row; it claims no
// amount, so it justifies no credit.
func (r *reconRun) raiseDuplicate(ctx context.Context, tx ports.Tx, ch domain.Channel, it ports.ReconItem, accountID string, now time.Time) (string, error) {
	e := domain.Exception{
		ID: r.svc.ids.NewID("exc"), Reason: domain.ReasonDuplicateInSource,
		Detail:  fmt.Sprintf("the %s source of %s lists operation %s of payment %s more than once: %s", r.run.Source, r.cmd.Day, it.OperationID, it.PaymentID, it.Note),
		Channel: ch, PaymentID: it.PaymentID, OperationID: it.OperationID, Status: it.OperationStatus,
		Outcome: domain.OutcomeIntermediate, Amount: domain.NewAmount(0, it.Platform.Currency()), DepositID: it.DepositID,
		AccountID: accountID, Evidence: it.Raw,
		DedupeKey: "recon:duplicate_in_source:" + ch.Provider + ":" + it.ProjectID + ":" + it.PaymentID + ":" + it.OperationID,
		State:     domain.ExceptionOpen, CreatedAt: now,
	}
	stored, _, err := tx.InsertException(ctx, e)
	return stored.ID, err
}

// ledger classifies the day's deposits that no operation mentioned: those
// created within the day, then those settled within it (a credit is a
// ledger row of the day it was made).
func (r *reconRun) ledger(ctx context.Context) error {
	for _, bySettled := range []bool{false, true} {
		if err := r.ledgerPass(ctx, bySettled); err != nil {
			return err
		}
	}
	return nil
}

func (r *reconRun) ledgerPass(ctx context.Context, bySettled bool) error {
	day := r.cmd.Day
	q := ports.UnreconciledQuery{RunID: r.run.ID, Provider: r.cmd.Provider, Projects: r.cmd.Projects,
		From: day.Start(), To: day.End(), BySettled: bySettled, Limit: reconPage}
	for {
		var (
			out  []reconResult
			deps []domain.Deposit
		)
		err := r.svc.store.Update(ctx, func(ctx context.Context, tx ports.Tx) error {
			out = out[:0]
			var err error
			if deps, err = tx.ListUnreconciled(ctx, q); err != nil {
				return err
			}
			credited, err := creditedAmounts(ctx, tx, deps)
			if err != nil {
				return err
			}
			seq := r.seq
			for _, d := range deps {
				seq++
				res, err := r.reconcileDeposit(ctx, tx, d, seq, credited)
				if err != nil {
					return err
				}
				out = append(out, res)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("ledger side of run %s: %w", r.run.ID, err)
		}
		r.seq += int64(len(deps))
		for _, res := range out {
			r.count(res)
		}
		r.progress(ports.PhaseLedger, r.run.Rows, r.done)
		if len(deps) < q.Limit {
			return nil
		}
		last := deps[len(deps)-1]
		q.AfterID, q.AfterAt = last.ID, last.CreatedAt
		if bySettled {
			q.AfterAt = last.SettledAt
		}
	}
}

func (r *reconRun) reconcileDeposit(ctx context.Context, tx ports.Tx, d domain.Deposit, seq int64, credited map[string]domain.Amount) (reconResult, error) {
	elsewhere := false
	if d.Status == domain.DepositSucceeded && d.OperationID != "" {
		var err error
		if elsewhere, err = tx.SuccessOnRecord(ctx, r.cmd.Day, d.Channel.Project, d.PaymentID, d.OperationID); err != nil {
			return reconResult{}, err
		}
	}
	v := domain.DecideLedgerOnly(d, r.cmd.Day.End(), elsewhere)
	it := ports.ReconItem{
		RunID: r.run.ID, Seq: seq, Class: v.Class, ProjectID: d.Channel.Project, PaymentID: d.PaymentID,
		OperationID: d.OperationID, Platform: domain.NewAmount(0, d.Amount.Currency()), Ledger: d.Amount,
		DepositID: d.ID, DepositStatus: d.Status.String(), Note: v.Detail,
	}
	if side, _ := ledgerSide(&d, credited); side != nil {
		it.Ledger = side.Amount
	}
	if v.Action == domain.ActionRaise {
		evidence := fmt.Sprintf("no operation for payment %s in the %s source of %s (run %s)", d.PaymentID, r.run.Source, r.cmd.Day, r.run.ID)
		e := domain.CreditedWithoutPlatformSuccessException(r.svc.ids.NewID("exc"), d, v.Detail, evidence, r.svc.clock.Now())
		stored, _, err := tx.InsertException(ctx, e)
		if err != nil {
			return reconResult{}, err
		}
		it.ExceptionID = stored.ID
	}
	if err := tx.InsertReconItems(ctx, []ports.ReconItem{it}); err != nil {
		return reconResult{}, err
	}
	return reconResult{items: []ports.ReconItem{it}, decider: 0}, nil
}

// reconcileUnreadable raises the exception of an unreadable row (once per
// input and line).
func (r *reconRun) reconcileUnreadable(ctx context.Context, tx ports.Tx, it ports.ReconItem) (reconResult, error) {
	e := domain.Exception{
		ID: r.svc.ids.NewID("exc"), Reason: domain.ReasonUnreadableRow,
		Detail:    fmt.Sprintf("line %d of the %s source of %s: %s", it.Line, r.run.Source, r.cmd.Day, it.Note),
		Channel:   domain.Channel{Provider: r.cmd.Provider, Method: r.cmd.Method, Project: it.ProjectID},
		PaymentID: it.PaymentID, OperationID: it.OperationID, Status: it.OperationStatus,
		Outcome: domain.OutcomeIntermediate, Amount: domain.NewAmount(0, it.Platform.Currency()), Evidence: it.Raw,
		DedupeKey: fmt.Sprintf("recon:unreadable_row:%s:%s:%s:%d", r.cmd.Day, r.run.Source, r.run.InputHash, it.Line),
		State:     domain.ExceptionOpen, CreatedAt: r.svc.clock.Now(),
	}
	stored, _, err := tx.InsertException(ctx, e)
	if err != nil {
		return reconResult{}, err
	}
	it.ExceptionID = stored.ID
	return reconResult{items: []ports.ReconItem{it}, decider: -1}, nil
}

// finish stores the run's end with its totals.
func (r *reconRun) finish(ctx context.Context) (ports.ReconRun, error) {
	run := r.run
	var err error
	if run.LedgerMark, err = r.ledgerMark(ctx); err != nil {
		return ports.ReconRun{}, fmt.Errorf("finish run %s: %w", run.ID, err)
	}
	run.Status, run.FinishedAt = ports.RunFinished, r.svc.clock.Now()
	run.Classes = make(map[domain.ReconClass]ports.ClassTotal, len(r.totals))
	for c, t := range r.totals {
		run.Classes[c] = ports.ClassTotal{Count: t.count, Platform: new(big.Int).Set(&t.platform), Ledger: new(big.Int).Set(&t.ledger)}
	}
	if err := r.svc.store.Update(ctx, func(ctx context.Context, tx ports.Tx) error {
		if err := tx.FinishReconRun(ctx, run); err != nil {
			return err
		}
		return tx.DropStagedRows(ctx, run.ID)
	}); err != nil {
		if errors.Is(err, ports.ErrConflict) {
			return ports.ReconRun{}, fmt.Errorf("run %s: %w", run.ID, errTakenOver)
		}
		return ports.ReconRun{}, fmt.Errorf("finish run %s: %w", run.ID, err)
	}
	r.progress(ports.PhaseFinished, run.Rows, r.done)
	return run, nil
}

// ReconRun returns a run (ErrNotFound).
func (s *Service) ReconRun(ctx context.Context, id string) (ports.ReconRun, error) {
	return s.store.ReconRunByID(ctx, id)
}

// ListReconRuns pages through runs, newest first.
func (s *Service) ListReconRuns(ctx context.Context, q ports.ReconRunQuery) ([]ports.ReconRun, error) {
	q.Limit = ports.ClampLimit(q.Limit, 50)
	return s.store.ListReconRuns(ctx, q)
}

// ListReconItems pages through a run's items (ErrNotFound for an unknown
// run).
func (s *Service) ListReconItems(ctx context.Context, q ports.ReconItemQuery) ([]ports.ReconItem, error) {
	if _, err := s.store.ReconRunByID(ctx, q.RunID); err != nil {
		return nil, err
	}
	q.Limit = ports.ClampLimit(q.Limit, 100)
	return s.store.ListReconItems(ctx, q)
}

// BusinessZone is the time zone of business days.
func (s *Service) BusinessZone() *time.Location { return s.zone }

// ParseDay reads "YYYY-MM-DD" as a business day in the business zone.
func (s *Service) ParseDay(v string) (domain.BusinessDay, error) {
	return domain.ParseBusinessDay(v, s.zone)
}
