package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// exitBreaks is the exit status of a reconciliation that finished with
// breaks: the run is a record and nothing failed, but an operator has
// work (a script tells it from 0, all agree, and 1, the run failed).
const exitBreaks = 3

// maxBreaksListed bounds the breaks listed per class after a run; the rest
// are a REST call away.
const maxBreaksListed = 20

var reconcileDaySpec = cmdSpec{
	Name: "reconcile day", Args: "DATE [--csv FILE|-] [--columns FIELD=HEADER,…] [--amount-units major|minor] [flags]",
	Description: `Reconciles business day DATE (YYYY-MM-DD in TIYN_BUSINESS_TZ) against the platform's record of it:
a CSV report (--csv FILE, or - for standard input), or the Monetix Data API when no file is given.
Every platform operation and every ledger deposit of the day ends in one class; a successful sale
the ledger had pending, declined or expired is credited through the one exactly-once settle path
(healed), landing on today, the day the run makes it; every break raises an exception. The same
input as the day's latest run changes nothing and says so. Prints a progress line on a terminal,
then the counts and sums per class and the breaks.

The report's default header:
  ` + monetix.DefaultReportHeader + `
amount in major units (100.00; --amount-units minor reads tiyn), completed_at YYYY-MM-DD hh:mm:ss
in the business time zone; --columns maps other header names (payment_id=Payment ID,amount=Sum).

Exit status: 0 reconciled without a break; 3 reconciled, with breaks (listed); 1 the run failed
(nothing of an unreadable source is applied) or another run of the day is running; 2 a bad
command line or configuration (the Data API not configured, with no --csv).`,
	Groups: groupDB | groupLog | groupMonetix | groupData | groupBooks,
}

// breaksError is a run that finished with breaks: exit status exitBreaks.
type breaksError struct {
	run ports.ReconRun
}

func (e *breaksError) Error() string {
	return fmt.Sprintf("reconciliation %s of %s has %d breaks: resolve or dismiss their exceptions before tiyn close %s",
		e.run.ID, e.run.Day, e.run.Breaks(), e.run.Day)
}

func runReconcileDay(ctx context.Context, m *Main, args []string) error {
	fs := m.FlagSet("reconcile day")
	csvPath := fs.String("csv", "", "the day's CSV report: a `FILE`, or - for standard input (default: the Data API)")
	columns := fs.String("columns", "", "header names of the report's columns, as `FIELD=HEADER,…` (FIELD a default header name)")
	units := fs.String("amount-units", "", "how the report writes amounts: `major` (100.00, the default) or minor (tiyn)")
	cfg, pos, err := m.LoadConfig(fs, reconcileDaySpec, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("reconcile day takes one DATE (YYYY-MM-DD), got %d argument(s)", len(pos))
	}
	day, err := domain.ParseBusinessDay(pos[0], cfg.businessZone())
	if err != nil {
		return usagef("%v", err)
	}
	progress := newProgressLine(m.Stderr, isTerminal(m.Stderr))
	src, closeSrc, err := m.reconcileSource(cfg, *csvPath, *columns, *units, progress)
	if err != nil {
		return err
	}
	defer closeSrc()
	ledger, err := m.cliLedger(ctx, cfg)
	if err != nil {
		return err
	}
	cmd := reconTemplate(cfg)
	cmd.Day, cmd.Source, cmd.StartedBy, cmd.Progress = day, src, cliActor(), progress.update
	run, err := ledger.ReconcileDay(ctx, cmd)
	progress.clear()
	if err != nil {
		return fmt.Errorf("reconcile %s: %w", day, err)
	}
	if err := printRun(ctx, m.Stdout, ledger, run); err != nil {
		return err
	}
	if run.Breaks() > 0 {
		return &breaksError{run: run}
	}
	return nil
}

// reconcileSource opens the run's source: the report file (or standard
// input), else the Data API, which must then be configured.
func (m *Main) reconcileSource(cfg Config, path, columns, units string, progress *progressLine) (ports.OperationSource, func(), error) {
	if path == "" {
		if columns != "" || units != "" {
			return nil, nil, usagef("--columns and --amount-units describe a CSV report: give it with --csv FILE")
		}
		src, err := cfg.DataSource()
		if errors.Is(err, ErrNoDataAPI) {
			return nil, nil, usagef("no --csv report and %v", err)
		}
		if err != nil {
			return nil, nil, usagef("%s: %v", envDataURL, err)
		}
		return src, func() {}, nil
	}
	r := m.Stdin
	closeFn := func() {}
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, usagef("--csv: %v", err)
		}
		closeFn = func() { _ = f.Close() }
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			progress.size = st.Size()
		}
		r = f
	}
	src, err := reportSource(&countingReader{r: r, n: &progress.read}, columns, units)
	if err != nil {
		closeFn()
		return nil, nil, usagef("%v", err)
	}
	return src, closeFn, nil
}

// countingReader counts the bytes read through it (for the progress bar).
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// progressLine draws a run's progress on one terminal line, redrawn at
// most every progressEvery; off a terminal it draws nothing (a log or a
// pipe gets the summary only).
type progressLine struct {
	w     io.Writer
	live  bool
	size  int64        // the report's size in bytes (0: unknown)
	read  atomic.Int64 // bytes of the report read so far
	last  time.Time
	phase string
	drawn bool
}

