package platformsim

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix/signature"
)

// Wire constants of the kassa24 flow (docs/protocol.md §2, the method page).
const (
	currencyKZT   = "KZT"
	methodKassa24 = "kassa24"
	providerID    = 1217 // operation.provider.id in the page's example
	dateLayout    = "2006-01-02T15:04:05-0700"

	requestsPath  = "/v1/monetix/requests"
	callbacksPath = "/v1/monetix/callbacks"
	accountsPath  = "/v1/accounts"
)

// Answer codes of verify / check_deposit.
const (
	codeOK       = 0
	codeNotFound = 404
	codeGeneral  = 500
)

// cbKind is the status a callback reports.
type cbKind uint8

const (
	cbProcessing cbKind = iota
	cbDecline
	cbSuccess
)

// wire names of each kind: payment.status (= operation.status),
// operation.code, operation.message.
var cbWire = [...]struct{ status, code, message string }{
	cbProcessing: {"processing", "0", "Processing"},
	cbDecline:    {"decline", "20000", "General decline"},
	cbSuccess:    {"success", "0", "Success"},
}

func (k cbKind) String() string { return cbWire[k].status }

// cbParams are the variable parts of one callback.
type cbParams struct {
	kind        cbKind
	paymentID   string
	operationID int64
	amount      int64
	customerID  string
	providerPay string // operation.provider.payment_id
}

// signer builds signed bodies. The documents it signs are reused between
// calls (only their values change) and the JSON is written by hand into
// the caller's buffer in the page's member order, so a body costs one
// signature and almost no garbage. A signer is not safe for concurrent use:
// each worker has its own. The tests check that every body decodes to
// exactly the document that was signed.
type signer struct {
	secret    []byte
	projectID string // decimal
	runTag    string // makes operation.request_id unique per run

	verifyDoc  map[string]any
	depositDoc map[string]any
	cbRoot     map[string]any
	cbPayment  map[string]any
	cbSum      map[string]any // shared by payment.sum and both operation sums
	cbAccount  map[string]any
	cbOp       map[string]any
	cbProvider map[string]any

	dateSec int64
	date    string
}

func newSigner(secret []byte, projectID int64, runTag string) *signer {
	pid := strconv.FormatInt(projectID, 10)
	s := &signer{secret: secret, projectID: pid, runTag: runTag}
	s.verifyDoc = map[string]any{"type": "verify", "project_id": json.Number(pid), "customer_id": ""}
	s.depositDoc = map[string]any{
		"type": "check_deposit", "project_id": json.Number(pid), "customer_id": "",
		"amount": int64(0), "currency": currencyKZT, "payment_method": methodKassa24,
	}
	s.cbSum = map[string]any{"amount": int64(0), "currency": currencyKZT}
	s.cbPayment = map[string]any{
		"id": "", "type": "purchase", "status": "", "date": "", "method": methodKassa24,
		"sum": s.cbSum, "description": "",
	}
	s.cbAccount = map[string]any{"number": ""}
	s.cbProvider = map[string]any{"id": int64(providerID), "payment_id": "", "auth_code": ""}
	s.cbOp = map[string]any{
		"id": int64(0), "type": "sale", "status": "", "date": "", "created_date": "", "request_id": "",
		"sum_initial": s.cbSum, "sum_converted": s.cbSum, "provider": s.cbProvider, "code": "", "message": "",
	}
	s.cbRoot = map[string]any{
		"project_id": json.Number(pid), "payment": s.cbPayment, "account": s.cbAccount, "operation": s.cbOp,
	}
	return s
}

// now returns the platform-format date, formatted once per second.
func (s *signer) now() string {
	t := time.Now().UTC()
	if sec := t.Unix(); sec != s.dateSec || s.date == "" {
		s.dateSec, s.date = sec, t.Format(dateLayout)
	}
	return s.date
}

