package platformsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
	"github.com/tiyn/tiyn/tools/platformsim/platform"
)

// The simulator as the platform's record of the day, for reconciliation:
// the Data API served from the record (platform.DataAPI, on the Gate's
// listeners), the CSV report written from it at the end of the run
// (Config.ReportCSV), and the reconciliation breaks injected into it
// (Config.ReconFaults).

// Bounds of the injected faults.
const (
	// minFaultsPerClass and maxFaultsPerClass bound how many payments of
	// each fault a run injects; the count is drawn from the seed.
	minFaultsPerClass = 2
	maxFaultsPerClass = 3
	// MinFaultPayments is the fewest payments a run with ReconFaults
	// plays: the faulty ones stay a small part of the day.
	MinFaultPayments = 100
	// faultStream is the generator stream the faults are drawn from, apart
	// from the payments' plans.
	faultStream = 0x7265636f6e // "recon"
	// faultCurrency is the currency of a FaultCurrency record.
	faultCurrency = "USD"
	// orphanOpSlot is the operation id slot of an orphan (a payment uses
	// slots 1 and 2 of its opsPerPayment).
	orphanOpSlot = 3
)

// InjectedFault is one break injected into the platform's record.
type InjectedFault struct {
	// Class is the reconciliation class the payment must end in.
	Class     string `json:"class"`
	PaymentID string `json:"payment_id"`
	// CustomerID is the payer ("" for an orphan: no deposit exists).
	CustomerID string `json:"customer_id,omitempty"`
	// AmountMinor is the deposit's amount; PlatformAmountMinor and
	// PlatformCurrency are what the platform's record says.
	AmountMinor         int64  `json:"amount_minor"`
	PlatformAmountMinor int64  `json:"platform_amount_minor"`
	PlatformCurrency    string `json:"platform_currency"`
	// Explanation says what was injected, for people.
	Explanation string `json:"explanation"`
}

// ReportFile is one CSV report written (Config.ReportCSV).
type ReportFile struct {
	Day  string `json:"day"`
	Path string `json:"path"`
	Rows int    `json:"rows"`
}

// DataAPIReport is what the Data API served.
type DataAPIReport struct {
	Requests int64 `json:"requests"`
	Answered int64 `json:"answered"`
	Refused  int64 `json:"refused"`
}

// faultState is the run's injected faults.
type faultState struct {
	byIndex map[int64]platform.Fault // payment index → fault
	orphans int
	rng     *mrand.Rand // orphan amounts, drawn after the load

	mu   sync.Mutex
	list []InjectedFault
	// silenced counts status requests the Gate did not answer.
	silenced atomic.Int64
}

// planFaults draws which payments carry which fault: 2–3 of each class,
// distinct indices in [0, Payments), from the seed alone.
func (s *sim) planFaults() {
	rng := mrand.New(mrand.NewPCG(uint64(s.cfg.Seed), faultStream))
	f := &s.faults
	f.byIndex = map[int64]platform.Fault{}
	f.rng = rng
	n := int64(s.cfg.Payments)
	for _, fault := range platform.Faults() {
		count := minFaultsPerClass + rng.IntN(maxFaultsPerClass-minFaultsPerClass+1)
		if fault == platform.FaultOrphan {
			f.orphans = count
			continue
		}
		for placed := 0; placed < count; {
			i := rng.Int64N(n)
			if _, taken := f.byIndex[i]; !taken {
				f.byIndex[i] = fault
				placed++
			}
		}
	}
}

// applyFault fixes the plan of a faulty payment: a success (or, for a
// pending one, nothing final) with no callback drop of the ordinary kind.
func (s *sim) applyFault(p *plan) {
	f, ok := s.faults.byIndex[p.index]
	if !ok {
		return
	}
	p.fault = f
	p.decline, p.late, p.drop = false, false, false
	if f.GateSilent() {
		p.intermediate, p.replay, p.concurrent = false, false, false
	}
}

