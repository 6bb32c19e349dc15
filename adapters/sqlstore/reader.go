package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// reader implements ports.Reader on any bun.IDB: the read pool, or a
// transaction.
type reader struct {
	db      bun.IDB
	dialect string
}

func us(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromUS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

func currency(code string) (domain.Currency, error) {
	c, err := domain.LookupCurrency(code)
	if err != nil {
		return domain.Currency{}, fmt.Errorf("stored row: %w", err)
	}
	return c, nil
}

const accountColumns = `id, customer_id, additional_customer_id, currency, status, balance_minor, version, created_at_us, updated_at_us`

func scanAccount(row interface{ Scan(...any) error }) (domain.Account, error) {
	dest, finish := accountScan()
	if err := row.Scan(dest...); err != nil {
		return domain.Account{}, classify(err)
	}
	return finish()
}

// accountScan returns the scan destinations of accountColumns and the
// function that builds the account from them once scanned.
func accountScan() ([]any, func() (domain.Account, error)) {
	var (
		id, customerID, additional, cur, status string
		balance, version, created, updated      int64
	)
	dest := []any{&id, &customerID, &additional, &cur, &status, &balance, &version, &created, &updated}
	return dest, func() (domain.Account, error) {
		c, err := currency(cur)
		if err != nil {
			return domain.Account{}, err
		}
		st, err := domain.ParseAccountStatus(status)
		if err != nil {
			return domain.Account{}, err
		}
		return domain.RehydrateAccount(id, customerID, additional, c, st, balance, version, fromUS(created), fromUS(updated))
	}
}

func (r reader) AccountByID(ctx context.Context, id string) (domain.Account, error) {
	a, err := scanAccount(r.db.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id = ?`, id))
	if err != nil {
		return a, fmt.Errorf("account %q: %w", id, err)
	}
	return a, nil
}

func (r reader) AccountByCustomer(ctx context.Context, customerID string, c domain.Currency) (domain.Account, error) {
	a, err := scanAccount(r.db.QueryRowContext(ctx,
		`SELECT `+accountColumns+` FROM accounts WHERE customer_id = ? AND currency = ?`, customerID, c.Code()))
	if err != nil {
		return a, fmt.Errorf("account of customer %q in %s: %w", customerID, c, err)
	}
	return a, nil
}

// where builds a WHERE clause from optional conditions.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

func (r reader) ListAccounts(ctx context.Context, q ports.AccountQuery) ([]domain.Account, error) {
	var w where
	if q.CustomerID != "" {
		w.add("customer_id = ?", q.CustomerID)
	}
	if !q.Status.IsZero() {
		w.add("status = ?", q.Status.String())
	}
	if q.AfterID != "" {
		w.add("id > ?", q.AfterID)
	}
	rows, err := r.db.QueryContext(ctx, `SELECT `+accountColumns+` FROM accounts`+w.String()+
		` ORDER BY id LIMIT ?`, append(w.args, ports.ClampLimit(q.Limit, 100))...)
	if err != nil {
		return nil, classify(err)
	}
	return collect(rows, scanAccount)
}

func collect[T any](rows *sql.Rows, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err)
	}
	return out, nil
}

const depositColumns = `id, provider, method, project, payment_id, account_id, customer_id, amount_minor, currency, status, operation_id, version, created_at_us, settled_at_us`

func scanDeposit(row interface{ Scan(...any) error }) (domain.Deposit, error) {
	dest, finish := depositScan()
	if err := row.Scan(dest...); err != nil {
		return domain.Deposit{}, classify(err)
	}
	return finish()
}

// depositScan returns the scan destinations of depositColumns and the
// function that builds the deposit from them once scanned.
func depositScan() ([]any, func() (domain.Deposit, error)) {
	var (
		d                        domain.Deposit
		cur, status              string
		amount, created, settled int64
	)
	dest := []any{&d.ID, &d.Channel.Provider, &d.Channel.Method, &d.Channel.Project, &d.PaymentID, &d.AccountID,
		&d.CustomerID, &amount, &cur, &status, &d.OperationID, &d.Version, &created, &settled}
	return dest, func() (domain.Deposit, error) {
		c, err := currency(cur)
		if err != nil {
			return domain.Deposit{}, err
		}
		if d.Status, err = domain.ParseDepositStatus(status); err != nil {
			return domain.Deposit{}, err
		}
		d.Amount = domain.NewAmount(amount, c)
		d.CreatedAt, d.SettledAt = fromUS(created), fromUS(settled)
		return d, nil
	}
}

// prefixed returns a column list with every column qualified by alias.
func prefixed(alias, columns string) string {
	cols := strings.Split(columns, ", ")
	for i, c := range cols {
		cols[i] = alias + "." + c
	}
	return strings.Join(cols, ", ")
}

var settleViewQuery = `SELECT ` + prefixed("d", depositColumns) + `, ` + prefixed("a", accountColumns) + `,
	CASE WHEN EXISTS (SELECT 1 FROM callback_inbox WHERE dedupe_key = ?) THEN 1 ELSE 0 END
	FROM deposits d JOIN accounts a ON a.id = d.account_id
	WHERE d.provider = ? AND d.project = ? AND d.payment_id = ?`

// SettleView is one statement on PostgreSQL (two when the deposit is
// unknown), three plain lookups on SQLite
// (docs/decisions/0004-sqlite-plain-statements.md).
func (r reader) SettleView(ctx context.Context, ch domain.Channel, paymentID, dedupeKey string) (ports.SettleView, error) {
	if r.dialect == SQLite {
		return r.settleViewSQLite(ctx, ch, paymentID, dedupeKey)
	}
	dd, depFinish := depositScan()
	ad, accFinish := accountScan()
	var seen int64
	dest := append(append(dd, ad...), &seen)
	err := r.db.QueryRowContext(ctx, settleViewQuery, dedupeKey, ch.Provider, ch.Project, paymentID).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		s, err := r.InboxSeen(ctx, dedupeKey)
		return ports.SettleView{Seen: s}, err
	}
	if err != nil {
		return ports.SettleView{}, fmt.Errorf("deposit %q: %w", paymentID, classify(err))
	}
	v := ports.SettleView{Found: true, Seen: seen == 1}
	if v.Deposit, err = depFinish(); err != nil {
		return ports.SettleView{}, err
	}
	if v.Account, err = accFinish(); err != nil {
		return ports.SettleView{}, err
	}
	return v, nil
}

func (r reader) DepositByPaymentID(ctx context.Context, ch domain.Channel, paymentID string) (domain.Deposit, error) {
	d, err := scanDeposit(r.db.QueryRowContext(ctx, `SELECT `+depositColumns+
		` FROM deposits WHERE provider = ? AND project = ? AND payment_id = ?`, ch.Provider, ch.Project, paymentID))
	if err != nil {
		return d, fmt.Errorf("deposit %q: %w", paymentID, err)
	}
	return d, nil
}

func (r reader) ListDeposits(ctx context.Context, q ports.DepositQuery) ([]domain.Deposit, error) {
	var w where
	if !q.Status.IsZero() {
		w.add("status = ?", q.Status.String())
	}
	if q.CustomerID != "" {
		w.add("customer_id = ?", q.CustomerID)
	}
	if q.AccountID != "" {
		w.add("account_id = ?", q.AccountID)
	}
	if q.PaymentID != "" {
		w.add("payment_id = ?", q.PaymentID)
	}
	if !q.From.IsZero() {
		w.add("created_at_us >= ?", us(q.From))
	}
	if !q.To.IsZero() {
		w.add("created_at_us < ?", us(q.To))
	}
	if q.AfterID != "" {
		w.add("id > ?", q.AfterID)
	}
	rows, err := r.db.QueryContext(ctx, `SELECT `+depositColumns+` FROM deposits`+w.String()+
		` ORDER BY id LIMIT ?`, append(w.args, ports.ClampLimit(q.Limit, 100))...)
	if err != nil {
		return nil, classify(err)
	}
	return collect(rows, scanDeposit)
}

func (r reader) Statement(ctx context.Context, q ports.StatementQuery) ([]ports.StatementLine, error) {
	var w where
	w.add("p.account_id = ?", q.AccountID)
	if q.AfterSeq > 0 {
		w.add("p.id > ?", q.AfterSeq)
	}
	if !q.From.IsZero() {
		w.add("p.created_at_us >= ?", us(q.From))
	}
	if !q.To.IsZero() {
		w.add("p.created_at_us < ?", us(q.To))
	}
	rows, err := r.db.QueryContext(ctx, `SELECT p.id, p.transfer_id, t.kind, COALESCE(t.deposit_id, ''),
		COALESCE(d.payment_id, ''), p.amount_minor, p.currency, COALESCE(p.balance_after_minor, 0), t.description, p.created_at_us
		FROM postings p JOIN transfers t ON t.id = p.transfer_id LEFT JOIN deposits d ON d.id = t.deposit_id`+
		w.String()+` ORDER BY p.id LIMIT ?`, append(w.args, ports.ClampLimit(q.Limit, 100))...)
	if err != nil {
		return nil, classify(err)
	}
	return collect(rows, func(row interface{ Scan(...any) error }) (ports.StatementLine, error) {
		var (
			l                        ports.StatementLine
			kind, cur                string
			amount, after, createdAt int64
		)
		if err := row.Scan(&l.Seq, &l.TransferID, &kind, &l.DepositID, &l.PaymentID, &amount, &cur, &after,
			&l.Description, &createdAt); err != nil {
			return l, classify(err)
		}
		c, err := currency(cur)
		if err != nil {
			return l, err
		}
		if l.Kind, err = domain.ParseTransferKind(kind); err != nil {
			return l, err
		}
		l.Amount, l.BalanceAfter = domain.NewAmount(amount, c), domain.NewAmount(after, c)
		l.CreatedAt = fromUS(createdAt)
		return l, nil
	})
}

func (r reader) BalanceAt(ctx context.Context, accountID string, at time.Time) (int64, error) {
	if _, err := r.AccountByID(ctx, accountID); err != nil {
		return 0, err
	}
	var balance int64
	err := r.db.QueryRowContext(ctx, `SELECT balance_after_minor FROM postings
		WHERE account_id = ? AND created_at_us <= ? ORDER BY id DESC LIMIT 1`, accountID, us(at)).Scan(&balance)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return balance, classify(err)
}

func (r reader) DerivedBalance(ctx context.Context, accountID string) (int64, error) {
	var sum int64
	err := r.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(amount_minor), 0) FROM postings WHERE account_id = ?`, accountID).Scan(&sum)
	return sum, classify(err)
}

const exceptionColumns = `id, reason, detail, provider, method, project, payment_id, operation_id, callback_status,
	outcome, deposit_id, account_id, amount_minor, currency, max_credit_minor, evidence, dedupe_key, state,
	proposed_account_id, proposed_amount_minor, proposed_note, proposed_by, proposed_at_us, resolution_credit,
	resolution_account_id, resolution_amount_minor, resolution_transfer_id, resolution_note, resolved_by,
	resolved_at_us, created_at_us, unverified`

func scanException(row interface{ Scan(...any) error }) (domain.Exception, error) {
	var (
		e                                            domain.Exception
		reason, outcome, cur, state                  string
		evidence                                     []byte
		amount, resAmount, resolvedAt, createdAt     int64
		propAmount, propAt                           int64
		propAccount, propNote, propBy                string
		resCredit                                    bool
		resAccount, resTransfer, resNote, resolvedBy string
	)
	if err := row.Scan(&e.ID, &reason, &e.Detail, &e.Channel.Provider, &e.Channel.Method, &e.Channel.Project,
		&e.PaymentID, &e.OperationID, &e.Status, &outcome, &e.DepositID, &e.AccountID, &amount, &cur, &e.MaxCredit,
		&evidence, &e.DedupeKey, &state, &propAccount, &propAmount, &propNote, &propBy, &propAt,
		&resCredit, &resAccount, &resAmount, &resTransfer, &resNote, &resolvedBy, &resolvedAt, &createdAt, &e.Unverified); err != nil {
		return e, classify(err)
	}
	var err error
	if e.Reason, err = domain.ParseExceptionReason(reason); err != nil {
		return e, err
	}
	if e.State, err = domain.ParseExceptionStatus(state); err != nil {
		return e, err
	}
	if e.Outcome, err = domain.ParseOutcomeKind(outcome); err != nil {
		return e, err
	}
	// The claimed currency may be one Tiyn does not know (that is often why
	// the exception exists): keep the code, with no exponent knowledge.
	c := domain.CurrencyOf(cur)
	e.Amount = domain.NewAmount(amount, c)
	e.Evidence = string(evidence)
	e.CreatedAt = fromUS(createdAt)
	if propBy != "" {
		e.Proposal = &domain.Proposal{AccountID: propAccount, Amount: domain.NewAmount(propAmount, c), Note: propNote,
			Actor: propBy, At: fromUS(propAt)}
	}
	if e.State == domain.ExceptionResolved || e.State == domain.ExceptionDismissed {
		e.Resolution = &domain.Resolution{Credit: resCredit, AccountID: resAccount, Amount: domain.NewAmount(resAmount, c),
			TransferID: resTransfer, Note: resNote, Actor: resolvedBy, ResolvedAt: fromUS(resolvedAt)}
	}
	return e, nil
}

func (r reader) ExceptionByID(ctx context.Context, id string) (domain.Exception, error) {
	e, err := scanException(r.db.QueryRowContext(ctx, `SELECT `+exceptionColumns+` FROM exceptions WHERE id = ?`, id))
	if err != nil {
		return e, fmt.Errorf("exception %q: %w", id, err)
	}
	return e, nil
}

func (r reader) ListExceptions(ctx context.Context, q ports.ExceptionQuery) ([]domain.Exception, error) {
	var w where
	if q.State.String() != "" {
		w.add("state = ?", q.State.String())
	}
	if q.Reason.String() != "" {
		w.add("reason = ?", q.Reason.String())
	}
	if q.AfterID != "" {
		w.add("id > ?", q.AfterID)
	}
	rows, err := r.db.QueryContext(ctx, `SELECT `+exceptionColumns+` FROM exceptions`+w.String()+
		` ORDER BY id LIMIT ?`, append(w.args, ports.ClampLimit(q.Limit, 100))...)
	if err != nil {
		return nil, classify(err)
	}
	return collect(rows, scanException)
}

// countExceptionsSQL counts at most ? exceptions in one state: an index-only
// read of exceptions_state_idx (state, id), bounded by the LIMIT whatever
// the queue holds.
const countExceptionsSQL = `SELECT COUNT(*) FROM (SELECT 1 FROM exceptions WHERE state = ? LIMIT ?) x`

// CountExceptions returns how many exceptions are in state, counting at
// most limit of them (a count of limit means "limit or more"). It is one
// bounded, indexed read: what the open exceptions gauge costs per scrape.
// It is not a port: only the composition root's metrics need it.
func (r reader) CountExceptions(ctx context.Context, state domain.ExceptionStatus, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("count exceptions: limit %d must be positive", limit)
	}
	var n int
	err := r.db.QueryRowContext(ctx, countExceptionsSQL, state.String(), limit).Scan(&n)
	return n, classify(err)
}

