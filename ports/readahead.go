package ports

import (
	"context"

	"github.com/tiyn/tiyn/domain"
)

// Read-ahead lets a store read what a whole group-commit batch will read
// first, with one statement, before it runs any of the batch's writes.
//
// A settlement's first read is Tx.SettleView, a new deposit's is
// Tx.AccountByCustomer. A store that runs many
// Update calls in one transaction can read the views of every settlement
// in the batch at once instead of making one round trip per settlement. A
// caller names the view its Update will read with WithSettleReadAhead (the
// account, WithAccountReadAhead). The store answers from what it read
// ahead only while nothing in the transaction has written the rows
// involved since, and otherwise reads again, so the answer is the one a read at that moment would give under
// the transaction's isolation. Like a write key it is a hint: a store may
// ignore it, and a key no Update reads costs one row of a read.

// SettleKey names one Tx.SettleView: its arguments.
type SettleKey struct {
	Channel   domain.Channel
	PaymentID string
	DedupeKey string
}

type readAheadCtx struct{}

// WithSettleReadAhead returns ctx naming, in addition to those ctx already
// names, the settle views the Update it is passed to will read.
func WithSettleReadAhead(ctx context.Context, keys ...SettleKey) context.Context {
	if len(keys) == 0 {
		return ctx
	}
	prev := SettleReadAhead(ctx)
	all := make([]SettleKey, 0, len(prev)+len(keys))
	return context.WithValue(ctx, readAheadCtx{}, append(append(all, prev...), keys...))
}

// SettleReadAhead returns the settle views ctx names (see
// WithSettleReadAhead). The slice must not be modified.
func SettleReadAhead(ctx context.Context) []SettleKey {
	k, _ := ctx.Value(readAheadCtx{}).([]SettleKey)
	return k
}

// AccountKey names one Tx.AccountByCustomer: its arguments.
type AccountKey struct {
	CustomerID string
	Currency   domain.Currency
}

type accountReadAheadCtx struct{}

// WithAccountReadAhead returns ctx naming, in addition to those ctx
// already names, the accounts the Update it is passed to will read by
// customer.
func WithAccountReadAhead(ctx context.Context, keys ...AccountKey) context.Context {
	if len(keys) == 0 {
		return ctx
	}
	prev := AccountReadAhead(ctx)
	all := make([]AccountKey, 0, len(prev)+len(keys))
	return context.WithValue(ctx, accountReadAheadCtx{}, append(append(all, prev...), keys...))
}

// AccountReadAhead returns the accounts ctx names (see
// WithAccountReadAhead). The slice must not be modified.
func AccountReadAhead(ctx context.Context) []AccountKey {
	k, _ := ctx.Value(accountReadAheadCtx{}).([]AccountKey)
	return k
}
