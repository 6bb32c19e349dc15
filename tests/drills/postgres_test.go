package drills_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	// The drills administer PostgreSQL through database/sql and pgx.
	_ "github.com/jackc/pgx/v5/stdlib"
)

// PostgreSQL the drills use: TIYN_TEST_POSTGRES_URL when set, else the
// local trust-auth superuser. Its user must be able to create databases.
const (
	envPostgresURL   = "TIYN_TEST_POSTGRES_URL"
	localPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	// pgProbeTimeout bounds the first connection: a loopback server
	// answers in milliseconds.
	pgProbeTimeout = 3 * time.Second
	// pgBinDir is where Debian puts the PostgreSQL 15 server programs; PATH
	// is tried first.
	pgBinDir = "/usr/lib/postgresql/15/bin"
	// pgOSUser owns a private cluster when the drills run as root (initdb
	// refuses to run as root).
	pgOSUser = "postgres"
)

const sigterm = syscall.SIGTERM

// adminPostgres returns an admin URL and connection, or skips the test
// (fails it when CI is set) when no PostgreSQL answers.
func adminPostgres(t *testing.T) (string, *sql.DB) {
	t.Helper()
	admin := os.Getenv(envPostgresURL)
	if admin == "" {
		admin = localPostgresURL
	}
	db, err := sql.Open("pgx", admin)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), pgProbeTimeout)
		err = db.PingContext(ctx)
		cancel()
	}
	if err != nil {
		if db != nil {
			_ = db.Close()
		}
		msg := fmt.Sprintf("no PostgreSQL at %s (set %s): %v", redact(admin), envPostgresURL, err)
		if os.Getenv(envCI) != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { _ = db.Close() })
	return admin, db
}

// freshPostgres creates an empty database for one drill (tiyn serve
// migrates it) and drops it afterwards, connections and all.
func freshPostgres(t *testing.T) string {
	t.Helper()
	admin, db := adminPostgres(t)
	name := "tiyn_drill_" + randomHex(t, 6)
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return withDatabase(t, admin, name)
}

// withDatabase returns raw with its database replaced by name.
func withDatabase(t testing.TB, raw, name string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("postgres URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// redact hides a password in a URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// terminateBackends ends every connection to database name but the
// caller's, as an operator or a failover would, and returns how many.
func terminateBackends(ctx context.Context, db *sql.DB, name string) (int, error) {
	rows, err := db.QueryContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid()`, name)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var ok bool
		if err := rows.Scan(&ok); err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, rows.Err()
}

// cluster is a private PostgreSQL server a drill owns: initdb into a
// temporary directory, started on a free port, so it can be stopped and
// started under load without disturbing anyone else.
type cluster struct {
	t       *testing.T
	dir     string // owned by the cluster's OS user
	port    int
	binDir  string
	asUser  string // "" when the drills do not run as root
	stopped bool
}

// findPGBin returns the directory holding initdb and pg_ctl.
func findPGBin() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	if _, err := os.Stat(filepath.Join(pgBinDir, "pg_ctl")); err == nil {
		return pgBinDir, nil
	}
	return "", errors.New("initdb and pg_ctl not found (PATH or " + pgBinDir + ")")
}

// newCluster creates and starts a private cluster, or skips when the
// machine cannot host one (no server binaries; root without a postgres
// user).
func newCluster(t *testing.T) *cluster {
	t.Helper()
	binDir, err := findPGBin()
	if err != nil {
		t.Skipf("private PostgreSQL cluster: %v", err)
	}
	c := &cluster{t: t, binDir: binDir}
	dir, err := os.MkdirTemp("", "tiyn-drill-pg-")
	if err != nil {
		t.Fatal(err)
	}
	c.dir = dir
	t.Cleanup(func() {
		c.stop("immediate")
		_ = os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		u, err := user.Lookup(pgOSUser)
		if err != nil {
			t.Skipf("private PostgreSQL cluster: running as root and no %q user to own it: %v", pgOSUser, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		c.asUser = pgOSUser
	}
	addr := freePort(t)
	c.port, _ = strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
	if out, err := c.run("initdb", "-D", c.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		t.Skipf("private PostgreSQL cluster: initdb: %v\n%s", err, out)
	}
	c.start()
	return c
}

func (c *cluster) data() string { return filepath.Join(c.dir, "data") }

// url is the cluster's admin URL for database name.
func (c *cluster) url(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, name)
}

// run runs a server program as the cluster's owner.
func (c *cluster) run(program string, args ...string) ([]byte, error) {
	path := filepath.Join(c.binDir, program)
	var cmd *exec.Cmd
	if c.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.dir
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
		}
		<-done
		err = fmt.Errorf("%s: timed out", program)
	}
	return out, err
}

// start starts the cluster and waits until it accepts connections.
func (c *cluster) start() {
	c.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=100", c.port, c.dir)
	if out, err := c.run("pg_ctl", "-D", c.data(), "-l", filepath.Join(c.dir, "server.log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		c.t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	c.stopped = false
}

// stop stops the cluster: mode "fast" (clean, connections cut) or
// "immediate" (like a crash: recovery from the WAL at the next start).
func (c *cluster) stop(mode string) {
	if c.stopped || c.dir == "" {
		return
	}
	if _, err := os.Stat(filepath.Join(c.data(), "postmaster.pid")); err != nil {
		c.stopped = true
		return
	}
	if out, err := c.run("pg_ctl", "-D", c.data(), "-m", mode, "-w", "-t", "60", "stop"); err != nil {
		c.t.Errorf("pg_ctl stop -m %s: %v\n%s", mode, err, out)
	}
	c.stopped = true
}

// createDatabase creates name on the running cluster.
func (c *cluster) createDatabase(name string) {
	c.t.Helper()
	db, err := sql.Open("pgx", c.url("postgres"))
	if err != nil {
		c.t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		c.t.Fatalf("create database on the private cluster: %v", err)
	}
}
