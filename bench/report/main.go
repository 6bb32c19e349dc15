// Command report turns one `make bench` run directory (bench/run.sh writes
// it) into the benchmark table on stdout and the same figures as JSON, and
// checks them against issue 6's targets. It reads only files: every
// measurement was taken by run.sh while the run was going.
//
//	go run ./bench/report -dir bench/out/<stamp> [-json bench/out/<stamp>/bench.json]
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Targets of issue 6, as constants so the verdict lines and the README
// agree on them.
const (
	// TargetRatioC16 is the PostgreSQL credits/s ÷ baseline tps wanted at
	// concurrency 16, TargetRatioC64 at 64.
	TargetRatioC16 = 1.0
	TargetRatioC64 = 2.0
	// TargetSQLitePaymentsC16 is SQLite's full payments/s wanted at 16.
	TargetSQLitePaymentsC16 = 2000
	// TargetVerifyP99Ms bounds verify's p99 at concurrency 16.
	TargetVerifyP99Ms = 10
	// TargetRSSMiB bounds the server's peak RSS under load.
	TargetRSSMiB = 100
)

// rowOrder is the order rows are printed in (run.sh's row names).
var rowOrder = []string{"baseline", "pg-pgdriver-gc", "pg-pgdriver-nogc", "pg-pgx-gc", "pg-pgx-nogc", "sqlite-gc", "sqlite-nogc"}

// Percentiles is one request type's latency from `tiyn simulate --json`.
type Percentiles struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// SimReport is the part of `tiyn simulate --json` the table uses.
type SimReport struct {
	Mode            string                 `json:"mode"`
	Concurrency     int                    `json:"concurrency"`
	Payments        int                    `json:"payments"`
	Succeeded       int                    `json:"succeeded"`
	Callbacks       int                    `json:"callbacks"`
	Effects         map[string]int         `json:"effects"`
	Errors          int                    `json:"errors"`
	ErrorSamples    []string               `json:"error_samples,omitempty"`
	Mismatches      []json.RawMessage      `json:"mismatches"`
	ElapsedSeconds  float64                `json:"elapsed_seconds"`
	PaymentsPerSec  float64                `json:"payments_per_sec"`
	CallbacksPerSec float64                `json:"callbacks_per_sec"`
	Latency         map[string]Percentiles `json:"latency"`
}

// Phase is one simulate run of a cell with the server's resource use
// around it.
type Phase struct {
	PaymentsPerSec  float64                `json:"payments_per_sec"`
	CallbacksPerSec float64                `json:"callbacks_per_sec"`
	CreditsPerSec   float64                `json:"credits_per_sec"`
	Payments        int                    `json:"payments"`
	Callbacks       int                    `json:"callbacks"`
	Latency         map[string]Percentiles `json:"latency_ms"`
	Mismatches      int                    `json:"mismatches"`
	Errors          int                    `json:"errors"`
	ErrorSamples    []string               `json:"error_samples,omitempty"`
	ServerCPUSec    float64                `json:"server_cpu_seconds"`
	ServerHWMKiB    int64                  `json:"server_rss_hwm_kib"`
	// The other processes on the machine during the phase, and group
	// commit's counters (zero when it is off).
	SimCPUSec      float64 `json:"simulator_cpu_seconds"`
	PGCPUSec       float64 `json:"postgres_cpu_seconds"`
	Batches        float64 `json:"group_commit_batches"`
	BatchItems     float64 `json:"group_commit_items"`
	BatchExecSec   float64 `json:"group_commit_exec_seconds"`
	BatchCommitSec float64 `json:"group_commit_commit_seconds"`
	ExitCode       int     `json:"simulate_exit_code"`
}

