package monetix

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/tiyn/tiyn/domain"
)

// ErrInvalidProjects is wrapped by every ParseProjects and Config error about
// projects, so the composition root can tell a configuration mistake apart.
var ErrInvalidProjects = errors.New("invalid monetix projects")

// MaxProjectIDLen bounds a project id's decimal text: project ids are
// positive integers on the wire and must fit an int64 (19 digits).
const MaxProjectIDLen = 19

// MaxSecretLen bounds a secret key. Monetix keys are a few dozen characters;
// anything this long is a pasted file, not a key.
const MaxSecretLen = 1024

// Project is one Monetix project: its id, its secret key and its options.
type Project struct {
	// ID is the project_id, kept as its canonical decimal text (no sign, no
	// leading zeros). It becomes domain.Channel.Project.
	ID string
	// Secret is the project's signing key. It is never logged or echoed.
	Secret []byte
	// Limits, when not nil, are this project's own per-payment limits, in
	// minor units of the methods' currency. They replace the method's
	// limits for this project's payments but may only narrow them: a
	// project cannot take what the method refuses (1.00–500,000.00 KZT for
	// kassa24), so Config.Validate refuses limits outside any method's.
	Limits *domain.AmountLimits
	// SignAnswers adds a top-level "signature" to the verify and
	// check_deposit answers. The vendor's docs do not say whether answers
	// must be signed (docs/protocol.md §4), so it is off by default.
	SignAnswers bool
}

// String names the project without its secret, so a Project can be logged
// or printed by mistake without leaking the key.
func (p Project) String() string { return "monetix project " + p.ID }

// GoString keeps %#v from printing the secret as well.
func (p Project) GoString() string { return p.String() }

// Validate checks a project on its own: a canonical id, a non-empty secret
// and, if set, limits with 0 < min <= max (in KZT, as configured). Whether
// the limits fit the methods is Config.Validate's to check.
func (p Project) Validate() error {
	if _, ok := CanonicalProjectID(p.ID); !ok {
		return fmt.Errorf("%w: project id must be a positive integer without leading zeros", ErrInvalidProjects)
	}
	if err := checkSecret(p); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidProjects, err)
	}
	if p.Limits != nil {
		if err := checkLimits(p.ID, *p.Limits, domain.KZT); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidProjects, err)
		}
	}
	return nil
}

// fitLimits checks that a project's own limits lie within a method's: they
// may narrow the method's limits, never widen them. The message is in the
// method's currency, in major units.
func (p Project) fitLimits(m Method) error {
	if p.Limits == nil {
		return nil
	}
	cur := m.Currency
	var errs []error
	if p.Limits.MinMinor < m.Limits.MinMinor {
		errs = append(errs, fmt.Errorf("%w: project %s: min %s %s is below the %s minimum %s %s", ErrInvalidProjects, p.ID,
			domain.NewAmount(p.Limits.MinMinor, cur), cur, m.Name, domain.NewAmount(m.Limits.MinMinor, cur), cur))
	}
	if p.Limits.MaxMinor > m.Limits.MaxMinor {
		errs = append(errs, fmt.Errorf("%w: project %s: max %s %s is above the %s maximum %s %s", ErrInvalidProjects, p.ID,
			domain.NewAmount(p.Limits.MaxMinor, cur), cur, m.Name, domain.NewAmount(m.Limits.MaxMinor, cur), cur))
	}
	return errors.Join(errs...)
}

// CanonicalProjectID reports whether s is a project id — decimal digits of a
// positive int64, without sign or leading zeros — and returns it.
func CanonicalProjectID(s string) (string, bool) {
	if s == "" || len(s) > MaxProjectIDLen || s[0] == '0' {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", false
		}
	}
	if _, err := strconv.ParseInt(s, 10, 64); err != nil {
		return "", false
	}
	return s, true
}

