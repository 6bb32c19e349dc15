package contract_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// Business-day reconciliation and close (issue 17) on every store, with an
// operation source the test writes.

// fakeSource is a day's platform record the test writes: rows, bad rows,
// and optionally a failure after some rows or a gate that holds the
// stream.
type fakeSource struct {
	rows []ports.SourceRow
	bad  []ports.RowError
	// failAfter > 0: the stream breaks after that many rows.
	failAfter int
	// hold, when set, is waited on before the first row (entered is
	// closed then).
	hold, entered chan struct{}
	reads         atomic.Int64
}

func (s *fakeSource) Kind() string { return "csv" }

func (s *fakeSource) Operations(ctx context.Context, day domain.BusinessDay, row func(ports.SourceRow) error, bad func(ports.RowError) error) (ports.SourceSummary, error) {
	s.reads.Add(1)
	if s.hold != nil {
		close(s.entered)
		select {
		case <-s.hold:
		case <-ctx.Done():
			return ports.SourceSummary{}, ctx.Err()
		}
	}
	h := sha256.New()
	sum := ports.SourceSummary{}
	for i, r := range s.rows {
		if s.failAfter > 0 && i == s.failAfter {
			return sum, errors.New("connection reset by peer")
		}
		r.Line = i + 2
		if r.Raw == "" {
			r.Raw = fmt.Sprintf("%s,%s,%s,%s,%s,%d,%s,%s", r.ProjectID, r.PaymentID, r.OperationID, r.Type, r.Status,
				r.Amount.Minor(), r.Amount.Currency().Code(), r.CompletedAt.Format(time.RFC3339Nano))
		}
		h.Write([]byte(r.Raw + "\n"))
		sum.Rows++
		if err := row(r); err != nil {
			return sum, err
		}
	}
	for _, b := range s.bad {
		fmt.Fprintf(h, "bad %d %s\n", b.Line, b.Message)
		sum.Rows++
		sum.Bad++
		if err := bad(b); err != nil {
			return sum, err
		}
	}
	sum.Hash = hex.EncodeToString(h.Sum(nil))
	return sum, nil
}

// reconEnv is a service on the test's store with a clock the test moves,
// inside business day `day` (base is 08:04 local in Almaty).
type reconEnv struct {
	*env
	clock *fakeClock
	day   domain.BusinessDay
}

// newReconEnv makes e's service one on a clock the test moves (the env's
// helpers use it too).
func newReconEnv(t *testing.T, e *env, opts ...app.Option) *reconEnv {
	t.Helper()
	re := &reconEnv{env: e, clock: &fakeClock{t: base}}
	e.svc = app.NewService(e.store, re.clock, e.ids, opts...)
	day, err := re.svc.ParseDay("2030-01-02")
	if err != nil {
		t.Fatal(err)
	}
	if !day.Contains(base) {
		t.Fatalf("base %s is not in %s", base, day)
	}
	re.day = day
	return re
}

// row is a platform operation of the day for payment p.
func (re *reconEnv) row(p, opID, typ, status string, amount domain.Amount) ports.SourceRow {
	return ports.SourceRow{ProjectID: kassa.Project, PaymentID: p, OperationID: opID, Type: typ, Status: status,
		Amount: amount, CompletedAt: re.clock.Now()}
}

func (re *reconEnv) sale(d domain.Deposit, opID, status string) ports.SourceRow {
	return re.row(d.PaymentID, opID, "sale", status, d.Amount)
}

func (re *reconEnv) reconcile(t *testing.T, src ports.OperationSource) ports.ReconRun {
	t.Helper()
	run, err := re.reconcileErr(t.Context(), src)
	if err != nil {
		t.Fatalf("reconcile %s: %v", re.day, err)
	}
	return run
}

func (re *reconEnv) reconcileErr(ctx context.Context, src ports.OperationSource) (ports.ReconRun, error) {
	return re.svc.ReconcileDay(ctx, ports.ReconcileDay{Day: re.day, Source: src, Provider: kassa.Provider,
		Method: kassa.Method, Limits: limits, StartedBy: "operator-1"})
}

// items lists a run's items (of one class, or all).
func (re *reconEnv) items(t *testing.T, runID string, c domain.ReconClass) []ports.ReconItem {
	t.Helper()
	var out []ports.ReconItem
	q := ports.ReconItemQuery{RunID: runID, Class: c, Limit: 7} // small pages: the cursor is exercised
	for {
		page, err := re.svc.ListReconItems(t.Context(), q)
		if err != nil {
			t.Fatalf("items of %s: %v", runID, err)
		}
		out = append(out, page...)
		if len(page) < q.Limit {
			return out
		}
		q.AfterSeq = page[len(page)-1].Seq
	}
}

// classOf maps each payment id to the classes of its items.
func classOf(items []ports.ReconItem) map[string][]domain.ReconClass {
	m := map[string][]domain.ReconClass{}
	for _, it := range items {
		m[it.PaymentID] = append(m[it.PaymentID], it.Class)
	}
	return m
}

// counts of the store: transfers, inbox records, exceptions, items.
type tally struct{ transfers, inbox, exceptions, runs int }

