package ports

import (
	"context"
	"errors"
	"math/big"
	"time"

	"github.com/tiyn/tiyn/domain"
)

// Reconciler is the driving port of a business day's books: reconciling a
// day against the platform's record of it, and closing it. app.Service
// implements it (and ports.Ledger embeds it).
type Reconciler interface {
	// BusinessZone is the time zone of business days (TIYN_BUSINESS_TZ).
	BusinessZone() *time.Location
	// ParseDay reads "YYYY-MM-DD" as a business day in BusinessZone
	// (domain.ErrInvalidInput).
	ParseDay(s string) (domain.BusinessDay, error)

	// ReconcileDay reconciles one business day against one source: it
	// reads the source to its end, matches every operation to the ledger,
	// heals what the ledger is missing through the settle path (the one
	// exactly-once path, the row as evidence, source reconciliation),
	// raises an exception for each break, classifies every deposit of the
	// day the source does not mention, and returns the finished run. The
	// same input as the day's latest finished run changes nothing: that
	// run comes back with Unchanged set. ErrRunInProgress while another
	// run of the day is running (one that stopped beating is taken over);
	// a source that cannot be read to its end fails the run (its error
	// wrapped, the run recorded as failed) and nothing was applied.
	ReconcileDay(ctx context.Context, cmd ReconcileDay) (ReconRun, error)
	// ReconRun returns a run (ErrNotFound).
	ReconRun(ctx context.Context, id string) (ReconRun, error)
	// ListReconRuns pages through runs, newest first.
	ListReconRuns(ctx context.Context, q ReconRunQuery) ([]ReconRun, error)
	// ListReconItems pages through a run's items in source order (ledger-
	// only items last), optionally of one class (ErrNotFound for an
	// unknown run).
	ListReconItems(ctx context.Context, q ReconItemQuery) ([]ReconItem, error)

	// CloseDay freezes a business day: it stores, per account and per
	// clearing account, the opening balance, credits, debits and closing
	// balance of the day, and from then on the store refuses any ledger
	// row with an insertion time inside it (ErrDayClosed). Refused with
	// ErrDayNotEnded before the day has ended in the business zone,
	// ErrDayClosed when it is closed already, ErrOpenBreaks when the day
	// has no finished run or its latest finished run has a break whose
	// exception is still open — unless Override, with a Reason, which is
	// kept on the record and in the audit trail.
	CloseDay(ctx context.Context, cmd CloseDay) (DayRecord, error)
	// Day returns a business day's record and a page of its statement
	// (ErrNotFound when the day is not closed).
	Day(ctx context.Context, q DayBalanceQuery) (DayView, error)
}

// Errors of reconciliation and closing.
var (
	// ErrRunInProgress: another reconciliation of the same day is running.
	ErrRunInProgress = errors.New("a reconciliation of this day is running")
	// ErrDayClosed: the business day is closed; nothing is written with an
	// insertion time inside it. A store returns it for a ledger row
	// (deposit, transfer, posting) dated inside a closed day.
	ErrDayClosed = errors.New("business day closed")
	// ErrDayNotEnded: the business day has not ended yet.
	ErrDayNotEnded = errors.New("business day not ended")
	// ErrOpenBreaks: the day has no finished reconciliation, or its latest
	// has breaks whose exceptions are still open.
	ErrOpenBreaks = errors.New("business day has open reconciliation breaks")
)

// ReconcileDay asks for a reconciliation of one business day.
type ReconcileDay struct {
	Day    domain.BusinessDay
	Source OperationSource
	// Provider is the platform the source speaks for (monetix): a row's
	// payment is looked up in channel (Provider, the deposit's method,
	// the row's project).
	Provider string
	// Method is the payment method an orphan operation is recorded under
	// (Tiyn never issued its payment id, so no deposit names one).
	Method string
	// Projects, when not empty, limits the ledger side to deposits of
	// these projects (the ones the source covers); empty means every
	// project of the provider.
	Projects []string
	// Limits are the method's per-payment limits, kept on an exception as
	// the most an operator may credit for it.
	Limits    domain.AmountLimits
	StartedBy string
	// Progress, when set, hears how far the run got (from the goroutine
	// of ReconcileDay, never concurrently).
	Progress func(ReconProgress)
}

// ReconProgress is how far a run got.
type ReconProgress struct {
	Phase string // "reading", "matching", "ledger", "finished"
	Rows  int64  // rows read so far (reading), or items classified
	Done  int64
}

// Run phases for ReconProgress.
const (
	PhaseReading  = "reading"
	PhaseMatching = "matching"
	PhaseLedger   = "ledger"
	PhaseFinished = "finished"
)

// RunStatus is where a reconciliation run stands.
type RunStatus struct{ s string }

// Run statuses.
var (
	RunRunning  = RunStatus{"running"}
	RunFinished = RunStatus{"finished"}
	RunFailed   = RunStatus{"failed"}
)

// String names the status as stored and shown.
func (s RunStatus) String() string { return s.s }

// IsZero reports an unset status.
func (s RunStatus) IsZero() bool { return s.s == "" }

// ParseRunStatus reads a stored or wire status.
func ParseRunStatus(s string) (RunStatus, error) {
	for _, st := range []RunStatus{RunRunning, RunFinished, RunFailed} {
		if st.s == s {
			return st, nil
		}
	}
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	return RunStatus{}, errors.Join(domain.ErrInvalidInput, errors.New("run status "+s))
}

