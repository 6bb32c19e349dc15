// Package sqlstore is Tiyn's store: one bun-based implementation of
// ports.Store for PostgreSQL (through bun's pgdriver, or pgx in simple
// protocol mode) and for SQLite (the C library through mattn/go-sqlite3
// when built with cgo, modernc.org/sqlite's pure-Go translation when not,
// so CGO_ENABLED=0 builds work; see sqlite_cgo.go).
//
// Both dialects run the same SQL, written by hand with ? placeholders. The
// store prepares each text once per pool and binds the values (see
// "Prepared statements" below); until a text is prepared, bun formats it
// with the values inlined. Times are BIGINT microseconds on both. Driver
// errors become port errors in one function, classify (errors.go).
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
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/tiyn/tiyn/ports"
)

// Dialect names.
const (
	Postgres = "postgres"
	SQLite   = "sqlite"
)

// PostgreSQL drivers (Options.PGDriver): bun's own pgdriver, or pgx in
// simple-protocol mode (docs/decisions/0005-postgresql-driver.md).
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
	// work once it has some. Zero: a batch takes what queued while the
	// previous one ran, and no more; under load the queue fills itself, and
	// without load waiting only adds latency (docs/decisions/0001-group-commit.md).
	DefaultBatchWait time.Duration = 0
	// DefaultPartitions is how many group-commit batches execute side by
	// side on PostgreSQL (docs/decisions/0001-group-commit.md).
	DefaultPartitions = 2
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
	// Partitions is how many group-commit batches may execute at once on
	// PostgreSQL, each on its own share of the customer accounts (default
	// DefaultPartitions; see batch.go). SQLite has one writer, so one.
	Partitions int
}

// Store implements ports.Store.
type Store struct {
	dialect string
	write   *bun.DB // all transactions
	read    *bun.DB // reads outside transactions; == write on PostgreSQL
	reader
	batcher *batcher
	keys    *depositKeys
	txOpts  *sql.TxOptions
	// Prepared statements of the write and the read pool (the same cache
	// on PostgreSQL, where they are one pool).
	writeStmts, readStmts *stmtCache
}

var _ ports.Store = (*Store)(nil)

// Open connects to the database named by opts.URL. It does not migrate:
// call Migrate (tiyn serve does, at start). Its errors never hold a
// credential of the URL (RedactError), whatever the driver put in them.
func Open(ctx context.Context, opts Options) (*Store, error) {
	s, err := open(ctx, opts)
	if err != nil {
		return nil, RedactError(err, opts.URL)
	}
	return s, nil
}

