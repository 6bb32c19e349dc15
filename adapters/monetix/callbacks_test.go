package monetix_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/monetix/signature"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
	"github.com/tiyn/tiyn/tests/testkit"
)

const bigOperationID = 36011000001676 // the page's operation id, > 2^32

func TestCallbackScenarios(t *testing.T) {
	t.Parallel()
	type step struct {
		body    func(paymentID string) map[string]any
		effect  string
		balance int64 // after the step
	}
	success := func(op int64) func(string) map[string]any {
		return func(id string) map[string]any { return cb(id, "success", 10000, op) }
	}
	status := func(s string, op int64) func(string) map[string]any {
		return func(id string) map[string]any { return cb(id, s, 10000, op) }
	}
	scenarios := []struct {
		name           string
		steps          []step
		wantStatus     domain.DepositStatus
		wantOperation  string
		wantExceptions []domain.ExceptionReason
	}{
		{"success credits once", []step{
			{success(bigOperationID), "credited", 10000},
			{success(bigOperationID), "replay", 10000},
			{success(bigOperationID), "replay", 10000},
		}, domain.DepositSucceeded, "36011000001676", nil},
		{"decline", []step{
			{status("decline", 1), "declined", 0},
			{status("decline", 1), "replay", 0},
		}, domain.DepositDeclined, "1", nil},
		{"error statuses decline", []step{
			{status("external error", 1), "declined", 0},
		}, domain.DepositDeclined, "1", nil},
		{"late success after decline", []step{
			{status("expired", 1), "declined", 0},
			{success(2), "credited", 10000},
			{success(2), "replay", 10000},
		}, domain.DepositSucceeded, "2", nil},
		{"old decline redelivered after the late success", []step{
			{status("decline", 1), "declined", 0},
			{success(2), "credited", 10000},
			{status("decline", 1), "replay", 10000},
		}, domain.DepositSucceeded, "2", nil},
		{"intermediate recorded", []step{
			{status("processing", 1), "recorded", 0},
			{status("awaiting customer", 1), "recorded", 0},
			{status("some future status", 1), "recorded", 0},
			{success(1), "credited", 10000},
		}, domain.DepositSucceeded, "1", nil},
		{"success of an unfinished operation is intermediate", []step{
			{func(id string) map[string]any {
				return set(cb(id, "success", 10000, 1), "operation.status", "processing")
			}, "recorded", 0},
			{func(id string) map[string]any { return set(cb(id, "success", 10000, 1), "operation.type", "refund") }, "recorded", 0},
			{success(1), "credited", 10000},
		}, domain.DepositSucceeded, "1", nil},
		{"amount mismatch", []step{
			{func(id string) map[string]any { return cb(id, "success", 10001, 1) }, "exception", 0},
			{func(id string) map[string]any { return cb(id, "success", 10001, 1) }, "replay", 0},
		}, domain.DepositPending, "", []domain.ExceptionReason{domain.ReasonAmountMismatch}},
		{"currency mismatch", []step{
			{func(id string) map[string]any { return set(cb(id, "success", 10000, 1), "payment.sum.currency", "USD") }, "exception", 0},
		}, domain.DepositPending, "", []domain.ExceptionReason{domain.ReasonCurrencyMismatch}},
		{"second success with another operation", []step{
			{success(1), "credited", 10000},
			{success(2), "exception", 10000},
			{success(2), "replay", 10000},
		}, domain.DepositSucceeded, "1", []domain.ExceptionReason{domain.ReasonDuplicateSuccess}},
		{"decline after success", []step{
			{success(1), "credited", 10000},
			{status("decline", 2), "exception", 10000},
		}, domain.DepositSucceeded, "1", []domain.ExceptionReason{domain.ReasonDeclineAfterSuccess}},
		{"reversal after success", []step{
			{success(1), "credited", 10000},
			{status("refunded", 3), "exception", 10000},
			{status("cancelled", 4), "exception", 10000},
		}, domain.DepositSucceeded, "1", []domain.ExceptionReason{domain.ReasonReversal, domain.ReasonReversal}},
		{"string operation id", []step{
			{func(id string) map[string]any { return set(cb(id, "success", 10000, 0), "operation.id", "op-77") }, "credited", 10000},
		}, domain.DepositSucceeded, "op-77", nil},
		{"project id as a digit string", []step{
			{func(id string) map[string]any { return set(cb(id, "success", 10000, 5), "project_id", p1ID) }, "credited", 10000},
		}, domain.DepositSucceeded, "5", nil},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					t.Parallel()
					e := newEnv(t, b.make(t))
					acc := e.openAccount("6552", "")
					id := e.checkDeposit("6552", 10000)
					var sent []string
					for i, s := range sc.steps {
						body := sign(t, p1Secret, s.body(id))
						sent = append(sent, string(body))
						status, reply := e.callbackRaw(body, "application/json")
						if status != http.StatusOK || reply.Effect != s.effect {
							t.Fatalf("step %d: HTTP %d effect %q (%q), want %q", i, status, reply.Effect, reply.Error, s.effect)
						}
						if got := e.balance(acc.ID()); got != s.balance {
							t.Fatalf("step %d: balance %d, want %d", i, got, s.balance)
						}
					}
					dep := e.deposit(id)
					if dep.Status != sc.wantStatus || dep.OperationID != sc.wantOperation {
						t.Fatalf("deposit %s op %q, want %s op %q", dep.Status, dep.OperationID, sc.wantStatus, sc.wantOperation)
					}
					var reasons []domain.ExceptionReason
					for _, x := range e.exceptions() {
						reasons = append(reasons, x.Reason)
						if x.PaymentID != id || x.DepositID != dep.ID || x.Evidence == "" {
							t.Errorf("exception %+v", x)
						}
					}
					if fmt.Sprint(reasons) != fmt.Sprint(sc.wantExceptions) {
						t.Fatalf("exceptions %v, want %v", reasons, sc.wantExceptions)
					}
					// Every delivery is in the inbox, byte for byte.
					inbox := e.inbox()
					if len(inbox) != len(sent) {
						t.Fatalf("inbox has %d records, sent %d", len(inbox), len(sent))
					}
					for i, r := range inbox {
						if r.Body != sent[i] || r.PaymentID != id || r.Channel.Project != p1ID || r.Channel.Method != "kassa24" {
							t.Fatalf("inbox %d: %+v", i, r)
						}
					}
				})
			}
		})
	}
}

