// Package pgtest hands tests a disposable PostgreSQL database (docs/architecture.md §7).
//
// Each call to URL or Open gets a fresh database cloned from a migrated
// template (peterldowns/pgtestdb): tens of milliseconds per test, safe under
// t.Parallel(), dropped when the test passes and kept (its URL logged) when
// it fails, so the evidence survives.
//
// The server comes from the first of these that works, chosen once per test
// binary:
//
//  1. TIYN_TEST_POSTGRES_URL, when set ("env");
//  2. a PostgreSQL container started by testcontainers-go, when a Docker
//     engine answers ("testcontainers");
//  3. the local server at LocalURL, when it answers within LocalProbeTimeout
//     ("local").
//
// When none works the test is skipped with a message naming
// TIYN_TEST_POSTGRES_URL — or failed when the CI variable is set, so that
// PostgreSQL coverage cannot vanish silently from a CI run.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	// pgtestdb connects through database/sql; "pgx" is the driver name it
	// is configured with below.
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/peterldowns/pgtestdb"

	"github.com/tiyn/tiyn/adapters/sqlstore"
)

// EnvURL names the environment variable that points the tests at a
// PostgreSQL server (docs/architecture.md §6). Its user must be able to create roles
// and databases: pgtestdb creates a template and one database per test.
const EnvURL = "TIYN_TEST_POSTGRES_URL"

// EnvCI is the variable CI systems set; when it is non-empty a missing
// PostgreSQL fails the test instead of skipping it.
const EnvCI = "CI"

// LocalURL is the local server tried last: the usual trust-auth superuser on
// the loopback interface.
const LocalURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// LocalProbeTimeout bounds the local server's answer. A server on loopback
// answers in milliseconds; waiting longer only delays the skip.
const LocalProbeTimeout = 2 * time.Second

// driverName is the database/sql driver pgtestdb uses for its admin and
// template connections.
const driverName = "pgx"

// defaultPort is PostgreSQL's port when a URL names none.
const defaultPort = "5432"

// Source names: what Source reports.
const (
	SourceEnv            = "env"
	SourceTestcontainers = "testcontainers"
	SourceLocal          = "local"
	// SourceNone: no server could be found; tests skip (or fail on CI).
	SourceNone = "none"
)

// source is the server chosen for this test binary: its name, the admin
// connection pgtestdb works with, and why the earlier candidates were passed
// over (for the skip message and the logs).
type source struct {
	name    string
	admin   pgtestdb.Config
	reasons []string
	err     error // set when the chosen source is unusable (a malformed env URL)
}

var chosen struct {
	once sync.Once
	src  source
}

// choose picks the server once per test binary.
func choose() source {
	chosen.once.Do(func() {
		chosen.src = pick(probes{
			envURL: os.Getenv(EnvURL),
			docker: startContainer,
			local:  probeLocal,
		})
	})
	return chosen.src
}

// probes are the ways pick can find a server; tests replace them.
type probes struct {
	envURL string
	// docker returns the admin URL of a running container, or an error when
	// no Docker engine answers or the container did not start.
	docker func() (string, error)
	// local returns nil when the local server answers.
	local func() error
}

// pick applies the order of the package comment: env, testcontainers,
// local, none. An env URL is used as given, even when it does not parse: a
// configured URL that cannot work must fail the tests, not make them fall
// back to another server.
func pick(p probes) source {
	if p.envURL != "" {
		conf, err := configFromURL(p.envURL)
		if err != nil {
			err = fmt.Errorf("%s: %w", EnvURL, err)
		}
		return source{name: SourceEnv, admin: conf, err: err}
	}
	var reasons []string
	if raw, err := p.docker(); err == nil {
		conf, err := configFromURL(raw)
		if err == nil {
			return source{name: SourceTestcontainers, admin: conf}
		}
		reasons = append(reasons, fmt.Sprintf("testcontainers: %v", err))
	} else {
		reasons = append(reasons, fmt.Sprintf("testcontainers: %v", err))
	}
	if err := p.local(); err == nil {
		conf, err := configFromURL(LocalURL)
		if err == nil {
			return source{name: SourceLocal, admin: conf, reasons: reasons}
		}
		reasons = append(reasons, fmt.Sprintf("local: %v", err))
	} else {
		reasons = append(reasons, fmt.Sprintf("local %s: %v", redact(LocalURL), err))
	}
	return source{name: SourceNone, reasons: reasons}
}

// Source reports which server this test binary uses: SourceEnv,
// SourceTestcontainers, SourceLocal or SourceNone. The first call makes the
// choice (and may start a container).
func Source() string { return choose().name }