func open(ctx context.Context, opts Options) (*Store, error) {
	dialect, dsn, err := parseURL(opts.URL)
	if err != nil {
		return nil, err
	}
	s := &Store{dialect: dialect, keys: &depositKeys{}}
	switch dialect {
	case Postgres:
		err = s.openPostgres(dsn, opts)
	case SQLite:
		err = s.openSQLite(dsn, opts)
	}
	if err != nil {
		return nil, err
	}
	s.writeStmts = newStmtCache(s.write.DB, dialect)
	s.readStmts = s.writeStmts
	if s.read != s.write {
		s.readStmts = newStmtCache(s.read.DB, dialect)
	}
	s.reader = reader{db: preparedDB{DB: s.read, cache: s.readStmts}, dialect: dialect}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.write.PingContext(pingCtx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("open %s store: %w", dialect, classify(err))
	}
	if opts.GroupCommit {
		partitions := cmpOr(opts.Partitions, DefaultPartitions)
		if dialect == SQLite {
			partitions = 1
		}
		// Two workers per partition: one executes a batch while the other
		// commits the previous one.
		s.batcher = newBatcher(s, cmpOr(opts.BatchMax, DefaultBatchMax), cmpOr(opts.BatchWait, DefaultBatchWait), partitions, 2)
		s.batcher.fast = dialect == Postgres
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

// SQLitePath returns the file path of an SQLite database URL ("sqlite:PATH",
// "sqlite://PATH", "file:PATH"), and false for any other URL.
func SQLitePath(raw string) (string, bool) {
	dialect, path, err := parseURL(raw)
	if err != nil || dialect != SQLite {
		return "", false
	}
	return path, true
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
	red := RedactURL(raw)
	if r := []rune(red); len(r) > 64 {
		red = string(r[:64]) + "…"
	}
	return "", "", fmt.Errorf("database URL must start with postgres:// or sqlite: (got %q)", red)
}

func (s *Store) openPostgres(dsn string, opts Options) error {
	var sqldb *sql.DB
	switch cmpOr(opts.PGDriver, DriverPG) {
	case DriverPG:
		conn, err := newPGConnector(dsn)
		if err != nil {
			return err
		}
		sqldb = sql.OpenDB(conn)
	case DriverPGX:
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return fmt.Errorf("postgres URL %s: %w", RedactURL(dsn), err)
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

// newPGConnector builds bun's pgdriver connector. pgdriver.WithDSN panics on
// a URL it cannot read (an unknown sslmode, an unreadable sslrootcert, a URL
// that does not parse — whose error quotes the URL, password and all); the
// panic becomes an error here, which Open scrubs like any other.
func newPGConnector(dsn string) (conn *pgdriver.Connector, err error) {
	defer func() {
		if r := recover(); r != nil {
			conn, err = nil, fmt.Errorf("postgres URL %s: %v", RedactURL(dsn), r)
		}
	}()
	return pgdriver.NewConnector(pgdriver.WithDSN(dsn),
		pgdriver.WithTimeout(10*time.Second), pgdriver.WithReadTimeout(30*time.Second), pgdriver.WithWriteTimeout(10*time.Second)), nil
}

// sqlitePragmas are the settings of every SQLite connection, written in
// each driver's DSN syntax by sqliteDSN (sqlite_cgo.go, sqlite_purego.go),
// which also turns foreign keys on (off by default in SQLite; the schema
// relies on them).
type sqlitePragmas struct {
	busyTimeoutMS int64
	// WAL: readers do not block the writer and the writer does not block
	// readers, and a commit is one append.
	journalMode string
	// FULL: a commit is durable on power loss too. A ledger answers the
	// platform 200 only after commit, so the commit must survive.
	synchronous string
}

func sqliteSettings() sqlitePragmas {
	return sqlitePragmas{busyTimeoutMS: DefaultSQLiteBusyTimeout.Milliseconds(), journalMode: "WAL", synchronous: "FULL"}
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
	w, err := sql.Open(sqliteDriverName, sqliteDSN(path, true))
	if err != nil {
		return err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	r, err := sql.Open(sqliteDriverName, sqliteDSN(path, false))
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

// PreparedStatements returns how many statement texts are prepared in the
// write and read pools: for metrics, and for tests that must know the
// prepared path (not bun's inlining) is the one they exercise.
func (s *Store) PreparedStatements() int {
	n := s.writeStmts.size()
	if s.readStmts != s.writeStmts {
		n += s.readStmts.size()
	}
	return n
}

// BatchStats returns group commit's counters (zero when it is off).
func (s *Store) BatchStats() BatchStats {
	if s.batcher == nil {
		return BatchStats{}
	}
	return s.batcher.stats.snapshot()
}

// DBStats returns the write pool's statistics, for metrics.
func (s *Store) DBStats() sql.DBStats { return s.write.Stats() }

// Close stops the group-commit workers (after the batches in flight) and
// closes the pools.
func (s *Store) Close() error {
	if s.batcher != nil {
		s.batcher.stop()
	}
	var errs []error
	if s.readStmts != nil && s.readStmts != s.writeStmts {
		errs = append(errs, s.readStmts.close())
	}
	if s.writeStmts != nil {
		errs = append(errs, s.writeStmts.close())
	}
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

// Update runs fn in a transaction of its own; see ports.Store.
func (s *Store) Update(ctx context.Context, fn ports.TxFunc) error {
	return s.updateSingle(ctx, fn)
}

// Batch runs fn in a group-commit batch (batch.go) when group commit is on,
// in a transaction of its own otherwise; see ports.Store.
func (s *Store) Batch(ctx context.Context, w ports.Write, fn ports.TxFunc) error {
	if s.batcher != nil {
		return s.batcher.submit(ctx, w, fn)
	}
	return s.updateSingle(ctx, fn)
}

// updateSingle runs fn in one transaction: fn, then its held writes, then
// COMMIT. A failed write is fn's own.
func (s *Store) updateSingle(ctx context.Context, fn ports.TxFunc) error {
	var fnErr error
	err := s.write.RunInTx(ctx, s.txOpts, func(ctx context.Context, btx bun.Tx) error {
		t := s.newTx(btx, false)
		if fnErr = fn(ctx, t); fnErr != nil {
			return fnErr
		}
		fnErr = t.flush(ctx)
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

// newTx returns the ports.Tx of a bun transaction on the write pool, its
// statements going through the write pool's prepared statements. shared
// says the transaction holds several callers' work (writes.go).
func (s *Store) newTx(btx bun.Tx, shared bool) *tx {
	return &tx{reader: reader{db: &preparedTx{Tx: btx, cache: s.writeStmts}, dialect: s.dialect},
		ws: newWriteSet(), shared: shared, keys: s.keys}
}

// Prepared statements (docs/decisions/0006-prepared-statements.md): each of
// the store's SQL texts is prepared once per pool, in the background on its
// first use and outside any transaction, and then only bound and executed;
// until then, and for arguments the cache does not handle, the call goes
// through bun. A text that fails to prepare is not tried again, unless the
// database was unreachable.

// maxPreparedStatements bounds each pool's cache: the store has about 30
// distinct texts (list filters combine into a few more). maxTriedStatements
// bounds the texts remembered as seen, prepared or not.
const (
	maxPreparedStatements = 128
	maxTriedStatements    = 4 * maxPreparedStatements
)

// prepareTimeout bounds one background PREPARE, waiting for a connection
// included.
const prepareTimeout = 10 * time.Second

// stmtCache holds one pool's prepared statements by their bun text.
type stmtCache struct {
	db       *sql.DB
	dollar   bool // PostgreSQL: ? becomes $n
	ctx      context.Context
	cancel   context.CancelFunc // ends background PREPAREs at close
	mu       sync.RWMutex
	ready    map[string]*sql.Stmt
	tried    map[string]bool // prepared, being prepared, failed or not preparable
	closed   bool
	inflight sync.WaitGroup
}

func newStmtCache(db *sql.DB, dialect string) *stmtCache {
	ctx, cancel := context.WithCancel(context.Background())
	return &stmtCache{db: db, dollar: dialect == Postgres, ctx: ctx, cancel: cancel,
		ready: map[string]*sql.Stmt{}, tried: map[string]bool{}}
}

// lookup returns the prepared statement for query, or nil when the call
// must go through bun (not prepared yet, or not preparable with args).
func (c *stmtCache) lookup(query string, args []any) *sql.Stmt {
	if !plainArgs(args) {
		return nil
	}
	c.mu.RLock()
	st, tried, closed := c.ready[query], c.tried[query], c.closed
	c.mu.RUnlock()
	if st != nil || tried || closed {
		return st
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tried[query] || c.closed || len(c.tried) >= maxTriedStatements {
		return c.ready[query]
	}
	c.tried[query] = true
	text, n, ok := placeholders(query, c.dollar)
	if !ok || n != len(args) || len(c.ready) >= maxPreparedStatements {
		return nil
	}
	c.inflight.Add(1)
	go c.prepare(query, text)
	return nil
}

func (c *stmtCache) prepare(query, text string) {
	defer c.inflight.Done()
	ctx, cancel := context.WithTimeout(c.ctx, prepareTimeout)
	defer cancel()
	st, err := c.db.PrepareContext(ctx, text)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		// bun's path keeps serving this text; try again on a later use
		// only if the database could not be reached.
		if errors.Is(classify(err), ports.ErrUnavailable) {
			delete(c.tried, query)
		}
		return
	}
	if c.closed {
		_ = st.Close() //nolint:sqlclosecheck // prepared while the cache closed: dropped at once, nothing to defer to
		return
	}
	c.ready[query] = st
}

func (c *stmtCache) size() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.ready)
}

// close waits for background PREPAREs and closes every statement.
func (c *stmtCache) close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.inflight.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, st := range c.ready {
		errs = append(errs, st.Close())
		delete(c.ready, q)
	}
	return errors.Join(errs...)
}

// plainArgs reports whether every argument is a value that bun would
// inline and the driver binds the same way (numbers, strings, bytes,
// booleans, NULL). Anything else — bun.In, bun.Ident, named types with
// their own formatting — stays on bun's path.
func plainArgs(args []any) bool {
	for _, a := range args {
		switch a.(type) {
		case nil, string, []byte, int, int32, int64, bool, float64:
		default:
			return false
		}
	}
	return true
}

// placeholders checks that query uses only plain ? placeholders outside
// quotes (no bun ?Name or ?0 forms, no ? inside a literal), counts them,
// and returns the text to prepare: the query itself, or with $1, $2, … for
// PostgreSQL.
func placeholders(query string, dollar bool) (text string, n int, ok bool) {
	var b strings.Builder
	b.Grow(len(query) + 16)
	var quote byte // ' or " while inside a quoted literal or identifier
	for i := 0; i < len(query); i++ {
		ch := query[i]
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			}
			if ch == '?' {
				return "", 0, false
			}
		case ch == '\'' || ch == '"':
			quote = ch
		case ch == '?':
			if i+1 < len(query) && isIdentByte(query[i+1]) || i+1 < len(query) && query[i+1] == '?' {
				return "", 0, false
			}
			n++
			if dollar {
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(n))
				continue
			}
		}
		b.WriteByte(ch)
	}
	if quote != 0 {
		return "", 0, false
	}
	return b.String(), n, true
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// preparedDB is the read pool as a bun.IDB whose raw-SQL calls use the
// pool's prepared statements.
type preparedDB struct {
	*bun.DB
	cache *stmtCache
}

func (d preparedDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := d.cache.lookup(query, args); st != nil { //nolint:sqlclosecheck // the cache owns st and closes it in close; the caller closes the rows
		return st.ExecContext(ctx, args...)
	}
	return d.DB.ExecContext(ctx, query, args...)
}

func (d preparedDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := d.cache.lookup(query, args); st != nil { //nolint:sqlclosecheck // the cache owns st and closes it in close; the caller closes the rows
		return st.QueryContext(ctx, args...)
	}
	return d.DB.QueryContext(ctx, query, args...)
}

func (d preparedDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := d.cache.lookup(query, args); st != nil { //nolint:sqlclosecheck // the cache owns st and closes it in close; the caller closes the rows
		return st.QueryRowContext(ctx, args...)
	}
	return d.DB.QueryRowContext(ctx, query, args...)
}

// preparedTx is a transaction as a bun.IDB whose raw-SQL calls use the
// write pool's prepared statements (bound to the transaction once each).
type preparedTx struct {
	bun.Tx
	cache *stmtCache
	bound map[*sql.Stmt]*sql.Stmt // pool statement → this transaction's
}

func (t *preparedTx) stmt(ctx context.Context, query string, args []any) *sql.Stmt {
	st := t.cache.lookup(query, args)
	if st == nil {
		return nil
	}
	if ts := t.bound[st]; ts != nil {
		return ts
	}
	if t.bound == nil {
		t.bound = make(map[*sql.Stmt]*sql.Stmt, 16)
	}
	ts := t.StmtContext(ctx, st) // database/sql's Tx.StmtContext (through bun.Tx); closed with the transaction
	t.bound[st] = ts
	return ts
}

func (t *preparedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.stmt(ctx, query, args); st != nil { //nolint:sqlclosecheck // bound to the transaction, which closes it; the caller closes the rows
		return st.ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, query, args...)
}

func (t *preparedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(ctx, query, args); st != nil { //nolint:sqlclosecheck // bound to the transaction, which closes it; the caller closes the rows
		return st.QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, query, args...)
}

func (t *preparedTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.stmt(ctx, query, args); st != nil { //nolint:sqlclosecheck // bound to the transaction, which closes it; the caller closes the rows
		return st.QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, query, args...)
}
