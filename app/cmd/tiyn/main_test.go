package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/tiyn/tiyn/tests/testkit"
)

// testMain is a Main with an environment of its own (the test process's is
// never read: CI may set TIYN_* variables) and captured output.
func testMain(env map[string]string) (*Main, *testkit.SyncBuffer, *testkit.SyncBuffer) {
	stdout, stderr := &testkit.SyncBuffer{}, &testkit.SyncBuffer{}
	m := &Main{
		Stdin:  strings.NewReader(""),
		Stdout: stdout,
		Stderr: stderr,
		LookupEnv: func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		},
	}
	return m, stdout, stderr
}

// run runs one command line like main does and returns the exit code.
func run(t *testing.T, m *Main, args ...string) (int, error) {
	t.Helper()
	ctx := context.Background()
	err := m.ParseFlags(ctx, args)
	if err == nil {
		err = m.Run(ctx)
	}
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	return m.exitCode(err), err
}

// sqliteEnv points the database at a fresh file in a temp dir.
func sqliteEnv(t *testing.T) map[string]string {
	t.Helper()
	return map[string]string{"TIYN_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "tiyn.db")}
}

func TestCommandsRegistered(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"serve", "migrate", "version", "account", "statement", "help"} {
		if c, ok := commands[name]; !ok || c.Summary == "" || c.Run == nil {
			t.Errorf("command %q missing or incomplete", name)
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("registering a command twice did not panic")
		}
	}()
	registerCommand("serve", Command{Run: runServe})
}

func TestParseFlagsAndExitCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string // in stdout
		wantErr  string // in stderr
	}{
		// No command is a usage error: the overview on stderr, exit 2.
		{"NoArgsIsUsage", nil, exitUsage, "", "Commands:"},
		{"HelpHelp", []string{"help", "--help"}, exitOK, "Commands:", ""},
		{"HelpH", []string{"help", "-h"}, exitOK, "Commands:", ""},
		{"HelpOfHelp", []string{"help", "help"}, exitOK, "Commands:", ""},
		{"HelpTwoCommands", []string{"help", "serve", "migrate"}, exitUsage, "", "help takes at most one COMMAND"},
		{"HelpFlag", []string{"--help"}, exitOK, "serve", ""},
		{"HelpCommand", []string{"help"}, exitOK, "statement", ""},
		{"HelpServe", []string{"help", "serve"}, exitOK, "TIYN_LISTEN", ""},
		{"HelpUnknown", []string{"help", "nope"}, exitUsage, "", `unknown command "nope"`},
		{"Unknown", []string{"frobnicate"}, exitUsage, "", `unknown command "frobnicate"`},
		{"FlagBeforeCommand", []string{"--listen", "x", "serve"}, exitUsage, "", "flags go after the command"},
		{"UnknownFlag", []string{"version", "--bogus"}, exitUsage, "", "flag provided but not defined: -bogus (see tiyn version --help)"},
		{"ExtraArg", []string{"version", "extra"}, exitUsage, "", "version takes no arguments"},
		{"Version", []string{"version"}, exitOK, "tiyn dev\nbuilt with " + runtime.Version(), ""},
		{"AccountNoSub", []string{"account"}, exitUsage, "tiyn account open", "needs a subcommand"},
		{"AccountBadSub", []string{"account", "delete", "x"}, exitUsage, "", `unknown account subcommand "delete"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, stdout, stderr := testMain(nil)
			code, _ := run(t, m, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.wantCode, stderr)
			}
			if !strings.Contains(stdout.String(), tc.wantOut) {
				t.Errorf("stdout %q lacks %q", stdout, tc.wantOut)
			}
			if !strings.Contains(stderr.String(), tc.wantErr) {
				t.Errorf("stderr %q lacks %q", stderr, tc.wantErr)
			}
			if tc.args == nil && (stdout.String() != "" || !strings.Contains(stderr.String(), "no command given")) {
				t.Errorf("no command: stdout %q, stderr %q", stdout, stderr)
			}
		})
	}
}

func TestRunBeforeParseFlags(t *testing.T) {
	t.Parallel()
	m, _, _ := testMain(nil)
	if err := m.Run(context.Background()); err == nil {
		t.Fatal("Run without ParseFlags succeeded")
	}
}

func TestParseArgsInterleaved(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    []string
		wantPos []string
		wantCur string
		wantCSV bool
		wantErr bool
	}{
		{[]string{"6552"}, []string{"6552"}, "KZT", false, false},
		{[]string{"6552", "--currency", "USD"}, []string{"6552"}, "USD", false, false},
		{[]string{"--currency=USD", "6552", "--csv"}, []string{"6552"}, "USD", true, false},
		{[]string{"a", "b", "--csv", "c"}, []string{"a", "b", "c"}, "KZT", true, false},
		{[]string{"--csv", "--", "--currency", "x"}, []string{"--currency", "x"}, "KZT", true, false},
		{[]string{"a", "--", "-b"}, []string{"a", "-b"}, "KZT", false, false},
		{[]string{"a", "--nope"}, nil, "", false, true},
		{[]string{"a", "--currency"}, nil, "", false, true},
		{nil, nil, "KZT", false, false},
	}
	for _, tc := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(&bytes.Buffer{})
		cur := fs.String("currency", "KZT", "")
		csv := fs.Bool("csv", false, "")
		pos, err := parseArgs(fs, tc.args)
		if tc.wantErr {
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Errorf("%q: err %v, want a usage error", tc.args, err)
			}
			continue
		}
		if err != nil || !slices.Equal(pos, tc.wantPos) || *cur != tc.wantCur || *csv != tc.wantCSV {
			t.Errorf("%q: pos %q cur %q csv %v err %v", tc.args, pos, *cur, *csv, err)
		}
	}
}

func TestCloseRunsClosersInReverseOnce(t *testing.T) {
	t.Parallel()
	m, _, _ := testMain(nil)
	var order []int
	m.OnClose(func() error { order = append(order, 1); return nil })
	m.OnClose(func() error { order = append(order, 2); return errors.New("boom") })
	if err := m.Close(); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Close = %v, want boom", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if !slices.Equal(order, []int{2, 1}) {
		t.Fatalf("closers ran %v, want [2 1] once", order)
	}
}
