package ports

import (
	"context"
	"time"

	"github.com/tiyn/tiyn/domain"
)

// OperationSource is the driven port to a platform's own record of a
// business day: every operation it completed within the day. The Monetix
// adapter implements it twice, with a CSV report (a Dashboard export or a
// finance team's file) and with the Data API. A reconciliation run reads
// one source from start to end; nothing is held in memory but the row in
// hand, so a day of any size streams.
type OperationSource interface {
	// Kind names the source as a run records it: "csv" or "data_api".
	Kind() string
	// Authenticated reports whether the source is the platform's own,
	// authenticated word (the Data API, signed or over HTTPS to the
	// platform's host) rather than a file anyone with an operator token can
	// write (a CSV report). A row of an unauthenticated source may heal a
	// deposit Tiyn issued, within the deposit's own amount, but an
	// exception it raises justifies no operator credit, and it never stands
	// in for the platform's callback about the same operation.
	Authenticated() bool
	// Operations streams the day's operations, in the source's order, to
	// row. A row that cannot be read is passed to bad (with its line and
	// column) and the others go on. An error returned by row or bad stops
	// the stream and is returned as is. Any other error means the source
	// could not be read to its end (unreachable, I/O, a limit): the caller
	// must not treat what it saw as the whole day.
	//
	// The summary's Hash covers the input as read (every byte of a file,
	// every page of the API), so the same input gives the same hash and a
	// rerun can say "unchanged".
	Operations(ctx context.Context, day domain.BusinessDay, row func(SourceRow) error, bad func(RowError) error) (SourceSummary, error)
}

// SourceRow is one platform operation, as the source says it.
type SourceRow struct {
	// Line is the row's position in the source: the CSV line number (the
	// header is line 1), or the Data API item's ordinal from 1.
	Line int
	// ProjectID and PaymentID identify the payment (the id Tiyn minted in
	// check_deposit); OperationID the platform's operation.
	ProjectID   string
	PaymentID   string
	OperationID string
	// Type and Status exactly as the platform spells them ("sale",
	// "success"); nothing is case-folded, as for a callback.
	Type   string
	Status string
	// Amount is the operation's amount in its currency (an unlisted code is
	// kept as text: domain.UnlistedCurrency).
	Amount domain.Amount
	// CompletedAt is when the platform completed the operation; it decides
	// the operation's day.
	CompletedAt time.Time
	// Raw is the row as read (the CSV line, the API item's JSON), kept as
	// the evidence of a heal or a break.
	Raw string
}

// RowError is a row that could not be read.
type RowError struct {
	Line    int
	Column  string // the column (header name) at fault, "" for the row
	Message string
}

// SourceSummary is what a source says about the input once read.
type SourceSummary struct {
	// Hash is the lower-case hex SHA-256 of the input as read.
	Hash string
	// Rows counts the rows read, good and bad; Bad the ones passed to bad.
	Rows int
	Bad  int
}
