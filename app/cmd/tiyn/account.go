package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tiyn/tiyn/adapters/export"
	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// MaxStatementLines bounds what `tiyn statement` prints: a statement is
// paged through the store, and the bound keeps a mistaken run from reading
// a whole ledger. Ask for a date range to see more of a busy account.
const MaxStatementLines = 1_000_000

// accountIDPrefix starts every account id (system.IDs with prefix "acc"),
// which tells an id from a customer id on the command line.
const accountIDPrefix = "acc_"

func init() {
	registerCommand("account", Command{Summary: "open or show a customer account (account open|show --help)", Run: runAccount})
	registerCommand("statement", Command{Summary: "print a customer account's statement, as a table or CSV", Run: runStatement})
}

var (
	accountOpenSpec = cmdSpec{
		Name: "account open", Args: "CUSTOMER [flags]",
		Description: "Opens the customer's account in a currency, or shows the one that exists (opening is idempotent).\nThe audit trail names the operator as cli:<os user>.",
		Groups:      groupDB,
	}
	accountShowSpec = cmdSpec{
		Name: "account show", Args: "CUSTOMER|ACCOUNT_ID [flags]",
		Description: "Shows an account, found by its id (acc_…) or by customer id and currency.",
		Groups:      groupDB,
	}
	statementSpec = cmdSpec{
		Name: "statement", Args: "CUSTOMER|ACCOUNT_ID [flags]",
		Description: "Prints the postings of an account with the balance after each, oldest first.\n" +
			"--from and --to take 2006-01-02 (UTC midnight) or RFC 3339 times; --to is exclusive.\n" +
			"--csv prints the statement CSV of GET /v1/accounts/{id}/statement.csv, byte for byte:\n" +
			"  " + strings.Join(export.Statement.Header, ",") + "\n" +
			"amounts are never negative (direction says credit or debit), times RFC 3339 UTC with six\n" +
			"fractional digits. A CSV longer than " + strconv.Itoa(MaxStatementLines) + " lines stops with an error; narrow the period.",
		Groups: groupDB,
	}
)

func runAccount(ctx context.Context, m *Main, args []string) error {
	sub, rest := "", []string(nil)
	if len(args) > 0 {
		sub, rest = args[0], args[1:]
	}
	switch sub {
	case "open":
		return runAccountOpen(ctx, m, rest)
	case "show":
		return runAccountShow(ctx, m, rest)
	case "", "-h", "-help", "--help", "help":
		fmt.Fprintf(m.Stdout, "Usage:\n  tiyn account open CUSTOMER [--currency KZT] [--additional-id ID]\n  tiyn account show CUSTOMER|ACCOUNT_ID [--currency KZT]\n\nRun 'tiyn account open --help' for the settings.\n")
		if sub == "" {
			return usagef("account needs a subcommand: open or show")
		}
		return nil
	}
	return usagef("unknown account subcommand %q: want open or show", sub)
}

// errNotMigrated tells an operator what to do about an old schema.
var errNotMigrated = errors.New("the database schema is not up to date: run tiyn migrate")

// errNoDatabase: an operator command was pointed at an SQLite file that
// does not exist (a typo in the path, the wrong working directory).
var errNoDatabase = errors.New("no such database")

// cliLedger opens the store for an operator command and builds the use
// cases on it. The schema must be current: an operator command does not
// migrate behind anyone's back, and it never creates a database: opening
// SQLite creates a missing file, so a missing file is refused first (the
// operator mistyped the path, or is in the wrong directory).
func (m *Main) cliLedger(ctx context.Context, cfg Config) (*app.Service, error) {
	if path, ok := sqlstore.SQLitePath(cfg.DatabaseURL); ok {
		if _, err := os.Stat(path); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%w: the SQLite file %s does not exist (%s=%s); check the path, or create the "+
					"database with tiyn migrate", errNoDatabase, path, cfg.DatabaseURLFrom, cfg.DatabaseURL)
			}
			return nil, fmt.Errorf("database %s: %w", cfg.DatabaseURL, err)
		}
	}
	store, err := m.openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := store.Ping(ctx); err != nil {
		if errors.Is(err, ports.ErrNotMigrated) {
			return nil, fmt.Errorf("%w (%w)", errNotMigrated, err)
		}
		return nil, sqlstore.RedactError(fmt.Errorf("database %s: %w", sqlstore.RedactURL(cfg.DatabaseURL), err), cfg.DatabaseURL)
	}
	return app.NewService(store, system.Clock{}, &system.IDs{}, app.WithBusinessZone(cfg.BusinessZone)), nil
}