// verifyBody appends a signed verify request to dst.
func (s *signer) verifyBody(dst []byte, customerID string) []byte {
	s.verifyDoc["customer_id"] = customerID
	sig := signature.Sign(s.secret, s.verifyDoc)
	dst = append(dst, `{"type":"verify","project_id":`...)
	dst = append(dst, s.projectID...)
	dst = append(dst, `,"customer_id":`...)
	dst = appendJSONString(dst, customerID)
	dst = append(dst, `,"signature":`...)
	dst = appendJSONString(dst, sig)
	return append(dst, '}')
}

// checkDepositBody appends a signed check_deposit request to dst.
func (s *signer) checkDepositBody(dst []byte, customerID string, amount int64) []byte {
	s.depositDoc["customer_id"] = customerID
	s.depositDoc["amount"] = amount
	sig := signature.Sign(s.secret, s.depositDoc)
	dst = append(dst, `{"type":"check_deposit","project_id":`...)
	dst = append(dst, s.projectID...)
	dst = append(dst, `,"customer_id":`...)
	dst = appendJSONString(dst, customerID)
	dst = append(dst, `,"amount":`...)
	dst = strconv.AppendInt(dst, amount, 10)
	dst = append(dst, `,"currency":"`+currencyKZT+`","payment_method":"`+methodKassa24+`","signature":`...)
	dst = appendJSONString(dst, sig)
	return append(dst, '}')
}