func TestCallbackUnknownPaymentAndClosedAccount(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b.make(t))
			acc := e.openAccount("6552", "")
			id := e.checkDeposit("6552", 10000)

			// A payment id Tiyn never issued: stored as an exception, 200.
			e.mustCallback(cb("1556624104", "success", 10000, 9), "exception")
			e.mustCallback(cb("1556624104", "success", 10000, 9), "replay")
			// A payment id issued for project 1, reported by project 2: another
			// channel, so also unknown there.
			status, reply := e.callback(p2Secret, set(cb(id, "success", 10000, 9), "project_id", json.Number(p2ID)))
			if status != http.StatusOK || reply.Effect != "exception" {
				t.Fatalf("cross-project callback: %d %+v", status, reply)
			}
			// The account was closed before the cash arrived: an operator decides.
			e.setStatus(acc.ID(), domain.AccountClosed)
			e.mustCallback(cb(id, "success", 10000, 10), "exception")

			want := []domain.ExceptionReason{domain.ReasonUnknownPayment, domain.ReasonUnknownPayment, domain.ReasonAccountClosed}
			var got []domain.ExceptionReason
			for _, x := range e.exceptions() {
				got = append(got, x.Reason)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("exceptions %v, want %v", got, want)
			}
			if bal := e.balance(acc.ID()); bal != 0 {
				t.Fatalf("balance %d", bal)
			}
			if dep := e.deposit(id); dep.Status != domain.DepositPending {
				t.Fatalf("deposit %s", dep.Status)
			}
		})
	}
}

