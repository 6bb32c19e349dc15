package platformsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestHistogramBuckets(t *testing.T) {
	t.Parallel()
	prev := -1
	for _, v := range []uint64{0, 1, 255, 256, 257, 511, 512, 1000, 1 << 20, 123456789, math.MaxUint64} {
		b := bucketOf(v)
		if b < 0 || b >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d out of range", v, b)
		}
		lo, hi := bucketRange(b)
		if v < lo || v > hi {
			t.Errorf("%d in bucket %d = [%d, %d]", v, b, lo, hi)
		}
		if b < prev {
			t.Errorf("buckets not monotone at %d", v)
		}
		prev = b
		if v >= 2*histSub && float64(hi-lo) > float64(lo)/histSub {
			t.Errorf("bucket %d [%d, %d] wider than 1/%d", b, lo, hi, histSub)
		}
	}
	// Consecutive buckets tile the line.
	for b := 1; b < histBuckets-1; b++ {
		_, hiPrev := bucketRange(b - 1)
		lo, _ := bucketRange(b)
		if lo != hiPrev+1 {
			t.Fatalf("gap between bucket %d and %d: %d then %d", b-1, b, hiPrev, lo)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	t.Parallel()
	var empty histogram
	if p := empty.percentiles(); p != (Percentiles{}) {
		t.Errorf("empty: %+v", p)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var a, b histogram
	var samples []float64
	for i := range 50000 {
		us := math.Exp(rng.Float64()*10) * 20 // 20 µs … 440 ms
		d := time.Duration(us) * time.Microsecond
		samples = append(samples, float64(d/time.Microsecond))
		if i%2 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	a.record(-time.Second) // clamps to 0
	samples = append(samples, 0)
	a.merge(&b)
	slices.Sort(samples)
	if int(a.n) != len(samples) || float64(a.max) != samples[len(samples)-1] {
		t.Fatalf("n %d max %d, want %d %v", a.n, a.max, len(samples), samples[len(samples)-1])
	}
	for _, q := range []float64{0.5, 0.95, 0.99, 1} {
		exact := samples[int(math.Ceil(q*float64(len(samples))))-1]
		got := a.quantile(q)
		if math.Abs(got-exact) > exact/histSub+1 {
			t.Errorf("q%.2f = %.1f, exact %.1f", q, got, exact)
		}
	}
	p := a.percentiles()
	if p.Count != len(samples) || p.P50 > p.P95 || p.P95 > p.P99 || p.P99 > p.Max || p.Max != samples[len(samples)-1]/1000 {
		t.Errorf("percentiles %+v", p)
	}
}

func validConfig() Config {
	return Config{BaseURL: "http://127.0.0.1:8080", APIToken: "tok", ProjectID: 1234, Secret: []byte("s"), Customers: 5, Payments: 10}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*Config)
		text string // "" = valid
	}{
		{"valid", func(*Config) {}, ""},
		{"localhost", func(c *Config) { c.BaseURL = "http://localhost:9/" }, ""},
		{"ipv6 loopback", func(c *Config) { c.BaseURL = "https://[::1]:8443" }, ""},
		{"duration only", func(c *Config) { c.Payments, c.Duration = 0, time.Second }, ""},
		{"remote host", func(c *Config) { c.BaseURL = "http://example.com" }, "loopback"},
		{"private ip", func(c *Config) { c.BaseURL = "http://10.0.0.1:8080" }, "loopback"},
		{"scheme", func(c *Config) { c.BaseURL = "ftp://127.0.0.1" }, "scheme"},
		{"path", func(c *Config) { c.BaseURL = "http://127.0.0.1:8080/v1" }, "only scheme"},
		{"credentials", func(c *Config) { c.BaseURL = "http://u:p@127.0.0.1" }, "only scheme"},
		{"no token", func(c *Config) { c.APIToken = "" }, "token"},
		{"project", func(c *Config) { c.ProjectID = 0 }, "project id"},
		{"secret", func(c *Config) { c.Secret = nil }, "secret"},
		{"no customers", func(c *Config) { c.Customers = 0 }, "customers"},
		{"too many customers", func(c *Config) { c.Customers = MaxCustomers + 1 }, "customers"},
		{"negative payments", func(c *Config) { c.Payments = -1 }, "payments"},
		{"unbounded", func(c *Config) { c.Payments = 0 }, "bounded"},
		{"long duration", func(c *Config) { c.Duration = MaxDuration + 1 }, "duration"},
		{"concurrency", func(c *Config) { c.Concurrency = MaxConcurrency + 1 }, "concurrency"},
		{"negative concurrency", func(c *Config) { c.Concurrency = -1 }, "concurrency"},
		{"rate NaN", func(c *Config) { c.Rate = math.NaN() }, "rate"},
		{"rate negative", func(c *Config) { c.Rate = -1 }, "rate"},
		{"mode", func(c *Config) { c.Mode = "bench" }, "mode"},
		{"callbacks by time", func(c *Config) { c.Mode, c.Payments, c.Duration = ModeCallbacks, 0, time.Second }, "payment count"},
		{"share > 1", func(c *Config) { c.DuplicateShare = 1.5 }, "duplicates"},
		{"share NaN", func(c *Config) { c.IntermediateShare = math.NaN() }, "intermediates"},
		{"share negative", func(c *Config) { c.UnknownVerifyShare = -0.1 }, "unknown verifies"},
		{"declines+late > 1", func(c *Config) { c.DeclineShare, c.LateSuccessShare = 0.6, 0.5 }, "late successes must not"},
		{"retry-for", func(c *Config) { c.RetryFor = -time.Second }, "retry-for"},
	}
	for _, tc := range tests {
		cfg := validConfig()
		tc.edit(&cfg)
		err := cfg.withDefaults().validate()
		switch {
		case tc.text == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.text != "" && (!errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.text)):
			t.Errorf("%s: err = %v, want ErrConfig mentioning %q", tc.name, err, tc.text)
		}
	}
	d := Config{}.withDefaults()
	if d.BaseURL != DefaultBaseURL || d.Concurrency != 8 || d.Mode != ModeFull || d.RetryFor != DefaultRetryFor || d.RequestTimeout != DefaultRequestTimeout {
		t.Errorf("defaults %+v", d)
	}
}