// deliverFault plays a faulty payment. A payment the Gate stays silent
// about gets its steps recorded and no callback (FaultPending not even
// its steps: the sale never completes); FaultDeclined and FaultDuplicate
// are played as usual, then their record is falsified.
func (w *worker) deliverFault(ctx context.Context, p *plan, paymentID string, bodies []byte, steps []step) {
	s := w.sim
	f := p.fault
	platformAmount, platformCurrency := p.amount, simCurrency
	var why string
	switch f {
	case platform.FaultUnanswered:
		why = "a successful sale whose callbacks were never delivered and whose status the Gate never answered"
	case platform.FaultAmount:
		platformAmount = p.amount + 100
		if platformAmount > s.cfg.AmountMaxMinor {
			platformAmount = p.amount - 1
		}
		why = fmt.Sprintf("the platform's sale is of %s, the deposit of %s (callbacks never delivered)", FormatKZT(platformAmount), FormatKZT(p.amount))
	case platform.FaultCurrency:
		platformCurrency = faultCurrency
		why = "the platform's sale is in " + faultCurrency + ", the deposit in " + simCurrency + " (callbacks never delivered)"
	case platform.FaultPending:
		why = "a sale still processing on the platform, its deposit pending in the ledger"
	case platform.FaultDeclined:
		why = "Tiyn was told success and credited; the platform's record shows the sale declined"
	case platform.FaultDuplicate:
		why = "the platform's operation lists show the payment's operation twice"
	}
	switch {
	case f == platform.FaultPending: // no step is recorded: the sale never completes
	case f.GateSilent():
		for _, st := range steps {
			s.recordStep(paymentID, st)
		}
	default:
		q := *p
		q.fault = platform.FaultNone
		w.deliver(ctx, &q, paymentID, bodies, steps)
	}
	if err := s.record.Inject(paymentID, f, platformAmount, platformCurrency); err != nil {
		s.errs.add("injecting a reconciliation fault: " + err.Error())
		return
	}
	s.faults.add(InjectedFault{Class: f.String(), PaymentID: paymentID, CustomerID: s.customers[p.customer].id,
		AmountMinor: p.amount, PlatformAmountMinor: platformAmount, PlatformCurrency: platformCurrency, Explanation: why})
}

func (f *faultState) add(x InjectedFault) {
	f.mu.Lock()
	f.list = append(f.list, x)
	f.mu.Unlock()
}

// injectOrphans records the orphan operations: successful sales of
// payment ids Tiyn never issued.
func (s *sim) injectOrphans() {
	f := &s.faults
	for j := range f.orphans {
		id := s.prefix + "orphan-" + strconv.Itoa(j+1)
		amount := s.cfg.AmountMinMinor + f.rng.Int64N(min(s.cfg.AmountMaxMinor-s.cfg.AmountMinMinor, 1_000_000)+1)
		op := s.opBase + int64(j)*opsPerPayment + orphanOpSlot
		now := time.Now()
		err := s.record.Open(s.cfg.ProjectID, id, op, amount, simCurrency, now)
		if err == nil {
			err = s.record.Update(id, op, platform.StatusSuccess, now)
		}
		if err == nil {
			err = s.record.Inject(id, platform.FaultOrphan, 0, "")
		}
		if err != nil {
			s.errs.add("injecting an orphan operation: " + err.Error())
			continue
		}
		f.add(InjectedFault{Class: platform.FaultOrphan.String(), PaymentID: id, AmountMinor: 0,
			PlatformAmountMinor: amount, PlatformCurrency: simCurrency,
			Explanation: "a successful sale for a payment id Tiyn never issued"})
	}
}

// faultReport fills the report's fault figures.
func (s *sim) faultReport(r *Report) {
	if !s.cfg.ReconFaults {
		return
	}
	f := &s.faults
	f.mu.Lock()
	r.ReconFaults = slices.Clone(f.list)
	f.mu.Unlock()
	slices.SortFunc(r.ReconFaults, func(a, b InjectedFault) int {
		return strings.Compare(a.Class+" "+a.PaymentID, b.Class+" "+b.PaymentID)
	})
	r.ReconFaultCounts = map[string]int{}
	for _, fault := range platform.Faults() {
		r.ReconFaultCounts[fault.String()] = 0
	}
	for _, x := range r.ReconFaults {
		r.ReconFaultCounts[x.Class]++
		if x.Class == domain.ClassHealed.String() {
			r.HealedAtReconciliationMinor += x.AmountMinor
		}
	}
	r.GateSilenced = f.silenced.Load()
}

// silentGate answers 503 to a status request about a payment whose fault
// keeps the Gate silent, and hands every other request to the Gate.
type silentGate struct {
	sim  *sim
	gate http.Handler
}

