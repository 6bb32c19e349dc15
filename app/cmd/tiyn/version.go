package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/tiyn/tiyn/adapters/sqlstore"
)

func init() {
	registerCommand("version", Command{Summary: "print the version, the Go version and the source revision", Run: runVersion})
}

var versionSpec = cmdSpec{
	Name:        "version",
	Args:        "",
	Description: "Prints the version (set at build time with -ldflags \"-X main.version=…\"), the Go version, the SQLite engine\n(C SQLite through cgo, or pure Go when built with CGO_ENABLED=0) and, when the binary was built from a version-controlled tree, the source revision.",
}

func runVersion(_ context.Context, m *Main, args []string) error {
	_, pos, err := m.LoadConfig(m.FlagSet("version"), versionSpec, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("version takes no arguments, got %q", pos)
	}
	fmt.Fprintf(m.Stdout, "tiyn %s\n", version)
	fmt.Fprintf(m.Stdout, "built with %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(m.Stdout, "sqlite %s\n", sqlstore.SQLiteEngine())
	if info, ok := debug.ReadBuildInfo(); ok {
		vcs := map[string]string{}
		for _, s := range info.Settings {
			vcs[s.Key] = s.Value
		}
		if rev := vcs["vcs.revision"]; rev != "" {
			line := "revision " + rev
			if t := vcs["vcs.time"]; t != "" {
				line += " (" + t + ")"
			}
			if vcs["vcs.modified"] == "true" {
				line += " modified"
			}
			fmt.Fprintln(m.Stdout, line)
		}
		if info.Main.Version != "" && info.Main.Version != "(devel)" {
			fmt.Fprintf(m.Stdout, "module %s %s\n", info.Main.Path, info.Main.Version)
		}
	}
	return nil
}
