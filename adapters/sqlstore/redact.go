package sqlstore

import (
	"net/url"
	"strings"
)

// redactedValue stands for every credential RedactURL hides, like
// url.URL.Redacted's password.
const redactedValue = "xxxxx"

// minScrubLen: RedactError replaces credentials of at least this many
// bytes wherever they appear in an error text; shorter ones would blank out
// ordinary words (and are hidden in the URL itself anyway).
const minScrubLen = 3

// sensitiveParam reports whether a URL query parameter may hold a
// credential. The test is generous on purpose: a name containing "pass",
// "secret", "token" or "key" (any case) covers password, sslpassword,
// sslkey, passfile, krbsrvname-style additions of drivers to come, and the
// parameters of proxies and poolers.
func sensitiveParam(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"pass", "secret", "token", "key"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// RedactURL returns a database URL safe to log or to put in an error: the
// password of its userinfo and the value of every query parameter that may
// hold a credential (sensitiveParam) become "xxxxx"; the rest, the
// parameters' order included, stays as written. An SQLite URL ("sqlite:PATH")
// holds no credential and is returned as it is. A postgres URL that does not
// parse is shown only by its scheme, since where its password ends cannot be
// told.
func RedactURL(raw string) string {
	lower := strings.ToLower(raw)
	switch {
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
	case strings.HasPrefix(lower, "sqlite:"), strings.HasPrefix(lower, "file:"):
		return raw
	case strings.ContainsAny(raw, "@="): // another scheme, or a key=value DSN: it may hold anything
		if i := strings.Index(raw, "://"); i > 0 {
			return raw[:i] + "://…"
		}
		return "…"
	default:
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return raw[:strings.Index(raw, "://")] + "://…"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), redactedValue)
		}
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			k, _, hasValue := strings.Cut(p, "=")
			name, err := url.QueryUnescape(k)
			if err != nil {
				name = k
			}
			if hasValue && sensitiveParam(name) {
				parts[i] = k + "=" + redactedValue
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	return u.String()
}

// urlCredentials returns every credential in a database URL, as written and
// decoded: the userinfo password and the values of sensitive query
// parameters. It reads the raw text too, so a URL that does not parse
// still gives up its userinfo password.
func urlCredentials(raw string) []string {
	var out []string
	add := func(vs ...string) {
		for _, v := range vs {
			if len(v) >= minScrubLen {
				out = append(out, v)
			}
		}
	}
	if _, pw, ok := strings.Cut(rawUserinfo(raw), ":"); ok {
		add(pw)
		if dec, err := url.PathUnescape(pw); err == nil {
			add(dec)
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return out
	}
	if u.User != nil {
		if pw, has := u.User.Password(); has {
			add(pw)
		}
	}
	for _, p := range strings.Split(u.RawQuery, "&") {
		k, v, hasValue := strings.Cut(p, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if !hasValue || !sensitiveParam(name) {
			continue
		}
		add(v)
		if dec, err := url.QueryUnescape(v); err == nil {
			add(dec)
		}
	}
	return out
}

// rawUserinfo is the userinfo of scheme://userinfo@host/… as written, the
// way url.Parse splits it: the authority ends at the first '/', and the
// query and fragment are cut first; the userinfo is what precedes its last
// '@'.
func rawUserinfo(raw string) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return ""
	}
	rest := raw[i+3:]
	if j := strings.IndexAny(rest, "?#"); j >= 0 {
		rest = rest[:j]
	}
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		rest = rest[:j]
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return ""
	}
	return rest[:at]
}

// ScrubURLSecrets removes from text every credential of the database URL
// raw (see RedactURL), wherever it appears: drivers quote connection
// strings in their errors (pgx redacts the userinfo password, not a
// password=… query parameter), and an error text ends up in logs.
func ScrubURLSecrets(text, raw string) string {
	if raw == "" {
		return text
	}
	if red := RedactURL(raw); red != raw {
		text = strings.ReplaceAll(text, raw, red)
	}
	for _, c := range urlCredentials(raw) {
		text = strings.ReplaceAll(text, c, redactedValue)
	}
	return text
}

// redactedError is an error whose text has the database URL's credentials
// scrubbed; errors.Is and errors.As still see the error it wraps.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// RedactError returns err with every credential of the database URL raw
// scrubbed from its text (ScrubURLSecrets), keeping what it wraps for
// errors.Is and errors.As. Every error Open returns has been through it.
func RedactError(err error, raw string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if scrubbed := ScrubURLSecrets(msg, raw); scrubbed != msg {
		return &redactedError{msg: scrubbed, err: err}
	}
	return err
}
