//go:build !linux

package testkit

import "os/exec"

// TieToParent: only Linux can tie a child's life to its parent; elsewhere
// the suites' cleanups alone stop the servers.
func TieToParent(*exec.Cmd) {}
