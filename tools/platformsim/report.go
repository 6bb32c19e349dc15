package platformsim

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/tiyn/tiyn/tools/platformsim/platform"
)

// Report is the outcome of a run. Its JSON form (encoding/json) is what
// `tiyn simulate --json` prints and what benchmark scripts read.
type Report struct {
	Mode           string `json:"mode"`
	Platform       bool   `json:"platform"`
	Concurrency    int    `json:"concurrency"`
	Customers      int    `json:"customers"`
	CustomerPrefix string `json:"customer_prefix"`

	// Payments played in the timed phase; Succeeded (including
	// LateSuccesses) and Declined count final outcomes answered 200.
	Payments      int `json:"payments"`
	Succeeded     int `json:"succeeded"`
	LateSuccesses int `json:"late_successes"`
	Declined      int `json:"declined"`
	// Failed payments never got a payment_id (verify or check_deposit
	// failed); Uncertain ones had a success callback never answered 200.
	Failed    int `json:"failed"`
	Uncertain int `json:"uncertain"`
	// Callbacks delivered (each duplicate counts, retries do not);
	// Retries are repeated attempts of any request in Platform mode.
	Callbacks int `json:"callbacks"`
	Retries   int `json:"retries"`
	// Effects counts the effects Tiyn named in its 200 callback answers
	// (credited, declined, replay, recorded, exception, other).
	Effects map[string]int `json:"effects"`

	// Errors counts every unexpected outcome: failed or refused requests,
	// wrong answer codes, callbacks with a wrong effect, balances that
	// could not be read. The first few are in ErrorSamples.
	Errors       int      `json:"errors"`
	ErrorSamples []string `json:"error_samples,omitempty"`

	// BalancesChecked customers were read back; ExpectedMinor and
	// ActualMinor are the sums of their expected and actual balance changes.
	BalancesChecked int        `json:"balances_checked"`
	ExpectedMinor   int64      `json:"expected_total_minor"`
	ActualMinor     int64      `json:"actual_total_minor"`
	Mismatches      []Mismatch `json:"mismatches"`

	// Dropped callbacks (Config.DropShare) and their recovery by Tiyn's
	// status poller. CallbacksDropped counts the final callbacks never
	// delivered, one per dropped payment; EarlierCallbacksDropped the
	// callbacks before them (processing, or the decline before a late
	// success), never delivered either. Recovered payments were found
	// settled as the platform did — succeeded (RecoveredSucceeded, in the
	// balances expected) or declined — by a status check, with the
	// platform's amount and last operation; Lost were not, within
	// RecoveryTimeout (each is an error too). RecoverySeconds runs from
	// the end of the load to the check that found the last one settled;
	// LongestRecoverySeconds is the longest one payment took from its
	// dropped callback.
	CallbacksDropped        int     `json:"callbacks_dropped"`
	EarlierCallbacksDropped int     `json:"earlier_callbacks_dropped"`
	Recovered               int     `json:"recovered"`
	RecoveredSucceeded      int     `json:"recovered_succeeded"`
	RecoveredDeclined       int     `json:"recovered_declined"`
	Lost                    int     `json:"lost"`
	RecoverySeconds         float64 `json:"recovery_seconds"`
	LongestRecoverySeconds  float64 `json:"longest_recovery_seconds"`
	// Gate has one entry per Gate listener (Config.GateListeners).
	Gate []GateReport `json:"gate,omitempty"`
	// GateSilenced counts the status requests answered 503 because the
	// payment's fault keeps the Gate silent (Config.ReconFaults).
	GateSilenced int64 `json:"gate_silenced,omitempty"`
	// DataAPI is what the Data API served (Config.DataToken), up to the
	// report (requests made while serving after the run are not in it).
	DataAPI *DataAPIReport `json:"data_api,omitempty"`
	// ReportFiles are the CSV reports written (Config.ReportCSV).
	ReportFiles []ReportFile `json:"report_files,omitempty"`
	// ReconFaults lists the breaks injected into the platform's record
	// (Config.ReconFaults); ReconFaultCounts counts them by the class a
	// reconciliation must put them in (every class, 0 included).
	// HealedAtReconciliationMinor is what a reconciliation of the day
	// credits (the healed payments): the balances then exceed
	// ExpectedMinor by exactly that. Mismatched, pending and orphan
	// payments are never credited.
	ReconFaults                 []InjectedFault `json:"recon_faults,omitempty"`
	ReconFaultCounts            map[string]int  `json:"recon_fault_counts,omitempty"`
	HealedAtReconciliationMinor int64           `json:"healed_at_reconciliation_minor,omitempty"`

	// Elapsed is the timed phase's wall time (the callbacks alone in
	// ModeCallbacks).
	Elapsed         time.Duration          `json:"elapsed_ns"`
	ElapsedSeconds  float64                `json:"elapsed_seconds"`
	PaymentsPerSec  float64                `json:"payments_per_sec"`
	CallbacksPerSec float64                `json:"callbacks_per_sec"`
	Latency         map[string]Percentiles `json:"latency"`
}

