package monetix_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"pgregory.net/rapid"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/domain"
)

// hostileKeys are secret keys made of everything a configuration format can
// trip on: its separators, its quotes, its escape characters, spaces at
// either end, control characters and non-ASCII text.
var hostileKeys = []string{
	"SECRET;x",
	"a;b,c=d%e",
	"=;,%",
	"%41%",
	"50%off",
	" leading and trailing spaces ",
	"\ttab\tinside",
	`double "quoted" key`,
	`single 'quoted' key`,
	`back\slash\`,
	"#not-a-comment",
	"ключ-секрет-тенге-₸",
	"emoji 🔑 key",
	"line\nbreak",
	"nul\x00byte",
	"+plus+is+not+space+",
	`!"#$%&'()*+,-./:;<=>?@[\]^_{|}~` + "`",
}

// percentEncode writes a key for the line form: every byte that the form
// reads specially, or that is not printable ASCII, as %XX.
func percentEncode(key []byte) string {
	var b strings.Builder
	for _, c := range key {
		if c <= ' ' || c >= 0x7f || c == '%' || c == ',' || c == ';' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// verifiesWith reports the answer code a verify request signed with key gets
// from a handler configured with projects: CodeAccountNotFound means the
// signature verified (the fake ledger has no account), CodeInvalidSignature
// that it did not.
func verifiesWith(t *testing.T, projects []monetix.Project, id string, key []byte) int {
	t.Helper()
	h, err := monetix.New(newFakeLedger(), monetix.Config{Projects: projects})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	rec := newRecorder()
	h.ServeRequests(rec, newJSONRequest(monetix.RequestsPath, sign(t, key, monetix.VerifyRequestBody(id, "nobody"))))
	a, err := monetix.ParseAnswer(rec.Body.Bytes(), nil)
	if err != nil {
		t.Fatalf("answer %s: %v", rec.Body, err)
	}
	return a.Code
}

// checkExactKey asserts the handler verifies with exactly key: the key
// itself passes, and near misses (the key trimmed, its encoded form, the key
// with a byte more) are refused.
func checkExactKey(t *testing.T, projects []monetix.Project, id string, key []byte, encoded string) {
	t.Helper()
	if code := verifiesWith(t, projects, id, key); code != monetix.CodeAccountNotFound {
		t.Errorf("%q: signed with the configured key: code %d, want %d", key, code, monetix.CodeAccountNotFound)
	}
	for _, miss := range [][]byte{[]byte(strings.TrimSpace(string(key))), []byte(encoded), append(append([]byte(nil), key...), 'x')} {
		if len(miss) == 0 || string(miss) == string(key) {
			continue
		}
		if code := verifiesWith(t, projects, id, miss); code != monetix.CodeInvalidSignature {
			t.Errorf("%q: signed with %q: code %d, want %d", key, miss, code, monetix.CodeInvalidSignature)
		}
	}
}

func TestParseProjectsPercentEncoding(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"1234=SECRET%3Bx", "SECRET;x"},
		{"1234=a%3Bb%2Cc%3Dd%25e", "a;b,c=d%e"},
		{"1234=a%3bb%2cc", "a;b,c"}, // either case of hex digits
		{"1234=abc==", "abc=="},     // '=' may stand as it is
		{"1234=%20padded%20", " padded "},
		{"1234=%D0%BA%D0%BB%D1%8E%D1%87", "ключ"},
		{"1234=ключ", "ключ"},
		{`1234="quoted'`, `"quoted'`},
		{"1234=a+b", "a+b"},
		{"1234=%00%FF", "\x00\xff"},
		{"1234=k%0Aey;sign_answers=true", "k\ney"},
	} {
		got, err := monetix.ParseProjects(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if string(got[0].Secret) != tc.want {
			t.Errorf("%q: secret %q, want %q", tc.in, got[0].Secret, tc.want)
		}
	}
	// A '%' that starts no escape is refused, whatever follows it; the
	// error says how to write one and does not echo the key.
	for _, in := range []string{"1234=TopSecret50%off", "1234=TopSecretValue%", "1234=TopSecretValue%4", "1234=TopSecret%G1x", "1234=TopSecret%%41"} {
		_, err := monetix.ParseProjects(in)
		if err == nil || !errors.Is(err, monetix.ErrInvalidProjects) || !strings.Contains(err.Error(), "not followed by two hex digits") ||
			!strings.Contains(err.Error(), "%25") {
			t.Errorf("%q: %v, want a refusal of the lone '%%'", in, err)
			continue
		}
		if strings.Contains(err.Error(), "TopSecret") {
			t.Errorf("%q: the error echoes the key: %v", in, err)
		}
	}
	// A key that decodes to nothing is empty.
	if _, err := monetix.ParseProjects("1234= ;min=1;max=2"); err == nil || !strings.Contains(err.Error(), "empty secret") {
		t.Errorf("blank key: %v", err)
	}
}

