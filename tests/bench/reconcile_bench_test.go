package bench_test

import (
	"bufio"
	"context"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// BenchmarkReconcileCSV reconciles a business day of n platform operations
// from a CSV report file: 95% of them the sales the ledger credited
// (matched), 5% sales whose callbacks never came (healed through the settle
// path). Setting the day up — the deposits, their credits and the file — is
// not timed. It reports the run's rate and the peak of the live heap during
// the run above what was live before it: a day streams in pages, so that
// peak must not grow with n.
//
//	go test -run '^$' -bench ReconcileCSV -benchtime 1x -timeout 60m ./tests/bench/
func BenchmarkReconcileCSV(b *testing.B) {
	for _, st := range stores {
		for _, n := range []int{10_000, 30_000, 100_000} {
			b.Run(fmt.Sprintf("%s/ops=%dk", st.name, n/1000), func(b *testing.B) { benchReconcile(b, st, n) })
		}
	}
}

func benchReconcile(b *testing.B, st storeCase, n int) {
	ctx := context.Background()
	zone, err := domain.LoadBusinessZone("")
	if err != nil {
		b.Fatal(err)
	}
	var (
		peak, rate float64
		cycles     uint64
	)
	for range b.N {
		b.StopTimer()
		s := st.open(b, true)
		svc := app.NewService(s, system.Clock{}, &system.IDs{}, app.WithBusinessZone(zone))
		customers := make([]string, benchAccounts)
		for i := range customers {
			customers[i] = fmt.Sprintf("bench-%d", i)
			if _, err := svc.OpenAccount(ctx, ports.OpenAccount{CustomerID: customers[i], Currency: domain.KZT}); err != nil {
				b.Fatal(err)
			}
		}
		payments := openDeposits(b, svc, customers, n)
		healed := n / 20
		creditAll(b, svc, payments[healed:])
		day := domain.DayOf(time.Now(), zone)
		file := writeReport(b, payments, day)

		f, err := os.Open(file)
		if err != nil {
			b.Fatal(err)
		}
		src, err := monetix.NewReportSource(bufio.NewReaderSize(f, 64<<10), monetix.ReportOptions{})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		before := liveHeap()
		gcs := gcCycles()
		stopSampling, maxHeap := sampleHeap()
		start := time.Now()
		b.StartTimer()
		run, err := svc.ReconcileDay(ctx, ports.ReconcileDay{Day: day, Source: src, Provider: channel.Provider,
			Method: channel.Method, Limits: limits, StartedBy: "bench"})
		b.StopTimer()
		elapsed := time.Since(start)
		stopSampling()
		_ = f.Close()
		if err != nil {
			b.Fatal(err)
		}
		if run.Count(domain.ClassMatched) != int64(n-healed) || run.Count(domain.ClassHealed) != int64(healed) || run.Breaks() != 0 {
			b.Fatalf("run of %d operations: %+v", n, run.Classes)
		}
		chk, err := s.CheckLedger(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if !chk.Healthy() || chk.CustomerBalanceTotal.Cmp(big.NewInt(int64(n)*benchAmountMinor)) != 0 {
			b.Fatalf("ledger after the run: %+v", chk)
		}
		peak = max(peak, float64(maxHeap()-before)/(1<<20))
		cycles = gcCycles() - gcs
		rate = float64(n) / elapsed.Seconds()
		_ = s.Close()
	}
	b.ReportMetric(peak, "peak-heap-MiB")
	b.ReportMetric(rate, "ops/s")
	b.ReportMetric(float64(cycles), "gc-cycles")
}

// gcCycles counts the garbage collections so far: a peak of the live heap
// means something only when the collector ran during the run.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// creditAll settles every payment by its success callback, untimed.
func creditAll(b *testing.B, svc *app.Service, payments []string) {
	b.Helper()
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
				if i >= len(payments) || fail.Load() != nil {
					return
				}
				res, err := svc.SettleDeposit(context.Background(), settleCmd(payments[i]))
				if err == nil && res.Effect != domain.EffectCredit {
					err = fmt.Errorf("payment %s: effect %s", payments[i], res.Effect)
				}
				if err != nil {
					fail.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := fail.Load().(error); err != nil {
		b.Fatalf("credit deposits: %v", err)
	}
}

func settleCmd(payment string) ports.SettleDeposit {
	return ports.SettleDeposit{Channel: channel, PaymentID: payment,
		Outcome: domain.Outcome{Method: "kassa24", Kind: domain.OutcomeSuccess, Status: "success", OperationID: "op-" + payment,
			Amount: domain.NewAmount(benchAmountMinor, domain.KZT)},
		RawBody: fmt.Sprintf(`{"payment":{"id":%q,"status":"success"}}`, payment), ReceivedAt: time.Now()}
}

// writeReport writes the platform's report of the day: one successful sale
// per payment, with the operation id the credits used.
func writeReport(b *testing.B, payments []string, day domain.BusinessDay) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "report.csv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, monetix.DefaultReportHeader)
	at := time.Now().In(day.Location()).Format("2006-01-02 15:04:05")
	for _, p := range payments {
		fmt.Fprintf(w, "%s,%s,op-%s,sale,success,1000.00,KZT,%s\n", channel.Project, p, p, at)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// liveHeap reads the bytes the last garbage collection marked live: the
// heap the run holds, without the garbage it made since (which only says
// how often the collector ran).
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// sampleHeap samples the heap every 5 ms until stopped and returns its
// maximum.
func sampleHeap() (stop func(), maxHeap func() uint64) {
	var (
		peak atomic.Uint64
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if h := liveHeap(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }, peak.Load
}
