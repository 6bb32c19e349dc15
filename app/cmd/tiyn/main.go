// Command tiyn is Tiyn's one binary and composition root: it reads the
// configuration, opens the store, builds the use cases and mounts the
// Monetix and REST adapters on the serving layer. Subcommands:
//
//	tiyn serve                      run the service
//	tiyn migrate                    bring the database schema up to date
//	tiyn version                    print the version
//	tiyn account open|show …        open or show a customer account
//	tiyn statement CUSTOMER …       print an account's statement
//	tiyn help [COMMAND]             show help
//
// Run `tiyn COMMAND --help` for a command's flags and settings.
//
// Adding a command: a file of its own (sign.go, simulate.go) with
//
//	func init() { registerCommand("sign", Command{Summary: "…", Run: runSign}) }
//
// where runSign parses its flags with Main.FlagSet and Main.LoadConfig (a
// cmdSpec names the settings groups it needs, if any), writes to
// Main.Stdout, and returns usagef(…) for a bad command line.
//
// The code follows WTF Dial's Main: main() only turns signals into a
// context and an error into an exit code; everything else is on Main, which
// tests run in-process with their own environment and output.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2 // bad command line or configuration
	// exitBreaks (3, reconday.go): tiyn reconcile day finished with breaks.
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	m := NewMain()
	err := m.ParseFlags(ctx, os.Args[1:])
	if err == nil {
		err = m.Run(ctx)
	}
	stop()
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	os.Exit(m.exitCode(err))
}

// Command is one subcommand. Commands add themselves to the commands map
// from an init function in their own file (see registerCommand), so a new
// one (sign.go, simulate.go) needs no change anywhere else.
type Command struct {
	// Summary is the one line `tiyn help` shows.
	Summary string
	// Run runs the command with the arguments after its name. It parses its
	// own flags (Main.FlagSet, Main.LoadConfig) and may register cleanup
	// with Main.OnClose.
	Run func(ctx context.Context, m *Main, args []string) error
}

// commands holds every subcommand by name.
var commands = map[string]Command{}

// registerCommand adds a subcommand; call it from init. A duplicate name is
// a programmer error and panics.
func registerCommand(name string, c Command) {
	if _, dup := commands[name]; dup {
		panic("tiyn: command " + name + " registered twice")
	}
	if c.Run == nil {
		panic("tiyn: command " + name + " has no Run")
	}
	commands[name] = c
}

// Main is the program: its inputs, outputs and what it opened. Tests build
// one with their own environment and buffers and call ParseFlags, Run and
// Close like main does.
type Main struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// LookupEnv reads the environment (os.LookupEnv in production).
	LookupEnv func(key string) (string, bool)
	// OnListening, when set, is called with the address `serve` bound to,
	// before it serves (tests listen on 127.0.0.1:0).
	OnListening func(addr string)
	// OnAuxListening, when set, is called with the name ("metrics",
	// "pprof") and address of each auxiliary listener, before OnListening.
	OnAuxListening func(name, addr string)

	name    string   // the command chosen by ParseFlags
	args    []string // its arguments
	closers []func() error
}

// NewMain returns a Main wired to the process: stdio and the environment.
func NewMain() *Main {
	return &Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, LookupEnv: os.LookupEnv}
}

// usageError is a mistake on the command line or in the configuration:
// exit code 2, and the message says what to fix.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef makes a usageError.
func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// ParseFlags picks the command from args (the command line without the
// program name). The command's own flags are parsed by Run.
func (m *Main) ParseFlags(_ context.Context, args []string) error {
	if len(args) == 0 {
		// No command is a mistake (a script that lost its argument must
		// not succeed): the overview goes to stderr, exit 2.
		m.printUsage(m.Stderr)
		return usagef("no command given (see tiyn help)")
	}
	switch args[0] {
	case "-h", "-help", "--help":
		m.name = "help"
		return nil
	}
	if strings.HasPrefix(args[0], "-") {
		return usagef("flags go after the command, e.g. tiyn serve %s (see tiyn help)", args[0])
	}
	if _, ok := commands[args[0]]; !ok {
		return usagef("unknown command %q (see tiyn help)", args[0])
	}
	m.name, m.args = args[0], args[1:]
	return nil
}

// Run runs the command ParseFlags chose. serve returns when ctx is
// cancelled and the server has shut down.
func (m *Main) Run(ctx context.Context) error {
	if m.name == "" {
		return errors.New("tiyn: Run before ParseFlags")
	}
	return commands[m.name].Run(ctx, m, m.args)
}

// OnClose registers cleanup for Close, run in reverse order.
func (m *Main) OnClose(fn func() error) { m.closers = append(m.closers, fn) }

// Close releases what the command opened (the store), last opened first.
// It is safe to call more than once.
func (m *Main) Close() error {
	var errs []error
	for i := len(m.closers) - 1; i >= 0; i-- {
		errs = append(errs, m.closers[i]())
	}
	m.closers = nil
	return errors.Join(errs...)
}

// exitCode reports err on stderr and picks the exit code.
func (m *Main) exitCode(err error) int {
	var (
		ue *usageError
		be *breaksError
	)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &be):
		fmt.Fprintf(m.Stderr, "tiyn: %v\n", err)
		return exitBreaks
	case errors.As(err, &ue):
		fmt.Fprintf(m.Stderr, "tiyn: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(m.Stderr, "tiyn: %v\n", err)
	return exitError
}

// FlagSet makes a command's flag set: errors are returned, not fatal, and
// help goes to stderr.
func (m *Main) FlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("tiyn "+name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	return fs
}

// parseArgs parses flags wherever they appear among the positional
// arguments ("account open 6552 --currency KZT" as well as "account open
// --currency KZT 6552"), which the flag package alone does not. Everything
// after "--" is positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for range len(args) + 1 { // each round consumes at least one argument
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{err}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return pos, nil
}

func init() {
	registerCommand("help", Command{Summary: "show help for tiyn or for a command", Run: runHelp})
}

// runHelp prints the overview, or a command's help: `tiyn help`, `tiyn
// help COMMAND`, and `tiyn help --help` (or -h) like `tiyn help`.
func runHelp(ctx context.Context, m *Main, args []string) error {
	if len(args) > 1 {
		return usagef("help takes at most one COMMAND, got %q (see tiyn help)", args)
	}
	if len(args) == 1 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
		default:
			c, ok := commands[args[0]]
			if !ok {
				return usagef("unknown command %q (see tiyn help)", args[0])
			}
			return c.Run(ctx, m, []string{"--help"})
		}
	}
	m.printUsage(m.Stdout)
	return nil
}

// printUsage writes the overview of the commands to w.
func (m *Main) printUsage(w io.Writer) {
	fmt.Fprintf(w, "Tiyn — a KZT balance ledger for Monetix Cash-in Kazakhstan (kassa24).\n\nUsage:\n  tiyn COMMAND [flags]\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, n := range names {
		fmt.Fprintf(tw, "  %s\t%s\n", n, commands[n].Summary)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nRun 'tiyn COMMAND --help' for a command's flags and settings.\n")
}
