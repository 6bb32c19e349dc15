package ports

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tiyn/tiyn/domain"
)

// Ledger is the driving port: the use cases that the Monetix and REST
// adapters (and anything embedding Tiyn) call. app.Service implements it.
//
// Errors are the domain's sentinels (domain.ErrInvalidAmount,
// domain.ErrAccountBlocked, domain.ErrInsufficientFunds, …), the store's
// (ErrNotFound, ErrUnavailable) and the ones below; adapters map them to
// their wire codes with errors.Is / errors.As.
type Ledger interface {
	// OpenAccount opens an account for (customer id, currency), or returns
	// the existing one with Created=false: opening is idempotent. It never
	// returns an account other than the one asked for: an existing account
	// that is closed, or that has another additional customer id than the
	// command names (an empty one matches any), is an *AccountExistsError.
	OpenAccount(ctx context.Context, cmd OpenAccount) (AccountResult, error)
	// Account returns an account by id (ErrNotFound).
	Account(ctx context.Context, id string) (domain.Account, error)
	// AccountByCustomer returns a customer's account in a currency (ErrNotFound).
	AccountByCustomer(ctx context.Context, customerID string, currency domain.Currency) (domain.Account, error)
	// ListAccounts pages through accounts.
	ListAccounts(ctx context.Context, q AccountQuery) ([]domain.Account, error)
	// ChangeAccountStatus blocks, unblocks or closes an account
	// (domain.ErrAccountClosed, domain.ErrAccountHasBalance, ErrNotFound).
	ChangeAccountStatus(ctx context.Context, cmd ChangeAccountStatus) (domain.Account, error)

	// VerifyCustomer answers the platform's "does this account exist and can
	// it take a payment": ErrNotFound, domain.ErrAccountBlocked,
	// domain.ErrAccountClosed.
	VerifyCustomer(ctx context.Context, customerID string, currency domain.Currency) (domain.Account, error)
	// OpenDeposit opens a pending deposit with a fresh payment id
	// (ErrNotFound, domain.ErrAccountBlocked/Closed, domain.ErrAmountOutOfLimits,
	// domain.ErrCurrencyMismatch).
	OpenDeposit(ctx context.Context, cmd OpenDeposit) (domain.Deposit, error)
	// SettleDeposit applies one authenticated callback: the inbox record, the
	// decision and its effect (credit, decline, exception) are committed in
	// one transaction, before SettleDeposit returns. Replays change nothing.
	// ErrUnavailable when nothing could be committed.
	SettleDeposit(ctx context.Context, cmd SettleDeposit) (SettleResult, error)
	// RecordUnreadable keeps an authentic callback (its signature
	// verified) that cannot be read as an outcome: its raw body in the
	// inbox and a malformed_callback exception for an operator, in one
	// transaction, once per distinct body (a redelivery is a replay). No
	// money moves.
	RecordUnreadable(ctx context.Context, cmd RecordUnreadable) (SettleResult, error)
	// Deposit returns a deposit by channel and payment id (ErrNotFound).
	Deposit(ctx context.Context, ch domain.Channel, paymentID string) (domain.Deposit, error)
	// DepositByPaymentID finds a deposit by payment id in any channel
	// (ErrNotFound; ErrAmbiguous when two channels share the id).
	DepositByPaymentID(ctx context.Context, paymentID string) (domain.Deposit, error)
	// ListDeposits pages through deposits.
	ListDeposits(ctx context.Context, q DepositQuery) ([]domain.Deposit, error)
	// StatusCheck returns a deposit with the status poller's record of it
	// (zero counts when it was never checked). ErrNotFound.
	StatusCheck(ctx context.Context, depositID string) (StatusCheck, error)

	// Debit spends from a customer account into merchant revenue, once per
	// idempotency key. A replay returns the original result with
	// Replayed=true; the same key with another request is ErrIdempotencyMismatch;
	// domain.ErrInsufficientFunds, domain.ErrAccountBlocked/Closed, ErrNotFound.
	Debit(ctx context.Context, cmd Debit) (DebitResult, error)
	// Balance returns an account's balance now, or as of a moment when at is
	// not zero (ErrNotFound). The zero time cannot be asked for as a moment
	// here: use BalanceAt.
	Balance(ctx context.Context, accountID string, at time.Time) (domain.Amount, error)
	// BalanceAt returns an account's balance as of the moment at, whatever
	// it is: right after the last posting at or before it, zero before the
	// account's first posting (also for any moment before the account was
	// opened, Go's zero time included). ErrNotFound.
	BalanceAt(ctx context.Context, accountID string, at time.Time) (domain.Amount, error)
	// Statement pages through an account's postings (ErrNotFound).
	Statement(ctx context.Context, q StatementQuery) ([]StatementLine, error)

	// ListExceptions pages through exceptions.
	ListExceptions(ctx context.Context, q ExceptionQuery) ([]domain.Exception, error)
	// Exception returns one exception (ErrNotFound).
	Exception(ctx context.Context, id string) (domain.Exception, error)
	// ResolveException dismisses an open exception or credits it, with a
	// note. A credit of an exception that belongs to a deposit settles that
	// deposit: it moves to succeeded and gets its one deposit credit, so a
	// later callback for the payment is a replay or an exception, never a
	// second credit. The amount defaults to what the evidence claims and
	// may not exceed it (domain.ErrExceedsEvidence); a deposit already
	// credited refuses (domain.ErrAlreadyCredited); an exception without a
	// deposit needs an AccountID and is credited at most once per payment.
	// With four eyes on, a credit is only proposed: the exception comes
	// back in state proposed and no money moves until ApproveException.
	// domain.ErrInvalidTransition when the exception is not open.
	ResolveException(ctx context.Context, cmd ResolveException) (domain.Exception, error)
	// ApproveException makes a proposed credit, checked again as in
	// ResolveException, by an operator other than its proposer
	// (domain.ErrSelfApproval).
	ApproveException(ctx context.Context, cmd DecideProposal) (domain.Exception, error)
	// RejectException drops a proposed credit: the exception is open again.
	RejectException(ctx context.Context, cmd DecideProposal) (domain.Exception, error)

	// ListInbox pages through stored callbacks.
	ListInbox(ctx context.Context, q InboxQuery) ([]InboxRecord, error)
	// CheckLedger recomputes the ledger's invariants.
	CheckLedger(ctx context.Context) (LedgerCheck, error)
	// DepositCredit returns the id of the transfer that credited a
	// deposit (ErrNotFound while it has none).
	DepositCredit(ctx context.Context, depositID string) (string, error)
	// Overview answers the operator console's first page: the credits of
	// a business day, the pending deposits by age, the exceptions waiting
	// by reason (see OverviewReader).
	Overview(ctx context.Context, q OverviewQuery) (Overview, error)

	// Reconciler: reconciling and closing business days.
	Reconciler
}