// TestHostileKeysInline: every hostile key, percent-encoded in the line
// form, parses to exactly itself and a handler verifies with exactly it.
func TestHostileKeysInline(t *testing.T) {
	t.Parallel()
	var entries []string
	for i, k := range hostileKeys {
		entries = append(entries, fmt.Sprintf("%d=%s", 100+i, percentEncode([]byte(k))))
	}
	projects, err := monetix.ParseProjects(strings.Join(entries, ","))
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range hostileKeys {
		if string(projects[i].Secret) != k {
			t.Fatalf("entry %d: secret %q, want %q", i+1, projects[i].Secret, k)
		}
		checkExactKey(t, projects, fmt.Sprint(100+i), []byte(k), percentEncode([]byte(k)))
	}
}

// TestPropertyPercentEncodingRoundTrips: any key of any bytes, encoded,
// reads back as exactly itself, also with options after it.
func TestPropertyPercentEncodingRoundTrips(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		key := rapid.SliceOfN(rapid.Byte(), 1, 64).Draw(t, "key")
		sign := rapid.Bool().Draw(t, "sign_answers")
		in := "77=" + percentEncode(key)
		if sign {
			in += ";sign_answers=true"
		}
		ps, err := monetix.ParseProjects(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if string(ps[0].Secret) != string(key) || ps[0].SignAnswers != sign {
			t.Fatalf("%q: secret %q sign %v, want %q %v", in, ps[0].Secret, ps[0].SignAnswers, key, sign)
		}
	})
}