func TestCallbackRejected(t *testing.T) {
	t.Parallel()
	num := func(s string) json.Number { return json.Number(s) }
	type tc struct {
		name   string
		body   func(t testing.TB, id string) []byte
		ct     string
		status int
		reason string
		detail string // substring of the answer's error
	}
	signed := func(mutate func(map[string]any)) func(testing.TB, string) []byte {
		return func(t testing.TB, id string) []byte {
			b := cb(id, "success", 10000, 1)
			mutate(b)
			return sign(t, p1Secret, b)
		}
	}
	field := func(path string, v any) func(testing.TB, string) []byte {
		return signed(func(b map[string]any) { set(b, path, v) })
	}
	raw := func(s string) func(testing.TB, string) []byte {
		return func(testing.TB, string) []byte { return []byte(s) }
	}
	cases := []tc{
		{"tampered amount", func(t testing.TB, id string) []byte {
			return []byte(strings.Replace(string(sign(t, p1Secret, cb(id, "success", 10000, 1))), `"amount":10000`, `"amount":10001`, 1))
		}, "application/json", 400, monetix.ReasonBadSignature, "invalid signature"},
		{"other project's key", func(t testing.TB, id string) []byte { return sign(t, p2Secret, cb(id, "success", 10000, 1)) },
			"application/json", 400, monetix.ReasonBadSignature, "invalid signature"},
		{"no signature", func(t testing.TB, id string) []byte {
			b, _ := json.Marshal(cb(id, "success", 10000, 1))
			return b
		}, "application/json", 400, monetix.ReasonBadSignature, "invalid signature"},
		{"malformed", raw(`{"project_id":1234,"payment":`), "application/json", 400, monetix.ReasonMalformed, "malformed"},
		{"not an object", raw(`"success"`), "application/json", 400, monetix.ReasonMalformed, "malformed"},
		{"too deep", raw(strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40)), "application/json", 400, monetix.ReasonMalformed, "malformed"},
		{"unknown project", field("project_id", num("99")), "application/json", 400, monetix.ReasonUnknownProject, "unknown project"},
		{"project missing", field("project_id", removed), "application/json", 400, monetix.ReasonUnknownProject, "project_id is missing"},
		{"project float", field("project_id", num("1234.5")), "application/json", 400, monetix.ReasonUnknownProject, "project_id must be a positive integer"},
		{"text/plain", field("payment.description", "x"), "text/plain", 415, monetix.ReasonWrongContentType, "unsupported content type"},
		{"form", field("payment.description", "x"), "application/x-www-form-urlencoded", 415, monetix.ReasonWrongContentType, "unsupported content type"},
		{"too large", field("payment.description", strings.Repeat("x", 3000)), "application/json", 413, monetix.ReasonTooLarge, "body larger than 2048 bytes"},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b.make(t), withMaxBody(2048))
			acc := e.openAccount("6552", "")
			id := e.checkDeposit("6552", 10000)
			counts := map[string]float64{}
			for _, c := range cases {
				status, reply := e.callbackRaw(c.body(t, id), c.ct)
				if status != c.status || reply.Status != "error" || !strings.Contains(reply.Error, c.detail) {
					t.Errorf("%s: HTTP %d %+v, want %d %q", c.name, status, reply, c.status, c.detail)
				}
				counts[c.reason]++
			}
			// Nothing was stored, nothing credited, the deposit is untouched.
			if n := len(e.inbox()); n != 0 {
				t.Fatalf("inbox has %d records after rejected callbacks", n)
			}
			if n := len(e.exceptions()); n != 0 {
				t.Fatalf("%d exceptions after rejected callbacks", n)
			}
			if bal := e.balance(acc.ID()); bal != 0 {
				t.Fatalf("balance %d", bal)
			}
			if dep := e.deposit(id); dep.Status != domain.DepositPending {
				t.Fatalf("deposit %s", dep.Status)
			}
			for reason, want := range counts {
				got := counterValue(t, e.reg, "tiyn_monetix_rejected_total", map[string]string{"endpoint": "callbacks", "reason": reason})
				if got != want {
					t.Errorf("rejected{callbacks,%s} = %v, want %v", reason, got, want)
				}
			}
			// After all that, the genuine callback still credits.
			e.mustCallback(cb(id, "success", 10000, 1), "credited")
		})
	}
}