// Row is one line of the table: a store configuration at one concurrency.
type Row struct {
	Name        string  `json:"row"`
	Concurrency int     `json:"concurrency"`
	Full        *Phase  `json:"full,omitempty"`
	Callbacks   *Phase  `json:"callbacks,omitempty"`
	BaselineTPS float64 `json:"baseline_tps,omitempty"`
	// RatioCredits is callbacks-mode credits/s ÷ baseline tps (the
	// issue's "callbacks credited per second"); RatioCallbacks counts every
	// callback answered (replays and declines too).
	RatioCredits   float64 `json:"ratio_credits_to_baseline,omitempty"`
	RatioCallbacks float64 `json:"ratio_callbacks_to_baseline,omitempty"`
	RSSMiB         float64 `json:"server_rss_hwm_mib,omitempty"`
	CPUPer1000     float64 `json:"server_cpu_seconds_per_1000_payments,omitempty"`
	// The full phase's CPU per 1,000 payments of PostgreSQL (on this
	// machine) and of the simulator, and its mean group-commit batch.
	PGCPUPer1000  float64 `json:"postgres_cpu_seconds_per_1000_payments,omitempty"`
	SimCPUPer1000 float64 `json:"simulator_cpu_seconds_per_1000_payments,omitempty"`
	BatchSize     float64 `json:"group_commit_mean_batch,omitempty"`
	// Baseline rows: PostgreSQL's CPU per credit, ms.
	BaselinePGCPUMs float64 `json:"baseline_postgres_cpu_ms_per_credit,omitempty"`
	Mismatches      int     `json:"mismatches"`
	Errors          int     `json:"errors"`
	// Baseline rows only.
	BaselineLatencyMs float64 `json:"baseline_latency_avg_ms,omitempty"`
	BaselineFailed    int     `json:"baseline_failed,omitempty"`
	BaselineCheck     string  `json:"baseline_check,omitempty"`
}

// Verdict is one target and whether this run met it.
type Verdict struct {
	Target string  `json:"target"`
	Value  float64 `json:"value"`
	Want   string  `json:"want"`
	Met    bool    `json:"met"`
	Known  bool    `json:"measured"`
}

// Result is the JSON document.
type Result struct {
	Machine map[string]string `json:"machine"`
	Rows    []Row             `json:"rows"`
	Targets []Verdict         `json:"targets"`
}

func main() {
	dir := flag.String("dir", "", "a bench/out/<stamp> directory written by bench/run.sh")
	jsonOut := flag.String("json", "", "also write the figures as JSON to this file")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "usage: report -dir bench/out/<stamp> [-json FILE]")
		os.Exit(2)
	}
	res, err := load(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	if err := writeTable(os.Stdout, res); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	if *jsonOut != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err == nil {
			err = os.WriteFile(*jsonOut, append(b, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			os.Exit(1)
		}
	}
}

var (
	simFile      = regexp.MustCompile(`^(.+)-(full|callbacks)-c(\d+)\.sim\.json$`)
	baselineFile = regexp.MustCompile(`^baseline-c(\d+)\.pgbench\.txt$`)
	tpsLine      = regexp.MustCompile(`(?m)^tps = ([0-9.]+)`)
	latLine      = regexp.MustCompile(`(?m)^latency average = ([0-9.]+) ms`)
	failedLine   = regexp.MustCompile(`(?m)^number of failed transactions: (\d+)`)
	abortedLine  = regexp.MustCompile(`aborted`)
)

func load(dir string) (Result, error) {
	res := Result{Machine: map[string]string{}}
	if kv, err := readKV(filepath.Join(dir, "machine.txt")); err == nil {
		res.Machine = kv
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return res, err
	}
	rows := map[string]*Row{}
	get := func(name string, c int) *Row {
		k := name + "/" + strconv.Itoa(c)
		if rows[k] == nil {
			rows[k] = &Row{Name: name, Concurrency: c}
		}
		return rows[k]
	}
	for _, e := range entries {
		if m := baselineFile.FindStringSubmatch(e.Name()); m != nil {
			c, _ := strconv.Atoi(m[1])
			r := get("baseline", c)
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return res, err
			}
			r.BaselineTPS = floatMatch(tpsLine, b)
			r.BaselineLatencyMs = floatMatch(latLine, b)
			r.BaselineFailed = int(floatMatch(failedLine, b))
			if chk, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("baseline-c%d.check.txt", c))); err == nil {
				r.BaselineCheck, r.Mismatches = baselineCheck(string(chk))
			}
			// A client that ran out of deposits or hit an error aborts, and
			// pgbench's figures then cover a partial run.
			if r.BaselineTPS == 0 || abortedLine.Match(b) {
				r.Errors = 1
			}
			if meta, err := readKV(filepath.Join(dir, fmt.Sprintf("baseline-c%d.meta", c))); err == nil && r.BaselineTPS > 0 {
				pg, _ := strconv.ParseFloat(meta["pg_cpu_seconds"], 64)
				dur, _ := strconv.ParseFloat(res.Machine["duration_seconds"], 64)
				if pg > 0 && dur > 0 {
					r.BaselinePGCPUMs = pg / (r.BaselineTPS * dur) * 1000
				}
			}
			continue
		}
		m := simFile.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		c, _ := strconv.Atoi(m[3])
		ph, err := loadPhase(dir, strings.TrimSuffix(e.Name(), ".sim.json"))
		if err != nil {
			return res, err
		}
		r := get(m[1], c)
		if m[2] == "full" {
			r.Full = ph
		} else {
			r.Callbacks = ph
		}
	}
	for _, r := range rows {
		base := rows["baseline/"+strconv.Itoa(r.Concurrency)]
		finish(r, base)
		res.Rows = append(res.Rows, *r)
	}
	slices.SortFunc(res.Rows, func(a, b Row) int {
		if a.Concurrency != b.Concurrency {
			return a.Concurrency - b.Concurrency
		}
		return order(a.Name) - order(b.Name)
	})
	res.Targets = verdicts(res.Rows)
	return res, nil
}

