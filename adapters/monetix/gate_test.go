package monetix_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/monetix/signature"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// recorded reads an answer of testdata/gate: bodies shaped as the public
// clients of the Gate read them (docs/protocol.md §8).
func recorded(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "gate", name))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.TrimSpace(string(b)))
}

// signedWith re-signs a recorded answer with secret (top-level signature).
func signedWith(t *testing.T, secret, body []byte) []byte {
	t.Helper()
	doc, err := signature.Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	out, err := monetix.SignedJSON(secret, doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// gateServer is a Gate that answers with status and body, and keeps the
// requests it got.
type gateServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests [][]byte
	status   int
	body     []byte
	delay    time.Duration
}

func newGateServer(t *testing.T, status int, body []byte) *gateServer {
	t.Helper()
	g := &gateServer{status: status, body: body}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		g.requests = append(g.requests, b)
		status, body, delay := g.status, g.body, g.delay
		g.mu.Unlock()
		if r.URL.Path != monetix.GateStatusPath || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "wrong request", http.StatusTeapot)
			return
		}
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(g.Close)
	return g
}

func (g *gateServer) got() [][]byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([][]byte(nil), g.requests...)
}

func (g *gateServer) slow(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.delay = d
}

func newGate(t *testing.T, url string, require bool, timeout time.Duration) *monetix.Gate {
	t.Helper()
	g, err := monetix.NewGate(monetix.GateConfig{URL: url, Projects: testProjects(), RequireSignature: require, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// lostDeposit is the deposit the recorded answers are about.
var lostDeposit = domain.Deposit{ID: "dep_1", Channel: domain.Channel{Provider: "monetix", Method: "kassa24", Project: p1ID},
	PaymentID: "pay_lost", Amount: domain.NewAmount(1500000, domain.KZT), Status: domain.DepositPending}

func TestGateRequestIsSignedInsideGeneral(t *testing.T) {
	t.Parallel()
	srv := newGateServer(t, http.StatusOK, signedWith(t, p1Secret, recorded(t, "success.json")))
	if _, err := newGate(t, srv.URL, false, 0).PaymentStatus(t.Context(), lostDeposit); err != nil {
		t.Fatal(err)
	}
	var req struct {
		General map[string]json.RawMessage `json:"general"`
	}
	sent := srv.got()[0]
	if err := json.Unmarshal(sent, &req); err != nil {
		t.Fatal(err)
	}
	if string(req.General["project_id"]) != "1234" || string(req.General["payment_id"]) != `"pay_lost"` {
		t.Fatalf("request = %s: project_id must be an integer, payment_id the minted id", sent)
	}
	doc, err := signature.Decode(sent)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := doc["general"].(map[string]any)["signature"].(string)
	if sig == "" || sig != signature.Sign(p1Secret, doc) {
		t.Fatalf("general.signature %q is not the body's signature with the project key", sig)
	}
	if _, top := doc["signature"]; top {
		t.Fatal("the signature must sit inside general, not at the top")
	}
	// The same function builds it for the simulator's side.
	b, err := monetix.StatusRequestBody(p1Secret, p1ID, "pay_lost")
	if err != nil || string(b) != string(sent) {
		t.Fatalf("StatusRequestBody = %s, %v", b, err)
	}
	if pid, pay, err := monetix.ParseStatusRequest(doc); err != nil || pid != p1ID || pay != "pay_lost" {
		t.Fatalf("ParseStatusRequest = %s %s %v", pid, pay, err)
	}
	secretOf := func(id string) []byte {
		if id == p1ID {
			return p1Secret
		}
		return nil
	}
	if pid, pay, err := monetix.VerifyStatusRequest(secretOf, sent); err != nil || pid != p1ID || pay != "pay_lost" {
		t.Fatalf("VerifyStatusRequest = %s %s %v", pid, pay, err)
	}
	tampered := []byte(strings.Replace(string(sent), "pay_lost", "pay_lose", 1))
	if _, _, err := monetix.VerifyStatusRequest(secretOf, tampered); !errors.Is(err, signature.ErrInvalidSignature) {
		t.Fatalf("a tampered request verified: %v", err)
	}
	wrongKey := func(string) []byte { return p2Secret }
	if _, _, err := monetix.VerifyStatusRequest(wrongKey, sent); !errors.Is(err, signature.ErrInvalidSignature) {
		t.Fatalf("another key verified: %v", err)
	}
	if _, _, err := monetix.VerifyStatusRequest(func(string) []byte { return nil }, sent); err == nil {
		t.Fatal("an unknown project verified")
	}
}

func TestGateRecordedAnswers(t *testing.T) {
	t.Parallel()
	kzt := func(minor int64) domain.Amount { return domain.NewAmount(minor, domain.KZT) }
	for _, tc := range []struct {
		file   string
		status int
		want   ports.StatusAnswer // Evidence and Limits filled in below
	}{
		{"success.json", 200, ports.StatusAnswer{Known: true, Outcome: domain.Outcome{Kind: domain.OutcomeSuccess, Status: "success",
			OperationID: "36011000001676", Amount: kzt(1500000), Method: "kassa24"}}},
		{"decline.json", 200, ports.StatusAnswer{Known: true, Outcome: domain.Outcome{Kind: domain.OutcomeDecline, Status: "decline",
			OperationID: "36011000001677", Amount: kzt(1500000), Method: "kassa24"}}},
		{"processing.json", 200, ports.StatusAnswer{Known: true, Outcome: domain.Outcome{Kind: domain.OutcomeIntermediate,
			Status: "processing", OperationID: "36011000001678", Amount: kzt(1500000), Method: "kassa24"}}},
		// A refund attempt after the sale: the last sale decides.
		{"success-then-refund.json", 200, ports.StatusAnswer{Known: true, Outcome: domain.Outcome{Kind: domain.OutcomeSuccess,
			Status: "success", OperationID: "36011000001676", Amount: kzt(1500000), Method: "kassa24"}}},
		{"not-found.json", 404, ports.StatusAnswer{Known: false}},
	} {
		for _, signed := range []bool{false, true} {
			body := recorded(t, tc.file)
			if signed {
				body = signedWith(t, p1Secret, body)
			}
			srv := newGateServer(t, tc.status, body)
			got, err := newGate(t, srv.URL, signed, 0).PaymentStatus(t.Context(), lostDeposit)
			if err != nil {
				t.Fatalf("%s (signed %v): %v", tc.file, signed, err)
			}
			want := tc.want
			want.Evidence, want.Limits = string(body), monetix.Kassa24.Limits
			if got != want {
				t.Errorf("%s (signed %v):\n got %+v\nwant %+v", tc.file, signed, got, want)
			}
		}
	}
}

func TestGateNoAnswers(t *testing.T) {
	t.Parallel()
	other := []byte("not-the-project-key")
	for _, tc := range []struct {
		name    string
		status  int
		body    []byte
		require bool
		reason  string
	}{
		{"a wrong signature", 200, signedWith(t, other, recorded(t, "success.json")), false, monetix.NoAnswerBadSignature},
		{"a wrong signature on a 404", 404, signedWith(t, other, recorded(t, "not-found.json")), false, monetix.NoAnswerBadSignature},
		{"a tampered amount", 200, []byte(strings.Replace(string(signedWith(t, p1Secret, recorded(t, "success.json"))),
			`"amount":1500000`, `"amount":1500001`, 1)), false, monetix.NoAnswerBadSignature},
		{"unsigned when required", 200, recorded(t, "success.json"), true, monetix.NoAnswerUnsigned},
		{"an unsigned 404 when required", 404, recorded(t, "not-found.json"), true, monetix.NoAnswerUnsigned},
		{"errors only", 200, recorded(t, "errors.json"), false, monetix.NoAnswerRejected},
		{"HTTP 400", 400, recorded(t, "errors.json"), false, monetix.NoAnswerRejected},
		{"HTTP 403", 403, []byte("forbidden"), false, monetix.NoAnswerRejected},
		{"HTTP 500", 500, []byte(`{"errors":[{"message":"internal"}]}`), false, monetix.NoAnswerUnavailable},
		{"HTTP 503", 503, nil, false, monetix.NoAnswerUnavailable},
		{"HTTP 429", 429, nil, false, monetix.NoAnswerUnavailable},
		{"a malformed body", 200, []byte(`{"payment":`), false, monetix.NoAnswerMalformed},
		{"not an object", 200, []byte(`[1,2]`), false, monetix.NoAnswerMalformed},
		{"an amount as a string", 200, recorded(t, "malformed-amount.json"), false, monetix.NoAnswerMalformed},
		{"about another payment", 200, signedWith(t, p1Secret, recorded(t, "other-payment.json")), false, monetix.NoAnswerMalformed},
		{"operations not an array", 200, []byte(`{"project_id":1234,"payment":{"id":"pay_lost","status":"success","sum":{"amount":1,"currency":"KZT"}},"operations":{}}`),
			false, monetix.NoAnswerMalformed},
		{"a body past the bound", 200, []byte(`{"x":"` + strings.Repeat("a", monetix.MaxGateAnswerBytes) + `"}`), false, monetix.NoAnswerMalformed},
	} {
		srv := newGateServer(t, tc.status, tc.body)
		got, err := newGate(t, srv.URL, tc.require, 0).PaymentStatus(t.Context(), lostDeposit)
		var na *ports.NoAnswerError
		if !errors.As(err, &na) || !errors.Is(err, ports.ErrNoAnswer) || na.Reason != tc.reason {
			t.Errorf("%s: %+v, %v; want no answer (%s)", tc.name, got, err, tc.reason)
		}
	}
}

func TestGateProjectAnswersAnotherProject(t *testing.T) {
	t.Parallel()
	// The answer names project 5678 and is signed with its key: not an
	// answer about a deposit of 1234, whatever its signature.
	body := strings.Replace(string(recorded(t, "success.json")), `"project_id":1234`, `"project_id":5678`, 1)
	srv := newGateServer(t, 200, signedWith(t, p1Secret, []byte(body)))
	if _, err := newGate(t, srv.URL, false, 0).PaymentStatus(t.Context(), lostDeposit); !errors.Is(err, ports.ErrNoAnswer) {
		t.Fatalf("answer about another project: %v", err)
	}
}

func TestGateTimeoutAndUnreachable(t *testing.T) {
	t.Parallel()
	srv := newGateServer(t, 200, recorded(t, "success.json"))
	srv.slow(5 * time.Second)
	start := time.Now()
	_, err := newGate(t, srv.URL, false, 100*time.Millisecond).PaymentStatus(t.Context(), lostDeposit)
	var na *ports.NoAnswerError
	if !errors.As(err, &na) || na.Reason != monetix.NoAnswerTimeout {
		t.Fatalf("a slow Gate: %v, want timeout", err)
	}
	if time.Since(start) > 4*time.Second {
		t.Fatal("the timeout did not bound the request")
	}
	// Nobody listens: unavailable.
	closed := httptest.NewServer(http.NotFoundHandler())
	url := closed.URL
	closed.Close()
	if _, err := newGate(t, url, false, time.Second).PaymentStatus(t.Context(), lostDeposit); !errors.As(err, &na) ||
		na.Reason != monetix.NoAnswerUnavailable {
		t.Fatalf("an unreachable Gate: %v, want unavailable", err)
	}
	// The caller's cancellation is not the Gate's timeout.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := newGate(t, srv.URL, false, time.Second).PaymentStatus(ctx, lostDeposit); err == nil {
		t.Fatal("a cancelled check answered")
	}
}

func TestGateUnconfiguredDeposit(t *testing.T) {
	t.Parallel()
	srv := newGateServer(t, 200, recorded(t, "success.json"))
	g := newGate(t, srv.URL, false, 0)
	for _, ch := range []domain.Channel{
		{Provider: "monetix", Method: "kassa24", Project: "999"},
		{Provider: "other", Method: "kassa24", Project: p1ID},
		{Provider: "monetix", Method: "qiwi", Project: p1ID},
	} {
		d := lostDeposit
		d.Channel = ch
		var na *ports.NoAnswerError
		if _, err := g.PaymentStatus(t.Context(), d); !errors.As(err, &na) || na.Reason != monetix.NoAnswerNotConfigured {
			t.Errorf("%+v: %v, want not_configured", ch, err)
		}
	}
	if len(srv.got()) != 0 {
		t.Fatal("asked the Gate about a deposit of no configured project")
	}
}

func TestNewGateSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"", true}, // the production default
		{"https://api.trxhost.com", true},
		{"https://gate.example:8443/base/", true},
		{"http://127.0.0.1:9999", true},
		{"http://[::1]:9999", true},
		{"http://localhost:9999", true},
		{"http://api.trxhost.com", false}, // plain HTTP off loopback
		{"http://10.0.0.1", false},
		{"ftp://api.trxhost.com", false},
		{"api.trxhost.com", false},
		{"https://user:pass@api.trxhost.com", false},
		{"https://api.trxhost.com?x=1", false},
	} {
		_, err := monetix.NewGate(monetix.GateConfig{URL: tc.url, Projects: testProjects()})
		if (err == nil) != tc.ok {
			t.Errorf("NewGate(%q) = %v, want ok %v", tc.url, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), "pass") {
			t.Errorf("NewGate(%q) error shows the password: %v", tc.url, err)
		}
	}
	g, err := monetix.NewGate(monetix.GateConfig{Projects: testProjects()})
	if err != nil || g.Endpoint() != "https://api.trxhost.com/v2/payment/status" {
		t.Fatalf("default endpoint %q, %v", g.Endpoint(), err)
	}
	if g, _ := monetix.NewGate(monetix.GateConfig{URL: "https://gate.example/base/", Projects: testProjects()}); g.Endpoint() !=
		"https://gate.example/base/v2/payment/status" {
		t.Fatalf("endpoint under a base path: %q", g.Endpoint())
	}
	if _, err := monetix.NewGate(monetix.GateConfig{}); err == nil {
		t.Fatal("a gate with no project")
	}
	if _, err := monetix.NewGate(monetix.GateConfig{Projects: testProjects(), Timeout: -time.Second}); err == nil {
		t.Fatal("a negative timeout")
	}
}

