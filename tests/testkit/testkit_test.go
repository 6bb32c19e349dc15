package testkit_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/tests/testkit"
)

func TestModuleRoot(t *testing.T) {
	t.Parallel()
	root, err := testkit.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mod), "module github.com/tiyn/tiyn\n") {
		t.Fatalf("%s/go.mod is not the module's:\n%s", root, mod)
	}
	wd, _ := os.Getwd()
	if filepath.Join(root, "tests", "testkit") != wd {
		t.Fatalf("root %s is not two levels above %s", root, wd)
	}
}

func TestSyncBufferConcurrentWrites(t *testing.T) {
	t.Parallel()
	const writers, lines = 8, 200
	var b testkit.SyncBuffer
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				if n, err := fmt.Fprintf(&b, "w%d-%d\n", w, i); err != nil || n == 0 {
					t.Errorf("write: %d, %v", n, err)
					return
				}
				_ = b.String() // reads race with writes under -race unless locked
			}
		}()
	}
	wg.Wait()
	got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("%d lines, want %d", len(got), writers*lines)
	}
	seen := map[string]bool{}
	for _, l := range got {
		if seen[l] {
			t.Fatalf("line %q twice: writes interleaved", l)
		}
		seen[l] = true
	}
}

func TestCleanEnvDropsTiynSettings(t *testing.T) {
	t.Setenv("TIYN_TESTKIT_PROBE", "x")
	t.Setenv("TESTKIT_OTHER_PROBE", "y")
	env := strings.Join(testkit.CleanEnv(), "\n")
	if strings.Contains(env, "TIYN_") {
		t.Fatalf("a TIYN_ setting survived: %s", env)
	}
	if !strings.Contains(env, "TESTKIT_OTHER_PROBE=y") {
		t.Fatal("other settings must be kept")
	}
}

func TestOpenSQLiteIsMigratedAndPersists(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kit.db")
	t.Run("first", func(t *testing.T) {
		s := testkit.OpenSQLiteFile(t, path, sqlstore.Options{GroupCommit: true})
		if err := s.Ping(ctx); err != nil { // Ping checks the schema version
			t.Fatalf("ping a migrated store: %v", err)
		}
		applied, err := s.Applied(ctx)
		if err != nil || len(applied) == 0 {
			t.Fatalf("applied = %v, %v; want the migrations", applied, err)
		}
	})
	// The subtest's cleanup closed the store; the file keeps the schema.
	s, err := sqlstore.Open(ctx, sqlstore.Options{URL: "sqlite:" + path})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("reopened without migrating: %v", err)
	}
	if s2 := testkit.OpenSQLite(t, sqlstore.Options{}); s2.Ping(ctx) != nil {
		t.Fatal("OpenSQLite: not migrated")
	}
}

// fakeT records a failure and ends its goroutine the way testing.T does.
type fakeT struct {
	mu       sync.Mutex
	fatal    string
	cleanups []func()
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Cleanup(fn func())     { f.cleanups = append(f.cleanups, fn) }
func (f *fakeT) Errorf(string, ...any) {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func TestOpenSQLiteFileRefusesAURL(t *testing.T) {
	t.Parallel()
	f := &fakeT{}
	done := make(chan *sqlstore.Store, 1)
	go func() {
		defer close(done)
		done <- testkit.OpenSQLiteFile(f, filepath.Join(t.TempDir(), "x.db"), sqlstore.Options{URL: "sqlite:other.db"})
	}()
	if s := <-done; s != nil {
		t.Fatal("a store was returned")
	}
	if !strings.Contains(f.fatal, "opts.URL") {
		t.Fatalf("fatal = %q, want it to name opts.URL", f.fatal)
	}
}

func TestOpenSQLiteFileFailsOnAnUnopenablePath(t *testing.T) {
	t.Parallel()
	f := &fakeT{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		testkit.OpenSQLiteFile(f, filepath.Join(t.TempDir(), "no", "such", "dir", "x.db"), sqlstore.Options{})
	}()
	<-done
	if f.fatal == "" {
		t.Fatal("no failure for a file in a missing folder")
	}
	for _, fn := range f.cleanups {
		fn()
	}
}

// The helper process: the test binary run again with envChild set.
const envChild = "TESTKIT_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(envChild) {
	case "":
		os.Exit(m.Run())
	case "exit3":
		os.Exit(3)
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(time.Minute)
		os.Exit(0)
	case "wait":
		fmt.Println("ready")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(2)
}

func child(t *testing.T, mode string) (*testkit.Process, *testkit.SyncBuffer) {
	t.Helper()
	var out testkit.SyncBuffer
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+mode)
	cmd.Stdout = &out
	testkit.TieToParent(cmd)
	p, err := testkit.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !p.Exited() {
			_, _ = p.Stop(syscall.SIGKILL, 10*time.Second)
		}
	})
	return p, &out
}