func (re *reconEnv) tally(t *testing.T) tally {
	t.Helper()
	ctx := t.Context()
	inbox, err := re.store.ListInbox(ctx, ports.InboxQuery{Limit: ports.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	runs, err := re.store.ListReconRuns(ctx, ports.ReconRunQuery{Limit: ports.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	return tally{transfers: int(re.transfers(t)), inbox: len(inbox), exceptions: len(re.exceptions(t)), runs: len(runs)}
}

// everyClass is a day with one case of each class; it returns the source
// and the payment id each class is expected for.
type classCase struct {
	payment string
	class   domain.ReconClass
	deposit *domain.Deposit
}

func (re *reconEnv) everyClass(t *testing.T) (*fakeSource, []classCase) {
	t.Helper()
	kzt := func(m int64) domain.Amount { return domain.NewAmount(m, domain.KZT) }
	for i := range 12 {
		re.openAccount(t, fmt.Sprintf("c%d", i))
	}
	dep := func(i int, minor int64) domain.Deposit { return re.openDeposit(t, fmt.Sprintf("c%d", i), minor) }
	src := &fakeSource{}
	var cases []classCase
	add := func(p string, c domain.ReconClass, d *domain.Deposit) { cases = append(cases, classCase{p, c, d}) }

	matched := dep(0, 100_00)
	re.settle(t, re.success(matched, "op-m"))
	src.rows = append(src.rows, re.sale(matched, "op-m", "success"))
	add(matched.PaymentID, domain.ClassMatched, &matched)

	healed := dep(1, 200_00)
	src.rows = append(src.rows, re.sale(healed, "op-h", "success"))
	add(healed.PaymentID, domain.ClassHealed, &healed)

	healedDecl := dep(2, 300_00)
	re.settle(t, re.decline(healedDecl, "op-hd0"))
	src.rows = append(src.rows, re.sale(healedDecl, "op-hd", "success"))
	add(healedDecl.PaymentID, domain.ClassHealed, &healedDecl)

	amount := dep(3, 400_00)
	src.rows = append(src.rows, re.row(amount.PaymentID, "op-a", "sale", "success", kzt(400_01)))
	add(amount.PaymentID, domain.ClassAmountMismatch, &amount)

	cur := dep(4, 500_00)
	src.rows = append(src.rows, re.row(cur.PaymentID, "op-c", "sale", "success", domain.NewAmount(500_00, xts)))
	add(cur.PaymentID, domain.ClassCurrencyMismatch, &cur)

	src.rows = append(src.rows, re.row("pay-never-issued", "op-o", "sale", "success", kzt(600_00)))
	add("pay-never-issued", domain.ClassOrphanOperation, nil)

	ledgerOnly := dep(5, 700_00)
	re.settle(t, re.success(ledgerOnly, "op-lo"))
	add(ledgerOnly.PaymentID, domain.ClassCreditedWithoutPlatformSuccess, &ledgerOnly)

	creditedDeclined := dep(6, 800_00)
	re.settle(t, re.success(creditedDeclined, "op-cd"))
	src.rows = append(src.rows, re.sale(creditedDeclined, "op-cd", "decline"))
	add(creditedDeclined.PaymentID, domain.ClassCreditedWithoutPlatformSuccess, &creditedDeclined)

	pendingNone := dep(7, 900_00)
	add(pendingNone.PaymentID, domain.ClassPendingBoth, &pendingNone)

	pendingProc := dep(8, 1000_00)
	src.rows = append(src.rows, re.sale(pendingProc, "op-pp", "processing"))
	add(pendingProc.PaymentID, domain.ClassPendingBoth, &pendingProc)

	dup := dep(9, 1100_00)
	re.settle(t, re.success(dup, "op-d"))
	src.rows = append(src.rows, re.sale(dup, "op-d", "success"), re.sale(dup, "op-d", "success"))
	add(dup.PaymentID, domain.ClassDuplicateInSource, &dup)

	held := dep(10, 1200_00)
	src.rows = append(src.rows, re.sale(held, "op-r", "success"))
	refund := re.row(held.PaymentID, "op-r2", "refund", "success", held.Amount)
	refund.CompletedAt = refund.CompletedAt.Add(time.Minute)
	src.rows = append(src.rows, refund)
	add(held.PaymentID, domain.ClassHeldForOperator, &held)

	src.bad = append(src.bad, ports.RowError{Line: 99, Column: "amount", Message: `"12,5" is not an amount`})
	add("", domain.ClassUnreadableRow, nil)
	return src, cases
}

func TestReconcileEveryClass(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		re := newReconEnv(t, e)
		ctx := t.Context()
		src, cases := re.everyClass(t)
		before := re.tally(t)
		re.clock.advance(20 * time.Hour) // the day has ended
		run := re.reconcile(t, src)
		if run.Status != ports.RunFinished || run.Unchanged || run.ID == "" || run.InputHash == "" || run.Source != "csv" ||
			run.Day != re.day || run.StartedBy != "operator-1" || run.FinishedAt.IsZero() || run.Rows != int64(len(src.rows)+1) || run.BadRows != 1 {
			t.Fatalf("run = %+v", run)
		}
		want := map[domain.ReconClass]int64{
			domain.ClassMatched: 3, // matched, the held payment's superseded sale, the duplicate's first copy
			domain.ClassHealed:  2, domain.ClassAmountMismatch: 1, domain.ClassCurrencyMismatch: 1, domain.ClassOrphanOperation: 1,
			domain.ClassCreditedWithoutPlatformSuccess: 2, domain.ClassPendingBoth: 2, domain.ClassDuplicateInSource: 1,
			domain.ClassHeldForOperator: 1, domain.ClassUnreadableRow: 1,
		}
		for _, c := range domain.ReconClasses() {
			if got := run.Count(c); got != want[c] {
				t.Errorf("count of %s = %d, want %d", c, got, want[c])
			}
		}
		if !bigIs(run.Classes[domain.ClassHealed].Platform, 500_00) || !bigIs(run.Classes[domain.ClassHealed].Ledger, 500_00) ||
			!bigIs(run.Classes[domain.ClassAmountMismatch].Platform, 400_01) || !bigIs(run.Classes[domain.ClassAmountMismatch].Ledger, 400_00) ||
			!bigIs(run.Classes[domain.ClassOrphanOperation].Ledger, 0) {
			t.Errorf("sums: %+v", run.Classes)
		}
		stored, err := re.svc.ReconRun(ctx, run.ID)
		if err != nil || stored.Status != ports.RunFinished || stored.Count(domain.ClassHealed) != 2 || stored.InputHash != run.InputHash ||
			!bigIs(stored.Classes[domain.ClassHealed].Platform, 500_00) {
			t.Fatalf("stored run = %+v, %v", stored, err)
		}

		all := re.items(t, run.ID, domain.ReconClass{})
		byPay := classOf(all)
		for _, c := range cases {
			got := byPay[c.payment]
			found := false
			for _, g := range got {
				found = found || g == c.class
			}
			if !found {
				t.Errorf("payment %q: classes %v, want %v", c.payment, got, c.class)
			}
		}
		var total int64
		for _, c := range domain.ReconClasses() {
			items := re.items(t, run.ID, c)
			total += int64(len(items))
			if int64(len(items)) != want[c] {
				t.Errorf("items of %s: %d", c, len(items))
			}
			for _, it := range items {
				if it.Class != c || it.Note == "" {
					t.Errorf("item %+v under filter %s", it, c)
				}
				if c.IsBreak() && it.ExceptionID == "" {
					t.Errorf("break without an exception: %+v", it)
				}
			}
		}
		if total != int64(len(all)) {
			t.Errorf("items by class %d, all %d", total, len(all))
		}

		// The money: healed deposits are credited once, with the row as
		// evidence from the reconciliation; breaks moved nothing.
		for _, c := range cases {
			if c.deposit == nil {
				continue
			}
			got := re.deposit(t, *c.deposit)
			switch c.class {
			case domain.ClassHealed:
				if got.Status != domain.DepositSucceeded {
					t.Errorf("healed deposit %s is %s", got.PaymentID, got.Status)
				}
				inbox, err := re.store.ListInbox(ctx, ports.InboxQuery{PaymentID: got.PaymentID, Source: ports.SourceReconciliation})
				if err != nil || len(inbox) != 1 || inbox[0].Outcome != domain.EffectCredit || inbox[0].Body == "" {
					t.Errorf("heal evidence of %s: %+v, %v", got.PaymentID, inbox, err)
				}
			case domain.ClassAmountMismatch, domain.ClassCurrencyMismatch, domain.ClassHeldForOperator, domain.ClassPendingBoth:
				if got.Status == domain.DepositSucceeded {
					t.Errorf("%s deposit %s was credited", c.class, got.PaymentID)
				}
			}
		}
		after := re.tally(t)
		if after.transfers != before.transfers+2 {
			t.Errorf("transfers %d → %d, want two heals", before.transfers, after.transfers)
		}
		reasons := map[domain.ExceptionReason]int{}
		for _, x := range re.exceptions(t) {
			reasons[x.Reason]++
		}
		for r, n := range map[domain.ExceptionReason]int{domain.ReasonAmountMismatch: 1, domain.ReasonCurrencyMismatch: 1,
			domain.ReasonUnknownPayment: 1, domain.ReasonCreditedWithoutPlatformSuccess: 2, domain.ReasonDuplicateInSource: 1,
			domain.ReasonReversal: 1, domain.ReasonUnreadableRow: 1} {
			if reasons[r] != n {
				t.Errorf("exceptions of reason %s: %d, want %d (%v)", r, reasons[r], n, reasons)
			}
		}
		re.healthy(t)

		// The same input again: nothing changes, and the run says so.
		again := re.reconcile(t, src)
		if !again.Unchanged || again.ID != run.ID || again.Count(domain.ClassHealed) != 2 {
			t.Fatalf("rerun = %+v", again)
		}
		if got := re.tally(t); got != after {
			t.Fatalf("rerun changed the store: %+v → %+v", after, got)
		}

		// A new input for the day is a new run: the heals are now matches,
		// the breaks raise no second exception.
		orphan2 := re.row("pay-never-issued-2", "op-o2", "sale", "decline", domain.NewAmount(1_00, domain.KZT))
		orphan2.CompletedAt = base
		src2 := &fakeSource{rows: append(append([]ports.SourceRow(nil), src.rows...), orphan2), bad: src.bad}
		run2 := re.reconcile(t, src2)
		if run2.Unchanged || run2.ID == run.ID || run2.Count(domain.ClassHealed) != 0 || run2.Count(domain.ClassMatched) != 5 ||
			run2.Count(domain.ClassOrphanOperation) != 2 {
			t.Fatalf("new input run = %+v", run2.Classes)
		}
		if got := re.tally(t); got.transfers != after.transfers || got.exceptions != after.exceptions+2 || got.runs != after.runs+1 {
			// two new exceptions: the new orphan, and the unreadable row of a new input
			t.Fatalf("new input: %+v → %+v", after, got)
		}
		runs, err := re.svc.ListReconRuns(ctx, ports.ReconRunQuery{Day: re.day})
		if err != nil || len(runs) != 2 || runs[0].ID != run2.ID || runs[1].ID != run.ID {
			t.Fatalf("runs newest first: %+v, %v", runs, err)
		}
		if page, err := re.svc.ListReconRuns(ctx, ports.ReconRunQuery{Day: re.day, BeforeID: run2.ID}); err != nil || len(page) != 1 || page[0].ID != run.ID {
			t.Fatalf("runs before %s: %+v, %v", run2.ID, page, err)
		}
		if _, err := re.svc.ListReconItems(ctx, ports.ReconItemQuery{RunID: "rcn_nope"}); !errors.Is(err, ports.ErrNotFound) {
			t.Fatalf("items of an unknown run: %v", err)
		}
		if _, err := re.svc.ReconRun(ctx, "rcn_nope"); !errors.Is(err, ports.ErrNotFound) {
			t.Fatalf("unknown run: %v", err)
		}
		re.healthy(t)
	})
}

// TestReconcileSameInputNewLedger: while the day is in progress the
// ledger side grows; the same input against a ledger side that changed is
// a new run, not "unchanged".
func TestReconcileSameInputNewLedger(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		re := newReconEnv(t, e)
		re.openAccount(t, "c1")
		d := re.openDeposit(t, "c1", 100_00)
		src := &fakeSource{rows: []ports.SourceRow{re.sale(d, "op-1", "success")}}
		first := re.reconcile(t, src)
		if again := re.reconcile(t, src); !again.Unchanged || again.ID != first.ID {
			t.Fatalf("rerun with nothing changed: %+v", again)
		}
		later := re.openDeposit(t, "c1", 200_00) // a new deposit of the day
		second := re.reconcile(t, src)
		if second.Unchanged || second.ID == first.ID || second.Count(domain.ClassPendingBoth) != 1 {
			t.Fatalf("rerun after a new deposit: %+v", second)
		}
		re.settle(t, re.success(later, "op-2")) // a deposit of the day moved
		third := re.reconcile(t, src)
		if third.Unchanged || third.Count(domain.ClassCreditedWithoutPlatformSuccess) != 1 {
			t.Fatalf("rerun after a credit: %+v", third.Classes)
		}
		if again := re.reconcile(t, src); !again.Unchanged || again.ID != third.ID {
			t.Fatalf("rerun with nothing changed: %+v", again)
		}
	})
}

