package platformsim

import (
	"errors"
	"strings"
	"testing"
)

// TestPlanAmountsWithinProjectLimits: with a project's own limits every
// amount drawn lies within them (Tiyn refuses the others with code 500),
// and the draw still spreads over the whole range.
func TestPlanAmountsWithinProjectLimits(t *testing.T) {
	t.Parallel()
	for _, lim := range [][2]int64{{1000, 10_000}, {500, 500}, {100, 50_000_000}, {49_000_000, 50_000_000}} {
		cfg := Config{
			BaseURL: DefaultBaseURL, APIToken: "t", ProjectID: 1, Secret: []byte("s"), Customers: 3, Payments: 1,
			AmountMinMinor: lim[0], AmountMaxMinor: lim[1], Seed: 4,
		}.withDefaults()
		if err := cfg.validate(); err != nil {
			t.Fatalf("%v: %v", lim, err)
		}
		s, err := newSim(cfg)
		if err != nil {
			t.Fatal(err)
		}
		w := s.newWorker()
		lo, hi := lim[1], lim[0]
		for i := range int64(5000) {
			a := s.makePlan(w.pcg, w.rng, i).amount
			if a < lim[0] || a > lim[1] {
				t.Fatalf("limits %v: plan %d draws %d", lim, i, a)
			}
			lo, hi = min(lo, a), max(hi, a)
		}
		span := lim[1] - lim[0]
		if lo-lim[0] > span/10 || lim[1]-hi > span/10 {
			t.Errorf("limits %v: amounts only span %d–%d", lim, lo, hi)
		}
	}
}

func TestAmountLimitsValidated(t *testing.T) {
	t.Parallel()
	for _, lim := range [][2]int64{{99, 1000}, {100, 50_000_001}, {5000, 4000}, {-5, 100}} {
		cfg := Config{
			BaseURL: DefaultBaseURL, APIToken: "t", ProjectID: 1, Secret: []byte("s"), Customers: 3, Payments: 1,
			AmountMinMinor: lim[0], AmountMaxMinor: lim[1],
		}.withDefaults()
		err := cfg.validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "amounts must lie within 1.00–500000.00 KZT") {
			t.Errorf("%v: %v", lim, err)
		}
	}
}
