package contract_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
	"github.com/tiyn/tiyn/tests/pgtest"
)

// Races: many goroutines (and, on PostgreSQL, two store instances) doing
// the same thing at once must leave exactly one effect.

// settleRace delivers one success callback from racers goroutines, the i-th
// through services[i%len(services)], and checks exactly one credit landed.
func settleRace(t *testing.T, services []*app.Service, stores []*sqlstore.Store) {
	t.Helper()
	ctx := t.Context()
	first := services[0]
	opened, err := first.OpenAccount(ctx, ports.OpenAccount{CustomerID: "cust-race", Currency: domain.KZT, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	acc := opened.Account
	d, err := first.OpenDeposit(ctx, ports.OpenDeposit{Channel: kassa, CustomerID: "cust-race",
		Amount: domain.NewAmount(123_456, domain.KZT), Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	cmd := (&env{}).success(d, "op-1")
	results := make([]ports.SettleResult, racers)
	errs := race(t, racers, func(ctx context.Context, i int) error {
		res, err := services[i%len(services)].SettleDeposit(ctx, cmd)
		results[i] = res
		return err
	})
	credits, replays := 0, 0
	for i, err := range errs {
		if err != nil {
			t.Errorf("settle %d: %v", i, err)
			continue
		}
		switch results[i].Effect {
		case domain.EffectCredit:
			credits++
		case domain.EffectReplay:
			replays++
		default:
			t.Errorf("settle %d: effect %s", i, results[i].Effect)
		}
	}
	if credits != 1 || replays != racers-1 {
		t.Fatalf("credits = %d, replays = %d; want 1 and %d", credits, replays, racers-1)
	}
	for _, s := range stores {
		got, err := s.AccountByID(ctx, acc.ID())
		if err != nil || got.Balance().Minor() != 123_456 {
			t.Fatalf("balance = %v, %v; want 123456", got.Balance(), err)
		}
		lines, err := s.Statement(ctx, ports.StatementQuery{AccountID: acc.ID()})
		if err != nil || len(lines) != 1 {
			t.Fatalf("statement has %d lines, %v; want 1", len(lines), err)
		}
		c, err := s.CheckLedger(ctx)
		if err != nil || !c.Healthy() || c.Transfers != 1 || c.DuplicateCredits != 0 {
			t.Fatalf("ledger: %+v, %v", c, err)
		}
		inbox, err := s.ListInbox(ctx, ports.InboxQuery{PaymentID: d.PaymentID, Limit: ports.MaxPageSize})
		if err != nil || len(inbox) != racers {
			t.Fatalf("inbox has %d records, %v; want %d (every delivery kept)", len(inbox), err, racers)
		}
	}
}

func TestConcurrentSettleCreditsOnce(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		settleRace(t, []*app.Service{e.svc}, []*sqlstore.Store{e.store})
	})
}

// TestConcurrentSettleTwoInstancesPostgres: two stores (two pools, standing
// for two Tiyn instances) on one PostgreSQL database, each with its own
// service, receive the same callback at once.
func TestConcurrentSettleTwoInstancesPostgres(t *testing.T) {
	t.Parallel()
	for _, group := range []bool{false, true} {
		t.Run(fmt.Sprintf("group=%v", group), func(t *testing.T) {
			t.Parallel()
			url := pgtest.URL(t)
			var (
				stores   []*sqlstore.Store
				services []*app.Service
			)
			for range 2 {
				s, err := sqlstore.Open(context.Background(), sqlstore.Options{URL: url, GroupCommit: group, MaxOpenConns: pgMaxConns})
				if err != nil {
					t.Fatal(err)
				}
				// Registered after pgtest.URL's cleanup, so it runs first.
				t.Cleanup(func() {
					if err := s.Close(); err != nil {
						t.Errorf("close: %v", err)
					}
				})
				stores = append(stores, s)
				services = append(services, app.NewService(s, system.Clock{}, &system.IDs{}))
			}
			settleRace(t, services, stores)
		})
	}
}

func TestConcurrentDebitOneKey(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		a := e.fund(t, "cust-1", 10_000)
		debit := ports.Debit{AccountID: a.ID(), Amount: domain.NewAmount(100, domain.KZT), Description: "order 1",
			IdempotencyKey: "order-1", RequestHash: "h", Actor: "shop"}
		results := make([]ports.DebitResult, racers)
		errs := race(t, racers, func(ctx context.Context, i int) error {
			res, err := e.svc.Debit(ctx, debit)
			results[i] = res
			return err
		})
		fresh := 0
		for i, err := range errs {
			if err != nil {
				t.Errorf("debit %d: %v", i, err)
				continue
			}
			if !results[i].Replayed {
				fresh++
			}
			if results[i].Record.TransferID != results[0].Record.TransferID || results[i].Record.BalanceAfter.Minor() != 9_900 {
				t.Errorf("debit %d answered %+v, debit 0 %+v", i, results[i].Record, results[0].Record)
			}
		}
		if fresh != 1 {
			t.Fatalf("%d debits were made, want 1", fresh)
		}
		if got := e.balance(t, a.ID()); got != 9_900 {
			t.Fatalf("balance = %d, want 9900", got)
		}
		if lines, err := e.store.Statement(ctx, ports.StatementQuery{AccountID: a.ID()}); err != nil || len(lines) != 2 {
			t.Fatalf("statement has %d lines, %v; want 2", len(lines), err)
		}
		if c := e.healthy(t); c.Transfers != 2 {
			t.Fatalf("transfers = %d, want 2", c.Transfers)
		}
	})
}

func TestConcurrentOpenAccount(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		results := make([]ports.AccountResult, racers)
		errs := race(t, racers, func(ctx context.Context, i int) error {
			res, err := e.svc.OpenAccount(ctx, ports.OpenAccount{CustomerID: "cust-1", Currency: domain.KZT, Actor: "test"})
			results[i] = res
			return err
		})
		created := 0
		for i, err := range errs {
			if err != nil {
				t.Errorf("open %d: %v", i, err)
				continue
			}
			if results[i].Created {
				created++
			}
			if results[i].Account.ID() != results[0].Account.ID() {
				t.Errorf("open %d returned account %s, open 0 %s", i, results[i].Account.ID(), results[0].Account.ID())
			}
		}
		if created != 1 {
			t.Fatalf("%d opens created an account, want 1", created)
		}
		accounts, err := e.store.ListAccounts(ctx, ports.AccountQuery{CustomerID: "cust-1"})
		if err != nil || len(accounts) != 1 {
			t.Fatalf("accounts of cust-1: %d, %v; want 1", len(accounts), err)
		}
	})
}