// URL returns a connection URL to a fresh, migrated PostgreSQL database for
// this test, in the postgres://user:pass@host:port/db?sslmode=… form that
// sqlstore.Open takes. The database is dropped when the test passes and kept
// (and logged) when it fails. Without a server the test is skipped, or
// failed when CI is set.
func URL(tb testing.TB) string {
	tb.Helper()
	src := choose()
	if src.err != nil {
		tb.Fatalf("pgtest: %v", src.err)
	}
	if src.name == SourceNone {
		fail, msg := unavailable(os.Getenv(EnvCI), src.reasons)
		if fail {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	inst := pgtestdb.Custom(tb, src.admin, migrator{})
	tb.Logf("pgtest: PostgreSQL from %s", src.name)
	return instanceURL(*inst)
}

// Open returns a store on a fresh database from URL, closed when the test
// ends (before the database is dropped). opts.URL is overwritten; the other
// options (group commit, pool size, driver) are the caller's.
func Open(tb testing.TB, opts sqlstore.Options) *sqlstore.Store {
	tb.Helper()
	opts.URL = URL(tb)
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, opts)
	if err != nil {
		tb.Fatalf("pgtest: open store: %v", err)
	}
	// Registered after pgtestdb's cleanup, so it runs before it: the
	// database can only be dropped once nobody is connected.
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("pgtest: close store: %v", err)
		}
	})
	if err := s.Ping(ctx); err != nil {
		tb.Fatalf("pgtest: fresh database is not usable: %v", err)
	}
	return s
}

// unavailable decides what a test does when no server was found: skip with
// a message naming EnvURL, or fail when ci (the CI variable) is non-empty.
func unavailable(ci string, reasons []string) (fail bool, msg string) {
	msg = fmt.Sprintf("pgtest: no PostgreSQL available; set %s=postgres://user:pass@host:port/db?sslmode=disable", EnvURL)
	if len(reasons) > 0 {
		msg += " (" + strings.Join(reasons, "; ") + ")"
	}
	if ci != "" {
		return true, msg + fmt.Sprintf("; failing instead of skipping because %s=%q", EnvCI, ci)
	}
	return false, msg
}

// migrator implements pgtestdb.Migrator with Tiyn's embedded PostgreSQL
// migrations. The hash covers every migration's name and SQL, so a changed
// migration makes a new template.
type migrator struct{}

// Hash identifies the schema the template is built with.
func (migrator) Hash() (string, error) { return sqlstore.MigrationsHash(sqlstore.Postgres) }

// Migrate builds the template's schema.
func (migrator) Migrate(ctx context.Context, db *sql.DB, _ pgtestdb.Config) error {
	return sqlstore.MigratePostgresDB(ctx, db)
}

var _ pgtestdb.Migrator = migrator{}

// configFromURL turns a postgres:// URL into the admin connection pgtestdb
// works with. The port defaults to 5432, the database to "postgres", and
// sslmode to disable; other query parameters are kept. pgtestdb pastes user
// and password into its URLs unescaped, so characters that would need
// escaping are refused here rather than failing obscurely later.
func configFromURL(raw string) (pgtestdb.Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return pgtestdb.Config{}, fmt.Errorf("parse PostgreSQL URL %s: %w", redact(raw), err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return pgtestdb.Config{}, fmt.Errorf("PostgreSQL URL %s: scheme must be postgres or postgresql", redact(raw))
	}
	host := u.Hostname()
	if host == "" {
		return pgtestdb.Config{}, fmt.Errorf("PostgreSQL URL %s: needs a host (sockets are not supported)", redact(raw))
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6, bracketed so host:port stays unambiguous
	}
	port := u.Port()
	if port == "" {
		port = defaultPort
	}
	if u.User == nil || u.User.Username() == "" {
		return pgtestdb.Config{}, fmt.Errorf("PostgreSQL URL %s: needs a user", redact(raw))
	}
	user := u.User.Username()
	password, _ := u.User.Password()
	if url.UserPassword(user, password).String() != user+":"+password {
		return pgtestdb.Config{}, fmt.Errorf("PostgreSQL URL %s: user and password must not need URL escaping", redact(raw))
	}
	database := strings.TrimPrefix(u.Path, "/")
	if database == "" {
		database = "postgres"
	}
	if strings.Contains(database, "/") {
		return pgtestdb.Config{}, fmt.Errorf("PostgreSQL URL %s: bad database name %q", redact(raw), database)
	}
	query := u.Query()
	if query.Get("sslmode") == "" {
		query.Set("sslmode", "disable")
	}
	return pgtestdb.Config{
		DriverName: driverName,
		Host:       host,
		Port:       port,
		User:       user,
		Password:   password,
		Database:   database,
		Options:    query.Encode(),
	}, nil
}

// instanceURL is the URL of a pgtestdb database in the form sqlstore.Open
// (pgdriver or pgx) accepts.
func instanceURL(c pgtestdb.Config) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(c.User, c.Password),
		Host:     c.Host + ":" + c.Port,
		Path:     "/" + c.Database,
		RawQuery: c.Options,
	}
	return u.String()
}

// probeLocal reports whether the local server answers a ping within
// LocalProbeTimeout. A closed port fails at once; the timeout only matters
// for a server that accepts and then hangs.
func probeLocal() error {
	ctx, cancel := context.WithTimeout(context.Background(), LocalProbeTimeout)
	defer cancel()
	conf, err := configFromURL(LocalURL)
	if err != nil {
		return err
	}
	// A plain TCP dial first: when nothing listens, this is the cheapest and
	// quietest way to find out.
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(strings.Trim(conf.Host, "[]"), conf.Port))
	if err != nil {
		return err
	}
	_ = conn.Close()
	db, err := sql.Open(driverName, conf.URL())
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	if err := db.PingContext(ctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no answer within %s: %w", LocalProbeTimeout, err)
		}
		return err
	}
	return nil
}

// redact hides a URL's password for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
