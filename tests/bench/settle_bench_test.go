// Package bench_test holds the micro-benchmarks of crediting through the
// real stores: app.Service.SettleDeposit on SQLite and on PostgreSQL, with
// group commit on and off, one caller at a time and many at once. They
// measure the ledger without HTTP; `make bench` measures the whole service.
//
//	go test -run '^$' -bench . -benchmem ./tests/bench/
//
// PostgreSQL comes from tests/pgtest (TIYN_TEST_POSTGRES_URL, else a local
// server); without one those benchmarks are skipped.
package bench_test

import (
	"context"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
	"github.com/tiyn/tiyn/tests/pgtest"
	"github.com/tiyn/tiyn/tests/testkit"
)

const (
	// benchAccounts spreads the credits over this many customers, as a
	// merchant's payments are (and as bench/run.sh does).
	benchAccounts = 200
	// parallelism × GOMAXPROCS goroutines settle at once in the parallel
	// variants: 16 on the 2-core reference machine, like the c16 bench cell.
	parallelism = 8
	// openWorkers open the pending deposits before the timer starts.
	openWorkers = 16
	// benchAmountMinor is every deposit's amount (1,000.00 KZT).
	benchAmountMinor = 100_000
)

var channel = domain.Channel{Provider: "monetix", Method: "kassa24", Project: "1234"}

var limits = domain.AmountLimits{MinMinor: 100, MaxMinor: 50_000_000}

type storeCase struct {
	name string
	open func(tb testing.TB, group bool) *sqlstore.Store
}

var stores = []storeCase{
	{"sqlite", func(tb testing.TB, group bool) *sqlstore.Store {
		return testkit.OpenSQLite(tb, sqlstore.Options{GroupCommit: group})
	}},
	{"postgres", func(tb testing.TB, group bool) *sqlstore.Store {
		return pgtest.Open(tb, sqlstore.Options{GroupCommit: group})
	}},
}

// BenchmarkSettle credits one pending deposit per operation.
func BenchmarkSettle(b *testing.B) {
	for _, st := range stores {
		for _, group := range []bool{true, false} {
			for _, parallel := range []bool{false, true} {
				name := fmt.Sprintf("%s/group=%v/parallel=%v", st.name, group, parallel)
				b.Run(name, func(b *testing.B) { benchSettle(b, st, group, parallel) })
			}
		}
	}
}

func benchSettle(b *testing.B, st storeCase, group, parallel bool) {
	ctx := context.Background()
	s := st.open(b, group)
	svc := app.NewService(s, system.Clock{}, &system.IDs{})
	customers := make([]string, benchAccounts)
	for i := range customers {
		customers[i] = fmt.Sprintf("bench-%d", i)
		if _, err := svc.OpenAccount(ctx, ports.OpenAccount{CustomerID: customers[i], Currency: domain.KZT}); err != nil {
			b.Fatal(err)
		}
	}
	payments := openDeposits(b, svc, customers, b.N)
	cmds := make([]ports.SettleDeposit, len(payments))
	for i, id := range payments {
		cmds[i] = ports.SettleDeposit{Channel: channel, PaymentID: id,
			Outcome: domain.Outcome{Method: "kassa24", Kind: domain.OutcomeSuccess, Status: "success", OperationID: fmt.Sprintf("op-%d", i),
				Amount: domain.NewAmount(benchAmountMinor, domain.KZT)},
			RawBody: fmt.Sprintf(`{"payment":{"id":%q,"status":"success"},"operation":{"id":%d}}`, id, i), ReceivedAt: time.Now()}
	}

	var next, credited atomic.Int64
	settle := func() {
		i := next.Add(1) - 1
		res, err := svc.SettleDeposit(ctx, cmds[i])
		if err != nil {
			b.Error(err)
			return
		}
		if res.Effect == domain.EffectCredit {
			credited.Add(1)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	if parallel {
		b.SetParallelism(parallelism)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				settle()
			}
		})
	} else {
		for range b.N {
			settle()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "credits/s")

	// Exactly once, and a healthy ledger, or the figure means nothing.
	if got := credited.Load(); got != int64(b.N) {
		b.Fatalf("%d credits for %d settles", got, b.N)
	}
	chk, err := s.CheckLedger(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if !chk.Healthy() || chk.CustomerBalanceTotal.Cmp(big.NewInt(int64(b.N)*benchAmountMinor)) != 0 {
		b.Fatalf("ledger after %d credits: %+v", b.N, chk)
	}
}

// openDeposits opens n pending deposits spread over customers, untimed.
func openDeposits(b *testing.B, svc *app.Service, customers []string, n int) []string {
	b.Helper()
	ids := make([]string, n)
	var (
		wg   sync.WaitGroup
		next atomic.Int64
		fail atomic.Value
	)
	for range openWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || fail.Load() != nil {
					return
				}
				dep, err := svc.OpenDeposit(context.Background(), ports.OpenDeposit{Channel: channel,
					CustomerID: customers[i%len(customers)], Amount: domain.NewAmount(benchAmountMinor, domain.KZT), Limits: limits})
				if err != nil {
					fail.Store(err)
					return
				}
				ids[i] = dep.PaymentID
			}
		}()
	}
	wg.Wait()
	if err, _ := fail.Load().(error); err != nil {
		b.Fatalf("open deposits: %v", err)
	}
	return ids
}
