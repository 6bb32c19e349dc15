package platformsim

import (
	"math/bits"
	"time"
)

// Latency is kept in a log-linear histogram of microseconds rather than as
// raw samples: recording is an index computation and an increment (no
// allocation, no lock: each sender owns its histograms), memory is fixed
// whatever the run's length, and the relative error of a percentile is
// below 1/histSub (0.8 %). Values below 2*histSub µs are exact.
const (
	histSubBits = 7
	histSub     = 1 << histSubBits // sub-buckets per power of two
	// histBuckets covers every uint64 microsecond value.
	histBuckets = histSub * (64 - histSubBits + 1)
)

// histogram counts latencies. The zero value is ready to use.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	max    uint64 // µs, exact
}

// bucketOf returns the bucket of a value in µs.
func bucketOf(us uint64) int {
	if us < 2*histSub {
		return int(us)
	}
	shift := bits.Len64(us) - (histSubBits + 1)
	top := us >> uint(shift) // in [histSub, 2*histSub)
	return histSub*(shift+1) + int(top-histSub)
}

// bucketRange returns the smallest and largest value of a bucket, in µs.
func bucketRange(b int) (lo, hi uint64) {
	if b < 2*histSub {
		return uint64(b), uint64(b)
	}
	shift := b/histSub - 1
	top := uint64(b%histSub + histSub)
	lo = top << uint(shift)
	return lo, lo + (1 << uint(shift)) - 1
}

// record adds one latency.
func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	us := uint64(d / time.Microsecond)
	h.counts[bucketOf(us)]++
	h.n++
	if us > h.max {
		h.max = us
	}
}

// merge adds o's counts to h.
func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the q-quantile (0 < q <= 1) in µs: the middle of the
// bucket holding the sample of rank ceil(q·n), never above the exact max.
func (h *histogram) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.999999999)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(b)
			return min(float64(lo+hi)/2, float64(h.max))
		}
	}
	return float64(h.max)
}

// Percentiles summarise the latency of one request type, in milliseconds.
type Percentiles struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// percentiles converts a histogram to a report entry.
func (h *histogram) percentiles() Percentiles {
	const usPerMS = 1000
	return Percentiles{
		Count: int(h.n),
		P50:   h.quantile(0.50) / usPerMS,
		P95:   h.quantile(0.95) / usPerMS,
		P99:   h.quantile(0.99) / usPerMS,
		Max:   float64(h.max) / usPerMS,
	}
}
