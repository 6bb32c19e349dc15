package platform_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tiyn/tiyn/tools/platformsim/platform"
)

func TestPaymentsLifecycle(t *testing.T) {
	t.Parallel()
	ps := platform.NewPayments()
	t0 := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	if err := ps.Open(1234, "dep_1", 10, 500, "KZT", t0); err != nil {
		t.Fatal(err)
	}
	p, ok := ps.Get("dep_1")
	if !ok || p.ProjectID != 1234 || p.ID != "dep_1" || len(p.Operations()) != 1 {
		t.Fatalf("after Open: %+v %v", p, ok)
	}
	if o := p.Last(); o.ID != 10 || o.Status != platform.StatusProcessing || o.AmountMinor != 500 || o.Currency != "KZT" ||
		!o.Created.Equal(t0) || !o.Completed.IsZero() || o.Type() != "sale" {
		t.Fatalf("operation after Open: %+v", o)
	}
	// processing → decline → a late success as a new operation.
	steps := []struct {
		op     int64
		status platform.Status
		at     time.Duration
	}{{10, platform.StatusProcessing, 1}, {10, platform.StatusDecline, 2}, {10, platform.StatusDecline, 3}, {11, platform.StatusSuccess, 4}}
	for _, s := range steps {
		if err := ps.Update("dep_1", s.op, s.status, t0.Add(s.at*time.Second)); err != nil {
			t.Fatalf("Update(%d, %s): %v", s.op, s.status, err)
		}
	}
	p, _ = ps.Get("dep_1")
	ops := p.Operations()
	if len(ops) != 2 || p.Last().ID != 11 {
		t.Fatalf("operations %+v", ops)
	}
	if ops[0].Status != platform.StatusDecline || !ops[0].Completed.Equal(t0.Add(2*time.Second)) {
		t.Errorf("the decline: %+v (the same news again must not move its completion)", ops[0])
	}
	if ops[1].Status != platform.StatusSuccess || ops[1].AmountMinor != 500 || ops[1].Currency != "KZT" ||
		!ops[1].Created.Equal(t0.Add(4*time.Second)) || !ops[1].Completed.Equal(t0.Add(4*time.Second)) {
		t.Errorf("the late success: %+v", ops[1])
	}
	if ps.Len() != 1 {
		t.Errorf("Len %d", ps.Len())
	}
}

func TestPaymentsRefuse(t *testing.T) {
	t.Parallel()
	ps := platform.NewPayments()
	now := time.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ps.Open(1, "a", 1, 100, "KZT", now))
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"a duplicate id", ps.Open(1, "a", 2, 100, "KZT", now), platform.ErrDuplicate},
		{"no id", ps.Open(1, "", 2, 100, "KZT", now), platform.ErrOperation},
		{"no project", ps.Open(0, "b", 2, 100, "KZT", now), platform.ErrOperation},
		{"no amount", ps.Open(1, "b", 2, 0, "KZT", now), platform.ErrOperation},
		{"no currency", ps.Open(1, "b", 2, 100, "", now), platform.ErrOperation},
		{"an unknown payment", ps.Update("zz", 1, platform.StatusSuccess, now), platform.ErrUnknown},
		{"a new operation while one is open", ps.Update("a", 2, platform.StatusSuccess, now), platform.ErrOperation},
		{"an invalid status", ps.Update("a", 1, platform.Status(9), now), platform.ErrOperation},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	must(ps.Update("a", 1, platform.StatusSuccess, now))
	if err := ps.Update("a", 1, platform.StatusDecline, now); !errors.Is(err, platform.ErrOperation) {
		t.Errorf("a success turned decline: %v", err)
	}
	must(ps.Update("a", 2, platform.StatusSuccess, now))
	if err := ps.Update("a", 3, platform.StatusSuccess, now); !errors.Is(err, platform.ErrOperation) {
		t.Errorf("a third operation: %v", err)
	}
	if err := ps.Update("a", 1, platform.StatusSuccess, now); !errors.Is(err, platform.ErrOperation) {
		t.Errorf("an older operation changed: %v", err)
	}
	if ps.Len() != 1 {
		t.Errorf("Len %d after refusals", ps.Len())
	}
}

