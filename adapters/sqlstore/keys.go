package sqlstore

import (
	"context"
	"sync"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// Write keys: which group-commit partition a Batch call runs in
// (batch.go). A call names the key of the rows it locks (ports.Write.Key),
// or, for a settlement, the settle view it reads first: the row it locks is
// then the account of that deposit, which the store looks up here.
//
// depositKeys remembers the account of each recent deposit, so that
// settling a callback finds its key without a read: a deposit's account
// never changes, so an entry is never stale, and a miss costs one read
// (only for a store that partitions). Every deposit inserted through a
// transaction is noted (a transaction rolled back leaves a harmless entry:
// its payment id is never reused). Two generations bound it: when the
// current one is full it becomes the previous one and the oldest is
// dropped, so at most 2×depositKeysGen entries are kept (about 10 MB).
type depositKeys struct {
	mu        sync.Mutex
	cur, prev map[depositRowKey]string
}

// depositKeysGen is one generation's size: the payments of several minutes
// at full speed, which covers the platform's usual delay between
// check_deposit and the callback.
const depositKeysGen = 50_000

func (c *depositKeys) get(ch domain.Channel, paymentID string) (string, bool) {
	k := depositRowKey{ch.Provider, ch.Project, paymentID}
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.cur[k]; ok {
		return a, true
	}
	a, ok := c.prev[k]
	return a, ok
}

func (c *depositKeys) put(ch domain.Channel, paymentID, accountID string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || len(c.cur) >= depositKeysGen {
		c.prev, c.cur = c.cur, make(map[depositRowKey]string, 1024)
	}
	c.cur[depositRowKey{ch.Provider, ch.Project, paymentID}] = accountID
}

// writeKey is the key of a Batch call: w.Key, or the account of the
// deposit w.Settle names, or "" (partition 0).
func (s *Store) writeKey(ctx context.Context, w ports.Write) string {
	if w.Key != "" || len(w.Settle) == 0 {
		return w.Key
	}
	k := w.Settle[0]
	if acc, ok := s.keys.get(k.Channel, k.PaymentID); ok {
		return acc
	}
	if dep, err := s.DepositByPaymentID(ctx, k.Channel, k.PaymentID); err == nil {
		s.keys.put(k.Channel, k.PaymentID, dep.AccountID)
		return dep.AccountID
	}
	return "payment:" + k.PaymentID // not found (yet): its own key
}
