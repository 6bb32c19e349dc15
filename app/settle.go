package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// SettleDeposit applies one authenticated piece of platform evidence — a
// callback, or the answer to a status check (cmd.Source) — by one path:
// whichever arrives first settles the deposit and the other is a replay
// (the dedupe key does not depend on the source). In one transaction it
// reads the deposit (with its account and whether the callback was seen
// before, in one read), lets the domain decide, applies the decision (a
// conditional state transition plus a credit transfer, a decline, or an
// exception), and stores the raw body in the inbox with the outcome. It
// returns only after that transaction committed.
//
// Exactly-once crediting rests on three things, any one of which stops a
// double credit: the domain answers a replay for an already-succeeded
// deposit; the transition is conditional on the status read (a concurrent
// settler loses with ports.ErrConflict, re-reads and sees a replay); and the
// store allows one deposit_credit transfer per deposit (a unique index).
func (s *Service) SettleDeposit(ctx context.Context, cmd ports.SettleDeposit) (ports.SettleResult, error) {
	if err := validateChannel(cmd.Channel); err != nil {
		return ports.SettleResult{}, err
	}
	if cmd.DedupeKey == "" {
		cmd.DedupeKey = DedupeKey(cmd.Channel, cmd.PaymentID, cmd.Outcome)
	}
	if cmd.Source.IsZero() {
		cmd.Source = ports.SourceCallback
	}
	// The hot path: many callbacks may share one transaction. The batching
	// store is told the first read settle makes (it reads the views of a
	// whole batch at once) and derives from it the account the credit
	// locks.
	w := ports.Write{Settle: []ports.SettleKey{{Channel: cmd.Channel, PaymentID: cmd.PaymentID, DedupeKey: cmd.DedupeKey}}}
	return retryOnConflict(ctx, func() (ports.SettleResult, error) {
		var (
			res ports.SettleResult
			rec *ports.InboxRecord
		)
		err := s.store.Batch(ctx, w, func(ctx context.Context, tx ports.Tx) error {
			var err error
			res, rec, err = s.settle(ctx, tx, cmd)
			return err
		})
		if err == nil && rec != nil {
			res.InboxID = rec.ID // set by the time Update returns
		}
		return res, err
	})
}

func (s *Service) settle(ctx context.Context, tx ports.Tx, cmd ports.SettleDeposit) (ports.SettleResult, *ports.InboxRecord, error) {
	now := s.clock.Now()
	res := ports.SettleResult{}
	// The deposit, its account and whether this callback was applied
	// before, in one read.
	view, err := tx.SettleView(ctx, cmd.Channel, cmd.PaymentID, cmd.DedupeKey)
	if err != nil {
		return res, nil, err
	}
	dep := view.Deposit
	if view.Found {
		res.Deposit = &dep
		res.Decision = dep.Decide(cmd.Outcome)
	} else {
		res.Decision = domain.DecideUnknown(cmd.Outcome)
	}
	// A callback already applied is a replay whatever happened to the
	// deposit since: an old decline redelivered after a late success must
	// not raise "decline after success".
	if view.Seen && res.Decision.Effect != domain.EffectRecord {
		res.Decision = domain.Decision{Effect: domain.EffectReplay, Detail: "callback already applied"}
	}
	res.Effect = res.Decision.Effect

	switch res.Decision.Effect {
	case domain.EffectCredit:
		if err := s.credit(ctx, tx, cmd, &res, view.Account, now); err != nil {
			return res, nil, err
		}
	case domain.EffectDecline:
		next, err := dep.Apply(res.Decision, cmd.Outcome, now)
		if err != nil {
			return res, nil, err
		}
		if err := tx.TransitionDeposit(ctx, next, dep.Status); err != nil {
			return res, nil, err
		}
		res.Deposit = &next
	}
	if res.Effect == domain.EffectException {
		if err := s.raise(ctx, tx, cmd, &res, now); err != nil {
			return res, nil, err
		}
	}
	rec := &ports.InboxRecord{
		Source: cmd.Source, Channel: cmd.Channel, PaymentID: cmd.PaymentID, OperationID: cmd.Outcome.OperationID,
		Status: cmd.Outcome.Status, Body: cmd.RawBody, Outcome: res.Effect, DedupeKey: cmd.DedupeKey,
		ReceivedAt: cmd.ReceivedAt,
	}
	if res.Deposit != nil {
		rec.DepositID = res.Deposit.ID
	}
	if res.Exception != nil {
		rec.ExceptionID = res.Exception.ID
	}
	if err := tx.InsertInbox(ctx, rec); err != nil {
		return res, nil, err
	}
	return res, rec, nil
}

