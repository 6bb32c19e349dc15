package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
)

// The status poller's wiring: the Gate client from the settings, the
// poller over the ledger, its metrics and its log lines.

// newGate builds the Gate client of the configured projects.
func newGate(cfg Config) (*monetix.Gate, error) {
	return monetix.NewGate(monetix.GateConfig{
		URL: cfg.GateURL, Timeout: cfg.GateTimeout, RequireSignature: cfg.GateRequireSignature,
		Projects: cfg.MonetixProjects,
	})
}

// pollMetrics are the poller's figures, on the private registry.
type pollMetrics struct {
	checks *prometheus.CounterVec
	expiry *prometheus.CounterVec
}

func newPollMetrics(reg prometheus.Registerer, oldest func(context.Context) (time.Time, bool, error), logger *slog.Logger) (*pollMetrics, error) {
	m := &pollMetrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tiyn_status_poll_total",
			Help: "Status checks of pending deposits by result: credited, declined, replay, exception, recorded (a final answer " +
				"applied), not_final, not_found, or why there was no answer (unavailable, timeout, rejected, bad_signature, " +
				"unsigned, malformed, not_configured), store_error.",
		}, []string{"result"}),
		expiry: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tiyn_deposit_expiry_total",
			Help: "Deposits pending past TIYN_PENDING_EXPIRY: expired, or raised as status_unknown exceptions.",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.checks, m.expiry, newOldestPendingCollector(oldest, logger)} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// oldestPendingCollector exports the age of the oldest pending deposit: one
// indexed read (MIN over the pending deposits' partial index) per scrape,
// bounded in time. When it cannot be read the gauge is left out.
type oldestPendingCollector struct {
	oldest func(context.Context) (time.Time, bool, error)
	logger *slog.Logger
	desc   *prometheus.Desc
	now    func() time.Time
}

func newOldestPendingCollector(oldest func(context.Context) (time.Time, bool, error), logger *slog.Logger) *oldestPendingCollector {
	return &oldestPendingCollector{oldest: oldest, logger: logger, now: time.Now,
		desc: prometheus.NewDesc("tiyn_deposit_pending_oldest_seconds",
			"Age of the oldest deposit still pending (0 when none is): money probably owed whose callback has not come.", nil, nil)}
}

func (c *oldestPendingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *oldestPendingCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	at, ok, err := c.oldest(ctx)
	if err != nil {
		c.logger.Warn("read the oldest pending deposit", slog.String("error", err.Error()))
		return
	}
	age := 0.0
	if ok {
		age = max(c.now().Sub(at).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, age)
}

// pollerConfig turns the settings into the poller's, with the hooks that
// count and log every check.
func pollerConfig(cfg Config, logger *slog.Logger, metrics *pollMetrics) app.StatusPollerConfig {
	return app.StatusPollerConfig{
		After: cfg.StatusPollAfter, Rate: cfg.StatusPollRate, Concurrency: cfg.StatusPollConcurrency,
		Expiry: cfg.PendingExpiry, RequestTimeout: cfg.GateTimeout,
		OnCheck: func(ev app.CheckEvent) {
			if metrics != nil {
				metrics.checks.WithLabelValues(ev.Result).Inc()
			}
			logCheck(logger, ev)
		},
		OnError: func(err error) {
			logger.Warn("status poller round failed; trying again", slog.String("error", err.Error()))
		},
		OnExpiry: func(r app.ExpiryReport) {
			if metrics != nil {
				metrics.expiry.WithLabelValues("expired").Add(float64(r.Expired))
				metrics.expiry.WithLabelValues("status_unknown").Add(float64(r.Escalated))
			}
			level := slog.LevelInfo
			if r.Escalated > 0 {
				level = slog.LevelWarn
			}
			logger.Log(context.Background(), level, "pending deposits past their expiry",
				slog.Int("expired", r.Expired), slog.Int("status_unknown", r.Escalated))
		},
	}
}

// logCheck logs one status check: money recovered at info, exceptions and
// failures at warn, answers that change nothing at debug.
func logCheck(logger *slog.Logger, ev app.CheckEvent) {
	attrs := []slog.Attr{slog.String("deposit_id", ev.Deposit.ID), slog.String("payment_id", ev.Deposit.PaymentID),
		slog.String("project", ev.Deposit.Channel.Project), slog.String("result", ev.Result)}
	if ev.Err != nil {
		attrs = append(attrs, slog.String("error", ev.Err.Error()))
	}
	level := slog.LevelDebug
	switch ev.Result {
	case domain.EffectCredit.String():
		level = slog.LevelInfo
		attrs = append(attrs, slog.String("amount", ev.Deposit.Amount.String()+" "+ev.Deposit.Amount.Currency().Code()))
	case domain.EffectDecline.String():
		level = slog.LevelInfo
	case domain.EffectException.String(), "store_error", monetix.NoAnswerBadSignature, monetix.NoAnswerNotConfigured,
		monetix.NoAnswerRejected, monetix.NoAnswerMalformed, monetix.NoAnswerUnsigned:
		level = slog.LevelWarn
	}
	logger.LogAttrs(context.Background(), level, "status check", attrs...)
}

// startPoller runs the status poller until ctx ends; the returned wait
// blocks until it has stopped (before the store closes).
func startPoller(ctx context.Context, ledger *app.Service, store *sqlstore.Store, cfg Config, logger *slog.Logger,
	reg prometheus.Registerer) (wait func(), err error) {
	gate, err := newGate(cfg)
	if err != nil {
		return nil, &usageError{fmt.Errorf("%s: %w", envGateURL, err)}
	}
	metrics, err := newPollMetrics(reg, store.OldestPending, logger)
	if err != nil {
		return nil, err
	}
	poller, err := app.NewStatusPoller(ledger, gate, pollerConfig(cfg, logger, metrics))
	if err != nil {
		return nil, &usageError{err}
	}
	logger.Info("status poller on", slog.String("gate", gate.Endpoint()), slog.Duration("after", cfg.StatusPollAfter),
		slog.Float64("rate_per_second", cfg.StatusPollRate), slog.Int("concurrency", cfg.StatusPollConcurrency),
		slog.Duration("pending_expiry", cfg.PendingExpiry), slog.Bool("require_signature", cfg.GateRequireSignature))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = poller.Run(ctx) // returns when ctx ends
	}()
	return wg.Wait, nil
}
