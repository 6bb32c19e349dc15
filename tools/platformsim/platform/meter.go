package platform

import (
	"sync"
	"time"
)

// MeterWindow is the window a RateMeter's peak is measured over.
const MeterWindow = time.Second

// maxWindowEvents bounds what a RateMeter keeps: the events of the last
// window. Beyond it the peak is reported as at least this (Saturated).
const maxWindowEvents = 1 << 16

// RateMeter measures the peak rate of events: the most events seen within
// any window of MeterWindow (sliding, not aligned to the clock), so a
// client paced at r per second shows a peak of r, or r+1 when one request
// arrives early. It keeps only the timestamps of the last window. Safe for
// concurrent use; the zero value is ready.
type RateMeter struct {
	mu        sync.Mutex
	window    []int64 // monotonic ns of the events of the last window, oldest at head
	head      int
	total     int64
	peak      int
	saturated bool
	origin    time.Time
}

// Observe counts an event at t (time.Now() of the caller; a time earlier
// than the last event's counts as the last event's).
func (m *RateMeter) Observe(t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.origin.IsZero() {
		m.origin = t
	}
	ns := int64(t.Sub(m.origin)) // monotonic when t has a monotonic reading
	if n := len(m.window); n > 0 && ns < m.window[n-1] {
		ns = m.window[n-1] // concurrent callers may come a little out of order
	}
	m.total++
	// The window is (ns - MeterWindow, ns]: drop what is older.
	for m.head < len(m.window) && m.window[m.head] <= ns-int64(MeterWindow) {
		m.head++
	}
	if m.head > len(m.window)/2 {
		m.window = append(m.window[:0], m.window[m.head:]...)
		m.head = 0
	}
	if len(m.window)-m.head >= maxWindowEvents {
		m.head++
		m.saturated = true
	}
	m.window = append(m.window, ns)
	m.peak = max(m.peak, len(m.window)-m.head)
}

// MeterReading is what a RateMeter saw.
type MeterReading struct {
	Total int64
	// Peak is the most events within one MeterWindow.
	Peak int
	// Saturated: more than maxWindowEvents came within one window; Peak is
	// a lower bound.
	Saturated bool
}

// Read returns the meter's figures so far.
func (m *RateMeter) Read() MeterReading {
	m.mu.Lock()
	defer m.mu.Unlock()
	return MeterReading{Total: m.total, Peak: m.peak, Saturated: m.saturated}
}
