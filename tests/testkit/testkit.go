// Package testkit holds what the test suites share: opening a migrated
// SQLite store, a buffer that several goroutines may write, the module's
// root folder, and the core of the harnesses that run the real tiyn binary
// (building it once, starting it, stopping it within a bound).
//
// It is imported by test files only. It imports adapters/sqlstore, so the
// store's own tests use it from the external package sqlstore_test, never
// from package sqlstore (that would be an import cycle).
package testkit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// ModuleRoot returns the folder holding go.mod at or above the working
// directory (a package's own folder under go test).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return moduleRootFrom(dir)
}

// MustModuleRoot is ModuleRoot that fails tb.
func MustModuleRoot(tb testing.TB) string {
	tb.Helper()
	root, err := ModuleRoot()
	if err != nil {
		tb.Fatal(err)
	}
	return root
}

// maxModuleDepth bounds the walk up: the suites are at most a few levels
// below the root.
const maxModuleDepth = 32

func moduleRootFrom(dir string) (string, error) {
	for range maxModuleDepth {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("go.mod not found at or above " + dir)
}

// SyncBuffer is a bytes.Buffer that is safe for concurrent use: a logger or
// a command writes to it from its goroutines while the test reads it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// CleanEnv is this process's environment without any TIYN_ setting, so a
// developer's or CI's own configuration cannot leak into a server or a
// command under test.
func CleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TIYN_") {
			env = append(env, kv)
		}
	}
	return env
}
