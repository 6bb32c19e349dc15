package domain_test

import (
	"testing"
	"time"

	"github.com/tiyn/tiyn/domain"
)

func TestBusinessDayAlmaty(t *testing.T) {
	loc, err := domain.LoadBusinessZone("")
	if err != nil {
		t.Fatal(err)
	}
	d, err := domain.ParseBusinessDay("2026-12-02", loc)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Start().UTC().Format(time.RFC3339); got != "2026-12-01T19:00:00Z" {
		t.Fatalf("start %s, want 2026-12-01T19:00:00Z (UTC+5)", got)
	}
	if got := d.End().Sub(d.Start()); got != 24*time.Hour {
		t.Fatalf("length %s", got)
	}
	if !d.Contains(d.Start()) || d.Contains(d.End()) || !d.Contains(d.End().Add(-time.Nanosecond)) {
		t.Fatal("day is not [start, end)")
	}
	if d.Next().String() != "2026-12-03" || d.Prev().String() != "2026-12-01" {
		t.Fatalf("next %s prev %s", d.Next(), d.Prev())
	}
	if !d.Before(d.Next()) || d.Next().Before(d) {
		t.Fatal("Before")
	}
	if d.Ended(d.End().Add(-time.Second)) || !d.Ended(d.End()) {
		t.Fatal("Ended")
	}
	// Before 2024-03-01 Almaty was UTC+6: the embedded database knows.
	old, _ := domain.ParseBusinessDay("2024-02-01", loc)
	if _, off := old.Start().Zone(); off != 6*3600 {
		t.Fatalf("2024-02-01 offset %d, want UTC+6", off)
	}
	if got := domain.DayOf(time.Date(2026, 12, 2, 19, 0, 0, 0, time.UTC), loc).String(); got != "2026-12-03" {
		t.Fatalf("19:00Z is %s in Almaty, want 2026-12-03", got)
	}
}

func TestParseBusinessDayRefuses(t *testing.T) {
	loc, _ := domain.LoadBusinessZone("")
	for _, s := range []string{"", "2026-13-01", "2026-02-30", "2026-1-2", "02.12.2026", "2026-12-02T00:00:00Z", " 2026-12-02"} {
		if _, err := domain.ParseBusinessDay(s, loc); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	if _, err := domain.LoadBusinessZone("Mars/Olympus"); err == nil {
		t.Error("unknown zone accepted")
	}
}
