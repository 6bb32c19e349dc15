package export_test

import (
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/export"
)

func TestFormatTime(t *testing.T) {
	t.Parallel()
	almaty := time.FixedZone("Asia/Almaty", 5*3600)
	tests := []struct {
		in   time.Time
		want string
	}{
		{time.Time{}, ""},
		{time.Date(2026, 12, 3, 7, 47, 22, 123456789, time.UTC), "2026-12-03T07:47:22.123456Z"},
		{time.Date(2026, 12, 3, 7, 47, 22, 0, time.UTC), "2026-12-03T07:47:22.000000Z"},
		{time.Date(2026, 12, 3, 12, 47, 22, 100000, almaty), "2026-12-03T07:47:22.000100Z"},
		{time.Date(1, 1, 1, 0, 0, 0, 1000, time.UTC), "0001-01-01T00:00:00.000001Z"},
	}
	for _, tc := range tests {
		if got := export.FormatTime(tc.in); got != tc.want {
			t.Errorf("FormatTime(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestFormattedTimesSortAsText: text order is time order, which RFC 3339
// with trailing zeros dropped (time.RFC3339Nano) does not give.
func TestFormattedTimesSortAsText(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 12, 3, 7, 47, 22, 0, time.UTC)
	var times []time.Time
	for _, ns := range []int{0, 1000, 100000, 120000000, 500000000, 999999000} {
		times = append(times, base.Add(time.Duration(ns)))
	}
	var texts []string
	for _, tm := range times {
		texts = append(texts, export.FormatTime(tm))
	}
	sorted := slices.Clone(texts)
	sort.Strings(sorted)
	if !slices.Equal(texts, sorted) {
		t.Fatalf("text order %q differs from time order %q", sorted, texts)
	}
	for _, s := range texts {
		if len(s) != len("2026-12-03T07:47:22.000000Z") {
			t.Fatalf("%q is not fixed width", s)
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			t.Fatalf("%q is not RFC 3339: %v", s, err)
		}
	}
}