// TestCallbackAuthenticButUnreadable: a callback whose signature verifies is
// never lost. One that cannot be read as an outcome — a field missing or of
// the wrong type — is kept (inbox and a malformed_callback exception with
// the reason) and answered 200: the platform would only retry the same
// bytes for eleven days. Nothing is credited; a redelivery is a replay.
func TestCallbackAuthenticButUnreadable(t *testing.T) {
	t.Parallel()
	num := func(s string) json.Number { return json.Number(s) }
	signed := func(mutate func(map[string]any)) func(testing.TB, string) []byte {
		return func(t testing.TB, id string) []byte {
			b := cb(id, "success", 10000, 1)
			mutate(b)
			return sign(t, p1Secret, b)
		}
	}
	field := func(path string, v any) func(testing.TB, string) []byte {
		return signed(func(b map[string]any) { set(b, path, v) })
	}
	cases := []struct {
		name   string
		body   func(t testing.TB, id string) []byte
		detail string
	}{
		{"payment missing", field("payment", removed), "payment is missing"},
		{"payment array", field("payment", []any{1}), "payment must be an object, got an array"},
		{"payment.id number", field("payment.id", num("1556624104")), "payment.id must be a string, got a number"},
		{"payment.id missing", field("payment.id", removed), "payment.id is missing"},
		{"payment.id empty", field("payment.id", ""), "payment.id is empty"},
		{"payment.id huge", field("payment.id", strings.Repeat("9", 200)), "payment.id is longer than 128 bytes"},
		{"payment.status number", field("payment.status", 1), "payment.status must be a string"},
		{"payment.status missing", field("payment.status", removed), "payment.status is missing"},
		{"payment.method number", field("payment.method", 24), "payment.method must be a string"},
		{"payment.sum missing", field("payment.sum", removed), "payment.sum is missing"},
		{"amount string", field("payment.sum.amount", "10000"), "payment.sum.amount must be an integer number of minor units, got a string"},
		{"amount fraction", field("payment.sum.amount", num("100.5")), "payment.sum.amount must be an integer"},
		{"amount exponent", field("payment.sum.amount", num("1E4")), "payment.sum.amount must be an integer"},
		{"amount negative", field("payment.sum.amount", -1), "payment.sum.amount must not be negative"},
		{"amount missing", field("payment.sum.amount", removed), "payment.sum.amount is missing"},
		{"currency number", field("payment.sum.currency", 398), "payment.sum.currency must be a string"},
		{"operation missing", field("operation", removed), "operation is missing"},
		{"operation.id float", field("operation.id", num("1.5")), "operation.id must be a non-negative integer"},
		{"operation.id negative", field("operation.id", num("-7")), "operation.id must be a non-negative integer"},
		{"operation.id bool", field("operation.id", true), "operation.id must be an integer or a string"},
		{"operation.id empty", field("operation.id", ""), "operation.id is empty"},
		{"operation.id null", field("operation.id", nil), "operation.id is missing"},
		{"operation.status missing", field("operation.status", removed), "operation.status is missing"},
		{"operation.type number", field("operation.type", 2), "operation.type must be a string"},
	}
	e := newFakeEnv(t)
	acc := e.openAccount("6552", "")
	id := e.checkDeposit("6552", 10000)
	for i, c := range cases {
		body := c.body(t, id)
		status, reply := e.callbackRaw(body, "application/json")
		if status != http.StatusOK || reply.Status != "ok" || reply.Effect != "exception" {
			t.Errorf("%s: HTTP %d %+v, want 200 exception", c.name, status, reply)
			continue
		}
		got := e.fake.unreadable[len(e.fake.unreadable)-1]
		if got.RawBody != string(body) || !strings.Contains(got.Detail, c.detail) || got.Channel.Project != p1ID {
			t.Errorf("%s: kept %+v, want the raw body and %q", c.name, got, c.detail)
		}
		if status, reply := e.callbackRaw(body, "application/json"); status != http.StatusOK || reply.Effect != "replay" {
			t.Errorf("%s: redelivery HTTP %d %+v, want 200 replay", c.name, status, reply)
		}
		if n := len(e.exceptions()); n != i+1 {
			t.Fatalf("%s: %d exceptions, want %d", c.name, n, i+1)
		}
	}
	// What could be read is kept for the operator: the payment id.
	for i, c := range cases {
		if c.name == "amount string" {
			if got := e.fake.unreadable[2*i]; got.PaymentID != id || got.Status != "success" {
				t.Errorf("kept payment id %q status %q, want %q success", got.PaymentID, got.Status, id)
			}
		}
	}
	if bal := e.balance(acc.ID()); bal != 0 {
		t.Fatalf("balance %d", bal)
	}
	if dep := e.deposit(id); dep.Status != domain.DepositPending {
		t.Fatalf("deposit %s", dep.Status)
	}
	e.mustCallback(cb(id, "success", 10000, 1), "credited")
}

