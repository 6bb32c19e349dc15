package monetix

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix/signature"
)

// BodyWriter writes the platform's signed bodies straight into a buffer:
// the same documents as VerifyRequestBody, CheckDepositRequestBody and
// BuildCallback signed with SignedJSON (the tests hold them equal), at a
// fraction of the cost — one signature and a few small allocations per
// body, no marshalling. It is for load generators (tiyn simulate), which
// share the machine with the server they measure.
//
// The documents it signs are kept between calls (only their values
// change) and the JSON is written by hand in the method page's member
// order. Strings must be valid UTF-8. A BodyWriter is not safe for
// concurrent use: give each goroutine its own.
type BodyWriter struct {
	secret    []byte
	projectID string // canonical decimal

	verifyDoc  map[string]any
	depositDoc map[string]any
	cbRoot     map[string]any
	cbPayment  map[string]any
	cbSum      map[string]any // shared by payment.sum and both operation sums
	cbAccount  map[string]any
	cbOp       map[string]any
	cbProvider map[string]any

	dateSec int64 // the second date was formatted for
	date    string
}

// NewBodyWriter returns a writer for project projectID (a positive
// decimal integer, as ProjectIDOf reads it) signing with secret.
func NewBodyWriter(secret []byte, projectID string) (*BodyWriter, error) {
	if len(secret) == 0 {
		return nil, signature.ErrNoSecret
	}
	if _, err := ProjectIDOf(map[string]any{"project_id": json.Number(projectID)}); err != nil {
		return nil, fmt.Errorf("monetix.NewBodyWriter: %w", err)
	}
	pid := json.Number(projectID)
	w := &BodyWriter{secret: append([]byte(nil), secret...), projectID: projectID}
	w.verifyDoc = map[string]any{"type": TypeVerify, "project_id": pid, "customer_id": ""}
	w.depositDoc = map[string]any{
		"type": TypeCheckDeposit, "project_id": pid, "customer_id": "",
		"amount": int64(0), "currency": "", "payment_method": "",
	}
	w.cbSum = map[string]any{"amount": int64(0), "currency": ""}
	w.cbPayment = map[string]any{"id": "", "type": "purchase", "status": "", "date": "", "sum": w.cbSum, "description": ""}
	w.cbAccount = map[string]any{"number": ""}
	w.cbProvider = map[string]any{"id": int64(ProviderIDKassa24), "auth_code": ""}
	w.cbOp = map[string]any{
		"id": int64(0), "type": "", "status": "", "date": "", "created_date": "", "request_id": "",
		"sum_initial": w.cbSum, "sum_converted": w.cbSum, "provider": w.cbProvider, "code": "", "message": "",
	}
	w.cbRoot = map[string]any{"project_id": pid, "payment": w.cbPayment, "operation": w.cbOp}
	return w, nil
}

// AppendVerify appends the signed verify request of VerifyRequestBody.
func (w *BodyWriter) AppendVerify(dst []byte, customerID string) []byte {
	w.verifyDoc["customer_id"] = customerID
	sig := signature.Sign(w.secret, w.verifyDoc)
	dst = append(dst, `{"type":"`+TypeVerify+`","project_id":`...)
	dst = append(dst, w.projectID...)
	dst = append(dst, `,"customer_id":`...)
	dst = AppendJSONString(dst, customerID)
	dst = append(dst, `,"signature":`...)
	dst = AppendJSONString(dst, sig)
	return append(dst, '}')
}

// AppendCheckDeposit appends the signed check_deposit request of
// CheckDepositRequestBody.
func (w *BodyWriter) AppendCheckDeposit(dst []byte, customerID string, amountMinor int64, currency, method string) []byte {
	d := w.depositDoc
	d["customer_id"], d["amount"], d["currency"], d["payment_method"] = customerID, amountMinor, currency, method
	sig := signature.Sign(w.secret, d)
	dst = append(dst, `{"type":"`+TypeCheckDeposit+`","project_id":`...)
	dst = append(dst, w.projectID...)
	dst = append(dst, `,"customer_id":`...)
	dst = AppendJSONString(dst, customerID)
	dst = append(dst, `,"amount":`...)
	dst = strconv.AppendInt(dst, amountMinor, 10)
	dst = append(dst, `,"currency":`...)
	dst = AppendJSONString(dst, currency)
	dst = append(dst, `,"payment_method":`...)
	dst = AppendJSONString(dst, method)
	dst = append(dst, `,"signature":`...)
	dst = AppendJSONString(dst, sig)
	return append(dst, '}')
}