// ParseProjects reads the TIYN_MONETIX_PROJECTS setting (or the contents of
// a TIYN_MONETIX_PROJECTS_FILE file in the line form; ParseProjectsFile
// picks the form of a file):
//
//	ID=SECRET[,ID=SECRET…]
//
// Entries are separated by commas or newlines; surrounding whitespace is
// trimmed; blank lines and lines starting with '#' are ignored. ID is the
// numeric project id; SECRET is the project's key: everything after the
// first '=' up to the entry's end or its first ';', surrounding whitespace
// trimmed, then percent-decoded (see DecodeSecret). So a key of any bytes can
// be written: ',' as %2C, ';' as %3B, '%' as %25, a leading or trailing space
// as %20, a newline as %0A ('=' may stand as it is, or as %3D). A '%' not
// followed by two hex digits is refused, so no '%' is ever read two ways; a
// key that holds a literal '%' must write it as %25.
//
// An entry may carry options after the secret, separated by ';':
//
//		1234=SECRET;min=1.00;max=200000.00;sign_answers=true
//
//	  - min, max: this project's per-payment limits in KZT (major units, at
//	    most two decimals); both or neither. They may only narrow the
//	    method's limits (Config.Validate refuses wider ones).
//	  - sign_answers: true/false (strconv.ParseBool), sign verify/check_deposit
//	    answers (default false).
//
// Errors name the entry's position (1-based, and its line) and never echo a
// secret. Duplicate ids, non-numeric ids and empty secrets are refused, and
// so is an input without any project.
func ParseProjects(s string) ([]Project, error) {
	var (
		out   []Project
		seen  = map[string]int{}
		entry = 0
	)
	for lineNo, line := range strings.Split(s, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		for _, raw := range strings.Split(trimmed, ",") {
			raw = strings.TrimSpace(raw)
			if raw == "" {
				continue
			}
			entry++
			where := fmt.Sprintf("entry %d (line %d)", entry, lineNo+1)
			p, err := parseProjectEntry(raw)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrInvalidProjects, where, err)
			}
			if first, dup := seen[p.ID]; dup {
				return nil, fmt.Errorf("%w: %s: project id %s duplicates entry %d", ErrInvalidProjects, where, p.ID, first)
			}
			seen[p.ID] = entry
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no project configured (want ID=SECRET[,ID=SECRET…])", ErrInvalidProjects)
	}
	return out, nil
}

// DecodeSecret percent-decodes a secret of the line form: "%XX", with two
// hex digits of either case, is the byte 0xXX; every other byte stands for
// itself ('+' included: this is not form encoding). A '%' that is not
// followed by two hex digits is an error, so a secret written for an older
// Tiyn that holds a literal '%' is refused at start instead of being
// silently read as another key. The error never echoes the secret.
func DecodeSecret(s string) ([]byte, error) {
	if !strings.Contains(s, "%") {
		return []byte(s), nil
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			out = append(out, c)
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return nil, fmt.Errorf("its secret has a '%%' at byte %d that is not followed by two hex digits "+
				"(percent-encoding: write a literal '%%' as %%25, ',' as %%2C, ';' as %%3B)", i+1)
		}
		out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
		i += 2
	}
	return out, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// parseProjectEntry reads one "ID=SECRET[;opt=value…]". Its errors must not
