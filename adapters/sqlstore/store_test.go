package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
	"github.com/tiyn/tiyn/tests/pgtest"
	"github.com/tiyn/tiyn/tests/testkit"
)

// Quick end-to-end checks of the store under the app, SQLite only; the full
// contract suite for both dialects lives in tests/.
func openSQLite(t *testing.T, group bool) *sqlstore.Store {
	t.Helper()
	ctx := context.Background()
	s := testkit.OpenSQLite(t, sqlstore.Options{GroupCommit: group})
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSettleOnceSQLite(t *testing.T) {
	t.Parallel()
	for _, group := range []bool{false, true} {
		t.Run(fmt.Sprintf("group=%v", group), func(t *testing.T) {
			t.Parallel()
			s := openSQLite(t, group)
			settleRace(t, s)
		})
	}
}

// TestSettleOncePostgres runs on a fresh database of its own (tests/pgtest),
// never on the database TIYN_TEST_POSTGRES_URL names: that one is shared.
func TestSettleOncePostgres(t *testing.T) {
	t.Parallel()
	settleRace(t, pgtest.Open(t, sqlstore.Options{GroupCommit: true}))
}

func settleRace(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	svc := app.NewService(s, system.Clock{}, &system.IDs{})
	cust := fmt.Sprintf("c-%d", time.Now().UnixNano())
	acc, err := svc.OpenAccount(ctx, ports.OpenAccount{CustomerID: cust, Currency: domain.KZT})
	if err != nil {
		t.Fatal(err)
	}
	ch := domain.Channel{Provider: "monetix", Method: "kassa24", Project: "1234"}
	dep, err := svc.OpenDeposit(ctx, ports.OpenDeposit{Channel: ch, CustomerID: cust, Amount: domain.NewAmount(10000, domain.KZT),
		Limits: domain.AmountLimits{MinMinor: 100, MaxMinor: 50_000_000}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	effects := make(chan domain.Effect, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := svc.SettleDeposit(ctx, ports.SettleDeposit{Channel: ch, PaymentID: dep.PaymentID,
				Outcome: domain.Outcome{Method: "kassa24", Kind: domain.OutcomeSuccess, Status: "success", OperationID: "op1",
					Amount: domain.NewAmount(10000, domain.KZT)}, RawBody: `{"x":1}`, ReceivedAt: time.Now()})
			if err != nil {
				t.Error(err)
				return
			}
			effects <- res.Effect
		}()
	}
	wg.Wait()
	close(effects)
	credits := 0
	for e := range effects {
		if e == domain.EffectCredit {
			credits++
		}
	}
	if credits != 1 {
		t.Fatalf("credits = %d, want 1", credits)
	}
	got, err := svc.Balance(ctx, acc.Account.ID(), time.Time{})
	if err != nil || got.Minor() != 10000 {
		t.Fatalf("balance = %v, %v", got, err)
	}
	// Debit, replay, insufficient funds.
	d1, err := svc.Debit(ctx, ports.Debit{AccountID: acc.Account.ID(), Amount: domain.NewAmount(2500, domain.KZT), IdempotencyKey: "k1", RequestHash: "h"})
	if err != nil || d1.Replayed || d1.Record.BalanceAfter.Minor() != 7500 {
		t.Fatalf("debit: %+v %v", d1, err)
	}
	d2, err := svc.Debit(ctx, ports.Debit{AccountID: acc.Account.ID(), Amount: domain.NewAmount(2500, domain.KZT), IdempotencyKey: "k1", RequestHash: "h"})
	if err != nil || !d2.Replayed || d2.Record.BalanceAfter.Minor() != 7500 {
		t.Fatalf("replay: %+v %v", d2, err)
	}
	if _, err := svc.Debit(ctx, ports.Debit{AccountID: acc.Account.ID(), Amount: domain.NewAmount(1, domain.KZT), IdempotencyKey: "k1", RequestHash: "other"}); !errors.Is(err, ports.ErrIdempotencyMismatch) {
		t.Fatalf("mismatch: %v", err)
	}
	if _, err := svc.Debit(ctx, ports.Debit{AccountID: acc.Account.ID(), Amount: domain.NewAmount(7501, domain.KZT), IdempotencyKey: "k2", RequestHash: "h"}); !errors.Is(err, domain.ErrInsufficientFunds) {
		t.Fatalf("insufficient: %v", err)
	}
	lines, err := svc.Statement(ctx, ports.StatementQuery{AccountID: acc.Account.ID()})
	if err != nil || len(lines) != 2 || lines[1].BalanceAfter.Minor() != 7500 {
		t.Fatalf("statement: %+v %v", lines, err)
	}
	chk, err := svc.CheckLedger(ctx)
	if err != nil || !chk.Healthy() {
		t.Fatalf("ledger check: %+v %v", chk, err)
	}
}