// callbackBody appends a signed callback shaped like the method page's
// example (docs/protocol.md §2 V3) to dst.
func (s *signer) callbackBody(dst []byte, p cbParams) []byte {
	w := cbWire[p.kind]
	date := s.now()
	requestID := s.runTag + "-" + strconv.FormatInt(p.operationID, 10)

	s.cbSum["amount"] = p.amount
	s.cbPayment["id"] = p.paymentID
	s.cbPayment["status"] = w.status
	s.cbPayment["date"] = date
	s.cbAccount["number"] = p.customerID
	s.cbOp["id"] = p.operationID
	s.cbOp["status"] = w.status
	s.cbOp["date"] = date
	s.cbOp["created_date"] = date
	s.cbOp["request_id"] = requestID
	s.cbOp["code"] = w.code
	s.cbOp["message"] = w.message
	s.cbProvider["payment_id"] = p.providerPay
	sig := signature.Sign(s.secret, s.cbRoot)

	sum := func(dst []byte) []byte {
		dst = append(dst, `{"amount":`...)
		dst = strconv.AppendInt(dst, p.amount, 10)
		return append(dst, `,"currency":"`+currencyKZT+`"}`...)
	}
	dst = append(dst, `{"project_id":`...)
	dst = append(dst, s.projectID...)
	dst = append(dst, `,"payment":{"id":`...)
	dst = appendJSONString(dst, p.paymentID)
	dst = append(dst, `,"type":"purchase","status":"`...)
	dst = append(dst, w.status...)
	dst = append(dst, `","date":"`...)
	dst = append(dst, date...)
	dst = append(dst, `","method":"`+methodKassa24+`","sum":`...)
	dst = sum(dst)
	dst = append(dst, `,"description":""},"account":{"number":`...)
	dst = appendJSONString(dst, p.customerID)
	dst = append(dst, `},"operation":{"id":`...)
	dst = strconv.AppendInt(dst, p.operationID, 10)
	dst = append(dst, `,"type":"sale","status":"`...)
	dst = append(dst, w.status...)
	dst = append(dst, `","date":"`...)
	dst = append(dst, date...)
	dst = append(dst, `","created_date":"`...)
	dst = append(dst, date...)
	dst = append(dst, `","request_id":`...)
	dst = appendJSONString(dst, requestID)
	dst = append(dst, `,"sum_initial":`...)
	dst = sum(dst)
	dst = append(dst, `,"sum_converted":`...)
	dst = sum(dst)
	dst = append(dst, `,"provider":{"id":`...)
	dst = strconv.AppendInt(dst, providerID, 10)
	dst = append(dst, `,"payment_id":`...)
	dst = appendJSONString(dst, p.providerPay)
	dst = append(dst, `,"auth_code":""},"code":"`...)
	dst = append(dst, w.code...)
	dst = append(dst, `","message":"`...)
	dst = append(dst, w.message...)
	dst = append(dst, `"},"signature":`...)
	dst = appendJSONString(dst, sig)
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, everything else (UTF-8) as is.
func appendJSONString(dst []byte, s string) []byte {
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

// Answers are read with a small scanner instead of encoding/json: Tiyn's
// answers are flat objects and the fields needed are a number and a plain
// string. Anything the scanner cannot read falls back to encoding/json.

// scanValue returns the bytes after `"key":` (and spaces) in a JSON object.
func scanValue(b []byte, key string) ([]byte, bool) {
	for off := 0; off < len(b); {
		i := bytes.Index(b[off:], []byte(key))
		if i < 0 {
			return nil, false
		}
		j := off + i
		off = j + len(key)
		if j == 0 || b[j-1] != '"' || off >= len(b) || b[off] != '"' {
			continue
		}
		k := off + 1
		for k < len(b) && isSpace(b[k]) {
			k++
		}
		if k >= len(b) || b[k] != ':' {
			continue
		}
		k++
		for k < len(b) && isSpace(b[k]) {
			k++
		}
		return b[k:], true
	}
	return nil, false
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// scanInt reads an integer member.
func scanInt(b []byte, key string) (int64, bool) {
	v, ok := scanValue(b, key)
	if !ok {
		return 0, false
	}
	n := 0
	if n < len(v) && v[n] == '-' {
		n++
	}
	for n < len(v) && v[n] >= '0' && v[n] <= '9' {
		n++
	}
	x, err := strconv.ParseInt(string(v[:n]), 10, 64)
	if err != nil || (n < len(v) && v[n] != ',' && v[n] != '}' && !isSpace(v[n])) {
		return 0, false
	}
	return x, true
}

// scanString reads a string member without escapes; ok is false when the
// member is absent, not a string, or has escapes.
func scanRawString(b []byte, key string) ([]byte, bool) {
	v, ok := scanValue(b, key)
	if !ok || len(v) == 0 || v[0] != '"' {
		return nil, false
	}
	end := bytes.IndexByte(v[1:], '"')
	if end < 0 || bytes.IndexByte(v[1:1+end], '\\') >= 0 {
		return nil, false
	}
	return v[1 : 1+end], true
}

// answer is the part of a verify / check_deposit answer the simulator checks.
type answer struct {
	Code      int64  `json:"code"`
	PaymentID string `json:"payment_id"`
	Errors    *struct {
		Message string `json:"message"`
	} `json:"errors"`
}

// parseAnswer reads an answer; wantPaymentID says whether payment_id is
// needed (check_deposit).
func parseAnswer(b []byte, wantPaymentID bool) (answer, bool) {
	if code, ok := scanInt(b, "code"); ok {
		if code != codeOK || !wantPaymentID {
			return answer{Code: code}, true
		}
		if pid, ok := scanRawString(b, "payment_id"); ok {
			return answer{Code: code, PaymentID: string(pid)}, true
		}
	}
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		return answer{}, false
	}
	return a, true
}

// Effects Tiyn names in a callback answer ({"status":"ok","effect":"…"}).
const (
	effCredited = iota
	effDeclined
	effReplay
	effRecorded
	effException
	effOther // absent or unknown
	numEffects
)

var effectNames = [numEffects]string{"credited", "declined", "replay", "recorded", "exception", "other"}

// callbackEffect reads the effect of a callback answer.
func callbackEffect(b []byte) int {
	v, ok := scanRawString(b, "effect")
	if !ok {
		return effOther
	}
	for i, name := range effectNames[:effOther] {
		if string(v) == name {
			return i
		}
	}
	return effOther
}

// effectFits says whether an effect is a correct answer to a callback of
// the kind. A replay is always acceptable (the first delivery may have been
// committed with its answer lost), and so is an answer naming no known
// effect: only the HTTP status is the platform's contract.
func effectFits(kind cbKind, eff int) bool {
	switch eff {
	case effReplay, effOther:
		return true
	case effCredited:
		return kind == cbSuccess
	case effDeclined:
		return kind == cbDecline
	case effRecorded:
		return kind == cbProcessing
	}
	return false
}
