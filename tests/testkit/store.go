package testkit

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/tiyn/tiyn/adapters/sqlstore"
)

// T is what the store helpers need of a test: *testing.T, *testing.B,
// *testing.F and *rapid.T all have it.
type T interface {
	Helper()
	Cleanup(func())
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// OpenSQLite opens a store on a fresh SQLite file in tb.TempDir(),
// migrated, and closes it when the test ends. opts.URL must be empty: the
// file is the helper's; the other options (GroupCommit, …) are the
// caller's.
func OpenSQLite(tb testing.TB, opts sqlstore.Options) *sqlstore.Store {
	tb.Helper()
	return OpenSQLiteFile(tb, filepath.Join(tb.TempDir(), "tiyn.db"), opts)
}

// OpenSQLiteFile opens the SQLite store at path (created when missing),
// migrates it, and closes it when t ends; a failed Close fails t. Use it
// where the file must be named (a reopen, a rapid check).
func OpenSQLiteFile(t T, path string, opts sqlstore.Options) *sqlstore.Store {
	t.Helper()
	if opts.URL != "" {
		t.Fatalf("testkit.OpenSQLiteFile: opts.URL is %q; leave it empty, the path names the file", opts.URL)
		return nil
	}
	opts.URL = "sqlite:" + path
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, opts)
	if err != nil {
		t.Fatalf("open SQLite store %s: %v", path, err)
		return nil
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close SQLite store %s: %v", path, err)
		}
	})
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate SQLite store %s: %v", path, err)
		return nil
	}
	return s
}
