package server

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// ExceptionsScrapeTimeout bounds the store query behind the open exceptions
// gauge, so a slow database cannot hold a scrape (and a scrape slot) open.
const ExceptionsScrapeTimeout = 2 * time.Second

// ExceptionsCacheTTL is how long one count of the open exceptions answers
// scrapes: a storm of scrapes reads the store at most once per TTL. An
// operator's queue does not need a fresher figure.
const ExceptionsCacheTTL = 5 * time.Second

// durationBuckets cover a ledger request: a cached read is sub-millisecond,
// a group-committed credit a few milliseconds, anything beyond a second is
// trouble worth seeing.
var durationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics() *httpMetrics {
	return &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tiyn_http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tiyn_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route pattern and method.",
			Buckets: durationBuckets,
		}, []string{"route", "method"}),
	}
}

// knownMethods keeps the method label bounded: anything else is "other".
var knownMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true,
	"DELETE": true, "OPTIONS": true, "CONNECT": true, "TRACE": true,
}

func (m *httpMetrics) observe(route, method string, status int, elapsed time.Duration) {
	if !knownMethods[method] {
		method = "other"
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(elapsed.Seconds())
}

// registerRuntimeCollectors adds the Go runtime and process collectors,
// unless the registry already has them (a caller sharing its registry).
func registerRuntimeCollectors(reg *prometheus.Registry) {
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			var dup prometheus.AlreadyRegisteredError
			if !errors.As(err, &dup) {
				panic("server: register runtime collector: " + err.Error())
			}
		}
	}
}

func mustRegister(reg *prometheus.Registry, cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			panic("server: register metric: " + err.Error())
		}
	}
}

// dbStatsCollector exports the connection pool, read at scrape time.
type dbStatsCollector struct {
	stats                            func() sql.DBStats
	maxOpen, open, inUse, idle       *prometheus.Desc
	waitCount, waitDuration          *prometheus.Desc
	maxIdleClosed, maxLifetimeClosed *prometheus.Desc
}

func newDBStatsCollector(stats func() sql.DBStats) *dbStatsCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("tiyn_db_"+name, help, nil, nil)
	}
	return &dbStatsCollector{
		stats:             stats,
		maxOpen:           d("max_open_connections", "Maximum number of open connections to the database (0: unlimited)."),
		open:              d("open_connections", "Established connections to the database, in use or idle."),
		inUse:             d("in_use_connections", "Connections currently in use."),
		idle:              d("idle_connections", "Idle connections."),
		waitCount:         d("wait_count_total", "Times a request waited for a free connection."),
		waitDuration:      d("wait_duration_seconds_total", "Total time spent waiting for a free connection."),
		maxIdleClosed:     d("max_idle_closed_total", "Connections closed because the idle pool was full."),
		maxLifetimeClosed: d("max_lifetime_closed_total", "Connections closed because they reached their maximum lifetime."),
	}
}

func (c *dbStatsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.maxOpen, c.open, c.inUse, c.idle, c.waitCount, c.waitDuration, c.maxIdleClosed, c.maxLifetimeClosed} {
		ch <- d
	}
}

func (c *dbStatsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(c.maxOpen, prometheus.GaugeValue, float64(s.MaxOpenConnections))
	ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(s.OpenConnections))
	ch <- prometheus.MustNewConstMetric(c.inUse, prometheus.GaugeValue, float64(s.InUse))
	ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, float64(s.Idle))
	ch <- prometheus.MustNewConstMetric(c.waitCount, prometheus.CounterValue, float64(s.WaitCount))
	ch <- prometheus.MustNewConstMetric(c.waitDuration, prometheus.CounterValue, s.WaitDuration.Seconds())
	ch <- prometheus.MustNewConstMetric(c.maxIdleClosed, prometheus.CounterValue, float64(s.MaxIdleClosed))
	ch <- prometheus.MustNewConstMetric(c.maxLifetimeClosed, prometheus.CounterValue, float64(s.MaxLifetimeClosed))
}

// exceptionsCollector exports the number of open exceptions. A count, or a
// failure to count, answers every scrape for ExceptionsCacheTTL; scrapes
// that arrive while a count runs wait for it instead of starting their own.
// When the count cannot be read the gauge is left out (a stale or zero
// value would lie) and the failure is counted, once per attempt.
type exceptionsCollector struct {
	count  func(ctx context.Context) (int, error)
	logger *slog.Logger
	open   *prometheus.Desc
	errs   prometheus.Counter
	now    func() time.Time

	mu     sync.Mutex // held while counting
	at     time.Time  // when the cached result was read (zero: none)
	n      int
	err    error
	counts int // store reads made, for tests
}

func newExceptionsCollector(count func(ctx context.Context) (int, error), logger *slog.Logger) *exceptionsCollector {
	return &exceptionsCollector{
		count:  count,
		logger: logger,
		now:    time.Now,
		open:   prometheus.NewDesc("tiyn_exceptions_open", "Exceptions waiting for an operator's decision (read at most every 5s).", nil, nil),
		errs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tiyn_exceptions_open_scrape_errors_total",
			Help: "Times the open exceptions could not be counted.",
		}),
	}
}

func (c *exceptionsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.open
	c.errs.Describe(ch)
}

// read returns the cached count, or counts anew once the cache is older
// than ExceptionsCacheTTL.
func (c *exceptionsCollector) read() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && c.now().Sub(c.at) < ExceptionsCacheTTL {
		return c.n, c.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), ExceptionsScrapeTimeout)
	defer cancel()
	c.n, c.err = c.count(ctx)
	c.at = c.now()
	c.counts++
	if c.err != nil {
		c.errs.Inc()
		c.logger.Warn("count open exceptions", slog.String("error", c.err.Error()))
	}
	return c.n, c.err
}

func (c *exceptionsCollector) Collect(ch chan<- prometheus.Metric) {
	if n, err := c.read(); err == nil {
		ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(n))
	}
	ch <- c.errs
}
