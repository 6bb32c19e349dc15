package export

import (
	"strconv"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// ReconItems is a reconciliation run's items as CSV, the format of
// GET /v1/reconciliations/{id}/items.csv: the JSON item's fields, the two
// amounts spread over their columns.
//
//	seq                 the item's order in the run (source rows first, in source order)
//	class               matched, healed, amount_mismatch, … (ports.ReconClass)
//	break               true for a class that is a break (an exception was raised or found)
//	line                the source's line (CSV line, Data API ordinal), empty for a ledger-only deposit
//	project_id … operation_status  as the source says them
//	completed_at        the platform's completion time, RFC 3339 UTC
//	platform_amount_minor, platform_amount, platform_currency  the operation's amount (empty: none)
//	ledger_amount_minor, ledger_amount, ledger_currency        the deposit's amount (empty: none)
//	deposit_id, deposit_status  the deposit and its status after the run
//	exception_id        the exception a break raised or found
//	note                a sentence on the class
//
// The row as read (raw) is in the JSON items only: it is evidence, often
// a whole CSV line or JSON object, and would make the file unreadable.
var ReconItems = Table[ports.ReconItem]{
	Header: []string{
		"seq", "class", "break", "line", "project_id", "payment_id", "operation_id", "operation_type",
		"operation_status", "completed_at", "platform_amount_minor", "platform_amount", "platform_currency",
		"ledger_amount_minor", "ledger_amount", "ledger_currency", "deposit_id", "deposit_status", "exception_id", "note",
	},
	Record: func(it ports.ReconItem) []string {
		line := ""
		if it.Line > 0 {
			line = strconv.Itoa(it.Line)
		}
		pm, pa, pc := amountCells(it.Platform)
		lm, la, lc := amountCells(it.Ledger)
		return []string{
			strconv.FormatInt(it.Seq, 10), it.Class.String(), strconv.FormatBool(it.Class.IsBreak()), line,
			Text(it.ProjectID), Text(it.PaymentID), Text(it.OperationID), Text(it.OperationType),
			Text(it.OperationStatus), FormatTime(it.CompletedAt), pm, pa, Text(pc), lm, la, Text(lc),
			it.DepositID, it.DepositStatus, it.ExceptionID, Text(it.Note),
		}
	},
}

// amountCells are an amount's minor, decimal and currency cells, empty
// when the amount has no currency (the side has none).
func amountCells(a domain.Amount) (minor, text, currency string) {
	if a.Currency().IsZero() {
		return "", "", ""
	}
	return strconv.FormatInt(a.Minor(), 10), a.String(), a.Currency().Code()
}

// DayStatement is a closed business day's statement as CSV, the format of
// GET /v1/days/{date}.csv: one row per account, customer and system
// (clearing, revenue) alike, by account id.
//
//	day                       the business day, YYYY-MM-DD
//	account_id                the account
//	system                    true for a system account (clearing, revenue)
//	currency                  ISO 4217 code
//	opening_minor, opening    the balance at the day's start (minor units, and decimal)
//	credits_minor, credits    the sum of the day's postings that added to it
//	debits_minor, debits      the sum of those that took from it, as a positive number
//	closing_minor, closing    the balance at the day's end: opening + credits − debits
//
// A system account's balance is the negative of what it paid out: the
// clearing account's closing balance is minus the customers' credits, so
// every currency's closings sum to zero.
func DayStatement(day domain.BusinessDay) Table[ports.DayBalance] {
	return Table[ports.DayBalance]{
		Header: []string{
			"day", "account_id", "system", "currency", "opening_minor", "opening", "credits_minor", "credits",
			"debits_minor", "debits", "closing_minor", "closing",
		},
		Record: func(b ports.DayBalance) []string {
			cell := func(minor int64) (string, string) {
				return strconv.FormatInt(minor, 10), domain.NewAmount(minor, b.Currency).String()
			}
			om, o := cell(b.Opening)
			cm, c := cell(b.Credits)
			dm, d := cell(b.Debits)
			clm, cl := cell(b.Closing)
			return []string{day.String(), b.AccountID, strconv.FormatBool(b.System), b.Currency.Code(),
				om, o, cm, c, dm, d, clm, cl}
		},
	}
}
