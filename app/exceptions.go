package app

import (
	"context"
	"errors"
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

// Corrections.
//
// An operator's credit is the only way a person moves money into an
// account, so it keeps the promise the callbacks keep:
//
//   - It pays a payment at most once. An exception that belongs to a
//     deposit is credited by settling that deposit (creditDeposit: the
//     conditional transition and the deposit's one deposit_credit), so a
//     later callback for the payment is a replay or an exception; a deposit
//     already credited refuses the credit. An exception without a deposit
//     (an unknown payment id) is credited by an exception_credit whose
//     credit key names the payment: at most one per payment.
//   - It is bounded by its evidence: no more than the platform reported
//     collected, no more than the method's per-payment maximum, nothing
//     when the evidence does not show a success (domain.CreditBound), and
//     no balance past its ceiling.
//   - With four eyes, one operator proposes and another approves; the
//     approval checks everything again, since a callback may have settled
//     the deposit in between.
//
// Every step writes the audit trail with its actor.

// ResolveException dismisses or credits an open exception (see
// ports.Ledger). With four eyes a credit becomes a proposal.
func (s *Service) ResolveException(ctx context.Context, cmd ports.ResolveException) (domain.Exception, error) {
	// A rare operator action: a transaction of its own.
	return retryOnConflict(ctx, func() (domain.Exception, error) {
		var out domain.Exception
		err := s.store.Update(ctx, func(ctx context.Context, tx ports.Tx) error {
			e, err := tx.ExceptionByID(ctx, cmd.ExceptionID)
			if err != nil {
				return err
			}
			now := s.clock.Now()
			if !cmd.Credit {
				out, err = e.Resolve(domain.Resolution{Note: cmd.Note, Actor: cmd.Actor, ResolvedAt: now})
				if err != nil {
					return err
				}
				if err := s.expireDismissed(ctx, tx, e, cmd.Actor, now); err != nil {
					return err
				}
				return s.saveException(ctx, tx, out, e.State, "exception.dismissed", cmd.Actor, cmd.Note, now)
			}
			if e.State != domain.ExceptionOpen {
				return fmt.Errorf("%w: exception %s is %s", domain.ErrInvalidTransition, e.ID, e.State)
			}
			plan, err := s.planCredit(ctx, tx, e, cmd.AccountID, cmd.Amount)
			if err != nil {
				return err
			}
			if s.fourEyes {
				out, err = e.Propose(domain.Proposal{AccountID: plan.account.ID(), Amount: plan.amount, Note: cmd.Note,
					Actor: cmd.Actor, At: now})
				if err != nil {
					return err
				}
				return s.saveException(ctx, tx, out, e.State, "exception.proposed", cmd.Actor,
					creditDetail(plan, cmd.Note), now)
			}
			if err := domain.ValidateNote(cmd.Note); err != nil {
				return err
			}
			r := domain.Resolution{Credit: true, Note: cmd.Note, Actor: cmd.Actor, ResolvedAt: now}
			if r, err = s.makeCredit(ctx, tx, e, plan, r, now); err != nil {
				return err
			}
			if out, err = e.Resolve(r); err != nil {
				return err
			}
			return s.saveException(ctx, tx, out, e.State, "exception.resolved", cmd.Actor, creditDetail(plan, cmd.Note), now)
		})
		return out, err
	})
}

// ApproveException makes a proposed credit (see ports.Ledger).
func (s *Service) ApproveException(ctx context.Context, cmd ports.DecideProposal) (domain.Exception, error) {
	if cmd.Note != "" {
		if err := domain.ValidateNote(cmd.Note); err != nil {
			return domain.Exception{}, err
		}
	}
	return retryOnConflict(ctx, func() (domain.Exception, error) {
		var out domain.Exception
		err := s.store.Update(ctx, func(ctx context.Context, tx ports.Tx) error {
			e, err := tx.ExceptionByID(ctx, cmd.ExceptionID)
			if err != nil {
				return err
			}
			if e.State != domain.ExceptionProposed || e.Proposal == nil {
				return fmt.Errorf("%w: exception %s is %s, not proposed", domain.ErrInvalidTransition, e.ID, e.State)
			}
			p := *e.Proposal
			if cmd.Actor == "" || cmd.Actor == p.Actor {
				return fmt.Errorf("%w: %s proposed the credit of exception %s", domain.ErrSelfApproval, p.Actor, e.ID)
			}
			now := s.clock.Now()
			plan, err := s.planCredit(ctx, tx, e, p.AccountID, p.Amount)
			if err != nil {
				return err
			}
			note := p.Note
			if cmd.Note != "" {
				note = p.Note + "\nApproved: " + cmd.Note
			}
			r := domain.Resolution{Credit: true, Note: note, Actor: cmd.Actor, ResolvedAt: now}
			if r, err = s.makeCredit(ctx, tx, e, plan, r, now); err != nil {
				return err
			}
			if out, err = e.Approve(r); err != nil {
				return err
			}
			return s.saveException(ctx, tx, out, e.State, "exception.approved", cmd.Actor,
				fmt.Sprintf("proposed by %s; %s", p.Actor, creditDetail(plan, cmd.Note)), now)
		})
		return out, err
	})
}

// RejectException drops a proposed credit (see ports.Ledger).
func (s *Service) RejectException(ctx context.Context, cmd ports.DecideProposal) (domain.Exception, error) {
	if err := domain.ValidateNote(cmd.Note); err != nil {
		return domain.Exception{}, err
	}
	return retryOnConflict(ctx, func() (domain.Exception, error) {
		var out domain.Exception
		err := s.store.Update(ctx, func(ctx context.Context, tx ports.Tx) error {
			e, err := tx.ExceptionByID(ctx, cmd.ExceptionID)
			if err != nil {
				return err
			}
			var proposer string
			if e.Proposal != nil {
				proposer = e.Proposal.Actor
			}
			if out, err = e.Reject(); err != nil {
				return err
			}
			return s.saveException(ctx, tx, out, e.State, "exception.rejected", cmd.Actor,
				fmt.Sprintf("proposal by %s rejected: %s", proposer, cmd.Note), s.clock.Now())
		})
		return out, err
	})
}

// saveException stores e (conditional on its state still being from) and
// its line of the audit trail.
func (s *Service) saveException(ctx context.Context, tx ports.Tx, e domain.Exception, from domain.ExceptionStatus,
	action, actor, detail string, now time.Time) error {
	if err := tx.UpdateException(ctx, e, from); err != nil {
		return err
	}
	return tx.AppendAudit(ctx, ports.AuditEntry{Actor: actor, Action: action, Subject: e.ID, Detail: detail, At: now})
}

// creditPlan is a credit checked against every rule, ready to be made.
type creditPlan struct {
	deposit *domain.Deposit // the deposit it settles; nil for an unknown payment
	account domain.Account  // the account credited
	amount  domain.Amount
}

func creditDetail(p creditPlan, note string) string {
	return fmt.Sprintf("credit %s %s to %s: %s", p.amount, p.amount.Currency(), p.account.ID(), note)
}

// planCredit checks that e may be credited with amount (zero: what the
// evidence claims) to accountID (empty: the deposit's account): the
// deposit is not credited yet, the account exists and is not closed, and
// the amount lies within the evidence and the balance ceiling.
func (s *Service) planCredit(ctx context.Context, tx ports.Tx, e domain.Exception, accountID string, amount domain.Amount) (creditPlan, error) {
	var plan creditPlan
	if e.DepositID != "" {
		dep, err := tx.DepositByPaymentID(ctx, e.Channel, e.PaymentID)
		if err != nil {
			return plan, fmt.Errorf("deposit of exception %s: %w", e.ID, err)
		}
		if dep.Status == domain.DepositSucceeded {
			trf, err := tx.DepositCredit(ctx, dep.ID)
			if err != nil && !errors.Is(err, ports.ErrNotFound) {
				return plan, err
			}
			return plan, fmt.Errorf("%w: deposit %s (payment %s) was credited by transfer %s; dismiss exception %s instead",
				domain.ErrAlreadyCredited, dep.ID, dep.PaymentID, trf, e.ID)
		}
		plan.deposit = &dep
		if accountID == "" {
			accountID = dep.AccountID
		}
	} else {
		if accountID == "" {
			return plan, fmt.Errorf("%w: exception %s belongs to no deposit (payment %s is unknown); name the account_id to credit",
				domain.ErrInvalidInput, e.ID, e.PaymentID)
		}
		trf, err := tx.CreditByKey(ctx, domain.PaymentCreditKey(e.Channel, e.PaymentID))
		switch {
		case err == nil:
			return plan, fmt.Errorf("%w: payment %s was credited by transfer %s; dismiss exception %s instead",
				domain.ErrAlreadyCredited, e.PaymentID, trf, e.ID)
		case !errors.Is(err, ports.ErrNotFound):
			return plan, err
		}
	}
	acc, err := tx.AccountByID(ctx, accountID)
	if err != nil {
		return plan, err
	}
	if acc.Status() == domain.AccountClosed {
		return plan, fmt.Errorf("%w: %s", domain.ErrAccountClosed, acc.ID())
	}
	if amount.Currency().IsZero() {
		amount = e.Amount
	}
	if err := e.CheckCredit(amount); err != nil {
		return plan, err
	}
	if err := acc.CanCredit(amount); err != nil {
		return plan, err
	}
	plan.account, plan.amount = acc, amount
	return plan, nil
}

// makeCredit moves the money of a checked plan and returns r completed
// with the account, the amount and the transfer.
func (s *Service) makeCredit(ctx context.Context, tx ports.Tx, e domain.Exception, plan creditPlan, r domain.Resolution, now time.Time) (domain.Resolution, error) {
	desc := "exception " + e.ID + " (" + e.Reason.String() + ") credited by " + r.Actor
	var transferID string
	if plan.deposit != nil {
		opID := e.OperationID
		if opID == "" {
			opID = e.ID
		}
		_, t, err := s.creditDeposit(ctx, tx, depositCredit{
			deposit: *plan.deposit, account: plan.account, amount: plan.amount, operationID: opID,
			actor: r.Actor, description: desc, exceptionID: e.ID,
		}, now)
		if err != nil {
			return r, err
		}
		transferID = t.ID
	} else {
		t, err := domain.NewTransfer(s.ids.NewID("trf"), domain.TransferExceptionCredit,
			e.Channel.ClearingAccountID(), plan.account.ID(), plan.amount, now)
		if err != nil {
			return r, err
		}
		t.ExceptionID = e.ID
		t.CreditKey = domain.PaymentCreditKey(e.Channel, e.PaymentID)
		t.Description = desc
		t.Actor = r.Actor
		if _, err := tx.ApplyTransfer(ctx, t); err != nil {
			return r, err
		}
		transferID = t.ID
	}
	r.AccountID, r.Amount, r.TransferID = plan.account.ID(), plan.amount, transferID
	return r, nil
}
