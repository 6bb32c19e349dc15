package main

import (
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/adapters/sqlstore"
)

const (
	testTokenSecret   = "s3cr3t-token-0123456789abcdef"
	testProjectSecret = "pr0ject-secret-XYZ-987654"
)

func load(t *testing.T, env map[string]string, args ...string) (Config, []string, error) {
	t.Helper()
	m, _, _ := testMain(env)
	return m.LoadConfig(m.FlagSet("serve"), serveSpec, args)
}

func TestLoadConfigDefaults(t *testing.T) {
	t.Parallel()
	c, pos, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(pos) != 0 {
		t.Fatalf("positional %q", pos)
	}
	want := Config{
		Listen: "127.0.0.1:8080", DatabaseURL: "sqlite:tiyn.db", LogLevel: slog.LevelInfo, LogFormat: "auto",
		ShutdownTimeout: 20 * time.Second, GroupCommit: true, GroupCommitMaxBatch: sqlstore.DefaultBatchMax,
		GroupCommitWait: sqlstore.DefaultBatchWait, PGDriver: "pgdriver", GroupCommitPartitions: sqlstore.DefaultPartitions,
	}
	if c.Listen != want.Listen || c.DatabaseURL != want.DatabaseURL || c.LogLevel != want.LogLevel ||
		c.LogFormat != want.LogFormat || c.ShutdownTimeout != want.ShutdownTimeout || c.PprofListen != "" || c.MetricsListen != "" ||
		c.TLSCertFile != "" || c.TLSKeyFile != "" ||
		c.DBMaxConns != 0 || c.GroupCommit != want.GroupCommit || c.GroupCommitMaxBatch != want.GroupCommitMaxBatch ||
		c.GroupCommitWait != want.GroupCommitWait || c.PGDriver != want.PGDriver || c.APITokens != nil || c.MonetixProjects != nil ||
		c.GroupCommitPartitions != want.GroupCommitPartitions {
		t.Fatalf("defaults %+v", c)
	}
	o := c.StoreOptions()
	if o.URL != c.DatabaseURL || !o.GroupCommit || o.BatchMax != c.GroupCommitMaxBatch || o.BatchWait != c.GroupCommitWait || o.PGDriver != "pgdriver" ||
		o.Partitions != sqlstore.DefaultPartitions {
		t.Fatalf("store options %+v", o)
	}
}

func TestLoadConfigEnvThenFlag(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"TIYN_LISTEN":                  "127.0.0.1:9000",
		"TIYN_DATABASE_URL":            "postgres://tiyn:pw@127.0.0.1:5432/tiyn?sslmode=disable",
		"TIYN_LOG_LEVEL":               "debug",
		"TIYN_LOG_FORMAT":              "json",
		"TIYN_SHUTDOWN_TIMEOUT":        "5s",
		"TIYN_PPROF":                   "false",
		"TIYN_PPROF_LISTEN":            "127.0.0.1:6060",
		"TIYN_METRICS_LISTEN":          "10.0.0.5:9090",
		"TIYN_TLS_CERT_FILE":           "/etc/tiyn/cert.pem",
		"TIYN_TLS_KEY_FILE":            "/etc/tiyn/key.pem",
		"TIYN_DB_MAX_CONNS":            "12",
		"TIYN_GROUP_COMMIT":            "false",
		"TIYN_GROUP_COMMIT_MAX_BATCH":  "128",
		"TIYN_GROUP_COMMIT_WAIT":       "2ms",
		"TIYN_GROUP_COMMIT_PARTITIONS": "6",
		"TIYN_PG_DRIVER":               "pgx",
		"TIYN_API_TOKENS":              "backoffice:write:" + testTokenSecret + ",reports:read:" + testTokenSecret + "2",
		"TIYN_MONETIX_PROJECTS":        "1234=" + testProjectSecret + ",5678=other-secret-value",
	}
	c, _, err := load(t, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9000" || c.LogLevel != slog.LevelDebug || c.LogFormat != "json" || c.ShutdownTimeout != 5*time.Second ||
		c.PprofListen != "127.0.0.1:6060" || c.MetricsListen != "10.0.0.5:9090" || c.TLSCertFile != "/etc/tiyn/cert.pem" ||
		c.TLSKeyFile != "/etc/tiyn/key.pem" || c.DBMaxConns != 12 || c.GroupCommit || c.GroupCommitMaxBatch != 128 || c.GroupCommitWait != 2*time.Millisecond ||
		c.PGDriver != "pgx" || c.GroupCommitPartitions != 6 {
		t.Fatalf("from env %+v", c)
	}
	if len(c.APITokens) != 2 || c.APITokens[0].Name != "backoffice" || c.APITokens[0].Role != rest.RoleWrite || c.APITokensFrom != "TIYN_API_TOKENS" {
		t.Fatalf("tokens %v from %q", c.APITokens, c.APITokensFrom)
	}
	if len(c.MonetixProjects) != 2 || c.MonetixProjects[0].ID != "1234" || string(c.MonetixProjects[0].Secret) != testProjectSecret {
		t.Fatalf("projects %v", c.MonetixProjects)
	}

	// Every flag wins over its variable.
	c, _, err = load(t, env, "--listen", "localhost:0", "--log-level=warn", "--log-format", "text", "--shutdown-timeout", "1s",
		"--pprof=false", "--pprof-listen", "[::1]:0", "--metrics-listen", "127.0.0.1:0", "--db-max-conns", "3", "--group-commit", "--group-commit-max-batch", "8", "--group-commit-wait", "0s",
		"--group-commit-partitions", "3", "--pg-driver", "pgdriver", "--database-url", "sqlite:x.db", "--api-tokens", "ops:read:"+testTokenSecret,
		"--monetix-projects", "42="+testProjectSecret)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "localhost:0" || c.LogLevel != slog.LevelWarn || c.LogFormat != "text" || c.ShutdownTimeout != time.Second ||
		c.PprofListen != "[::1]:0" || c.MetricsListen != "127.0.0.1:0" || c.DBMaxConns != 3 || !c.GroupCommit || c.GroupCommitMaxBatch != 8 || c.GroupCommitWait != 0 || c.GroupCommitPartitions != 3 ||
		c.PGDriver != "pgdriver" || c.DatabaseURL != "sqlite:x.db" {
		t.Fatalf("from flags %+v", c)
	}
	if len(c.APITokens) != 1 || c.APITokens[0].Name != "ops" || c.APITokensFrom != "--api-tokens" ||
		len(c.MonetixProjects) != 1 || c.MonetixProjects[0].ID != "42" {
		t.Fatalf("secrets from flags: %v %v", c.APITokens, c.MonetixProjects)
	}
}

