package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// Results counted in tiyn_reconciliation_runs_total{source,result}.
const (
	resultClean      = "clean"       // finished, no break
	resultBreaks     = "breaks"      // finished with breaks
	resultUnchanged  = "unchanged"   // the same input again: nothing changed
	resultFailed     = "failed"      // the source or the store failed the run
	resultInProgress = "in_progress" // refused: another run of the day is running
	resultRefused    = "refused"     // refused: a bad request (a day not begun, …)
)

// reconMetrics are the business figures of reconciliations, on the
// private registry (TIYN_METRICS_LISTEN) with the other business figures:
//
//   - tiyn_reconciliation_runs_total{source,result}: runs asked for, by
//     source (csv, data_api) and result;
//   - tiyn_reconciliation_items_total{class}: items of new finished runs
//     by class (an unchanged rerun adds nothing: it is the same run).
type reconMetrics struct {
	runs  *prometheus.CounterVec
	items *prometheus.CounterVec
}

func newReconMetrics(reg prometheus.Registerer) (*reconMetrics, error) {
	m := &reconMetrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tiyn_reconciliation_runs_total",
			Help: "Business-day reconciliations asked of this instance, by source (csv, data_api) and result (clean, breaks, unchanged, failed, in_progress, refused).",
		}, []string{"source", "result"}),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tiyn_reconciliation_items_total",
			Help: "Items of the reconciliation runs this instance finished, by class (an unchanged rerun adds none).",
		}, []string{"class"}),
	}
	for _, c := range []prometheus.Collector{m.runs, m.items} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	// Every series exists from the start, so a rate or an alert on a
	// class never sees a missing series.
	for _, src := range []string{monetix.SourceKindCSV, monetix.SourceKindDataAPI} {
		for _, r := range []string{resultClean, resultBreaks, resultUnchanged, resultFailed, resultInProgress, resultRefused} {
			m.runs.WithLabelValues(src, r)
		}
	}
	for _, c := range domain.ReconClasses() {
		m.items.WithLabelValues(c.String())
	}
	return m, nil
}

// observe counts one ReconcileDay call.
func (m *reconMetrics) observe(source string, run ports.ReconRun, err error) {
	switch {
	case errors.Is(err, ports.ErrRunInProgress):
		m.runs.WithLabelValues(source, resultInProgress).Inc()
	case errors.Is(err, domain.ErrInvalidInput):
		m.runs.WithLabelValues(source, resultRefused).Inc()
	case err != nil:
		m.runs.WithLabelValues(source, resultFailed).Inc()
	case run.Unchanged:
		m.runs.WithLabelValues(source, resultUnchanged).Inc()
	default:
		result := resultClean
		if run.Breaks() > 0 {
			result = resultBreaks
		}
		m.runs.WithLabelValues(source, result).Inc()
		for c, t := range run.Classes {
			m.items.WithLabelValues(c.String()).Add(float64(t.Count))
		}
	}
}

// countingLedger is the ledger with its reconciliations counted: the
// REST adapter and the Monetix handler see the same ports.Ledger.
type countingLedger struct {
	ports.Ledger
	metrics *reconMetrics
}

// ReconcileDay reconciles and counts the result.
func (l countingLedger) ReconcileDay(ctx context.Context, cmd ports.ReconcileDay) (ports.ReconRun, error) {
	run, err := l.Ledger.ReconcileDay(ctx, cmd)
	source := "none"
	if cmd.Source != nil {
		source = cmd.Source.Kind()
	}
	l.metrics.observe(source, run, err)
	return run, err
}
