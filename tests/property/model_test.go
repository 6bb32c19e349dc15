package property_test

import "fmt"

// The model: plain maps of what must be true, updated by the rules
// docs/architecture.md §3 and §8 state, written here a second time and independently
// of the domain package, so that a bug in one does not hide in the other.
//
// The rule the whole machine checks, from first principles:
//
//	A customer is owed the cash of each payment once. Nothing moves money
//	into a customer account but a payment's one credit — made by the
//	platform's success callback, or by an operator within the evidence the
//	platform gave — and nothing moves it out but debits.
//
// So the model keeps, per payment, whether it is credited and how much;
// per exception, what its evidence claims; and an operator's credit is
// allowed only when the payment is not credited yet, the evidence shows a
// success, and the amount is within the evidence and the method's maximum.

// Limits of the kassa24 method and the balance ceiling, in tiyn.
const (
	minTiyn = 100
	maxTiyn = 50_000_000
	// ceilingTiyn is the balance ceiling of every customer account
	// (1,000,000,000,000.00 KZT), as docs/architecture.md states it.
	ceilingTiyn int64 = 100_000_000_000_000
)

type mAccount struct {
	customerID string
	id         string
	status     string // active, blocked, closed
	balance    int64
}

type mDeposit struct {
	paymentID   string
	customerID  string
	amount      int64
	state       string // pending, succeeded, declined
	operationID int64  // the operation that settled it
	// creditedBy says who credited it: "" (not yet), "callback" or
	// "operator"; creditedAmount how much.
	creditedBy     string
	creditedAmount int64
	// settled holds every platform operation (id and status) that moved
	// the deposit: the same operation delivered again — by a callback or a
	// status answer, however late — is a replay of what it did, even after
	// a later operation moved the deposit on (a decline, then a success).
	settled map[string]bool
	// direct: a deposit of the check's own project (the reconciliation's
	// ledger side), which no Monetix handler serves: the platform's word
	// about it reaches the service through the app, never over HTTP.
	direct bool
}

func settledKey(op int64, status string) string { return fmt.Sprintf("%d|%s", op, status) }

// settle records that op moved d.
func (d *mDeposit) settle(op int64, status string) {
	if d.settled == nil {
		d.settled = map[string]bool{}
	}
	d.settled[settledKey(op, status)] = true
}

type mDebit struct {
	accountID   string
	amount      int64
	description string
	balance     int64 // balance after, as first answered
}

// mProposal is a four-eyes credit waiting for a second operator.
type mProposal struct {
	actor     string
	accountID string
	amount    int64
}

type mException struct {
	paymentID   string
	operationID int64
	status      string // the callback's payment status
	amount      int64  // what the evidence claims
	currency    string
	reason      string // why the model raised it
	accountID   string // the deposit's account, "" for an unknown payment
	state       string // open, proposed, resolved, dismissed
	proposal    *mProposal
}

// creditable says whether the evidence shows collected cash: only a
// success callback does.
func (e *mException) creditable() bool { return e.status == "success" && e.currency == "KZT" }

// bound is the most an operator may credit for e.
func (e *mException) bound() int64 {
	if !e.creditable() {
		return 0
	}
	return min(e.amount, maxTiyn)
}

// mCallback is a callback the platform sent, kept for exact replays.
type mCallback struct {
	body      []byte
	paymentID string
	acked     int // answers 200 received
	delivered int // deliveries that reached a handler
}

type model struct {
	accounts   map[string]*mAccount // by customer id
	byID       map[string]*mAccount // by account id
	deposits   map[string]*mDeposit // by payment id
	debits     map[string]*mDebit   // by account id + "/" + idempotency key
	exceptions map[string]*mException
	callbacks  []*mCallback
	// answers are the Gate's status answers by body: applied ones are
	// kept in the inbox as evidence, like callbacks.
	answers map[string]*mCallback
	// direct is evidence delivered to the app without a Monetix handler:
	// reconciliation rows and the callbacks and answers racing a run
	// (recon_test.go). Never replayed through the handlers.
	direct []*mCallback
	// unknownCredited holds the unknown payments an operator credited,
	// with the amount.
	unknownCredited map[string]int64
	// evidence holds, per payment id, the largest amount a success
	// callback claimed: no credit of the payment may exceed it.
	evidence map[string]int64
	// Totals since the check began, in tiyn.
	credited        int64 // callback credits
	debited         int64
	resolvedCredits int64 // operator credits
	seeded          int64 // balances put in place directly (the ceiling action)
}

func newModel() *model {
	return &model{
		accounts:        map[string]*mAccount{},
		byID:            map[string]*mAccount{},
		deposits:        map[string]*mDeposit{},
		debits:          map[string]*mDebit{},
		exceptions:      map[string]*mException{},
		unknownCredited: map[string]int64{},
		evidence:        map[string]int64{},
	}
}

