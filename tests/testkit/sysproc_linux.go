//go:build linux

package testkit

import (
	"os/exec"
	"syscall"
)

// TieToParent makes the kernel kill cmd's process when the test binary
// dies (a panic or a timeout), so no server outlives its test. It keeps
// the SysProcAttr the caller set.
func TieToParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
