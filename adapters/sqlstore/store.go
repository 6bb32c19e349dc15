// Package sqlstore is Tiyn's store: one bun-based implementation of
// ports.Store for PostgreSQL (through bun's pgdriver, or pgx in simple
// protocol mode) and for SQLite (through sqliteshim, pure Go, so
// CGO_ENABLED=0 builds work).
//
// Both dialects run the same SQL, written by hand and formatted by bun
// (values are inlined, which is why pgdriver is fast here: no statement is
// prepared). Times are BIGINT microseconds on both. Driver errors become
// port errors in one function, classify (errors.go).
//
// Exactly-once crediting, on both dialects: a deposit's transition is a
// conditional UPDATE (… WHERE status = $from), balances change with an
// atomic "balance = balance + x" UPDATE (no read-modify-write, no shared
// hot row: the clearing account's balance is derived from its postings),
// and a partial unique index allows one credit transfer per deposit. On
// PostgreSQL two transactions racing on a deposit serialise on the row
// lock the UPDATE takes; on SQLite there is one writer at a time.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/tiyn/tiyn/ports"
)

// Dialect names.
const (
	Postgres = "postgres"
	SQLite   = "sqlite"
)

// PostgreSQL drivers (Options.PGDriver). pgdriver is bun's own and measured
// fastest for this workload; pgx is kept in simple-protocol mode so it, too,
// sends bun's inlined statements without preparing each distinct text.
const (
	DriverPG  = "pgdriver"
	DriverPGX = "pgx"
)

// Defaults for Options.
const (
	// DefaultBatchMax bounds how many Update calls share one group-commit
	// transaction. Big enough to amortise a commit over many callbacks,
	// small enough that one transaction never holds locks for long.
	DefaultBatchMax = 64
	// DefaultBatchWait bounds how long a group-commit worker waits for more
	// work once it has some. Zero would still coalesce what is already
	// queued; a little wait helps at moderate load.
	DefaultBatchWait = 500 * time.Microsecond
	// DefaultSQLiteBusyTimeout is how long SQLite waits for another
	// process's write lock before giving up (SQLITE_BUSY).
	DefaultSQLiteBusyTimeout = 5 * time.Second
	// batchTimeout bounds one group-commit transaction from BEGIN to COMMIT.
	batchTimeout = 30 * time.Second
)

// Options configure Open.
type Options struct {
	// URL is "postgres://…" (or "postgresql://…") or "sqlite:PATH" (also
	// "sqlite://PATH" and "file:PATH").
	URL string
	// PGDriver picks the PostgreSQL driver: DriverPG (default) or DriverPGX.
	PGDriver string
	// MaxOpenConns sizes the PostgreSQL pool (default 4×GOMAXPROCS+4) and
	// the SQLite read pool. SQLite always has exactly one writer connection.
	MaxOpenConns int
	// GroupCommit coalesces concurrent Update calls into one transaction.
	GroupCommit bool
	// BatchMax and BatchWait bound a group-commit batch (defaults above).
	BatchMax  int
	BatchWait time.Duration
	// Workers is how many group-commit transactions may run at once on
	// PostgreSQL (default 4). SQLite has one writer, so one worker.
	Workers int
}

// Store implements ports.Store.
type Store struct {
	dialect string
	write   *bun.DB // all transactions
	read    *bun.DB // reads outside transactions; == write on PostgreSQL
	reader
	batcher *batcher
	txOpts  *sql.TxOptions
}

var _ ports.Store = (*Store)(nil)

// Open connects to the database named by opts.URL. It does not migrate:
// call Migrate (tiyn serve does, at start).
func Open(ctx context.Context, opts Options) (*Store, error) {
	dialect, dsn, err := parseURL(opts.URL)
	if err != nil {
		return nil, err
	}
	s := &Store{dialect: dialect}
	switch dialect {
	case Postgres:
		err = s.openPostgres(dsn, opts)
	case SQLite:
		err = s.openSQLite(dsn, opts)
	}
	if err != nil {
		return nil, err
	}
	s.reader = reader{db: s.read, dialect: dialect}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.write.PingContext(pingCtx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("open %s store: %w", dialect, classify(err))
	}
	if opts.GroupCommit {
		workers := opts.Workers
		if workers <= 0 {
			workers = 4
		}
		if dialect == SQLite {
			workers = 1
		}
		s.batcher = newBatcher(s, cmpOr(opts.BatchMax, DefaultBatchMax), cmpOr(opts.BatchWait, DefaultBatchWait), workers)
	}
	return s, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func parseURL(raw string) (dialect, dsn string, err error) {
	switch {
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		return Postgres, raw, nil
	case strings.HasPrefix(raw, "sqlite://"):
		return SQLite, strings.TrimPrefix(raw, "sqlite://"), nil
	case strings.HasPrefix(raw, "sqlite:"):
		return SQLite, strings.TrimPrefix(raw, "sqlite:"), nil
	case strings.HasPrefix(raw, "file:"):
		return SQLite, strings.TrimPrefix(raw, "file:"), nil
	}
	return "", "", fmt.Errorf("database URL must start with postgres:// or sqlite: (got %q)", redactURL(raw))
}

// redactURL hides a password in a URL so it can go into an error or a log.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if len(raw) > 64 {
			return raw[:64] + "…"
		}
		return raw
	}
	return u.Redacted()
}

