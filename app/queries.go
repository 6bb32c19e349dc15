package app

import (
	"context"
	"time"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// Balance returns an account's balance now, or as of at when at is not zero
// (BalanceAt takes any moment, the zero time included).
func (s *Service) Balance(ctx context.Context, accountID string, at time.Time) (domain.Amount, error) {
	acc, err := s.store.AccountByID(ctx, accountID)
	if err != nil {
		return domain.Amount{}, err
	}
	if at.IsZero() {
		return acc.Balance(), nil
	}
	minor, err := s.store.BalanceAt(ctx, accountID, at)
	if err != nil {
		return domain.Amount{}, err
	}
	return domain.NewAmount(minor, acc.Currency()), nil
}

// BalanceAt returns an account's balance as of the moment at (zero before
// its first posting), the zero time being a moment like any other.
func (s *Service) BalanceAt(ctx context.Context, accountID string, at time.Time) (domain.Amount, error) {
	acc, err := s.store.AccountByID(ctx, accountID)
	if err != nil {
		return domain.Amount{}, err
	}
	minor, err := s.store.BalanceAt(ctx, accountID, at)
	if err != nil {
		return domain.Amount{}, err
	}
	return domain.NewAmount(minor, acc.Currency()), nil
}

// Statement pages through an account's postings.
func (s *Service) Statement(ctx context.Context, q ports.StatementQuery) ([]ports.StatementLine, error) {
	if _, err := s.store.AccountByID(ctx, q.AccountID); err != nil {
		return nil, err
	}
	q.Limit = ports.ClampLimit(q.Limit, 100)
	return s.store.Statement(ctx, q)
}

// ListInbox pages through stored callbacks.
func (s *Service) ListInbox(ctx context.Context, q ports.InboxQuery) ([]ports.InboxRecord, error) {
	q.Limit = ports.ClampLimit(q.Limit, 100)
	return s.store.ListInbox(ctx, q)
}

// CheckLedger recomputes the ledger's invariants.
func (s *Service) CheckLedger(ctx context.Context) (ports.LedgerCheck, error) {
	return s.store.CheckLedger(ctx)
}
