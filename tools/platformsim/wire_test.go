package platformsim

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/tiyn/tiyn/adapters/monetix/signature"
)

// vectorSecret is the secret of docs/protocol.md §2's vectors; vectorV3 is
// the method page's callback, the shape every simulated callback must have
// (the bytes of each body are monetix.BodyWriter's, tested in the adapter).
const (
	vectorSecret = "mx_test_secret_2024"
	vectorV3     = `{"project_id":1234,"payment":{"id":"1556624104","type":"purchase","status":"success","date":"2024-04-30T11:35:06+0000","method":"kassa24","sum":{"amount":10000,"currency":"KZT"},"description":""},"account":{"number":"6552"},"operation":{"id":36011000001676,"type":"sale","status":"success","date":"2024-04-30T11:35:06+0000","created_date":"2024-04-30T11:34:51+0000","request_id":"7c1b6e0f2d9a4c3b8e5f1a2b3c4d5e6f7a8b9c0d-00036012","sum_initial":{"amount":10000,"currency":"KZT"},"sum_converted":{"amount":10000,"currency":"KZT"},"provider":{"id":1217,"payment_id":"2024290410","auth_code":""},"code":"0","message":"Success"},"signature":"yopM9G06pwm5ZSZe3oyyP5Ltb7yrNzB66s/nBEbt0nQ4W4yvGbSs9EtxyqahxLRDWbyBsjeHQ4K+6sxCq1l07w=="}`
)

func mustSigner(t testing.TB, projectID int64, runTag string) *signer {
	t.Helper()
	s, err := newSigner([]byte(vectorSecret), projectID, runTag)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyAndCheckDepositBodies(t *testing.T) {
	t.Parallel()
	s := mustSigner(t, 1234, "run")
	doc, err := signature.VerifyBody([]byte(vectorSecret), s.verifyBody(nil, "6552"))
	if err != nil || doc["type"] != "verify" || doc["customer_id"] != "6552" || doc["project_id"] != json.Number("1234") {
		t.Errorf("verify body: %v %v", doc, err)
	}
	doc, err = signature.VerifyBody([]byte(vectorSecret), s.checkDepositBody(nil, "6552", 10000))
	if err != nil || doc["type"] != "check_deposit" || doc["amount"] != json.Number("10000") ||
		doc["currency"] != "KZT" || doc["payment_method"] != "kassa24" {
		t.Errorf("check_deposit body: %v %v", doc, err)
	}
}

// shape maps every member path of a decoded body to its JSON type.
func shape(t *testing.T, prefix string, v any, out map[string]string) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			shape(t, prefix+"."+k, e, out)
		}
	case json.Number:
		out[prefix] = "number"
	case string:
		out[prefix] = "string"
	default:
		out[prefix] = reflect.TypeOf(v).String()
	}
}

func TestCallbackBodies(t *testing.T) {
	t.Parallel()
	v3, err := signature.Decode([]byte(vectorV3))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	shape(t, "", v3, want)

	s := mustSigner(t, 1234, "runtag")
	tests := []struct {
		kind    cbKind
		status  string
		payment string
		cust    string
	}{
		{cbSuccess, "success", "dep_01jd8r5m6a", "sim-abc-1"},
		{cbDecline, "decline", "pay\"quoted\\id", "Қазақ-ü€😀"},
		{cbProcessing, "processing", "p\n1\x01", "6552"},
	}
	for _, tc := range tests {
		p := cbParams{kind: tc.kind, paymentID: tc.payment, operationID: 36011000001676, amount: 50_000_000,
			customerID: tc.cust, providerPay: "k24-1"}
		body := s.callbackBody(nil, p)
		doc, err := signature.VerifyBody([]byte(vectorSecret), body)
		if err != nil {
			t.Fatalf("%s: %v\n%s", tc.status, err, body)
		}
		got := map[string]string{}
		shape(t, "", doc, got)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: members differ from the page's example\n got %v\nwant %v", tc.status, got, want)
		}
		pay := doc["payment"].(map[string]any)
		op := doc["operation"].(map[string]any)
		if pay["id"] != tc.payment || pay["status"] != tc.status || op["status"] != tc.status ||
			op["id"] != json.Number("36011000001676") || doc["account"].(map[string]any)["number"] != tc.cust ||
			pay["sum"].(map[string]any)["amount"] != json.Number("50000000") {
			t.Errorf("%s: wrong values %v", tc.status, doc)
		}
		if !strings.HasPrefix(op["request_id"].(string), "runtag-") {
			t.Errorf("request_id %v", op["request_id"])
		}
	}
}

func TestParseAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		body      string
		wantPID   bool
		ok        bool
		code      int
		paymentID string
	}{
		{"verify ok", `{"code":0,"currency":"KZT"}`, false, true, 0, ""},
		{"not found", `{"code":404,"errors":{"message":"account does not exist"}}`, false, true, 404, ""},
		{"deposit", `{"code":0,"description":"x","payment_id":"dep_01"}` + "\n", true, true, 0, "dep_01"},
		{"spaces", `{ "code" : 0 , "payment_id" : "dep_02" }`, true, true, 0, "dep_02"},
		{"escaped id falls back", `{"code":0,"payment_id":"a\"b"}`, true, true, 0, `a"b`},
		{"no payment id", `{"code":0}`, true, true, 0, ""},
		{"key inside a value", `{"description":"\"code\":7","code":500}`, false, true, 500, ""},
		{"code as string", `{"code":"0"}`, false, false, 0, ""},
		{"negative", `{"code":-1}`, false, true, -1, ""},
		{"not json", `<html>`, false, false, 0, ""},
		{"empty", ``, false, false, 0, ""},
	}
	for _, tc := range tests {
		a, ok := parseAnswer([]byte(tc.body), tc.wantPID)
		if ok != tc.ok || (ok && (a.Code != tc.code || a.PaymentID != tc.paymentID)) {
			t.Errorf("%s: got %+v %v, want code %d payment %q ok %v", tc.name, a, ok, tc.code, tc.paymentID, tc.ok)
		}
	}
}

func TestCallbackEffect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body string
		eff  int
	}{
		{`{"status":"ok","effect":"credited"}`, effCredited},
		{`{"status":"ok","effect":"replay"}` + "\n", effReplay},
		{`{"effect": "declined","status":"ok"}`, effDeclined},
		{`{"status":"ok","effect":"recorded"}`, effRecorded},
		{`{"status":"ok","effect":"exception"}`, effException},
		{`{"status":"ok","effect":"creditedX"}`, effOther},
		{`{"status":"ok"}`, effOther},
		{`OK`, effOther},
	}
	for _, tc := range tests {
		if got := callbackEffect([]byte(tc.body)); got != tc.eff {
			t.Errorf("%s: effect %s, want %s", tc.body, effectNames[got], effectNames[tc.eff])
		}
	}
	fits := []struct {
		kind cbKind
		eff  int
		want bool
	}{
		{cbSuccess, effCredited, true}, {cbSuccess, effReplay, true}, {cbSuccess, effDeclined, false},
		{cbSuccess, effException, false}, {cbDecline, effDeclined, true}, {cbDecline, effCredited, false},
		{cbProcessing, effRecorded, true}, {cbProcessing, effCredited, false}, {cbDecline, effOther, true},
	}
	for _, tc := range fits {
		if got := effectFits(tc.kind, tc.eff); got != tc.want {
			t.Errorf("effectFits(%s, %s) = %v", tc.kind, effectNames[tc.eff], got)
		}
	}
}

