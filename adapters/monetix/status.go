package monetix

import (
	"strings"

	"github.com/tiyn/tiyn/domain"
)

// Payment statuses (payment.status) as the platform spells them, grouped by
// what they mean for a deposit (PROTOCOL.md §3). Both spellings of
// canceled/cancelled occur across the vendor's SDKs.
var (
	declineStatuses = map[string]bool{
		"decline": true, "error": true, "internal error": true, "external error": true, "expired": true,
	}
	reversalStatuses = map[string]bool{
		"refunded": true, "partially refunded": true, "reversed": true, "partially reversed": true,
		"canceled": true, "cancelled": true, "chargeback": true,
	}
)

// Wire values the success rule looks at.
const (
	statusSuccess = "success"
	operationSale = "sale"
)

// Classify maps a callback to the domain's outcome kind and the status text
// kept on record.
//
//   - payment.status "success" is a success only when the callback's
//     operation is the successful sale that collected the money
//     (operation.status "success" and operation.type "sale", or no type
//     given): PROTOCOL.md §3 credits on exactly that. A callback describes
//     the payment and its *last* operation, so "success" with an operation
//     that is still processing, failed or is of another type (a later
//     refund attempt, say) is not evidence that this operation collected the
//     cash. It is recorded as intermediate, which changes nothing; the
//     callback for the completed sale (or reconciliation) settles the
//     deposit. Crediting on partial evidence could not be undone, waiting can.
//   - decline, error, internal error, external error, expired: a decline.
//   - refunded, partially refunded, reversed, partially reversed,
//     canceled/cancelled, chargeback: a reversal (an operator decides).
//   - anything else (processing, awaiting …, unknown statuses): intermediate,
//     recorded only.
//
// Statuses are compared case-insensitively after trimming spaces. The status
// text on record is payment.status, followed by the operation's type and
// status in parentheses when a success was downgraded, so the inbox shows why.
func Classify(c Callback) (domain.OutcomeKind, string) {
	status := strings.ToLower(strings.TrimSpace(c.PaymentStatus))
	switch {
	case status == statusSuccess:
		opStatus := strings.ToLower(strings.TrimSpace(c.OperationStatus))
		opType := strings.ToLower(strings.TrimSpace(c.OperationType))
		if opStatus == statusSuccess && (opType == "" || opType == operationSale) {
			return domain.OutcomeSuccess, c.PaymentStatus
		}
		return domain.OutcomeIntermediate, c.PaymentStatus + " (operation " + strings.TrimSpace(c.OperationType+" "+c.OperationStatus) + ")"
	case declineStatuses[status]:
		return domain.OutcomeDecline, c.PaymentStatus
	case reversalStatuses[status]:
		return domain.OutcomeReversal, c.PaymentStatus
	}
	return domain.OutcomeIntermediate, c.PaymentStatus
}
