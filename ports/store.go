// Package ports holds the interfaces between Tiyn's core and the world,
// both ways: the driving port (Ledger, the use cases the Monetix and REST
// adapters call, in ledger.go) and the driven ports (Store with its
// transaction contract, Clock, IDs) that adapters implement. No bun,
// database/sql or net/http type appears here.
package ports

import (
	"context"
	"errors"
	"math/big"
	"time"

	"github.com/tiyn/tiyn/domain"
)

// Errors a Store returns, besides the domain's own (domain.ErrInsufficientFunds
// from ApplyTransfer). Store adapters translate driver errors into these in
// one place; callers match them with errors.Is.
var (
	// ErrNotFound: the row asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique constraint or a conditional update refused the
	// write because another writer got there first. The caller re-reads and
	// decides again (a replay, usually).
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: the store cannot be reached or cannot commit right now.
	// Nothing was committed; the request may be retried later. (After a
	// failed COMMIT the outcome can be unknown; idempotent use cases make a
	// retry safe either way.)
	ErrUnavailable = errors.New("store unavailable")
	// ErrNotMigrated: the schema is older than this binary expects.
	ErrNotMigrated = errors.New("store not migrated")
)

// Store is the driven port for all persistent state.
//
// Transaction contract: Update and Batch run fn inside one read-write
// transaction and commit it when fn returns nil, or roll everything fn did
// back when fn returns an error (which they then return unchanged). They
// may run fn more than once (after a serialization failure, or when a
// shared transaction is rolled back because a neighbour failed), so fn
// must have no effect outside tx. They return only after the commit that
// made fn's writes durable, or with an error and nothing of fn committed
// (after a failed COMMIT the outcome can be unknown: ErrUnavailable, and
// the idempotent use cases make a retry safe either way).
//
// Update runs fn in a transaction of its own. Batch may share one database
// transaction among concurrent calls (group commit, like bbolt's DB.Batch):
// each fn is still atomic on its own — when one fails, the shared
// transaction is rolled back and the others run again without it — and w
// says what the batching store needs to know (see Write). A store that
// does not batch runs Batch as Update and ignores w.
//
// Reads on the Store itself see the latest committed state; reads through a
// Tx see the transaction's own writes.
type Store interface {
	Reader
	OverviewReader
	// Update runs fn in a transaction of its own. It returns
	// ErrUnavailable when the store cannot begin or commit.
	Update(ctx context.Context, fn TxFunc) error
	// Batch runs fn in a transaction it may share with concurrent Batch
	// calls. It returns ErrUnavailable when the store cannot begin or
	// commit.
	Batch(ctx context.Context, w Write, fn TxFunc) error
	// Ping checks that the store is reachable and migrated (ErrUnavailable,
	// ErrNotMigrated).
	Ping(ctx context.Context) error
	// Close releases connections; Update and reads fail afterwards.
	Close() error
}

