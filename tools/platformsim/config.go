package platformsim

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/domain"
)

// ErrConfig is wrapped by every error Run returns for a Config it refuses,
// so a command line can answer it as a usage error (exit code 2).
var ErrConfig = errors.New("platformsim: invalid config")

// Modes of a run.
const (
	// ModeFull plays whole payments: verify → check_deposit → callbacks,
	// all timed. It is the demo and the end-to-end driver.
	ModeFull = "full"
	// ModeCallbacks opens every deposit first (untimed), then times only
	// the callbacks, to measure crediting on its own.
	ModeCallbacks = "callbacks"
)

// Defaults and limits of a Config. The limits keep a typo on the command
// line from starting a run that cannot end or exhausts the machine.
const (
	// DefaultBaseURL is where `tiyn serve` listens by default.
	DefaultBaseURL = "http://127.0.0.1:8080"
	// DefaultRequestTimeout bounds one HTTP request.
	DefaultRequestTimeout = 10 * time.Second
	// DefaultRetryFor bounds how long Platform mode keeps retrying one
	// request or callback: long enough to survive a server restart, short
	// enough that a broken server ends the run.
	DefaultRetryFor = 2 * time.Minute
	// MaxCustomers bounds the accounts a run opens (and reads at the end).
	MaxCustomers = 100_000
	// MaxPayments bounds the payments of one run.
	MaxPayments = 50_000_000
	// MaxConcurrency bounds the workers (each holds one connection, two
	// with concurrent duplicates).
	MaxConcurrency = 1024
	// MaxDuration bounds a fixed-time run.
	MaxDuration = 24 * time.Hour
	// MaxRetryFor bounds Config.RetryFor.
	MaxRetryFor = time.Hour
	// DefaultRecoveryTimeout bounds the wait for dropped payments to be
	// settled by Tiyn's status poller: its default TIYN_STATUS_POLL_AFTER
	// (5 minutes), a round at its default rate, and margin.
	DefaultRecoveryTimeout = 10 * time.Minute
	// MaxGateListeners bounds Config.GateListeners.
	MaxGateListeners = 16
)

