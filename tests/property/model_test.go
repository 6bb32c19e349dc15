package property_test

import "fmt"

// The model: plain maps of what must be true, updated by the same rules
// DESIGN.md §3 states, written here a second time and independently of
// the domain package, so that a bug in one does not hide in the other.

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
}

type mDebit struct {
	accountID   string
	amount      int64
	description string
	balance     int64 // balance after, as first answered
}

type mException struct {
	paymentID   string
	operationID int64
	status      string
	amount      int64
	currency    string
	accountID   string // the deposit's account, "" for an unknown payment
	state       string // open, resolved, dismissed
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
	// Totals since the check began, in tiyn.
	credited        int64 // deposit credits
	debited         int64
	resolvedCredits int64
}

func newModel() *model {
	return &model{
		accounts:   map[string]*mAccount{},
		byID:       map[string]*mAccount{},
		deposits:   map[string]*mDeposit{},
		debits:     map[string]*mDebit{},
		exceptions: map[string]*mException{},
	}
}

// exceptionKey identifies "the same callback" as the service does.
func exceptionKey(paymentID string, op int64, status string, amount int64, currency string) string {
	return fmt.Sprintf("%s|%d|%s|%d|%s", paymentID, op, status, amount, currency)
}

// expect is the model's verdict on one well-signed callback: the effect
// the service must report. It applies the effect to the model.
func (m *model) expect(paymentID string, op int64, status string, amount int64, currency string) string {
	if status == "processing" {
		return "recorded"
	}
	raise := func(accountID string) string {
		key := exceptionKey(paymentID, op, status, amount, currency)
		if _, ok := m.exceptions[key]; ok {
			return "replay"
		}
		m.exceptions[key] = &mException{paymentID: paymentID, operationID: op, status: status,
			amount: amount, currency: currency, accountID: accountID, state: "open"}
		return "exception"
	}
	d, ok := m.deposits[paymentID]
	if !ok {
		return raise("")
	}
	acc := m.accounts[d.customerID]
	if currency != "KZT" || amount != d.amount {
		return raise(acc.id)
	}
	switch status {
	case "success":
		if d.state == "succeeded" {
			if op == d.operationID {
				return "replay"
			}
			return raise(acc.id)
		}
		if acc.status == "closed" {
			return raise(acc.id)
		}
		d.state, d.operationID = "succeeded", op
		acc.balance += d.amount
		m.credited += d.amount
		return "credited"
	case "decline":
		switch d.state {
		case "pending":
			d.state, d.operationID = "declined", op
			return "declined"
		case "declined":
			return "replay"
		}
		return raise(acc.id)
	}
	panic("model: unexpected status " + status)
}

func (m *model) customerTotal() int64 {
	var sum int64
	for _, a := range m.accounts {
		sum += a.balance
	}
	return sum
}
