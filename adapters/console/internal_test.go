package console

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"math/big"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// verbRE finds the fmt verbs of a message.
var verbRE = regexp.MustCompile(`%[-+# 0]*[0-9]*(?:\.[0-9]+)?[a-zA-Z%]`)

func TestCatalogsHaveTheSameKeysAndVerbs(t *testing.T) {
	t.Parallel()
	cats, err := loadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	en, ru := cats[LangEN], cats[LangRU]
	for _, k := range slices.Sorted(maps.Keys(en)) {
		r, ok := ru[k]
		if !ok {
			t.Errorf("ru lacks %q", k)
			continue
		}
		if got, want := verbRE.FindAllString(r, -1), verbRE.FindAllString(en[k], -1); !slices.Equal(got, want) {
			t.Errorf("%q: ru verbs %q, en verbs %q", k, got, want)
		}
		if strings.TrimSpace(en[k]) == "" || strings.TrimSpace(r) == "" {
			t.Errorf("%q: an empty message", k)
		}
	}
	for k := range ru {
		if _, ok := en[k]; !ok {
			t.Errorf("en lacks %q", k)
		}
	}
	// Russian is Russian: a message with letters has Cyrillic ones, except
	// for protocol words kept as the platform spells them.
	latinOnly := map[string]bool{"timeline.check_deposit": true, "run_source.data_api": true}
	for k, v := range ru {
		v = verbRE.ReplaceAllString(v, "")
		letters := strings.IndexFunc(v, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }) >= 0
		cyrillic := strings.IndexFunc(v, func(r rune) bool { return r >= 'а' && r <= 'я' || r >= 'А' && r <= 'Я' || r == 'ё' }) >= 0
		if letters && !cyrillic && !latinOnly[k] && v != "CSV" {
			t.Errorf("ru %q = %q looks untranslated", k, v)
		}
	}
}

// actionRE finds template actions; textAttrRE attributes a person reads.
var (
	actionRE   = regexp.MustCompile(`(?s)\{\{.*?\}\}`)
	keyRE      = regexp.MustCompile(`\{\{[^}]*?\bt "([^"]+)"`)
	nestedKey  = regexp.MustCompile(`\(t "([^"]+)"`)
	enumRE     = regexp.MustCompile(`enum "([a-z_]+)"`)
	textAttrRE = regexp.MustCompile(`\b(aria-label|title|placeholder|alt|aria-description)="([^"]*)"`)
	tagRE      = regexp.MustCompile(`(?s)<[^>]*>`)
)

// TestTemplatesHoldNoUntranslatedText: outside template actions, a
// template has markup and punctuation only — every word a person reads
// comes from the catalog — and every key it names exists.
func TestTemplatesHoldNoUntranslatedText(t *testing.T) {
	t.Parallel()
	cats, err := loadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil || len(files) < 10 {
		t.Fatalf("templates: %v, %v", files, err)
	}
	for _, f := range files {
		b, err := fs.ReadFile(templateFiles, f)
		if err != nil {
			t.Fatal(err)
		}
		src := string(b)
		for _, m := range append(keyRE.FindAllStringSubmatch(src, -1), nestedKey.FindAllStringSubmatch(src, -1)...) {
			if _, ok := cats[LangEN][m[1]]; !ok {
				t.Errorf("%s uses key %q, which the catalog lacks", f, m[1])
			}
		}
		for _, m := range enumRE.FindAllStringSubmatch(src, -1) {
			if len(enumValues[m[1]]) == 0 {
				t.Errorf("%s uses enum %q, which enumValues does not list", f, m[1])
			}
		}
		stripped := actionRE.ReplaceAllString(src, "\x00")
		for _, m := range textAttrRE.FindAllStringSubmatch(stripped, -1) {
			if hasLetter(m[2]) {
				t.Errorf("%s: attribute %s=%q is not translated", f, m[1], m[2])
			}
		}
		text := tagRE.ReplaceAllString(stripped, " ")
		text = regexp.MustCompile(`(?i)<!DOCTYPE html>`).ReplaceAllString(text, " ")
		for _, word := range strings.Fields(text) {
			if hasLetter(word) {
				t.Errorf("%s: untranslated text %q", f, word)
			}
		}
	}
}