func TestReconcileRefusesBadCommands(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		re := newReconEnv(t, e)
		ctx := t.Context()
		src := &fakeSource{}
		ok := ports.ReconcileDay{Day: re.day, Source: src, Provider: "monetix", Method: "kassa24", StartedBy: "op"}
		tomorrow := re.day.Next().Next()
		utc, err := domain.ParseBusinessDay("2030-01-02", time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		for name, mod := range map[string]func(*ports.ReconcileDay){
			"no day":      func(c *ports.ReconcileDay) { c.Day = domain.BusinessDay{} },
			"no source":   func(c *ports.ReconcileDay) { c.Source = nil },
			"no provider": func(c *ports.ReconcileDay) { c.Provider = "" },
			"no method":   func(c *ports.ReconcileDay) { c.Method = "" },
			"nobody":      func(c *ports.ReconcileDay) { c.StartedBy = "" },
			"future day":  func(c *ports.ReconcileDay) { c.Day = tomorrow },
			"other zone":  func(c *ports.ReconcileDay) { c.Day = utc },
		} {
			cmd := ok
			mod(&cmd)
			if _, err := re.svc.ReconcileDay(ctx, cmd); !errors.Is(err, domain.ErrInvalidInput) {
				t.Errorf("%s: %v", name, err)
			}
		}
		if src.reads.Load() != 0 {
			t.Fatalf("a refused command read the source")
		}
		if runs, _ := re.svc.ListReconRuns(ctx, ports.ReconRunQuery{}); len(runs) != 0 {
			t.Fatalf("refused commands left runs: %+v", runs)
		}
	})
}

