package contract_test

import (
	"slices"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// TestOverviewCreditTotals: credits of both kinds within [from, to) count,
// per currency; debits, credits outside the range and the clearing side
// do not.
func TestOverviewCreditTotals(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		a := e.insertAccount(t, "cust-1", domain.KZT)
		x := e.insertAccount(t, "cust-x", xts)
		clearing := kassa.ClearingAccountID()
		apply := func(kind domain.TransferKind, source, target string, amount domain.Amount, at time.Time, dep string) {
			t.Helper()
			tr := e.transfer(t, kind, source, target, amount, at)
			tr.DepositID = dep
			if kind == domain.TransferExceptionCredit {
				tr.ExceptionID = e.ids.NewID("exc")
			}
			if _, err := e.applyErr(t, tr); err != nil {
				t.Fatalf("apply %s: %v", kind, err)
			}
		}
		day := base.Truncate(24 * time.Hour)
		d1 := e.insertDeposit(t, a, 10_000, day)
		d2 := e.insertDeposit(t, a, 25_000, day)
		d3 := e.insertDeposit(t, a, 7_000, day)
		dx := e.insertDeposit(t, x, 300, day)
		apply(domain.TransferDepositCredit, clearing, a.ID(), kzt(10_000), day, d1.ID)                   // first instant: in
		apply(domain.TransferDepositCredit, clearing, a.ID(), kzt(25_000), day.Add(23*time.Hour), d2.ID) // in
		apply(domain.TransferExceptionCredit, clearing, a.ID(), kzt(3_000), day.Add(time.Hour), "")      // in
		apply(domain.TransferDepositCredit, clearing, a.ID(), kzt(7_000), day.Add(24*time.Hour), d3.ID)  // next day: out
		apply(domain.TransferDepositCredit, clearing, x.ID(), domain.NewAmount(300, xts), day.Add(time.Minute), dx.ID)
		apply(domain.TransferDebit, a.ID(), "revenue:merchant", kzt(5_000), day.Add(2*time.Hour), "") // a debit: out

		got, err := e.store.CreditTotals(ctx, day, day.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		want := []ports.CreditTotal{
			{Currency: domain.KZT, Count: 3, Total: kzt(38_000)},
			{Currency: xts, Count: 1, Total: domain.NewAmount(300, xts)},
		}
		if !slices.Equal(got, want) {
			t.Fatalf("credit totals = %+v, want %+v", got, want)
		}
		if got, err := e.store.CreditTotals(ctx, day.Add(-24*time.Hour), day); err != nil || len(got) != 0 {
			t.Fatalf("the day before: %+v, %v", got, err)
		}
		if got, err := e.store.CreditTotals(ctx, day.Add(24*time.Hour), day.Add(48*time.Hour)); err != nil ||
			!slices.Equal(got, []ports.CreditTotal{{Currency: domain.KZT, Count: 1, Total: kzt(7_000)}}) {
			t.Fatalf("the next day: %+v, %v", got, err)
		}
	})
}

