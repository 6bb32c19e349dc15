//go:build !linux

package e2e_test

import "os/exec"

// tieToParent: only Linux can tie a child's life to its parent; elsewhere
// t.Cleanup alone stops the servers.
func tieToParent(*exec.Cmd) {}