// TestCallbackOtherCurrencyOrMethod: a signed callback in another currency
// (an ISO 4217 one, text Tiyn does not know, or none) or naming another
// payment method (or none) is kept and settled as an exception, answered
// 200 — never refused, never credited.
func TestCallbackOtherCurrencyOrMethod(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t)
	acc := e.openAccount("6552", "")
	for i, tc := range []struct {
		path   string
		value  any
		reason domain.ExceptionReason
	}{
		{"payment.sum.currency", "USD", domain.ReasonCurrencyMismatch},
		{"payment.sum.currency", "EUR", domain.ReasonCurrencyMismatch},
		{"payment.sum.currency", "RUB", domain.ReasonCurrencyMismatch},
		{"payment.sum.currency", "kzt", domain.ReasonCurrencyMismatch},
		{"payment.sum.currency", "XYZ", domain.ReasonCurrencyMismatch},
		{"payment.sum.currency", removed, domain.ReasonCurrencyMismatch},
		{"payment.sum.currency", nil, domain.ReasonCurrencyMismatch},
		{"payment.method", "qiwi", domain.ReasonMethodMismatch},
		{"payment.method", "KASSA24", domain.ReasonMethodMismatch},
		{"payment.method", removed, domain.ReasonMethodMismatch},
	} {
		id := e.checkDeposit("6552", 10000)
		body := set(cb(id, "success", 10000, int64(i+1)), tc.path, tc.value)
		status, reply := e.callbackRaw(sign(t, p1Secret, body), "application/json")
		if status != http.StatusOK || reply.Effect != "exception" {
			t.Errorf("%s=%v: HTTP %d %+v, want 200 exception", tc.path, tc.value, status, reply)
			continue
		}
		settle := e.fake.settles[len(e.fake.settles)-1]
		if dec := e.fake.deposits[depKey(settle.Channel, id)].Decide(settle.Outcome); dec.Reason != tc.reason {
			t.Errorf("%s=%v: reason %s, want %s", tc.path, tc.value, dec.Reason, tc.reason)
		}
		if tc.path == "payment.sum.currency" && tc.value == "USD" {
			if c := settle.Outcome.Amount.Currency(); c.Code() != "USD" || c.Exponent() != 2 || settle.Outcome.Amount.String() != "100.00" {
				t.Errorf("USD evidence kept as %s %s", settle.Outcome.Amount, c)
			}
		}
	}
	if bal := e.balance(acc.ID()); bal != 0 {
		t.Fatalf("balance %d", bal)
	}
}

