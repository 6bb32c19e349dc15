package sqlstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/ports"
)

// Credentials the URLs below hold; none may survive redaction.
var urlSecrets = []string{"pwUserinfoSecret", "pwQuerySecret", "sslPwSecret", "keyPhraseSecret", "tokSecret", "p@ss/w:rd", "p%40ss%2Fw%3Ard"}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:pwUserinfoSecret@db.internal:5432/tiyn?sslmode=require",
			"postgres://u:xxxxx@db.internal:5432/tiyn?sslmode=require"},
		{"postgres://u@db/tiyn?password=pwQuerySecret&sslmode=disable&application_name=tiyn",
			"postgres://u@db/tiyn?password=xxxxx&sslmode=disable&application_name=tiyn"},
		{"postgresql://u@db/tiyn?sslpassword=sslPwSecret&sslkey=/etc/k.pem&passfile=/x&PASSWORD=pwQuerySecret",
			"postgresql://u@db/tiyn?sslpassword=xxxxx&sslkey=xxxxx&passfile=xxxxx&PASSWORD=xxxxx"},
		{"postgres://u@db/t?api_token=tokSecret&client_secret=keyPhraseSecret&sslkeypassphrase=keyPhraseSecret",
			"postgres://u@db/t?api_token=xxxxx&client_secret=xxxxx&sslkeypassphrase=xxxxx"},
		{"postgres://u:p%40ss%2Fw%3Ard@db/t?pass%77ord=pwQuerySecret", "postgres://u:xxxxx@db/t?pass%77ord=xxxxx"},
		{"postgres://u@db/t?host=/var/run/postgresql&user=tiyn", "postgres://u@db/t?host=/var/run/postgresql&user=tiyn"},
		{"postgres://db/t", "postgres://db/t"},
		{"postgres://u:pwUserinfoSecret@db:port/t", "postgres://…"}, // does not parse
		{"sqlite:/var/lib/tiyn/tiyn.db", "sqlite:/var/lib/tiyn/tiyn.db"},
		{"host=db password=pwQuerySecret", "…"},
		{"mysql://u:pwUserinfoSecret@db/t", "mysql://…"},
		{"mysql-no-credentials", "mysql-no-credentials"},
	} {
		got := sqlstore.RedactURL(tc.in)
		if got != tc.want {
			t.Errorf("RedactURL(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
		for _, s := range urlSecrets {
			if strings.Contains(got, s) {
				t.Errorf("RedactURL(%q) = %q keeps %q", tc.in, got, s)
			}
		}
	}
}

func TestScrubURLSecrets(t *testing.T) {
	t.Parallel()
	raw := "postgres://u:p%40ss%2Fw%3Ard@db/t?password=pwQuerySecret&sslpassword=ssl%50wSecret&sslmode=bogus"
	text := "cannot parse `postgres://u:xxxxx@db/t?password=pwQuerySecret&sslpassword=ssl%50wSecret`: " +
		"password p@ss/w:rd, decoded sslPwSecret; and the whole " + raw
	got := sqlstore.ScrubURLSecrets(text, raw)
	for _, s := range append(urlSecrets, "ssl%50wSecret") {
		if strings.Contains(got, s) {
			t.Errorf("scrubbed text keeps %q: %s", s, got)
		}
	}
	if !strings.Contains(got, "cannot parse") || !strings.Contains(got, "sslmode=bogus") {
		t.Errorf("scrubbed too much: %s", got)
	}
}

// TestOpenErrorsHoldNoCredential: whatever a driver puts in its error —
// pgx quotes the connection string with a password=… parameter as it is,
// pgdriver panics on an sslmode it does not know — Open's error holds no
// credential of the URL, and still says what went wrong.
func TestOpenErrorsHoldNoCredential(t *testing.T) {
	t.Parallel()
	const q = "password=pwQuerySecret&sslpassword=sslPwSecret&sslkey=keyPhraseSecret&connect_timeout=2"
	for _, tc := range []struct {
		name, url, driver string
		want              string
	}{
		{"pgx bad sslmode", "postgres://tiyn:pwUserinfoSecret@127.0.0.1:1/tiyn?sslmode=bogus&" + q, sqlstore.DriverPGX, "sslmode is invalid"},
		{"pgdriver bad sslmode", "postgres://tiyn:pwUserinfoSecret@127.0.0.1:1/tiyn?sslmode=bogus&" + q, sqlstore.DriverPG, "sslmode 'bogus' is not supported"},
		{"pgdriver refused", "postgres://tiyn:pwUserinfoSecret@127.0.0.1:1/tiyn?sslmode=disable&" + q, sqlstore.DriverPG, "open postgres store"},
		{"pgx refused", "postgres://tiyn:pwUserinfoSecret@127.0.0.1:1/tiyn?sslmode=disable&" + q, sqlstore.DriverPGX, "open postgres store"},
		{"not a URL", "postgres://tiyn:pwUserinfoSecret@127.0.0.1:port/tiyn?" + q, sqlstore.DriverPG, "postgres"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s, err := sqlstore.Open(ctx, sqlstore.Options{URL: tc.url, PGDriver: tc.driver})
			if err == nil {
				_ = s.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
			for _, sec := range urlSecrets {
				if strings.Contains(err.Error(), sec) {
					t.Errorf("error holds %q: %v", sec, err)
				}
			}
			if strings.Contains(tc.name, "refused") && !errors.Is(err, ports.ErrUnavailable) {
				t.Errorf("a refused connection is not ErrUnavailable through the redaction: %v", err)
			}
		})
	}
}