// Reader holds the queries, available on the Store and inside a Tx. Every
// list is keyset-paginated: it returns at most Limit items after the cursor
// (Limit is clamped to MaxPageSize).
type Reader interface {
	// AccountByID returns ErrNotFound when no such account exists.
	AccountByID(ctx context.Context, id string) (domain.Account, error)
	// AccountByCustomer returns ErrNotFound when the customer has no account
	// in that currency.
	AccountByCustomer(ctx context.Context, customerID string, currency domain.Currency) (domain.Account, error)
	// ListAccounts returns accounts ordered by id.
	ListAccounts(ctx context.Context, q AccountQuery) ([]domain.Account, error)
	// DepositByPaymentID returns ErrNotFound for an unknown payment id.
	DepositByPaymentID(ctx context.Context, ch domain.Channel, paymentID string) (domain.Deposit, error)
	// ListDeposits returns deposits ordered by id (ids sort by creation time).
	ListDeposits(ctx context.Context, q DepositQuery) ([]domain.Deposit, error)
	// Statement returns a customer account's postings ordered by posting
	// sequence, each with the balance right after it.
	Statement(ctx context.Context, q StatementQuery) ([]StatementLine, error)
	// BalanceAt returns a customer account's balance right after the last
	// posting made at or before at (zero before the first). ErrNotFound for
	// an unknown account.
	BalanceAt(ctx context.Context, accountID string, at time.Time) (int64, error)
	// DerivedBalance sums all postings of an account: the balance of a
	// system account (clearing, revenue), and a cross-check for customers.
	DerivedBalance(ctx context.Context, accountID string) (int64, error)
	// ExceptionByID returns ErrNotFound for an unknown id.
	ExceptionByID(ctx context.Context, id string) (domain.Exception, error)
	// ListExceptions returns exceptions ordered by id.
	ListExceptions(ctx context.Context, q ExceptionQuery) ([]domain.Exception, error)
	// ListInbox returns stored callbacks ordered by id.
	ListInbox(ctx context.Context, q InboxQuery) ([]InboxRecord, error)
	// InboxSeen reports whether a callback with this dedupe key was stored
	// (applied) before.
	InboxSeen(ctx context.Context, dedupeKey string) (bool, error)
	// SettleView reads, at once, what settling a callback decides on: the
	// deposit of (ch, paymentID) with its account, and InboxSeen(dedupeKey).
	// Found is false when there is no such deposit.
	SettleView(ctx context.Context, ch domain.Channel, paymentID, dedupeKey string) (SettleView, error)
	// DepositCredit returns the id of the transfer that credited a
	// deposit, or ErrNotFound while it has none.
	DepositCredit(ctx context.Context, depositID string) (string, error)
	// CreditByKey returns the id of the transfer with this credit key
	// (domain.Transfer.CreditKey), or ErrNotFound.
	CreditByKey(ctx context.Context, creditKey string) (string, error)
	// DebitByKey returns the debit recorded under an idempotency key, or
	// ErrNotFound.
	DebitByKey(ctx context.Context, accountID, key string) (DebitRecord, error)
	// CheckLedger recomputes the ledger's invariants from the rows.
	CheckLedger(ctx context.Context) (LedgerCheck, error)
	// StatusCheck returns a deposit with its status-check record (zero
	// counts when it was never checked); ErrNotFound for an unknown
	// deposit id.
	StatusCheck(ctx context.Context, depositID string) (StatusCheck, error)
	// ListExpiring returns deposits still pending, created before
	// q.CreatedBefore and not escalated, with their status-check records,
	// ordered by id.
	ListExpiring(ctx context.Context, q ExpiryQuery) ([]StatusCheck, error)
	// OldestPending returns when the oldest pending deposit was created;
	// ok is false when no deposit is pending.
	OldestPending(ctx context.Context) (at time.Time, ok bool, err error)

	// ReconRunByID returns a reconciliation run (ErrNotFound).
	ReconRunByID(ctx context.Context, id string) (ReconRun, error)
	// ListReconRuns returns runs newest first (by id, descending).
	ListReconRuns(ctx context.Context, q ReconRunQuery) ([]ReconRun, error)
	// LatestReconRun returns the day's most recently started run in status
	// st (ErrNotFound when there is none).
	LatestReconRun(ctx context.Context, day domain.BusinessDay, st RunStatus) (ReconRun, error)
	// ListReconItems returns a run's items ordered by seq, optionally of
	// one class.
	ListReconItems(ctx context.Context, q ReconItemQuery) ([]ReconItem, error)
	// ListStagedRows returns a run's staged source rows (StageReconRows)
	// ordered by (project id, payment id, seq): all operations of one
	// payment are consecutive.
	ListStagedRows(ctx context.Context, q StagedQuery) ([]ReconItem, error)
	// DepositsByPayment returns the deposits of the provider with these
	// (project, payment id) pairs, in any order; unknown ones are missing.
	DepositsByPayment(ctx context.Context, provider string, keys []PaymentKey) ([]domain.Deposit, error)
	// CreditedAmounts returns, for each deposit among ids that has its
	// deposit_credit, the amount it credited: the deposit's amount for a
	// callback's credit, what the operator chose for a resolution's. A
	// deposit without a credit is absent.
	CreditedAmounts(ctx context.Context, ids []string) (map[string]domain.Amount, error)
	// ListUnreconciled returns the deposits of the query's provider (and
	// projects) created (or settled) within [From, To) that have no item
	// in the run, ordered by that time and id.
	ListUnreconciled(ctx context.Context, q UnreconciledQuery) ([]domain.Deposit, error)
	// LedgerMark fingerprints the ledger side of a day: the deposits of
	// the provider (and projects) created or settled within [from, to),
	// their number and versions. Any new deposit or transition of one
	// changes it.
	LedgerMark(ctx context.Context, provider string, projects []string, from, to time.Time) (string, error)
	// SuccessOnRecord reports whether a finished run of a day other than
	// day holds the operation as the payment's successful sale (an item
	// of class matched or healed for the channel's project, payment id and
	// operation id with a sale success).
	SuccessOnRecord(ctx context.Context, day domain.BusinessDay, project, paymentID, operationID string) (bool, error)
	// OpenBreaks counts a run's items of break classes whose exception is
	// open or proposed (or that name none).
	OpenBreaks(ctx context.Context, runID string) (int64, error)
	// DayRecord returns a closed business day (ErrNotFound).
	DayRecord(ctx context.Context, day domain.BusinessDay) (DayRecord, error)
	// ListDayBalances returns a closed day's statement ordered by account
	// id.
	ListDayBalances(ctx context.Context, q DayBalanceQuery) ([]DayBalance, error)
}