func (r reader) ListInbox(ctx context.Context, q ports.InboxQuery) ([]ports.InboxRecord, error) {
	var w where
	if q.PaymentID != "" {
		w.add("i.payment_id = ?", q.PaymentID)
	}
	if q.Outcome.String() != "" {
		w.add("i.outcome = ?", q.Outcome.String())
	}
	if !q.Source.IsZero() {
		w.add("i.source = ?", q.Source.String())
	}
	if q.AfterID > 0 {
		w.add("i.id > ?", q.AfterID)
	}
	rows, err := r.db.QueryContext(ctx, `SELECT i.id, i.source, i.provider, i.method, i.project, i.payment_id, i.operation_id,
		i.status, i.body, i.outcome, i.deposit_id, i.exception_id, i.dedupe_key, i.received_at_us, COALESCE(e.reason, '')
		FROM callback_inbox i LEFT JOIN exceptions e ON e.id = i.exception_id AND i.exception_id <> ''`+w.String()+
		` ORDER BY i.id LIMIT ?`, append(w.args, ports.ClampLimit(q.Limit, 100))...)
	if err != nil {
		return nil, classify(err)
	}
	return collect(rows, func(row interface{ Scan(...any) error }) (ports.InboxRecord, error) {
		var (
			rec      ports.InboxRecord
			source   string
			body     []byte
			outcome  string
			reason   string
			received int64
		)
		if err := row.Scan(&rec.ID, &source, &rec.Channel.Provider, &rec.Channel.Method, &rec.Channel.Project, &rec.PaymentID,
			&rec.OperationID, &rec.Status, &body, &outcome, &rec.DepositID, &rec.ExceptionID, &rec.DedupeKey, &received,
			&reason); err != nil {
			return rec, classify(err)
		}
		if reason != "" {
			r, perr := domain.ParseExceptionReason(reason)
			if perr != nil {
				return rec, perr
			}
			rec.Reason = r
		}
		src, err := ports.ParseSource(source)
		if err != nil {
			return rec, err
		}
		rec.Source = src
		rec.Body = string(body)
		rec.Outcome = parseEffect(outcome)
		rec.ReceivedAt = fromUS(received)
		return rec, nil
	})
}

