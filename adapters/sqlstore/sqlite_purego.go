//go:build !cgo

package sqlstore

import (
	"errors"
	"fmt"
	"net/url"

	"modernc.org/sqlite"
)

// Without cgo, SQLite is modernc.org/sqlite, a translation of the C library
// to Go: the same file format and SQL, about twice the CPU per statement
// (see sqlite_cgo.go).

// SQLiteEngine names the SQLite implementation this binary was built with.
func SQLiteEngine() string { return "modernc.org/sqlite (pure Go, no cgo)" }

const sqliteDriverName = "sqlite"

// sqliteDSN is the data source name of the database file at path with
// Tiyn's settings (see sqliteSettings); write adds BEGIN IMMEDIATE.
func sqliteDSN(path string, write bool) string {
	s := sqliteSettings()
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", s.busyTimeoutMS))
	q.Add("_pragma", "journal_mode("+s.journalMode+")")
	q.Add("_pragma", "synchronous("+s.synchronous+")")
	q.Add("_pragma", "foreign_keys(1)")
	dsn := "file:" + path + "?" + q.Encode()
	if write {
		dsn += "&_txlock=immediate"
	}
	return dsn
}

// sqliteErrorCode returns the extended result code of a SQLite error.
func sqliteErrorCode(err error) (int, bool) {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code(), true
	}
	return 0, false
}