func (g silentGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != monetix.GateStatusPath || r.Method != http.MethodPost {
		g.gate.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10+1))
	if err != nil {
		g.gate.ServeHTTP(w, r)
		return
	}
	_, paymentID, verr := monetix.VerifyStatusRequest(func(id string) []byte {
		if id == strconv.FormatInt(g.sim.cfg.ProjectID, 10) {
			return g.sim.cfg.Secret
		}
		return nil
	}, body)
	if verr == nil {
		if p, ok := g.sim.record.Get(paymentID); ok && p.Fault().GateSilent() {
			g.sim.faults.silenced.Add(1)
			out, _ := json.Marshal(map[string]any{"errors": []any{map[string]any{"code": "503", "message": "temporarily unavailable"}}})
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write(out)
			return
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	g.gate.ServeHTTP(w, r)
}

// platformHandler is what one Gate listener serves: the Data API on its
// path (when configured), the Gate — silent about some payments with
// faults — on every other.
func (s *sim) platformHandler(g *platform.Gate) http.Handler {
	var gate http.Handler = g
	if s.cfg.ReconFaults {
		gate = silentGate{sim: s, gate: g}
	}
	if s.dataAPI == nil {
		return gate
	}
	mux := http.NewServeMux()
	mux.Handle(monetix.DataOperationsPath, s.dataAPI)
	mux.Handle("/", gate)
	return mux
}

// newDataAPI makes the Data API when a token and secret are configured.
func (s *sim) newDataAPI() error {
	if s.cfg.DataToken == "" {
		return nil
	}
	d, err := platform.NewDataAPI(platform.DataAPIConfig{Payments: s.record, Token: s.cfg.DataToken,
		Secret: s.cfg.DataSecret, Mapping: s.cfg.DataMapping})
	if err != nil {
		return err
	}
	s.dataAPI = d
	return nil
}

// writeReports writes the CSV report of every business day the record's
// completed operations fall in: to Config.ReportCSV when they fall in one
// day, else to one file per day, the day inserted before the file's
// extension (report-2026-12-02.csv).
func (s *sim) writeReports() ([]ReportFile, error) {
	if s.cfg.ReportCSV == "" {
		return nil, nil
	}
	zone := s.cfg.BusinessZone
	days := map[string]bool{}
	_ = s.record.Each(func(p *platform.Payment) error {
		for _, o := range p.Operations() {
			if !o.Completed.IsZero() {
				days[domain.DayOf(o.Completed, zone).String()] = true
			}
		}
		return nil
	})
	if len(days) == 0 {
		days[domain.DayOf(time.Now(), zone).String()] = true
	}
	list := make([]string, 0, len(days))
	for d := range days {
		list = append(list, d)
	}
	slices.Sort(list)
	out := make([]ReportFile, 0, len(list))
	for _, day := range list {
		path := s.cfg.ReportCSV
		if len(list) > 1 {
			ext := filepath.Ext(path)
			path = strings.TrimSuffix(path, ext) + "-" + day + ext
		}
		rows, err := s.writeReport(path, day, zone)
		if err != nil {
			return out, err
		}
		out = append(out, ReportFile{Day: day, Path: path, Rows: rows})
	}
	return out, nil
}

// writeReport writes one day's report: every operation completed in the
// day, a payment's operations oldest first and one after the other, each
// as many times as the record lists it.
func (s *sim) writeReport(path, day string, zone *time.Location) (int, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, fmt.Errorf("report %s: %w", path, err)
	}
	rw, err := monetix.NewReportWriter(f, zone, monetix.ReportOptions{})
	if err != nil {
		_ = f.Close()
		return 0, err
	}
	rows := 0
	werr := s.record.Each(func(p *platform.Payment) error {
		project := strconv.FormatInt(p.ProjectID, 10)
		for _, o := range p.Operations() {
			if o.Completed.IsZero() || domain.DayOf(o.Completed, zone).String() != day {
				continue
			}
			row := ports.SourceRow{ProjectID: project, PaymentID: p.ID, OperationID: strconv.FormatInt(o.ID, 10),
				Type: o.Type(), Status: o.Status.String(), Amount: domain.NewAmount(o.AmountMinor, domain.CurrencyOf(o.Currency)),
				CompletedAt: o.Completed}
			for range p.Listings() {
				if err := rw.Write(row); err != nil {
					return err
				}
				rows++
			}
		}
		return nil
	})
	if werr == nil {
		werr = rw.Flush()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return rows, fmt.Errorf("report %s: %w", path, werr)
	}
	return rows, nil
}

// serveAfter keeps the Gate and the Data API serving the record after the
// run, for Config.ServeFor or until ctx ends, so Tiyn can reconcile the
// day against them; Config.Served hears of the report first.
func (s *sim) serveAfter(ctx context.Context, r Report) {
	if s.cfg.ServeFor <= 0 || len(s.gates) == 0 || ctx.Err() != nil {
		return
	}
	if s.cfg.Served != nil {
		s.cfg.Served(r)
	}
	t := time.NewTimer(s.cfg.ServeFor)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