func (r reader) settleViewSQLite(ctx context.Context, ch domain.Channel, paymentID, dedupeKey string) (ports.SettleView, error) {
	var v ports.SettleView
	var err error
	if v.Seen, err = r.InboxSeen(ctx, dedupeKey); err != nil {
		return v, err
	}
	v.Deposit, err = r.DepositByPaymentID(ctx, ch, paymentID)
	switch {
	case errors.Is(err, ports.ErrNotFound):
		return v, nil
	case err != nil:
		return v, err
	}
	v.Found = true
	v.Account, err = r.AccountByID(ctx, v.Deposit.AccountID)
	return v, err
}

func (r reader) InboxSeen(ctx context.Context, dedupeKey string) (bool, error) {
	var n int
	err := r.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM callback_inbox WHERE dedupe_key = ? LIMIT 1) x`, dedupeKey).Scan(&n)
	return n > 0, classify(err)
}

func parseEffect(s string) domain.Effect {
	for _, e := range []domain.Effect{domain.EffectCredit, domain.EffectDecline, domain.EffectReplay,
		domain.EffectRecord, domain.EffectException} {
		if e.String() == s {
			return e
		}
	}
	return domain.Effect{}
}

func (r reader) DepositCredit(ctx context.Context, depositID string) (string, error) {
	var id string
	err := r.db.QueryRowContext(ctx, `SELECT id FROM transfers WHERE deposit_id = ? AND kind = 'deposit_credit'`, depositID).Scan(&id)
	if err != nil {
		return "", fmt.Errorf("credit of deposit %q: %w", depositID, classify(err))
	}
	return id, nil
}

func (r reader) CreditByKey(ctx context.Context, creditKey string) (string, error) {
	var id string
	err := r.db.QueryRowContext(ctx, `SELECT id FROM transfers WHERE credit_key = ?`, creditKey).Scan(&id)
	if err != nil {
		return "", fmt.Errorf("credit %q: %w", creditKey, classify(err))
	}
	return id, nil
}

func (r reader) DebitByKey(ctx context.Context, accountID, key string) (ports.DebitRecord, error) {
	var (
		rec                      ports.DebitRecord
		cur                      string
		amount, after, createdAt int64
	)
	err := r.db.QueryRowContext(ctx, `SELECT account_id, idempotency_key, request_hash, transfer_id, amount_minor, currency,
		description, balance_after_minor, actor, created_at_us FROM debits WHERE account_id = ? AND idempotency_key = ?`,
		accountID, key).Scan(&rec.AccountID, &rec.IdempotencyKey, &rec.RequestHash, &rec.TransferID, &amount, &cur,
		&rec.Description, &after, &rec.Actor, &createdAt)
	if err != nil {
		return rec, fmt.Errorf("debit %q: %w", key, classify(err))
	}
	c, err := currency(cur)
	if err != nil {
		return rec, err
	}
	rec.Amount, rec.BalanceAfter = domain.NewAmount(amount, c), domain.NewAmount(after, c)
	rec.CreatedAt = fromUS(createdAt)
	return rec, nil
}

// Exact sums. A sum of BIGINT columns can overflow: SQLite then errors
// (SUM) or turns it into a REAL (TOTAL), PostgreSQL errors when the result
// goes back into a BIGINT. The ledger check must count a corrupt row, not
// fail on it, so it never adds the values themselves. Each value x is split
// into hi = x >> 32 (an arithmetic shift on both dialects) and lo = x &
// 0xFFFFFFFF (0 <= lo < 2^32), so that x = hi·2^32 + lo exactly; the hi
// and lo parts of up to 2^31 rows add up within a BIGINT. A sum (H, L) is
// compared with a value v through its normal form (H + L / 2^32, L % 2^32),
// which is v's (v >> 32, v & 0xFFFFFFFF) exactly when the sum equals v. The
// same text runs on both dialects.
const (
	splitBase = "4294967296"
	splitMask = "4294967295"
)

// splitSums returns the hi and lo sums of expr, as BIGINT columns named
// prefix+"h" and prefix+"l" (0 for no rows).
func splitSums(expr, prefix string) string {
	return "CAST(COALESCE(SUM((" + expr + ") >> 32), 0) AS BIGINT) AS " + prefix + "h, " +
		"CAST(COALESCE(SUM((" + expr + ") & " + splitMask + "), 0) AS BIGINT) AS " + prefix + "l"
}

// sumDiffers is the SQL condition "the split sum (h, l) differs from v".
func sumDiffers(h, l, v string) string {
	return "(" + h + " + " + l + " / " + splitBase + " <> (" + v + ") >> 32 OR " + l + " % " + splitBase +
		" <> (" + v + ") & " + splitMask + ")"
}

// bigSum is a split sum as an exact integer.
func bigSum(h, l int64) *big.Int {
	sum := new(big.Int).Lsh(big.NewInt(h), 32)
	return sum.Add(sum, big.NewInt(l))
}

var ceilingText = strconv.FormatInt(domain.MaxBalanceMinor, 10)

// checkQueries are the ledger check's counters, one query each.
func checkQueries(c *ports.LedgerCheck) []struct {
	dest  *int64
	query string
} {
	return []struct {
		dest  *int64
		query string
	}{
		{&c.Transfers, `SELECT COUNT(*) FROM transfers`},
		{&c.UnbalancedTransfers, `SELECT COUNT(*) FROM (SELECT COUNT(p.id) AS n, ` + splitSums("p.amount_minor", "s") + `
			FROM transfers t LEFT JOIN postings p ON p.transfer_id = t.id GROUP BY t.id) x
			WHERE x.n < 2 OR ` + sumDiffers("x.sh", "x.sl", "0")},
		{&c.BalanceMismatches, `SELECT COUNT(*) FROM accounts a LEFT JOIN (SELECT account_id, ` + splitSums("amount_minor", "s") + `
			FROM postings GROUP BY account_id) x ON x.account_id = a.id
			WHERE ` + sumDiffers("COALESCE(x.sh, 0)", "COALESCE(x.sl, 0)", "a.balance_minor") + `
			OR a.balance_minor <> COALESCE((SELECT p.balance_after_minor FROM postings p WHERE p.account_id = a.id
				ORDER BY p.id DESC LIMIT 1), 0)`},
		{&c.NegativeBalances, `SELECT COUNT(*) FROM accounts WHERE balance_minor < 0`},
		{&c.CurrencyMismatches, `SELECT COUNT(*) FROM postings p JOIN accounts a ON a.id = p.account_id
			WHERE p.currency <> a.currency`},
		{&c.CreditsWithoutDeposit, `SELECT COUNT(*) FROM transfers t WHERE t.kind = 'deposit_credit' AND NOT EXISTS
			(SELECT 1 FROM deposits d WHERE d.id = t.deposit_id AND d.status = 'succeeded')`},
		{&c.SucceededWithoutCredit, `SELECT COUNT(*) FROM deposits d WHERE d.status = 'succeeded' AND NOT EXISTS
			(SELECT 1 FROM transfers t WHERE t.deposit_id = d.id AND t.kind = 'deposit_credit')`},
		{&c.DuplicateCredits, `SELECT COUNT(*) FROM (SELECT deposit_id FROM transfers WHERE kind = 'deposit_credit'
			GROUP BY deposit_id HAVING COUNT(*) > 1) x`},
		{&c.AmountsOverCeiling, `SELECT (SELECT COUNT(*) FROM accounts WHERE balance_minor > ` + ceilingText + `
			OR balance_minor < -` + ceilingText + `) + (SELECT COUNT(*) FROM postings WHERE amount_minor > ` + ceilingText + `
			OR amount_minor < -` + ceilingText + ` OR balance_after_minor > ` + ceilingText + `
			OR balance_after_minor < -` + ceilingText + `)`},
	}
}

// CheckLedger recomputes every invariant with one query per invariant,
// with exact sums (see splitSums): whatever the rows hold, it answers.
func (r reader) CheckLedger(ctx context.Context) (ports.LedgerCheck, error) {
	var c ports.LedgerCheck
	for _, chk := range checkQueries(&c) {
		if err := r.db.QueryRowContext(ctx, chk.query).Scan(chk.dest); err != nil {
			return c, classify(err)
		}
	}
	var h, l int64
	if err := r.db.QueryRowContext(ctx, `SELECT `+splitSums("balance_minor", "s")+` FROM accounts`).Scan(&h, &l); err != nil {
		return c, classify(err)
	}
	c.CustomerBalanceTotal = bigSum(h, l)
	if err := r.db.QueryRowContext(ctx, `SELECT `+splitSums("amount_minor", "s")+` FROM postings
		WHERE account_id LIKE 'clearing:%' OR account_id LIKE 'revenue:%'`).Scan(&h, &l); err != nil {
		return c, classify(err)
	}
	c.SystemBalanceTotal = bigSum(h, l)
	return c, nil
}