// tomlBasic writes s as a TOML basic string: quotes, backslashes and
// control characters escaped, the rest as it is.
func tomlBasic(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// TestHostileKeysTOML: every hostile key written in a TOML file is taken
// verbatim (spaces at either end, quotes, separators, '%' undecoded) and a
// handler verifies with exactly it.
func TestHostileKeysTOML(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("# Monetix projects\n")
	for i, k := range hostileKeys {
		fmt.Fprintf(&b, "\n[[project]]\nid = %d\nsecret = %s\n", 100+i, tomlBasic(k))
	}
	// Literal strings take everything between the quotes as it is.
	b.WriteString("\n[[project]]\nid = \"900\"\nsecret = '  C:\\keys\\\"raw\" %41 ;,= '\nmin = \"10.00\"\nmax = 200000\nsign_answers = true\n")
	b.WriteString("\n[[project]]\nid = 901\nsecret = '''\nmulti\n  line '''\n")
	projects, err := monetix.ParseProjectsFile("projects.conf", []byte(b.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if len(projects) != len(hostileKeys)+2 {
		t.Fatalf("%d projects, want %d", len(projects), len(hostileKeys)+2)
	}
	for i, k := range hostileKeys {
		if string(projects[i].Secret) != k {
			t.Errorf("project %d: secret %q, want %q", 100+i, projects[i].Secret, k)
		}
		checkExactKey(t, projects, fmt.Sprint(100+i), []byte(k), tomlBasic(k))
	}
	lit := projects[len(hostileKeys)]
	if want := `  C:\keys\"raw" %41 ;,= `; string(lit.Secret) != want || lit.ID != "900" || !lit.SignAnswers ||
		lit.Limits == nil || *lit.Limits != (domain.AmountLimits{MinMinor: 1000, MaxMinor: 20_000_000}) {
		t.Errorf("literal-string project: %s %q %v %v", lit.ID, lit.Secret, lit.SignAnswers, lit.Limits)
	}
	checkExactKey(t, projects, "900", lit.Secret, "")
	if ml := projects[len(hostileKeys)+1]; string(ml.Secret) != "multi\n  line " {
		t.Errorf("multi-line project: %q", ml.Secret)
	}
}

func TestParseProjectsFileDetectsTheForm(t *testing.T) {
	t.Parallel()
	const toml = "[[project]]\nid = 1\nsecret = \"a;b\"\n"
	for _, tc := range []struct {
		name, data string
		isTOML     bool
	}{
		{"projects", toml, true},
		{"projects", "# comment\n\n  [[project]]\nid = 1\nsecret = 'x'\n", true},
		{"PROJECTS.TOML", "project = [{id = 1, secret = \"a;b\"}]\n", true},
		{"projects.toml", "1=x\n", true},
		{"projects.txt", "# [[project]] in a comment\n1=a%3Bb\n", false},
		{"projects", "1=a%3Bb\n", false},
	} {
		if got := monetix.IsProjectsTOML(tc.name, []byte(tc.data)); got != tc.isTOML {
			t.Errorf("%s %q: TOML %v, want %v", tc.name, tc.data, got, tc.isTOML)
		}
	}
	for _, name := range []string{"projects", "x.toml"} {
		ps, err := monetix.ParseProjectsFile(name, []byte(toml))
		if err != nil || string(ps[0].Secret) != "a;b" {
			t.Errorf("%s: %v %v", name, ps, err)
		}
	}
	ps, err := monetix.ParseProjectsFile("projects", []byte("1=a%3Bb\n2=c"))
	if err != nil || len(ps) != 2 || string(ps[0].Secret) != "a;b" {
		t.Errorf("line form: %v %v", ps, err)
	}
	// A .toml name holding the line form is read as TOML, and says so.
	if _, err := monetix.ParseProjectsFile("p.toml", []byte("1=TopSecretValue42\n")); err == nil || !strings.Contains(err.Error(), "TOML") ||
		strings.Contains(err.Error(), "TopSecret") {
		t.Errorf("line form in a .toml file: %v", err)
	}
}

func TestParseProjectsTOMLErrors(t *testing.T) {
	t.Parallel()
	const secret = "TopSecretValue42"
	p := func(body string) string { return "[[project]]\n" + body + "\n" }
	for _, tc := range []struct{ in, want string }{
		{"", "no project configured"},
		{"# nothing\n", "no project configured"},
		{"[project]\nid = 1\nsecret = '" + secret + "'\n", "write each one as [[project]]"},
		{"[[projects]]\nid = 1\nsecret = '" + secret + "'\n", `unknown key "projects" at the top level`},
		{p("id = 1\nsecret = '" + secret + "'\ncolour = 'blue'"), `[[project]] 1: unknown key "colour" (want id, secret, min, max, sign_answers)`},
		{p("id = 1\nsecret = '" + secret + "'\nsignanswers = true"), `unknown key "signanswers"`},
		{p("secret = '" + secret + "'"), "[[project]] 1: no id"},
		{p("id = 0\nsecret = '" + secret + "'"), "id must be a positive integer"},
		{p("id = -4\nsecret = '" + secret + "'"), "id must be a positive integer"},
		{p("id = '0012'\nsecret = '" + secret + "'"), "id must be a positive integer without leading zeros"},
		{p("id = 1.5\nsecret = '" + secret + "'"), "id must be an integer"},
		{p("id = 1"), "project 1 has no secret"},
		{p("id = 1\nsecret = ''"), "project 1 has an empty secret"},
		{p("id = 1\nsecret = 42"), "secret must be a string"},
		{p("id = 1\nsecret = '" + strings.Repeat("k", monetix.MaxSecretLen+1) + "'"), "secret longer than"},
		{p("id = 1\nsecret = '" + secret + "'\nmin = 1.5\nmax = '2.00'"), `write min as a string, e.g. min = "1.00"`},
		{p("id = 1\nsecret = '" + secret + "'\nmin = '1.00'"), "give both min and max"},
		{p("id = 1\nsecret = '" + secret + "'\nmin = '5.00'\nmax = '2.00'"), "min 5.00 KZT is above max 2.00 KZT"},
		{p("id = 1\nsecret = '" + secret + "'\nmin = '1.001'\nmax = '2.00'"), "min: invalid amount"},
		{p("id = 1\nsecret = '" + secret + "'\nmin = true\nmax = '2.00'"), "min must be an amount in KZT"},
		{p("id = 1\nsecret = '" + secret + "'\nsign_answers = 'true'"), "sign_answers must be true or false"},
		{p("id = 1\nsecret = 'a"+secret+"'") + p("id = 1\nsecret = 'b"+secret+"'"), "[[project]] 2: project id 1 duplicates [[project]] 1"},
		// Syntax errors say where, without the pieces of input a parser
		// quotes (an unquoted key, a broken escape).
		{p("id = 1\nsecret = " + secret), "syntax error at line 3"},
		{p("id = 1\nsecret = \"" + secret), "syntax error at line 3"},
		{p("id = 1\nsecret = \"" + secret + "\\q\""), "syntax error at line 3"},
		{p("id = 1\nsecret = '" + secret + "'\nsecret = '" + secret + "'"), "syntax error"},
	} {
		_, err := monetix.ParseProjectsTOML([]byte(tc.in))
		if err == nil {
			t.Errorf("%.60q: no error", tc.in)
			continue
		}
		if !errors.Is(err, monetix.ErrInvalidProjects) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.60q: %v, want %q", tc.in, err, tc.want)
		}
		if strings.Contains(err.Error(), "SecretValue") || strings.Contains(err.Error(), "TopSecr") {
			t.Errorf("%.60q: the error echoes the secret: %v", tc.in, err)
		}
		if !utf8.ValidString(err.Error()) {
			t.Errorf("%.60q: error is not UTF-8: %q", tc.in, err)
		}
	}
}

// TestProjectLimitsOnlyNarrow: a project's own limits must lie within every
// method's; a configuration that would widen them is refused where projects
// meet methods (Config.Validate, and so New), in KZT.
func TestProjectLimitsOnlyNarrow(t *testing.T) {
	t.Parallel()
	parse := func(s string) []monetix.Project {
		ps, err := monetix.ParseProjects(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		return ps
	}
	for _, tc := range []struct {
		in      string
		methods []monetix.Method
		want    []string
	}{
		{"1234=s;min=0.01;max=900000.00", nil, []string{
			"project 1234: min 0.01 KZT is below the kassa24 minimum 1.00 KZT",
			"project 1234: max 900000.00 KZT is above the kassa24 maximum 500000.00 KZT"}},
		{"1234=s;min=1.00;max=500000.01", nil, []string{"project 1234: max 500000.01 KZT is above the kassa24 maximum 500000.00 KZT"}},
		{"1=s,2=t;min=0.99;max=10", nil, []string{"project 2: min 0.99 KZT is below the kassa24 minimum 1.00 KZT"}},
		// With two methods the project's limits apply to both, so they
		// must fit the narrower.
		{"1=s;min=1.00;max=200000.00", []monetix.Method{monetix.Kassa24, {Name: "qiwi_kz", Currency: domain.KZT,
			Limits: domain.AmountLimits{MinMinor: 100, MaxMinor: 10_000_000}}},
			[]string{"project 1: max 200000.00 KZT is above the qiwi_kz maximum 100000.00 KZT"}},
	} {
		cfg := monetix.Config{Projects: parse(tc.in), Methods: tc.methods}
		err := cfg.Validate()
		_, newErr := monetix.New(newFakeLedger(), cfg)
		for _, e := range []error{err, newErr} {
			if e == nil || !errors.Is(e, monetix.ErrInvalidProjects) {
				t.Errorf("%q: %v, want a refusal", tc.in, e)
				continue
			}
			for _, w := range tc.want {
				if !strings.Contains(e.Error(), w) {
					t.Errorf("%q: %v, want %q", tc.in, e, w)
				}
			}
		}
	}
	// The method's own limits, and anything inside them, are fine.
	for _, in := range []string{"1=s;min=1.00;max=500000.00", "1=s;min=10;max=100", "1=s;min=500000;max=500000", "1=s"} {
		cfg := monetix.Config{Projects: parse(in)}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%q: %v", in, err)
		}
		if _, err := monetix.New(newFakeLedger(), cfg); err != nil {
			t.Errorf("%q: New: %v", in, err)
		}
	}
}