func TestCallbackContentTypes(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t)
	for i, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON;CHARSET=UTF-8", ""} {
		status, reply := e.callbackRaw(sign(t, p1Secret, cb(fmt.Sprintf("unknown-%d", i), "processing", 100, 1)), ct)
		// Payment ids Tiyn never issued: stored as exceptions, answered 200.
		if status != http.StatusOK || reply.Effect != "exception" {
			t.Errorf("Content-Type %q: %d %+v", ct, status, reply)
		}
	}
}

// TestCallbackCommand checks exactly what the ledger receives: the raw bytes
// as sent (odd spacing, escapes and all), the receive time, the channel and
// the outcome.
func TestCallbackCommand(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t)
	unsigned := `{ "project_id" : 1234, "payment": {"id":"dep\u005f1", "status":"success", "method":"kassa24",` +
		` "sum":{"amount":10000,"currency":"KZT"}, "extra": [1, 2.5, null]},` + "\n" +
		` "operation": {"id": 36011000001676, "type":"sale", "status":"success"}}`
	sig, err := signature.SignBody(p1Secret, []byte(unsigned))
	if err != nil {
		t.Fatal(err)
	}
	body := strings.TrimSuffix(unsigned, "}") + `, "signature": "` + sig + `"}`
	status, reply := e.callbackRaw([]byte(body), "application/json")
	if status != http.StatusOK || reply.Effect != "exception" { // no deposit dep_1 in the fake
		t.Fatalf("HTTP %d %+v", status, reply)
	}
	if len(e.fake.settles) != 1 {
		t.Fatalf("%d settles", len(e.fake.settles))
	}
	got := e.fake.settles[0]
	want := ports.SettleDeposit{
		Channel:   domain.Channel{Provider: "monetix", Method: "kassa24", Project: "1234"},
		PaymentID: "dep_1",
		Outcome: domain.Outcome{Kind: domain.OutcomeSuccess, Status: "success", OperationID: "36011000001676",
			Amount: domain.NewAmount(10000, domain.KZT), Method: "kassa24"},
		RawBody:    body,
		ReceivedAt: fixedNow,
		Limits:     monetix.Kassa24.Limits, // bounds what an operator may credit for an exception
	}
	if got != want {
		t.Fatalf("settle command\n got %+v\nwant %+v", got, want)
	}
}

func TestCallbackLedgerFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		err    error
		status int
	}{
		{"unavailable", fmt.Errorf("commit: %w", ports.ErrUnavailable), http.StatusServiceUnavailable},
		{"not migrated", ports.ErrNotMigrated, http.StatusServiceUnavailable},
		{"cancelled", context.Canceled, http.StatusServiceUnavailable},
		{"deadline", context.DeadlineExceeded, http.StatusServiceUnavailable},
		{"conflict after retries", fmt.Errorf("gave up: %w", ports.ErrConflict), http.StatusInternalServerError},
		{"unexpected", errString("disk on fire"), http.StatusInternalServerError},
		{"invalid input", fmt.Errorf("%w: channel needs a project", domain.ErrInvalidInput), http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newFakeEnv(t)
			acc := e.openAccount("6552", "")
			id := e.checkDeposit("6552", 10000)
			e.fake.settleErr = tc.err
			body := sign(t, p1Secret, cb(id, "success", 10000, 1))
			status, reply := e.callbackRaw(body, "application/json")
			if status != tc.status || reply.Status != "error" || strings.Contains(reply.Error, "disk") {
				t.Fatalf("HTTP %d %+v, want %d", status, reply, tc.status)
			}
			if n := counterValue(t, e.reg, "tiyn_monetix_callbacks_total", map[string]string{"effect": "credited"}); n != 0 {
				t.Fatalf("a failed callback was counted as credited")
			}
			// The platform retries; once the store is back the same body credits.
			e.fake.mu.Lock()
			e.fake.settleErr = nil
			e.fake.mu.Unlock()
			status, reply = e.callbackRaw(body, "application/json")
			if status != http.StatusOK || reply.Effect != "credited" || e.balance(acc.ID()) != 10000 {
				t.Fatalf("retry: HTTP %d %+v", status, reply)
			}
		})
	}
}