// TestReconcileRowsTheRunCannotUse: rows outside the day, without ids,
// with an id too long or a body the database cannot hold as text are
// unreadable rows (each an exception); the others still reconcile.
func TestReconcileRowsTheRunCannotUse(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		re := newReconEnv(t, e)
		re.openAccount(t, "c1")
		d := re.openDeposit(t, "c1", 100_00)
		yesterday := re.sale(d, "op-y", "success")
		yesterday.CompletedAt = re.day.Start().Add(-time.Second)
		long := re.sale(d, string(make([]byte, 300)), "success")
		noID := re.sale(d, "", "success")
		src := &fakeSource{rows: []ports.SourceRow{yesterday, long, noID, re.sale(d, "op-ok", "success")}}
		src.rows[3].Raw = "ok,\x00,\xff\xfe"
		run := re.reconcile(t, src)
		if run.Count(domain.ClassUnreadableRow) != 3 || run.Count(domain.ClassHealed) != 1 {
			t.Fatalf("classes %+v", run.Classes)
		}
		for _, it := range re.items(t, run.ID, domain.ClassUnreadableRow) {
			if it.ExceptionID == "" || it.Line < 2 {
				t.Errorf("unreadable item %+v", it)
			}
		}
		if got := re.deposit(t, d); got.Status != domain.DepositSucceeded || got.OperationID != "op-ok" {
			t.Fatalf("deposit %+v", got)
		}
		re.healthy(t)
	})
}

func TestReconcileSourceFailureAppliesNothing(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		re := newReconEnv(t, e)
		ctx := t.Context()
		re.openAccount(t, "c1")
		var rows []ports.SourceRow
		for range 3 {
			d := re.openDeposit(t, "c1", 100_00)
			rows = append(rows, re.sale(d, "op-"+d.PaymentID, "success"))
		}
		before := re.tally(t)
		_, err := re.reconcileErr(ctx, &fakeSource{rows: rows, failAfter: 2})
		if err == nil {
			t.Fatal("a broken source gave a run")
		}
		runs, err := re.svc.ListReconRuns(ctx, ports.ReconRunQuery{})
		if err != nil || len(runs) != 1 || runs[0].Status != ports.RunFailed || runs[0].Error == "" || runs[0].FinishedAt.IsZero() {
			t.Fatalf("runs %+v, %v", runs, err)
		}
		if got := re.tally(t); got.transfers != before.transfers || got.exceptions != before.exceptions || got.inbox != before.inbox {
			t.Fatalf("a failed run applied something: %+v → %+v", before, got)
		}
		// The day can still be reconciled, and the failed run does not
		// count as "the same input".
		if run := re.reconcile(t, &fakeSource{rows: rows}); run.Unchanged || run.Count(domain.ClassHealed) != 3 {
			t.Fatalf("run after the failure: %+v", run)
		}
		re.healthy(t)
	})
}