func hasLetter(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= 0x400 && r <= 0x4ff
	}) >= 0
}

// enumValues lists every value of every enumeration a template names,
// from the domain's own lists, so a new value without a message fails.
var enumValues = map[string][]string{
	"role":             roleNames(),
	"account_status":   names(accountStatuses),
	"deposit_status":   names(domain.DepositStatuses()),
	"exception_status": names(exceptionStatuses),
	"reason":           names(domain.ExceptionReasons()),
	"reason_help":      names(domain.ExceptionReasons()),
	"source":           names(ports.Sources()),
	"outcome":          names([]domain.Effect{domain.EffectCredit, domain.EffectDecline, domain.EffectReplay, domain.EffectRecord, domain.EffectException}),
	"transfer_kind":    names([]domain.TransferKind{domain.TransferDepositCredit, domain.TransferDebit, domain.TransferExceptionCredit}),
	"recon_class":      names(domain.ReconClasses()),
	"run_status":       names([]ports.RunStatus{ports.RunRunning, ports.RunFinished, ports.RunFailed}),
	"run_source":       {"csv", "data_api"},
}

func names[T interface{ String() string }](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.String()
	}
	return out
}

func roleNames() []string {
	var out []string
	for _, r := range rest.Roles() {
		out = append(out, string(r))
	}
	return out
}

func TestEveryKeyTheCodeUsesExists(t *testing.T) {
	t.Parallel()
	cats, err := loadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	for prefix, values := range enumValues {
		for _, v := range values {
			for _, l := range Langs() {
				if _, ok := cats[l][prefix+"."+v]; !ok {
					t.Errorf("%s lacks %s.%s", l, prefix, v)
				}
			}
		}
	}
	dynamic := slices.Concat(pendingAgeKeys, healthKeys, slices.Collect(maps.Values(statusActionKeys)))
	for _, s := range accountStatuses {
		dynamic = append(dynamic, "confirm."+s.String())
	}
	// Every string literal of the package's Go code that looks like a key
	// (namespace.name, the namespace one of the catalog's) is one, or the
	// prefix of an enumeration.
	namespaces := map[string]bool{}
	for k := range cats[LangEN] {
		ns, _, _ := strings.Cut(k, ".")
		namespaces[ns] = true
	}
	literal := regexp.MustCompile(`^[a-z_]+\.[a-z0-9_.]+$`)
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range entries {
		name := ent.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil || !literal.MatchString(s) {
				return true
			}
			ns, _, _ := strings.Cut(s, ".")
			if namespaces[ns] {
				dynamic = append(dynamic, s)
			}
			return true
		})
	}
	for _, k := range dynamic {
		for _, l := range Langs() {
			if _, ok := cats[l][k]; !ok {
				t.Errorf("%s lacks %q (used by the code)", l, k)
			}
		}
	}
}

