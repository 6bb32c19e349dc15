package platform_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/monetix/signature"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
	"github.com/tiyn/tiyn/tools/platformsim/platform"
)

var (
	key1  = []byte("gate-test-key-1")
	key2  = []byte("gate-test-key-2")
	keyOf = map[string][]byte{"1234": key1, "5678": key2}
)

// gateFixture is a simulated Gate on a loopback server and Tiyn's own
// client of it: the simulator's answers are held to what Tiyn reads.
type gateFixture struct {
	ps     *platform.Payments
	gate   *platform.Gate
	srv    *httptest.Server
	client *monetix.Gate
}

func newGateFixture(t *testing.T) *gateFixture {
	t.Helper()
	ps := platform.NewPayments()
	g, err := platform.NewGate(platform.GateConfig{Payments: ps, Secrets: keyOf, Method: monetix.Kassa24.Name})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	client, err := monetix.NewGate(monetix.GateConfig{URL: srv.URL, Timeout: 5 * time.Second, RequireSignature: true,
		Projects: []monetix.Project{{ID: "1234", Secret: key1}, {ID: "5678", Secret: key2}}})
	if err != nil {
		t.Fatal(err)
	}
	return &gateFixture{ps: ps, gate: g, srv: srv, client: client}
}

func deposit(project, paymentID string) domain.Deposit {
	return domain.Deposit{ID: "d-" + paymentID, PaymentID: paymentID,
		Channel: domain.Channel{Provider: monetix.ProviderName, Method: monetix.Kassa24.Name, Project: project}}
}

func TestGateAnswersAsTiynReadsThem(t *testing.T) {
	t.Parallel()
	f := newGateFixture(t)
	ctx := context.Background()
	t0 := time.Now().Add(-time.Minute)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.ps.Open(1234, "dep_processing", 1, 10000, "KZT", t0))
	must(f.ps.Open(1234, "dep_declined", 2, 20000, "KZT", t0))
	must(f.ps.Update("dep_declined", 2, platform.StatusDecline, t0.Add(time.Second)))
	must(f.ps.Open(1234, "dep_success", 3, 30000, "KZT", t0))
	must(f.ps.Update("dep_success", 3, platform.StatusSuccess, t0.Add(time.Second)))
	must(f.ps.Open(1234, "dep_late", 4, 40000, "KZT", t0))
	must(f.ps.Update("dep_late", 4, platform.StatusDecline, t0.Add(time.Second)))
	must(f.ps.Update("dep_late", 5, platform.StatusSuccess, t0.Add(2*time.Second)))
	must(f.ps.Open(5678, "dep_other_project", 6, 100, "KZT", t0))

	for _, tc := range []struct {
		payment string
		kind    domain.OutcomeKind
		op      string
		amount  int64
	}{
		{"dep_processing", domain.OutcomeIntermediate, "1", 10000},
		{"dep_declined", domain.OutcomeDecline, "2", 20000},
		{"dep_success", domain.OutcomeSuccess, "3", 30000},
		{"dep_late", domain.OutcomeSuccess, "5", 40000},
	} {
		ans, err := f.client.PaymentStatus(ctx, deposit("1234", tc.payment))
		if err != nil {
			t.Fatalf("%s: %v", tc.payment, err)
		}
		o := ans.Outcome
		if !ans.Known || o.Kind != tc.kind || o.OperationID != tc.op || o.Amount.Minor() != tc.amount ||
			o.Amount.Currency() != domain.KZT || o.Method != "kassa24" {
			t.Errorf("%s: %+v, want %s of operation %s, %d KZT", tc.payment, ans, tc.kind, tc.op, tc.amount)
		}
		if _, err := signature.VerifyBody(key1, []byte(ans.Evidence)); err != nil {
			t.Errorf("%s: evidence not signed with the project's key: %v", tc.payment, err)
		}
	}
	// The late success lists both operations, with their own dates.
	ans, _ := f.client.PaymentStatus(ctx, deposit("1234", "dep_late"))
	var doc struct {
		Operations []struct {
			ID          int64  `json:"id"`
			Status      string `json:"status"`
			CreatedDate string `json:"created_date"`
		} `json:"operations"`
	}
	if err := json.Unmarshal([]byte(ans.Evidence), &doc); err != nil || len(doc.Operations) != 2 ||
		doc.Operations[0].Status != "decline" || doc.Operations[1].Status != "success" ||
		doc.Operations[1].CreatedDate != t0.Add(2*time.Second).UTC().Format(monetix.CallbackDateLayout) {
		t.Errorf("late success answer %s (%v)", ans.Evidence, err)
	}

	// Unknown, and known only in another project: the platform's not-found,
	// signed (the client requires signatures here).
	for _, d := range []domain.Deposit{deposit("1234", "dep_unknown"), deposit("1234", "dep_other_project")} {
		ans, err := f.client.PaymentStatus(ctx, d)
		if err != nil || ans.Known {
			t.Errorf("%s: %+v %v, want not known", d.PaymentID, ans, err)
		}
	}
	if ans, err := f.client.PaymentStatus(ctx, deposit("5678", "dep_other_project")); err != nil || !ans.Known {
		t.Errorf("the other project's own payment: %+v %v", ans, err)
	}
	st := f.gate.Stats()
	if st.Requests != 8 || st.Answered != 6 || st.NotFound != 2 || st.Refused != 0 || st.PeakPerSecond < 1 || st.PeakPerSecond > 8 {
		t.Errorf("stats %+v", st)
	}
}

