package monetix

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// What the two reconciliation sources (the CSV report, report.go, and the
// Data API, dataapi.go) share: the fields of one platform operation, how
// their text is read, and the one rule that an operation outside the day
// asked for is reported, not dropped.

// Source kinds, as a reconciliation run records them (ports.OperationSource
// Kind).
const (
	SourceKindCSV     = "csv"
	SourceKindDataAPI = "data_api"
)

// OperationTimeLayout is the platform's time format in the Data API and in
// a report: YYYY-MM-DD hh:mm:ss, in the business time zone (no offset is
// written; the zone is the one asked for, or the day's).
const OperationTimeLayout = time.DateTime

// The fields of an operation, under their report column names (the default
// header, in its order).
const (
	FieldProjectID       = "project_id"
	FieldPaymentID       = "payment_id"
	FieldOperationID     = "operation_id"
	FieldOperationType   = "operation_type"
	FieldOperationStatus = "operation_status"
	FieldAmount          = "amount"
	FieldCurrency        = "currency"
	FieldCompletedAt     = "completed_at"
)

// operationFields is the default header, in its order; the index of a
// field in it is its index in an opText.
var operationFields = [...]string{
	FieldProjectID, FieldPaymentID, FieldOperationID, FieldOperationType,
	FieldOperationStatus, FieldAmount, FieldCurrency, FieldCompletedAt,
}

const (
	fProject = iota
	fPayment
	fOperation
	fType
	fStatus
	fAmount
	fCurrency
	fCompleted
	numFields
)

// MaxCurrencyTextLen bounds a currency code read from a source: ISO codes
// have three letters; a longer text is kept (UnlistedCurrency) up to this.
const MaxCurrencyTextLen = 16

// AmountUnits says how a source writes amounts.
type AmountUnits uint8

// The units of an amount's text.
const (
	// AmountMajor: decimal text in the currency's major units ("100.00"
	// KZT), at most as many decimals as the currency has.
	AmountMajor AmountUnits = iota
	// AmountMinor: an integer of minor units ("10000" tiyn), as the Gate
	// writes amounts.
	AmountMinor
)

// String is "major" or "minor", the text ParseAmountUnits reads.
func (u AmountUnits) String() string {
	if u == AmountMinor {
		return "minor"
	}
	return "major"
}

// ParseAmountUnits reads "major" or "minor" (tiyn reconcile
// --amount-units).
func ParseAmountUnits(s string) (AmountUnits, error) {
	switch s {
	case "major":
		return AmountMajor, nil
	case "minor":
		return AmountMinor, nil
	}
	return 0, fmt.Errorf("amount units %q: want major (100.00) or minor (10000)", truncateText(s, 32))
}

// opText is one operation as text, however its source spells it, indexed
// by the f* constants.
type opText [numFields]string

// opFault is why an operation's text is not an operation: the field (by
// index) and what is wrong with it.
type opFault struct {
	field   int
	message string
}

// read checks every field and builds the row; an operation completed
// outside day is a fault of its completion time. Texts are taken exactly
// (nothing is trimmed or case-folded here).
func (t *opText) read(units AmountUnits, day domain.BusinessDay) (ports.SourceRow, *opFault) {
	bad := func(field int, format string, args ...any) (ports.SourceRow, *opFault) {
		return ports.SourceRow{}, &opFault{field: field, message: fmt.Sprintf(format, args...)}
	}
	limits := [numFields]int{
		fProject: MaxProjectIDLen, fPayment: MaxPaymentIDLen, fOperation: MaxOperationIDLen,
		fType: MaxStatusLen, fStatus: MaxStatusLen, fAmount: domain.MaxAmountTextLen,
		fCurrency: MaxCurrencyTextLen, fCompleted: MaxWireTextLen,
	}
	for i, s := range t {
		switch {
		case s == "":
			return bad(i, "is empty")
		case len(s) > limits[i]:
			return bad(i, "is longer than %d bytes", limits[i])
		case !utf8.ValidString(s):
			return bad(i, "is not valid UTF-8")
		case hasControl(s):
			return bad(i, "contains a control character")
		}
	}
	if _, ok := CanonicalProjectID(t[fProject]); !ok {
		return bad(fProject, "%q is not a project id (digits, no leading zero)", t[fProject])
	}
	currency := domain.CurrencyOf(t[fCurrency])
	amount, err := readAmount(t[fAmount], currency, units)
	if err != nil {
		return bad(fAmount, "%q: %s", t[fAmount], err)
	}
	at, err := time.ParseInLocation(OperationTimeLayout, t[fCompleted], day.Location())
	// Parsing is lenient (one-digit hours, fractions of a second): the
	// text must be what the time formats as.
	var formatted [32]byte
	if err != nil || string(at.AppendFormat(formatted[:0], OperationTimeLayout)) != t[fCompleted] {
		return bad(fCompleted, "%q is not YYYY-MM-DD hh:mm:ss", t[fCompleted])
	}
	if !day.Contains(at) {
		return bad(fCompleted, "%s is outside %s", t[fCompleted], day)
	}
	return ports.SourceRow{
		ProjectID: t[fProject], PaymentID: t[fPayment], OperationID: t[fOperation],
		Type: t[fType], Status: t[fStatus], Amount: amount, CompletedAt: at,
	}, nil
}

// readAmount reads an amount's text in units. In major units a listed
// currency's amount is exact in its exponent (domain.ParseAmount); an
// unlisted currency's minor units are unknown, so its amount is kept as
// the integer it is ("100" or "100.00" is 100 of it; "100.50" cannot be
// kept exactly and is refused).
func readAmount(s string, currency domain.Currency, units AmountUnits) (domain.Amount, error) {
	if units == AmountMinor {
		if !isInteger(s) {
			return domain.Amount{}, fmt.Errorf("not an integer of minor units")
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return domain.Amount{}, fmt.Errorf("out of range")
		}
		return domain.NewAmount(n, currency), nil
	}
	if currency.Known() {
		a, err := domain.ParseAmount(s, currency)
		if err != nil {
			var ae *domain.AmountError
			if errors.As(err, &ae) {
				return domain.Amount{}, fmt.Errorf("%s", ae.Reason)
			}
			return domain.Amount{}, err
		}
		return a, nil
	}
	if !isDecimal(s) {
		return domain.Amount{}, fmt.Errorf("not a decimal number")
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return domain.Amount{}, fmt.Errorf("not a decimal number")
	}
	if !d.IsInteger() {
		return domain.Amount{}, fmt.Errorf("currency %q is not listed, so only a whole amount can be kept exactly", currency.Code())
	}
	if b := d.BigInt(); b.IsInt64() {
		return domain.NewAmount(b.Int64(), currency), nil
	}
	return domain.Amount{}, fmt.Errorf("out of range")
}

// isInteger: -?[0-9]+.
func isInteger(s string) bool {
	s = strings.TrimPrefix(s, "-")
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

// isDecimal: -?[0-9]+(\.[0-9]+)?.
func isDecimal(s string) bool {
	whole, frac, found := strings.Cut(s, ".")
	return isInteger(whole) && (!found || (frac != "" && isInteger(frac) && frac[0] != '-'))
}
