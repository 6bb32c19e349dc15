package monetix

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"

	"github.com/tiyn/tiyn/adapters/monetix/signature"
)

// The wire is decoded in two steps: signature.Decode turns the body into a
// generic tree (numbers kept as json.Number, never float64), the signature is
// verified over that tree, and only then are the fields Tiyn uses read out of
// it with strict types. The signature does not protect JSON types ("amount":
// 10000 and "amount":"10000" sign alike, docs/protocol.md §1), so the types are
// checked here. Unknown members are ignored: the platform may add fields.

// Request types of the requests endpoint.
const (
	TypeVerify       = "verify"
	TypeCheckDeposit = "check_deposit"
)

// Bounds on identifiers and status texts taken from the wire. They are far
// above anything the platform sends and keep a hostile body from putting
// megabytes into an index key or a log line.
const (
	MaxPaymentIDLen   = 128 // payment.id: Tiyn's own payment ids are ~30 bytes
	MaxOperationIDLen = 64  // operation.id: an int64 has 19 digits
	MaxStatusLen      = 64  // payment.status, operation.status, operation.type
	MaxWireTextLen    = 256 // any other string Tiyn reads (customer_id is bounded by the domain)
)

// ErrInvalidField is wrapped by every *FieldError: a field Tiyn needs is
// missing, has the wrong JSON type or an unacceptable value.
var ErrInvalidField = errors.New("invalid field")

// FieldError names the offending field (a dotted path such as
// "payment.sum.amount") and says what is wrong with it. Its message is safe
// to send back to the platform and to log: it echoes at most a short
// prefix of the offending value.
type FieldError struct {
	Field  string
	Reason string
}

// Error reads as a sentence about the field, e.g. "amount must be at least 1, got 0".
func (e *FieldError) Error() string { return e.Field + " " + e.Reason }

// Unwrap makes errors.Is(err, ErrInvalidField) work.
func (e *FieldError) Unwrap() error { return ErrInvalidField }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Request is the typed content of a verify or check_deposit request.
type Request struct {
	Type       string // TypeVerify or TypeCheckDeposit
	ProjectID  string // canonical decimal text
	CustomerID string // non-empty
	// check_deposit only:
	AmountMinor   int64  // > 0, minor units
	Currency      string // three letters A-Z
	PaymentMethod string // non-empty
}

// DecodeRequest decodes a request body (signature.Decode) and reads its
// typed fields (ParseRequest). It does not verify the signature.
func DecodeRequest(body []byte) (Request, error) {
	doc, err := signature.Decode(body)
	if err != nil {
		return Request{}, err
	}
	return ParseRequest(doc)
}

// ParseRequest reads a decoded request: project_id (see ProjectIDOf), type
// ("verify" or "check_deposit"), customer_id (a string: customer ids are
// text, so a JSON number is refused rather than guessed at), and for
// check_deposit amount (a JSON integer > 0 — 100.5, 1e2, "100", -5 and 0 are
// refused), currency (an ISO 4217 alpha-3 string) and payment_method (a
// string). Strings holding control characters are refused. Errors are
// *FieldError.
func ParseRequest(doc map[string]any) (Request, error) {
	var r Request
	var err error
	if r.ProjectID, err = ProjectIDOf(doc); err != nil {
		return Request{}, err
	}
	if r.Type, err = stringField(doc, "", "type", MaxWireTextLen, true); err != nil {
		return Request{}, err
	}
	switch r.Type {
	case TypeVerify, TypeCheckDeposit:
	default:
		return Request{}, fieldErr("type", "%q is not a known request type (want verify or check_deposit)", truncateText(r.Type, 32))
	}
	if r.CustomerID, err = stringField(doc, "", "customer_id", MaxWireTextLen, true); err != nil {
		return Request{}, err
	}
	if r.Type == TypeVerify {
		return r, nil
	}
	// Any integer: a zero or negative amount is answered by the limits
	// check, which states them in KZT (not "at least 1" in tiyn).
	if r.AmountMinor, err = integerField(doc, "", "amount", math.MinInt64); err != nil {
		return Request{}, err
	}
	if r.Currency, err = currencyField(doc, "", "currency"); err != nil {
		return Request{}, err
	}
	if r.PaymentMethod, err = stringField(doc, "", "payment_method", MaxWireTextLen, true); err != nil {
		return Request{}, err
	}
	return r, nil
}