// ReconRun is one reconciliation of a business day: a record of what the
// source said, what the ledger had, and what was done.
type ReconRun struct {
	ID  string
	Day domain.BusinessDay
	// Source is the source's kind: "csv" or "data_api".
	Source string
	// InputHash is the source's hash of its input (empty until read).
	InputHash string
	// LedgerMark fingerprints the ledger side of the day when the run
	// finished (Reader.LedgerMark): a rerun is unchanged only when both
	// the input and the ledger side are.
	LedgerMark string
	StartedBy  string
	StartedAt  time.Time
	// FinishedAt is zero while running.
	FinishedAt time.Time
	// HeartbeatAt is when the running process last said it was alive; a
	// running run that stopped beating is taken over.
	HeartbeatAt time.Time
	Status      RunStatus
	// Error says why a run failed.
	Error string
	// Rows counts the source's rows (good and bad), BadRows the unreadable.
	Rows    int64
	BadRows int64
	// Classes has an entry for every class (zero when none), once finished.
	Classes map[domain.ReconClass]ClassTotal
	// Unchanged: ReconcileDay found this run already reconciled the same
	// input and changed nothing. Not stored.
	Unchanged bool
}

// ClassTotal counts one class of a run and sums its amounts in minor
// units, exactly (a source may list anything): what the platform's rows
// say, and what the ledger's deposits say.
type ClassTotal struct {
	Count    int64
	Platform *big.Int
	Ledger   *big.Int
}

// Count returns the number of items of class c (0 when not finished).
func (r ReconRun) Count(c domain.ReconClass) int64 { return r.Classes[c].Count }

// Breaks counts the run's items of break classes.
func (r ReconRun) Breaks() int64 {
	var n int64
	for c, t := range r.Classes {
		if c.IsBreak() {
			n += t.Count
		}
	}
	return n
}

// ReconItem is one platform operation, or one ledger deposit the source
// does not mention, with its class.
type ReconItem struct {
	RunID string
	// Seq orders a run's items: the source's rows first, in source order,
	// then the ledger-only deposits. The cursor of ListReconItems.
	Seq   int64
	Class domain.ReconClass
	// Line is the source's line (0 for a ledger-only item).
	Line            int
	ProjectID       string
	PaymentID       string
	OperationID     string
	OperationType   string
	OperationStatus string
	CompletedAt     time.Time
	// Platform is the operation's amount (zero for a ledger-only item);
	// Ledger the deposit's amount (zero when no deposit).
	Platform      domain.Amount
	Ledger        domain.Amount
	DepositID     string
	DepositStatus string // the deposit's status after the run
	ExceptionID   string // the exception a break raised or found
	// Raw is the row as read (the evidence), Note a sentence on the class.
	Raw  string
	Note string
}

// ReconRunQuery filters ListReconRuns: newest first.
type ReconRunQuery struct {
	Day      domain.BusinessDay // zero: every day
	BeforeID string             // cursor: runs with an id below it
	Limit    int
}

// ReconItemQuery filters ListReconItems.
type ReconItemQuery struct {
	RunID    string
	Class    domain.ReconClass // zero: every class
	AfterSeq int64
	Limit    int
}

// CloseDay asks for a business day to be closed.
type CloseDay struct {
	Day domain.BusinessDay
	By  string
	// Override closes the day despite open breaks (or no run); Reason is
	// then required and kept.
	Override bool
	Reason   string
}

// DayRecord is a closed business day.
type DayRecord struct {
	Day      domain.BusinessDay
	ClosedAt time.Time
	ClosedBy string
	// RunID is the latest finished reconciliation the close rested on
	// ("" when overridden without one); OpenBreaks its open breaks then.
	RunID      string
	OpenBreaks int64
	Override   bool
	Reason     string
	// Accounts counts the statement's lines.
	Accounts int64
}

// DayBalance is one account's line of a closed day's statement, in minor
// units of Currency: Opening + Credits − Debits = Closing. System accounts
// (the clearing accounts, merchant revenue) are included; all closings
// of a currency sum to zero.
type DayBalance struct {
	AccountID string
	System    bool // a system account (clearing, revenue), not a customer's
	Currency  domain.Currency
	Opening   int64
	Credits   int64 // sum of the day's positive postings
	Debits    int64 // sum of the day's negative postings, as a positive number
	Closing   int64
}

// DayBalanceQuery pages through a closed day's statement by account id.
type DayBalanceQuery struct {
	Day            domain.BusinessDay
	AfterAccountID string
	Limit          int
}

// DayView is a closed day's record and a page of its statement.
type DayView struct {
	Record   DayRecord
	Balances []DayBalance
}

// UnreconciledQuery selects the ledger side of a run: deposits of the
// provider created (or, with BySettled, settled) within [From, To) that
// have no item in the run yet, ordered by that time and id, after the
// cursor (AfterAt, AfterID).
type UnreconciledQuery struct {
	RunID     string
	Provider  string
	Projects  []string // empty: every project
	From, To  time.Time
	BySettled bool
	AfterAt   time.Time
	AfterID   string
	Limit     int
}

// PaymentKey names a payment within a provider: its project and id.
type PaymentKey struct {
	Project   string
	PaymentID string
}

// StagedQuery pages through a run's staged source rows in payment order:
// by (project, payment id, seq), after the cursor.
type StagedQuery struct {
	RunID        string
	AfterProject string
	AfterPayment string
	AfterSeq     int64
	Limit        int
}