// TestReconcileOneRunPerDay: a second run of the day while one runs is
// refused; a run whose process stopped beating is taken over.
func TestReconcileOneRunPerDay(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		re := newReconEnv(t, e, app.WithReconStaleAfter(time.Minute))
		ctx := t.Context()
		re.openAccount(t, "c1")
		d := re.openDeposit(t, "c1", 100_00)
		held := &fakeSource{rows: []ports.SourceRow{re.sale(d, "op-1", "success")}, hold: make(chan struct{}), entered: make(chan struct{})}
		var (
			first    ports.ReconRun
			firstErr error
			wg       sync.WaitGroup
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			first, firstErr = re.reconcileErr(ctx, held)
		}()
		select {
		case <-held.entered:
		case <-time.After(raceTimeout):
			t.Fatal("the first run never read its source")
		}
		if _, err := re.reconcileErr(ctx, &fakeSource{}); !errors.Is(err, ports.ErrRunInProgress) {
			t.Fatalf("second run while one runs: %v", err)
		}
		close(held.hold)
		wg.Wait()
		if firstErr != nil || first.Count(domain.ClassHealed) != 1 {
			t.Fatalf("first run: %+v, %v", first, firstErr)
		}

		// A crashed run: running, its heartbeat old.
		crashed := ports.ReconRun{ID: e.ids.NewID("rcn"), Day: re.day, Source: "csv", StartedBy: "crashed",
			StartedAt: re.clock.Now(), HeartbeatAt: re.clock.Now(), Status: ports.RunRunning}
		e.update(t, func(ctx context.Context, tx ports.Tx) error { return tx.InsertReconRun(ctx, crashed) })
		err := e.updateErr(t, func(ctx context.Context, tx ports.Tx) error {
			return tx.InsertReconRun(ctx, ports.ReconRun{ID: e.ids.NewID("rcn"), Day: re.day, Source: "csv", StartedBy: "x",
				StartedAt: re.clock.Now(), HeartbeatAt: re.clock.Now(), Status: ports.RunRunning})
		})
		wantErr(t, "a second running run of the day", err, ports.ErrConflict)
		if _, err := re.reconcileErr(ctx, &fakeSource{}); !errors.Is(err, ports.ErrRunInProgress) {
			t.Fatalf("while the other still beats: %v", err)
		}
		re.clock.advance(2 * time.Minute)
		run := re.reconcile(t, &fakeSource{rows: []ports.SourceRow{re.sale(d, "op-1", "success")}})
		if run.Unchanged || run.Count(domain.ClassMatched) != 1 {
			t.Fatalf("run after the takeover: %+v", run)
		}
		got, err := re.svc.ReconRun(ctx, crashed.ID)
		if err != nil || got.Status != ports.RunFailed || got.Error == "" {
			t.Fatalf("the crashed run: %+v, %v", got, err)
		}
		// Heartbeats and the finish of a run that was taken over are refused.
		e.update(t, func(ctx context.Context, tx ports.Tx) error {
			wantErr(t, "beat of a failed run", tx.BeatReconRun(ctx, crashed.ID, re.clock.Now()), ports.ErrConflict)
			wantErr(t, "finish of a failed run", tx.FinishReconRun(ctx, ports.ReconRun{ID: crashed.ID, Status: ports.RunFinished}), ports.ErrConflict)
			wantErr(t, "takeover of a failed run", tx.TakeOverReconRun(ctx, crashed.ID, re.clock.Now(), re.clock.Now(), "x"), ports.ErrConflict)
			wantErr(t, "beat of no run", tx.BeatReconRun(ctx, "rcn_nope", re.clock.Now()), ports.ErrNotFound)
			return nil
		})
		re.healthy(t)
	})
}

// TestReconcileRacesCallbacksAndStatusAnswers: a run heals deposits while
// their callbacks and the poller's answers arrive; every deposit is
// credited exactly once and the run says healed or matched for each.
func TestReconcileRacesCallbacksAndStatusAnswers(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		re := newReconEnv(t, e)
		const n = 30
		re.openAccount(t, "c1")
		deps := make([]domain.Deposit, n)
		src := &fakeSource{}
		for i := range deps {
			deps[i] = re.openDeposit(t, "c1", int64(100_00+i))
			src.rows = append(src.rows, re.sale(deps[i], fmt.Sprintf("op-%d", i), "success"))
		}
		var runErr error
		var run ports.ReconRun
		errs := race(t, 2*n+1, func(ctx context.Context, i int) error {
			switch {
			case i == 2*n:
				run, runErr = re.reconcileErr(ctx, src)
				return runErr
			case i < n:
				_, err := re.svc.SettleDeposit(ctx, re.success(deps[i], fmt.Sprintf("op-%d", i)))
				return err
			default:
				cmd := re.success(deps[i-n], fmt.Sprintf("op-%d", i-n))
				cmd.Source, cmd.RawBody = ports.SourceStatusPoll, `{"status":"answer"}`
				_, err := re.svc.SettleDeposit(ctx, cmd)
				return err
			}
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("racer %d: %v", i, err)
			}
		}
		if run.Count(domain.ClassHealed)+run.Count(domain.ClassMatched) != n || run.Breaks() != 0 {
			t.Fatalf("run classes %+v", run.Classes)
		}
		c := re.healthy(t)
		if c.Transfers != n || c.DuplicateCredits != 0 || !bigIs(c.CustomerBalanceTotal, int64(n*100_00+n*(n-1)/2)) {
			t.Fatalf("ledger %+v", c)
		}
		for _, d := range deps {
			if got := re.deposit(t, d); got.Status != domain.DepositSucceeded {
				t.Fatalf("deposit %s is %s", d.PaymentID, got.Status)
			}
		}
		// What the run healed is exactly what its evidence credited.
		inbox, err := re.store.ListInbox(t.Context(), ports.InboxQuery{Source: ports.SourceReconciliation, Outcome: domain.EffectCredit, Limit: ports.MaxPageSize})
		if err != nil || int64(len(inbox)) != run.Count(domain.ClassHealed) {
			t.Fatalf("heal evidence %d, healed %d (%v)", len(inbox), run.Count(domain.ClassHealed), err)
		}
	})
}

