package testkit

import (
	"fmt"
	"time"

	"github.com/tiyn/tiyn/domain"
)

// NoonZone names a fixed-offset business time zone (Etc/GMT±N) in which it
// is between noon and one o'clock at now, and loads it. A test that plays
// "today" as a business day, in a server or a service given this zone
// (TIYN_BUSINESS_TZ, app.WithBusinessZone), cannot see the day change
// under it in its first eleven hours — which in Asia/Almaty, the default,
// it would when run near midnight there.
func NoonZone(now time.Time) (string, *time.Location, error) {
	off := 12 - now.UTC().Hour() // hours east of UTC: -11 … +12
	name := "Etc/GMT"
	switch {
	case off > 0:
		name = fmt.Sprintf("Etc/GMT-%d", off) // the tz database's signs are POSIX's: inverted
	case off < 0:
		name = fmt.Sprintf("Etc/GMT+%d", -off)
	}
	loc, err := domain.LoadBusinessZone(name)
	if err != nil {
		return "", nil, err
	}
	return name, loc, nil
}