func TestGateRefuses(t *testing.T) {
	t.Parallel()
	f := newGateFixture(t)
	if err := f.ps.Open(1234, "dep_1", 1, 100, "KZT", time.Now()); err != nil {
		t.Fatal(err)
	}
	good, err := monetix.StatusRequestBody(key1, "1234", "dep_1")
	if err != nil {
		t.Fatal(err)
	}
	wrongKey, _ := monetix.StatusRequestBody([]byte("not-the-key"), "1234", "dep_1")
	unknownProject, _ := monetix.StatusRequestBody(key1, "999", "dep_1")
	tampered := bytes.Replace(good, []byte("dep_1"), []byte("dep_2"), 1)
	for _, tc := range []struct {
		name, method, path string
		body               []byte
		status             int
	}{
		{"the good request", http.MethodPost, monetix.GateStatusPath, good, http.StatusOK},
		{"signed with another key", http.MethodPost, monetix.GateStatusPath, wrongKey, http.StatusBadRequest},
		{"an unknown project", http.MethodPost, monetix.GateStatusPath, unknownProject, http.StatusBadRequest},
		{"tampered after signing", http.MethodPost, monetix.GateStatusPath, tampered, http.StatusBadRequest},
		{"no general", http.MethodPost, monetix.GateStatusPath, []byte(`{"project_id":1234,"payment_id":"dep_1"}`), http.StatusBadRequest},
		{"not JSON", http.MethodPost, monetix.GateStatusPath, []byte(`<xml/>`), http.StatusBadRequest},
		{"too large", http.MethodPost, monetix.GateStatusPath, bytes.Repeat([]byte(" "), 100<<10), http.StatusBadRequest},
		{"GET", http.MethodGet, monetix.GateStatusPath, nil, http.StatusMethodNotAllowed},
		{"another path", http.MethodPost, "/v2/payment/refund", good, http.StatusNotFound},
	} {
		req, err := http.NewRequest(tc.method, f.srv.URL+tc.path, bytes.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Errors []struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"errors"`
		}
		derr := json.NewDecoder(resp.Body).Decode(&out)
		_ = resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: HTTP %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
		if tc.status != http.StatusOK && (derr != nil || len(out.Errors) != 1 || out.Errors[0].Message == "") {
			t.Errorf("%s: errors %+v (%v)", tc.name, out, derr)
		}
	}
	if st := f.gate.Stats(); st.Requests != 9 || st.Answered != 1 || st.Refused != 8 || st.NotFound != 0 {
		t.Errorf("stats %+v", st)
	}
	// Tiyn's client reads a refusal as a rejection, never as an answer.
	client, err := monetix.NewGate(monetix.GateConfig{URL: f.srv.URL, Projects: []monetix.Project{{ID: "1234", Secret: []byte("wrong")}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.PaymentStatus(context.Background(), deposit("1234", "dep_1"))
	var na *ports.NoAnswerError
	if !errors.As(err, &na) || na.Reason != monetix.NoAnswerRejected {
		t.Errorf("a request with the wrong key: %v, want rejected", err)
	}
}

func TestNewGateRefuses(t *testing.T) {
	t.Parallel()
	ps := platform.NewPayments()
	for _, cfg := range []platform.GateConfig{
		{Secrets: keyOf, Method: "kassa24"},
		{Payments: ps, Method: "kassa24"},
		{Payments: ps, Secrets: keyOf},
		{Payments: ps, Secrets: map[string][]byte{"1": nil}, Method: "kassa24"},
	} {
		if _, err := platform.NewGate(cfg); err == nil || !strings.Contains(err.Error(), "platform.NewGate") {
			t.Errorf("NewGate(%+v) = %v", cfg, err)
		}
	}
}