// Tx is one transaction's view of the store: the reads plus the writes.
// Every write is a conditional or constrained write, so two processes
// racing on the same row are settled by the database.
//
// A store may hold the money writes — InsertDeposit, TransitionDeposit,
// ApplyTransfer of a credit, InsertInbox — and write them together, once
// per transaction or batch (sqlstore writes a PostgreSQL batch's with one
// statement). Reads through the Tx still see them, and the error a held
// write meets is then returned by Update or Batch instead of by the call:
// the caller cannot tell the difference, because it only passes a write's
// error on. What a caller needs at once — an ApplyTransfer that debits a
// customer, whose balance after the caller records — is written at once.
type Tx interface {
	Reader
	// InsertAccount stores a new account. ErrConflict when the customer
	// already has an account in that currency.
	InsertAccount(ctx context.Context, a domain.Account) error
	// UpdateAccountStatus stores a's status if the stored version is still
	// fromVersion. ErrConflict otherwise; ErrNotFound for an unknown id.
	UpdateAccountStatus(ctx context.Context, a domain.Account, fromVersion int64) error
	// InsertDeposit stores a new pending deposit. ErrConflict when the
	// payment id is taken within its channel.
	InsertDeposit(ctx context.Context, d domain.Deposit) error
	// TransitionDeposit stores d's status, operation and settle time only if
	// the stored status is still from (a conditional update). ErrConflict
	// when it is not: someone else settled the deposit first.
	TransitionDeposit(ctx context.Context, d domain.Deposit, from domain.DepositStatus) error
	// ApplyTransfer stores t and its postings and moves customer balances
	// with atomic "balance = balance + amount" updates (no read-modify-write,
	// and no row is updated for system accounts). It returns t with each
	// customer posting's BalanceAfter filled in: before it returns for a
	// transfer that debits a customer, by the time Update or Batch returns
	// for one that only credits.
	// Errors: domain.ErrInsufficientFunds when a customer balance would go
	// negative; ErrNotFound when a customer posting names no account;
	// ErrConflict when the transfer breaks a uniqueness rule (a second
	// credit for one deposit, a second credit for one exception or unknown
	// payment), moves the balance of a closed account (closed since the
	// caller read it: no balance of a closed account ever moves) or would
	// take it past domain.MaxBalanceMinor (credited since the caller read
	// it); domain.ErrCurrencyMismatch when a posting's currency is not its
	// account's.
	ApplyTransfer(ctx context.Context, t domain.Transfer) (domain.Transfer, error)
	// InsertInbox stores a received callback; r.ID is set by the time
	// Update or Batch returns.
	InsertInbox(ctx context.Context, r *InboxRecord) error
	// InsertException stores e unless an exception with the same DedupeKey
	// exists; then it returns that one and created=false.
	InsertException(ctx context.Context, e domain.Exception) (stored domain.Exception, created bool, err error)
	// UpdateException stores e's state, proposal and resolution if the
	// stored exception is still in state from (a conditional update).
	// ErrConflict otherwise; ErrNotFound for an unknown id.
	UpdateException(ctx context.Context, e domain.Exception, from domain.ExceptionStatus) error
	// InsertDebit records a debit under its idempotency key. ErrConflict when
	// the key is taken for the account.
	InsertDebit(ctx context.Context, r DebitRecord) error
	// AppendAudit writes one line of the audit trail.
	AppendAudit(ctx context.Context, e AuditEntry) error
	// ClaimStatusChecks claims up to q.Limit pending deposits due for a
	// status check (oldest due first) until q.LeaseUntil and returns them:
	// a conditional write, so that of several instances claiming at once
	// each deposit goes to one. A claim ends with RecordStatusCheck or
	// when its lease runs out (the instance died).
	ClaimStatusChecks(ctx context.Context, q ClaimStatusChecks) ([]StatusCheck, error)
	// RecordStatusCheck stores the result of one check, counts it, sets
	// when the deposit is due again and ends the claim. Answered only
	// ever turns on.
	RecordStatusCheck(ctx context.Context, r StatusCheckResult) error
	// MarkEscalated records that a status_unknown exception was raised for
	// a deposit, so that expiry does not consider it again.
	MarkEscalated(ctx context.Context, depositID string, at time.Time) error

	// InsertReconRun stores a new running run. ErrConflict when the day
	// has a running run already (one running run per day, a unique
	// index).
	InsertReconRun(ctx context.Context, r ReconRun) error
	// TakeOverReconRun fails a running run that stopped beating (its
	// heartbeat before staleBefore), with reason as its error, at at.
	// ErrConflict when it is not running or still beating.
	TakeOverReconRun(ctx context.Context, id string, staleBefore, at time.Time, reason string) error
	// BeatReconRun records that a running run's process is alive.
	// ErrConflict when the run is no longer running (taken over).
	BeatReconRun(ctx context.Context, id string, at time.Time) error
	// FinishReconRun stores a running run's end: r's status (finished or
	// failed), error, hash, row counts, class totals and finish time.
	// ErrConflict when the run is no longer running.
	FinishReconRun(ctx context.Context, r ReconRun) error
	// DeleteReconRun removes a run, its items and its staged rows (a
	// rerun found unchanged).
	DeleteReconRun(ctx context.Context, id string) error
	// StageReconRows stores source rows of a running run as read, for its
	// matching pass (ListStagedRows). ErrConflict when a (run, seq) is
	// taken.
	StageReconRows(ctx context.Context, rows []ReconItem) error
	// DropStagedRows removes a run's staged rows (once it is finished or
	// failed).
	DropStagedRows(ctx context.Context, runID string) error
	// InsertReconItems stores classified items of a run. ErrConflict when
	// a (run, seq) is taken.
	InsertReconItems(ctx context.Context, items []ReconItem) error
	// CloseDay closes a business day: it keeps every other writer from
	// inserting ledger rows until the transaction ends, stores the day's
	// statement (per account: opening = closing of the latest closed day
	// before it plus the postings between, or every posting before the
	// day; the day's credits and debits; closing), the record (with
	// Accounts filled in), and freezes the ledger up to the day's end:
	// from the commit on, a deposit, transfer or posting inserted with an
	// earlier time is refused with ErrDayClosed. ErrConflict when the day
	// is closed already.
	CloseDay(ctx context.Context, r DayRecord) (DayRecord, error)
}

