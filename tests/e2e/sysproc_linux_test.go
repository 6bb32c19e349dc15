//go:build linux

package e2e_test

import (
	"os/exec"
	"syscall"
)

// tieToParent makes the kernel kill the child when the test binary dies
// (a panic or a timeout), so no server outlives its test.
func tieToParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
