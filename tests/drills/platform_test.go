package drills_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/tiyn/tiyn/adapters/monetix/signature"
)

// The Monetix endpoints (docs/architecture.md §6).
const (
	requestsPath  = "/v1/monetix/requests"
	callbacksPath = "/v1/monetix/callbacks"
)

// operationSeq makes operation ids unique within a test binary.
var operationSeq atomic.Int64

func init() { operationSeq.Store(36_011_000_000_000) }

// signed adds the signature member to doc, computed with secret, and
// returns the JSON body.
func signed(t testing.TB, secret []byte, doc map[string]any) []byte {
	t.Helper()
	doc["signature"] = signature.Sign(secret, doc)
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

// requestAnswer is an answer of the requests endpoint.
type requestAnswer struct {
	Code      int    `json:"code"`
	PaymentID string `json:"payment_id"`
	Errors    struct {
		Message string `json:"message"`
	} `json:"errors"`
}

// checkDepositBody is a signed check_deposit of project 1234.
func checkDepositBody(t testing.TB, c creds, customerID string, amountMinor int64) []byte {
	return signed(t, c.secret, map[string]any{
		"type": "check_deposit", "project_id": json.Number(projectID), "customer_id": customerID,
		"amount": json.Number(strconv.FormatInt(amountMinor, 10)), "currency": "KZT", "payment_method": "kassa24",
	})
}

// callbackBody is a signed kassa24 callback of project 1234 for paymentID
// with the given status ("success", "decline") and a fresh operation id.
func callbackBody(t testing.TB, c creds, paymentID, status string, amountMinor int64) []byte {
	op := strconv.FormatInt(operationSeq.Add(1), 10)
	opStatus, opType := status, "sale"
	return signed(t, c.secret, map[string]any{
		"project_id": json.Number(projectID),
		"payment": map[string]any{
			"id": paymentID, "type": "purchase", "status": status, "method": "kassa24",
			"sum": map[string]any{"amount": json.Number(strconv.FormatInt(amountMinor, 10)), "currency": "KZT"},
		},
		"operation": map[string]any{
			"id": json.Number(op), "type": opType, "status": opStatus, "code": "0", "message": "Success",
			"sum_initial": map[string]any{"amount": json.Number(strconv.FormatInt(amountMinor, 10)), "currency": "KZT"},
			"provider":    map[string]any{"id": json.Number("1217"), "payment_id": "k24-" + op},
		},
	})
}

// openDeposit sends a check_deposit and returns the payment id.
func openDeposit(t testing.TB, s *server, c creds, customerID string, amountMinor int64) (string, error) {
	resp, err := send(http.MethodPost, s.url()+requestsPath, checkDepositBody(t, c, customerID, amountMinor),
		"Content-Type: application/json")
	if err != nil {
		return "", err
	}
	var a requestAnswer
	if err := json.Unmarshal(resp.body, &a); err != nil || resp.status != http.StatusOK {
		return "", fmt.Errorf("check_deposit: %d %s", resp.status, resp.body)
	}
	if a.Code != 0 || a.PaymentID == "" {
		return "", fmt.Errorf("check_deposit: code %d: %s", a.Code, a.Errors.Message)
	}
	return a.PaymentID, nil
}

// postCallback sends a callback body and returns the HTTP status.
func postCallback(s *server, body []byte) (response, error) {
	return send(http.MethodPost, s.url()+callbacksPath, body, "Content-Type: application/json")
}

// account is the part of a REST account the drills read.
type account struct {
	ID           string `json:"id"`
	CustomerID   string `json:"customer_id"`
	BalanceMinor int64  `json:"balance_minor"`
}

// openAccount opens (or finds) a customer's KZT account through REST.
func openAccount(t testing.TB, s *server, c creds, customerID string) account {
	t.Helper()
	var a account
	if _, err := restJSON(s, c.writeToken, http.MethodPost, "/v1/accounts",
		map[string]string{"customer_id": customerID, "currency": "KZT"}, &a); err != nil {
		t.Fatalf("open account: %v", err)
	}
	return a
}

// fund credits amountMinor to a customer the way the platform does:
// check_deposit, then a success callback answered 200.
func fund(t testing.TB, s *server, c creds, customerID string, amountMinor int64) string {
	t.Helper()
	paymentID, err := openDeposit(t, s, c, customerID, amountMinor)
	if err != nil {
		t.Fatalf("fund %s: %v", customerID, err)
	}
	resp, err := postCallback(s, callbackBody(t, c, paymentID, "success", amountMinor))
	if err != nil || resp.status != http.StatusOK {
		t.Fatalf("fund %s: callback: %v %d %s", customerID, err, resp.status, resp.body)
	}
	return paymentID
}

// balanceOf reads an account's balance through REST.
func balanceOf(t testing.TB, s *server, c creds, accountID string) int64 {
	t.Helper()
	var a account
	if _, err := restJSON(s, c.readToken, http.MethodGet, "/v1/accounts/"+accountID, nil, &a); err != nil {
		t.Fatalf("read account: %v", err)
	}
	return a.BalanceMinor
}
