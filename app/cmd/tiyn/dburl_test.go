package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// dbSecrets are the credentials of dbURLWithSecrets; none may reach a log
// line or an error.
var dbSecrets = []string{"pwUserinfoSecret", "pwQuerySecret", "sslPwSecret", "keyPhraseSecret"}

// dbURLWithSecrets points at a port nothing listens on (the open fails
// fast) and holds a password in every place a URL can: the userinfo, a
// password parameter, the TLS key's passphrase and a key path.
const dbURLWithSecrets = "postgres://tiyn:pwUserinfoSecret@127.0.0.1:1/tiyn?sslmode=disable&password=pwQuerySecret" +
	"&sslpassword=sslPwSecret&sslkey=keyPhraseSecret&application_name=tiyn-test&connect_timeout=2"

// TestServeNeverLogsDatabaseCredentials: the start-up log line and the
// open-database error show the URL with every credential as xxxxx, for both
// drivers, also when the driver quotes the URL in its own error.
func TestServeNeverLogsDatabaseCredentials(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, url, driver string
	}{
		{"pgdriver refused", dbURLWithSecrets, "pgdriver"},
		{"pgx refused", dbURLWithSecrets, "pgx"},
		{"pgx cannot parse", strings.Replace(dbURLWithSecrets, "sslmode=disable", "sslmode=bogus", 1), "pgx"},
		{"pgdriver cannot parse", strings.Replace(dbURLWithSecrets, "sslmode=disable", "sslmode=bogus", 1), "pgdriver"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, _, stderr := testMain(map[string]string{
				"TIYN_DATABASE_URL": tc.url, "TIYN_PG_DRIVER": tc.driver, "TIYN_LOG_FORMAT": "json",
				"TIYN_API_TOKENS": "ops:write:" + testTokenSecret, "TIYN_MONETIX_PROJECTS": "1=" + testProjectSecret,
			})
			code, err := runBounded(t, m, "serve", "--listen", "127.0.0.1:0")
			if code != exitError || err == nil || !strings.Contains(err.Error(), "open database postgres://tiyn:xxxxx@127.0.0.1:1/tiyn?") ||
				!strings.Contains(err.Error(), "password=xxxxx") || !strings.Contains(err.Error(), "sslpassword=xxxxx") {
				t.Fatalf("exit %d, err %v", code, err)
			}
			out := stderr.String()
			for _, s := range dbSecrets {
				if strings.Contains(out, s) {
					t.Errorf("stderr holds %q:\n%s", s, out)
				}
			}
			var start map[string]any
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, `"msg":"starting tiyn"`) {
					if err := json.Unmarshal([]byte(line), &start); err != nil {
						t.Fatal(err)
					}
				}
			}
			want := "postgres://tiyn:xxxxx@127.0.0.1:1/tiyn?sslmode=" + map[bool]string{true: "bogus", false: "disable"}[strings.Contains(tc.name, "parse")] +
				"&password=xxxxx&sslpassword=xxxxx&sslkey=xxxxx&application_name=tiyn-test&connect_timeout=2"
			if start["database"] != want || start["database_from"] != "TIYN_DATABASE_URL" {
				t.Errorf("start line database %q from %q, want %q:\n%s", start["database"], start["database_from"], want, out)
			}
		})
	}
}

// TestDatabaseURLFile: TIYN_DATABASE_URL_FILE holds the URL (its final
// newline ignored); giving both forms is an error; errors about the file's
// URL are redacted too.
func TestDatabaseURLFile(t *testing.T) {
	t.Parallel()
	env := sqliteEnv(t)
	file := writeFile(t, "db-url", env["TIYN_DATABASE_URL"]+"\n")
	c, _, err := load(t, map[string]string{"TIYN_DATABASE_URL_FILE": file})
	if err != nil || c.DatabaseURL != env["TIYN_DATABASE_URL"] || c.DatabaseURLFrom != "TIYN_DATABASE_URL_FILE="+file {
		t.Fatalf("from file: %q from %q, err %v", c.DatabaseURL, c.DatabaseURLFrom, err)
	}
	// A flag for either form wins over the environment of both.
	c, _, err = load(t, map[string]string{"TIYN_DATABASE_URL": "sqlite:other.db"}, "--database-url-file", file)
	if err != nil || c.DatabaseURL != env["TIYN_DATABASE_URL"] {
		t.Fatalf("flag file over env: %q, err %v", c.DatabaseURL, err)
	}
	c, _, err = load(t, map[string]string{"TIYN_DATABASE_URL_FILE": file}, "--database-url", "sqlite:flag.db")
	if err != nil || c.DatabaseURL != "sqlite:flag.db" {
		t.Fatalf("flag over env file: %q, err %v", c.DatabaseURL, err)
	}
	// The default is not "set": the file alone is no conflict, and without
	// either the default holds.
	c, _, err = load(t, nil)
	if err != nil || c.DatabaseURL != defaultDatabaseURL || c.DatabaseURLFrom != "TIYN_DATABASE_URL" {
		t.Fatalf("default: %q from %q, err %v", c.DatabaseURL, c.DatabaseURLFrom, err)
	}

	noHost := writeFile(t, "no-host", "postgres://u:pwUserinfoSecret@/db?password=pwQuerySecret\n")
	twoLines := writeFile(t, "two-lines", "sqlite:a.db\nsqlite:b.db\n")
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"TIYN_DATABASE_URL": "sqlite:x.db", "TIYN_DATABASE_URL_FILE": file}, nil,
			"TIYN_DATABASE_URL and TIYN_DATABASE_URL_FILE are both set: set one"},
		{map[string]string{"TIYN_DATABASE_URL_FILE": file + ".missing"}, nil, "TIYN_DATABASE_URL_FILE: open "},
		{map[string]string{"TIYN_DATABASE_URL_FILE": noHost}, nil, "TIYN_DATABASE_URL_FILE: postgres://u:xxxxx@/db?password=xxxxx: no host"},
		{map[string]string{"TIYN_DATABASE_URL_FILE": twoLines}, nil, "holds more than one line"},
		{map[string]string{"TIYN_DATABASE_URL": "postgres://u:pwUserinfoSecret@:5432x/db?password=pwQuerySecret"}, nil, "TIYN_DATABASE_URL: not a valid postgres:// URL"},
	} {
		_, _, err := load(t, tc.env, tc.args...)
		var ue *usageError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errorsAs(err, &ue) {
			t.Errorf("%v: err %v, want a usage error with %q", tc.env, err, tc.want)
			continue
		}
		for _, s := range dbSecrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%v: error holds %q: %v", tc.env, s, err)
			}
		}
	}

	// serve reads the file: a working SQLite database.
	env = map[string]string{"TIYN_DATABASE_URL_FILE": file, "TIYN_LOG_FORMAT": "json"}
	s := startServe(t, env)
	s.stop(t)
	if !strings.Contains(s.stderr.String(), `"database_from":"TIYN_DATABASE_URL_FILE=`+file+`"`) {
		t.Errorf("the start line does not say where the URL came from:\n%s", s.stderr)
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
