package app

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeTime is a clock that moves only when the pacer sleeps; stallOnce
// makes one sleep overrun by that much, as a process that was not
// scheduled for a while.
type fakeTime struct {
	mu        sync.Mutex
	t         time.Time
	stallOnce time.Duration
	sleeps    int
}

func (f *fakeTime) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeTime) sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sleeps++
	f.t = f.t.Add(d + f.stallOnce)
	f.stallOnce = 0
	return ctx.Err()
}

// releases runs waiters goroutines of n Waits each and returns the
// release times, sorted.
func releases(t *testing.T, p *Pacer, waiters, n int) []time.Time {
	t.Helper()
	var (
		mu  sync.Mutex
		out []time.Time
		wg  sync.WaitGroup
	)
	for range waiters {
		wg.Go(func() {
			for range n {
				at, err := p.wait(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				out = append(out, at)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// Whatever the number of waiters, and after a stall of many intervals,
// no two releases are closer than one interval.
func TestPacerSpacesReleases(t *testing.T) {
	t.Parallel()
	const rate = 5
	interval := time.Second / rate
	for _, tc := range []struct {
		name  string
		stall time.Duration
	}{{"steady", 0}, {"after a stall of ten intervals", 10 * interval}} {
		start := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
		clock := &fakeTime{t: start, stallOnce: tc.stall}
		p := NewPacer(rate, clock.now, clock.sleep)
		got := releases(t, p, 8, 10)
		if len(got) != 80 || !got[0].Equal(start) {
			t.Fatalf("%s: %d releases, the first at %s", tc.name, len(got), got[0].Sub(start))
		}
		for i := 1; i < len(got); i++ {
			if gap := got[i].Sub(got[i-1]); gap < interval {
				t.Fatalf("%s: releases %d and %d are %s apart, less than the interval %s", tc.name, i-1, i, gap, interval)
			}
		}
		// Not slower than the rate either: one interval apart exactly,
		// the stall aside.
		if span, want := got[len(got)-1].Sub(got[0]), 79*interval+tc.stall; span != want {
			t.Errorf("%s: 80 releases over %s, want %s", tc.name, span, want)
		}
	}
}

// A waiter whose context ends while another holds the turn returns at
// once, takes no slot, and the pacer goes on.
func TestPacerCancelledWaiter(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var slept sync.WaitGroup
	var once sync.Once
	slept.Add(1)
	blocking := func(ctx context.Context, d time.Duration) error {
		once.Do(slept.Done)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p := NewPacer(1, nil, blocking)
	if err := p.Wait(context.Background()); err != nil { // the first is released at once
		t.Fatal(err)
	}
	holder := make(chan error, 1)
	go func() { holder <- p.Wait(context.Background()) }() // sleeps toward its slot
	slept.Wait()

	ctx, cancel := context.WithCancel(context.Background())
	queued := make(chan error, 1)
	go func() { queued <- p.Wait(ctx) }()
	cancel()
	select {
	case err := <-queued:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("queued waiter: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled waiter did not return")
	}
	close(release)
	if err := <-holder; err != nil {
		t.Fatal(err)
	}
	// A waiter cancelled while sleeping returns its context's error.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if err := p.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled sleeper: %v", err)
	}
}