// Config is one simulator run. Zero values get the defaults noted; Run
// refuses anything out of range with an error wrapping ErrConfig.
type Config struct {
	// BaseURL is the running Tiyn, e.g. http://127.0.0.1:8080. Only
	// loopback hosts are accepted: the simulator is a test and benchmark
	// tool, not a way to push fake payments into a remote ledger.
	BaseURL string
	// APIToken is a REST bearer token with the write role (accounts are
	// opened through the API).
	APIToken string
	// ProjectID and Secret are the Monetix project the requests and
	// callbacks are signed for; Tiyn must have the same pair configured.
	ProjectID int64
	Secret    []byte
	// AmountMinMinor and AmountMaxMinor bound the amounts of the payments,
	// in tiyn: set them to the project's own limits when it has some, or
	// Tiyn answers code 500 to every check_deposit outside them. Zero takes
	// the kassa24 limits (monetix.Kassa24.Limits); they must lie
	// within those.
	AmountMinMinor, AmountMaxMinor int64
	// Customers is how many accounts are opened through REST. Customer ids
	// carry a random per-run prefix, so runs never collide.
	Customers int
	// Payments is how many payments are played. 0 with Duration > 0 means
	// "until Duration".
	Payments int
	// Duration bounds the run (fixed-time mode for benchmarks). With both
	// Payments and Duration set the run stops at whichever comes first.
	// Payments in flight when it expires are completed.
	Duration time.Duration
	// Concurrency is the number of workers (default 8).
	Concurrency int
	// Rate caps payments started per second (0 = unbounded), for soak runs.
	Rate float64
	// Mode is ModeFull (default) or ModeCallbacks. ModeCallbacks needs
	// Payments > 0 (the deposits are opened before the clock starts).
	Mode string
	// DuplicateShare of payments get their final callback delivered again
	// after the first 200 (a replay).
	DuplicateShare float64
	// ConcurrentDupShare of payments get their final callback delivered
	// twice at the same moment.
	ConcurrentDupShare float64
	// DeclineShare of payments are declined.
	DeclineShare float64
	// LateSuccessShare of payments are declined first, then succeed with a
	// new operation id; they must be credited.
	LateSuccessShare float64
	// IntermediateShare of payments get a "processing" callback first.
	IntermediateShare float64
	// UnknownVerifyShare of payments come with an extra verify for a
	// customer that does not exist (Tiyn must answer code 404).
	UnknownVerifyShare float64
	// Platform makes the simulator behave like the platform: every non-200
	// or timed-out callback is retried with backoff (50 ms, doubling, capped
	// at 2 s, jittered) until it gets 200, and verify/check_deposit
	// failures (connection refused, 5xx, code 500, timeouts) are retried
	// too, so a server restart mid-run is survived. Each request gives up
	// after RetryFor.
	Platform bool
	// RetryFor bounds the retries of one request in Platform mode (default
	// DefaultRetryFor).
	RetryFor time.Duration
	// RequestTimeout bounds one HTTP request (default DefaultRequestTimeout).
	RequestTimeout time.Duration
	// Progress receives a one-line progress bar, redrawn at most 5 times a
	// second; pass a terminal or nil (none).
	Progress io.Writer
	// Seed makes the payment plan (customers, amounts, scenarios)
	// reproducible; customer ids and operation ids stay unique per run.
	Seed int64

	// GateListeners, when given, make the simulator the platform's Gate
	// too: it keeps a record of every payment it makes (package platform)
	// and serves POST /v2/payment/status from it on each listener, signed
	// with the project's key — point TIYN_MONETIX_GATE_URL at one. Each
	// listener meters its own requests, so one per `tiyn serve` instance
	// gives each instance's rate. Loopback addresses only; Run closes them.
	GateListeners []net.Listener
	// DropShare of payments never get their callbacks delivered: the
	// platform records their outcome (the Gate answers it truthfully) and
	// Tiyn must learn it from its status poller. Needs GateListeners.
	DropShare float64
	// RecoveryTimeout bounds the wait at the end of the run for Tiyn to
	// settle every dropped payment as the platform did, read through the
	// REST API (default DefaultRecoveryTimeout). A payment not settled by
	// then is lost and fails the run.
	RecoveryTimeout time.Duration

	// DataToken and DataSecret, with GateListeners, make each listener
	// serve the platform's Data API too: POST /v1/operations/get from the
	// record (platform.DataAPI), for requests carrying this token and
	// signed with this secret — point TIYN_MONETIX_DATA_URL at the Gate's
	// address with TIYN_MONETIX_DATA_TOKEN and _SECRET the same pair.
	// DataMapping names the members the reference does not show (zero:
	// monetix.DefaultDataMapping).
	DataToken   string
	DataSecret  []byte
	DataMapping monetix.DataMapping
	// ReportCSV, when set, is the file the CSV report of the run's
	// business day is written to at the end of the run, in the default
	// header, amounts in major units, times in BusinessZone; a run whose
	// operations complete on several days writes one file per day, the
	// day inserted before the extension (Report.ReportFiles).
	ReportCSV string
	// BusinessZone is the time zone of business days (nil:
	// domain.DefaultBusinessZone, Asia/Almaty).
	BusinessZone *time.Location
	// ReconFaults injects 2–3 payments (drawn from Seed) of every class of
	// reconciliation break into the platform's record (recon.go,
	// platform.Fault); needs at least MinFaultPayments payments.
	ReconFaults bool
	// ServeFor keeps the Gate (and the Data API) serving for this long
	// after the run, or until ctx ends, so the day can be reconciled
	// against it; Served is called with the report when that begins.
	// Needs GateListeners.
	ServeFor time.Duration
	Served   func(Report)
}

