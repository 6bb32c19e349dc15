package e2e_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"mime"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
)

// The platform's side of the wire, for the tests: signed bodies built with
// the adapter's own client helpers, sent to the real process.

// contentJSON is the content type the platform sends.
const contentJSON = "application/json"

// signedBody signs body with secret (monetix.SignedJSON).
func signedBody(t *testing.T, secret []byte, body map[string]any) []byte {
	t.Helper()
	b, err := monetix.SignedJSON(secret, body)
	if err != nil {
		t.Fatalf("sign %v: %v", body, err)
	}
	return b
}

// signedFor signs body with the key of the project it names.
func signedFor(t *testing.T, body map[string]any) []byte {
	t.Helper()
	pid, ok := body["project_id"].(json.Number)
	secret := secrets[string(pid)]
	if !ok || secret == nil {
		t.Fatalf("body names no configured project: %v", body["project_id"])
	}
	return signedBody(t, secret, body)
}

// indented re-indents a JSON body for people; the signature covers the
// decoded values, not the layout, so it stays valid.
func indented(t *testing.T, body []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// with returns a copy of body with key set to v (nested: a path of keys).
func with(body map[string]any, v any, path ...string) map[string]any {
	out := deepClone(body)
	m := out
	for _, k := range path[:len(path)-1] {
		m = m[k].(map[string]any)
	}
	m[path[len(path)-1]] = v
	return out
}

// without returns a copy of body without the key at path.
func without(body map[string]any, path ...string) map[string]any {
	out := deepClone(body)
	m := out
	for _, k := range path[:len(path)-1] {
		m = m[k].(map[string]any)
	}
	delete(m, path[len(path)-1])
	return out
}

func deepClone(m map[string]any) map[string]any {
	out := maps.Clone(m)
	for k, v := range out {
		if sub, ok := v.(map[string]any); ok {
			out[k] = deepClone(sub)
		}
	}
	return out
}

// requestAs posts a verify/check_deposit body with a content type and
// checks what every answer shares: HTTP 200 and a JSON body.
func (s *server) requestAs(t *testing.T, contentType string, body []byte) (monetix.Answer, exchange) {
	t.Helper()
	x := s.mustSend(t, http.MethodPost, monetix.RequestsPath, contentType, "", body)
	if x.Status != http.StatusOK {
		t.Fatalf("POST %s: HTTP %d, want 200 (the result travels in code): %s", monetix.RequestsPath, x.Status, x.Answer)
	}
	if mt, _, err := mime.ParseMediaType(x.Header.Get("Content-Type")); err != nil || mt != contentJSON {
		t.Fatalf("answer Content-Type %q, want %s", x.Header.Get("Content-Type"), contentJSON)
	}
	a, err := monetix.ParseAnswer(x.Answer, nil)
	if err != nil {
		t.Fatalf("answer %s: %v", x.Answer, err)
	}
	return a, x
}

// request posts a body as application/json.
func (s *server) request(t *testing.T, body []byte) (monetix.Answer, exchange) {
	t.Helper()
	return s.requestAs(t, contentJSON, body)
}

// checkDeposit opens a deposit for customer through a signed check_deposit
// of project and returns its payment_id.
func (s *server) checkDeposit(t *testing.T, project, customer string, amount int64) string {
	t.Helper()
	a, x := s.request(t, signedFor(t, monetix.CheckDepositRequestBody(project, customer, amount, "KZT", "kassa24")))
	if a.Code != monetix.CodeOK || a.PaymentID == "" {
		t.Fatalf("check_deposit %s %d: %s", customer, amount, x.Answer)
	}
	return a.PaymentID
}

// callbackReply is the JSON of a callback answer.
type callbackReply = monetix.CallbackReply

// callback posts a callback body and decodes the answer.
func (s *server) callback(t *testing.T, body []byte) (callbackReply, exchange) {
	t.Helper()
	return s.callbackAs(t, contentJSON, body)
}

func (s *server) callbackAs(t *testing.T, contentType string, body []byte) (callbackReply, exchange) {
	t.Helper()
	x := s.mustSend(t, http.MethodPost, monetix.CallbacksPath, contentType, "", body)
	var r callbackReply
	if err := json.Unmarshal(x.Answer, &r); err != nil {
		t.Fatalf("callback answer HTTP %d %q: %v", x.Status, x.Answer, err)
	}
	return r, x
}

// callbackBody is an unsigned callback for a payment of the plain project
// in the shape of the method page's example.
func callbackBody(paymentID, status string, amount int64, operationID int64) map[string]any {
	return monetix.BuildCallback(monetix.CallbackParams{
		ProjectID:       projectPlain,
		PaymentID:       paymentID,
		PaymentStatus:   status,
		Method:          "kassa24",
		AmountMinor:     amount,
		Currency:        "KZT",
		CustomerID:      "6552",
		OperationID:     operationID,
		ProviderPayment: "kassa24-" + strconv.FormatInt(operationID, 10),
		Date:            time.Date(2024, 4, 30, 11, 35, 6, 0, time.UTC),
	})
}