func TestMoneyAndTimes(t *testing.T) {
	t.Parallel()
	zone, err := domain.LoadBusinessZone("")
	if err != nil {
		t.Fatal(err)
	}
	cats, err := loadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	en := localizer{lang: LangEN, msgs: cats[LangEN], zone: zone}
	ru := localizer{lang: LangRU, msgs: cats[LangRU], zone: zone}
	usd, err := domain.LookupCurrency("USD")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		a      domain.Amount
		en, ru string
	}{
		{domain.NewAmount(150_000, domain.KZT), "1,500.00\u00a0KZT", "1\u202f500,00\u00a0₸"},
		{domain.NewAmount(0, domain.KZT), "0.00\u00a0KZT", "0,00\u00a0₸"},
		{domain.NewAmount(5, domain.KZT), "0.05\u00a0KZT", "0,05\u00a0₸"},
		{domain.NewAmount(99_999, domain.KZT), "999.99\u00a0KZT", "999,99\u00a0₸"},
		{domain.NewAmount(-123_456_789, domain.KZT), "-1,234,567.89\u00a0KZT", "-1\u202f234\u202f567,89\u00a0₸"},
		{domain.NewAmount(domain.MaxBalanceMinor, domain.KZT), "1,000,000,000,000.00\u00a0KZT", "1\u202f000\u202f000\u202f000\u202f000,00\u00a0₸"},
		{domain.NewAmount(100_000_00, usd), "100,000.00\u00a0USD", "100\u202f000,00\u00a0USD"},
	} {
		if got := en.Money(tc.a); got != tc.en {
			t.Errorf("en %v = %q, want %q", tc.a, got, tc.en)
		}
		if got := ru.Money(tc.a); got != tc.ru {
			t.Errorf("ru %v = %q, want %q", tc.a, got, tc.ru)
		}
	}
	// 2026-12-02 23:30 UTC is already the 3rd in Almaty (UTC+5).
	at := time.Date(2026, 12, 2, 23, 30, 5, 0, time.UTC)
	if got := en.Time(at); got != "2026-12-03 04:30:05" {
		t.Errorf("en time %q", got)
	}
	if got := ru.Time(at); got != "03.12.2026 04:30:05" {
		t.Errorf("ru time %q", got)
	}
	if got := ru.Zone(at); got != "Asia/Almaty (UTC+05:00)" {
		t.Errorf("zone %q", got)
	}
	if en.Time(time.Time{}) != "" {
		t.Error("the zero time is not blank")
	}
	if got := ru.Age(50*time.Hour + 10*time.Minute); got != "2 дн. 2 ч" {
		t.Errorf("ru age %q", got)
	}
	if got := en.Age(90 * time.Second); got != "1 min" {
		t.Errorf("en age %q", got)
	}
}

func TestNegotiate(t *testing.T) {
	t.Parallel()
	for header, want := range map[string]Lang{
		"": LangEN, "ru": LangRU, "ru-KZ": LangRU, "RU": LangRU, "en-US,en;q=0.9": LangEN, "kk,ru;q=0.9,en;q=0.8": LangRU,
		"en;q=0.2,ru;q=0.8": LangRU, "ru;q=0": LangEN, "ru;q=abc": LangEN, "ru;q=2": LangEN, "fr,de": LangEN,
		strings.Repeat("xx,", 100) + "ru": LangEN, // beyond the entries read
	} {
		r := httptest.NewRequest("GET", "/console/", nil)
		r.Header.Set("Accept-Language", header)
		if got := negotiate(r); got != want {
			t.Errorf("Accept-Language %q: %s, want %s", header, got, want)
		}
	}
}