// credit settles a callback's success: the deposit moves to succeeded and
// its account is credited from the channel's clearing account. A closed
// account cannot take money, and no balance may pass its ceiling: then the
// callback becomes an exception instead, for an operator.
func (s *Service) credit(ctx context.Context, tx ports.Tx, cmd ports.SettleDeposit, res *ports.SettleResult, acc domain.Account, now time.Time) error {
	dep := *res.Deposit
	refuse := func(reason domain.ExceptionReason, detail string) error {
		res.Decision = domain.Decision{Effect: domain.EffectException, Reason: reason, Detail: detail}
		res.Effect = domain.EffectException
		return nil
	}
	if acc.Status() == domain.AccountClosed {
		return refuse(domain.ReasonAccountClosed, "account "+acc.ID()+" was closed before the payment succeeded")
	}
	if err := acc.CanCredit(dep.Amount); errors.Is(err, domain.ErrBalanceCeiling) {
		return refuse(domain.ReasonBalanceCeiling, err.Error())
	}
	next, t, err := s.creditDeposit(ctx, tx, depositCredit{
		deposit: dep, account: acc, amount: dep.Amount, operationID: cmd.Outcome.OperationID,
		actor:       dep.Channel.Provider + ":" + dep.Channel.Project,
		description: "deposit " + dep.PaymentID + " operation " + cmd.Outcome.OperationID,
	}, now)
	if err != nil {
		return err
	}
	res.Deposit = &next
	res.Transfer = &t
	return nil
}

// depositCredit is one credit of a deposit: by a callback, or by an
// operator resolving one of its exceptions.
type depositCredit struct {
	deposit     domain.Deposit
	account     domain.Account // the account credited: the deposit's, unless an operator named another
	amount      domain.Amount
	operationID string // the platform operation the deposit is settled by
	actor       string
	description string
	exceptionID string // an operator's resolution
}

// creditDeposit is the one way money reaches a customer for a deposit,
// whoever decided it: the deposit's conditional transition to succeeded
// (… WHERE status = the status read; a concurrent settler loses with
// ports.ErrConflict) and its deposit_credit transfer, of which the store
// allows one per deposit (a unique index). Whatever else happens, a
// deposit is credited at most once.
func (s *Service) creditDeposit(ctx context.Context, tx ports.Tx, c depositCredit, now time.Time) (domain.Deposit, domain.Transfer, error) {
	dep := c.deposit
	next, err := dep.Apply(domain.Decision{Effect: domain.EffectCredit}, domain.Outcome{OperationID: c.operationID}, now)
	if err != nil {
		return domain.Deposit{}, domain.Transfer{}, err
	}
	if err := tx.TransitionDeposit(ctx, next, dep.Status); err != nil {
		return domain.Deposit{}, domain.Transfer{}, err
	}
	t, err := domain.NewTransfer(s.ids.NewID("trf"), domain.TransferDepositCredit,
		dep.Channel.ClearingAccountID(), c.account.ID(), c.amount, now)
	if err != nil {
		return domain.Deposit{}, domain.Transfer{}, err
	}
	t.DepositID = dep.ID
	t.ExceptionID = c.exceptionID
	t.Description = c.description
	t.Actor = c.actor
	applied, err := tx.ApplyTransfer(ctx, t)
	if err != nil {
		return domain.Deposit{}, domain.Transfer{}, err
	}
	return next, applied, nil
}

// raise records an exception, once per distinct callback: a redelivery of
// the same callback finds the existing exception and is a replay.
func (s *Service) raise(ctx context.Context, tx ports.Tx, cmd ports.SettleDeposit, res *ports.SettleResult, now time.Time) error {
	e := domain.Exception{
		ID: s.ids.NewID("exc"), Reason: res.Decision.Reason, Detail: res.Decision.Detail,
		Channel: cmd.Channel, PaymentID: cmd.PaymentID, OperationID: cmd.Outcome.OperationID,
		Status: cmd.Outcome.Status, Outcome: cmd.Outcome.Kind, Amount: cmd.Outcome.Amount,
		MaxCredit: cmd.Limits.MaxMinor, Unverified: cmd.Unverified, Evidence: cmd.RawBody,
		DedupeKey: cmd.DedupeKey, State: domain.ExceptionOpen, CreatedAt: now,
	}
	if res.Deposit != nil {
		e.DepositID = res.Deposit.ID
		e.AccountID = res.Deposit.AccountID
	}
	stored, created, err := tx.InsertException(ctx, e)
	if err != nil {
		return err
	}
	if !created {
		res.Effect = domain.EffectReplay
	}
	res.Exception = &stored
	return nil
}

// DedupeKey identifies "the same callback" across redeliveries: the channel,
// the payment, the operation, the status and the amount. Two deliveries with
// the same key raise at most one exception.
func DedupeKey(ch domain.Channel, paymentID string, o domain.Outcome) string {
	h := sha256.New()
	for _, part := range []string{ch.Provider, ch.Method, ch.Project, paymentID, o.OperationID, o.Status,
		strconv.FormatInt(o.Amount.Minor(), 10), o.Amount.Currency().Code()} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