// cliActor names the operator in the audit trail.
func cliActor() string {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = os.Getenv("USER")
	}
	if name == "" {
		name = "unknown"
	}
	return "cli:" + name
}

func currencyFlag(v string) (domain.Currency, error) {
	c, err := domain.LookupCurrency(strings.ToUpper(strings.TrimSpace(v)))
	if err != nil {
		return domain.Currency{}, usagef("--currency: %v", err)
	}
	return c, nil
}

func runAccountOpen(ctx context.Context, m *Main, args []string) error {
	fs := m.FlagSet("account open")
	currency := fs.String("currency", domain.KZT.Code(), "the account's `CODE`")
	additional := fs.String("additional-id", "", "the customer's additional `ID` (answered to verify)")
	cfg, pos, err := m.LoadConfig(fs, accountOpenSpec, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("account open takes one CUSTOMER id, got %d argument(s)", len(pos))
	}
	cur, err := currencyFlag(*currency)
	if err != nil {
		return err
	}
	ledger, err := m.cliLedger(ctx, cfg)
	if err != nil {
		return err
	}
	res, err := ledger.OpenAccount(ctx, ports.OpenAccount{
		CustomerID: pos[0], AdditionalCustomerID: *additional, Currency: cur, Actor: cliActor(),
	})
	if err != nil {
		return fmt.Errorf("open account for %q: %w", pos[0], err)
	}
	if res.Created {
		fmt.Fprintln(m.Stdout, "opened:")
	} else {
		fmt.Fprintln(m.Stdout, "already open:")
	}
	return printAccount(m.Stdout, res.Account)
}

func runAccountShow(ctx context.Context, m *Main, args []string) error {
	fs := m.FlagSet("account show")
	currency := fs.String("currency", domain.KZT.Code(), "the account's `CODE`, when looking up by customer")
	cfg, pos, err := m.LoadConfig(fs, accountShowSpec, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("account show takes one CUSTOMER or ACCOUNT_ID, got %d argument(s)", len(pos))
	}
	cur, err := currencyFlag(*currency)
	if err != nil {
		return err
	}
	ledger, err := m.cliLedger(ctx, cfg)
	if err != nil {
		return err
	}
	acc, err := findAccount(ctx, ledger, pos[0], cur)
	if err != nil {
		return err
	}
	return printAccount(m.Stdout, acc)
}

// findAccount takes an account id or a customer id: an id is tried first
// when it looks like one, and a customer whose id merely looks like an
// account id is still found.
func findAccount(ctx context.Context, ledger ports.Ledger, ref string, cur domain.Currency) (domain.Account, error) {
	if strings.HasPrefix(ref, accountIDPrefix) {
		acc, err := ledger.Account(ctx, ref)
		if err == nil || !errors.Is(err, ports.ErrNotFound) {
			return acc, err
		}
	}
	acc, err := ledger.AccountByCustomer(ctx, ref, cur)
	if errors.Is(err, ports.ErrNotFound) {
		return domain.Account{}, fmt.Errorf("customer %q has no %s account: %w", ref, cur, ports.ErrNotFound)
	}
	return acc, err
}

