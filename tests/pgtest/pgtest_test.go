package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/peterldowns/pgtestdb"

	"github.com/tiyn/tiyn/adapters/sqlstore"
)

func TestConfigFromURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		raw     string
		want    pgtestdb.Config
		wantErr string
	}{
		{name: "OK local default", raw: LocalURL, want: pgtestdb.Config{DriverName: "pgx", Host: "127.0.0.1", Port: "5432",
			User: "postgres", Database: "postgres", Options: "sslmode=disable"}},
		{name: "OK full", raw: "postgres://tiyn:s3cret@db.example:6543/ledger?sslmode=require&application_name=t",
			want: pgtestdb.Config{DriverName: "pgx", Host: "db.example", Port: "6543", User: "tiyn", Password: "s3cret",
				Database: "ledger", Options: "application_name=t&sslmode=require"}},
		{name: "OK postgresql scheme, defaults", raw: "postgresql://u:p@h",
			want: pgtestdb.Config{DriverName: "pgx", Host: "h", Port: "5432", User: "u", Password: "p", Database: "postgres",
				Options: "sslmode=disable"}},
		{name: "OK IPv6 host is bracketed", raw: "postgres://u@[::1]:5433/d",
			want: pgtestdb.Config{DriverName: "pgx", Host: "[::1]", Port: "5433", User: "u", Database: "d", Options: "sslmode=disable"}},
		{name: "ErrScheme", raw: "mysql://u:p@h/d", wantErr: "scheme"},
		{name: "ErrSQLiteURL", raw: "sqlite:/tmp/x.db", wantErr: "scheme"},
		{name: "ErrNoHost", raw: "postgres:///d?host=/tmp", wantErr: "host"},
		{name: "ErrNoUser", raw: "postgres://h:5432/d", wantErr: "user"},
		{name: "ErrPasswordNeedsEscaping", raw: "postgres://u:p%40ss@h/d", wantErr: "escaping"},
		{name: "ErrBadDatabase", raw: "postgres://u@h/a/b", wantErr: "database"},
		{name: "ErrUnparsable", raw: "postgres://u@h:port/d", wantErr: "parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := configFromURL(tt.raw)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("configFromURL(%q) error = %v, want one mentioning %q", tt.raw, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error leaks the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("configFromURL(%q): %v", tt.raw, err)
			}
			if got != tt.want {
				t.Fatalf("configFromURL(%q)\n got %+v\nwant %+v", tt.raw, got, tt.want)
			}
		})
	}
}

func TestInstanceURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		conf pgtestdb.Config
		want string
	}{
		{pgtestdb.Config{Host: "127.0.0.1", Port: "5432", User: "pgtdbuser", Password: "pgtdbpass",
			Database: "testdb_tpl_x_inst_y", Options: "sslmode=disable"},
			"postgres://pgtdbuser:pgtdbpass@127.0.0.1:5432/testdb_tpl_x_inst_y?sslmode=disable"},
		{pgtestdb.Config{Host: "[::1]", Port: "5433", User: "u", Password: "p", Database: "d", Options: "sslmode=disable"},
			"postgres://u:p@[::1]:5433/d?sslmode=disable"},
	}
	for _, tt := range tests {
		got := instanceURL(tt.conf)
		if got != tt.want {
			t.Errorf("instanceURL(%+v) = %q, want %q", tt.conf, got, tt.want)
		}
		// The URL must parse back into the same connection.
		back, err := configFromURL(got)
		if err != nil {
			t.Fatalf("configFromURL(instanceURL) = %v", err)
		}
		back.DriverName = ""
		if back != tt.conf {
			t.Errorf("round trip: got %+v, want %+v", back, tt.conf)
		}
	}
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ci       string
		wantFail bool
	}{
		{"", false},
		{"1", true},
		{"true", true},
		{"false", true}, // any non-empty value counts: the variable's presence is the signal
	}
	for _, tt := range tests {
		fail, msg := unavailable(tt.ci, []string{"local: connection refused"})
		if fail != tt.wantFail {
			t.Errorf("unavailable(CI=%q) fail = %v, want %v", tt.ci, fail, tt.wantFail)
		}
		if !strings.Contains(msg, EnvURL) || !strings.Contains(msg, "connection refused") {
			t.Errorf("unavailable(CI=%q) message %q must name %s and the reasons", tt.ci, msg, EnvURL)
		}
	}
}

