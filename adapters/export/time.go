// Package export holds the formats in which the ledger leaves Tiyn for
// people and programs — timestamps and the CSV account statement — so that
// the REST API and the tiyn command line say the same thing byte for byte.
// It depends on ports and domain only.
package export

import "time"

// TimeLayout is how every timestamp leaves Tiyn, in JSON, CSV and the
// command line: RFC 3339 in UTC with exactly six fractional digits
// ("2026-12-03T07:47:22.123456Z"). A fixed width makes timestamps sort as
// text in the order of time; six digits are what the store keeps
// (microseconds).
const TimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// FormatTime renders t in TimeLayout, in UTC. The zero time is "" (absent).
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeLayout)
}