func waitReady(t *testing.T, out *testkit.SyncBuffer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "ready") {
		if time.Now().After(deadline) {
			t.Fatal("child not ready in 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestProcessExitStatus(t *testing.T) {
	t.Parallel()
	p, _ := child(t, "exit3")
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("child did not exit")
	}
	var ee *exec.ExitError
	if !errors.As(p.Err(), &ee) || ee.ExitCode() != 3 {
		t.Fatalf("Err = %v, want exit status 3", p.Err())
	}
	if _, err := p.Stop(syscall.SIGTERM, time.Second); err != nil {
		t.Fatalf("Stop after the exit: %v", err)
	}
}

func TestProcessStopBySignal(t *testing.T) {
	t.Parallel()
	p, out := child(t, "wait")
	waitReady(t, out)
	if p.Exited() || p.Err() != nil {
		t.Fatal("a running process reports an exit")
	}
	if _, err := p.Stop(syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !p.Exited() || p.Err() == nil || !strings.Contains(p.Err().Error(), "terminated") {
		t.Fatalf("Err = %v, want killed by SIGTERM", p.Err())
	}
}

func TestProcessStopKillsAfterTimeout(t *testing.T) {
	t.Parallel()
	p, out := child(t, "ignore-term")
	waitReady(t, out)
	const timeout = 300 * time.Millisecond
	took, err := p.Stop(syscall.SIGTERM, timeout)
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Stop = %v, want a killed-after-timeout error", err)
	}
	if took < timeout {
		t.Fatalf("Stop returned after %s, before the %s timeout", took, timeout)
	}
	if !p.Exited() {
		t.Fatal("not exited after the kill")
	}
}

func TestBuildOnceAndItsErrors(t *testing.T) {
	t.Parallel()
	b := &testkit.Build{Package: "./bench/report"}
	t.Cleanup(func() {
		if err := b.Remove(); err != nil {
			t.Error(err)
		}
	})
	path, err := b.Path()
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("built binary %s: %v, mode %v", path, err, st)
	}
	if again, err := b.Path(); again != path || err != nil {
		t.Fatalf("second Path = %s, %v; want the first build", again, err)
	}

	bad := &testkit.Build{Package: "./no/such/package"}
	t.Cleanup(func() { _ = bad.Remove() })
	if _, err := bad.Path(); err == nil || !strings.Contains(err.Error(), "no/such/package") {
		t.Fatalf("a missing package built: %v", err)
	}
	if _, err := bad.Path(); err == nil {
		t.Fatal("the failed build's error is not kept")
	}
}

func TestNoonZoneIsNoonThere(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for m := range 24 * 4 {
		now := base.Add(time.Duration(m) * 15 * time.Minute)
		name, loc, err := testkit.NoonZone(now)
		if err != nil {
			t.Fatalf("%s: %v", now, err)
		}
		local := now.In(loc)
		if local.Hour() != 12 || local.Minute() != now.Minute() {
			t.Fatalf("%s is %s in %s, want between noon and one", now, local, name)
		}
		if later := now.Add(11 * time.Hour).In(loc); later.YearDay() != local.YearDay() {
			t.Fatalf("%s: eleven hours on is %s in %s, another day", now, later, name)
		}
	}
}

func TestWaitReady(t *testing.T) {
	t.Parallel()
	var asked atomic.Int64
	ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			t.Errorf("asked %s", r.URL.Path)
		}
		if asked.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer ready.Close()
	if err := testkit.WaitReady(ready.Client(), ready.URL, 5*time.Second, time.Millisecond); err != nil || asked.Load() != 3 {
		t.Fatalf("ready on the third probe: %v after %d probes", err, asked.Load())
	}
	never := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer never.Close()
	err := testkit.WaitReady(never.Client(), never.URL, 20*time.Millisecond, time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("never ready: %v, want a timeout naming HTTP 503", err)
	}
}
