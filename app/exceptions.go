package app

import (
	"context"
	"fmt"
	"time"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// ListExceptions pages through exceptions.
func (s *Service) ListExceptions(ctx context.Context, q ports.ExceptionQuery) ([]domain.Exception, error) {
	q.Limit = ports.ClampLimit(q.Limit, 100)
	return s.store.ListExceptions(ctx, q)
}

// Exception returns one exception.
func (s *Service) Exception(ctx context.Context, id string) (domain.Exception, error) {
	return s.store.ExceptionByID(ctx, id)
}

// ResolveException closes an open exception. A credit is an audited
// transfer from the exception's clearing account to the chosen account
// (default: the deposit's account) for the chosen amount (default: what the
// callback claimed); a dismissal moves no money. Either way the note and the
// actor are kept, and a second resolution of the same exception is refused
// (the store's conditional update, plus one exception_credit per exception).
func (s *Service) ResolveException(ctx context.Context, cmd ports.ResolveException) (domain.Exception, error) {
	// Without an explicit account the credited one is read inside the
	// transaction; a rare operator action can do without a key.
	ctx = ports.WithWriteKey(ctx, cmd.AccountID)
	return retryOnConflict(ctx, func() (domain.Exception, error) {
		var out domain.Exception
		err := s.store.Update(ctx, func(ctx context.Context, tx ports.Tx) error {
			e, err := tx.ExceptionByID(ctx, cmd.ExceptionID)
			if err != nil {
				return err
			}
			now := s.clock.Now()
			r := domain.Resolution{Credit: cmd.Credit, Note: cmd.Note, Actor: cmd.Actor, ResolvedAt: now}
			if cmd.Credit {
				if err := s.resolveCredit(ctx, tx, e, cmd, &r, now); err != nil {
					return err
				}
			}
			resolved, err := e.Resolve(r)
			if err != nil {
				return err
			}
			if err := tx.ResolveException(ctx, resolved); err != nil {
				return err
			}
			out = resolved
			return tx.AppendAudit(ctx, ports.AuditEntry{Actor: cmd.Actor, Action: "exception." + resolved.State.String(),
				Subject: e.ID, Detail: cmd.Note, At: now})
		})
		return out, err
	})
}

func (s *Service) resolveCredit(ctx context.Context, tx ports.Tx, e domain.Exception, cmd ports.ResolveException, r *domain.Resolution, now time.Time) error {
	if e.State != domain.ExceptionOpen {
		return fmt.Errorf("%w: exception %s is %s", domain.ErrInvalidTransition, e.ID, e.State)
	}
	target := cmd.AccountID
	if target == "" {
		target = e.AccountID
	}
	if target == "" {
		return fmt.Errorf("%w: exception %s has no deposit account; name one", domain.ErrInvalidInput, e.ID)
	}
	acc, err := tx.AccountByID(ctx, target)
	if err != nil {
		return err
	}
	if acc.Status() == domain.AccountClosed {
		return fmt.Errorf("%w: %s", domain.ErrAccountClosed, acc.ID())
	}
	amount := cmd.Amount
	if amount.Currency().IsZero() {
		amount = e.Amount
	}
	if amount.Currency() != acc.Currency() {
		return fmt.Errorf("%w: account %s is %s, credit is %s", domain.ErrCurrencyMismatch, acc.ID(), acc.Currency(), amount.Currency())
	}
	t, err := domain.NewTransfer(s.ids.NewID("trf"), domain.TransferExceptionCredit,
		e.Channel.ClearingAccountID(), acc.ID(), amount, now)
	if err != nil {
		return err
	}
	t.ExceptionID = e.ID
	t.DepositID = e.DepositID
	t.Description = "exception " + e.ID + " (" + e.Reason.String() + ")"
	t.Actor = cmd.Actor
	if _, err := tx.ApplyTransfer(ctx, t); err != nil {
		return err
	}
	r.AccountID = acc.ID()
	r.Amount = amount
	r.TransferID = t.ID
	return nil
}