// contain the secret, nor anything of an entry that might be one.
func parseProjectEntry(raw string) (Project, error) {
	id, rest, ok := strings.Cut(raw, "=")
	if !ok {
		return Project{}, errors.New("want ID=SECRET")
	}
	id = strings.TrimSpace(id)
	if _, ok := CanonicalProjectID(id); !ok {
		return Project{}, errors.New("project id must be a positive integer without leading zeros")
	}
	parts := strings.Split(rest, ";")
	encoded := strings.TrimSpace(parts[0])
	if encoded == "" {
		return Project{}, fmt.Errorf("project %s has an empty secret", id)
	}
	secret, err := DecodeSecret(encoded)
	if err != nil {
		return Project{}, fmt.Errorf("project %s: %w", id, err)
	}
	p := Project{ID: id, Secret: secret}
	if err := checkSecret(p); err != nil {
		return Project{}, err
	}
	var opts projectOptions
	for _, opt := range parts[1:] {
		opt = strings.TrimSpace(opt)
		if opt == "" {
			continue
		}
		key, value, ok := strings.Cut(opt, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !ok {
			return Project{}, fmt.Errorf("project %s: option %q needs a value", id, truncateText(key, 32))
		}
		switch key {
		case "min":
			opts.min, opts.haveMin = value, true
		case "max":
			opts.max, opts.haveMax = value, true
		case "sign_answers":
			b, err := strconv.ParseBool(value)
			if err != nil {
				return Project{}, fmt.Errorf("project %s: sign_answers must be true or false", id)
			}
			p.SignAnswers = b
		default:
			return Project{}, fmt.Errorf("project %s: unknown option %q (want min, max, sign_answers)", id, truncateText(key, 32))
		}
	}
	if err := opts.apply(&p); err != nil {
		return Project{}, err
	}
	return p, nil
}

// checkSecret bounds a parsed secret; its errors name the project only.
func checkSecret(p Project) error {
	if len(p.Secret) == 0 {
		return fmt.Errorf("project %s has an empty secret", p.ID)
	}
	if len(p.Secret) > MaxSecretLen {
		return fmt.Errorf("project %s has a secret longer than %d bytes", p.ID, MaxSecretLen)
	}
	return nil
}

// projectOptions are a project's limits as written, in KZT major units.
type projectOptions struct {
	min, max         string
	haveMin, haveMax bool
}

// apply parses the limits into p.Limits (minor units of KZT, the currency
// of the default method).
func (o projectOptions) apply(p *Project) error {
	if o.haveMin != o.haveMax {
		return fmt.Errorf("project %s: give both min and max, or neither", p.ID)
	}
	if !o.haveMin {
		return nil
	}
	lo, err := domain.ParsePositiveAmount(o.min, domain.KZT)
	if err != nil {
		return fmt.Errorf("project %s: min: %w", p.ID, err)
	}
	hi, err := domain.ParsePositiveAmount(o.max, domain.KZT)
	if err != nil {
		return fmt.Errorf("project %s: max: %w", p.ID, err)
	}
	limits := domain.AmountLimits{MinMinor: lo.Minor(), MaxMinor: hi.Minor()}
	if err := checkLimits(p.ID, limits, domain.KZT); err != nil {
		return err
	}
	p.Limits = &limits
	return nil
}

// checkLimits validates a project's own limits and says what is wrong in
// the currency's major units, as a person configured them.
func checkLimits(id string, l domain.AmountLimits, cur domain.Currency) error {
	switch {
	case l.MinMinor <= 0:
		return fmt.Errorf("project %s: min %s %s must be greater than zero", id, domain.NewAmount(l.MinMinor, cur), cur)
	case l.MaxMinor < l.MinMinor:
		return fmt.Errorf("project %s: min %s %s is above max %s %s", id,
			domain.NewAmount(l.MinMinor, cur), cur, domain.NewAmount(l.MaxMinor, cur), cur)
	}
	return nil
}

// ParseProjectsFile reads the contents of a TIYN_MONETIX_PROJECTS_FILE
// file named name. The file is TOML (ParseProjectsTOML) when its name ends
// in ".toml" or its first line that is neither blank nor a '#' comment
// starts with '[' (a table such as [[project]]); otherwise it is the line
// form of ParseProjects. The two cannot be confused: a line-form entry
// starts with a digit.
func ParseProjectsFile(name string, data []byte) ([]Project, error) {
	if IsProjectsTOML(name, data) {
		return ParseProjectsTOML(data)
	}
	return ParseProjects(string(data))
}

// IsProjectsTOML reports whether ParseProjectsFile reads name's data as
// TOML.
func IsProjectsTOML(name string, data []byte) bool {
	if strings.HasSuffix(strings.ToLower(name), ".toml") {
		return true
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		return strings.HasPrefix(line, "[")
	}
	return false
}

// The keys of a [[project]] table in a TOML projects file.
var tomlProjectKeys = []string{"id", "secret", "min", "max", "sign_answers"}

// ParseProjectsTOML reads a TOML projects file: one [[project]] table per
// project,
//
//	[[project]]
//	id = 1234                    # an integer, or a string of digits
//	secret = 'any key; at all, "quoted" too'
//	min = "1.00"                 # KZT, a string (or a whole number); both or neither
//	max = "200000.00"
//	sign_answers = true          # optional, default false
//
// The secret is taken verbatim as TOML reads the string: nothing is trimmed
// or decoded beyond TOML's own escapes in "basic strings" (a 'literal
// string' has none), so leading and trailing spaces, quotes, ';', ',', '='
// and '%' are all part of the key. Unknown keys and tables are refused
// (a typo must not turn an option off), and so are floats for min and max
// (not exact) and an input without any project. Errors name the project's
// table (1-based) and never echo a secret: a syntax error says where, with
// any quoted piece of the input left out.
func ParseProjectsTOML(data []byte) ([]Project, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: TOML: %s", ErrInvalidProjects, fmt.Sprintf(format, args...))
	}
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		return nil, bad("%s", tomlErrorText(err))
	}
	for k := range doc {
		if k != "project" {
			return nil, bad("unknown key %q at the top level (want [[project]] tables)", truncateText(k, 32))
		}
	}
	tables, ok := doc["project"].([]map[string]any)
	if !ok {
		if _, present := doc["project"]; present {
			return nil, bad("project must be an array of tables: write each one as [[project]]")
		}
		return nil, bad("no project configured (want [[project]] tables with id and secret)")
	}
	var out []Project
	seen := map[string]int{}
	for i, t := range tables {
		where := fmt.Sprintf("[[project]] %d", i+1)
		p, err := tomlProject(t)
		if err != nil {
			return nil, fmt.Errorf("%w: TOML %s: %w", ErrInvalidProjects, where, err)
		}
		if first, dup := seen[p.ID]; dup {
			return nil, fmt.Errorf("%w: TOML %s: project id %s duplicates [[project]] %d", ErrInvalidProjects, where, p.ID, first)
		}
		seen[p.ID] = i + 1
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, bad("no project configured (want [[project]] tables with id and secret)")
	}
	return out, nil
}

