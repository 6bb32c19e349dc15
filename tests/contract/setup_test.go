// Package contract_test is the store contract suite (docs/architecture.md §7): one set
// of tests run against every store configuration — SQLite and PostgreSQL,
// each with group commit on and off — through the ports (store.Update,
// store.Batch and
// ports.Tx) and through the use cases (app.Service). Every port method and
// every error its doc comment names is exercised here; the concurrency
// tests prove exactly-once crediting under races, on one pool and (on
// PostgreSQL) on two pools standing for two instances.
package contract_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
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

// pgMaxConns bounds each PostgreSQL pool the suite opens: many tests run at
// once against one server, whose max_connections is often 100.
const pgMaxConns = 6

// racers is how many goroutines the concurrency tests start at once.
const racers = 50

// raceTimeout bounds a concurrency test's goroutines.
const raceTimeout = 2 * time.Minute

var (
	kassa  = domain.Channel{Provider: "monetix", Method: "kassa24", Project: "1001"}
	limits = domain.AmountLimits{MinMinor: 100, MaxMinor: 50_000_000}
	// xts is ISO 4217's code reserved for testing: a second currency for the
	// mismatch cases. Registering it twice is a no-op.
	xts = domain.MustRegisterCurrency("XTS", 2)
	// base is a fixed moment for rows whose times the tests choose.
	base = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
)

// storeConfig is one store configuration of the suite.
type storeConfig struct {
	name    string
	dialect string
	group   bool
}

var storeConfigs = []storeConfig{
	{"sqlite", sqlstore.SQLite, false},
	{"sqlite-group", sqlstore.SQLite, true},
	{"postgres", sqlstore.Postgres, false},
	{"postgres-group", sqlstore.Postgres, true},
}

// env is one test's store and the service on top of it.
type env struct {
	cfg   storeConfig
	store *sqlstore.Store
	svc   *app.Service
	ids   *system.IDs
	clock system.Clock
	calls atomic.Int64 // updateErr's turns
}

func openStore(t *testing.T, cfg storeConfig) *sqlstore.Store {
	t.Helper()
	if cfg.dialect == sqlstore.Postgres {
		return pgtest.Open(t, sqlstore.Options{GroupCommit: cfg.group, MaxOpenConns: pgMaxConns})
	}
	return testkit.OpenSQLite(t, sqlstore.Options{GroupCommit: cfg.group})
}

// eachStore runs fn once per store configuration, in parallel, each on a
// fresh database.
func eachStore(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	for _, cfg := range storeConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			t.Parallel()
			s := openStore(t, cfg)
			ids := &system.IDs{}
			fn(t, &env{cfg: cfg, store: s, svc: app.NewService(s, system.Clock{}, ids), ids: ids})
		})
	}
}

// update runs fn in one transaction and fails the test on an error.
func (e *env) update(t *testing.T, fn ports.TxFunc) {
	t.Helper()
	if err := e.updateErr(t, fn); err != nil {
		t.Fatalf("update: %v", err)
	}
}

// updateErr runs fn in one transaction and returns its error: by turns
// through Store.Update (a transaction of its own) and Store.Batch (on a
// group-commit store, a batch), so every test that writes through the
// ports covers both.
func (e *env) updateErr(t *testing.T, fn ports.TxFunc) error {
	t.Helper()
	if e.calls.Add(1)%2 == 0 {
		return e.store.Update(t.Context(), fn)
	}
	return e.store.Batch(t.Context(), ports.Write{}, fn)
}

