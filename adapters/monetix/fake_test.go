package monetix_test

import (
	"context"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// fakeLedger is a small in-memory ports.Ledger: enough of the use cases for
// the handler's tests (accounts, deposits, settlement by the domain's state
// machine, exceptions, inbox), plus fault injection and a record of the
// commands the handler sent. Methods the adapter never calls are left to
// the embedded nil interface (calling them panics, which a test would show).
type fakeLedger struct {
	ports.Ledger

	mu         sync.Mutex
	seq        int
	accounts   map[string]domain.Account // by id
	byCustomer map[string]string         // customer|currency → account id
	deposits   map[string]domain.Deposit // channel|payment id → deposit
	exceptions []domain.Exception
	inbox      []ports.InboxRecord
	unreadable []ports.RecordUnreadable

	// Fault injection: returned instead of doing the work when not nil.
	verifyErr, openErr, settleErr, lookupErr error

	// What the handler asked for.
	opens   []ports.OpenDeposit
	settles []ports.SettleDeposit
	lookups []string
}

func newFakeLedger() *fakeLedger {
	return &fakeLedger{
		accounts:   map[string]domain.Account{},
		byCustomer: map[string]string{},
		deposits:   map[string]domain.Deposit{},
	}
}

var fakeEpoch = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

func (f *fakeLedger) nextID(prefix string) string {
	f.seq++
	return fmt.Sprintf("%s_fake%04d", prefix, f.seq)
}

func depKey(ch domain.Channel, paymentID string) string {
	return ch.Provider + "|" + ch.Method + "|" + ch.Project + "|" + paymentID
}

func (f *fakeLedger) OpenAccount(_ context.Context, cmd ports.OpenAccount) (ports.AccountResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := cmd.CustomerID + "|" + cmd.Currency.Code()
	if id, ok := f.byCustomer[key]; ok {
		return ports.AccountResult{Account: f.accounts[id]}, nil
	}
	acc, err := domain.NewAccount(f.nextID("acc"), cmd.CustomerID, cmd.AdditionalCustomerID, cmd.Currency, fakeEpoch)
	if err != nil {
		return ports.AccountResult{}, err
	}
	f.accounts[acc.ID()] = acc
	f.byCustomer[key] = acc.ID()
	return ports.AccountResult{Account: acc, Created: true}, nil
}

func (f *fakeLedger) ChangeAccountStatus(_ context.Context, cmd ports.ChangeAccountStatus) (domain.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	acc, ok := f.accounts[cmd.AccountID]
	if !ok {
		return domain.Account{}, ports.ErrNotFound
	}
	next, err := acc.ChangeStatus(cmd.To, fakeEpoch)
	if err != nil {
		return domain.Account{}, err
	}
	f.accounts[acc.ID()] = next
	return next, nil
}

func (f *fakeLedger) accountByCustomer(customerID string, currency domain.Currency) (domain.Account, error) {
	id, ok := f.byCustomer[customerID+"|"+currency.Code()]
	if !ok {
		return domain.Account{}, fmt.Errorf("account %q: %w", customerID, ports.ErrNotFound)
	}
	return f.accounts[id], nil
}

func (f *fakeLedger) VerifyCustomer(_ context.Context, customerID string, currency domain.Currency) (domain.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.verifyErr != nil {
		return domain.Account{}, f.verifyErr
	}
	if err := domain.ValidateCustomerID(customerID); err != nil {
		return domain.Account{}, err
	}
	acc, err := f.accountByCustomer(customerID, currency)
	if err != nil {
		return domain.Account{}, err
	}
	if err := acc.CanReceiveDeposit(); err != nil {
		return domain.Account{}, err
	}
	return acc, nil
}

func (f *fakeLedger) OpenDeposit(_ context.Context, cmd ports.OpenDeposit) (domain.Deposit, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opens = append(f.opens, cmd)
	if f.openErr != nil {
		return domain.Deposit{}, f.openErr
	}
	if err := cmd.Limits.Validate(); err != nil {
		return domain.Deposit{}, err
	}
	if err := cmd.Limits.Check(cmd.Amount); err != nil {
		return domain.Deposit{}, err
	}
	acc, err := f.accountByCustomer(cmd.CustomerID, cmd.Amount.Currency())
	if err != nil {
		return domain.Deposit{}, err
	}
	id := f.nextID("dep")
	dep, err := domain.NewDeposit(id, cmd.Channel, id, acc, cmd.Amount, fakeEpoch)
	if err != nil {
		return domain.Deposit{}, err
	}
	f.deposits[depKey(cmd.Channel, id)] = dep
	return dep, nil
}

func (f *fakeLedger) Deposit(_ context.Context, ch domain.Channel, paymentID string) (domain.Deposit, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dep, ok := f.deposits[depKey(ch, paymentID)]
	if !ok {
		return domain.Deposit{}, ports.ErrNotFound
	}
	return dep, nil
}

func (f *fakeLedger) DepositByPaymentID(_ context.Context, paymentID string) (domain.Deposit, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups = append(f.lookups, paymentID)
	if f.lookupErr != nil {
		return domain.Deposit{}, f.lookupErr
	}
	for _, d := range f.deposits {
		if d.PaymentID == paymentID {
			return d, nil
		}
	}
	return domain.Deposit{}, ports.ErrNotFound
}

// SettleDeposit mirrors app.Service.settle on the in-memory state.
// RecordUnreadable keeps the body in the inbox and raises one exception
// per distinct body, as app.Service does.
func (f *fakeLedger) RecordUnreadable(_ context.Context, cmd ports.RecordUnreadable) (ports.SettleResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unreadable = append(f.unreadable, cmd)
	if f.settleErr != nil {
		return ports.SettleResult{}, f.settleErr
	}
	res := ports.SettleResult{Effect: domain.EffectException,
		Decision: domain.Decision{Effect: domain.EffectException, Reason: domain.ReasonMalformedCallback}}
	for _, e := range f.exceptions {
		if e.Evidence == cmd.RawBody {
			res.Effect = domain.EffectReplay
			res.Exception = &e
		}
	}
	if res.Exception == nil {
		f.seq++
		e := domain.Exception{ID: fmt.Sprintf("exc_%d", f.seq), Reason: domain.ReasonMalformedCallback, Detail: cmd.Detail,
			Channel: cmd.Channel, PaymentID: cmd.PaymentID, Evidence: cmd.RawBody, State: domain.ExceptionOpen}
		f.exceptions = append(f.exceptions, e)
		res.Exception = &e
	}
	f.seq++
	f.inbox = append(f.inbox, ports.InboxRecord{ID: int64(f.seq), Channel: cmd.Channel, PaymentID: cmd.PaymentID, Body: cmd.RawBody,
		Outcome: res.Effect, ExceptionID: res.Exception.ID, Reason: domain.ReasonMalformedCallback})
	res.InboxID = int64(f.seq)
	return res, nil
}

func (f *fakeLedger) SettleDeposit(_ context.Context, cmd ports.SettleDeposit) (ports.SettleResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settles = append(f.settles, cmd)
	if f.settleErr != nil {
		return ports.SettleResult{}, f.settleErr
	}
	res := ports.SettleResult{}
	key := depKey(cmd.Channel, cmd.PaymentID)
	dep, found := f.deposits[key]
	if found {
		res.Deposit = &dep
		res.Decision = dep.Decide(cmd.Outcome)
	} else {
		res.Decision = domain.DecideUnknown(cmd.Outcome)
	}
	// As app.Service does: a callback already applied (same dedupe key) is
	// a replay whatever happened to the deposit since.
	dedupe := app.DedupeKey(cmd.Channel, cmd.PaymentID, cmd.Outcome)
	for _, r := range f.inbox {
		if r.DedupeKey == dedupe && res.Decision.Effect != domain.EffectRecord {
			res.Decision = domain.Decision{Effect: domain.EffectReplay, Detail: "callback already applied"}
		}
	}
	res.Effect = res.Decision.Effect
	switch res.Effect {
	case domain.EffectCredit:
		acc := f.accounts[dep.AccountID]
		if acc.Status() == domain.AccountClosed {
			res.Decision = domain.Decision{Effect: domain.EffectException, Reason: domain.ReasonAccountClosed}
			res.Effect = domain.EffectException
			break
		}
		next, err := dep.Apply(res.Decision, cmd.Outcome, cmd.ReceivedAt)
		if err != nil {
			return ports.SettleResult{}, err
		}
		credited, err := domain.RehydrateAccount(acc.ID(), acc.CustomerID(), acc.AdditionalCustomerID(), acc.Currency(),
			acc.Status(), acc.Balance().Minor()+dep.Amount.Minor(), acc.Version()+1, acc.CreatedAt(), cmd.ReceivedAt)
		if err != nil {
			return ports.SettleResult{}, err
		}
		f.accounts[acc.ID()] = credited
		f.deposits[key] = next
		res.Deposit = &next
	case domain.EffectDecline:
		next, err := dep.Apply(res.Decision, cmd.Outcome, cmd.ReceivedAt)
		if err != nil {
			return ports.SettleResult{}, err
		}
		f.deposits[key] = next
		res.Deposit = &next
	}
	if res.Effect == domain.EffectException {
		for i := range f.exceptions {
			if f.exceptions[i].DedupeKey == dedupe {
				res.Effect = domain.EffectReplay
				res.Exception = &f.exceptions[i]
			}
		}
		if res.Exception == nil {
			e := domain.Exception{ID: f.nextID("exc"), Reason: res.Decision.Reason, Detail: res.Decision.Detail,
				Channel: cmd.Channel, PaymentID: cmd.PaymentID, OperationID: cmd.Outcome.OperationID,
				Status: cmd.Outcome.Status, Amount: cmd.Outcome.Amount, Evidence: cmd.RawBody,
				DedupeKey: dedupe, State: domain.ExceptionOpen, CreatedAt: cmd.ReceivedAt}
			if res.Deposit != nil {
				e.DepositID, e.AccountID = res.Deposit.ID, res.Deposit.AccountID
			}
			f.exceptions = append(f.exceptions, e)
			res.Exception = &e
		}
	}
	rec := ports.InboxRecord{ID: int64(len(f.inbox) + 1), Channel: cmd.Channel, PaymentID: cmd.PaymentID,
		OperationID: cmd.Outcome.OperationID, Status: cmd.Outcome.Status, Body: cmd.RawBody,
		Outcome: res.Effect, DedupeKey: dedupe, ReceivedAt: cmd.ReceivedAt}
	f.inbox = append(f.inbox, rec)
	res.InboxID = rec.ID
	return res, nil
}

func (f *fakeLedger) Balance(_ context.Context, accountID string, _ time.Time) (domain.Amount, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	acc, ok := f.accounts[accountID]
	if !ok {
		return domain.Amount{}, ports.ErrNotFound
	}
	return acc.Balance(), nil
}

func (f *fakeLedger) ListInbox(_ context.Context, q ports.InboxQuery) ([]ports.InboxRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ports.InboxRecord
	for _, r := range f.inbox {
		if q.PaymentID == "" || r.PaymentID == q.PaymentID {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeLedger) ListExceptions(_ context.Context, _ ports.ExceptionQuery) ([]domain.Exception, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]domain.Exception(nil), f.exceptions...), nil
}

func (f *fakeLedger) CheckLedger(context.Context) (ports.LedgerCheck, error) {
	return ports.LedgerCheck{CustomerBalanceTotal: new(big.Int), SystemBalanceTotal: new(big.Int)}, nil
}