// ProjectIDOf reads the top-level project_id and returns its canonical
// decimal text. It accepts a JSON integer (what the platform's examples show)
// and also a string of digits, because PHP clients often send numbers as
// strings and the signature signs both alike; either way the value must be a
// positive int64 without sign, fraction, exponent or leading zeros, so one
// project has exactly one textual form. Errors are *FieldError.
func ProjectIDOf(doc map[string]any) (string, error) {
	v, ok := doc["project_id"]
	if !ok || v == nil {
		return "", fieldErr("project_id", "is missing")
	}
	var text string
	switch x := v.(type) {
	case json.Number:
		text = string(x)
	case string:
		text = x
	default:
		return "", fieldErr("project_id", "must be an integer, got %s", jsonType(v))
	}
	id, ok := CanonicalProjectID(text)
	if !ok {
		return "", fieldErr("project_id", "must be a positive integer, got %q", truncateText(text, 24))
	}
	return id, nil
}

// Callback is the typed content of a payment callback: the fields Tiyn uses.
type Callback struct {
	ProjectID       string // canonical decimal text
	PaymentID       string // payment.id: the payment_id Tiyn answered to check_deposit
	PaymentStatus   string // payment.status
	PaymentMethod   string // payment.method, "" when absent
	AmountMinor     int64  // payment.sum.amount, >= 0
	Currency        string // payment.sum.currency as sent, "" when absent: whether Tiyn knows it is the caller's business
	OperationID     string // operation.id as text (an integer or a string on the wire)
	OperationType   string // operation.type, "" when absent
	OperationStatus string // operation.status
}

// DecodeCallback decodes a callback body (signature.Decode) and reads its
// typed fields (ParseCallback). It does not verify the signature.
func DecodeCallback(body []byte) (Callback, error) {
	doc, err := signature.Decode(body)
	if err != nil {
		return Callback{}, err
	}
	return ParseCallback(doc)
}

// ParseCallback reads a decoded callback. Required: project_id (as in
// ProjectIDOf), payment.id (a non-empty string), payment.status (string),
// payment.sum.amount (a JSON integer >= 0), operation.id (a non-negative
// JSON integer or a non-empty string, kept as text: it exceeds 2^53),
// operation.status (string). Optional, but typed when present:
// payment.sum.currency, payment.method and operation.type (strings: a
// currency or method that differs from the deposit's, or is missing, is a
// mismatch the ledger decides on, not a reason to lose the callback). null
// counts as absent; a string holding a control character is refused.
// Errors are *FieldError.
func ParseCallback(doc map[string]any) (Callback, error) {
	c, err := parsePayment(doc)
	if err != nil {
		return Callback{}, err
	}
	op, err := objectField(doc, "", "operation")
	if err != nil {
		return Callback{}, err
	}
	if err := parseOperation(op, "operation.", &c); err != nil {
		return Callback{}, err
	}
	return c, nil
}

// parsePayment reads a callback's project_id and payment (ParseCallback).
func parsePayment(doc map[string]any) (Callback, error) {
	var c Callback
	var err error
	if c.ProjectID, err = ProjectIDOf(doc); err != nil {
		return Callback{}, err
	}
	payment, err := objectField(doc, "", "payment")
	if err != nil {
		return Callback{}, err
	}
	if c.PaymentID, err = stringField(payment, "payment.", "id", MaxPaymentIDLen, true); err != nil {
		return Callback{}, err
	}
	if c.PaymentStatus, err = stringField(payment, "payment.", "status", MaxStatusLen, true); err != nil {
		return Callback{}, err
	}
	if c.PaymentMethod, err = stringField(payment, "payment.", "method", MaxWireTextLen, false); err != nil {
		return Callback{}, err
	}
	sum, err := objectField(payment, "payment.", "sum")
	if err != nil {
		return Callback{}, err
	}
	if c.AmountMinor, err = integerField(sum, "payment.sum.", "amount", 0); err != nil {
		return Callback{}, err
	}
	if c.Currency, err = stringField(sum, "payment.sum.", "currency", MaxWireTextLen, false); err != nil {
		return Callback{}, err
	}
	return c, nil
}

// parseOperation reads an operation's id, type and status into c; prefix
// names it in errors ("operation." in a callback).
func parseOperation(op map[string]any, prefix string, c *Callback) error {
	var err error
	if c.OperationID, err = operationID(op, prefix+"id"); err != nil {
		return err
	}
	if c.OperationType, err = stringField(op, prefix, "type", MaxStatusLen, false); err != nil {
		return err
	}
	if c.OperationStatus, err = stringField(op, prefix, "status", MaxStatusLen, true); err != nil {
		return err
	}
	return nil
}

