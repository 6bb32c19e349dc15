package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// RecordUnreadable keeps an authentic callback that cannot be read as an
// outcome (see ports.Ledger). The exception names the deposit when the
// payment id could be read and one has it, so an operator sees whose money
// it may be; its evidence claims nothing (no amount could be read), so no
// operator credit can be justified by it: the deposit is settled by a
// readable callback, the status poller or reconciliation.
func (s *Service) RecordUnreadable(ctx context.Context, cmd ports.RecordUnreadable) (ports.SettleResult, error) {
	if err := validateChannel(cmd.Channel); err != nil {
		return ports.SettleResult{}, err
	}
	key := unreadableKey(cmd)
	return retryOnConflict(ctx, func() (ports.SettleResult, error) {
		var (
			res ports.SettleResult
			rec *ports.InboxRecord
		)
		err := s.store.Update(ctx, func(ctx context.Context, tx ports.Tx) error {
			now := s.clock.Now()
			e := domain.Exception{
				ID: s.ids.NewID("exc"), Reason: domain.ReasonMalformedCallback, Detail: truncateText(cmd.Detail, 500),
				Channel: cmd.Channel, PaymentID: cmd.PaymentID, OperationID: cmd.OperationID, Status: cmd.Status,
				Evidence: cmd.RawBody, DedupeKey: key, State: domain.ExceptionOpen, CreatedAt: now,
			}
			rec = &ports.InboxRecord{Channel: cmd.Channel, PaymentID: cmd.PaymentID, OperationID: cmd.OperationID,
				Status: cmd.Status, Body: cmd.RawBody, DedupeKey: key, ReceivedAt: cmd.ReceivedAt}
			if cmd.PaymentID != "" {
				dep, err := tx.DepositByPaymentID(ctx, cmd.Channel, cmd.PaymentID)
				switch {
				case err == nil:
					e.DepositID, e.AccountID = dep.ID, dep.AccountID
					rec.DepositID = dep.ID
					res.Deposit = &dep
				case !errors.Is(err, ports.ErrNotFound):
					return err
				}
			}
			stored, created, err := tx.InsertException(ctx, e)
			if err != nil {
				return err
			}
			res.Decision = domain.Decision{Effect: domain.EffectException, Reason: domain.ReasonMalformedCallback, Detail: e.Detail}
			res.Effect = domain.EffectException
			if !created {
				res.Effect = domain.EffectReplay
			}
			res.Exception = &stored
			rec.Outcome, rec.ExceptionID = res.Effect, stored.ID
			return tx.InsertInbox(ctx, rec)
		})
		if err == nil {
			res.InboxID = rec.ID
		}
		return res, err
	})
}

// unreadableKey identifies the same unreadable callback across
// redeliveries: its channel and its bytes.
func unreadableKey(cmd ports.RecordUnreadable) string {
	h := sha256.New()
	for _, part := range []string{"unreadable", cmd.Channel.Provider, cmd.Channel.Method, cmd.Channel.Project, cmd.RawBody} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// truncateText shortens s to at most n bytes on a rune boundary.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return fmt.Sprintf("%s…", s[:n])
}