// newAccount builds (does not store) an active account.
func (e *env) newAccount(t *testing.T, customer string, c domain.Currency) domain.Account {
	t.Helper()
	a, err := domain.NewAccount(e.ids.NewID("acc"), customer, "add-"+customer, c, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// insertAccount stores a new account through the port.
func (e *env) insertAccount(t *testing.T, customer string, c domain.Currency) domain.Account {
	t.Helper()
	a := e.newAccount(t, customer, c)
	e.update(t, func(ctx context.Context, tx ports.Tx) error { return tx.InsertAccount(ctx, a) })
	return a
}

// newDeposit builds (does not store) a pending deposit created at `at`.
func (e *env) newDeposit(t *testing.T, ch domain.Channel, a domain.Account, minor int64, at time.Time) domain.Deposit {
	t.Helper()
	id := e.ids.NewID("dep")
	d, err := domain.NewDeposit(id, ch, id, a, domain.NewAmount(minor, a.Currency()), at)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// insertDeposit stores a new pending deposit through the port.
func (e *env) insertDeposit(t *testing.T, a domain.Account, minor int64, at time.Time) domain.Deposit {
	t.Helper()
	d := e.newDeposit(t, kassa, a, minor, at)
	e.update(t, func(ctx context.Context, tx ports.Tx) error { return tx.InsertDeposit(ctx, d) })
	return d
}

// openAccount opens an account through the service.
func (e *env) openAccount(t *testing.T, customer string) domain.Account {
	t.Helper()
	res, err := e.svc.OpenAccount(t.Context(), ports.OpenAccount{CustomerID: customer, Currency: domain.KZT, Actor: "test"})
	if err != nil || !res.Created {
		t.Fatalf("open account %s: %+v, %v", customer, res, err)
	}
	return res.Account
}

// openDeposit opens a pending deposit through the service.
func (e *env) openDeposit(t *testing.T, customer string, minor int64) domain.Deposit {
	t.Helper()
	d, err := e.svc.OpenDeposit(t.Context(), ports.OpenDeposit{Channel: kassa, CustomerID: customer,
		Amount: domain.NewAmount(minor, domain.KZT), Limits: limits})
	if err != nil {
		t.Fatalf("open deposit for %s: %v", customer, err)
	}
	return d
}

// callback builds a settle command as an adapter would from a callback.
func (e *env) callback(paymentID string, kind domain.OutcomeKind, status, operationID string, amount domain.Amount) ports.SettleDeposit {
	return ports.SettleDeposit{
		Channel:   kassa,
		PaymentID: paymentID,
		Outcome:   domain.Outcome{Method: kassa.Method, Kind: kind, Status: status, OperationID: operationID, Amount: amount},
		RawBody: fmt.Sprintf(`{"payment":{"id":%q,"status":%q,"sum":{"amount":%d,"currency":%q}},"operation":{"id":%q}}`,
			paymentID, status, amount.Minor(), amount.Currency().Code(), operationID),
		ReceivedAt: e.clock.Now(),
		Limits:     limits,
	}
}

// bigIs reports whether b is v.
func bigIs(b *big.Int, v int64) bool { return b != nil && b.Cmp(big.NewInt(v)) == 0 }

func (e *env) success(d domain.Deposit, op string) ports.SettleDeposit {
	return e.callback(d.PaymentID, domain.OutcomeSuccess, "success", op, d.Amount)
}

func (e *env) decline(d domain.Deposit, op string) ports.SettleDeposit {
	return e.callback(d.PaymentID, domain.OutcomeDecline, "decline", op, d.Amount)
}

// settle applies a callback and fails the test on an error.
func (e *env) settle(t *testing.T, cmd ports.SettleDeposit) ports.SettleResult {
	t.Helper()
	res, err := e.svc.SettleDeposit(t.Context(), cmd)
	if err != nil {
		t.Fatalf("settle %s %s: %v", cmd.PaymentID, cmd.Outcome.Status, err)
	}
	return res
}

// fund opens an account for customer and credits minor to it through a
// settled deposit.
func (e *env) fund(t *testing.T, customer string, minor int64) domain.Account {
	t.Helper()
	a := e.openAccount(t, customer)
	d := e.openDeposit(t, customer, minor)
	if res := e.settle(t, e.success(d, "op-fund-"+customer)); res.Effect != domain.EffectCredit {
		t.Fatalf("funding %s: effect %s", customer, res.Effect)
	}
	return a
}

// balance is an account's stored balance in minor units.
func (e *env) balance(t *testing.T, accountID string) int64 {
	t.Helper()
	a, err := e.store.AccountByID(t.Context(), accountID)
	if err != nil {
		t.Fatalf("account %s: %v", accountID, err)
	}
	return a.Balance().Minor()
}

// deposit re-reads a deposit.
func (e *env) deposit(t *testing.T, d domain.Deposit) domain.Deposit {
	t.Helper()
	got, err := e.store.DepositByPaymentID(t.Context(), d.Channel, d.PaymentID)
	if err != nil {
		t.Fatalf("deposit %s: %v", d.PaymentID, err)
	}
	return got
}

// healthy checks the ledger's invariants and returns the check.
func (e *env) healthy(t *testing.T) ports.LedgerCheck {
	t.Helper()
	c, err := e.store.CheckLedger(t.Context())
	if err != nil {
		t.Fatalf("check ledger: %v", err)
	}
	if !c.Healthy() {
		t.Fatalf("ledger unhealthy: %+v", c)
	}
	return c
}

// wantErr fails unless err matches target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

// race runs fn(i) for i in [0, n) on n goroutines released at once, and
// returns the errors they reported, in order of i.
func race(t *testing.T, n int, fn func(ctx context.Context, i int) error) []error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), raceTimeout)
	defer cancel()
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(ctx, i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}