const (
	progressEvery = 100 * time.Millisecond
	progressWidth = 30
)

func newProgressLine(w io.Writer, live bool) *progressLine { return &progressLine{w: w, live: live} }

// update is the run's progress callback (ports.ReconcileDay.Progress).
func (p *progressLine) update(pr ports.ReconProgress) {
	if !p.live || pr.Phase == ports.PhaseFinished {
		return
	}
	now := time.Now()
	if pr.Phase == p.phase && now.Sub(p.last) < progressEvery {
		return
	}
	p.phase, p.last, p.drawn = pr.Phase, now, true
	fmt.Fprint(p.w, "\r\x1b[K"+p.text(pr))
}

// text is the line for pr: a bar when the whole is known.
func (p *progressLine) text(pr ports.ReconProgress) string {
	switch pr.Phase {
	case ports.PhaseReading:
		if p.size > 0 {
			return bar(p.read.Load(), p.size) + fmt.Sprintf(" reading the report: %d rows", pr.Rows)
		}
		return fmt.Sprintf("reading: %d rows", pr.Rows)
	case ports.PhaseMatching:
		return bar(pr.Done, pr.Rows) + fmt.Sprintf(" matching: %d of %d rows", pr.Done, pr.Rows)
	}
	return fmt.Sprintf("the ledger's deposits of the day: %d items classified", pr.Done)
}

// bar is "[=====     ]  50%".
func bar(done, total int64) string {
	if total <= 0 {
		return ""
	}
	done = min(max(done, 0), total)
	n := int(done * progressWidth / total)
	return "[" + strings.Repeat("=", n) + strings.Repeat(" ", progressWidth-n) + "]" + fmt.Sprintf(" %3d%%", done*100/total)
}

// clear wipes the progress line before the summary.
func (p *progressLine) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}

// printRun prints a run's summary: what it was, the counts and sums per
// class, and the breaks (up to maxBreaksListed per class, the rest by
// pointer to the REST API).
func printRun(ctx context.Context, w io.Writer, ledger ports.Reconciler, run ports.ReconRun) error {
	fmt.Fprintf(w, "reconciliation %s of %s (%s), source %s: %d rows", run.ID, run.Day, run.Day.Location(), run.Source, run.Rows)
	if run.BadRows > 0 {
		fmt.Fprintf(w, ", %d unreadable", run.BadRows)
	}
	fmt.Fprintln(w)
	if run.Unchanged {
		fmt.Fprintf(w, "unchanged: this input was reconciled already (run %s, finished %s); nothing changed\n",
			run.ID, run.FinishedAt.In(run.Day.Location()).Format(time.DateTime))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "class\tcount\tplatform KZT\tledger KZT\t\n")
	var count int64
	platform, ledgerSum := new(big.Int), new(big.Int)
	for _, c := range domain.ReconClasses() {
		t := run.Classes[c]
		name := c.String()
		if c.IsBreak() {
			name += " (break)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t\n", name, t.Count, majorKZT(t.Platform), majorKZT(t.Ledger))
		count += t.Count
		addBig(platform, t.Platform)
		addBig(ledgerSum, t.Ledger)
	}
	fmt.Fprintf(tw, "total\t%d\t%s\t%s\t\n", count, majorKZT(platform), majorKZT(ledgerSum))
	if err := tw.Flush(); err != nil {
		return err
	}
	if run.Breaks() == 0 {
		fmt.Fprintf(w, "\nno breaks: the day can be closed (tiyn close %s)\n", run.Day)
		return nil
	}
	fmt.Fprintf(w, "\n%d breaks, each with an exception (GET /v1/exceptions/{id}):\n", run.Breaks())
	for _, c := range domain.ReconClasses() {
		n := run.Count(c)
		if !c.IsBreak() || n == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s (%d):\n", c, n)
		items, err := ledger.ListReconItems(ctx, ports.ReconItemQuery{RunID: run.ID, Class: c, Limit: maxBreaksListed})
		if err != nil {
			return fmt.Errorf("list the breaks of %s: %w", run.ID, err)
		}
		for _, it := range items {
			fmt.Fprintf(w, "  %s\n", breakLine(it))
		}
		if n > int64(len(items)) {
			fmt.Fprintf(w, "  … and %d more: GET /v1/reconciliations/%s/items?class=%s (or items.csv)\n", n-int64(len(items)), run.ID, c)
		}
	}
	return nil
}

// breakLine is one break: where it is, the payment, the exception, why.
func breakLine(it ports.ReconItem) string {
	var parts []string
	if it.Line > 0 {
		parts = append(parts, fmt.Sprintf("line %d", it.Line))
	} else {
		parts = append(parts, "ledger")
	}
	if it.PaymentID != "" {
		parts = append(parts, "payment "+it.PaymentID)
	}
	if it.ExceptionID != "" {
		parts = append(parts, "exception "+it.ExceptionID)
	}
	note := it.Note
	if note == "" {
		note = it.Class.String()
	}
	return strings.Join(parts, ", ") + ": " + note
}

func addBig(sum, v *big.Int) {
	if v != nil {
		sum.Add(sum, v)
	}
}

// majorKZT writes a sum of tiyn as KZT ("1234.50"), exactly; nil is 0.
func majorKZT(minor *big.Int) string {
	if minor == nil {
		minor = new(big.Int)
	}
	return major(minor, domain.KZT)
}
