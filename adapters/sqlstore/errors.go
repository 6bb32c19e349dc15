package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// SQLite extended result codes used below (sqlite3.h).
const (
	sqliteBusy                = 5
	sqliteLocked              = 6
	sqliteReadOnly            = 8
	sqliteIOErr               = 10
	sqliteCorrupt             = 11
	sqliteFull                = 13
	sqliteCantOpen            = 14
	sqliteConstraint          = 19
	sqliteConstraintUnique    = 2067
	sqliteConstraintPK        = 1555
	sqliteConstraintCheck     = 275
	sqliteConstraintFK        = 787
	sqliteConstraintNotNull   = 1299
	sqlitePrimaryResultMask   = 0xff
	pgUniqueViolation         = "23505"
	pgCheckViolation          = "23514"
	pgForeignKeyViolation     = "23503"
	pgSerializationFailure    = "40001"
	pgDeadlockDetected        = "40P01"
	pgInvalidByteSequence     = "22021"
	pgUntranslatableCharacter = "22P05"
	pgUndefinedTable          = "42P01"
	// pgDayClosed is Tiyn's own SQLSTATE, raised by the closed-day
	// triggers (migration 0004).
	pgDayClosed = "TY001"
	// sqliteDayClosed is the closed-day triggers' RAISE(ABORT) message.
	sqliteDayClosed = "tiyn_day_closed"
)

// classify turns a driver error into a port error, wrapping the original so
// logs keep the detail. It is the one place that knows driver error types.
//
//   - unique violations, serialization failures and deadlocks → ErrConflict
//     (the caller re-reads and decides again);
//   - CHECK violations (a balance below zero) → domain.ErrInsufficientFunds;
//   - text PostgreSQL cannot store (NUL, bad UTF-8) → domain.ErrInvalidInput;
//   - connection loss, a server shutting down, a read-only or full disk,
//     SQLITE_BUSY → ErrUnavailable (nothing committed; retry later);
//   - sql.ErrNoRows → ErrNotFound;
//   - a ledger row dated inside a closed business day (the triggers of
//     migration 0004) → ErrDayClosed.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ports.ErrNotFound) || errors.Is(err, ports.ErrConflict) ||
		errors.Is(err, ports.ErrUnavailable) || errors.Is(err, ports.ErrNotMigrated) || errors.Is(err, ports.ErrDayClosed) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %v", ports.ErrNotFound, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ports.ErrUnavailable, err)
	}
	if code := pgCode(err); code != "" {
		return classifyPG(code, err)
	}
	if code, ok := sqliteErrorCode(err); ok {
		return classifySQLite(code, err)
	}
	if isConnectionError(err) {
		return fmt.Errorf("%w: %w", ports.ErrUnavailable, err)
	}
	return err
}

func pgCode(err error) string {
	var pe pgdriver.Error
	if errors.As(err, &pe) {
		return pe.Field('C')
	}
	var xe *pgconn.PgError
	if errors.As(err, &xe) {
		return xe.Code
	}
	return ""
}

func classifyPG(code string, err error) error {
	switch {
	case code == pgUniqueViolation, code == pgSerializationFailure, code == pgDeadlockDetected:
		return fmt.Errorf("%w: %w", ports.ErrConflict, err)
	case code == pgCheckViolation:
		return fmt.Errorf("%w: %w", domain.ErrInsufficientFunds, err)
	case code == pgForeignKeyViolation:
		return fmt.Errorf("%w: %w", ports.ErrNotFound, err)
	case code == pgInvalidByteSequence, code == pgUntranslatableCharacter:
		return fmt.Errorf("%w: text the database cannot store: %w", domain.ErrInvalidInput, err)
	case code == pgUndefinedTable:
		return fmt.Errorf("%w: %w", ports.ErrNotMigrated, err)
	case code == pgDayClosed:
		return fmt.Errorf("%w: %w", ports.ErrDayClosed, err)
	// Class 08 connection exceptions, 53 insufficient resources, 57P0x
	// operator intervention (admin shutdown, crash shutdown, cannot connect
	// now), 25006 read-only transaction (a standby), 58 system errors.
	case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "53"), strings.HasPrefix(code, "57P"),
		strings.HasPrefix(code, "58"), code == "25006", code == "57014":
		return fmt.Errorf("%w: %w", ports.ErrUnavailable, err)
	}
	return err
}

func classifySQLite(code int, err error) error {
	switch code {
	case sqliteConstraintUnique, sqliteConstraintPK:
		return fmt.Errorf("%w: %w", ports.ErrConflict, err)
	case sqliteConstraintCheck:
		return fmt.Errorf("%w: %w", domain.ErrInsufficientFunds, err)
	case sqliteConstraintFK:
		return fmt.Errorf("%w: %w", ports.ErrNotFound, err)
	}
	switch code & sqlitePrimaryResultMask {
	case sqliteBusy, sqliteLocked, sqliteReadOnly, sqliteIOErr, sqliteFull, sqliteCantOpen, sqliteCorrupt:
		return fmt.Errorf("%w: %w", ports.ErrUnavailable, err)
	}
	if strings.Contains(err.Error(), sqliteDayClosed) {
		return fmt.Errorf("%w: %w", ports.ErrDayClosed, err)
	}
	if strings.Contains(err.Error(), "no such table") {
		return fmt.Errorf("%w: %w", ports.ErrNotMigrated, err)
	}
	return err
}

func isConnectionError(err error) bool {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "sql: database is closed") || strings.Contains(msg, "connection refused") ||
		strings.Contains(msg, "bad connection") || strings.Contains(msg, "broken pipe")
}
