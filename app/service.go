// Package app holds Tiyn's use cases. Service implements ports.Ledger on top
// of a ports.Store, a ports.Clock and a ports.IDs; business rules come from
// the domain, transactions from the store.
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// MaxConflictAttempts bounds how often a use case re-reads and decides again
// after losing a race (ports.ErrConflict). Each retry sees the winner's
// committed state, so the second attempt almost always settles it; the
// bound keeps a bug from looping forever.
const MaxConflictAttempts = 5

// Service implements ports.Ledger.
type Service struct {
	store ports.Store
	clock ports.Clock
	ids   ports.IDs
	// fourEyes: an operator's credit is a proposal another operator
	// approves (WithFourEyes).
	fourEyes bool
	// zone is the business time zone (WithBusinessZone).
	zone *time.Location
	// staleAfter: a running reconciliation whose heartbeat is older is
	// taken over (WithReconStaleAfter).
	staleAfter time.Duration
}

var _ ports.Ledger = (*Service)(nil)

// Option configures a Service.
type Option func(*Service)

// WithFourEyes makes every operator credit (ResolveException with Credit)
// a proposal that a second operator must approve (ApproveException).
// Dismissals need no second pair of eyes. Off by default.
func WithFourEyes(on bool) Option { return func(s *Service) { s.fourEyes = on } }

// WithBusinessZone sets the time zone of business days (TIYN_BUSINESS_TZ);
// nil keeps the default, domain.DefaultBusinessZone.
func WithBusinessZone(loc *time.Location) Option {
	return func(s *Service) {
		if loc != nil {
			s.zone = loc
		}
	}
}

// DefaultReconStaleAfter is how long a running reconciliation may go
// without a heartbeat before another takes it over: a live run beats every
// fifth of it, whatever its source is doing.
const DefaultReconStaleAfter = 2 * time.Minute

// WithReconStaleAfter sets how long a running reconciliation may go
// without a heartbeat before it counts as crashed and another run takes
// it over (at least a second; DefaultReconStaleAfter otherwise).
func WithReconStaleAfter(d time.Duration) Option {
	return func(s *Service) {
		if d >= time.Second {
			s.staleAfter = d
		}
	}
}

// NewService wires the use cases. It panics on a nil dependency: that is a
// programmer error in the composition root, not something to handle.
func NewService(store ports.Store, clock ports.Clock, ids ports.IDs, opts ...Option) *Service {
	if store == nil || clock == nil || ids == nil {
		panic("app.NewService: nil dependency")
	}
	zone, err := domain.LoadBusinessZone("")
	if err != nil {
		panic("app.NewService: " + err.Error()) // the zone database is embedded
	}
	s := &Service{store: store, clock: clock, ids: ids, zone: zone, staleAfter: DefaultReconStaleAfter}
	for _, o := range opts {
		o(s)
	}
	return s
}

// retryOnConflict runs attempt until it returns something other than
// ports.ErrConflict, at most MaxConflictAttempts times.
func retryOnConflict[T any](ctx context.Context, attempt func() (T, error)) (T, error) {
	var (
		result T
		err    error
	)
	for range MaxConflictAttempts {
		result, err = attempt()
		if !errors.Is(err, ports.ErrConflict) {
			return result, err
		}
		if ctx.Err() != nil {
			return result, ctx.Err()
		}
	}
	return result, fmt.Errorf("gave up after %d conflicting attempts: %w", MaxConflictAttempts, err)
}

func validateChannel(ch domain.Channel) error {
	if ch.Provider == "" || ch.Method == "" || ch.Project == "" {
		return fmt.Errorf("%w: channel needs provider, method and project", domain.ErrInvalidInput)
	}
	return nil
}