// TestReconcileManyPages: more rows than a page, payments spread over the
// page boundaries, in an order that interleaves payments.
func TestReconcileManyPages(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		re := newReconEnv(t, e)
		const n = 700
		re.openAccount(t, "c1")
		src := &fakeSource{}
		var deps []domain.Deposit
		for i := range n {
			d := re.openDeposit(t, "c1", 100)
			deps = append(deps, d)
			src.rows = append(src.rows, re.sale(d, fmt.Sprintf("op-%d", i), "processing"))
		}
		for i := range n {
			src.rows = append(src.rows, re.sale(deps[i], fmt.Sprintf("op-%d-b", i), "success"))
		}
		run := re.reconcile(t, src)
		// Each payment: the processing sale is superseded (matched), the
		// later success heals.
		if run.Count(domain.ClassHealed) != n || run.Count(domain.ClassMatched) != n || run.Rows != 2*n {
			t.Fatalf("classes %+v", run.Classes)
		}
		if c := re.healthy(t); c.Transfers != n || !bigIs(c.CustomerBalanceTotal, n*100) {
			t.Fatalf("ledger %+v", c)
		}
	})
}

// TestReconcileLedgerSideAcrossMidnight: the ledger side is the deposits
// created or settled within the day; what the ledger had at the day's end
// decides; a credit after midnight whose sale is on the previous day's
// record is matched.
func TestReconcileLedgerSideAcrossMidnight(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		re := newReconEnv(t, e)
		ctx := t.Context()
		re.openAccount(t, "c1")
		// Just before midnight: a deposit whose sale completes in the
		// day, with the callback after midnight.
		re.clock.t = re.day.End().Add(-2 * time.Second)
		late := re.openDeposit(t, "c1", 100_00)
		lateRow := re.sale(late, "op-late", "success")
		// And one whose sale completes after midnight.
		next := re.openDeposit(t, "c1", 200_00)
		re.clock.advance(5 * time.Second) // past midnight
		re.settle(t, re.success(late, "op-late"))
		re.settle(t, re.success(next, "op-next"))
		nextRow := re.row(next.PaymentID, "op-next", "sale", "success", next.Amount)

		run := re.reconcile(t, &fakeSource{rows: []ports.SourceRow{lateRow}})
		c := classOf(re.items(t, run.ID, domain.ReconClass{}))
		if fmt.Sprint(c[late.PaymentID]) != "[matched]" || fmt.Sprint(c[next.PaymentID]) != "[pending_both]" {
			t.Fatalf("day's classes %v", c)
		}
		// The next day: the late deposit was credited in it but its sale
		// is on the previous day's record; the other matches its row.
		re.day = re.day.Next()
		run2 := re.reconcile(t, &fakeSource{rows: []ports.SourceRow{nextRow}})
		c2 := classOf(re.items(t, run2.ID, domain.ReconClass{}))
		if fmt.Sprint(c2[late.PaymentID]) != "[matched]" || fmt.Sprint(c2[next.PaymentID]) != "[matched]" || run2.Breaks() != 0 {
			t.Fatalf("next day's classes %v", c2)
		}
		// The ledger side is the source's projects only.
		re.day = re.day.Next()
		_, err := re.svc.ReconcileDay(ctx, ports.ReconcileDay{Day: re.day.Prev(), Source: &fakeSource{}, Provider: kassa.Provider,
			Method: kassa.Method, StartedBy: "op", Projects: []string{"another-project"}})
		if err != nil {
			t.Fatal(err)
		}
		runs, _ := re.svc.ListReconRuns(ctx, ports.ReconRunQuery{Day: re.day.Prev()})
		if len(runs) != 2 || runs[0].Count(domain.ClassMatched)+runs[0].Count(domain.ClassPendingBoth) != 0 {
			t.Fatalf("a project filter kept deposits of other projects: %+v", runs[0].Classes)
		}
	})
}

// close helpers

func (re *reconEnv) closeDay(cmd ports.CloseDay) (ports.DayRecord, error) {
	if cmd.Day.IsZero() {
		cmd.Day = re.day
	}
	if cmd.By == "" {
		cmd.By = "operator-1"
	}
	return re.svc.CloseDay(context.Background(), cmd)
}

// statement reads a closed day's statement, all pages.
func (re *reconEnv) statement(t *testing.T, day domain.BusinessDay) (ports.DayRecord, map[string]ports.DayBalance) {
	t.Helper()
	out := map[string]ports.DayBalance{}
	q := ports.DayBalanceQuery{Day: day, Limit: 2}
	var rec ports.DayRecord
	for {
		v, err := re.svc.Day(t.Context(), q)
		if err != nil {
			t.Fatalf("day %s: %v", day, err)
		}
		rec = v.Record
		for _, b := range v.Balances {
			if _, dup := out[b.AccountID]; dup {
				t.Fatalf("account %s twice", b.AccountID)
			}
			out[b.AccountID] = b
		}
		if len(v.Balances) < q.Limit {
			return rec, out
		}
		q.AfterAccountID = v.Balances[len(v.Balances)-1].AccountID
	}
}