// TestOverviewPendingAndExceptions: pending deposits by age over the
// partial index, the waiting exceptions by state and reason, and the use
// case that splits the ages into buckets.
func TestOverviewPendingAndExceptions(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		now := time.Now().UTC().Truncate(time.Microsecond)
		a := e.openAccount(t, "cust-1")
		for _, age := range []time.Duration{2 * time.Hour, 48 * time.Hour, 240 * time.Hour} {
			e.insertDeposit(t, a, 1_000, now.Add(-age))
		}
		settled := e.insertDeposit(t, a, 1_000, now.Add(-500*time.Hour))
		e.settle(t, e.success(settled, "op-settled")) // not pending: not counted, not the oldest

		empty, err := e.store.PendingAges(ctx, nil)
		if err != nil || empty.Count != 3 || len(empty.Before) != 0 || !empty.Oldest.Equal(now.Add(-240*time.Hour)) {
			t.Fatalf("pending ages without moments: %+v, %v", empty, err)
		}
		got, err := e.store.PendingAges(ctx, []time.Time{now.Add(-time.Hour), now.Add(-24 * time.Hour), now.Add(-168 * time.Hour), now.Add(-1000 * time.Hour)})
		if err != nil || got.Count != 3 || !slices.Equal(got.Before, []int64{3, 2, 1, 0}) {
			t.Fatalf("pending ages: %+v, %v", got, err)
		}

		// Exceptions: two amount mismatches and an unknown payment open;
		// one mismatch proposed under four eyes; a dismissed one not waiting.
		four := app.NewService(e.store, system.Clock{}, e.ids, app.WithFourEyes(true))
		var mismatches []domain.Exception
		for i := range 4 {
			d := e.openDeposit(t, "cust-1", 10_000)
			res := e.settle(t, e.callback(d.PaymentID, domain.OutcomeSuccess, "success", "op-m"+string(rune('a'+i)), kzt(9_000)))
			mismatches = append(mismatches, *res.Exception)
		}
		e.settle(t, e.callback("no-such-payment", domain.OutcomeSuccess, "success", "op-u", kzt(100)))
		if _, err := four.ResolveException(ctx, ports.ResolveException{ExceptionID: mismatches[0].ID, Credit: true,
			Note: "paid", Actor: "op-anna"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.ResolveException(ctx, ports.ResolveException{ExceptionID: mismatches[1].ID,
			Note: "duplicate report", Actor: "op-anna"}); err != nil {
			t.Fatal(err)
		}
		counts, err := e.store.ExceptionCounts(ctx)
		want := []ports.ExceptionCount{
			{State: domain.ExceptionOpen, Reason: domain.ReasonAmountMismatch, Count: 2},
			{State: domain.ExceptionOpen, Reason: domain.ReasonUnknownPayment, Count: 1},
			{State: domain.ExceptionProposed, Reason: domain.ReasonAmountMismatch, Count: 1},
		}
		if err != nil || !slices.Equal(counts, want) {
			t.Fatalf("exception counts = %+v, %v; want %+v", counts, err, want)
		}

		// The use case: buckets youngest first, the last one the oldest.
		ov, err := e.svc.Overview(ctx, ports.OverviewQuery{Now: now, DayStart: now.Add(-time.Hour), DayEnd: now.Add(time.Hour),
			PendingAges: []time.Duration{time.Hour, 24 * time.Hour, 168 * time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		// Four new pending deposits (the mismatches' and the proposal's stay pending) are younger than an hour.
		if ov.Pending.Count != 7 || !slices.Equal(ov.Pending.Buckets, []int64{4, 1, 1, 1}) || !ov.Pending.Oldest.Equal(now.Add(-240*time.Hour)) {
			t.Fatalf("pending overview: %+v", ov.Pending)
		}
		if !slices.Equal(ov.Exceptions, want) {
			t.Fatalf("overview exceptions: %+v", ov.Exceptions)
		}
		if len(ov.Credits) != 1 || ov.Credits[0].Count != 1 || ov.Credits[0].Total != kzt(1_000) {
			t.Fatalf("overview credits: %+v", ov.Credits)
		}
		for _, bad := range []ports.OverviewQuery{
			{Now: now, DayStart: now, DayEnd: now},
			{Now: now, DayStart: now, DayEnd: now.Add(time.Hour), PendingAges: []time.Duration{2 * time.Hour, time.Hour}},
			{Now: now, DayStart: now, DayEnd: now.Add(time.Hour), PendingAges: []time.Duration{0}},
			{Now: now, DayStart: now, DayEnd: now.Add(time.Hour), PendingAges: make([]time.Duration, app.MaxOverviewAges+1)},
		} {
			_, err := e.svc.Overview(ctx, bad)
			wantErr(t, "a bad overview query", err, domain.ErrInvalidInput)
		}
	})
}
