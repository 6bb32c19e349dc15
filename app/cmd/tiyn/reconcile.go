package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"github.com/tiyn/tiyn/adapters/server"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/ports"
)

func init() {
	registerCommand("reconcile", Command{Summary: "reconcile a business day, or ask the platform about pending deposits now (reconcile day|pending --help)", Run: runReconcile})
}

var reconcilePendingSpec = cmdSpec{
	Name: "reconcile pending", Args: "[--limit N] [flags]",
	Description: `Asks the Monetix Gate, once, about every deposit pending longer than TIYN_STATUS_POLL_AFTER
(at most --limit, default 1000, oldest first; not those a running instance is asking about right
now), whatever its backoff, and applies the answers as tiyn serve's status poller does: a final
answer settles the deposit through the same exactly-once path as a callback. Then applies the
expiry. Prints what came of it; exits 1 when a check could not be stored.`,
	Groups: groupDB | groupLog | groupMonetix | groupPoll,
}

func runReconcile(ctx context.Context, m *Main, args []string) error {
	sub, rest := "", []string(nil)
	if len(args) > 0 {
		sub, rest = args[0], args[1:]
	}
	switch sub {
	case "day":
		return runReconcileDay(ctx, m, rest)
	case "pending":
		return runReconcilePending(ctx, m, rest)
	case "", "-h", "-help", "--help", "help":
		fmt.Fprintf(m.Stdout, "Usage:\n  tiyn reconcile day DATE [--csv FILE|-] [--columns FIELD=HEADER,…] [--amount-units major|minor]\n"+
			"  tiyn reconcile pending [--limit N]\n\nRun 'tiyn reconcile day --help' or 'tiyn reconcile pending --help' for the settings.\n")
		if sub == "" {
			return usagef("reconcile needs a subcommand: day or pending")
		}
		return nil
	}
	return usagef("unknown reconcile subcommand %q: want day or pending", sub)
}

func runReconcilePending(ctx context.Context, m *Main, args []string) error {
	fs := m.FlagSet("reconcile pending")
	limit := fs.Int("limit", ports.MaxPageSize, "most deposits to ask about (1.."+strconv.Itoa(ports.MaxPageSize)+")")
	cfg, pos, err := m.LoadConfig(fs, reconcilePendingSpec, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("reconcile pending takes no arguments, got %q", pos)
	}
	if *limit < 1 || *limit > ports.MaxPageSize {
		return usagef("--limit %d is outside 1..%d", *limit, ports.MaxPageSize)
	}
	if len(cfg.MonetixProjects) == 0 {
		return usagef("no Monetix project is configured: set %s (its keys sign the status requests)", envProjects)
	}
	logger := server.NewLogger(m.Stderr, cfg.LogLevel, cfg.LogFormat)
	store, err := m.openStore(ctx, cfg)
	if err != nil {
		return err
	}
	if err := store.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w (run tiyn migrate?)", err)
	}
	gate, err := newGate(cfg)
	if err != nil {
		return usagef("%s: %v", envGateURL, err)
	}
	ledger := app.NewService(store, system.Clock{}, &system.IDs{})
	poller, err := app.NewStatusPoller(ledger, gate, pollerConfig(cfg, logger, nil))
	if err != nil {
		return usagef("%v", err)
	}
	rep, err := poller.RoundNow(ctx, *limit)
	printRound(m, rep)
	if err != nil {
		return fmt.Errorf("reconcile pending: %w", err)
	}
	return nil
}

// printRound prints a round's report: how many were asked about, each
// result, and what the expiry did.
func printRound(m *Main, rep app.RoundReport) {
	fmt.Fprintf(m.Stdout, "asked about %d pending deposits\n", rep.Claimed)
	results := make([]string, 0, len(rep.Results))
	for r := range rep.Results {
		results = append(results, r)
	}
	sort.Strings(results)
	for _, r := range results {
		fmt.Fprintf(m.Stdout, "  %-16s %d\n", r, rep.Results[r])
	}
	fmt.Fprintf(m.Stdout, "expired %d, raised as status_unknown %d\n", rep.Expiry.Expired, rep.Expiry.Escalated)
}