func (s *Store) openPostgres(dsn string, opts Options) error {
	var sqldb *sql.DB
	switch cmpOr(opts.PGDriver, DriverPG) {
	case DriverPG:
		sqldb = sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn),
			pgdriver.WithTimeout(10*time.Second), pgdriver.WithReadTimeout(30*time.Second), pgdriver.WithWriteTimeout(10*time.Second)))
	case DriverPGX:
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return fmt.Errorf("postgres URL %s: %w", redactURL(dsn), err)
		}
		cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
		sqldb = stdlib.OpenDB(*cfg)
	default:
		return fmt.Errorf("unknown PostgreSQL driver %q (want %s or %s)", opts.PGDriver, DriverPG, DriverPGX)
	}
	conns := cmpOr(opts.MaxOpenConns, 4*runtime.GOMAXPROCS(0)+4)
	sqldb.SetMaxOpenConns(conns)
	sqldb.SetMaxIdleConns(conns)
	sqldb.SetConnMaxIdleTime(5 * time.Minute)
	s.write = bun.NewDB(sqldb, pgdialect.New(), bun.WithDiscardUnknownColumns())
	s.read = s.write
	s.txOpts = &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	return nil
}

// openSQLite opens two pools on one file: a single writer connection
// (SQLite allows one writer; queueing in Go is cheaper than SQLITE_BUSY
// retries) whose transactions start with BEGIN IMMEDIATE, and a read pool
// that WAL lets run beside it.
func (s *Store) openSQLite(path string, opts Options) error {
	if path == "" {
		return errors.New("sqlite URL needs a file path, e.g. sqlite:tiyn.db")
	}
	if strings.Contains(path, "?") {
		return fmt.Errorf("sqlite URL %q: parameters are set by Tiyn, give only the path", path)
	}
	params := url.Values{}
	params.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", DefaultSQLiteBusyTimeout.Milliseconds()))
	// WAL: readers do not block the writer and the writer does not block
	// readers, and a commit is one append.
	params.Add("_pragma", "journal_mode(WAL)")
	// FULL: a commit is durable on power loss too. A ledger answers the
	// platform 200 only after commit, so the commit must survive.
	params.Add("_pragma", "synchronous(FULL)")
	// Foreign keys are off by default in SQLite; the schema relies on them.
	params.Add("_pragma", "foreign_keys(1)")
	writeDSN := "file:" + path + "?" + params.Encode() + "&_txlock=immediate"
	readDSN := "file:" + path + "?" + params.Encode()

	w, err := sql.Open(sqliteshim.ShimName, writeDSN)
	if err != nil {
		return err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	r, err := sql.Open(sqliteshim.ShimName, readDSN)
	if err != nil {
		_ = w.Close()
		return err
	}
	conns := cmpOr(opts.MaxOpenConns, runtime.GOMAXPROCS(0)+2)
	r.SetMaxOpenConns(conns)
	r.SetMaxIdleConns(conns)
	s.write = bun.NewDB(w, sqlitedialect.New(), bun.WithDiscardUnknownColumns())
	s.read = bun.NewDB(r, sqlitedialect.New(), bun.WithDiscardUnknownColumns())
	return nil
}

// Dialect returns Postgres or SQLite.
func (s *Store) Dialect() string { return s.dialect }

// DB returns the underlying bun handle for tests and tooling (the harness
// checks invariants with its own SQL). Application code goes through the
// ports.
func (s *Store) DB() *bun.DB { return s.write }

// DBStats returns the write pool's statistics, for metrics.
func (s *Store) DBStats() sql.DBStats { return s.write.Stats() }

// Close stops the group-commit workers (after the batches in flight) and
// closes the pools.
func (s *Store) Close() error {
	if s.batcher != nil {
		s.batcher.stop()
	}
	var errs []error
	if s.read != nil && s.read != s.write {
		errs = append(errs, s.read.Close())
	}
	if s.write != nil {
		errs = append(errs, s.write.Close())
	}
	return errors.Join(errs...)
}

// Ping checks the database answers and the schema is at this binary's
// version.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.write.PingContext(ctx); err != nil {
		return classify(err)
	}
	return s.checkMigrated(ctx)
}

// Update runs fn in a transaction; see ports.Store. With group commit on,
// concurrent calls share one transaction, each inside its own savepoint.
func (s *Store) Update(ctx context.Context, fn func(ctx context.Context, tx ports.Tx) error) error {
	if s.batcher != nil {
		return s.batcher.submit(ctx, fn)
	}
	return s.updateSingle(ctx, fn)
}

func (s *Store) updateSingle(ctx context.Context, fn func(ctx context.Context, tx ports.Tx) error) error {
	var fnErr error
	err := s.write.RunInTx(ctx, s.txOpts, func(ctx context.Context, btx bun.Tx) error {
		fnErr = fn(ctx, &tx{reader: reader{db: btx, dialect: s.dialect}})
		return fnErr
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return classify(err)
	}
	return nil
}
