package platformsim

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/domain"
)

// What the simulator plays: the kassa24 method of the Monetix adapter,
// whose wire types, builders and signer (monetix.BodyWriter) write every
// body it sends.
var (
	simMethod   = monetix.Kassa24
	simCurrency = simMethod.Currency.Code()
)

// REST paths the simulator uses besides the Monetix endpoints.
const (
	accountsPath = "/v1/accounts"
	depositsPath = "/v1/deposits/"
)

// cbKind is the status a callback reports.
type cbKind uint8

const (
	cbProcessing cbKind = iota
	cbDecline
	cbSuccess
)

// wire values of each kind: payment.status (= operation.status),
// operation.code, operation.message.
var cbWire = [...]struct{ status, code, message string }{
	cbProcessing: {monetix.StatusProcessing, "0", "Processing"},
	cbDecline:    {monetix.StatusDecline, "20000", "General decline"},
	cbSuccess:    {monetix.StatusSuccess, "0", "Success"},
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
	created     time.Time
}

// signer writes a worker's signed bodies with the adapter's BodyWriter;
// runTag makes operation.request_id unique per run. Not safe for
// concurrent use: each worker has its own.
type signer struct {
	bw     *monetix.BodyWriter
	runTag string
}

func newSigner(secret []byte, projectID int64, runTag string) (*signer, error) {
	bw, err := monetix.NewBodyWriter(secret, strconv.FormatInt(projectID, 10))
	if err != nil {
		return nil, err
	}
	return &signer{bw: bw, runTag: runTag}, nil
}

// verifyBody appends a signed verify request to dst.
func (s *signer) verifyBody(dst []byte, customerID string) []byte {
	return s.bw.AppendVerify(dst, customerID)
}

// checkDepositBody appends a signed check_deposit request to dst.
func (s *signer) checkDepositBody(dst []byte, customerID string, amount int64) []byte {
	return s.bw.AppendCheckDeposit(dst, customerID, amount, simCurrency, simMethod.Name)
}

// callbackBody appends a signed callback shaped like the method page's
// example (docs/protocol.md §2 V3) to dst.
func (s *signer) callbackBody(dst []byte, p cbParams) []byte {
	w := cbWire[p.kind]
	return s.bw.AppendCallback(dst, monetix.CallbackParams{
		PaymentID: p.paymentID, PaymentStatus: w.status, Method: simMethod.Name,
		AmountMinor: p.amount, Currency: simCurrency, CustomerID: p.customerID,
		OperationID: p.operationID, ProviderPayment: p.providerPay,
		RequestID: s.runTag + "-" + strconv.FormatInt(p.operationID, 10),
		Code:      w.code, Message: w.message, CreatedDate: p.created,
	})
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

// parseAnswer reads an answer; wantPaymentID says whether payment_id is
// needed (check_deposit).
func parseAnswer(b []byte, wantPaymentID bool) (monetix.Answer, bool) {
	if code, ok := scanInt(b, "code"); ok && code == int64(int(code)) {
		if code != monetix.CodeOK || !wantPaymentID {
			return monetix.Answer{Code: int(code)}, true
		}
		if pid, ok := scanRawString(b, "payment_id"); ok {
			return monetix.Answer{Code: int(code), PaymentID: string(pid)}, true
		}
	}
	var a monetix.Answer
	if err := json.Unmarshal(b, &a); err != nil {
		return monetix.Answer{}, false
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

var effectNames = [numEffects]string{domain.EffectCredit.String(), domain.EffectDecline.String(), domain.EffectReplay.String(),
	domain.EffectRecord.String(), domain.EffectException.String(), "other"}

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