func order(name string) int {
	if i := slices.Index(rowOrder, name); i >= 0 {
		return i
	}
	return len(rowOrder)
}

// baselineCheck reads "succeeded|transfers|sum balances|sum postings": the
// baseline must credit each settled deposit once and its balances must
// equal its postings, or it counts a mismatch.
func baselineCheck(s string) (string, int) {
	f := strings.Split(strings.TrimSpace(s), "|")
	if len(f) != 4 {
		return "unreadable: " + strings.TrimSpace(s), 1
	}
	if f[0] != f[1] || f[2] != f[3] {
		return fmt.Sprintf("MISMATCH deposits %s transfers %s balances %s postings %s", f[0], f[1], f[2], f[3]), 1
	}
	return fmt.Sprintf("ok: %s credits, balances = postings", f[0]), 0
}

func floatMatch(re *regexp.Regexp, b []byte) float64 {
	m := re.FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

func loadPhase(dir, name string) (*Phase, error) {
	ph := &Phase{}
	meta, err := readKV(filepath.Join(dir, name+".meta"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	ph.ServerCPUSec, _ = strconv.ParseFloat(meta["cpu_seconds"], 64)
	ph.ServerHWMKiB, _ = strconv.ParseInt(meta["rss_hwm_kib"], 10, 64)
	ph.ExitCode, _ = strconv.Atoi(meta["exit_code"])
	ph.SimCPUSec, _ = strconv.ParseFloat(meta["sim_cpu_seconds"], 64)
	ph.PGCPUSec, _ = strconv.ParseFloat(meta["pg_cpu_seconds"], 64)
	ph.Batches, _ = strconv.ParseFloat(meta["gc_batches_total"], 64)
	ph.BatchItems, _ = strconv.ParseFloat(meta["gc_items_total"], 64)
	ph.BatchExecSec, _ = strconv.ParseFloat(meta["gc_exec_seconds_total"], 64)
	ph.BatchCommitSec, _ = strconv.ParseFloat(meta["gc_commit_seconds_total"], 64)
	b, err := os.ReadFile(filepath.Join(dir, name+".sim.json"))
	if err != nil {
		return nil, err
	}
	var sr SimReport
	if err := json.Unmarshal(b, &sr); err != nil || sr.Mode == "" {
		// simulate failed before it could report: the cell counts as an
		// error, not as a zero.
		ph.Errors = 1
		ph.ErrorSamples = []string{"simulate printed no report (see " + name + ".sim.err)"}
		return ph, nil
	}
	ph.PaymentsPerSec, ph.CallbacksPerSec = sr.PaymentsPerSec, sr.CallbacksPerSec
	if sr.ElapsedSeconds > 0 {
		ph.CreditsPerSec = float64(sr.Effects["credited"]) / sr.ElapsedSeconds
	}
	ph.Payments, ph.Callbacks = sr.Payments, sr.Callbacks
	ph.Latency = sr.Latency
	ph.Mismatches, ph.Errors, ph.ErrorSamples = len(sr.Mismatches), sr.Errors, sr.ErrorSamples
	return ph, nil
}

func finish(r *Row, base *Row) {
	if r.Name == "baseline" {
		return
	}
	for _, ph := range []*Phase{r.Full, r.Callbacks} {
		if ph == nil {
			continue
		}
		r.Mismatches += ph.Mismatches
		r.Errors += ph.Errors
		r.RSSMiB = math.Max(r.RSSMiB, float64(ph.ServerHWMKiB)/1024)
	}
	if r.Full != nil && r.Full.Payments > 0 {
		r.CPUPer1000 = r.Full.ServerCPUSec / float64(r.Full.Payments) * 1000
		r.SimCPUPer1000 = r.Full.SimCPUSec / float64(r.Full.Payments) * 1000
		if strings.HasPrefix(r.Name, "pg-") {
			r.PGCPUPer1000 = r.Full.PGCPUSec / float64(r.Full.Payments) * 1000
		}
		if r.Full.Batches > 0 {
			r.BatchSize = r.Full.BatchItems / r.Full.Batches
		}
	}
	if base != nil && base.BaselineTPS > 0 && r.Callbacks != nil && strings.HasPrefix(r.Name, "pg-") {
		r.BaselineTPS = base.BaselineTPS
		r.RatioCredits = r.Callbacks.CreditsPerSec / base.BaselineTPS
		r.RatioCallbacks = r.Callbacks.CallbacksPerSec / base.BaselineTPS
	}
}

func find(rows []Row, name string, c int) *Row {
	for i := range rows {
		if rows[i].Name == name && rows[i].Concurrency == c {
			return &rows[i]
		}
	}
	return nil
}

func verdicts(rows []Row) []Verdict {
	var v []Verdict
	ratio := func(c int, want float64) {
		t := Verdict{Target: fmt.Sprintf("PostgreSQL (pgdriver, group commit) credits/s ÷ baseline at c%d", c),
			Want: fmt.Sprintf("≥ %.1f×", want)}
		if r := find(rows, "pg-pgdriver-gc", c); r != nil && r.BaselineTPS > 0 {
			t.Value, t.Known, t.Met = r.RatioCredits, true, r.RatioCredits >= want
		}
		v = append(v, t)
	}
	ratio(16, TargetRatioC16)
	ratio(64, TargetRatioC64)
	t := Verdict{Target: "SQLite (group commit) full payments/s at c16", Want: fmt.Sprintf("≥ %d", TargetSQLitePaymentsC16)}
	if r := find(rows, "sqlite-gc", 16); r != nil && r.Full != nil {
		t.Value, t.Known, t.Met = r.Full.PaymentsPerSec, true, r.Full.PaymentsPerSec >= TargetSQLitePaymentsC16
	}
	v = append(v, t)
	// verify p99 at c16, worst over the rows in the default configuration
	// (group commit on); the gc-off rows are there for comparison.
	t = Verdict{Target: "verify p99 at c16 (worst group-commit row), ms", Want: fmt.Sprintf("< %d", TargetVerifyP99Ms)}
	rss := Verdict{Target: "server peak RSS (worst cell), MiB", Want: fmt.Sprintf("< %d", TargetRSSMiB)}
	bad := Verdict{Target: "mismatches + errors (all cells)", Want: "0"}
	for _, r := range rows {
		if r.Concurrency == 16 && r.Full != nil && strings.HasSuffix(r.Name, "-gc") {
			if p, ok := r.Full.Latency["verify"]; ok {
				t.Value, t.Known = math.Max(t.Value, p.P99), true
			}
		}
		if r.RSSMiB > 0 {
			rss.Value, rss.Known = math.Max(rss.Value, r.RSSMiB), true
		}
		bad.Value += float64(r.Mismatches + r.Errors)
		bad.Known = true
	}
	t.Met = t.Known && t.Value < TargetVerifyP99Ms
	rss.Met = rss.Known && rss.Value < TargetRSSMiB
	bad.Met = bad.Known && bad.Value == 0
	return append(v, t, rss, bad)
}

func readKV(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return map[string]string{}, err
	}
	defer func() { _ = f.Close() }()
	kv := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			kv[k] = v
		}
	}
	return kv, sc.Err()
}