// Errors of the driving port beyond the domain's and the store's.
var (
	// ErrIdempotencyMismatch: an idempotency key reused with another request.
	ErrIdempotencyMismatch = errors.New("idempotency key reused with a different request")
	// ErrAmbiguous: a lookup matched more than one row.
	ErrAmbiguous = errors.New("ambiguous")
	// ErrAccountExists: the customer already has an account in the
	// currency, and it differs from the one asked for (AccountExistsError).
	ErrAccountExists = errors.New("the customer's account exists and differs from the request")
)

// AccountExistsError is OpenAccount's refusal to hand back an account other
// than the one asked for: the customer's account in that currency is
// closed, or has another additional customer id. errors.Is(err,
// ErrAccountExists) holds.
type AccountExistsError struct {
	Existing             domain.Account
	AdditionalCustomerID string // what the command asked for
}

func (e *AccountExistsError) Error() string {
	a := e.Existing
	if a.Status() == domain.AccountClosed {
		return fmt.Sprintf("customer %q already has account %s in %s and it is closed", a.CustomerID(), a.ID(), a.Currency())
	}
	return fmt.Sprintf("customer %q already has account %s in %s with additional customer id %q, not %q",
		a.CustomerID(), a.ID(), a.Currency(), a.AdditionalCustomerID(), e.AdditionalCustomerID)
}

// Is makes errors.Is(err, ErrAccountExists) hold.
func (e *AccountExistsError) Is(target error) bool { return target == ErrAccountExists }

// OpenAccount opens a customer account.
type OpenAccount struct {
	CustomerID           string
	AdditionalCustomerID string
	Currency             domain.Currency
	Actor                string
}

// AccountResult is an opened (or already existing) account.
type AccountResult struct {
	Account domain.Account
	Created bool
}

// ChangeAccountStatus is an operator's block, unblock or close.
type ChangeAccountStatus struct {
	AccountID string
	To        domain.AccountStatus
	Actor     string
}

// OpenDeposit asks for a payment id for an incoming payment.
type OpenDeposit struct {
	Channel    domain.Channel
	CustomerID string
	Amount     domain.Amount
	Limits     domain.AmountLimits
}

// SettleDeposit is one authenticated piece of platform evidence about a
// payment: a callback, or the answer to a status check.
type SettleDeposit struct {
	Channel    domain.Channel
	PaymentID  string
	Outcome    domain.Outcome
	Source     Source // zero means SourceCallback
	RawBody    string // stored in the inbox exactly as received
	DedupeKey  string // identifies "the same callback" for exceptions
	ReceivedAt time.Time
	// Limits are the method's per-payment limits; an exception raised
	// keeps the maximum, which bounds what an operator may credit for it.
	Limits domain.AmountLimits
	// Unverified: the outcome comes from evidence Tiyn cannot authenticate
	// (a row of an uploaded report). It may settle a deposit as the
	// platform's word would, but an exception it raises is marked
	// unverified and justifies no operator credit.
	Unverified bool
}

// RecordUnreadable is an authentic callback that cannot be read as an
// outcome, with what could be read of it ("" where nothing could).
type RecordUnreadable struct {
	Channel     domain.Channel
	PaymentID   string
	OperationID string
	Status      string
	RawBody     string
	Detail      string // why it cannot be read
	ReceivedAt  time.Time
}

// SettleResult is what a callback did.
type SettleResult struct {
	Decision  domain.Decision
	Effect    domain.Effect // Decision.Effect, or EffectReplay when an exception was already raised
	Deposit   *domain.Deposit
	Exception *domain.Exception
	Transfer  *domain.Transfer
	InboxID   int64
}

// Debit spends money from a customer account.
type Debit struct {
	AccountID      string
	Amount         domain.Amount
	Description    string
	IdempotencyKey string
	RequestHash    string // a hash of the request body: a reused key with another body is refused
	Actor          string
}

// DebitResult is a debit's outcome; Replayed says it was made earlier.
type DebitResult struct {
	Record   DebitRecord
	Replayed bool
}

// ResolveException is an operator's decision on an exception.
type ResolveException struct {
	ExceptionID string
	Credit      bool          // true: credit AccountID with Amount; false: dismiss
	AccountID   string        // defaults to the deposit's account
	Amount      domain.Amount // zero: what the evidence claims
	Note        string
	Actor       string
}

// DecideProposal approves or rejects a proposed credit.
type DecideProposal struct {
	ExceptionID string
	Note        string // optional for an approval, required for a rejection
	Actor       string
}