func TestPlanShares(t *testing.T) {
	t.Parallel()
	cfg := Config{
		BaseURL: DefaultBaseURL, APIToken: "t", ProjectID: 1, Secret: []byte("s"), Customers: 7, Payments: 1,
		DeclineShare: 0.1, LateSuccessShare: 0.2, IntermediateShare: 0.3, DuplicateShare: 0.4,
		ConcurrentDupShare: 0.05, UnknownVerifyShare: 0.5, Seed: 9,
	}.withDefaults()
	s, err := newSim(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := s.newWorker()
	const n = 20000
	var decline, late, inter, dup, conc, unknown, small int
	seenCustomer := map[int]bool{}
	for i := range int64(n) {
		p := s.makePlan(w.pcg, w.rng, i)
		if p.amount < simMethod.Limits.MinMinor || p.amount > simMethod.Limits.MaxMinor {
			t.Fatalf("amount %d out of limits", p.amount)
		}
		if p.decline && p.late {
			t.Fatalf("plan %d both declined and late", i)
		}
		if again := s.makePlan(w.pcg, w.rng, i); again != p {
			t.Fatalf("plan %d not reproducible: %+v vs %+v", i, p, again)
		}
		seenCustomer[p.customer] = true
		for _, c := range []struct {
			b bool
			n *int
		}{{p.decline, &decline}, {p.late, &late}, {p.intermediate, &inter}, {p.replay, &dup},
			{p.concurrent, &conc}, {p.unknownVerify, &unknown}, {p.amount < 100_000, &small}} {
			if c.b {
				*c.n++
			}
		}
	}
	near := func(name string, got int, share float64) {
		if want := share * n; float64(got) < want*0.9 || float64(got) > want*1.1 {
			t.Errorf("%s: %d of %d, want about %.0f", name, got, n, want)
		}
	}
	near("declines", decline, 0.1)
	near("late", late, 0.2)
	near("intermediate", inter, 0.3)
	near("duplicates", dup, 0.4)
	near("concurrent", conc, 0.05)
	near("unknown verify", unknown, 0.5)
	// Log-uniform over [100, 5e7]: P(amount < 1e5) = ln(1000)/ln(5e5) ≈ 0.526.
	near("amounts under 1,000 KZT", small, 0.526)
	if len(seenCustomer) != cfg.Customers {
		t.Errorf("%d customers used, want %d", len(seenCustomer), cfg.Customers)
	}
}

func TestBuildStepsOperationIDs(t *testing.T) {
	t.Parallel()
	cfg := Config{BaseURL: DefaultBaseURL, APIToken: "t", ProjectID: 1234, Secret: []byte(vectorSecret), Customers: 1, Payments: 1}.withDefaults()
	s, err := newSim(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := s.newWorker()
	opID := func(body []byte) (string, string) {
		doc, err := signature.VerifyBody([]byte(vectorSecret), body)
		if err != nil {
			t.Fatal(err)
		}
		op := doc["operation"].(map[string]any)
		return string(op["id"].(json.Number)), op["status"].(string)
	}
	p := plan{index: 3, amount: 500, late: true, intermediate: true}
	n := w.buildSteps(&p, "dep_x")
	if n != 3 {
		t.Fatalf("%d steps, want processing, decline, success", n)
	}
	var ids, statuses []string
	for _, st := range w.steps[:n] {
		id, status := opID(w.arena[st.start:st.end])
		ids, statuses = append(ids, id), append(statuses, status)
	}
	if strings.Join(statuses, ",") != "processing,decline,success" || !w.steps[2].final || w.steps[1].final {
		t.Errorf("statuses %v, steps %+v", statuses, w.steps[:n])
	}
	if ids[0] != ids[1] || ids[1] == ids[2] {
		t.Errorf("operation ids %v: the late success needs a new operation", ids)
	}
	// Another payment never reuses an operation id.
	q := plan{index: 4, amount: 500}
	w.buildSteps(&q, "dep_y")
	if id, _ := opID(w.arena[w.steps[0].start:w.steps[0].end]); id == ids[0] || id == ids[2] {
		t.Errorf("payment 4 reuses operation id %s", id)
	}
}