func TestFormatKZT(t *testing.T) {
	t.Parallel()
	for minor, want := range map[int64]string{
		0: "0.00 KZT", 5: "0.05 KZT", 100: "1.00 KZT", 123456789: "1,234,567.89 KZT", 100000: "1,000.00 KZT",
		-150: "-1.50 KZT", math.MinInt64: "-92,233,720,368,547,758.08 KZT",
	} {
		if got := FormatKZT(minor); got != want {
			t.Errorf("FormatKZT(%d) = %q, want %q", minor, got, want)
		}
	}
}

func TestWriteText(t *testing.T) {
	t.Parallel()
	r := Report{
		Mode: ModeFull, Concurrency: 8, Customers: 3, CustomerPrefix: "sim-x-", Payments: 100, Succeeded: 90,
		Declined: 10, Callbacks: 130, Elapsed: 2 * time.Second, PaymentsPerSec: 50, CallbacksPerSec: 65,
		Effects:         map[string]int{"credited": 90, "replay": 30},
		Latency:         map[string]Percentiles{"callback": {Count: 130, P50: 1.5, P95: 3, P99: 4, Max: 9}},
		BalancesChecked: 3, ExpectedMinor: 123456, ActualMinor: 123456, Mismatches: []Mismatch{},
	}
	var ok bytes.Buffer
	if err := r.WriteText(&ok); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mode full", "50.0/s", "65.0/s", "credited 90", "callback", "1.500", "mismatches    0", "errors        0", "1,234.56 KZT"} {
		if !strings.Contains(ok.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, ok.String())
		}
	}
	if strings.Contains(ok.String(), "\x1b[") {
		t.Errorf("escape codes written to a non-terminal")
	}
	if !r.OK() {
		t.Errorf("clean report not OK")
	}

	r.Mismatches = make([]Mismatch, maxMismatchLines+5)
	for i := range r.Mismatches {
		r.Mismatches[i] = Mismatch{CustomerID: "sim-x-1", Want: 100, Got: 200}
	}
	r.Mismatches[0].WantUpTo = 150
	r.Errors, r.ErrorSamples = 12, []string{"callback success of payment 3: HTTP 500"}
	var bad bytes.Buffer
	_ = r.WriteText(&bad)
	for _, want := range []string{"MISMATCHES    25", "1.00 KZT to 1.50 KZT", "… and 5 more", "ERRORS        12", "HTTP 500", "… and 11 more"} {
		if !strings.Contains(bad.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, bad.String())
		}
	}
	if r.OK() {
		t.Errorf("report with mismatches is OK")
	}
	raw, _ := json.Marshal(Mismatch{CustomerID: "c", Want: 1, Got: 2})
	if string(raw) != `{"customer_id":"c","want_minor":1,"got_minor":2}` {
		t.Errorf("mismatch JSON %s", raw)
	}
}

