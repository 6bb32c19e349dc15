package testkit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// BuildTimeout bounds one `go build` of a binary (a cold cache with -race
// takes a minute or more on two cores).
const BuildTimeout = 5 * time.Minute

// TiynPackage is the tiyn binary's package, relative to the module root.
const TiynPackage = "./app/cmd/tiyn"

// Build builds one main package of the module once per test binary, on
// first use. The zero value builds tiyn without the race detector.
//
// A suite keeps one Build in a package variable and calls Remove from
// TestMain after m.Run.
type Build struct {
	// Package is the main package, relative to the module root
	// (TiynPackage when empty).
	Package string
	// Race builds with -race (see RaceEnabled).
	Race bool

	once sync.Once
	dir  string
	path string
	err  error
}

// Path builds the binary on the first call and returns its path; a failed
// build's error is returned by every call. The binary's folder is
// world-readable, so a server started under another user can run it.
func (b *Build) Path() (string, error) {
	b.once.Do(func() { b.path, b.err = b.build() })
	return b.path, b.err
}

func (b *Build) build() (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	pkg := b.Package
	if pkg == "" {
		pkg = TiynPackage
	}
	if b.dir, err = os.MkdirTemp("", "tiyn-test-bin-"); err != nil {
		return "", err
	}
	if err := os.Chmod(b.dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(b.dir, filepath.Base(pkg))
	args := []string{"build", "-o", bin}
	if b.Race {
		args = append(args, "-race")
	}
	args = append(args, pkg)
	ctx, cancel := context.WithTimeout(context.Background(), BuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %v in %s: %w\n%s", args, root, err, out)
	}
	return bin, nil
}

// Remove deletes the built binary and its folder.
func (b *Build) Remove() error {
	if b.dir == "" {
		return nil
	}
	return os.RemoveAll(b.dir)
}

// Process is one started command whose exit is awaited in the background.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's result, set before done is closed
}

// Start starts cmd (its Env, Dir, Stdout, Stderr and SysProcAttr set by
// the caller) and waits for its exit in the background.
func Start(cmd *exec.Cmd) (*Process, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the process has exited (and its output is copied).
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is the exit status as cmd.Wait reports it: nil for exit code 0. It
// is nil while the process runs.
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stop sends sig and waits for the exit; after timeout it sends SIGKILL,
// waits again and returns an error. It returns how long the exit took. A
// process that had already exited is not an error; its exit status is
// Err.
func (p *Process) Stop(sig os.Signal, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return 0, fmt.Errorf("send %v: %w", sig, err)
	}
	select {
	case <-p.done:
		return time.Since(start), nil
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return time.Since(start), fmt.Errorf("no exit within %s after %v; killed (%v)", timeout, sig, p.err)
	}
}
