package ports

import "context"

// Write keys let a store run unrelated writes side by side.
//
// A store that groups writes into shared transactions (group commit) can
// run several such transactions at once only if no two of them lock the
// same rows: two transactions that lock rows in crossing orders deadlock.
// A write key names the rows a write will lock — the customer account it
// credits or debits — so that writes with the same key always share one
// executor and writes with different keys never wait for each other.
//
// A key is a hint for throughput, not a correctness rule: a wrong or
// missing key can at worst let two transactions deadlock, which the
// database breaks by failing one of them with ErrConflict, and ErrConflict
// is retried like any lost race.

type writeKeyCtx struct{}

// WithWriteKey returns ctx carrying the write key of the Update it is
// passed to. Use the id of the customer account whose row the write locks.
func WithWriteKey(ctx context.Context, key string) context.Context {
	if key == "" {
		return ctx
	}
	return context.WithValue(ctx, writeKeyCtx{}, key)
}

// WriteKey returns the write key ctx carries.
func WriteKey(ctx context.Context) (string, bool) {
	k, ok := ctx.Value(writeKeyCtx{}).(string)
	return k, ok
}

// WriteKeyer is implemented by stores that run writes with different keys
// side by side. WantsWriteKeys reports whether keys help this store, so a
// caller knows when a read made only to find a key is worth it.
type WriteKeyer interface {
	WantsWriteKeys() bool
}

// WantsWriteKeys reports whether s runs writes with different keys side by
// side.
func WantsWriteKeys(s Store) bool {
	k, ok := s.(WriteKeyer)
	return ok && k.WantsWriteKeys()
}