func TestPickOrder(t *testing.T) {
	t.Parallel()
	const dockerURL = "postgres://postgres:postgres@localhost:32768/tiyn?sslmode=disable"
	errDown := errors.New("down")
	tests := []struct {
		name        string
		env         string
		dockerErr   error
		dockerURL   string
		localErr    error
		want        string
		wantDocker  int
		wantLocal   int
		wantErr     bool
		wantReasons int
	}{
		{name: "env wins and probes nothing", env: "postgres://u:p@h:1/d", want: SourceEnv},
		{name: "malformed env is an error, no fallback", env: "mysql://x", want: SourceEnv, wantErr: true},
		{name: "docker before local", dockerURL: dockerURL, want: SourceTestcontainers, wantDocker: 1},
		{name: "local when docker is down", dockerErr: errDown, want: SourceLocal, wantDocker: 1, wantLocal: 1, wantReasons: 1},
		{name: "local when docker gives a bad URL", dockerURL: "nonsense://", want: SourceLocal, wantDocker: 1, wantLocal: 1, wantReasons: 1},
		{name: "none", dockerErr: errDown, localErr: errDown, want: SourceNone, wantDocker: 1, wantLocal: 1, wantReasons: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var dockerCalls, localCalls int
			src := pick(probes{
				envURL: tt.env,
				docker: func() (string, error) { dockerCalls++; return tt.dockerURL, tt.dockerErr },
				local:  func() error { localCalls++; return tt.localErr },
			})
			if src.name != tt.want || dockerCalls != tt.wantDocker || localCalls != tt.wantLocal {
				t.Fatalf("pick = %q (docker probed %d, local %d), want %q (%d, %d)",
					src.name, dockerCalls, localCalls, tt.want, tt.wantDocker, tt.wantLocal)
			}
			if (src.err != nil) != tt.wantErr {
				t.Fatalf("pick error = %v, want error %v", src.err, tt.wantErr)
			}
			if len(src.reasons) != tt.wantReasons {
				t.Fatalf("reasons = %q, want %d", src.reasons, tt.wantReasons)
			}
			if tt.want == SourceTestcontainers && (src.admin.Database != "tiyn" || src.admin.Port != "32768") {
				t.Fatalf("container admin config = %+v", src.admin)
			}
		})
	}
}

// TestDockerProbeBounded: whatever this machine has, the probe answers
// within its bound (here: no engine, so an error, at once).
func TestDockerProbeBounded(t *testing.T) {
	t.Parallel()
	start := time.Now()
	err := dockerHealthy()
	elapsed := time.Since(start)
	if elapsed > DockerProbeTimeout+time.Second {
		t.Fatalf("docker probe took %s, bound is %s", elapsed, DockerProbeTimeout)
	}
	if err != nil && !errors.Is(err, errNoDocker) {
		t.Fatalf("docker probe error %v does not wrap errNoDocker", err)
	}
	t.Logf("docker probe: %v in %s", err, elapsed)
}

func TestOpenGivesIsolatedMigratedDatabases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := Open(t, sqlstore.Options{MaxOpenConns: 2})
	b := Open(t, sqlstore.Options{MaxOpenConns: 2, GroupCommit: true})
	switch Source() {
	case SourceEnv, SourceTestcontainers, SourceLocal:
	default:
		t.Fatalf("Source() = %q after a successful Open", Source())
	}
	for _, s := range []*sqlstore.Store{a, b} {
		if s.Dialect() != sqlstore.Postgres {
			t.Fatalf("dialect = %q", s.Dialect())
		}
		applied, err := s.Applied(ctx)
		if err != nil || len(applied) == 0 {
			t.Fatalf("applied migrations = %v, %v", applied, err)
		}
	}
	if _, err := a.DB().ExecContext(ctx, `INSERT INTO audit_log (at_us, actor, action, subject) VALUES (1, 'a', 'x', 'y')`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("second database sees %d rows written in the first: not isolated", n)
	}
}

// databaseExists asks the admin connection whether a database is there.
func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	src := choose()
	db, err := sql.Open(driverName, src.admin.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	var exists bool
	if err := db.QueryRow(`SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	return exists
}

func dbName(t *testing.T, raw string) string {
	t.Helper()
	c, err := configFromURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	return c.Database
}

func TestURLDroppedWhenTestPasses(t *testing.T) {
	t.Parallel()
	var raw string
	t.Run("inner", func(t *testing.T) { raw = URL(t) })
	if raw == "" {
		t.Fatal("inner test got no URL")
	}
	if databaseExists(t, dbName(t, raw)) {
		t.Fatalf("database of a passed test still exists: %s", redact(raw))
	}
}

// failedTB is a testing.TB whose test has failed, with cleanups run by hand.
type failedTB struct {
	testing.TB
	cleanups []func()
}

func (f *failedTB) Failed() bool      { return true }
func (f *failedTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

func TestURLKeptWhenTestFails(t *testing.T) {
	t.Parallel()
	ftb := &failedTB{TB: t}
	raw := URL(ftb)
	for i := len(ftb.cleanups) - 1; i >= 0; i-- {
		ftb.cleanups[i]()
	}
	name := dbName(t, raw)
	if !databaseExists(t, name) {
		t.Fatalf("database of a failed test was dropped: %s", redact(raw))
	}
	db, err := sql.Open(driverName, choose().admin.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	if _, err := db.Exec(`DROP DATABASE "` + name + `"`); err != nil {
		t.Fatal(err)
	}
}