func TestLoadConfigEmptyEnvIsUnset(t *testing.T) {
	t.Parallel()
	c, _, err := load(t, map[string]string{"TIYN_LISTEN": "", "TIYN_API_TOKENS": "", "TIYN_API_TOKENS_FILE": ""})
	if err != nil || c.Listen != defaultListen || c.APITokens != nil {
		t.Fatalf("config %+v err %v", c, err)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigSecretFiles(t *testing.T) {
	t.Parallel()
	tokens := writeFile(t, "tokens", "# back office\nbackoffice:write:"+testTokenSecret+"\n\nreports:read:"+testTokenSecret+"r\n")
	projects := writeFile(t, "projects", "# prod\n1234="+testProjectSecret+"\n5678=another-secret;sign_answers=true\n")
	c, _, err := load(t, map[string]string{"TIYN_API_TOKENS_FILE": tokens, "TIYN_MONETIX_PROJECTS_FILE": projects})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.APITokens) != 2 || c.APITokens[1].Name != "reports" || c.APITokensFrom != "TIYN_API_TOKENS_FILE="+tokens {
		t.Fatalf("tokens %v from %q", c.APITokens, c.APITokensFrom)
	}
	if len(c.MonetixProjects) != 2 || !c.MonetixProjects[1].SignAnswers {
		t.Fatalf("projects %v", c.MonetixProjects)
	}

	// A flag for either form hides the environment for both: no "both set".
	c, _, err = load(t, map[string]string{"TIYN_API_TOKENS": "old:read:" + testTokenSecret}, "--api-tokens-file", tokens)
	if err != nil || len(c.APITokens) != 2 || !strings.HasPrefix(c.APITokensFrom, "--api-tokens-file=") {
		t.Fatalf("flag file over env value: %v from %q, err %v", c.APITokens, c.APITokensFrom, err)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	t.Parallel()
	big := writeFile(t, "big", strings.Repeat("x", MaxSecretFileBytes+1))
	empty := writeFile(t, "empty", " \n\n")
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // the error starts with the setting's name, then this
	}{
		{"ListenNotHostPort", map[string]string{"TIYN_LISTEN": "abc"}, nil, `TIYN_LISTEN: "abc" is not host:port`},
		{"ListenBadPort", map[string]string{"TIYN_LISTEN": "127.0.0.1:99999"}, nil, `TIYN_LISTEN: "127.0.0.1:99999": port "99999" is not a number`},
		{"ListenNamedPort", map[string]string{"TIYN_LISTEN": "127.0.0.1:http"}, nil, `TIYN_LISTEN: "127.0.0.1:http": port`},
		{"ListenFlag", nil, []string{"--listen", "nope"}, `--listen: "nope" is not host:port`},
		{"DatabaseScheme", map[string]string{"TIYN_DATABASE_URL": "mysql://x"}, nil, `TIYN_DATABASE_URL: "mysql://x" is neither postgres://… nor sqlite:PATH`},
		{"DatabaseSQLiteNoPath", map[string]string{"TIYN_DATABASE_URL": "sqlite:"}, nil, "TIYN_DATABASE_URL: \"sqlite:\" has no file path"},
		{"DatabaseSQLiteParams", map[string]string{"TIYN_DATABASE_URL": "sqlite:x.db?_pragma=foo"}, nil, "TIYN_DATABASE_URL: \"sqlite:x.db?_pragma=foo\": give only the file path"},
		{"DatabasePostgresNoHost", map[string]string{"TIYN_DATABASE_URL": "postgres://u:hunter2secret@/db"}, nil, "TIYN_DATABASE_URL: postgres://u:xxxxx@/db: no host"},
		{"DatabasePostgresBad", map[string]string{"TIYN_DATABASE_URL": "postgres://u:hunter2secret@host:port/db"}, nil, "TIYN_DATABASE_URL: not a valid postgres:// URL"},
		{"DatabaseDSN", map[string]string{"TIYN_DATABASE_URL": "host=x password=hunter2secret"}, nil, "TIYN_DATABASE_URL: the value is neither"},
		{"LogLevel", map[string]string{"TIYN_LOG_LEVEL": "loud"}, nil, `TIYN_LOG_LEVEL: "loud" is not one of debug, info, warn, error`},
		{"LogFormat", map[string]string{"TIYN_LOG_FORMAT": "yaml"}, nil, `TIYN_LOG_FORMAT: "yaml" is not one of auto, json, text`},
		{"ShutdownNotDuration", map[string]string{"TIYN_SHUTDOWN_TIMEOUT": "20"}, nil, `TIYN_SHUTDOWN_TIMEOUT: "20" is not a duration`},
		{"ShutdownZero", map[string]string{"TIYN_SHUTDOWN_TIMEOUT": "0s"}, nil, "TIYN_SHUTDOWN_TIMEOUT: 0s is outside 1ms..10m0s"},
		{"ShutdownHuge", map[string]string{"TIYN_SHUTDOWN_TIMEOUT": "1h"}, nil, "TIYN_SHUTDOWN_TIMEOUT: 1h0m0s is outside"},
		{"Pprof", map[string]string{"TIYN_PPROF": "yes"}, nil, `TIYN_PPROF: "yes" is not true or false`},
		{"PprofFlag", nil, []string{"--pprof=maybe"}, `--pprof: "maybe" is not true or false`},
		{"PprofTrue", map[string]string{"TIYN_PPROF": "true"}, nil, "TIYN_PPROF: is no longer supported: /debug/pprof is not served on the main listener any more; set TIYN_PPROF_LISTEN"},
		{"PprofBareFlag", nil, []string{"--pprof"}, "--pprof: is no longer supported"},
		{"PprofListenPublic", map[string]string{"TIYN_PPROF_LISTEN": "0.0.0.0:6060"}, nil, `TIYN_PPROF_LISTEN: "0.0.0.0:6060" is not a loopback address`},
		{"PprofListenAllInterfaces", map[string]string{"TIYN_PPROF_LISTEN": ":6060"}, nil, `TIYN_PPROF_LISTEN: ":6060" is not a loopback address`},
		{"PprofListenLAN", nil, []string{"--pprof-listen", "192.168.1.5:6060"}, `--pprof-listen: "192.168.1.5:6060" is not a loopback address`},
		{"PprofListenHostname", map[string]string{"TIYN_PPROF_LISTEN": "myhost:6060"}, nil, "is not a loopback address"},
		{"PprofListenBad", map[string]string{"TIYN_PPROF_LISTEN": "6060"}, nil, `TIYN_PPROF_LISTEN: "6060" is not host:port`},
		{"MetricsListenBad", map[string]string{"TIYN_METRICS_LISTEN": "127.0.0.1:x"}, nil, "TIYN_METRICS_LISTEN: \"127.0.0.1:x\": port"},
		{"TLSCertOnly", map[string]string{"TIYN_TLS_CERT_FILE": "/c.pem"}, nil, "TIYN_TLS_CERT_FILE and TIYN_TLS_KEY_FILE: set both (HTTPS) or neither"},
		{"TLSKeyOnly", nil, []string{"--tls-key-file", "/k.pem"}, "TIYN_TLS_CERT_FILE and TIYN_TLS_KEY_FILE: set both"},
		{"MaxConnsText", map[string]string{"TIYN_DB_MAX_CONNS": "many"}, nil, `TIYN_DB_MAX_CONNS: "many" is not a whole number`},
		{"MaxConnsNegative", map[string]string{"TIYN_DB_MAX_CONNS": "-1"}, nil, "TIYN_DB_MAX_CONNS: -1 is outside 0..1000"},
		{"MaxConnsHuge", map[string]string{"TIYN_DB_MAX_CONNS": "1001"}, nil, "TIYN_DB_MAX_CONNS: 1001 is outside"},
		{"GroupCommit", map[string]string{"TIYN_GROUP_COMMIT": "on"}, nil, `TIYN_GROUP_COMMIT: "on" is not true or false`},
		{"BatchZero", map[string]string{"TIYN_GROUP_COMMIT_MAX_BATCH": "0"}, nil, "TIYN_GROUP_COMMIT_MAX_BATCH: 0 is outside 1..4096"},
		{"PartitionsZero", map[string]string{"TIYN_GROUP_COMMIT_PARTITIONS": "0"}, nil, "TIYN_GROUP_COMMIT_PARTITIONS: 0 is outside 1..64"},
		{"PartitionsHuge", map[string]string{"TIYN_GROUP_COMMIT_PARTITIONS": "65"}, nil, "TIYN_GROUP_COMMIT_PARTITIONS: 65 is outside"},
		{"WaitNegative", map[string]string{"TIYN_GROUP_COMMIT_WAIT": "-1ms"}, nil, "TIYN_GROUP_COMMIT_WAIT: -1ms is outside 0s..1s"},
		{"WaitHuge", map[string]string{"TIYN_GROUP_COMMIT_WAIT": "2s"}, nil, "TIYN_GROUP_COMMIT_WAIT: 2s is outside"},
		{"PGDriver", map[string]string{"TIYN_PG_DRIVER": "lib/pq"}, nil, `TIYN_PG_DRIVER: "lib/pq" is not one of pgdriver, pgx`},
		{"TokensRole", map[string]string{"TIYN_API_TOKENS": "ops:admin:" + testTokenSecret}, nil, "TIYN_API_TOKENS: API token entry 1 (ops): unknown role"},
		{"TokensShort", map[string]string{"TIYN_API_TOKENS": "ops:read:short"}, nil, "TIYN_API_TOKENS: API token entry 1 (ops): token shorter"},
		{"TokensFlag", nil, []string{"--api-tokens", testTokenSecret}, "--api-tokens: API token entry 1"},
		{"TokensBoth", map[string]string{"TIYN_API_TOKENS": "a:read:" + testTokenSecret, "TIYN_API_TOKENS_FILE": missing}, nil,
			"TIYN_API_TOKENS and TIYN_API_TOKENS_FILE are both set"},
		{"TokensFileMissing", map[string]string{"TIYN_API_TOKENS_FILE": missing}, nil, "TIYN_API_TOKENS_FILE: open " + missing},
		{"TokensFileEmpty", map[string]string{"TIYN_API_TOKENS_FILE": empty}, nil, "TIYN_API_TOKENS_FILE: " + empty + " is empty"},
		{"TokensFileBig", map[string]string{"TIYN_API_TOKENS_FILE": big}, nil, "TIYN_API_TOKENS_FILE: " + big + " is larger than"},
		{"ProjectsID", map[string]string{"TIYN_MONETIX_PROJECTS": "abc=" + testProjectSecret}, nil, "TIYN_MONETIX_PROJECTS: invalid monetix projects: entry 1"},
		{"ProjectsNoSecret", map[string]string{"TIYN_MONETIX_PROJECTS": "1234="}, nil, "TIYN_MONETIX_PROJECTS: invalid monetix projects"},
		{"ProjectsDuplicate", map[string]string{"TIYN_MONETIX_PROJECTS": "1=" + testProjectSecret + ",1=" + testProjectSecret}, nil, "duplicates entry 1"},
		{"ProjectsBoth", map[string]string{"TIYN_MONETIX_PROJECTS": "1=" + testProjectSecret, "TIYN_MONETIX_PROJECTS_FILE": missing}, nil,
			"TIYN_MONETIX_PROJECTS and TIYN_MONETIX_PROJECTS_FILE are both set"},
		{"ProjectsFileFlag", nil, []string{"--monetix-projects-file", missing}, "--monetix-projects-file: open"},
		{"UnknownFlag", nil, []string{"--lisen", "x"}, "flag provided but not defined: -lisen (see tiyn serve --help)"},
		{"FlagWithoutValue", nil, []string{"--listen"}, "flag needs an argument: -listen"},
	}
	secrets := []string{testTokenSecret, testProjectSecret, "hunter2secret"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := load(t, tc.env, tc.args...)
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want a usage error", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %q\nwant  %q", err, tc.want)
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error text leaks a secret: %q", err)
				}
			}
		})
	}
}

