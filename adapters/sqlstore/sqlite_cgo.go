//go:build cgo

package sqlstore

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/mattn/go-sqlite3"
)

// With cgo, SQLite is the C library itself (mattn/go-sqlite3). sqliteshim
// would pick the pure-Go translation (modernc.org/sqlite) on linux/amd64
// even with cgo on; the C library spends about half the CPU per statement,
// and SQLite's one writer is the whole store's throughput (bench/README.md).
// Builds with CGO_ENABLED=0 use modernc (sqlite_purego.go) with the same
// settings.

const sqliteDriverName = "sqlite3"

// SQLiteEngine names the SQLite implementation this binary was built with.
func SQLiteEngine() string {
	v, _, _ := sqlite3.Version()
	return "C SQLite " + v + " (mattn/go-sqlite3, cgo)"
}

// sqliteDSN is the data source name of the database file at path with
// Tiyn's settings (see sqliteSettings); write adds BEGIN IMMEDIATE.
func sqliteDSN(path string, write bool) string {
	s := sqliteSettings()
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(s.busyTimeoutMS))
	q.Set("_journal_mode", s.journalMode)
	q.Set("_synchronous", s.synchronous)
	q.Set("_foreign_keys", "1")
	if write {
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

// sqliteErrorCode returns the extended result code of a SQLite error.
func sqliteErrorCode(err error) (int, bool) {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return int(se.ExtendedCode), true
	}
	return 0, false
}
