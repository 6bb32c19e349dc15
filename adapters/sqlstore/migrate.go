package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/tiyn/tiyn/ports"
)

// Migrations live in one folder per dialect with matching numbers:
// migrations/postgres/0001_ledger.sql beside migrations/sqlite/0001_ledger.sql.
//
//go:embed migrations
var migrationsFS embed.FS

// migrationLockID is the PostgreSQL advisory lock key that serialises
// migrations across instances starting at once ("tiyn" in ASCII).
const migrationLockID = 0x7469796e

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrationsFS, dir)
	if err != nil {
		return nil, fmt.Errorf("migrations for %s: %w", dialect, err)
	}
	var out []migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number and '_'", e.Name())
		}
		body, err := fs.ReadFile(migrationsFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migrations for %s: expected version %d, found %s", dialect, i+1, m.name)
		}
	}
	return out, nil
}

// MigrationsHash identifies a dialect's schema: a SHA-256 over every
// migration's name and text. Test harnesses key template databases on it.
func MigrationsHash(dialect string) (string, error) {
	ms, err := loadMigrations(dialect)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, m := range ms {
		h.Write([]byte(m.name))
		h.Write([]byte{0})
		h.Write([]byte(m.sql))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// statements splits a migration into statements: comment lines are dropped
// and a statement ends with ';' at the end of a line — except inside a
// dollar-quoted body ($$ … $$, a PostgreSQL function), whose lines end
// with ';' too: a line holding an odd number of "$$" opens or closes one.
func statements(script string) []string {
	var (
		out    []string
		cur    strings.Builder
		quoted bool
	)
	for _, line := range strings.Split(script, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || (!quoted && strings.HasPrefix(trimmed, "--")) {
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.Count(line, "$$")%2 == 1 {
			quoted = !quoted
		}
		if !quoted && strings.HasSuffix(trimmed, ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// Migrate applies the pending migrations in one transaction. Two instances
// starting at once are safe: on PostgreSQL the transaction takes an
// advisory lock first (the second waits, then finds nothing to do); on
// SQLite the transaction begins IMMEDIATE, which takes the write lock.
func (s *Store) Migrate(ctx context.Context) error {
	_, err := migrate(ctx, s.write, s.dialect)
	return err
}

// MigratePostgresDB migrates a PostgreSQL database opened elsewhere (a
// test harness's template database).
func MigratePostgresDB(ctx context.Context, db *sql.DB) error {
	_, err := migrate(ctx, bun.NewDB(db, pgdialect.New()), Postgres)
	return err
}

// Applied returns the versions recorded as applied.
func (s *Store) Applied(ctx context.Context) ([]string, error) {
	rows, err := s.write.QueryContext(ctx, `SELECT name FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, classify(err)
		}
		names = append(names, n)
	}
	return names, classify(rows.Err())
}

func migrate(ctx context.Context, db *bun.DB, dialect string) (applied int, err error) {
	return migrateTo(ctx, db, dialect, 0)
}

// migrateTo applies the pending migrations up to version target (0: all).
func migrateTo(ctx context.Context, db *bun.DB, dialect string, target int) (applied int, err error) {
	ms, err := loadMigrations(dialect)
	if err != nil {
		return 0, err
	}
	if target > 0 && target < len(ms) {
		ms = ms[:target]
	}
	err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if dialect == Postgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, migrationLockID); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_us BIGINT NOT NULL)`); err != nil {
			return err
		}
		var current int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return err
		}
		if current > len(ms) {
			return fmt.Errorf("database schema version %d is newer than this binary's %d", current, len(ms))
		}
		for _, m := range ms[current:] {
			for _, stmt := range statements(m.sql) {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("migration %s: %w", m.name, err)
				}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at_us) VALUES (?, ?, ?)`,
				m.version, m.name, us(timeNow())); err != nil {
				return err
			}
			applied++
		}
		return nil
	})
	return applied, classify(err)
}

// checkMigrated reports ErrNotMigrated unless every migration is applied.
func (s *Store) checkMigrated(ctx context.Context) error {
	ms, err := loadMigrations(s.dialect)
	if err != nil {
		return err
	}
	var current int
	if err := s.write.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return classify(err)
	}
	if current < len(ms) {
		return fmt.Errorf("%w: schema version %d, want %d", errNotMigrated, current, len(ms))
	}
	return nil
}

var (
	errNotMigrated = ports.ErrNotMigrated
	timeNow        = time.Now
)