// exceptionKey identifies "the same callback" as the service does.
func exceptionKey(paymentID string, op int64, status string, amount int64, currency string) string {
	return fmt.Sprintf("%s|%d|%s|%d|%s", paymentID, op, status, amount, currency)
}

// ledgerExceptionKey is the key of an exception a reconciliation raises
// about a credited deposit itself (its status "succeeded", claiming
// nothing): one per deposit and reason, so the reason is part of it.
func ledgerExceptionKey(d *mDeposit, reason string) string {
	return exceptionKey(d.paymentID, d.operationID, "succeeded", 0, "KZT") + "|" + reason
}

// expect is the model's verdict on one well-signed callback: the effect
// the service must report. It applies the effect to the model.
func (m *model) expect(paymentID string, op int64, status string, amount int64, currency string) string {
	return m.expectFor(paymentID, op, status, amount, currency, "kassa24")
}

// expectFor is expect for a callback naming a payment method.
func (m *model) expectFor(paymentID string, op int64, status string, amount int64, currency, method string) string {
	if status == "processing" {
		return "recorded"
	}
	if status == "success" && currency == "KZT" && amount > m.evidence[paymentID] {
		m.evidence[paymentID] = amount
	}
	raise := func(accountID, reason string) string {
		key := exceptionKey(paymentID, op, status, amount, currency)
		if _, ok := m.exceptions[key]; ok {
			return "replay"
		}
		m.exceptions[key] = &mException{paymentID: paymentID, operationID: op, status: status,
			amount: amount, currency: currency, reason: reason, accountID: accountID, state: "open"}
		return "exception"
	}
	d, ok := m.deposits[paymentID]
	if !ok {
		return raise("", "unknown_payment")
	}
	acc := m.accounts[d.customerID]
	if method != "kassa24" {
		return raise(acc.id, "method_mismatch")
	}
	if currency != "KZT" {
		return raise(acc.id, "currency_mismatch")
	}
	if amount != d.amount {
		return raise(acc.id, "amount_mismatch")
	}
	if d.settled[settledKey(op, status)] {
		return "replay"
	}
	switch status {
	case "success":
		if d.state == "succeeded" {
			if op == d.operationID {
				return "replay"
			}
			return raise(acc.id, "duplicate_success")
		}
		if acc.status == "closed" {
			return raise(acc.id, "account_closed")
		}
		if acc.balance > ceilingTiyn-d.amount {
			return raise(acc.id, "balance_ceiling")
		}
		d.state, d.operationID = "succeeded", op
		d.settle(op, status)
		d.creditedBy, d.creditedAmount = "callback", d.amount
		acc.balance += d.amount
		m.credited += d.amount
		return "credited"
	case "decline":
		switch d.state {
		case "pending":
			d.state, d.operationID = "declined", op
			d.settle(op, status)
			return "declined"
		case "declined":
			return "replay"
		}
		return raise(acc.id, "decline_after_success")
	case "refund success":
		// Money taken back after the fact (a reconciliation source's
		// refund of the sale): an operator decides, nothing moves.
		return raise(acc.id, "reversal")
	}
	panic("model: unexpected status " + status)
}

// creditRefusal is why the model refuses an operator's credit of e with
// amount (0: the evidence's) to target (nil: the deposit's account), or ""
// when it must be made. The refusal is the HTTP status the rule implies.
func (m *model) creditRefusal(e *mException, target *mAccount, amount int64) int {
	if e.accountID == "" && target == nil {
		return 400 // an unknown payment needs an account named
	}
	if d, ok := m.deposits[e.paymentID]; ok && d.creditedBy != "" {
		return 409 // the payment is already credited
	}
	if _, ok := m.unknownCredited[e.paymentID]; ok {
		return 409
	}
	if target == nil {
		target = m.byID[e.accountID]
	}
	if target.status == "closed" {
		return 409
	}
	if amount == 0 {
		amount = e.amount
	}
	if !e.creditable() || amount > e.bound() {
		return 422 // beyond the evidence
	}
	if target.balance > ceilingTiyn-amount {
		return 422 // past the balance ceiling
	}
	return 0
}

// applyCredit records an operator's credit the model allowed.
func (m *model) applyCredit(e *mException, target *mAccount, amount int64, op int64) {
	if amount == 0 {
		amount = e.amount
	}
	if target == nil {
		target = m.byID[e.accountID]
	}
	if d, ok := m.deposits[e.paymentID]; ok {
		d.state, d.operationID = "succeeded", op
		d.creditedBy, d.creditedAmount = "operator", amount
	} else {
		m.unknownCredited[e.paymentID] = amount
	}
	target.balance += amount
	m.resolvedCredits += amount
	e.state = "resolved"
	e.proposal = nil
}

func (m *model) customerTotal() int64 {
	var sum int64
	for _, a := range m.accounts {
		sum += a.balance
	}
	return sum
}
