package monetix

import (
	"strconv"

	"github.com/tiyn/tiyn/domain"
)

// Payment statuses (payment.status) as the platform spells them, grouped by
// what they mean for a deposit (docs/protocol.md §3). Both spellings of
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

// Wire values the success rule looks at, and the statuses a kassa24
// payment passes through (the platform's side, client.go, uses them too).
const (
	StatusSuccess    = "success"
	StatusDecline    = "decline"
	StatusProcessing = "processing"
	OperationSale    = "sale"
)

// Classify maps a callback to the domain's outcome kind and the status text
// kept on record. Every status is compared exactly as the platform spells it
// (lower case, no spaces; docs/protocol.md §3): "SUCCESS", " success" or "Sale"
// are not the platform's words, so they are not evidence of anything.
//
//   - payment.status "success" is a success only when the callback's
//     operation is the successful sale that collected the money:
//     operation.type "sale" and operation.status "success". A callback
//     describes the payment and its *last* operation, so "success" with an
//     operation that is missing its type, still processing, failed or of
//     another type (a later refund attempt, say) is not evidence that this
//     operation collected the cash. It is recorded as intermediate, which
//     changes nothing; the callback for the completed sale (or the status
//     poller, or reconciliation) settles the deposit. Crediting on partial
//     evidence could not be undone, waiting can.
//   - decline, error, internal error, external error, expired: a decline.
//   - refunded, partially refunded, reversed, partially reversed,
//     canceled/cancelled, chargeback: a reversal (an operator decides).
//   - anything else (processing, awaiting …, unknown statuses, other
//     spellings): intermediate, recorded only.
//
// The status text on record is payment.status, followed by the operation's
// type and status in parentheses when a success was downgraded, so the
// inbox shows why.
func Classify(c Callback) (domain.OutcomeKind, string) {
	status := c.PaymentStatus
	switch {
	case status == StatusSuccess:
		if c.OperationStatus == StatusSuccess && c.OperationType == OperationSale {
			return domain.OutcomeSuccess, c.PaymentStatus
		}
		return domain.OutcomeIntermediate, c.PaymentStatus + " (operation " + strconv.Quote(c.OperationType) + " " +
			strconv.Quote(c.OperationStatus) + ")"
	case declineStatuses[status]:
		return domain.OutcomeDecline, c.PaymentStatus
	case reversalStatuses[status]:
		return domain.OutcomeReversal, c.PaymentStatus
	}
	return domain.OutcomeIntermediate, c.PaymentStatus
}