// OK reports whether the run found nothing wrong: no unexpected outcome,
// every balance as expected and no dropped payment lost.
func (r Report) OK() bool { return r.Errors == 0 && len(r.Mismatches) == 0 && r.Lost == 0 }

// report assembles the Report from the run's counters.
func (s *sim) report(elapsed time.Duration, mismatches []Mismatch) Report {
	r := Report{
		Mode: s.cfg.Mode, Platform: s.cfg.Platform, Concurrency: s.cfg.Concurrency,
		Customers: len(s.customers), CustomerPrefix: s.prefix,
		Payments:  int(s.payments.Load()),
		Succeeded: int(s.succeeded.Load()), LateSuccesses: int(s.late.Load()),
		Declined: int(s.declined.Load()), Failed: int(s.failed.Load()), Uncertain: int(s.uncertain.Load()),
		Callbacks: int(s.callbacks.Load()), Retries: int(s.retries.Load()),
		Effects:         map[string]int{},
		Errors:          int(s.errs.n.Load()),
		BalancesChecked: int(s.checked.Load()),
		ActualMinor:     s.actualTotal.Load(),
		Mismatches:      mismatches,
		Elapsed:         elapsed,
		ElapsedSeconds:  elapsed.Seconds(),
		Latency:         map[string]Percentiles{},

		CallbacksDropped:        int(s.drops.callbacks.Load()),
		EarlierCallbacksDropped: int(s.drops.earlier.Load()),
		Recovered:               s.recovery.recovered,
		RecoveredSucceeded:      s.recovery.succeeded,
		RecoveredDeclined:       s.recovery.declined,
		Lost:                    s.recovery.lost,
		RecoverySeconds:         s.recovery.elapsed.Seconds(),
		LongestRecoverySeconds:  s.recovery.longest.Seconds(),
	}
	if len(s.gates) > 0 {
		r.Gate = s.gateReports()
	}
	if s.dataAPI != nil {
		st := s.dataAPI.Stats()
		r.DataAPI = &DataAPIReport{Requests: st.Requests, Answered: st.Answered, Refused: st.Refused}
	}
	r.ReportFiles = s.reports
	s.faultReport(&r)
	if r.Mismatches == nil {
		r.Mismatches = []Mismatch{}
	}
	for i := range s.effects {
		if n := s.effects[i].Load(); n > 0 {
			r.Effects[effectNames[i]] = int(n)
		}
	}
	s.errs.mu.Lock()
	r.ErrorSamples = append([]string(nil), s.errs.samples...)
	s.errs.mu.Unlock()
	for i := range s.customers {
		r.ExpectedMinor += s.customers[i].want.Load()
	}
	if secs := elapsed.Seconds(); secs > 0 {
		r.PaymentsPerSec = float64(r.Payments) / secs
		r.CallbacksPerSec = float64(r.Callbacks) / secs
	}
	s.sendersMu.Lock()
	defer s.sendersMu.Unlock()
	for k, name := range latNames {
		var h histogram
		for _, snd := range s.senders {
			h.merge(&snd.lat[k])
		}
		if h.n > 0 {
			r.Latency[name] = h.percentiles()
		}
	}
	return r
}

// maxMismatchLines bounds the mismatches WriteText lists.
const maxMismatchLines = 20