// checkStatement: every line adds up, the system accounts balance the
// customers', and each customer's closing is its balance at the day's end.
func (re *reconEnv) checkStatement(t *testing.T, day domain.BusinessDay, lines map[string]ports.DayBalance) {
	t.Helper()
	total := new(big.Int)
	for id, b := range lines {
		if b.Opening+b.Credits-b.Debits != b.Closing || b.Credits < 0 || b.Debits < 0 {
			t.Errorf("%s does not add up: %+v", id, b)
		}
		total.Add(total, big.NewInt(b.Closing))
		if !b.System {
			at, err := re.store.BalanceAt(t.Context(), id, day.End().Add(-time.Microsecond))
			if err != nil || at != b.Closing {
				t.Errorf("%s: closing %d, balance at the day's end %d (%v)", id, b.Closing, at, err)
			}
			open, err := re.store.BalanceAt(t.Context(), id, day.Start().Add(-time.Microsecond))
			if err != nil || open != b.Opening {
				t.Errorf("%s: opening %d, balance before the day %d (%v)", id, b.Opening, open, err)
			}
		}
	}
	if total.Sign() != 0 {
		t.Errorf("closings sum to %s, not zero", total)
	}
}

func TestCloseDay(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		re := newReconEnv(t, e)
		ctx := t.Context()
		// The day before: money already on an account (the opening).
		re.clock.t = re.day.Start().Add(-time.Hour)
		a := re.fund(t, "c1", 1000_00)
		re.clock.t = base
		d := re.openDeposit(t, "c1", 250_00)
		re.settle(t, re.success(d, "op-1"))
		if _, err := re.svc.Debit(ctx, ports.Debit{AccountID: a.ID(), Amount: kzt(100_00), IdempotencyKey: "k1", RequestHash: "h", Actor: "shop"}); err != nil {
			t.Fatal(err)
		}
		orphan := re.row("pay-never-issued", "op-o", "sale", "success", kzt(5_00))
		src := &fakeSource{rows: []ports.SourceRow{re.sale(d, "op-1", "success"), orphan}}

		_, err := re.closeDay(ports.CloseDay{})
		wantErr(t, "close before the day ended", err, ports.ErrDayNotEnded)
		re.clock.t = re.day.End().Add(time.Minute)
		_, err = re.closeDay(ports.CloseDay{})
		wantErr(t, "close without a run", err, ports.ErrOpenBreaks)
		run := re.reconcile(t, src)
		_, err = re.closeDay(ports.CloseDay{})
		wantErr(t, "close with an open break", err, ports.ErrOpenBreaks)
		_, err = re.closeDay(ports.CloseDay{Override: true})
		wantErr(t, "override without a reason", err, domain.ErrInvalidInput)
		_, err = re.closeDay(ports.CloseDay{Reason: "no override"})
		wantErr(t, "a reason without an override", err, domain.ErrInvalidInput)
		_, err = re.svc.CloseDay(ctx, ports.CloseDay{By: "op"})
		wantErr(t, "close without a day", err, domain.ErrInvalidInput)
		_, err = re.svc.CloseDay(ctx, ports.CloseDay{Day: re.day})
		wantErr(t, "close by nobody", err, domain.ErrInvalidInput)
		if _, err := re.svc.Day(ctx, ports.DayBalanceQuery{Day: re.day}); !errors.Is(err, ports.ErrNotFound) {
			t.Fatalf("an open day's statement: %v", err)
		}

		// The operator explains the break: dismissing its exception.
		items := re.items(t, run.ID, domain.ClassOrphanOperation)
		if len(items) != 1 || items[0].ExceptionID == "" {
			t.Fatalf("orphan items %+v", items)
		}
		if _, err := re.svc.ResolveException(ctx, ports.ResolveException{ExceptionID: items[0].ExceptionID,
			Note: "a test payment of the platform's support", Actor: "operator-2"}); err != nil {
			t.Fatal(err)
		}
		rec, err := re.closeDay(ports.CloseDay{})
		if err != nil {
			t.Fatalf("close after the break is explained: %v", err)
		}
		if rec.Day != re.day || rec.RunID != run.ID || rec.Override || rec.OpenBreaks != 0 || rec.ClosedBy != "operator-1" || rec.Accounts != 3 {
			t.Fatalf("record %+v", rec)
		}
		_, err = re.closeDay(ports.CloseDay{})
		wantErr(t, "a second close", err, ports.ErrDayClosed)
		_, err = re.closeDay(ports.CloseDay{Override: true, Reason: "again"})
		wantErr(t, "a second close with override", err, ports.ErrDayClosed)

		got, lines := re.statement(t, re.day)
		if got.RunID != run.ID || len(lines) != 3 {
			t.Fatalf("statement %+v %+v", got, lines)
		}
		re.checkStatement(t, re.day, lines)
		if b := lines[a.ID()]; b.Opening != 1000_00 || b.Credits != 250_00 || b.Debits != 100_00 || b.Closing != 1150_00 || b.System {
			t.Fatalf("customer line %+v", b)
		}
		if b := lines[kassa.ClearingAccountID()]; !b.System || b.Opening != -1000_00 || b.Debits != 250_00 || b.Closing != -1250_00 {
			t.Fatalf("clearing line %+v", b)
		}

		// Nothing can be written into the closed day, whoever tries.
		inside := re.day.End().Add(-time.Hour)
		dep := e.newDeposit(t, kassa, a, 100_00, inside)
		err = e.updateErr(t, func(ctx context.Context, tx ports.Tx) error { return tx.InsertDeposit(ctx, dep) })
		wantErr(t, "a deposit dated inside the closed day", err, ports.ErrDayClosed)
		tr, terr := domain.NewTransfer(e.ids.NewID("trf"), domain.TransferDebit, a.ID(), "revenue:test", kzt(1_00), inside)
		if terr != nil {
			t.Fatal(terr)
		}
		err = e.updateErr(t, func(ctx context.Context, tx ports.Tx) error { _, err := tx.ApplyTransfer(ctx, tr); return err })
		wantErr(t, "a transfer dated inside the closed day", err, ports.ErrDayClosed)
		earlier := e.newDeposit(t, kassa, a, 100_00, re.day.Start().Add(-48*time.Hour))
		err = e.updateErr(t, func(ctx context.Context, tx ports.Tx) error { return tx.InsertDeposit(ctx, earlier) })
		wantErr(t, "a deposit dated before the closed day", err, ports.ErrDayClosed)
		// A callback whose clock is behind is refused, not booked into the day.
		late := re.openDeposit(t, "c1", 300_00)
		behind := app.NewService(e.store, &fakeClock{t: inside}, e.ids)
		_, err = behind.SettleDeposit(ctx, re.success(late, "op-late"))
		wantErr(t, "a credit dated inside the closed day", err, ports.ErrDayClosed)
		// The correction lands in the next open day.
		re.settle(t, re.success(late, "op-late"))
		_, again := re.statement(t, re.day)
		if fmt.Sprint(again) != fmt.Sprint(lines) {
			t.Fatalf("the closed day's statement changed: %v → %v", lines, again)
		}
		re.healthy(t)

		// The next day opens where the closed one closed.
		re.clock.t = re.day.Next().End().Add(time.Minute)
		re.day = re.day.Next()
		rec2, err := re.closeDay(ports.CloseDay{Override: true, Reason: "no reconciliation for the test's second day"})
		if err != nil || !rec2.Override || rec2.RunID != "" || rec2.Reason == "" {
			t.Fatalf("override close: %+v, %v", rec2, err)
		}
		_, lines2 := re.statement(t, re.day)
		re.checkStatement(t, re.day, lines2)
		if b := lines2[a.ID()]; b.Opening != 1150_00 || b.Credits != 300_00 || b.Closing != 1450_00 {
			t.Fatalf("second day's customer line %+v", b)
		}
	})
}

