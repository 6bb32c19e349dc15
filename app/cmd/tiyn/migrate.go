package main

import (
	"context"
	"fmt"

	"github.com/tiyn/tiyn/adapters/sqlstore"
)

func init() {
	registerCommand("migrate", Command{Summary: "bring the database schema up to date and list the applied migrations", Run: runMigrate})
}

var migrateSpec = cmdSpec{
	Name: "migrate",
	Args: "[flags]",
	Description: `Applies the migrations this binary has and the database lacks, then lists the applied ones.
Safe to run again, and from several instances at once (serve also migrates at start).`,
	Groups: groupDB,
}

func runMigrate(ctx context.Context, m *Main, args []string) error {
	cfg, pos, err := m.LoadConfig(m.FlagSet("migrate"), migrateSpec, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("migrate takes no arguments, got %q", pos)
	}
	store, err := m.openStore(ctx, cfg)
	if err != nil {
		return err
	}
	if err := store.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	applied, err := store.Applied(ctx)
	if err != nil {
		return fmt.Errorf("list applied migrations: %w", err)
	}
	fmt.Fprintf(m.Stdout, "database %s (%s) is up to date; %d migration(s) applied:\n", sqlstore.RedactURL(cfg.DatabaseURL), store.Dialect(), len(applied))
	for _, name := range applied {
		fmt.Fprintf(m.Stdout, "  %s\n", name)
	}
	return nil
}