// MaxPageSize bounds every list query.
const MaxPageSize = 1000

// ClampLimit returns limit bounded to 1..MaxPageSize, with def for <= 0.
func ClampLimit(limit, def int) int {
	if limit <= 0 {
		limit = def
	}
	if limit > MaxPageSize {
		limit = MaxPageSize
	}
	return limit
}

// AccountQuery filters ListAccounts.
type AccountQuery struct {
	CustomerID string // exact match, optional
	Status     domain.AccountStatus
	AfterID    string
	Limit      int
}

// DepositQuery filters ListDeposits. Zero fields do not filter.
type DepositQuery struct {
	Status     domain.DepositStatus
	CustomerID string
	AccountID  string
	PaymentID  string
	From, To   time.Time // created_at in [From, To)
	AfterID    string
	Limit      int
}

// StatementQuery selects postings of one customer account.
type StatementQuery struct {
	AccountID string
	From, To  time.Time // created_at in [From, To)
	AfterSeq  int64
	Limit     int
}

// StatementLine is one posting on a customer account.
type StatementLine struct {
	Seq          int64 // posting sequence, the cursor
	TransferID   string
	Kind         domain.TransferKind
	DepositID    string
	PaymentID    string
	Amount       domain.Amount // signed: positive credits the account
	BalanceAfter domain.Amount
	Description  string
	CreatedAt    time.Time
}