// TestCallbackMethodResolution covers a registry of two methods: the
// callback's payment.method picks the channel; without it, the deposit's own
// method is found by payment id.
func TestCallbackMethodResolution(t *testing.T) {
	t.Parallel()
	cashin := monetix.Method{Name: "cashin", Currency: domain.KZT,
		Limits: domain.AmountLimits{MinMinor: 1, MaxMinor: 1_000_000}, Description: "other terminal"}
	e := newFakeEnv(t, withMethods(monetix.Kassa24, cashin))
	acc := e.openAccount("6552", "")
	a := e.request(p1Secret, monetix.CheckDepositRequestBody(p1ID, "6552", 50, "KZT", "cashin"))
	if a.Code != 0 || a.Description != "other terminal" {
		t.Fatalf("check_deposit cashin: %+v %q", a, a.Message())
	}
	// 50 tiyn is below kassa24's minimum: the method's own limits apply.
	if a := e.request(p1Secret, monetix.CheckDepositRequestBody(p1ID, "6552", 50, "KZT", "kassa24")); a.Code != 500 {
		t.Fatalf("kassa24 below min: %+v", a)
	}
	k := e.checkDeposit("6552", 10000)

	// No payment.method: the deposit is found by payment id, but a credit
	// needs the platform to name the deposit's method: an exception.
	e.mustCallback(set(cb(a.PaymentID, "success", 50, 1), "payment.method", removed), "exception")
	if len(e.fake.lookups) != 1 || e.fake.settles[0].Channel.Method != "cashin" {
		t.Fatalf("lookups %v, channel %+v", e.fake.lookups, e.fake.settles[0].Channel)
	}
	e.mustCallback(cb(a.PaymentID, "success", 50, 11), "exception") // cb names kassa24, the deposit is cashin's
	e.mustCallback(set(cb(a.PaymentID, "success", 50, 12), "payment.method", "cashin"), "credited")
	// payment.method in another letter case is not kassa24: found by payment
	// id (a lookup), then an exception; the exact name credits.
	e.mustCallback(set(cb(k, "success", 10000, 2), "payment.method", "KASSA24"), "exception")
	if len(e.fake.lookups) != 2 || e.fake.settles[3].Channel.Method != "kassa24" {
		t.Fatalf("lookups %v, channel %+v", e.fake.lookups, e.fake.settles[3].Channel)
	}
	e.mustCallback(cb(k, "success", 10000, 3), "credited")
	if bal := e.balance(acc.ID()); bal != 10050 {
		t.Fatalf("balance %d", bal)
	}
	// An unknown method and an unknown payment: the first method's channel, an exception.
	e.mustCallback(set(cb("nope", "success", 100, 3), "payment.method", "card"), "exception")
	if ch := e.fake.settles[5].Channel; ch.Method != "kassa24" {
		t.Fatalf("channel %+v", ch)
	}
	// The lookup failing is a store failure: 503, retry later.
	e.fake.lookupErr = ports.ErrUnavailable
	status, _ := e.callback(p1Secret, set(cb("nope", "success", 100, 4), "payment.method", removed))
	if status != http.StatusServiceUnavailable {
		t.Fatalf("lookup failure: HTTP %d", status)
	}
}

