package domain

import (
	"fmt"
	"time"

	// Every binary carries the time-zone database, so a business day is
	// the same day on every machine, whatever /usr/share/zoneinfo holds.
	_ "time/tzdata"
)

// DefaultBusinessZone is the time zone of a business day unless configured
// otherwise (TIYN_BUSINESS_TZ): Kazakhstan's single zone, UTC+5 since
// 2024-03-01.
const DefaultBusinessZone = "Asia/Almaty"

// BusinessDay is one calendar day in a business time zone: the half-open
// interval [D 00:00, D+1 00:00) local. Which platform operations belong to
// a day is decided by their completion time, which ledger rows by their
// insertion time.
type BusinessDay struct {
	y   int
	m   time.Month
	d   int
	loc *time.Location
}

// LoadBusinessZone loads a zone by IANA name ("" is DefaultBusinessZone).
func LoadBusinessZone(name string) (*time.Location, error) {
	if name == "" {
		name = DefaultBusinessZone
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%w: business time zone %q: %v", ErrInvalidInput, name, err)
	}
	return loc, nil
}

// ParseBusinessDay reads "YYYY-MM-DD" as a day in loc.
func ParseBusinessDay(s string, loc *time.Location) (BusinessDay, error) {
	if loc == nil {
		return BusinessDay{}, fmt.Errorf("%w: business day %q without a time zone", ErrInvalidInput, s)
	}
	t, err := time.ParseInLocation(time.DateOnly, s, loc)
	if err != nil || len(s) != len(time.DateOnly) {
		return BusinessDay{}, fmt.Errorf("%w: business day %q is not YYYY-MM-DD", ErrInvalidInput, truncate(s, 32))
	}
	return DayOf(t, loc), nil
}

// DayOf is the business day in loc that contains t.
func DayOf(t time.Time, loc *time.Location) BusinessDay {
	y, m, d := t.In(loc).Date()
	return BusinessDay{y: y, m: m, d: d, loc: loc}
}

// IsZero reports an unset day.
func (b BusinessDay) IsZero() bool { return b.loc == nil }

// Location is the day's time zone.
func (b BusinessDay) Location() *time.Location { return b.loc }

// String is the day as YYYY-MM-DD.
func (b BusinessDay) String() string {
	if b.loc == nil {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", b.y, b.m, b.d)
}

// Start is the day's first instant (local midnight).
func (b BusinessDay) Start() time.Time { return time.Date(b.y, b.m, b.d, 0, 0, 0, 0, b.loc) }

// End is the next day's first instant: the day is [Start, End).
func (b BusinessDay) End() time.Time { return time.Date(b.y, b.m, b.d+1, 0, 0, 0, 0, b.loc) }

// Contains reports whether t lies within [Start, End).
func (b BusinessDay) Contains(t time.Time) bool {
	return !t.Before(b.Start()) && t.Before(b.End())
}

// Next is the following day; Prev the one before.
func (b BusinessDay) Next() BusinessDay { return DayOf(b.End(), b.loc) }

// Prev is the day before.
func (b BusinessDay) Prev() BusinessDay {
	return DayOf(time.Date(b.y, b.m, b.d-1, 0, 0, 0, 0, b.loc), b.loc)
}

// Before reports whether b is an earlier date than o (same zone assumed).
func (b BusinessDay) Before(o BusinessDay) bool { return b.Start().Before(o.Start()) }

// Ended reports whether the whole day lies before now.
func (b BusinessDay) Ended(now time.Time) bool { return !now.Before(b.End()) }