// PeekCallback reads what it can of a callback ParseCallback refused, for
// the record: payment.id, operation.id, payment.status and payment.method,
// each only when it is a string (or, for operation.id, an integer) that
// ParseCallback would accept, "" otherwise.
func PeekCallback(doc map[string]any) (paymentID, opID, status, method string) {
	payment, _ := doc["payment"].(map[string]any)
	if payment != nil {
		paymentID, _ = stringField(payment, "payment.", "id", MaxPaymentIDLen, false)
		status, _ = stringField(payment, "payment.", "status", MaxStatusLen, false)
		method, _ = stringField(payment, "payment.", "method", MaxWireTextLen, false)
	}
	if op, _ := doc["operation"].(map[string]any); op != nil {
		opID, _ = operationID(op, "operation.id")
	}
	return paymentID, opID, status, method
}

func operationID(op map[string]any, field string) (string, error) {
	v, ok := op["id"]
	if !ok || v == nil {
		return "", fieldErr(field, "is missing")
	}
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if !isDigits(s) {
			return "", fieldErr(field, "must be a non-negative integer, got %s", truncateText(s, 24))
		}
		if len(s) > MaxOperationIDLen {
			return "", fieldErr(field, "is longer than %d digits", MaxOperationIDLen)
		}
		return s, nil
	case string:
		if x == "" {
			return "", fieldErr(field, "is empty")
		}
		if len(x) > MaxOperationIDLen {
			return "", fieldErr(field, "is longer than %d bytes", MaxOperationIDLen)
		}
		if hasControl(x) {
			return "", fieldErr(field, "contains a control character")
		}
		return x, nil
	}
	return "", fieldErr(field, "must be an integer or a string, got %s", jsonType(v))
}

// objectField returns the JSON object m[key] (required).
func objectField(m map[string]any, prefix, key string) (map[string]any, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return nil, fieldErr(prefix+key, "is missing")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fieldErr(prefix+key, "must be an object, got %s", jsonType(v))
	}
	return obj, nil
}

// stringField returns the JSON string m[key]. A required string must be
// present and non-empty; an optional one may be absent or null ("").
func stringField(m map[string]any, prefix, key string, maxLen int, required bool) (string, error) {
	v, ok := m[key]
	if !ok || v == nil {
		if required {
			return "", fieldErr(prefix+key, "is missing")
		}
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fieldErr(prefix+key, "must be a string, got %s", jsonType(v))
	}
	if required && s == "" {
		return "", fieldErr(prefix+key, "is empty")
	}
	if len(s) > maxLen {
		return "", fieldErr(prefix+key, "is longer than %d bytes", maxLen)
	}
	if hasControl(s) {
		return "", fieldErr(prefix+key, "contains a control character")
	}
	return s, nil
}

// hasControl reports whether s holds a control character. No identifier,
// status or code Tiyn reads from the wire legitimately has one, and a NUL
// would be stored by one database and refused or altered by another, so
// the same callback must be refused at the edge on every store.
func hasControl(s string) bool { return strings.ContainsFunc(s, unicode.IsControl) }

// integerField returns the JSON integer m[key], at least min. Only a JSON
// number whose literal is plain digits qualifies: 100.5, 1e2, 100.0, "100",
// negative numbers and values beyond int64 are refused, because amounts are
// integer minor units and anything else means the sender got the unit wrong.
func integerField(m map[string]any, prefix, key string, min int64) (int64, error) {
	field := prefix + key
	v, ok := m[key]
	if !ok || v == nil {
		return 0, fieldErr(field, "is missing")
	}
	n, ok := v.(json.Number)
	if !ok {
		return 0, fieldErr(field, "must be an integer number of minor units, got %s", jsonType(v))
	}
	s := string(n)
	if !isDigits(strings.TrimPrefix(s, "-")) {
		return 0, fieldErr(field, "must be an integer number of minor units, got %s", truncateText(s, 24))
	}
	i, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fieldErr(field, "is out of range")
	}
	if i < min {
		if min == 0 {
			return 0, fieldErr(field, "must not be negative, got %d", i)
		}
		return 0, fieldErr(field, "must be at least %d, got %d", min, i)
	}
	return i, nil
}

// currencyField returns m[key] as an ISO 4217 alpha-3 code (three letters
// A-Z). Whether Tiyn knows the currency is decided by the caller.
func currencyField(m map[string]any, prefix, key string) (string, error) {
	s, err := stringField(m, prefix, key, MaxWireTextLen, true)
	if err != nil {
		return "", err
	}
	if len(s) != 3 || !isUpper(s) {
		return "", fieldErr(prefix+key, "must be an ISO 4217 alpha-3 code, got %q", truncateText(s, 8))
	}
	return s, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// jsonType names the JSON type of a decoded value, for error messages.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}