func TestProgressLine(t *testing.T) {
	t.Parallel()
	cfg := validConfig().withDefaults()
	var buf bytes.Buffer
	cfg.Progress = &buf
	s, err := newSim(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.phaseDone.Store(5)
	stop := s.startProgress("payments", 10, time.Now().Add(-time.Second), 0)
	time.Sleep(3 * progressInterval)
	stop()
	stop() // idempotent
	out := buf.String()
	lines := strings.Count(out, "\r")
	if !strings.Contains(out, "5/10") || !strings.Contains(out, "[############............]") || !strings.HasSuffix(out, "\n") {
		t.Errorf("progress %q", out)
	}
	// At most 5 redraws a second, plus the final one.
	if lines < 2 || lines > 5 {
		t.Errorf("%d redraws in 0.6 s", lines)
	}
}

// judge holds a deposit read back to the platform's record of a dropped
// payment: recovered only when settled as the platform did, by a status
// check, with its amount and last operation.
func TestJudgeDroppedPayment(t *testing.T) {
	t.Parallel()
	str := func(s string) *string { return &s }
	checked := &struct {
		Checks int `json:"checks"`
	}{Checks: 1}
	success := droppedPayment{paymentID: "dep_1", amount: 500, success: true, op: 42}
	decline := droppedPayment{paymentID: "dep_2", amount: 700, success: false, op: 43}
	ok := func(d droppedPayment, status string) depositState {
		return depositState{PaymentID: d.paymentID, Status: status, AmountMinor: d.amount,
			OperationID: str(strconv.FormatInt(d.op, 10)), StatusChecks: checked}
	}
	for _, tc := range []struct {
		name string
		d    droppedPayment
		edit func(*depositState)
		want verdict
	}{
		{"credited", success, func(*depositState) {}, vRecovered},
		{"declined", decline, func(s *depositState) { s.Status = "declined" }, vRecovered},
		{"pending", success, func(s *depositState) { s.Status = "pending" }, vPending},
		{"settled before its check is recorded", success, func(s *depositState) { s.StatusChecks = nil }, vPending},
		{"declined where the platform collected", success, func(s *depositState) { s.Status = "declined" }, vWrong},
		{"credited where the platform declined", decline, func(s *depositState) { s.Status = "succeeded" }, vWrong},
		{"expired", success, func(s *depositState) { s.Status = "expired" }, vWrong},
		{"another amount", success, func(s *depositState) { s.AmountMinor = 501 }, vWrong},
		{"another operation", success, func(s *depositState) { s.OperationID = str("41") }, vWrong},
		{"no operation", success, func(s *depositState) { s.OperationID = nil }, vWrong},
		{"another payment", success, func(s *depositState) { s.PaymentID = "dep_9" }, vWrong},
	} {
		want := "succeeded"
		if !tc.d.success {
			want = "declined"
		}
		st := ok(tc.d, want)
		tc.edit(&st)
		if got, why := tc.d.judge(st); got != tc.want || (got == vWrong && why == "") {
			t.Errorf("%s: verdict %d (%q), want %d", tc.name, got, why, tc.want)
		}
	}
}