func TestLocalPath(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"/console": true, "/console/": true, "/console/accounts?customer_id=1": true, "/console/accounts/acc_1": true,
		"": false, "/": false, "/v1/accounts": false, "/consoles": false, "//evil.example": false, "https://evil.example/console/": false,
		"/console/../v1": false, "/console/./x": false, "/\\evil": false, "javascript:alert(1)": false, "/console\r\nSet-Cookie: x": false,
		"/console//x": false, "http:/console": false,
	} {
		if got := localPath(s); got != want {
			t.Errorf("localPath(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestPrettyEvidence(t *testing.T) {
	t.Parallel()
	body := `{"payment":{"id":"p1","sum":{"amount":60000,"currency":"KZT"},"tags":[1,"a",null,true,{"x":[]}]},"operation":{"sum_initial":{"amount":50000,"currency":"KZT"}},"n":1.50}`
	lines := prettyEvidence(body, &differs{amountMinor: "50000", currency: "KZT"})
	want := `{
  "payment": {
    "id": "p1",
    "sum": {
      "amount": 60000,
      "currency": "KZT"
    },
    "tags": [
      1,
      "a",
      null,
      true,
      {
        "x": [
        ]
      }
    ]
  },
  "operation": {
    "sum_initial": {
      "amount": 50000,
      "currency": "KZT"
    }
  },
  "n": 1.50
}
`
	if got := indentText(lines); got != want {
		t.Fatalf("pretty:\n%s\nwant:\n%s", got, want)
	}
	var claims, diffs []string
	for _, l := range lines {
		if l.Claim {
			claims = append(claims, strings.TrimSpace(l.Text))
		}
		if l.Differs {
			diffs = append(diffs, strings.TrimSpace(l.Text))
		}
	}
	if !slices.Equal(claims, []string{`"amount": 60000,`, `"currency": "KZT"`, `"amount": 50000,`, `"currency": "KZT"`}) ||
		!slices.Equal(diffs, []string{`"amount": 60000,`}) {
		t.Fatalf("claims %q, differs %q", claims, diffs)
	}
	// Not JSON, two values, too deep, scalars: shown raw.
	for _, raw := range []string{"not json <b>", `{"a":1}{"b":2}`, strings.Repeat("[", 40) + strings.Repeat("]", 40), `"just a string"`, `{"a":`} {
		got := prettyEvidence(raw, nil)
		if len(got) == 0 || strings.Join(func() []string {
			var s []string
			for _, l := range got {
				s = append(s, l.Text)
			}
			return s
		}(), "\n") != raw {
			t.Errorf("raw %q shown as %q", raw, indentText(got))
		}
	}
	// Huge evidence is cut, never unbounded.
	big := "[" + strings.Repeat("1,", 5000) + "1]"
	if got := prettyEvidence(big, nil); len(got) > maxEvidenceLines {
		t.Fatalf("%d lines", len(got))
	}
}

// slowLedger's ledger check waits for release and counts its runs.
type slowLedger struct {
	ports.Ledger
	release chan struct{}
	runs    atomic.Int64
}

func (l *slowLedger) CheckLedger(ctx context.Context) (ports.LedgerCheck, error) {
	l.runs.Add(1)
	select {
	case <-l.release:
	case <-ctx.Done():
		return ports.LedgerCheck{}, ctx.Err()
	}
	return ports.LedgerCheck{Transfers: 7, CustomerBalanceTotal: big.NewInt(5), SystemBalanceTotal: big.NewInt(-5)}, nil
}

func TestHealthNeverHoldsAPage(t *testing.T) {
	t.Parallel()
	l := &slowLedger{release: make(chan struct{})}
	h := &healthCache{ttl: time.Minute, wait: 20 * time.Millisecond}
	now := time.Now()
	// A slow check: the page gets "running" after the wait, and a second
	// page does not start another check.
	for range 3 {
		start := time.Now()
		if v := h.get(context.Background(), l, now); !v.Running || v.Known {
			t.Fatalf("while the first check runs: %+v", v)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("a page waited %s for the check", d)
		}
	}
	close(l.release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		v := h.get(context.Background(), l, now)
		if v.Known {
			if !v.Healthy || v.Transfers != 7 || v.Running {
				t.Fatalf("after the check: %+v", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the check never finished")
		}
	}
	// Fresh for the TTL: no new run; stale: one more.
	h.get(context.Background(), l, now.Add(30*time.Second))
	if n := l.runs.Load(); n != 1 {
		t.Fatalf("%d checks within the TTL", n)
	}
	if v := h.get(context.Background(), l, now.Add(2*time.Minute)); !v.Known {
		t.Fatalf("a stale result is still shown while the next check runs: %+v", v)
	}
	if n := l.runs.Load(); n != 2 {
		t.Fatalf("%d checks after the TTL, want 2", n)
	}
}
