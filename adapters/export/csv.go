package export

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// Table is one CSV format: its header row and how an item becomes a row.
type Table[T any] struct {
	Header []string
	Record func(T) []string
}

// Directions of a statement line, from the account holder's side.
const (
	DirectionCredit = "credit"
	DirectionDebit  = "debit"
)

// Direction splits a signed posting into a direction and a non-negative
// amount: a credit adds to the customer's balance, a debit takes from it.
func Direction(l ports.StatementLine) (direction string, amount domain.Amount) {
	if l.Amount.IsNegative() {
		if neg, err := l.Amount.Neg(); err == nil {
			return DirectionDebit, neg
		}
	}
	return DirectionCredit, l.Amount
}

// Statement is the account statement as CSV, the one format of both
// GET /v1/accounts/{id}/statement.csv and `tiyn statement --csv`. A row is
// the JSON statement line: the same columns, names, order and values.
//
//	seq                  posting sequence (increasing; the cursor)
//	transfer_id          the transfer the posting belongs to
//	kind                 deposit_credit, debit, exception_credit, …
//	direction            credit (adds to the balance) or debit (takes from it)
//	amount_minor         the amount in minor units, never negative
//	amount               the same as a decimal string in major units ("1500.00")
//	currency             ISO 4217 code
//	balance_after_minor  the account's balance right after the posting, minor units
//	balance_after        the same as a decimal string
//	deposit_id           the deposit credited, empty for other postings
//	payment_id           the deposit's payment id, empty for other postings
//	description          free text
//	created_at           RFC 3339 UTC with six fractional digits (TimeLayout)
//
// Sign convention: amounts are never negative; direction says which way
// the money went, so a spreadsheet sums credits and debits apart. Text
// cells that a spreadsheet would run as a formula are defused (Text).
var Statement = Table[ports.StatementLine]{
	Header: []string{
		"seq", "transfer_id", "kind", "direction", "amount_minor", "amount", "currency",
		"balance_after_minor", "balance_after", "deposit_id", "payment_id", "description", "created_at",
	},
	Record: func(l ports.StatementLine) []string {
		direction, amount := Direction(l)
		return []string{
			strconv.FormatInt(l.Seq, 10), l.TransferID, l.Kind.String(), direction,
			strconv.FormatInt(amount.Minor(), 10), amount.String(), amount.Currency().Code(),
			strconv.FormatInt(l.BalanceAfter.Minor(), 10), l.BalanceAfter.String(),
			Text(l.DepositID), Text(l.PaymentID), Text(l.Description), FormatTime(l.CreatedAt),
		}
	},
}

// Text defuses spreadsheet formula injection (OWASP "CSV injection"): text
// starting with = + - @ or a tab or carriage return gets a leading quote,
// so a description like "=HYPERLINK(…)" is shown, not run, when the export
// is opened in a spreadsheet.
func Text(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// Writer writes items of one Table as CSV (RFC 4180 with LF line ends,
// encoding/csv's defaults): the header before the first rows, each Write
// pushed through to the underlying writer so that an export streams.
type Writer[T any] struct {
	cw     *csv.Writer
	table  Table[T]
	header bool
}

// NewWriter returns a Writer of table onto w.
func NewWriter[T any](w io.Writer, table Table[T]) *Writer[T] {
	return &Writer[T]{cw: csv.NewWriter(w), table: table}
}

// Write writes the header if it has not been written yet, then one row per
// item, and flushes. Write with no items writes just the header (an empty
// export still names its columns).
func (w *Writer[T]) Write(items ...T) error {
	if !w.header {
		w.header = true
		if err := w.cw.Write(w.table.Header); err != nil {
			return err
		}
	}
	for _, item := range items {
		if err := w.cw.Write(w.table.Record(item)); err != nil {
			return err
		}
	}
	w.cw.Flush()
	return w.cw.Error()
}
