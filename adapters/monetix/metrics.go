package monetix

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons counted in tiyn_monetix_rejected_total{reason}. Each is a fixed
// label value, so the metric's cardinality stays bounded whatever is sent.
const (
	ReasonBadSignature     = "bad_signature"      // signature missing, mistyped or wrong
	ReasonMalformed        = "malformed"          // not a JSON object Tiyn can decode
	ReasonUnknownProject   = "unknown_project"    // project_id missing, mistyped or not configured
	ReasonTooLarge         = "too_large"          // body above Config.MaxBodyBytes
	ReasonWrongContentType = "wrong_content_type" // Content-Type other than application/json (UTF-8)
	ReasonRejectedByLedger = "rejected_by_ledger" // the ledger refused the callback as permanently invalid
)

// Endpoint label values of tiyn_monetix_rejected_total.
const (
	endpointRequests  = "requests"
	endpointCallbacks = "callbacks"
)

// Metrics are the adapter's Prometheus collectors. A nil *Metrics is valid
// and counts nothing, so tests and embedders need not register anything.
//
//   - tiyn_monetix_requests_total{type,code}: verify/check_deposit answers by
//     request type ("verify", "check_deposit", "unknown") and answer code.
//   - tiyn_monetix_callbacks_total{effect}: callbacks the ledger applied, by
//     effect (credited, declined, replay, recorded, exception).
//   - tiyn_monetix_rejected_total{endpoint,reason}: bodies refused before the
//     ledger (bad signatures are either an attack or a wrong key: alert).
//   - tiyn_credits_total{currency}, tiyn_credited_minor_total{currency}:
//     deposits credited and their sum in minor units (per currency, since
//     minor units of different currencies do not add up).
type Metrics struct {
	requests      *prometheus.CounterVec
	callbacks     *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	credits       *prometheus.CounterVec
	creditedMinor *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered). Collectors already registered with reg by an earlier call are
// reused, so several handlers may share one registry.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		requests: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tiyn_monetix_requests_total",
			Help: "Monetix verify/check_deposit requests answered, by request type and answer code.",
		}, []string{"type", "code"})),
		callbacks: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tiyn_monetix_callbacks_total",
			Help: "Monetix callbacks applied by the ledger, by effect.",
		}, []string{"effect"})),
		rejected: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tiyn_monetix_rejected_total",
			Help: "Monetix requests and callbacks rejected before reaching the ledger, by endpoint and reason.",
		}, []string{"endpoint", "reason"})),
		credits: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tiyn_credits_total",
			Help: "Deposits credited to customer accounts, by currency.",
		}, []string{"currency"})),
		creditedMinor: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tiyn_credited_minor_total",
			Help: "Sum of credited deposits in minor units (tiyn for KZT), by currency.",
		}, []string{"currency"})),
	}
}

func register(reg prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			if existing, ok := already.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
		panic("monetix.NewMetrics: " + err.Error()) // a programmer error: a clashing metric name
	}
	return c
}

func (m *Metrics) request(typ string, code int) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(typ, strconv.Itoa(code)).Inc()
}

func (m *Metrics) callback(effect string) {
	if m == nil {
		return
	}
	m.callbacks.WithLabelValues(effect).Inc()
}

func (m *Metrics) reject(endpoint, reason string) {
	if m == nil {
		return
	}
	m.rejected.WithLabelValues(endpoint, reason).Inc()
}

func (m *Metrics) credit(currency string, minor int64) {
	if m == nil {
		return
	}
	m.credits.WithLabelValues(currency).Inc()
	if minor > 0 {
		m.creditedMinor.WithLabelValues(currency).Add(float64(minor))
	}
}