// ExceptionQuery filters ListExceptions.
type ExceptionQuery struct {
	State   domain.ExceptionStatus // zero: all
	Reason  domain.ExceptionReason // zero: all
	AfterID string
	Limit   int
}

// InboxQuery filters ListInbox.
type InboxQuery struct {
	PaymentID string
	Outcome   domain.Effect // zero: all
	Source    Source        // zero: all
	AfterID   int64
	Limit     int
}

// InboxRecord is one piece of platform evidence as received — a callback,
// or the answer to a status check — the raw body, exactly as sent, and what
// Tiyn did with it.
type InboxRecord struct {
	ID          int64
	Source      Source // zero means SourceCallback
	Channel     domain.Channel
	PaymentID   string
	OperationID string
	Status      string
	Body        string
	Outcome     domain.Effect
	DedupeKey   string // identifies the same callback across redeliveries
	DepositID   string
	ExceptionID string
	// Reason is the reason of the exception the record raised (or
	// replayed), filled in by ListInbox; zero when it raised none.
	Reason     domain.ExceptionReason
	ReceivedAt time.Time
}

// SettleView is what a settlement reads before it decides.
type SettleView struct {
	Deposit domain.Deposit
	Account domain.Account // the deposit's account
	Found   bool           // a deposit exists
	Seen    bool           // a callback with the same dedupe key was stored
}

// DebitRecord is the idempotency record of one debit: the key, a hash of
// the request it was made with, and the transfer it produced.
type DebitRecord struct {
	AccountID      string
	IdempotencyKey string
	RequestHash    string
	TransferID     string
	Amount         domain.Amount
	Description    string
	BalanceAfter   domain.Amount
	Actor          string
	CreatedAt      time.Time
}

// AuditEntry is one line of the audit trail: who did what to which subject.
type AuditEntry struct {
	Actor   string
	Action  string
	Subject string
	Detail  string
	At      time.Time
}

// LedgerCheck is the ledger's invariants recomputed from the rows. A healthy
// ledger has every count field zero and totals that cancel out. Sums are
// exact whatever the rows hold: the store adds in a type that cannot
// overflow, so a corrupt row shows up in a counter, never as an error.
type LedgerCheck struct {
	Transfers              int64
	UnbalancedTransfers    int64 // transfers whose postings do not sum to zero, or that have fewer than two
	BalanceMismatches      int64 // customer accounts whose balance differs from the sum of their postings or their last balance_after
	NegativeBalances       int64
	CurrencyMismatches     int64 // postings on a customer account in another currency than the account's
	CreditsWithoutDeposit  int64 // deposit_credit transfers whose deposit is not succeeded
	SucceededWithoutCredit int64 // succeeded deposits with no credit transfer
	DuplicateCredits       int64 // deposits with more than one credit transfer
	AmountsOverCeiling     int64 // balances and postings beyond domain.MaxBalanceMinor either way
	// CustomerBalanceTotal is the sum of customer balances (minor units,
	// all currencies added: Tiyn has one today).
	CustomerBalanceTotal *big.Int
	// SystemBalanceTotal is the sum of the system accounts' derived
	// balances; it equals -CustomerBalanceTotal.
	SystemBalanceTotal *big.Int
}

// Healthy reports whether every invariant holds.
func (c LedgerCheck) Healthy() bool {
	if c.UnbalancedTransfers != 0 || c.BalanceMismatches != 0 || c.NegativeBalances != 0 || c.CurrencyMismatches != 0 ||
		c.CreditsWithoutDeposit != 0 || c.SucceededWithoutCredit != 0 || c.DuplicateCredits != 0 || c.AmountsOverCeiling != 0 {
		return false
	}
	if c.CustomerBalanceTotal == nil || c.SystemBalanceTotal == nil {
		return false
	}
	return new(big.Int).Add(c.CustomerBalanceTotal, c.SystemBalanceTotal).Sign() == 0
}

// Clock tells the time. The app never calls time.Now itself, so tests can
// control time.
type Clock interface {
	Now() time.Time
}

// IDs makes unique identifiers. Ids sort by creation time within one
// process, which makes id order a usable creation order for cursors.
type IDs interface {
	// NewID returns a new id starting with prefix and "_".
	NewID(prefix string) string
}