func TestBuildStatusAnswerReadsBack(t *testing.T) {
	t.Parallel()
	body := monetix.BuildStatusAnswer(monetix.StatusAnswerParams{ProjectID: p1ID, PaymentID: "pay_1", PaymentStatus: "success",
		Method: "kassa24", AmountMinor: 10000, Currency: "KZT", CustomerID: "6552",
		Operations: []monetix.StatusOperation{{ID: 7, Status: "success"}, {ID: 8, Type: "refund", Status: "decline"}}})
	b, err := monetix.SignedJSON(p1Secret, body)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := signature.VerifyBody(p1Secret, b)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := monetix.ParseStatusAnswer(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := monetix.Callback{ProjectID: p1ID, PaymentID: "pay_1", PaymentStatus: "success", PaymentMethod: "kassa24",
		AmountMinor: 10000, Currency: "KZT", OperationID: "7", OperationType: "sale", OperationStatus: "success"}
	if cb != want {
		t.Fatalf("ParseStatusAnswer = %+v, want %+v", cb, want)
	}
	// No sale: no operation, and a success without its sale is not final.
	body = monetix.BuildStatusAnswer(monetix.StatusAnswerParams{ProjectID: p1ID, PaymentID: "pay_1", PaymentStatus: "success",
		Method: "kassa24", AmountMinor: 10000, Currency: "KZT"})
	raw, _ := json.Marshal(body)
	doc, _ = signature.Decode(raw)
	cb, err = monetix.ParseStatusAnswer(doc)
	if err != nil || cb.OperationID != "" || cb.OperationType != "" {
		t.Fatalf("without operations: %+v, %v", cb, err)
	}
	if kind, _ := monetix.Classify(cb); kind != domain.OutcomeIntermediate {
		t.Fatalf("success without a sale classified %s", kind)
	}
}

// An operation's own dates and sums go into its member of operations; the
// payment keeps its own.
func TestBuildStatusAnswerOperationFields(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	created, done := at.Add(-2*time.Hour), at.Add(-time.Hour)
	body := monetix.BuildStatusAnswer(monetix.StatusAnswerParams{ProjectID: p1ID, PaymentID: "pay_1", PaymentStatus: "success",
		Method: "kassa24", AmountMinor: 10000, Currency: "KZT", Date: at,
		Operations: []monetix.StatusOperation{
			{ID: 7, Status: "decline", Created: created, Date: done, AmountMinor: 9000, Currency: "USD"},
			{ID: 8, Status: "success"},
		}})
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Payment struct {
			Date string `json:"date"`
			Sum  struct {
				Amount   int64  `json:"amount"`
				Currency string `json:"currency"`
			} `json:"sum"`
		} `json:"payment"`
		Operations []struct {
			ID          int64  `json:"id"`
			Date        string `json:"date"`
			CreatedDate string `json:"created_date"`
			SumInitial  struct {
				Amount   int64  `json:"amount"`
				Currency string `json:"currency"`
			} `json:"sum_initial"`
		} `json:"operations"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	f := func(t time.Time) string { return t.Format(monetix.CallbackDateLayout) }
	if len(doc.Operations) != 2 || doc.Payment.Date != f(at) || doc.Payment.Sum.Amount != 10000 || doc.Payment.Sum.Currency != "KZT" {
		t.Fatalf("answer %s", raw)
	}
	o0, o1 := doc.Operations[0], doc.Operations[1]
	if o0.Date != f(done) || o0.CreatedDate != f(created) || o0.SumInitial.Amount != 9000 || o0.SumInitial.Currency != "USD" {
		t.Errorf("operation 7: %+v", o0)
	}
	if o1.Date != f(at) || o1.CreatedDate != f(at) || o1.SumInitial.Amount != 10000 || o1.SumInitial.Currency != "KZT" {
		t.Errorf("operation 8 (the payment's date and sums): %+v", o1)
	}
}

// A status answer and the callback of the same operation are the same
// evidence: the ledger's dedupe key is built from what both carry.
func TestStatusAnswerMatchesItsCallback(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 30, 9, 12, 41, 0, time.UTC)
	cbBody := monetix.BuildCallback(monetix.CallbackParams{ProjectID: p1ID, PaymentID: "pay_1", PaymentStatus: "success",
		Method: "kassa24", AmountMinor: 10000, Currency: "KZT", OperationID: 7, Date: at})
	answer := monetix.BuildStatusAnswer(monetix.StatusAnswerParams{ProjectID: p1ID, PaymentID: "pay_1", PaymentStatus: "success",
		Method: "kassa24", AmountMinor: 10000, Currency: "KZT", Operations: []monetix.StatusOperation{{ID: 7, Status: "success"}}, Date: at})
	decode := func(v map[string]any) map[string]any {
		raw, _ := json.Marshal(v)
		doc, err := signature.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	fromCallback, err := monetix.ParseCallback(decode(cbBody))
	if err != nil {
		t.Fatal(err)
	}
	fromAnswer, err := monetix.ParseStatusAnswer(decode(answer))
	if err != nil {
		t.Fatal(err)
	}
	if fromCallback != fromAnswer {
		t.Fatalf("callback %+v\nanswer   %+v", fromCallback, fromAnswer)
	}
}