func TestLoadConfigReportsEveryBadSetting(t *testing.T) {
	t.Parallel()
	_, _, err := load(t, map[string]string{
		"TIYN_LISTEN": "abc", "TIYN_LOG_LEVEL": "loud", "TIYN_PG_DRIVER": "x",
		"TIYN_API_TOKENS": "ops:admin:" + testTokenSecret,
	}, "--db-max-conns", "-5")
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, name := range []string{"5 invalid settings:", "TIYN_LISTEN:", "TIYN_LOG_LEVEL:", "TIYN_PG_DRIVER:", "TIYN_API_TOKENS:", "--db-max-conns:"} {
		if !strings.Contains(msg, name) {
			t.Errorf("error lacks %q:\n%s", name, msg)
		}
	}
	if strings.Contains(msg, testTokenSecret) {
		t.Errorf("error leaks the token")
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	raw := "ops:read:" + testTokenSecret + ",1234=" + testProjectSecret + ";sign_answers=true,x:y:abc"
	msg := "bad " + testTokenSecret + " and " + testProjectSecret + " but abc and ops stay"
	got := redact(msg, raw)
	if strings.Contains(got, testTokenSecret) || strings.Contains(got, testProjectSecret) {
		t.Fatalf("redact left a secret: %q", got)
	}
	if !strings.Contains(got, "abc and ops stay") || strings.Count(got, "[redacted]") != 2 {
		t.Fatalf("redact = %q", got)
	}
}

func TestHelpListsEverySetting(t *testing.T) {
	t.Parallel()
	m, stdout, stderr := testMain(nil)
	code, err := run(t, m, "serve", "--help")
	if code != exitOK || !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("exit %d err %v (stderr %q)", code, err, stderr)
	}
	out := stdout.String()
	if len(settings) < 15 {
		t.Fatalf("only %d settings in the table", len(settings))
	}
	for _, s := range settings {
		if !strings.Contains(out, s.Env+", --"+s.Flag) {
			t.Errorf("help lacks %s / --%s", s.Env, s.Flag)
		}
		if s.Default != "" && !strings.Contains(out, "(default "+s.Default+")") {
			t.Errorf("help lacks the default of %s (%s)", s.Env, s.Default)
		}
	}
	for _, fixed := range []string{"TIYN_LISTEN", "TIYN_DATABASE_URL", "TIYN_MONETIX_PROJECTS_FILE", "TIYN_API_TOKENS_FILE",
		"default 127.0.0.1:8080", "default sqlite:tiyn.db", "--pprof[=BOOL]", "TIYN_PPROF_LISTEN, --pprof-listen HOST:PORT",
		"TIYN_METRICS_LISTEN", "TIYN_TLS_CERT_FILE", "TIYN_TLS_KEY_FILE", "TIYN_DATABASE_URL_FILE", "%3B", "[[project]]"} {
		if !strings.Contains(out, fixed) {
			t.Errorf("help lacks %q", fixed)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if len(line) > helpWidth+40 {
			t.Errorf("help line too long (%d): %q", len(line), line)
		}
	}

	// Commands see only their own settings.
	m, stdout, _ = testMain(nil)
	if code, _ := run(t, m, "statement", "-h"); code != exitOK {
		t.Fatalf("statement -h: exit %d", code)
	}
	if out := stdout.String(); !strings.Contains(out, "TIYN_DATABASE_URL") || strings.Contains(out, "TIYN_API_TOKENS") ||
		!strings.Contains(out, "--csv") || !strings.Contains(out, "--from TIME") {
		t.Errorf("statement help:\n%s", out)
	}
}

func TestWrap(t *testing.T) {
	t.Parallel()
	got := wrap("aaa bbb ccc "+strings.Repeat("x", 30), 2, 12)
	want := "  aaa bbb\n  ccc\n  " + strings.Repeat("x", 30) + "\n"
	if got != want {
		t.Fatalf("wrap = %q, want %q", got, want)
	}
	if wrap("", 2, 10) != "" {
		t.Fatal("wrap of nothing is not nothing")
	}
}