// format returns t in the platform's date format, formatting at most once
// per second for the current time.
func (w *BodyWriter) format(t time.Time) string {
	if sec := t.Unix(); sec != w.dateSec || w.date == "" {
		w.dateSec, w.date = sec, t.UTC().Format(CallbackDateLayout)
	}
	return w.date
}

// AppendCallback appends the signed callback of BuildCallback(p). The
// writer's project is the callback's: p.ProjectID is not read.
func (w *BodyWriter) AppendCallback(dst []byte, p CallbackParams) []byte {
	p = p.withDefaults()
	when := w.format(p.Date)
	created := when
	if !p.CreatedDate.IsZero() {
		created = p.CreatedDate.UTC().Format(CallbackDateLayout)
	}

	w.cbSum["amount"], w.cbSum["currency"] = p.AmountMinor, p.Currency
	pay := w.cbPayment
	pay["id"], pay["status"], pay["date"] = p.PaymentID, p.PaymentStatus, when
	if p.Method != "" {
		pay["method"] = p.Method
	} else {
		delete(pay, "method")
	}
	if p.CustomerID != "" {
		w.cbAccount["number"] = p.CustomerID
		w.cbRoot["account"] = w.cbAccount
	} else {
		delete(w.cbRoot, "account")
	}
	op := w.cbOp
	op["id"], op["type"], op["status"], op["date"], op["created_date"] = p.OperationID, p.OperationType, p.OperationStatus, when, created
	op["request_id"], op["code"], op["message"] = p.RequestID, p.Code, p.Message
	if p.ProviderPayment != "" {
		w.cbProvider["payment_id"] = p.ProviderPayment
	} else {
		delete(w.cbProvider, "payment_id")
	}
	sig := signature.Sign(w.secret, w.cbRoot)

	sum := func(dst []byte) []byte {
		dst = append(dst, `{"amount":`...)
		dst = strconv.AppendInt(dst, p.AmountMinor, 10)
		dst = append(dst, `,"currency":`...)
		dst = AppendJSONString(dst, p.Currency)
		return append(dst, '}')
	}
	dst = append(dst, `{"project_id":`...)
	dst = append(dst, w.projectID...)
	dst = append(dst, `,"payment":{"id":`...)
	dst = AppendJSONString(dst, p.PaymentID)
	dst = append(dst, `,"type":"purchase","status":`...)
	dst = AppendJSONString(dst, p.PaymentStatus)
	dst = append(dst, `,"date":"`...)
	dst = append(dst, when...)
	dst = append(dst, '"')
	if p.Method != "" {
		dst = append(dst, `,"method":`...)
		dst = AppendJSONString(dst, p.Method)
	}
	dst = append(dst, `,"sum":`...)
	dst = sum(dst)
	dst = append(dst, `,"description":""}`...)
	if p.CustomerID != "" {
		dst = append(dst, `,"account":{"number":`...)
		dst = AppendJSONString(dst, p.CustomerID)
		dst = append(dst, '}')
	}
	dst = append(dst, `,"operation":{"id":`...)
	dst = strconv.AppendInt(dst, p.OperationID, 10)
	dst = append(dst, `,"type":`...)
	dst = AppendJSONString(dst, p.OperationType)
	dst = append(dst, `,"status":`...)
	dst = AppendJSONString(dst, p.OperationStatus)
	dst = append(dst, `,"date":"`...)
	dst = append(dst, when...)
	dst = append(dst, `","created_date":"`...)
	dst = append(dst, created...)
	dst = append(dst, `","request_id":`...)
	dst = AppendJSONString(dst, p.RequestID)
	dst = append(dst, `,"sum_initial":`...)
	dst = sum(dst)
	dst = append(dst, `,"sum_converted":`...)
	dst = sum(dst)
	dst = append(dst, `,"provider":{"id":`...)
	dst = strconv.AppendInt(dst, ProviderIDKassa24, 10)
	if p.ProviderPayment != "" {
		dst = append(dst, `,"payment_id":`...)
		dst = AppendJSONString(dst, p.ProviderPayment)
	}
	dst = append(dst, `,"auth_code":""},"code":`...)
	dst = AppendJSONString(dst, p.Code)
	dst = append(dst, `,"message":`...)
	dst = AppendJSONString(dst, p.Message)
	dst = append(dst, `},"signature":`...)
	dst = AppendJSONString(dst, sig)
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, everything else (valid UTF-8) as is. It
// decodes to s, like encoding/json's encoding of it.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