func printAccount(w io.Writer, a domain.Account) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	rows := [][2]string{
		{"id", a.ID()},
		{"customer", a.CustomerID()},
		{"additional id", a.AdditionalCustomerID()},
		{"currency", a.Currency().Code()},
		{"status", a.Status().String()},
		{"balance", a.Balance().String()},
		{"balance (minor)", strconv.FormatInt(a.Balance().Minor(), 10)},
		{"version", strconv.FormatInt(a.Version(), 10)},
		{"created", export.FormatTime(a.CreatedAt())},
		{"updated", export.FormatTime(a.UpdatedAt())},
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "  %s\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

func runStatement(ctx context.Context, m *Main, args []string) error {
	fs := m.FlagSet("statement")
	currency := fs.String("currency", domain.KZT.Code(), "the account's `CODE`, when looking up by customer")
	from := fs.String("from", "", "first `TIME` included")
	to := fs.String("to", "", "first `TIME` excluded")
	asCSV := fs.Bool("csv", false, "print CSV instead of a table")
	cfg, pos, err := m.LoadConfig(fs, statementSpec, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("statement takes one CUSTOMER or ACCOUNT_ID, got %d argument(s)", len(pos))
	}
	cur, err := currencyFlag(*currency)
	if err != nil {
		return err
	}
	q := ports.StatementQuery{}
	if q.From, err = parseTimeFlag("--from", *from); err != nil {
		return err
	}
	if q.To, err = parseTimeFlag("--to", *to); err != nil {
		return err
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.To.After(q.From) {
		return usagef("--to %s is not after --from %s", *to, *from)
	}
	ledger, err := m.cliLedger(ctx, cfg)
	if err != nil {
		return err
	}
	acc, err := findAccount(ctx, ledger, pos[0], cur)
	if err != nil {
		return err
	}
	q.AccountID = acc.ID()

	if *asCSV {
		return printStatementCSV(ctx, m.Stdout, ledger, q)
	}
	fmt.Fprintf(m.Stdout, "account %s, customer %s, %s, %s, balance %s\n\n",
		acc.ID(), acc.CustomerID(), acc.Currency(), acc.Status(), acc.Balance())
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tKIND\tAMOUNT\tBALANCE\tPAYMENT ID\tDESCRIPTION")
	printed, more, err := pageStatement(ctx, ledger, q, func(page []ports.StatementLine) error {
		for _, l := range page {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Seq, export.FormatTime(l.CreatedAt), l.Kind, l.Amount,
				l.BalanceAfter, dash(l.PaymentID), dash(oneLine(l.Description)))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if printed == 0 {
		fmt.Fprintln(m.Stdout, "no postings in that period")
	}
	if more {
		fmt.Fprintf(m.Stdout, "\nstopped after %d lines; narrow the period with --from and --to\n", MaxStatementLines)
	}
	return nil
}

// printStatementCSV writes the statement CSV (export.Statement, the format
// of the REST statement.csv) page by page. A statement longer than
// MaxStatementLines is an error, so a truncated file never looks whole.
func printStatementCSV(ctx context.Context, w io.Writer, ledger ports.Ledger, q ports.StatementQuery) error {
	cw := export.NewWriter(w, export.Statement)
	if err := cw.Write(); err != nil { // the header, also for an empty period
		return err
	}
	_, more, err := pageStatement(ctx, ledger, q, func(page []ports.StatementLine) error { return cw.Write(page...) })
	if err != nil {
		return err
	}
	if more {
		return fmt.Errorf("statement of %s: stopped after %d lines; narrow the period with --from and --to", q.AccountID, MaxStatementLines)
	}
	return nil
}

// pageStatement reads the statement page by page (never all of it at
// once) into each, up to MaxStatementLines lines. It says how many it
// read and whether more were left unread.
func pageStatement(ctx context.Context, ledger ports.Ledger, q ports.StatementQuery,
	each func([]ports.StatementLine) error) (printed int, more bool, err error) {
	for {
		q.Limit = min(ports.MaxPageSize, MaxStatementLines-printed)
		if q.Limit == 0 {
			q.Limit = 1 // only to learn whether anything is left
		}
		page, err := ledger.Statement(ctx, q)
		if err != nil {
			return printed, false, fmt.Errorf("statement of %s: %w", q.AccountID, err)
		}
		if printed >= MaxStatementLines {
			return printed, len(page) > 0, nil
		}
		if err := each(page); err != nil {
			return printed, false, err
		}
		printed += len(page)
		if len(page) < q.Limit {
			return printed, false, nil
		}
		q.AfterSeq = page[len(page)-1].Seq
	}
}

// parseTimeFlag reads 2006-01-02 (UTC midnight) or an RFC 3339 time.
func parseTimeFlag(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.DateOnly, time.RFC3339Nano} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, usagef("%s: %q is not a date (2006-01-02) or an RFC 3339 time", name, v)
}

// oneLine keeps a description from breaking the table.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		return r
	}, s)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