// TestCallbackConcurrentDelivery delivers the same success many times at
// once (the platform's retries racing a slow answer, or several instances):
// exactly one delivery credits.
func TestCallbackConcurrentDelivery(t *testing.T) {
	t.Parallel()
	const deliveries = 16
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b.make(t))
			acc := e.openAccount("6552", "")
			id := e.checkDeposit("6552", 25000)
			body := sign(t, p1Secret, cb(id, "success", 25000, 42))
			effects := make(chan string, deliveries)
			var wg sync.WaitGroup
			for range deliveries {
				wg.Go(func() {
					rec := e.post(monetix.CallbacksPath, body, "application/json")
					var reply monetix.CallbackReply
					_ = json.Unmarshal(rec.Body.Bytes(), &reply)
					effects <- fmt.Sprintf("%d %s", rec.Code, reply.Effect)
				})
			}
			wg.Wait()
			close(effects)
			counts := map[string]int{}
			for eff := range effects {
				counts[eff]++
			}
			if counts["200 credited"] != 1 || counts["200 replay"] != deliveries-1 {
				t.Fatalf("effects %v", counts)
			}
			if bal := e.balance(acc.ID()); bal != 25000 {
				t.Fatalf("balance %d", bal)
			}
			check, err := e.ledger.CheckLedger(context.Background())
			if err != nil || !check.Healthy() {
				t.Fatalf("ledger check %+v %v", check, err)
			}
		})
	}
}

func TestCallbackMetrics(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t)
	e.openAccount("6552", "")
	id := e.checkDeposit("6552", 12345)
	id2 := e.checkDeposit("6552", 100)
	e.mustCallback(cb(id, "success", 12345, 1), "credited")
	e.mustCallback(cb(id, "success", 12345, 1), "replay")
	e.mustCallback(cb(id2, "success", 100, 2), "credited")
	e.mustCallback(cb("unknown", "decline", 1, 3), "exception")
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"tiyn_monetix_callbacks_total", map[string]string{"effect": "credited"}, 2},
		{"tiyn_monetix_callbacks_total", map[string]string{"effect": "replay"}, 1},
		{"tiyn_monetix_callbacks_total", map[string]string{"effect": "exception"}, 1},
		{"tiyn_credits_total", map[string]string{"currency": "KZT"}, 2},
		{"tiyn_credited_minor_total", map[string]string{"currency": "KZT"}, 12445},
		{"tiyn_monetix_requests_total", map[string]string{"type": "check_deposit", "code": "0"}, 2},
	} {
		if got := counterValue(t, e.reg, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	// A second handler on the same registry shares the collectors.
	if m := monetix.NewMetrics(e.reg); m == nil {
		t.Fatal("NewMetrics on a used registry")
	}
}

// TestLogsNeverHoldSecrets runs rejected and accepted traffic with a debug
// logger and checks the reasons are logged and the keys are not.
func TestLogsNeverHoldSecrets(t *testing.T) {
	t.Parallel()
	var buf testkit.SyncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newEnv(t, newFakeLedger(), func(c *monetix.Config) { c.Logger = logger })
	e.openAccount("6552", "")
	id := e.checkDeposit("6552", 10000)
	e.callback(p2Secret, cb(id, "success", 10000, 1))                       // wrong key
	e.callback(p1Secret, set(cb(id, "success", 10000, 1), "payment.id", 5)) // wrong type
	e.request(p3Secret, monetix.VerifyRequestBody(p1ID, "6552"))            // wrong key
	e.mustCallback(cb(id, "success", 10000, 1), "credited")
	e.fake.settleErr = ports.ErrUnavailable
	e.callback(p1Secret, cb(id, "success", 10000, 1))
	out := buf.String()
	for _, s := range [][]byte{p1Secret, p2Secret, p3Secret} {
		if strings.Contains(out, string(s)) {
			t.Fatalf("log holds a secret:\n%s", out)
		}
	}
	for _, want := range []string{"reason=bad_signature", "malformed_callback", "effect=credited", "level=ERROR", "store unavailable"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