func lat(ph *Phase, name string) string {
	if ph == nil {
		return "-"
	}
	p, ok := ph.Latency[name]
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%s/%s/%s", ms(p.P50), ms(p.P95), ms(p.P99))
}

// ms prints a latency with about two significant digits.
func ms(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func num(v float64, prec int) string {
	if v == 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

func writeTable(w io.Writer, res Result) error {
	m := res.Machine
	fmt.Fprintf(w, "\nTiyn bench %s · %s cores (%s) · PostgreSQL %s · %s · %ss per phase · %s customers · load %s → %s\n\n",
		m["stamp"], m["cores"], m["cpu"], m["postgres"], m["tiyn"], m["duration_seconds"], m["customers"],
		m["loadavg_start"], m["loadavg_end"])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "row\tc\tfull pay/s\tverify p50/95/99\tcheck_dep p50/95/99\tcallback p50/95/99\t"+
		"cb-only cb/s\tcredits/s\tcb-only p50/95/99\tbaseline tps\tcredits÷base\tcb÷base\tRSS MiB\tCPU s/1k pay\tPG CPU\tsim CPU\tbatch\tmismatch\terrors\t")
	for _, r := range res.Rows {
		if r.Name == "baseline" {
			pg := "-"
			if r.BaselinePGCPUMs > 0 {
				pg = num(r.BaselinePGCPUMs, 2) + " ms/cr"
			}
			fmt.Fprintf(tw, "baseline (pgbench)\t%d\t-\t-\t-\t-\t-\t%s\tavg %s\t%s\t-\t-\t-\t-\t%s\t-\t-\t%d\t%d\t\n",
				r.Concurrency, num(r.BaselineTPS, 0), ms(r.BaselineLatencyMs), num(r.BaselineTPS, 0), pg,
				r.Mismatches, r.Errors+r.BaselineFailed)
			continue
		}
		var fullRate, cbRate, crRate float64
		if r.Full != nil {
			fullRate = r.Full.PaymentsPerSec
		}
		if r.Callbacks != nil {
			cbRate, crRate = r.Callbacks.CallbacksPerSec, r.Callbacks.CreditsPerSec
		}
		ratio := func(v float64) string {
			if v == 0 {
				return "-"
			}
			return strconv.FormatFloat(v, 'f', 2, 64) + "×"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t\n",
			r.Name, r.Concurrency, num(fullRate, 0), lat(r.Full, "verify"), lat(r.Full, "check_deposit"),
			lat(r.Full, "callback"), num(cbRate, 0), num(crRate, 0), lat(r.Callbacks, "callback"),
			num(r.BaselineTPS, 0), ratio(r.RatioCredits), ratio(r.RatioCallbacks), num(r.RSSMiB, 0),
			num(r.CPUPer1000, 2), num(r.PGCPUPer1000, 2), num(r.SimCPUPer1000, 2), num(r.BatchSize, 1), r.Mismatches, r.Errors)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nlatencies in ms; credits÷base = callbacks-mode credits/s ÷ pgbench tps at the same c; CPU, PG CPU, sim CPU = seconds"+
		"\nof CPU (utime+stime) per 1,000 payments in the full phase of the server, PostgreSQL and the simulator (baseline:"+
		"\nPostgreSQL's ms per credit); batch = mean group-commit batch in the full phase")
	for _, t := range res.Targets {
		verdict := "MISSED"
		switch {
		case !t.Known:
			verdict = "not measured"
		case t.Met:
			verdict = "met"
		}
		fmt.Fprintf(w, "  %-62s %10.2f  want %-7s %s\n", t.Target, t.Value, t.Want, verdict)
	}
	for _, r := range res.Rows {
		for _, ph := range []*Phase{r.Full, r.Callbacks} {
			if ph != nil && len(ph.ErrorSamples) > 0 {
				fmt.Fprintf(w, "  %s c%d: %s\n", r.Name, r.Concurrency, strings.Join(ph.ErrorSamples, "; "))
			}
		}
		if r.BaselineCheck != "" && r.Mismatches > 0 {
			fmt.Fprintf(w, "  baseline c%d: %s\n", r.Concurrency, r.BaselineCheck)
		}
	}
	return nil
}
