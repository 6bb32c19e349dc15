package monetix

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

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
	// Limits, when not nil, replace the method's per-payment limits for this
	// project (the platform lets each project have its own limits, so any
	// valid limits are allowed, also wider ones).
	Limits *domain.AmountLimits
	// SignAnswers adds a top-level "signature" to the verify and
	// check_deposit answers. The vendor's docs do not say whether answers
	// must be signed (PROTOCOL.md §4), so it is off by default.
	SignAnswers bool
}

// String names the project without its secret, so a Project can be logged
// or printed by mistake without leaking the key.
func (p Project) String() string { return "monetix project " + p.ID }

// GoString keeps %#v from printing the secret as well.
func (p Project) GoString() string { return p.String() }

// Validate checks a project: a canonical id, a non-empty secret and, if set,
// valid limits.
func (p Project) Validate() error {
	if _, ok := CanonicalProjectID(p.ID); !ok {
		return fmt.Errorf("%w: project id must be a positive integer without leading zeros", ErrInvalidProjects)
	}
	if len(p.Secret) == 0 {
		return fmt.Errorf("%w: project %s has an empty secret", ErrInvalidProjects, p.ID)
	}
	if len(p.Secret) > MaxSecretLen {
		return fmt.Errorf("%w: project %s has a secret longer than %d bytes", ErrInvalidProjects, p.ID, MaxSecretLen)
	}
	if p.Limits != nil {
		if err := p.Limits.Validate(); err != nil {
			return fmt.Errorf("%w: project %s: %w", ErrInvalidProjects, p.ID, err)
		}
	}
	return nil
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
// the TIYN_MONETIX_PROJECTS_FILE file):
//
//	ID=SECRET[,ID=SECRET…]
//
// Entries are separated by commas or newlines; surrounding whitespace is
// trimmed; blank lines and lines starting with '#' are ignored. ID is the
// numeric project id; SECRET is the project's key (everything after the first
// '=' up to the entry's end or its first ';', so a secret cannot contain ',',
// ';' or a newline, nor start or end with whitespace).
//
// An entry may carry options after the secret, separated by ';':
//
//		1234=SECRET;min=1.00;max=200000.00;sign_answers=true
//
//	  - min, max: this project's per-payment limits in major units with at most
//	    two decimals (KZT, the currency of the default method); both or neither.
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
	secret := strings.TrimSpace(parts[0])
	if secret == "" {
		return Project{}, fmt.Errorf("project %s has an empty secret", id)
	}
	if len(secret) > MaxSecretLen {
		return Project{}, fmt.Errorf("project %s has a secret longer than %d bytes", id, MaxSecretLen)
	}
	p := Project{ID: id, Secret: []byte(secret)}
	var minText, maxText string
	var haveMin, haveMax bool
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
			minText, haveMin = value, true
		case "max":
			maxText, haveMax = value, true
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
	if haveMin != haveMax {
		return Project{}, fmt.Errorf("project %s: give both min and max, or neither", id)
	}
	if haveMin {
		lo, err := domain.ParsePositiveAmount(minText, domain.KZT)
		if err != nil {
			return Project{}, fmt.Errorf("project %s: min: %w", id, err)
		}
		hi, err := domain.ParsePositiveAmount(maxText, domain.KZT)
		if err != nil {
			return Project{}, fmt.Errorf("project %s: max: %w", id, err)
		}
		limits := domain.AmountLimits{MinMinor: lo.Minor(), MaxMinor: hi.Minor()}
		if err := limits.Validate(); err != nil {
			return Project{}, fmt.Errorf("project %s: %w", id, err)
		}
		p.Limits = &limits
	}
	return p, nil
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
