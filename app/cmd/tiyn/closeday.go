package main

import (
	"context"
	"fmt"
	"io"
	"math/big"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

func init() {
	registerCommand("close", Command{Summary: "close a business day and print its statement's totals (close --help)", Run: runClose})
}

var closeSpec = cmdSpec{
	Name: "close", Args: "DATE [--override --reason TEXT] [flags]",
	Description: `Closes business day DATE (YYYY-MM-DD in TIYN_BUSINESS_TZ): allowed once the day has ended there
and its latest reconciliation (tiyn reconcile day) has no open break — a break is open while its
exception is — or with --override and a --reason, kept on the record and in the audit trail (as
cli:<os user>). The close keeps, per account and per clearing account, the day's opening balance,
credits, debits and closing balance; from then on nothing is written with a time inside the day,
and a later correction lands in the next open day. Prints the record and the statement's totals
per currency (the whole statement: GET /v1/days/{date} and /v1/days/{date}.csv).

Exit status: 0 closed; 1 refused (not ended, closed already, open breaks) or failed; 2 a bad
command line or configuration.`,
	Groups: groupDB | groupBooks,
}

func runClose(ctx context.Context, m *Main, args []string) error {
	fs := m.FlagSet("close")
	override := fs.Bool("override", false, "close despite open breaks, or without a reconciliation (needs --reason)")
	reason := fs.String("reason", "", "why the day closes with an override (`TEXT`, kept in the audit trail)")
	cfg, pos, err := m.LoadConfig(fs, closeSpec, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("close takes one DATE (YYYY-MM-DD), got %d argument(s)", len(pos))
	}
	if *override != (*reason != "") {
		return usagef("--override and --reason go together: an override says why")
	}
	day, err := domain.ParseBusinessDay(pos[0], cfg.businessZone())
	if err != nil {
		return usagef("%v", err)
	}
	ledger, err := m.cliLedger(ctx, cfg)
	if err != nil {
		return err
	}
	rec, err := ledger.CloseDay(ctx, ports.CloseDay{Day: day, By: cliActor(), Override: *override, Reason: *reason})
	if err != nil {
		return fmt.Errorf("close %s: %w", day, err)
	}
	return printDay(ctx, m.Stdout, ledger, rec)
}

// dayTotals sums one side of a currency's statement.
type dayTotals struct {
	accounts                          int64
	opening, credits, debits, closing big.Int
}

func (t *dayTotals) add(b ports.DayBalance) {
	t.accounts++
	t.opening.Add(&t.opening, big.NewInt(b.Opening))
	t.credits.Add(&t.credits, big.NewInt(b.Credits))
	t.debits.Add(&t.debits, big.NewInt(b.Debits))
	t.closing.Add(&t.closing, big.NewInt(b.Closing))
}

// printDay prints a closed day's record and its statement's totals per
// currency: customers, system accounts (clearing, revenue), and whether
// they balance.
func printDay(ctx context.Context, w io.Writer, ledger ports.Reconciler, rec ports.DayRecord) error {
	type sides struct{ customers, system dayTotals }
	totals := map[domain.Currency]*sides{}
	after := ""
	for {
		view, err := ledger.Day(ctx, ports.DayBalanceQuery{Day: rec.Day, AfterAccountID: after, Limit: ports.MaxPageSize})
		if err != nil {
			return fmt.Errorf("read the statement of %s: %w", rec.Day, err)
		}
		for _, b := range view.Balances {
			s := totals[b.Currency]
			if s == nil {
				s = &sides{}
				totals[b.Currency] = s
			}
			if b.System {
				s.system.add(b)
			} else {
				s.customers.add(b)
			}
		}
		if len(view.Balances) < ports.MaxPageSize {
			break
		}
		after = view.Balances[len(view.Balances)-1].AccountID
	}
	fmt.Fprintf(w, "closed %s (%s) at %s by %s\n", rec.Day, rec.Day.Location(),
		rec.ClosedAt.In(rec.Day.Location()).Format(time.DateTime), rec.ClosedBy)
	if rec.RunID != "" {
		fmt.Fprintf(w, "reconciliation %s, %d open breaks\n", rec.RunID, rec.OpenBreaks)
	} else {
		fmt.Fprintln(w, "no reconciliation")
	}
	if rec.Override {
		fmt.Fprintf(w, "override: %s\n", rec.Reason)
	}
	fmt.Fprintf(w, "%d statement lines\n\n", rec.Accounts)
	currencies := make([]domain.Currency, 0, len(totals))
	for c := range totals {
		currencies = append(currencies, c)
	}
	slices.SortFunc(currencies, func(a, b domain.Currency) int {
		if a.Code() < b.Code() {
			return -1
		}
		if a.Code() > b.Code() {
			return 1
		}
		return 0
	})
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "currency\tside\taccounts\topening\tcredits\tdebits\tclosing\t\n")
	for _, c := range currencies {
		s := totals[c]
		for _, row := range []struct {
			name string
			t    *dayTotals
		}{{"customers", &s.customers}, {"system", &s.system}} {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t\n", c.Code(), row.name, row.t.accounts, major(&row.t.opening, c),
				major(&row.t.credits, c), major(&row.t.debits, c), major(&row.t.closing, c))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range currencies {
		s := totals[c]
		sum := new(big.Int).Add(&s.customers.closing, &s.system.closing)
		if sum.Sign() == 0 {
			fmt.Fprintf(w, "%s: the system accounts balance the customers (closings sum to 0)\n", c.Code())
		} else {
			fmt.Fprintf(w, "%s: the closings sum to %s, not 0: run GET /v1/ledger/check\n", c.Code(), major(sum, c))
		}
	}
	return nil
}

// major writes minor units of c as a decimal, exactly.
func major(minor *big.Int, c domain.Currency) string {
	e := int(c.Exponent())
	abs := new(big.Int).Abs(minor)
	text := abs.String()
	if e > 0 {
		for len(text) <= e {
			text = "0" + text
		}
		text = text[:len(text)-e] + "." + text[len(text)-e:]
	}
	if minor.Sign() < 0 {
		text = "-" + text
	}
	return text
}
