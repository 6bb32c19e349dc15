package rest

import (
	"math/big"
	"time"

	"github.com/tiyn/tiyn/adapters/export"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// The JSON shapes of the API. Money always appears twice: *_minor as an
// integer of minor units (exact, for programs) and the decimal string with
// the currency's number of decimals (for people and for decimal libraries).
// Times are RFC 3339 in UTC with exactly six fractional digits
// (export.TimeLayout), so they sort as text. Absent optional values are
// null, never "".

// formatTime renders t in export.TimeLayout; the zero time is absent.
func formatTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := export.FormatTime(t)
	return &s
}

func mustTime(t time.Time) string {
	if s := formatTime(t); s != nil {
		return *s
	}
	return ""
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

type accountView struct {
	ID                   string  `json:"id"`
	CustomerID           string  `json:"customer_id"`
	AdditionalCustomerID *string `json:"additional_customer_id"`
	Currency             string  `json:"currency"`
	Status               string  `json:"status"`
	BalanceMinor         int64   `json:"balance_minor"`
	Balance              string  `json:"balance"`
	Version              int64   `json:"version"`
	CreatedAt            string  `json:"created_at"`
	UpdatedAt            string  `json:"updated_at"`
}

func viewAccount(a domain.Account) accountView {
	return accountView{
		ID:                   a.ID(),
		CustomerID:           a.CustomerID(),
		AdditionalCustomerID: optional(a.AdditionalCustomerID()),
		Currency:             a.Currency().Code(),
		Status:               a.Status().String(),
		BalanceMinor:         a.Balance().Minor(),
		Balance:              a.Balance().String(),
		Version:              a.Version(),
		CreatedAt:            mustTime(a.CreatedAt()),
		UpdatedAt:            mustTime(a.UpdatedAt()),
	}
}

type accountList struct {
	Items      []accountView `json:"items"`
	NextCursor *string       `json:"next_cursor"`
}

type balanceView struct {
	AccountID    string `json:"account_id"`
	Currency     string `json:"currency"`
	BalanceMinor int64  `json:"balance_minor"`
	Balance      string `json:"balance"`
	AsOf         string `json:"as_of"`
}

type statementLineView struct {
	Seq               int64   `json:"seq"`
	TransferID        string  `json:"transfer_id"`
	Kind              string  `json:"kind"`
	Direction         string  `json:"direction"`
	AmountMinor       int64   `json:"amount_minor"`
	Amount            string  `json:"amount"`
	Currency          string  `json:"currency"`
	BalanceAfterMinor int64   `json:"balance_after_minor"`
	BalanceAfter      string  `json:"balance_after"`
	DepositID         *string `json:"deposit_id"`
	PaymentID         *string `json:"payment_id"`
	Description       string  `json:"description"`
	CreatedAt         string  `json:"created_at"`
}

func viewStatementLine(l ports.StatementLine) statementLineView {
	direction, amount := export.Direction(l)
	return statementLineView{
		Seq:               l.Seq,
		TransferID:        l.TransferID,
		Kind:              l.Kind.String(),
		Direction:         direction,
		AmountMinor:       amount.Minor(),
		Amount:            amount.String(),
		Currency:          amount.Currency().Code(),
		BalanceAfterMinor: l.BalanceAfter.Minor(),
		BalanceAfter:      l.BalanceAfter.String(),
		DepositID:         optional(l.DepositID),
		PaymentID:         optional(l.PaymentID),
		Description:       l.Description,
		CreatedAt:         mustTime(l.CreatedAt),
	}
}

type statementView struct {
	AccountID  string              `json:"account_id"`
	Items      []statementLineView `json:"items"`
	NextCursor *string             `json:"next_cursor"`
}

type debitView struct {
	TransferID        string `json:"transfer_id"`
	AccountID         string `json:"account_id"`
	AmountMinor       int64  `json:"amount_minor"`
	Amount            string `json:"amount"`
	Currency          string `json:"currency"`
	Description       string `json:"description"`
	BalanceAfterMinor int64  `json:"balance_after_minor"`
	BalanceAfter      string `json:"balance_after"`
	IdempotencyKey    string `json:"idempotency_key"`
	CreatedAt         string `json:"created_at"`
	Replayed          bool   `json:"replayed"`
}

func viewDebit(res ports.DebitResult) debitView {
	r := res.Record
	return debitView{
		TransferID:        r.TransferID,
		AccountID:         r.AccountID,
		AmountMinor:       r.Amount.Minor(),
		Amount:            r.Amount.String(),
		Currency:          r.Amount.Currency().Code(),
		Description:       r.Description,
		BalanceAfterMinor: r.BalanceAfter.Minor(),
		BalanceAfter:      r.BalanceAfter.String(),
		IdempotencyKey:    r.IdempotencyKey,
		CreatedAt:         mustTime(r.CreatedAt),
		Replayed:          res.Replayed,
	}
}

type depositView struct {
	ID          string  `json:"id"`
	PaymentID   string  `json:"payment_id"`
	Provider    string  `json:"provider"`
	Method      string  `json:"method"`
	Project     string  `json:"project"`
	AccountID   string  `json:"account_id"`
	CustomerID  string  `json:"customer_id"`
	AmountMinor int64   `json:"amount_minor"`
	Amount      string  `json:"amount"`
	Currency    string  `json:"currency"`
	Status      string  `json:"status"`
	OperationID *string `json:"operation_id"`
	Version     int64   `json:"version"`
	CreatedAt   string  `json:"created_at"`
	SettledAt   *string `json:"settled_at"`
	// StatusChecks is the status poller's record, in the single-deposit
	// view only (null in lists, and while the deposit was never checked).
	StatusChecks *statusChecksView `json:"status_checks,omitempty"`
}

// statusChecksView is what the status poller knows of a deposit.
type statusChecksView struct {
	Checks     int     `json:"checks"`
	LastAt     *string `json:"last_at"`
	LastResult *string `json:"last_result"`
	NextAt     *string `json:"next_at"`
	Answered   bool    `json:"answered"`
	Escalated  bool    `json:"escalated"`
}

func viewStatusChecks(c ports.StatusCheck) *statusChecksView {
	if c.Checks == 0 && !c.Escalated {
		return nil
	}
	v := &statusChecksView{Checks: c.Checks, LastAt: formatTime(c.LastAt), LastResult: optional(c.Last),
		Answered: c.Answered, Escalated: c.Escalated}
	if c.Deposit.Status == domain.DepositPending {
		v.NextAt = formatTime(c.NextAt)
	}
	return v
}

func viewDeposit(d domain.Deposit) depositView {
	return depositView{
		ID:          d.ID,
		PaymentID:   d.PaymentID,
		Provider:    d.Channel.Provider,
		Method:      d.Channel.Method,
		Project:     d.Channel.Project,
		AccountID:   d.AccountID,
		CustomerID:  d.CustomerID,
		AmountMinor: d.Amount.Minor(),
		Amount:      d.Amount.String(),
		Currency:    d.Amount.Currency().Code(),
		Status:      d.Status.String(),
		OperationID: optional(d.OperationID),
		Version:     d.Version,
		CreatedAt:   mustTime(d.CreatedAt),
		SettledAt:   formatTime(d.SettledAt),
	}
}

type depositList struct {
	Items      []depositView `json:"items"`
	NextCursor *string       `json:"next_cursor"`
}

type resolutionView struct {
	Action      string  `json:"action"`
	AccountID   *string `json:"account_id"`
	AmountMinor *int64  `json:"amount_minor"`
	Amount      *string `json:"amount"`
	TransferID  *string `json:"transfer_id"`
	Note        string  `json:"note"`
	Actor       string  `json:"actor"`
	ResolvedAt  string  `json:"resolved_at"`
}

// Resolution actions on the wire.
const (
	actionCredit  = "credit"
	actionDismiss = "dismiss"
)

type exceptionView struct {
	ID            string          `json:"id"`
	Status        string          `json:"status"`
	Reason        string          `json:"reason"`
	Detail        string          `json:"detail"`
	Provider      string          `json:"provider"`
	Method        string          `json:"method"`
	Project       string          `json:"project"`
	PaymentID     string          `json:"payment_id"`
	OperationID   *string         `json:"operation_id"`
	PaymentStatus string          `json:"payment_status"`
	DepositID     *string         `json:"deposit_id"`
	AccountID     *string         `json:"account_id"`
	AmountMinor   int64           `json:"amount_minor"`
	Amount        string          `json:"amount"`
	Currency      string          `json:"currency"`
	Evidence      string          `json:"evidence"`
	Unverified    bool            `json:"unverified"`
	CreatedAt     string          `json:"created_at"`
	Proposal      *proposalView   `json:"proposal"`
	Resolution    *resolutionView `json:"resolution"`
}

// proposalView is a credit proposed under four eyes: while the exception
// is proposed, and kept once it is approved.
type proposalView struct {
	AccountID   string `json:"account_id"`
	AmountMinor int64  `json:"amount_minor"`
	Amount      string `json:"amount"`
	Note        string `json:"note"`
	ProposedBy  string `json:"proposed_by"`
	ProposedAt  string `json:"proposed_at"`
}

func viewException(e domain.Exception) exceptionView {
	v := exceptionView{
		ID:            e.ID,
		Status:        e.State.String(),
		Reason:        e.Reason.String(),
		Detail:        e.Detail,
		Provider:      e.Channel.Provider,
		Method:        e.Channel.Method,
		Project:       e.Channel.Project,
		PaymentID:     e.PaymentID,
		OperationID:   optional(e.OperationID),
		PaymentStatus: e.Status,
		DepositID:     optional(e.DepositID),
		AccountID:     optional(e.AccountID),
		AmountMinor:   e.Amount.Minor(),
		Amount:        e.Amount.String(),
		Currency:      e.Amount.Currency().Code(),
		Evidence:      e.Evidence,
		Unverified:    e.Unverified,
		CreatedAt:     mustTime(e.CreatedAt),
	}
	if p := e.Proposal; p != nil {
		v.Proposal = &proposalView{AccountID: p.AccountID, AmountMinor: p.Amount.Minor(), Amount: p.Amount.String(),
			Note: p.Note, ProposedBy: p.Actor, ProposedAt: mustTime(p.At)}
	}
	if r := e.Resolution; r != nil {
		rv := &resolutionView{Action: actionDismiss, Note: r.Note, Actor: r.Actor, ResolvedAt: mustTime(r.ResolvedAt)}
		if r.Credit {
			minor, text := r.Amount.Minor(), r.Amount.String()
			rv.Action = actionCredit
			rv.AccountID = optional(r.AccountID)
			rv.AmountMinor, rv.Amount = &minor, &text
			rv.TransferID = optional(r.TransferID)
		}
		v.Resolution = rv
	}
	return v
}

type exceptionList struct {
	Items      []exceptionView `json:"items"`
	NextCursor *string         `json:"next_cursor"`
}

type callbackView struct {
	ID          int64   `json:"id"`
	Source      string  `json:"source"`
	Provider    string  `json:"provider"`
	Method      string  `json:"method"`
	Project     string  `json:"project"`
	PaymentID   string  `json:"payment_id"`
	OperationID *string `json:"operation_id"`
	Status      string  `json:"status"`
	Outcome     string  `json:"outcome"`
	DepositID   *string `json:"deposit_id"`
	ExceptionID *string `json:"exception_id"`
	Reason      *string `json:"reason"`
	Body        string  `json:"body"`
	ReceivedAt  string  `json:"received_at"`
}

func viewCallback(r ports.InboxRecord) callbackView {
	source := r.Source
	if source.IsZero() {
		source = ports.SourceCallback
	}
	return callbackView{
		ID:          r.ID,
		Source:      source.String(),
		Provider:    r.Channel.Provider,
		Method:      r.Channel.Method,
		Project:     r.Channel.Project,
		PaymentID:   r.PaymentID,
		OperationID: optional(r.OperationID),
		Status:      r.Status,
		Outcome:     r.Outcome.String(),
		DepositID:   optional(r.DepositID),
		ExceptionID: optional(r.ExceptionID),
		Reason:      optional(r.Reason.String()),
		Body:        r.Body,
		ReceivedAt:  mustTime(r.ReceivedAt),
	}
}

type callbackList struct {
	Items      []callbackView `json:"items"`
	NextCursor *string        `json:"next_cursor"`
}

type ledgerCheckView struct {
	Healthy                bool  `json:"healthy"`
	Transfers              int64 `json:"transfers"`
	UnbalancedTransfers    int64 `json:"unbalanced_transfers"`
	BalanceMismatches      int64 `json:"balance_mismatches"`
	NegativeBalances       int64 `json:"negative_balances"`
	CurrencyMismatches     int64 `json:"currency_mismatches"`
	CreditsWithoutDeposit  int64 `json:"credits_without_deposit"`
	SucceededWithoutCredit int64 `json:"succeeded_without_credit"`
	DuplicateCredits       int64 `json:"duplicate_credits"`
	AmountsOverCeiling     int64 `json:"amounts_over_ceiling"`
	// The totals are exact integers of any size (JSON numbers).
	CustomerBalanceTotal *big.Int `json:"customer_balance_total_minor"`
	SystemBalanceTotal   *big.Int `json:"system_balance_total_minor"`
}

func viewLedgerCheck(c ports.LedgerCheck) ledgerCheckView {
	return ledgerCheckView{
		Healthy:                c.Healthy(),
		Transfers:              c.Transfers,
		UnbalancedTransfers:    c.UnbalancedTransfers,
		BalanceMismatches:      c.BalanceMismatches,
		NegativeBalances:       c.NegativeBalances,
		CurrencyMismatches:     c.CurrencyMismatches,
		CreditsWithoutDeposit:  c.CreditsWithoutDeposit,
		SucceededWithoutCredit: c.SucceededWithoutCredit,
		DuplicateCredits:       c.DuplicateCredits,
		AmountsOverCeiling:     c.AmountsOverCeiling,
		CustomerBalanceTotal:   c.CustomerBalanceTotal,
		SystemBalanceTotal:     c.SystemBalanceTotal,
	}
}
