package app

import (
	"context"
	"fmt"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// OpenDeposit opens a pending deposit for an active account and returns it
// with a new payment id, unique within the channel (the store's unique
// constraint enforces it; ids are random enough that a retry is theory).
func (s *Service) OpenDeposit(ctx context.Context, cmd ports.OpenDeposit) (domain.Deposit, error) {
	if err := validateChannel(cmd.Channel); err != nil {
		return domain.Deposit{}, err
	}
	if err := domain.ValidateCustomerID(cmd.CustomerID); err != nil {
		return domain.Deposit{}, err
	}
	if err := cmd.Limits.Validate(); err != nil {
		return domain.Deposit{}, err
	}
	if err := cmd.Limits.Check(cmd.Amount); err != nil {
		return domain.Deposit{}, err
	}
	// The other hot path (check_deposit). Opening a deposit locks no
	// account row (it only references one), so any key spreads the load;
	// the customer's keeps its writes together. Its first read is the
	// account.
	w := ports.Write{Key: "customer:" + cmd.CustomerID,
		Accounts: []ports.AccountKey{{CustomerID: cmd.CustomerID, Currency: cmd.Amount.Currency()}}}
	return retryOnConflict(ctx, func() (domain.Deposit, error) {
		var out domain.Deposit
		err := s.store.Batch(ctx, w, func(ctx context.Context, tx ports.Tx) error {
			acc, err := tx.AccountByCustomer(ctx, cmd.CustomerID, cmd.Amount.Currency())
			if err != nil {
				return err
			}
			id := s.ids.NewID("dep")
			dep, err := domain.NewDeposit(id, cmd.Channel, id, acc, cmd.Amount, s.clock.Now())
			if err != nil {
				return err
			}
			if err := tx.InsertDeposit(ctx, dep); err != nil {
				return err
			}
			out = dep
			return nil
		})
		return out, err
	})
}

// Deposit returns a deposit by channel and payment id.
func (s *Service) Deposit(ctx context.Context, ch domain.Channel, paymentID string) (domain.Deposit, error) {
	return s.store.DepositByPaymentID(ctx, ch, paymentID)
}

// DepositByPaymentID finds a deposit by payment id alone. Payment ids Tiyn
// makes are globally unique, so this is one row in practice.
func (s *Service) DepositByPaymentID(ctx context.Context, paymentID string) (domain.Deposit, error) {
	deps, err := s.store.ListDeposits(ctx, ports.DepositQuery{PaymentID: paymentID, Limit: 2})
	if err != nil {
		return domain.Deposit{}, err
	}
	switch len(deps) {
	case 0:
		return domain.Deposit{}, fmt.Errorf("deposit %q: %w", paymentID, ports.ErrNotFound)
	case 1:
		return deps[0], nil
	}
	return domain.Deposit{}, fmt.Errorf("deposit %q: %w", paymentID, ports.ErrAmbiguous)
}

// ListDeposits pages through deposits.
func (s *Service) ListDeposits(ctx context.Context, q ports.DepositQuery) ([]domain.Deposit, error) {
	q.Limit = ports.ClampLimit(q.Limit, 100)
	return s.store.ListDeposits(ctx, q)
}

// StatusCheck returns a deposit with the status poller's record of it.
func (s *Service) StatusCheck(ctx context.Context, depositID string) (ports.StatusCheck, error) {
	return s.store.StatusCheck(ctx, depositID)
}
