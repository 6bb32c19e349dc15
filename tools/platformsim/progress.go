package platformsim

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress bar: redrawn at most every progressInterval (5 times a second),
// barWidth cells wide.
const (
	progressInterval = 200 * time.Millisecond
	barWidth         = 24
)

// startProgress draws a one-line bar on cfg.Progress for a phase of n
// payments (or of duration d when n is 0) until the returned func is called,
// which draws the final state and ends the line. With no Progress writer it
// does nothing.
func (s *sim) startProgress(phase string, n int64, start time.Time, d time.Duration) func() {
	w := s.cfg.Progress
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				s.drawProgress(w, phase, n, start, d)
				_, _ = io.WriteString(w, "\n")
				return
			case <-t.C:
				s.drawProgress(w, phase, n, start, d)
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
	}
}

// drawProgress redraws the line: bar, count, rate, errors.
func (s *sim) drawProgress(w io.Writer, phase string, n int64, start time.Time, d time.Duration) {
	done := s.phaseDone.Load()
	elapsed := time.Since(start)
	frac := 0.0
	count := fmt.Sprintf("%d", done)
	switch {
	case n > 0:
		frac = float64(done) / float64(n)
		count = fmt.Sprintf("%d/%d", done, n)
	case d > 0:
		frac = float64(elapsed) / float64(d)
		count = fmt.Sprintf("%d in %s/%s", done, elapsed.Round(time.Second), d)
	}
	frac = min(max(frac, 0), 1)
	filled := int(frac * barWidth)
	perSec := 0.0
	if secs := elapsed.Seconds(); secs > 0 {
		perSec = float64(done) / secs
	}
	_, _ = fmt.Fprintf(w, "\r\x1b[K%s [%s%s] %s  %.0f/s  errors %d",
		phase, strings.Repeat("#", filled), strings.Repeat(".", barWidth-filled), count, perSec, s.errs.n.Load())
}