// tomlProject reads one [[project]] table. Its errors never hold the secret.
func tomlProject(t map[string]any) (Project, error) {
	for k := range t {
		if !slices.Contains(tomlProjectKeys, k) {
			return Project{}, fmt.Errorf("unknown key %q (want %s)", truncateText(k, 32), strings.Join(tomlProjectKeys, ", "))
		}
	}
	var p Project
	switch id := t["id"].(type) {
	case nil:
		return Project{}, errors.New("no id")
	case int64:
		if id <= 0 {
			return Project{}, errors.New("id must be a positive integer")
		}
		p.ID = strconv.FormatInt(id, 10)
	case string:
		if _, ok := CanonicalProjectID(id); !ok {
			return Project{}, errors.New("id must be a positive integer without leading zeros")
		}
		p.ID = id
	default:
		return Project{}, errors.New("id must be an integer (or a string of digits)")
	}
	switch secret := t["secret"].(type) {
	case nil:
		return Project{}, fmt.Errorf("project %s has no secret", p.ID)
	case string:
		p.Secret = []byte(secret)
	default:
		return Project{}, fmt.Errorf("project %s: secret must be a string (quote it)", p.ID)
	}
	if err := checkSecret(p); err != nil {
		return Project{}, err
	}
	var opts projectOptions
	for _, lim := range []struct {
		key  string
		text *string
		have *bool
	}{{"min", &opts.min, &opts.haveMin}, {"max", &opts.max, &opts.haveMax}} {
		switch v := t[lim.key].(type) {
		case nil:
		case string:
			*lim.text, *lim.have = v, true
		case int64:
			*lim.text, *lim.have = strconv.FormatInt(v, 10), true
		case float64:
			return Project{}, fmt.Errorf("project %s: write %s as a string, e.g. %s = \"1.00\" (a TOML float is not exact)", p.ID, lim.key, lim.key)
		default:
			return Project{}, fmt.Errorf("project %s: %s must be an amount in KZT as a string, e.g. \"1.00\"", p.ID, lim.key)
		}
	}
	switch v := t["sign_answers"].(type) {
	case nil:
	case bool:
		p.SignAnswers = v
	default:
		return Project{}, fmt.Errorf("project %s: sign_answers must be true or false (unquoted)", p.ID)
	}
	if err := opts.apply(&p); err != nil {
		return Project{}, err
	}
	return p, nil
}

// tomlQuoted matches the quoted pieces of input a TOML error message may
// hold ("…" or '…'): they may be part of a secret.
var tomlQuoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'[^']*'`)

// tomlErrorText describes a TOML syntax error by its line and column and
// what was wrong, without any piece of the input.
func tomlErrorText(err error) string {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		msg := tomlQuoted.ReplaceAllString(pe.Message, "…")
		return fmt.Sprintf("syntax error at line %d, column %d: %s", pe.Position.Line, pe.Position.Col, truncateText(msg, 200))
	}
	msg := strings.TrimPrefix(tomlQuoted.ReplaceAllString(err.Error(), "…"), "toml: ")
	return truncateText(msg, 200)
}

// truncateText shortens s to n bytes (on a rune boundary) for messages.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
