package monetix

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix/signature"
)

// This file is the platform's side of the wire: what the simulator
// (tiyn simulate), the end-to-end tests and anyone debugging a project key
// need to talk to the endpoints above as Monetix would.

// CallbackDateLayout is the platform's date format (2024-04-30T11:35:06+0000).
const CallbackDateLayout = "2006-01-02T15:04:05-0700"

// SignedJSON marshals body with a top-level "signature" computed with the
// signature package over the body as the receiver will decode it. body is
// not modified; a "signature" already in it is replaced. Values may be any
// JSON-marshalable Go values; project ids should be json.Number (an integer
// on the wire). The body is marshalled and decoded once before signing, so
// the signature covers exactly what the receiver sees (e.g. a float64 is
// signed the way it is printed).
func SignedJSON(secret []byte, body map[string]any) ([]byte, error) {
	if len(secret) == 0 {
		return nil, signature.ErrNoSecret
	}
	clean := maps.Clone(body)
	delete(clean, "signature")
	raw, err := json.Marshal(clean)
	if err != nil {
		return nil, fmt.Errorf("monetix.SignedJSON: %w", err)
	}
	doc, err := signature.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("monetix.SignedJSON: %w", err)
	}
	doc["signature"] = signature.Sign(secret, doc)
	return json.Marshal(doc)
}

// VerifyRequestBody builds an unsigned verify request (sign it with
// SignedJSON).
func VerifyRequestBody(projectID, customerID string) map[string]any {
	return map[string]any{
		"type":        TypeVerify,
		"project_id":  json.Number(projectID),
		"customer_id": customerID,
	}
}

// CheckDepositRequestBody builds an unsigned check_deposit request.
func CheckDepositRequestBody(projectID, customerID string, amountMinor int64, currency, method string) map[string]any {
	return map[string]any{
		"type":           TypeCheckDeposit,
		"project_id":     json.Number(projectID),
		"customer_id":    customerID,
		"amount":         amountMinor,
		"currency":       currency,
		"payment_method": method,
	}
}

// CallbackParams are the variable parts of a payment callback.
type CallbackParams struct {
	ProjectID       string
	PaymentID       string
	PaymentStatus   string // "success", "decline", "processing", …
	Method          string // payment.method; "" leaves it out
	AmountMinor     int64
	Currency        string
	CustomerID      string // account.number; "" leaves it out
	OperationID     int64
	OperationType   string // "" means "sale"
	OperationStatus string // "" means PaymentStatus
	ProviderPayment string // operation.provider.payment_id; "" leaves it out
	// RequestID is operation.request_id; "" means "req-<operation id>".
	RequestID string
	// Code and Message are operation.code and operation.message; "" means
	// "0", and "Success" for a successful operation, else its status.
	Code, Message string
	// Date is payment.date and operation.date (time.Now when zero);
	// CreatedDate is operation.created_date (Date when zero).
	Date, CreatedDate time.Time
}

// ProviderIDKassa24 is operation.provider.id in the method page's example.
const ProviderIDKassa24 = 1217

// BuildCallback builds an unsigned callback shaped like the method page's
// example (payment, account, operation with sums and provider), to be
// signed with SignedJSON.
func BuildCallback(p CallbackParams) map[string]any {
	p = p.withDefaults()
	when := p.Date.UTC().Format(CallbackDateLayout)
	created := when
	if !p.CreatedDate.IsZero() {
		created = p.CreatedDate.UTC().Format(CallbackDateLayout)
	}
	sum := func() map[string]any { return map[string]any{"amount": p.AmountMinor, "currency": p.Currency} }
	payment := map[string]any{
		"id": p.PaymentID, "type": "purchase", "status": p.PaymentStatus, "date": when,
		"sum": sum(), "description": "",
	}
	if p.Method != "" {
		payment["method"] = p.Method
	}
	provider := map[string]any{"id": json.Number(strconv.Itoa(ProviderIDKassa24)), "auth_code": ""}
	if p.ProviderPayment != "" {
		provider["payment_id"] = p.ProviderPayment
	}
	cb := map[string]any{
		"project_id": json.Number(p.ProjectID),
		"payment":    payment,
		"operation": map[string]any{
			"id": p.OperationID, "type": p.OperationType, "status": p.OperationStatus, "date": when, "created_date": created,
			"request_id":    p.RequestID,
			"sum_initial":   sum(),
			"sum_converted": sum(),
			"provider":      provider,
			"code":          p.Code,
			"message":       p.Message,
		},
	}
	if p.CustomerID != "" {
		cb["account"] = map[string]any{"number": p.CustomerID}
	}
	return cb
}

// withDefaults is p with what is left empty filled as CallbackParams
// says: the operation's type, status, request_id, code and message, and
// the date. CreatedDate stays as given (zero: the date).
func (p CallbackParams) withDefaults() CallbackParams {
	if p.OperationType == "" {
		p.OperationType = OperationSale
	}
	if p.OperationStatus == "" {
		p.OperationStatus = p.PaymentStatus
	}
	if p.Date.IsZero() {
		p.Date = time.Now()
	}
	if p.RequestID == "" {
		p.RequestID = "req-" + strconv.FormatInt(p.OperationID, 10)
	}
	if p.Code == "" {
		p.Code = "0"
	}
	if p.Message == "" {
		p.Message = p.OperationStatus
		if p.OperationStatus == StatusSuccess {
			p.Message = "Success"
		}
	}
	return p
}

// Answer is a verify / check_deposit answer as the platform reads it.
type Answer struct {
	Code                 int    `json:"code"`
	Currency             string `json:"currency,omitempty"`
	AdditionalCustomerID string `json:"additional_customer_id,omitempty"`
	PaymentID            string `json:"payment_id,omitempty"`
	Description          string `json:"description,omitempty"`
	Errors               *struct {
		Message string `json:"message"`
	} `json:"errors,omitempty"`
	Signature string `json:"signature,omitempty"`
}

// ErrAnswerSignature: ParseAnswer was given a secret and the answer's
// signature is missing or wrong.
var ErrAnswerSignature = errors.New("monetix answer signature invalid")

// ParseAnswer reads a verify / check_deposit answer. With a non-empty
// secret it also verifies the answer's signature (for projects with
// SignAnswers), wrapping ErrAnswerSignature on failure.
func ParseAnswer(body []byte, secret []byte) (Answer, error) {
	var a Answer
	if err := json.Unmarshal(body, &a); err != nil {
		return Answer{}, fmt.Errorf("monetix answer: %w", err)
	}
	if len(secret) > 0 {
		if _, err := signature.VerifyBody(secret, body); err != nil {
			return a, fmt.Errorf("%w: %w", ErrAnswerSignature, err)
		}
	}
	return a, nil
}

// Message is the answer's errors.message, or "".
func (a Answer) Message() string {
	if a.Errors == nil {
		return ""
	}
	return a.Errors.Message
}