// withDefaults fills the zero values.
func (c Config) withDefaults() Config {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.Mode == "" {
		c.Mode = ModeFull
	}
	if c.RetryFor == 0 {
		c.RetryFor = DefaultRetryFor
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.RecoveryTimeout == 0 {
		c.RecoveryTimeout = DefaultRecoveryTimeout
	}
	if c.BusinessZone == nil {
		if loc, err := domain.LoadBusinessZone(""); err == nil {
			c.BusinessZone = loc
		}
	}
	if c.AmountMinMinor == 0 {
		c.AmountMinMinor = simMethod.Limits.MinMinor
	}
	if c.AmountMaxMinor == 0 {
		c.AmountMaxMinor = simMethod.Limits.MaxMinor
	}
	return c
}

// validate checks a Config that went through withDefaults.
func (c Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	if err := checkLoopbackURL(c.BaseURL); err != nil {
		return bad("%v", err)
	}
	switch {
	case c.APIToken == "":
		return bad("no REST API token (a write token is needed to open accounts)")
	case c.ProjectID <= 0:
		return bad("project id must be a positive integer, got %d", c.ProjectID)
	case len(c.Secret) == 0:
		return bad("no project secret")
	case c.Customers < 1 || c.Customers > MaxCustomers:
		return bad("customers must be between 1 and %d, got %d", MaxCustomers, c.Customers)
	case c.Payments < 0 || c.Payments > MaxPayments:
		return bad("payments must be between 0 and %d, got %d", MaxPayments, c.Payments)
	case c.Duration < 0 || c.Duration > MaxDuration:
		return bad("duration must be between 0 and %s, got %s", MaxDuration, c.Duration)
	case c.Payments == 0 && c.Duration == 0:
		return bad("set payments or a duration: a run must be bounded")
	case c.Concurrency < 1 || c.Concurrency > MaxConcurrency:
		return bad("concurrency must be between 1 and %d, got %d", MaxConcurrency, c.Concurrency)
	case math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) || c.Rate < 0:
		return bad("rate must be a finite number >= 0, got %v", c.Rate)
	case c.Mode != ModeFull && c.Mode != ModeCallbacks:
		return bad("mode must be %q or %q, got %q", ModeFull, ModeCallbacks, c.Mode)
	case c.Mode == ModeCallbacks && c.Payments == 0:
		return bad("mode %q needs a payment count (deposits are opened before the clock starts)", ModeCallbacks)
	case c.RetryFor < 0 || c.RetryFor > MaxRetryFor:
		return bad("retry-for must be between 0 and %s, got %s", MaxRetryFor, c.RetryFor)
	case c.RequestTimeout < 0 || c.RequestTimeout > MaxRetryFor:
		return bad("request timeout must be between 0 and %s, got %s", MaxRetryFor, c.RequestTimeout)
	case c.RecoveryTimeout < 0 || c.RecoveryTimeout > MaxDuration:
		return bad("recovery timeout must be between 0 and %s, got %s", MaxDuration, c.RecoveryTimeout)
	case len(c.GateListeners) > MaxGateListeners:
		return bad("at most %d gate listeners, got %d", MaxGateListeners, len(c.GateListeners))
	case c.DropShare > 0 && len(c.GateListeners) == 0:
		return bad("dropped callbacks need the Gate (a gate listener): nothing else could tell Tiyn about those payments")
	case c.ReconFaults && c.Payments < MinFaultPayments:
		return bad("reconciliation faults need a payment count of at least %d (the faulty payments are drawn among them), got %d", MinFaultPayments, c.Payments)
	case c.ServeFor < 0 || c.ServeFor > MaxDuration:
		return bad("serve-for must be between 0 and %s, got %s", MaxDuration, c.ServeFor)
	case c.ServeFor > 0 && len(c.GateListeners) == 0:
		return bad("serving after the run needs a gate listener")
	case (c.DataToken == "") != (len(c.DataSecret) == 0):
		return bad("the Data API needs both a token and its secret")
	case c.DataToken != "" && len(c.GateListeners) == 0:
		return bad("the Data API is served on the gate listeners: give one")
	case c.BusinessZone == nil:
		return bad("no business time zone")
	case c.AmountMinMinor < simMethod.Limits.MinMinor || c.AmountMaxMinor > simMethod.Limits.MaxMinor || c.AmountMinMinor > c.AmountMaxMinor:
		return bad("amounts must lie within %s–%s KZT with min <= max, got %s–%s KZT", kzt(simMethod.Limits.MinMinor), kzt(simMethod.Limits.MaxMinor),
			kzt(c.AmountMinMinor), kzt(c.AmountMaxMinor))
	}
	shares := []struct {
		name string
		v    float64
	}{
		{"duplicates", c.DuplicateShare},
		{"concurrent duplicates", c.ConcurrentDupShare},
		{"declines", c.DeclineShare},
		{"late successes", c.LateSuccessShare},
		{"intermediates", c.IntermediateShare},
		{"unknown verifies", c.UnknownVerifyShare},
		{"dropped callbacks", c.DropShare},
	}
	for _, s := range shares {
		if math.IsNaN(s.v) || s.v < 0 || s.v > 1 {
			return bad("share of %s must be between 0 and 1, got %v", s.name, s.v)
		}
	}
	if c.DeclineShare+c.LateSuccessShare > 1 {
		return bad("declines + late successes must not exceed 1, got %v", c.DeclineShare+c.LateSuccessShare)
	}
	for _, ln := range c.GateListeners {
		if ln == nil {
			return bad("a nil gate listener")
		}
		if err := checkLoopbackAddr(ln.Addr()); err != nil {
			return bad("%v", err)
		}
	}
	return nil
}

// checkLoopbackAddr accepts a TCP address on a loopback IP.
func checkLoopbackAddr(a net.Addr) error {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsLoopback() {
		return fmt.Errorf("gate listener %s: must be TCP on a loopback address (127.0.0.1 or ::1)", a)
	}
	return nil
}

// checkLoopbackURL accepts http(s) URLs whose host is localhost or a
// loopback IP literal, with no path beyond "/", query or credentials.
func checkLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("base URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("base URL %q: scheme must be http or https", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("base URL %q: give only scheme, host and port", raw)
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("base URL %q: host must be a loopback address (127.0.0.1, ::1 or localhost)", raw)
	}
	return nil
}

// kzt formats tiyn as KZT major units for messages ("1.00").
func kzt(minor int64) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	return fmt.Sprintf("%s%d.%02d", sign, minor/100, minor%100)
}
