// Package platform is the simulated Monetix platform's own side: its record
// of the payments it made (Payments) and the APIs it serves from that
// record to the merchant — the Gate's payment status (Gate, POST
// /v2/payment/status). The simulator (tools/platformsim) writes the record
// as it plays each payment, whether or not it delivers the payment's
// callbacks, so the Gate answers truthfully about a payment whose callback
// never came.
//
// The record keeps a constant amount per payment — what the platform's
// APIs answer about it, nothing of the run around it: its project, its id
// and at most MaxOperations operations (id, type, status, amount,
// currency, when created and completed). It is sharded by payment id, so
// the simulator's workers and the Gate's requests rarely wait for one
// another.
package platform

import (
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
)

// MaxOperations is the most operations one payment has: a sale, and a new
// sale for a success that comes after a decline.
const MaxOperations = 2

// numShards splits the record; a power of two.
const numShards = 64

// Status is an operation's status as the platform spells it.
type Status uint8

// Statuses of a kassa24 sale.
const (
	StatusProcessing Status = iota
	StatusDecline
	StatusSuccess
)

var statusNames = [...]string{
	StatusProcessing: monetix.StatusProcessing,
	StatusDecline:    monetix.StatusDecline,
	StatusSuccess:    monetix.StatusSuccess,
}

// String is the wire spelling (payment.status, operation.status).
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Final reports whether the status ends the operation.
func (s Status) Final() bool { return s == StatusDecline || s == StatusSuccess }

// Operation is one operation of a payment. Every operation of the
// simulated method is a sale (monetix.OperationSale).
type Operation struct {
	ID          int64
	Status      Status
	AmountMinor int64
	Currency    string
	// Created is when the operation began; Completed when its status
	// became final (zero before).
	Created, Completed time.Time
}

// Type is the operation's type on the wire.
func (Operation) Type() string { return monetix.OperationSale }

// Payment is the platform's record of one payment.
type Payment struct {
	ProjectID int64
	ID        string
	ops       [MaxOperations]Operation
	n         uint8
	// fault is the reconciliation break injected into this record
	// (FaultNone for a truthful one).
	fault Fault
}

// Fault returns the break injected into the payment's record.
func (p *Payment) Fault() Fault { return p.fault }

// Listings is how many times the platform's operation lists (the Data
// API, the CSV report) show each operation of the payment: twice for a
// FaultDuplicate, once otherwise.
func (p *Payment) Listings() int {
	if p.fault == FaultDuplicate {
		return 2
	}
	return 1
}

// Operations returns the payment's operations, oldest first.
func (p *Payment) Operations() []Operation { return p.ops[:p.n] }

// Last returns the payment's latest operation: its status is the
// payment's.
func (p *Payment) Last() Operation { return p.ops[p.n-1] }

// Errors of the record.
var (
	// ErrDuplicate: a payment with this id is already on record (the
	// merchant minted one id twice).
	ErrDuplicate = errors.New("platform: payment id already on record")
	// ErrUnknown: no payment with this id is on record.
	ErrUnknown = errors.New("platform: no such payment")
	// ErrOperation: the change does not fit the payment's operations (a
	// third operation, a final operation changed, an invalid status).
	ErrOperation = errors.New("platform: invalid operation change")
)

// Payments is the record, safe for concurrent use. The zero value is not
// ready: use NewPayments.
type Payments struct {
	seed   maphash.Seed
	shards [numShards]shard
	// gen counts changes, so a reader can tell a snapshot is stale.
	gen atomic.Int64
}

// Generation changes whenever the record does.
func (ps *Payments) Generation() int64 { return ps.gen.Load() }

type shard struct {
	mu sync.Mutex
	m  map[string]Payment
}

// NewPayments returns an empty record.
func NewPayments() *Payments {
	p := &Payments{seed: maphash.MakeSeed()}
	for i := range p.shards {
		p.shards[i].m = map[string]Payment{}
	}
	return p
}

func (ps *Payments) shard(id string) *shard {
	return &ps.shards[maphash.String(ps.seed, id)&(numShards-1)]
}

// Open records a payment the platform accepted: one sale operation of
// amount, in processing since at.
func (ps *Payments) Open(projectID int64, paymentID string, operationID, amountMinor int64, currency string, at time.Time) error {
	if paymentID == "" || projectID <= 0 || amountMinor <= 0 || currency == "" {
		return fmt.Errorf("%w: payment %q of project %d, %d %s", ErrOperation, paymentID, projectID, amountMinor, currency)
	}
	sh := ps.shard(paymentID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, dup := sh.m[paymentID]; dup {
		return fmt.Errorf("%w: %s", ErrDuplicate, paymentID)
	}
	p := Payment{ProjectID: projectID, ID: paymentID, n: 1}
	p.ops[0] = Operation{ID: operationID, Status: StatusProcessing, AmountMinor: amountMinor, Currency: currency, Created: at}
	sh.m[paymentID] = p
	ps.gen.Add(1)
	return nil
}

// Update sets the status of the payment's operation operationID at time
// at; an operation id the payment does not have yet starts a new sale of
// the same amount (a success after a decline), which needs the latest
// operation to be final. A final operation does not change again.
func (ps *Payments) Update(paymentID string, operationID int64, status Status, at time.Time) error {
	if int(status) >= len(statusNames) {
		return fmt.Errorf("%w: %s", ErrOperation, status)
	}
	sh := ps.shard(paymentID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	p, ok := sh.m[paymentID]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknown, paymentID)
	}
	i := int(p.n) - 1
	if p.ops[i].ID != operationID {
		if !p.ops[i].Status.Final() || int(p.n) == MaxOperations {
			return fmt.Errorf("%w: payment %s: a new operation %d after operation %d (%s)", ErrOperation, paymentID,
				operationID, p.ops[i].ID, p.ops[i].Status)
		}
		for _, o := range p.ops[:p.n] {
			if o.ID == operationID {
				return fmt.Errorf("%w: payment %s: operation %d is not the latest", ErrOperation, paymentID, operationID)
			}
		}
		prev := p.ops[i]
		i++
		p.n++
		p.ops[i] = Operation{ID: operationID, Status: StatusProcessing, AmountMinor: prev.AmountMinor, Currency: prev.Currency, Created: at}
	}
	op := &p.ops[i]
	if op.Status.Final() {
		if op.Status == status {
			return nil // the same news again
		}
		return fmt.Errorf("%w: payment %s: operation %d is %s already, not %s", ErrOperation, paymentID, operationID, op.Status, status)
	}
	op.Status = status
	if status.Final() {
		op.Completed = at
	}
	sh.m[paymentID] = p
	ps.gen.Add(1)
	return nil
}

// Get returns the record of a payment.
func (ps *Payments) Get(paymentID string) (Payment, bool) {
	sh := ps.shard(paymentID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	p, ok := sh.m[paymentID]
	return p, ok
}

// Len is the number of payments on record.
func (ps *Payments) Len() int {
	n := 0
	for i := range ps.shards {
		sh := &ps.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// Each calls fn with a copy of every payment on record, one shard at a
// time (fn runs without the shard's lock; buf is reused between shards).
// A payment changed while Each runs may be seen before or after.
func (ps *Payments) Each(fn func(p *Payment) error) error {
	var buf []Payment
	for i := range ps.shards {
		sh := &ps.shards[i]
		sh.mu.Lock()
		buf = buf[:0]
		for _, p := range sh.m {
			buf = append(buf, p)
		}
		sh.mu.Unlock()
		for j := range buf {
			if err := fn(&buf[j]); err != nil {
				return err
			}
		}
	}
	return nil
}