// WriteText prints the report as a small table for people. On a terminal
// the verdict (mismatches and errors) is in bold.
func (r Report) WriteText(w io.Writer) error {
	bold := func(s string) string { return s }
	if f, ok := w.(interface{ Fd() uintptr }); ok && term.IsTerminal(int(f.Fd())) {
		bold = func(s string) string { return "\x1b[1m" + s + "\x1b[0m" }
	}
	retries := "off"
	if r.Platform {
		retries = "on"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "tiyn simulate · mode %s · %d workers · %d customers (%s…) · platform retries %s\n\n",
		r.Mode, r.Concurrency, r.Customers, r.CustomerPrefix, retries)

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  payments\t%d in %s\t%s/s\n", r.Payments, r.Elapsed.Round(time.Millisecond), rate(r.PaymentsPerSec))
	fmt.Fprintf(tw, "  \tsucceeded %d (late %d) · declined %d · failed %d · uncertain %d\t\n",
		r.Succeeded, r.LateSuccesses, r.Declined, r.Failed, r.Uncertain)
	fmt.Fprintf(tw, "  callbacks\t%d · retries %d\t%s/s\n", r.Callbacks, r.Retries, rate(r.CallbacksPerSec))
	if len(r.Effects) > 0 {
		var parts []string
		for _, name := range effectNames {
			if n, ok := r.Effects[name]; ok {
				parts = append(parts, fmt.Sprintf("%s %d", name, n))
			}
		}
		fmt.Fprintf(tw, "  \teffects: %s\t\n", strings.Join(parts, " · "))
	}
	tw.Flush()

	b.WriteString("\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "  latency (ms)\tcount\tp50\tp95\tp99\tmax\t\n")
	for _, name := range latNames {
		p, ok := r.Latency[name]
		if !ok {
			continue
		}
		fmt.Fprintf(tw, "  %s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t\n", name, p.Count, p.P50, p.P95, p.P99, p.Max)
	}
	tw.Flush()

	b.WriteString("\n")
	fmt.Fprintf(&b, "  balances      %d of %d checked · expected %s · actual %s\n",
		r.BalancesChecked, r.Customers, FormatKZT(r.ExpectedMinor), FormatKZT(r.ActualMinor))
	if len(r.Mismatches) == 0 {
		fmt.Fprintf(&b, "  mismatches    %s\n", bold("0"))
	} else {
		fmt.Fprintf(&b, "  %s\n", bold(fmt.Sprintf("MISMATCHES    %d", len(r.Mismatches))))
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "    customer\twant\tgot\tdifference\n")
		for i, m := range r.Mismatches {
			if i == maxMismatchLines {
				fmt.Fprintf(tw, "    … and %d more\t\t\t\n", len(r.Mismatches)-i)
				break
			}
			want := FormatKZT(m.Want)
			if m.WantUpTo != 0 {
				want += " to " + FormatKZT(m.WantUpTo)
			}
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", m.CustomerID, want, FormatKZT(m.Got), FormatKZT(m.Got-m.Want))
		}
		tw.Flush()
	}
	if r.Errors == 0 {
		fmt.Fprintf(&b, "  errors        %s\n", bold("0"))
	} else {
		fmt.Fprintf(&b, "  %s\n", bold(fmt.Sprintf("ERRORS        %d", r.Errors)))
		for _, e := range r.ErrorSamples {
			fmt.Fprintf(&b, "    - %s\n", e)
		}
		if r.Errors > len(r.ErrorSamples) {
			fmt.Fprintf(&b, "    … and %d more\n", r.Errors-len(r.ErrorSamples))
		}
	}
	r.writeRecovery(&b, bold)
	r.writeRecon(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeRecovery ends the text with the Gate's figures and the fate of the
// dropped callbacks, when the run had a Gate.
func (r Report) writeRecovery(b *strings.Builder, bold func(string) string) {
	if len(r.Gate) == 0 {
		return
	}
	b.WriteString("\n")
	for _, g := range r.Gate {
		peak := strconv.Itoa(g.PeakPerSecond)
		if g.PeakSaturated {
			peak = "at least " + peak
		}
		fmt.Fprintf(b, "  gate          %s · %d status requests (answered %d, not found %d, refused %d) · peak %s per second (1 s windows)\n",
			g.Addr, g.Requests, g.Answered, g.NotFound, g.Refused, peak)
	}
	if r.CallbacksDropped == 0 {
		return
	}
	earlier := ""
	if r.EarlierCallbacksDropped > 0 {
		earlier = fmt.Sprintf(" · %d earlier callbacks of theirs dropped too", r.EarlierCallbacksDropped)
	}
	fmt.Fprintf(b, "  recovery      took %.1f s after the load · longest %.1f s for one payment · %d credited, %d declined%s\n",
		r.RecoverySeconds, r.LongestRecoverySeconds, r.RecoveredSucceeded, r.RecoveredDeclined, earlier)
	line := fmt.Sprintf("callbacks dropped %d, recovered by status checks %d, lost %d, mismatches %d",
		r.CallbacksDropped, r.Recovered, r.Lost, len(r.Mismatches))
	if r.Lost > 0 || len(r.Mismatches) > 0 {
		line = bold(line)
	}
	fmt.Fprintf(b, "  %s\n", line)
}

// rate formats a per-second figure.
func rate(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// FormatKZT formats tiyn as tenge with thousands separators, e.g.
// 123456789 → "1,234,567.89 KZT".
func FormatKZT(minor int64) string {
	sign := ""
	u := uint64(minor)
	if minor < 0 {
		sign, u = "-", uint64(-minor) // -MinInt64 wraps to itself, which is its magnitude as uint64
	}
	whole := strconv.FormatUint(u/100, 10)
	var b strings.Builder
	b.WriteString(sign)
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	fmt.Fprintf(&b, ".%02d %s", u%100, simCurrency)
	return b.String()
}

// writeRecon ends the text with the CSV reports written and the faults
// injected, per class.
func (r Report) writeRecon(b *strings.Builder) {
	if len(r.ReportFiles) == 0 && r.ReconFaultCounts == nil {
		return
	}
	b.WriteString("\n")
	for _, f := range r.ReportFiles {
		fmt.Fprintf(b, "  report csv    %s · business day %s · %d rows\n", f.Path, f.Day, f.Rows)
	}
	if r.ReconFaultCounts == nil {
		return
	}
	var parts []string
	total := 0
	for _, f := range platform.Faults() {
		n := r.ReconFaultCounts[f.String()]
		total += n
		parts = append(parts, fmt.Sprintf("%s %d", f, n))
	}
	fmt.Fprintf(b, "  recon faults  %d injected: %s\n", total, strings.Join(parts, " · "))
	fmt.Fprintf(b, "                a reconciliation of the day heals %s; mismatched, pending and orphan payments stay uncredited\n",
		FormatKZT(r.HealedAtReconciliationMinor))
}