// TestCloseDayRacesCredits: credits arrive while a day closes; each is
// either inside the closed day's statement or refused, never lost from
// it, and the statement equals the balances at the day's end.
func TestCloseDayRacesCredits(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		re := newReconEnv(t, e)
		re.openAccount(t, "c1")
		const n = 20
		deps := make([]domain.Deposit, n)
		for i := range deps {
			deps[i] = re.openDeposit(t, "c1", 100_00)
		}
		re.clock.t = re.day.End().Add(time.Second)
		// A clock inside the day: credits dated before the close.
		behind := app.NewService(e.store, &fakeClock{t: re.day.End().Add(-time.Second)}, e.ids)
		errs := race(t, n+1, func(ctx context.Context, i int) error {
			if i == n {
				_, err := re.svc.CloseDay(ctx, ports.CloseDay{Day: re.day, By: "op", Override: true, Reason: "race"})
				return err
			}
			_, err := behind.SettleDeposit(ctx, re.success(deps[i], fmt.Sprintf("op-%d", i)))
			if errors.Is(err, ports.ErrDayClosed) {
				return nil
			}
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("racer %d: %v", i, err)
			}
		}
		_, lines := re.statement(t, re.day)
		re.checkStatement(t, re.day, lines)
		re.healthy(t)
	})
}

// TestReconcileOperatorOvercredit: an operator credited a deposit more than
// its amount (an amount_mismatch exception whose callback claimed more,
// within that evidence); the platform's report of the same operation then
// says the deposit's own amount. The ledger paid more than the platform
// collected: that is a break, never "matched", and the day cannot close
// without an operator explaining it.
func TestReconcileOperatorOvercredit(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		re := newReconEnv(t, e)
		ctx := t.Context()
		re.openAccount(t, "c1")
		d := re.openDeposit(t, "c1", 500_00)
		res := re.settle(t, re.callback(d.PaymentID, domain.OutcomeSuccess, "success", "op-1", kzt(600_00)))
		if res.Exception == nil || res.Exception.Reason != domain.ReasonAmountMismatch {
			t.Fatalf("a 600.00 success for a 500.00 deposit: %+v", res)
		}
		if _, err := re.svc.ResolveException(ctx, ports.ResolveException{ExceptionID: res.Exception.ID, Credit: true,
			Note: "the callback says 600.00", Actor: "operator-1"}); err != nil {
			t.Fatal(err)
		}
		if got := re.deposit(t, d); got.Status != domain.DepositSucceeded || got.OperationID != "op-1" {
			t.Fatalf("deposit after the operator's credit: %+v", got)
		}
		// The platform's record: operation op-1 collected 500.00.
		run := re.reconcile(t, &fakeSource{rows: []ports.SourceRow{re.sale(d, "op-1", "success")}})
		if run.Count(domain.ClassMatched) != 0 || run.Breaks() != 1 {
			t.Fatalf("a deposit credited 600.00 for a platform sale of 500.00 reconciled as %+v", run.Classes)
		}
		items := re.items(t, run.ID, domain.ClassAmountMismatch)
		if len(items) != 1 || items[0].ExceptionID == "" || items[0].Ledger.Minor() != 600_00 || items[0].Platform.Minor() != 500_00 {
			t.Fatalf("amount_mismatch items %+v", items)
		}
		// Its exception claims nothing: it justifies no further credit.
		_, err := re.svc.ResolveException(ctx, ports.ResolveException{ExceptionID: items[0].ExceptionID, Credit: true,
			Note: "try", Actor: "operator-1"})
		if err == nil {
			t.Fatal("the break's exception was credited")
		}
		rerun := &fakeSource{rows: []ports.SourceRow{re.sale(d, "op-1", "success"), re.row("pay-x", "op-x", "sale", "decline", kzt(1_00))}}
		re.clock.t = re.day.End().Add(time.Minute)
		_, err = re.closeDay(ports.CloseDay{})
		wantErr(t, "close with the over-credit unexplained", err, ports.ErrOpenBreaks)
		// A rerun finds the same exception, not a second one.
		run2 := re.reconcile(t, rerun)
		items2 := re.items(t, run2.ID, domain.ClassAmountMismatch)
		if len(items2) != 1 || items2[0].ExceptionID != items[0].ExceptionID {
			t.Fatalf("rerun items %+v, first %+v", items2, items)
		}
		re.healthy(t)
	})
}
