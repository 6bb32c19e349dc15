package console

import (
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tiyn/tiyn/domain"
)

// The console speaks English and Russian. Every label and message is a key
// of the message catalog (messages/en.json, messages/ru.json); templates
// hold no words of their own (a test walks them). The language is the
// tiyn_lang cookie when set (the switcher sets it), else the first of the
// browser's Accept-Language that the console speaks, else English.

// Lang is a language the console speaks.
type Lang string

// The console's languages; the first is the default.
const (
	LangEN Lang = "en"
	LangRU Lang = "ru"
)

// Langs lists the languages, the default first.
func Langs() []Lang { return []Lang{LangEN, LangRU} }

// langCookie remembers the chosen language for a year.
const (
	langCookie    = "tiyn_lang"
	langCookieAge = 365 * 24 * time.Hour
)

//go:embed messages/*.json
var messageFiles embed.FS

// catalog is one language's messages by key.
type catalog map[string]string

// loadCatalogs reads every language's messages.
func loadCatalogs() (map[Lang]catalog, error) {
	out := map[Lang]catalog{}
	for _, l := range Langs() {
		b, err := messageFiles.ReadFile("messages/" + string(l) + ".json")
		if err != nil {
			return nil, err
		}
		var c catalog
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("messages/%s.json: %w", l, err)
		}
		out[l] = c
	}
	return out, nil
}

// parseLang reads a language code ("ru", "ru-RU", "EN"); ok is false for
// one the console does not speak.
func parseLang(s string) (Lang, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if i := strings.IndexAny(s, "-_"); i >= 0 {
		s = s[:i]
	}
	for _, l := range Langs() {
		if string(l) == s {
			return l, true
		}
	}
	return "", false
}

// negotiate picks the language of a request: the cookie, else
// Accept-Language by quality (ties in the header's order), else English.
func negotiate(r *http.Request) Lang {
	if c, err := r.Cookie(langCookie); err == nil {
		if l, ok := parseLang(c.Value); ok {
			return l
		}
	}
	return fromAcceptLanguage(r.Header.Get("Accept-Language"))
}

// maxAcceptLanguageEntries bounds the entries of Accept-Language read: a
// browser sends a handful.
const maxAcceptLanguageEntries = 32

func fromAcceptLanguage(header string) Lang {
	type pref struct {
		lang Lang
		q    float64
		pos  int
	}
	var prefs []pref
	for i, part := range strings.Split(header, ",") {
		if i >= maxAcceptLanguageEntries {
			break
		}
		tag, params, _ := strings.Cut(part, ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || f < 0 || f > 1 {
				continue
			}
			q = f
		}
		if l, ok := parseLang(tag); ok && q > 0 {
			prefs = append(prefs, pref{l, q, i})
		}
	}
	if len(prefs) == 0 {
		return LangEN
	}
	sort.SliceStable(prefs, func(i, j int) bool { return prefs[i].q > prefs[j].q })
	return prefs[0].lang
}

// localizer formats for one language and one business time zone.
type localizer struct {
	lang Lang
	msgs catalog
	zone *time.Location
}

// T returns the message of key, formatted with args (fmt verbs in the
// message). A missing key shows as the key itself, which the catalog test
// rules out for every key the console uses.
func (l localizer) T(key string, args ...any) string {
	msg, ok := l.msgs[key]
	if !ok {
		return key
	}
	if len(args) == 0 {
		return msg
	}
	return fmt.Sprintf(msg, args...)
}

// Enum names a value of an enumeration (a status, a reason): the message
// "prefix.value", or the value itself when the catalog has none (a value
// a newer store wrote).
func (l localizer) Enum(prefix, value string) string {
	if msg, ok := l.msgs[prefix+"."+value]; ok {
		return msg
	}
	return value
}

// Number separators. Russian groups digits with a narrow no-break space
// (U+202F, what CLDR prescribes and what a line break never splits) and
// marks decimals with a comma; English with a comma and a point. The
// amount and its currency are joined with a no-break space (U+00A0).
const (
	nbsp       = "\u00a0"
	narrowNbsp = "\u202f"
)

// Money formats an amount for the language: "1 500,00 ₸" in Russian,
// "1,500.00 KZT" in English (other currencies by their code in both).
func (l localizer) Money(a domain.Amount) string {
	return l.number(a.String()) + nbsp + l.currency(a.Currency())
}

// Number formats a decimal string ("-1500.00") with the language's
// separators.
func (l localizer) number(text string) string {
	sign := ""
	if strings.HasPrefix(text, "-") {
		sign, text = "-", text[1:]
	}
	whole, frac, hasFrac := strings.Cut(text, ".")
	group, point := ",", "."
	if l.lang == LangRU {
		group, point = narrowNbsp, ","
	}
	var b strings.Builder
	b.WriteString(sign)
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteString(group)
		}
		b.WriteRune(r)
	}
	if hasFrac {
		b.WriteString(point)
		b.WriteString(frac)
	}
	return b.String()
}

// Count formats an integer with the language's digit groups.
func (l localizer) Count(n int64) string { return l.number(strconv.FormatInt(n, 10)) }

func (l localizer) currency(c domain.Currency) string {
	if l.lang == LangRU && c == domain.KZT {
		return "₸"
	}
	if c.IsZero() {
		return "?"
	}
	return c.Code()
}

// Time formats a moment in the business time zone ("" for the zero time):
// 2026-12-03 12:47:22 in English, 03.12.2026 12:47:22 in Russian.
func (l localizer) Time(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	if l.lang == LangRU {
		return t.In(l.zone).Format("02.01.2006 15:04:05")
	}
	return t.In(l.zone).Format("2006-01-02 15:04:05")
}

// Date formats the day of a moment in the business time zone.
func (l localizer) Date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	if l.lang == LangRU {
		return t.In(l.zone).Format("02.01.2006")
	}
	return t.In(l.zone).Format("2006-01-02")
}

// Age formats a duration coarsely: "3 d 4 h", "5 h 10 min", "42 min", in
// the language's units.
func (l localizer) Age(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	days, hours, mins := int64(d/(24*time.Hour)), int64(d%(24*time.Hour)/time.Hour), int64(d%time.Hour/time.Minute)
	switch {
	case days > 0:
		return l.T("unit.days_hours", days, hours)
	case hours > 0:
		return l.T("unit.hours_minutes", hours, mins)
	}
	return l.T("unit.minutes", mins)
}

// Zone names the business time zone and its offset now, e.g.
// "Asia/Almaty (UTC+05:00)".
func (l localizer) Zone(now time.Time) string {
	return l.zone.String() + " (UTC" + now.In(l.zone).Format("-07:00") + ")"
}
