package app

import (
	"context"
	"sync"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// depositAccounts remembers which account each recent deposit belongs to,
// so that settling a callback can name its write key (ports.WithWriteKey)
// without a read. A deposit's account never changes, so an entry can never
// be stale; a miss costs one read. Two generations bound it: when the
// current one is full it becomes the previous one and the oldest is
// dropped, so at most 2×depositAccountsGen entries are kept (about 10 MB).
type depositAccounts struct {
	mu        sync.Mutex
	cur, prev map[string]string
}

// depositAccountsGen is one generation's size: the payments of several
// minutes at full speed, which covers the platform's usual delay between
// check_deposit and the callback.
const depositAccountsGen = 50_000

func (c *depositAccounts) get(paymentID string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.cur[paymentID]; ok {
		return a, true
	}
	a, ok := c.prev[paymentID]
	return a, ok
}

func (c *depositAccounts) put(paymentID, accountID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || len(c.cur) >= depositAccountsGen {
		c.prev, c.cur = c.cur, make(map[string]string, 1024)
	}
	c.cur[paymentID] = accountID
}

// settleWriteKey keys a settlement by the account it credits, so that a
// store running writes side by side (ports.WriteKeyer) never runs two
// settlements of one account at once. The account comes from the cache
// above, else from a read, made only for such a store; a deposit not found
// (yet) is keyed by its payment id.
func (s *Service) settleWriteKey(ctx context.Context, cmd ports.SettleDeposit) context.Context {
	if !ports.WantsWriteKeys(s.store) {
		return ctx
	}
	key := depositKey(cmd.Channel, cmd.PaymentID)
	if acc, ok := s.depositAccounts.get(key); ok {
		return ports.WithWriteKey(ctx, acc)
	}
	if dep, err := s.store.DepositByPaymentID(ctx, cmd.Channel, cmd.PaymentID); err == nil {
		s.depositAccounts.put(key, dep.AccountID)
		return ports.WithWriteKey(ctx, dep.AccountID)
	}
	return ports.WithWriteKey(ctx, "payment:"+cmd.PaymentID)
}

// depositKey names a deposit as the store's unique key does: a payment id
// is unique within a provider's project.
func depositKey(ch domain.Channel, paymentID string) string {
	return ch.Provider + "\x00" + ch.Project + "\x00" + paymentID
}
