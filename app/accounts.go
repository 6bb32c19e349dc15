package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// OpenAccount opens an account, or returns the existing one for the same
// (customer id, currency) when it is what was asked for: not closed, and
// with the additional customer id the command names (an empty one matches
// any). Anything else is a *ports.AccountExistsError, never a silently
// different account. Two concurrent opens settle on the unique constraint:
// the loser re-reads and decides again against the winner's account.
func (s *Service) OpenAccount(ctx context.Context, cmd ports.OpenAccount) (ports.AccountResult, error) {
	w := ports.Write{Key: "customer:" + cmd.CustomerID}
	return retryOnConflict(ctx, func() (ports.AccountResult, error) {
		var res ports.AccountResult
		err := s.store.Batch(ctx, w, func(ctx context.Context, tx ports.Tx) error {
			existing, err := tx.AccountByCustomer(ctx, cmd.CustomerID, cmd.Currency)
			if err == nil {
				if existing.Status() == domain.AccountClosed ||
					(cmd.AdditionalCustomerID != "" && cmd.AdditionalCustomerID != existing.AdditionalCustomerID()) {
					return &ports.AccountExistsError{Existing: existing, AdditionalCustomerID: cmd.AdditionalCustomerID}
				}
				res = ports.AccountResult{Account: existing}
				return nil
			}
			if !errors.Is(err, ports.ErrNotFound) {
				return err
			}
			now := s.clock.Now()
			acc, err := domain.NewAccount(s.ids.NewID("acc"), cmd.CustomerID, cmd.AdditionalCustomerID, cmd.Currency, now)
			if err != nil {
				return err
			}
			if err := tx.InsertAccount(ctx, acc); err != nil {
				return err
			}
			res = ports.AccountResult{Account: acc, Created: true}
			return tx.AppendAudit(ctx, ports.AuditEntry{Actor: cmd.Actor, Action: "account.open", Subject: acc.ID(),
				Detail: fmt.Sprintf("customer %s %s", acc.CustomerID(), acc.Currency()), At: now})
		})
		return res, err
	})
}

// Account returns an account by id.
func (s *Service) Account(ctx context.Context, id string) (domain.Account, error) {
	return s.store.AccountByID(ctx, id)
}

// AccountByCustomer returns a customer's account in a currency.
func (s *Service) AccountByCustomer(ctx context.Context, customerID string, currency domain.Currency) (domain.Account, error) {
	return s.store.AccountByCustomer(ctx, customerID, currency)
}

// ListAccounts pages through accounts.
func (s *Service) ListAccounts(ctx context.Context, q ports.AccountQuery) ([]domain.Account, error) {
	q.Limit = ports.ClampLimit(q.Limit, 100)
	return s.store.ListAccounts(ctx, q)
}

// ChangeAccountStatus blocks, unblocks or closes an account. The version
// check makes a concurrent debit and close safe: whichever commits second
// re-reads and decides again.
func (s *Service) ChangeAccountStatus(ctx context.Context, cmd ports.ChangeAccountStatus) (domain.Account, error) {
	return retryOnConflict(ctx, func() (domain.Account, error) {
		var out domain.Account
		err := s.store.Update(ctx, func(ctx context.Context, tx ports.Tx) error {
			acc, err := tx.AccountByID(ctx, cmd.AccountID)
			if err != nil {
				return err
			}
			if acc.Status() == cmd.To {
				out = acc
				return nil
			}
			now := s.clock.Now()
			next, err := acc.ChangeStatus(cmd.To, now)
			if err != nil {
				return err
			}
			if err := tx.UpdateAccountStatus(ctx, next, acc.Version()); err != nil {
				return err
			}
			out = next
			return tx.AppendAudit(ctx, ports.AuditEntry{Actor: cmd.Actor, Action: "account." + cmd.To.String(),
				Subject: acc.ID(), Detail: fmt.Sprintf("%s -> %s", acc.Status(), cmd.To), At: now})
		})
		return out, err
	})
}

// VerifyCustomer answers whether a customer's account exists and can take a
// payment now.
func (s *Service) VerifyCustomer(ctx context.Context, customerID string, currency domain.Currency) (domain.Account, error) {
	if err := domain.ValidateCustomerID(customerID); err != nil {
		return domain.Account{}, err
	}
	acc, err := s.store.AccountByCustomer(ctx, customerID, currency)
	if err != nil {
		return domain.Account{}, err
	}
	if err := acc.CanReceiveDeposit(); err != nil {
		return domain.Account{}, err
	}
	return acc, nil
}