// Writers and readers at once on every shard (run with -race).
func TestPaymentsConcurrent(t *testing.T) {
	t.Parallel()
	ps := platform.NewPayments()
	const writers, each = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("dep_%d_%d", w, i)
				if err := ps.Open(1, id, int64(i), 100, "KZT", time.Now()); err != nil {
					t.Error(err)
					return
				}
				if err := ps.Update(id, int64(i), platform.StatusSuccess, time.Now()); err != nil {
					t.Error(err)
					return
				}
			}
		})
		wg.Go(func() {
			for i := range each {
				if p, ok := ps.Get(fmt.Sprintf("dep_%d_%d", w, i)); ok && p.ProjectID != 1 {
					t.Errorf("torn read %+v", p)
				}
				_ = ps.Len()
			}
		})
	}
	wg.Wait()
	if ps.Len() != writers*each {
		t.Fatalf("Len %d, want %d", ps.Len(), writers*each)
	}
}

func TestStatusNames(t *testing.T) {
	t.Parallel()
	for s, want := range map[platform.Status]string{platform.StatusProcessing: "processing", platform.StatusDecline: "decline",
		platform.StatusSuccess: "success", platform.Status(7): "status(7)"} {
		if s.String() != want {
			t.Errorf("%d: %q, want %q", s, s.String(), want)
		}
	}
	if platform.StatusProcessing.Final() || !platform.StatusDecline.Final() || !platform.StatusSuccess.Final() {
		t.Error("Final")
	}
}

func TestRateMeter(t *testing.T) {
	t.Parallel()
	var m platform.RateMeter
	t0 := time.Now()
	// Evenly spaced at 5 per second for 3 seconds: a sliding window of one
	// second holds 5.
	for i := range 15 {
		m.Observe(t0.Add(time.Duration(i) * 200 * time.Millisecond))
	}
	if r := m.Read(); r.Total != 15 || r.Peak != 5 || r.Saturated {
		t.Fatalf("paced at 5/s: %+v", r)
	}
	// A burst of 9 within 100 ms, not aligned to a clock second.
	base := t0.Add(10*time.Second + 950*time.Millisecond)
	for i := range 9 {
		m.Observe(base.Add(time.Duration(i) * 12 * time.Millisecond))
	}
	if r := m.Read(); r.Total != 24 || r.Peak != 9 {
		t.Fatalf("after a burst of 9: %+v", r)
	}
	// Out-of-order times count as the latest one; they still count.
	m.Observe(base.Add(-time.Hour))
	if r := m.Read(); r.Total != 25 || r.Peak != 10 {
		t.Fatalf("an early time: %+v", r)
	}
	// Long quiet, then two: the peak stays, the window starts again.
	m.Observe(base.Add(time.Minute))
	m.Observe(base.Add(time.Minute + time.Second)) // exactly one window later: the first has left it
	if r := m.Read(); r.Total != 27 || r.Peak != 10 {
		t.Fatalf("after a pause: %+v", r)
	}
	var z platform.RateMeter
	if r := z.Read(); r.Total != 0 || r.Peak != 0 {
		t.Fatalf("zero meter: %+v", r)
	}
}

// More events in one window than the meter keeps: the peak is a lower
// bound and says so.
func TestRateMeterSaturates(t *testing.T) {
	t.Parallel()
	var m platform.RateMeter
	at := time.Now()
	for range 70_000 {
		m.Observe(at)
	}
	if r := m.Read(); r.Total != 70_000 || r.Peak != 1<<16 || !r.Saturated {
		t.Fatalf("%+v", r)
	}
}
