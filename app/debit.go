package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// MaxIdempotencyKeyLen bounds Idempotency-Key values.
const MaxIdempotencyKeyLen = 255

// Debit spends money from a customer account into merchant revenue, once
// per (account, idempotency key). Inside one transaction it looks the key
// up (a replay returns the stored result; another request under the same
// key is refused), then records the key and applies the transfer. Two
// concurrent debits with one key collide on the key's primary key: the
// loser re-reads and answers a replay.
func (s *Service) Debit(ctx context.Context, cmd ports.Debit) (ports.DebitResult, error) {
	if cmd.IdempotencyKey == "" || len(cmd.IdempotencyKey) > MaxIdempotencyKeyLen {
		return ports.DebitResult{}, fmt.Errorf("%w: idempotency key must be 1..%d bytes", domain.ErrInvalidInput, MaxIdempotencyKeyLen)
	}
	if len(cmd.Description) > domain.MaxDescriptionLen {
		return ports.DebitResult{}, fmt.Errorf("%w: description longer than %d bytes", domain.ErrInvalidInput, domain.MaxDescriptionLen)
	}
	if !cmd.Amount.IsPositive() {
		return ports.DebitResult{}, &domain.AmountError{Input: cmd.Amount.String(), Reason: "must be greater than zero", Err: domain.ErrInvalidAmount}
	}
	// The back office's debits may share transactions; they lock the
	// account's row.
	w := ports.Write{Key: cmd.AccountID}
	return retryOnConflict(ctx, func() (ports.DebitResult, error) {
		var res ports.DebitResult
		err := s.store.Batch(ctx, w, func(ctx context.Context, tx ports.Tx) error {
			prior, err := tx.DebitByKey(ctx, cmd.AccountID, cmd.IdempotencyKey)
			if err == nil {
				if prior.RequestHash != cmd.RequestHash {
					return fmt.Errorf("key %q: %w", cmd.IdempotencyKey, ports.ErrIdempotencyMismatch)
				}
				res = ports.DebitResult{Record: prior, Replayed: true}
				return nil
			}
			if !errors.Is(err, ports.ErrNotFound) {
				return err
			}
			res.Record, err = s.debit(ctx, tx, cmd)
			return err
		})
		return res, err
	})
}

func (s *Service) debit(ctx context.Context, tx ports.Tx, cmd ports.Debit) (ports.DebitRecord, error) {
	acc, err := tx.AccountByID(ctx, cmd.AccountID)
	if err != nil {
		return ports.DebitRecord{}, err
	}
	if err := acc.CanDebit(cmd.Amount); err != nil {
		return ports.DebitRecord{}, err
	}
	now := s.clock.Now()
	t, err := domain.NewTransfer(s.ids.NewID("trf"), domain.TransferDebit, acc.ID(), domain.RevenueAccountID, cmd.Amount, now)
	if err != nil {
		return ports.DebitRecord{}, err
	}
	t.Description = cmd.Description
	t.Actor = cmd.Actor
	rec := ports.DebitRecord{
		AccountID: acc.ID(), IdempotencyKey: cmd.IdempotencyKey, RequestHash: cmd.RequestHash,
		TransferID: t.ID, Amount: cmd.Amount, Description: cmd.Description, Actor: cmd.Actor, CreatedAt: now,
	}
	applied, err := tx.ApplyTransfer(ctx, t)
	if err != nil {
		return ports.DebitRecord{}, err
	}
	for _, p := range applied.Postings {
		if p.AccountID == acc.ID() && p.BalanceAfter != nil {
			rec.BalanceAfter = *p.BalanceAfter
		}
	}
	// A concurrent twin with the same key fails here on the key's primary
	// key, and its whole transaction (transfer included) rolls back; the
	// retry then finds this record and answers a replay.
	if err := tx.InsertDebit(ctx, rec); err != nil {
		return ports.DebitRecord{}, err
	}
	return rec, nil
}
