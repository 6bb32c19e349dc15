package bench_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// The store prepares its statements for speed (adapters/sqlstore/store.go):
// the first use of a text goes through bun, which inlines the values, and
// later uses bind them as parameters. These tests run the same awkward
// values through both paths and require identical results, so a value the
// two paths would store differently (quotes, question marks, NUL bytes,
// non-ASCII, NULLs, the int64 range) fails here.

const (
	// preparedRounds: round 0 goes through bun, the rest through prepared
	// statements.
	preparedRounds = 4
	// minPrepared is the fewest statement texts the rounds must have
	// prepared (they use more than this many distinct texts).
	minPrepared = 10
	// settleWait bounds the wait for background PREPAREs.
	settleWait = 10 * time.Second
)

// awkward is text that a wrong quoting or placeholder rewrite would break.
const awkward = `o'brien "?" $1 ?? \x -- /* ; ` + "тенге ✓"

func TestPreparedPathStoresWhatBunStores(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		store storeCase
		group bool
	}{
		{"sqlite/group", stores[0], true},
		{"sqlite/single", stores[0], false},
		{"postgres/group", stores[1], true},
		{"postgres/single", stores[1], false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := c.store.open(t, c.group)
			svc := app.NewService(s, system.Clock{}, &system.IDs{})
			for round := range preparedRounds {
				exercise(t, s, svc, round)
				if round == 0 {
					waitPrepared(t, s)
				}
			}
			if n := s.PreparedStatements(); n < minPrepared {
				t.Fatalf("only %d statements prepared; the prepared path was not exercised", n)
			}
		})
	}
}

// waitPrepared waits until the background PREPAREs have settled: the count
// is non-zero and has not changed for a while.
func waitPrepared(t *testing.T, s *sqlstore.Store) {
	t.Helper()
	deadline := time.Now().Add(settleWait)
	last, stable := -1, 0
	for time.Now().Before(deadline) {
		n := s.PreparedStatements()
		if n > 0 && n == last {
			stable++
			if stable >= 5 {
				return
			}
		} else {
			stable = 0
		}
		last = n
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("prepared statements did not settle within %s (%d)", settleWait, s.PreparedStatements())
}

// exercise opens an account with awkward names, opens and credits a
// deposit with an awkward raw body, debits with an awkward description and
// key, and reads it all back through the store's queries.
func exercise(t *testing.T, s *sqlstore.Store, svc *app.Service, round int) {
	t.Helper()
	ctx := context.Background()
	cust := fmt.Sprintf("%s #%d", awkward, round)
	acc, err := svc.OpenAccount(ctx, ports.OpenAccount{CustomerID: cust, AdditionalCustomerID: awkward, Currency: domain.KZT})
	if err != nil {
		t.Fatalf("round %d: open account: %v", round, err)
	}
	got, err := s.AccountByCustomer(ctx, cust, domain.KZT)
	if err != nil || got.ID() != acc.Account.ID() || got.AdditionalCustomerID() != awkward {
		t.Fatalf("round %d: account by customer = %+v, %v", round, got, err)
	}
	dep, err := svc.OpenDeposit(ctx, ports.OpenDeposit{Channel: channel, CustomerID: cust,
		Amount: domain.NewAmount(benchAmountMinor, domain.KZT), Limits: limits})
	if err != nil {
		t.Fatalf("round %d: open deposit: %v", round, err)
	}
	body := `{"note":"` + awkward + "\x00\xff" + `"}`
	op := fmt.Sprintf("op'?%d", round)
	res, err := svc.SettleDeposit(ctx, ports.SettleDeposit{Channel: channel, PaymentID: dep.PaymentID,
		Outcome: domain.Outcome{Method: "kassa24", Kind: domain.OutcomeSuccess, Status: "success", OperationID: op,
			Amount: domain.NewAmount(benchAmountMinor, domain.KZT)}, RawBody: body, ReceivedAt: time.Now()})
	if err != nil || res.Effect != domain.EffectCredit {
		t.Fatalf("round %d: settle = %v, %v", round, res.Effect, err)
	}
	// The replay must be recognised through the prepared inbox lookup too.
	res, err = svc.SettleDeposit(ctx, ports.SettleDeposit{Channel: channel, PaymentID: dep.PaymentID,
		Outcome: domain.Outcome{Method: "kassa24", Kind: domain.OutcomeSuccess, Status: "success", OperationID: op,
			Amount: domain.NewAmount(benchAmountMinor, domain.KZT)}, RawBody: body, ReceivedAt: time.Now()})
	if err != nil || res.Effect != domain.EffectReplay {
		t.Fatalf("round %d: replay = %v, %v", round, res.Effect, err)
	}
	inbox, err := s.ListInbox(ctx, ports.InboxQuery{PaymentID: dep.PaymentID})
	if err != nil || len(inbox) != 2 {
		t.Fatalf("round %d: inbox = %d records, %v", round, len(inbox), err)
	}
	for _, rec := range inbox {
		if rec.Body != body || rec.OperationID != op {
			t.Fatalf("round %d: inbox body %q op %q, want %q %q", round, rec.Body, rec.OperationID, body, op)
		}
	}
	key := fmt.Sprintf("key?'%d", round)
	debit := ports.Debit{AccountID: acc.Account.ID(), Amount: domain.NewAmount(1, domain.KZT), Description: awkward,
		IdempotencyKey: key, RequestHash: "h" + key, Actor: awkward}
	if _, err := svc.Debit(ctx, debit); err != nil {
		t.Fatalf("round %d: debit: %v", round, err)
	}
	rec, err := s.DebitByKey(ctx, acc.Account.ID(), key)
	if err != nil || rec.Description != awkward || rec.BalanceAfter.Minor() != benchAmountMinor-1 {
		t.Fatalf("round %d: debit record = %+v, %v", round, rec, err)
	}
	// A debit beyond the balance is refused by the conditional update, on
	// either path, and moves nothing.
	over := debit
	over.IdempotencyKey, over.RequestHash, over.Amount = key+"-over", "h-over", domain.NewAmount(benchAmountMinor, domain.KZT)
	if _, err := svc.Debit(ctx, over); !errors.Is(err, domain.ErrInsufficientFunds) {
		t.Fatalf("round %d: overdraft debit = %v, want ErrInsufficientFunds", round, err)
	}
	lines, err := s.Statement(ctx, ports.StatementQuery{AccountID: acc.Account.ID(), Limit: 10})
	if err != nil || len(lines) != 2 || lines[1].Description != awkward || lines[1].BalanceAfter.Minor() != benchAmountMinor-1 ||
		!strings.Contains(lines[0].Description, op) {
		t.Fatalf("round %d: statement = %+v, %v", round, lines, err)
	}
	deps, err := s.ListDeposits(ctx, ports.DepositQuery{CustomerID: cust, Status: domain.DepositSucceeded, Limit: 5})
	if err != nil || len(deps) != 1 || deps[0].OperationID != op {
		t.Fatalf("round %d: deposits = %+v, %v", round, deps, err)
	}
	if _, err := s.AccountByCustomer(ctx, cust+"?", domain.KZT); !errors.Is(err, ports.ErrNotFound) {
		t.Fatalf("round %d: unknown customer = %v, want ErrNotFound", round, err)
	}
	chk, err := s.CheckLedger(ctx)
	if err != nil || !chk.Healthy() {
		t.Fatalf("round %d: ledger %+v, %v", round, chk, err)
	}
}
