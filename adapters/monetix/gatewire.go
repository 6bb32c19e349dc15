package monetix

import (
	"encoding/json"
	"maps"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix/signature"
)

// The platform's side of the Gate's payment status, for the simulator and
// the tests (as client.go is for the callbacks).

// StatusOperation is one operation of a payment in a status answer.
type StatusOperation struct {
	ID     int64
	Type   string // "" means "sale"
	Status string
	// Date is operation.date, its last change (the answer's Date when
	// zero); Created is operation.created_date (Date when zero).
	Date, Created time.Time
	// AmountMinor and Currency are the operation's sums (the payment's
	// when zero).
	AmountMinor int64
	Currency    string
}

// StatusAnswerParams are the variable parts of a status answer.
type StatusAnswerParams struct {
	ProjectID     string
	PaymentID     string
	PaymentStatus string
	Method        string // "" leaves payment.method out
	AmountMinor   int64
	Currency      string
	CustomerID    string // account.number; "" leaves it out
	Operations    []StatusOperation
	Date          time.Time
}

// BuildStatusAnswer builds an unsigned status answer shaped as public
// clients read it: a top-level project_id, the payment, the account, the
// operations (each shaped like a callback's operation) and an empty errors
// list. Sign it with SignedJSON.
func BuildStatusAnswer(p StatusAnswerParams) map[string]any {
	base := CallbackParams{ProjectID: p.ProjectID, PaymentID: p.PaymentID, PaymentStatus: p.PaymentStatus,
		Method: p.Method, AmountMinor: p.AmountMinor, Currency: p.Currency, CustomerID: p.CustomerID, Date: p.Date}
	ops := make([]any, 0, len(p.Operations))
	for _, o := range p.Operations {
		cp := base
		cp.OperationID, cp.OperationType, cp.OperationStatus = o.ID, o.Type, o.Status
		if !o.Date.IsZero() {
			cp.Date = o.Date
		}
		cp.CreatedDate = o.Created
		if o.AmountMinor != 0 {
			cp.AmountMinor = o.AmountMinor
		}
		if o.Currency != "" {
			cp.Currency = o.Currency
		}
		ops = append(ops, BuildCallback(cp)["operation"])
	}
	cb := BuildCallback(base)
	answer := map[string]any{
		"project_id": json.Number(p.ProjectID),
		"payment":    cb["payment"],
		"operations": ops,
		"errors":     []any{},
	}
	if acc, ok := cb["account"]; ok {
		answer["account"] = acc
	}
	return answer
}

// StatusNotFoundBody is the body of the simulator's answer about a payment
// it does not know (HTTP 404): errors only.
func StatusNotFoundBody(projectID, paymentID string) map[string]any {
	return map[string]any{
		"project_id": json.Number(projectID),
		"errors":     []any{map[string]any{"code": "3061", "message": "Transaction " + paymentID + " not found"}},
	}
}

// VerifyStatusRequest checks a status request's signature, which sits in
// general (signatures are left out at every depth when signing, so it is
// the signature of the whole body), with the secret of project secretOf
// names, and returns the project and payment ids. Errors wrap
// signature.ErrInvalidSignature or ErrInvalidField, or are a decoding
// error.
func VerifyStatusRequest(secretOf func(projectID string) []byte, body []byte) (projectID, paymentID string, err error) {
	doc, err := signature.Decode(body)
	if err != nil {
		return "", "", err
	}
	if projectID, paymentID, err = ParseStatusRequest(doc); err != nil {
		return "", "", err
	}
	general, _ := doc["general"].(map[string]any)
	check := maps.Clone(doc)
	check["signature"] = general["signature"]
	secret := secretOf(projectID)
	if len(secret) == 0 {
		return "", "", fieldErr("general.project_id", "names no known project")
	}
	if err := signature.Verify(secret, check); err != nil {
		return "", "", err
	}
	return projectID, paymentID, nil
}

// ParseStatusRequest reads a status request as the Gate would: the
// project and payment ids inside general. It does not verify the
// signature (VerifyStatusRequest does).
func ParseStatusRequest(doc map[string]any) (projectID, paymentID string, err error) {
	general, err := objectField(doc, "", "general")
	if err != nil {
		return "", "", err
	}
	if projectID, err = ProjectIDOf(general); err != nil {
		return "", "", err
	}
	if paymentID, err = stringField(general, "general.", "payment_id", MaxPaymentIDLen, true); err != nil {
		return "", "", err
	}
	return projectID, paymentID, nil
}
