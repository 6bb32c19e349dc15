package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// PollerActor is the audit trail's actor for what the status poller and
// the expiry do on their own.
const PollerActor = "tiyn:status-poller"

// ExpiryReport counts what one expiry pass did.
type ExpiryReport struct {
	Expired   int // pending deposits moved to expired
	Escalated int // status_unknown exceptions raised
}

// ExpirePending applies the expiry to up to limit deposits still pending
// after expireAfter (domain.Deposit.DecideExpiry): a deposit the platform
// answered about expires; one it never answered about is raised as a
// status_unknown exception, once. Each deposit is decided in a transaction
// of its own on what it reads there, so a callback that settles a deposit
// meanwhile wins (the transition is conditional) and the deposit is left
// alone. Audited as deposit.expired and deposit.status_unknown.
func (s *Service) ExpirePending(ctx context.Context, expireAfter time.Duration, limit int) (ExpiryReport, error) {
	var rep ExpiryReport
	if expireAfter <= 0 {
		return rep, nil
	}
	due, err := s.store.ListExpiring(ctx, ports.ExpiryQuery{CreatedBefore: s.clock.Now().Add(-expireAfter), Limit: limit})
	if err != nil {
		return rep, err
	}
	for _, c := range due {
		verdict, err := s.expireOne(ctx, c.Deposit.ID, expireAfter)
		if err != nil {
			return rep, err
		}
		switch verdict {
		case domain.ExpiryExpire:
			rep.Expired++
		case domain.ExpiryEscalate:
			rep.Escalated++
		}
	}
	return rep, nil
}

func (s *Service) expireOne(ctx context.Context, depositID string, expireAfter time.Duration) (domain.ExpiryVerdict, error) {
	return retryOnConflict(ctx, func() (domain.ExpiryVerdict, error) {
		verdict := domain.ExpiryNotDue
		err := s.store.Update(ctx, func(ctx context.Context, tx ports.Tx) error {
			c, err := tx.StatusCheck(ctx, depositID)
			if err != nil {
				return err
			}
			now := s.clock.Now()
			dep := c.Deposit
			verdict = dep.DecideExpiry(now, expireAfter, c.Answered)
			if c.Escalated && verdict == domain.ExpiryEscalate {
				verdict = domain.ExpiryNotDue // raised before
			}
			switch verdict {
			case domain.ExpiryExpire:
				next, err := dep.Expire(now)
				if err != nil {
					return err
				}
				if err := tx.TransitionDeposit(ctx, next, dep.Status); err != nil {
					return err
				}
				return tx.AppendAudit(ctx, ports.AuditEntry{Actor: PollerActor, Action: "deposit.expired", Subject: dep.ID,
					Detail: fmt.Sprintf("payment %s pending since %s; after %d status checks the platform's last answer was %s",
						dep.PaymentID, dep.CreatedAt.UTC().Format(time.RFC3339), c.Checks, lastAnswer(c)), At: now})
			case domain.ExpiryEscalate:
				e := domain.StatusUnknownException(s.ids.NewID("exc"), dep, c.Checks, now)
				if _, _, err := tx.InsertException(ctx, e); err != nil {
					return err
				}
				if err := tx.MarkEscalated(ctx, dep.ID, now); err != nil {
					return err
				}
				return tx.AppendAudit(ctx, ports.AuditEntry{Actor: PollerActor, Action: "deposit.status_unknown", Subject: dep.ID,
					Detail: e.Detail, At: now})
			}
			return nil
		})
		return verdict, err
	})
}

func lastAnswer(c ports.StatusCheck) string {
	if c.Last == "" {
		return "none"
	}
	return c.Last
}

// expireDismissed expires the pending deposit of a status_unknown exception
// an operator dismissed: the operator decided the platform gave up on it.
func (s *Service) expireDismissed(ctx context.Context, tx ports.Tx, e domain.Exception, actor string, now time.Time) error {
	if e.Reason != domain.ReasonStatusUnknown || e.DepositID == "" {
		return nil
	}
	dep, err := tx.DepositByPaymentID(ctx, e.Channel, e.PaymentID)
	if errors.Is(err, ports.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if dep.Status != domain.DepositPending {
		return nil // settled meanwhile: by a callback, a status answer, reconciliation
	}
	next, err := dep.Expire(now)
	if err != nil {
		return err
	}
	if err := tx.TransitionDeposit(ctx, next, dep.Status); err != nil {
		return err
	}
	return tx.AppendAudit(ctx, ports.AuditEntry{Actor: actor, Action: "deposit.expired", Subject: dep.ID,
		Detail: "status_unknown exception " + e.ID + " dismissed", At: now})
}
