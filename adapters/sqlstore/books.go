package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// Reconciliation runs and items, closed business days and their
// statements (migration 0004).

var zones sync.Map // zone name → *time.Location

func loadZone(name string) (*time.Location, error) {
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location), nil
	}
	loc, err := domain.LoadBusinessZone(name)
	if err != nil {
		return nil, fmt.Errorf("stored row: %w", err)
	}
	zones.Store(name, loc)
	return loc, nil
}

func storedDay(day, zone string) (domain.BusinessDay, error) {
	loc, err := loadZone(zone)
	if err != nil {
		return domain.BusinessDay{}, err
	}
	d, err := domain.ParseBusinessDay(day, loc)
	if err != nil {
		return d, fmt.Errorf("stored row: %w", err)
	}
	return d, nil
}

func zoneName(d domain.BusinessDay) string { return d.Location().String() }

const runColumns = `id, day, zone, source, input_hash, ledger_mark, started_by, started_at_us, heartbeat_at_us, finished_at_us,
	status, error, rows_read, bad_rows, classes`

// classJSON is one class's totals as stored in reconciliation_runs.classes.
type classJSON struct {
	Count    int64  `json:"count"`
	Platform string `json:"platform_minor"`
	Ledger   string `json:"ledger_minor"`
}

func encodeClasses(m map[domain.ReconClass]ports.ClassTotal) (string, error) {
	if len(m) == 0 {
		return "", nil
	}
	out := make(map[string]classJSON, len(m))
	for c, t := range m {
		j := classJSON{Count: t.Count, Platform: "0", Ledger: "0"}
		if t.Platform != nil {
			j.Platform = t.Platform.String()
		}
		if t.Ledger != nil {
			j.Ledger = t.Ledger.String()
		}
		out[c.String()] = j
	}
	b, err := json.Marshal(out)
	return string(b), err
}

func decodeClasses(s string) (map[domain.ReconClass]ports.ClassTotal, error) {
	if s == "" {
		return nil, nil
	}
	var in map[string]classJSON
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, fmt.Errorf("stored run classes: %w", err)
	}
	out := make(map[domain.ReconClass]ports.ClassTotal, len(in))
	for name, j := range in {
		c, err := domain.ParseReconClass(name)
		if err != nil {
			return nil, fmt.Errorf("stored run classes: %w", err)
		}
		p, ok1 := new(big.Int).SetString(j.Platform, 10)
		l, ok2 := new(big.Int).SetString(j.Ledger, 10)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("stored run classes: sums of %s are not integers", name)
		}
		out[c] = ports.ClassTotal{Count: j.Count, Platform: p, Ledger: l}
	}
	return out, nil
}

func scanRun(row interface{ Scan(...any) error }) (ports.ReconRun, error) {
	var (
		r                                ports.ReconRun
		day, zone, status, classes       string
		started, beat, finished, n, nBad int64
	)
	if err := row.Scan(&r.ID, &day, &zone, &r.Source, &r.InputHash, &r.LedgerMark, &r.StartedBy, &started, &beat, &finished,
		&status, &r.Error, &n, &nBad, &classes); err != nil {
		return r, classify(err)
	}
	var err error
	if r.Day, err = storedDay(day, zone); err != nil {
		return r, err
	}
	if r.Status, err = ports.ParseRunStatus(status); err != nil {
		return r, fmt.Errorf("stored row: %w", err)
	}
	if r.Classes, err = decodeClasses(classes); err != nil {
		return r, err
	}
	r.StartedAt, r.HeartbeatAt, r.FinishedAt = fromUS(started), fromUS(beat), fromUS(finished)
	r.Rows, r.BadRows = n, nBad
	return r, nil
}

func (r reader) ReconRunByID(ctx context.Context, id string) (ports.ReconRun, error) {
	run, err := scanRun(r.db.QueryRowContext(ctx, `SELECT `+runColumns+` FROM reconciliation_runs WHERE id = ?`, id))
	if err != nil {
		return run, fmt.Errorf("reconciliation run %q: %w", id, err)
	}
	return run, nil
}

func (r reader) ListReconRuns(ctx context.Context, q ports.ReconRunQuery) ([]ports.ReconRun, error) {
	var w where
	if !q.Day.IsZero() {
		w.add("day = ?", q.Day.String())
	}
	if q.BeforeID != "" {
		w.add("id < ?", q.BeforeID)
	}
	rows, err := r.db.QueryContext(ctx, `SELECT `+runColumns+` FROM reconciliation_runs`+w.String()+` ORDER BY id DESC LIMIT ?`,
		append(w.args, ports.ClampLimit(q.Limit, 50))...)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	var out []ports.ReconRun
	for rows.Next() {
		run, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, run)
	}
	return out, classify(rows.Err())
}

func (r reader) LatestReconRun(ctx context.Context, day domain.BusinessDay, st ports.RunStatus) (ports.ReconRun, error) {
	run, err := scanRun(r.db.QueryRowContext(ctx, `SELECT `+runColumns+` FROM reconciliation_runs
		WHERE day = ? AND status = ? ORDER BY started_at_us DESC, id DESC LIMIT 1`, day.String(), st.String()))
	if err != nil {
		return run, fmt.Errorf("latest %s reconciliation of %s: %w", st, day, err)
	}
	return run, nil
}

const itemColumns = `run_id, seq, class, line, project_id, payment_id, operation_id, operation_type, operation_status,
	completed_at_us, platform_minor, platform_currency, ledger_minor, ledger_currency, deposit_id, deposit_status,
	exception_id, raw, note`

func scanItem(row interface{ Scan(...any) error }) (ports.ReconItem, error) {
	var (
		it                   ports.ReconItem
		class, pcur, lcur    string
		completed, pmin, lmn int64
		line                 int64
		raw                  []byte
	)
	if err := row.Scan(&it.RunID, &it.Seq, &class, &line, &it.ProjectID, &it.PaymentID, &it.OperationID,
		&it.OperationType, &it.OperationStatus, &completed, &pmin, &pcur, &lmn, &lcur, &it.DepositID,
		&it.DepositStatus, &it.ExceptionID, &raw, &it.Note); err != nil {
		return it, classify(err)
	}
	if class != "" {
		c, err := domain.ParseReconClass(class)
		if err != nil {
			return it, fmt.Errorf("stored row: %w", err)
		}
		it.Class = c
	}
	it.Line = int(line)
	it.CompletedAt = fromUS(completed)
	it.Platform = domain.NewAmount(pmin, domain.CurrencyOf(pcur))
	it.Ledger = domain.NewAmount(lmn, domain.CurrencyOf(lcur))
	it.Raw = string(raw)
	return it, nil
}

func (r reader) queryItems(ctx context.Context, query string, args ...any) ([]ports.ReconItem, error) {
	rows, err := r.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	var out []ports.ReconItem
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, classify(rows.Err())
}

func (r reader) ListReconItems(ctx context.Context, q ports.ReconItemQuery) ([]ports.ReconItem, error) {
	var w where
	w.add("run_id = ?", q.RunID)
	if !q.Class.IsZero() {
		w.add("class = ?", q.Class.String())
	}
	if q.AfterSeq > 0 {
		w.add("seq > ?", q.AfterSeq)
	}
	return r.queryItems(ctx, `SELECT `+itemColumns+` FROM reconciliation_items`+w.String()+` ORDER BY seq LIMIT ?`,
		append(w.args, ports.ClampLimit(q.Limit, 100))...)
}

func (r reader) ListStagedRows(ctx context.Context, q ports.StagedQuery) ([]ports.ReconItem, error) {
	// A row-value comparison: both dialects start the range scan of the
	// (run_id, project_id, payment_id, seq) index at the cursor.
	return r.queryItems(ctx, `SELECT `+itemColumns+` FROM reconciliation_rows
		WHERE run_id = ? AND (project_id, payment_id, seq) > (?, ?, ?)
		ORDER BY project_id, payment_id, seq LIMIT ?`,
		q.RunID, q.AfterProject, q.AfterPayment, q.AfterSeq, ports.ClampLimit(q.Limit, 100))
}

func (r reader) ListUnreconciled(ctx context.Context, q ports.UnreconciledQuery) ([]domain.Deposit, error) {
	col := "created_at_us"
	if q.BySettled {
		col = "settled_at_us"
	}
	var w where
	w.add(col+" >= ?", us(q.From))
	w.add(col+" < ?", us(q.To))
	if q.AfterID != "" || !q.AfterAt.IsZero() {
		w.add("("+col+", id) > (?, ?)", us(q.AfterAt), q.AfterID)
	}
	w.add("provider = ?", q.Provider)
	if len(q.Projects) > 0 {
		w.add("project IN (?"+strings.Repeat(", ?", len(q.Projects)-1)+")", anySlice(q.Projects)...)
	}
	w.add("NOT EXISTS (SELECT 1 FROM reconciliation_items i WHERE i.run_id = ? AND i.deposit_id = deposits.id)", q.RunID)
	rows, err := r.db.QueryContext(ctx, `SELECT `+depositColumns+` FROM deposits`+w.String()+` ORDER BY `+col+`, id LIMIT ?`,
		append(w.args, ports.ClampLimit(q.Limit, 100))...)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	var out []domain.Deposit
	for rows.Next() {
		d, err := scanDeposit(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, classify(rows.Err())
}

func (r reader) DepositsByPayment(ctx context.Context, provider string, keys []ports.PaymentKey) ([]domain.Deposit, error) {
	want := make(map[ports.PaymentKey]bool, len(keys))
	for _, k := range keys {
		want[k] = true
	}
	var out []domain.Deposit
	for len(keys) > 0 {
		n := min(len(keys), 500)
		var err error
		if out, err = r.depositsByPaymentID(ctx, provider, want, keys[:n], out); err != nil {
			return nil, err
		}
		keys = keys[n:]
	}
	return out, nil
}

// depositsByPaymentID appends to out the deposits of keys' payment ids
// that the provider and want name.
func (r reader) depositsByPaymentID(ctx context.Context, provider string, want map[ports.PaymentKey]bool, keys []ports.PaymentKey,
	out []domain.Deposit) ([]domain.Deposit, error) {
	args := make([]any, 0, len(keys))
	for _, k := range keys {
		args = append(args, k.PaymentID)
	}
	// By payment id alone, so that only its own index applies: the
	// provider and (project, payment id) pairs are picked here.
	rows, err := r.db.QueryContext(ctx, `SELECT `+depositColumns+` FROM deposits WHERE payment_id IN (?`+
		strings.Repeat(", ?", len(keys)-1)+`)`, args...)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		d, err := scanDeposit(rows)
		if err != nil {
			return nil, err
		}
		if d.Channel.Provider == provider && want[ports.PaymentKey{Project: d.Channel.Project, PaymentID: d.PaymentID}] {
			out = append(out, d)
		}
	}
	return out, classify(rows.Err())
}

func (t *tx) DepositsByPayment(ctx context.Context, provider string, keys []ports.PaymentKey) ([]domain.Deposit, error) {
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	return t.reader.DepositsByPayment(ctx, provider, keys)
}

func (r reader) CreditedAmounts(ctx context.Context, ids []string) (map[string]domain.Amount, error) {
	out := make(map[string]domain.Amount, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), 500)
		if err := r.creditedAmounts(ctx, ids[:n], out); err != nil {
			return nil, err
		}
		ids = ids[n:]
	}
	return out, nil
}

func (r reader) creditedAmounts(ctx context.Context, ids []string, out map[string]domain.Amount) error {
	rows, err := r.db.QueryContext(ctx, `SELECT t.deposit_id, p.amount_minor, p.currency FROM transfers t
		JOIN postings p ON p.transfer_id = t.id AND p.amount_minor > 0
		WHERE t.kind = 'deposit_credit' AND t.deposit_id IN (?`+strings.Repeat(", ?", len(ids)-1)+`)`, anySlice(ids)...)
	if err != nil {
		return classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id, cur string
			minor   int64
		)
		if err := rows.Scan(&id, &minor, &cur); err != nil {
			return classify(err)
		}
		out[id] = domain.NewAmount(minor, domain.CurrencyOf(cur))
	}
	return classify(rows.Err())
}

func (t *tx) CreditedAmounts(ctx context.Context, ids []string) (map[string]domain.Amount, error) {
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	return t.reader.CreditedAmounts(ctx, ids)
}

func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func (r reader) LedgerMark(ctx context.Context, provider string, projects []string, from, to time.Time) (string, error) {
	// Each deposit once: created within the range, or settled within it
	// and created before.
	query := `SELECT COUNT(*), COALESCE(SUM(version), 0) FROM deposits WHERE provider = ?
		AND ((created_at_us >= ? AND created_at_us < ?) OR (settled_at_us >= ? AND settled_at_us < ? AND created_at_us < ?))`
	args := []any{provider, us(from), us(to), us(from), us(to), us(from)}
	if len(projects) > 0 {
		query += ` AND project IN (?` + strings.Repeat(", ?", len(projects)-1) + `)`
		args = append(args, anySlice(projects)...)
	}
	var n, versions int64
	if err := r.db.QueryRowContext(ctx, query, args...).Scan(&n, &versions); err != nil {
		return "", classify(err)
	}
	return fmt.Sprintf("%d:%d", n, versions), nil
}

func (t *tx) LedgerMark(ctx context.Context, provider string, projects []string, from, to time.Time) (string, error) {
	if err := t.flush(ctx); err != nil {
		return "", err
	}
	return t.reader.LedgerMark(ctx, provider, projects, from, to)
}

func (r reader) SuccessOnRecord(ctx context.Context, day domain.BusinessDay, project, paymentID, operationID string) (bool, error) {
	var one int
	err := r.db.QueryRowContext(ctx, `SELECT 1 FROM reconciliation_items i JOIN reconciliation_runs r ON r.id = i.run_id
		WHERE i.payment_id = ? AND i.operation_id = ? AND i.class IN ('matched', 'healed') AND i.project_id = ?
		AND i.operation_type = ? AND i.operation_status = ? AND r.status = 'finished' AND r.day <> ? LIMIT 1`,
		paymentID, operationID, project, domain.OperationTypeSale, domain.OperationSuccess, day.String()).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, classify(err)
	}
	return true, nil
}

func (r reader) OpenBreaks(ctx context.Context, runID string) (int64, error) {
	var breaks []any
	for _, c := range domain.ReconClasses() {
		if c.IsBreak() {
			breaks = append(breaks, c.String())
		}
	}
	var n int64
	err := r.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM reconciliation_items i
		LEFT JOIN exceptions e ON e.id = i.exception_id
		WHERE i.run_id = ? AND i.class IN (?`+strings.Repeat(", ?", len(breaks)-1)+`)
		AND (e.id IS NULL OR e.state IN ('open', 'proposed'))`, append([]any{runID}, breaks...)...).Scan(&n)
	if err != nil {
		return 0, classify(err)
	}
	return n, nil
}

const dayColumns = `day, zone, closed_at_us, closed_by, run_id, open_breaks, override, reason, accounts`

func (r reader) DayRecord(ctx context.Context, day domain.BusinessDay) (ports.DayRecord, error) {
	var (
		rec            ports.DayRecord
		d, zone        string
		closed, breaks int64
		accounts       int64
		override       bool
	)
	err := r.db.QueryRowContext(ctx, `SELECT `+dayColumns+` FROM business_days WHERE day = ?`, day.String()).Scan(
		&d, &zone, &closed, &rec.ClosedBy, &rec.RunID, &breaks, &override, &rec.Reason, &accounts)
	if err != nil {
		return rec, fmt.Errorf("business day %s: %w", day, classify(err))
	}
	if rec.Day, err = storedDay(d, zone); err != nil {
		return rec, err
	}
	rec.ClosedAt, rec.OpenBreaks, rec.Override, rec.Accounts = fromUS(closed), breaks, override, accounts
	return rec, nil
}

func (r reader) ListDayBalances(ctx context.Context, q ports.DayBalanceQuery) ([]ports.DayBalance, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT account_id, currency, system, opening_minor, credits_minor, debits_minor,
		closing_minor FROM day_balances WHERE day = ? AND account_id > ? ORDER BY account_id, currency LIMIT ?`,
		q.Day.String(), q.AfterAccountID, ports.ClampLimit(q.Limit, 100))
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	var out []ports.DayBalance
	for rows.Next() {
		var (
			b   ports.DayBalance
			cur string
		)
		if err := rows.Scan(&b.AccountID, &cur, &b.System, &b.Opening, &b.Credits, &b.Debits, &b.Closing); err != nil {
			return nil, classify(err)
		}
		b.Currency = domain.CurrencyOf(cur)
		out = append(out, b)
	}
	return out, classify(rows.Err())
}

// Reads through a transaction that look at rows the held writes may
// change: after a flush.

func (t *tx) ListUnreconciled(ctx context.Context, q ports.UnreconciledQuery) ([]domain.Deposit, error) {
	if err := t.flush(ctx); err != nil {
		return nil, err
	}
	return t.reader.ListUnreconciled(ctx, q)
}

func (t *tx) OpenBreaks(ctx context.Context, runID string) (int64, error) {
	if err := t.flush(ctx); err != nil {
		return 0, err
	}
	return t.reader.OpenBreaks(ctx, runID)
}

// Writes.

func (t *tx) InsertReconRun(ctx context.Context, r ports.ReconRun) error {
	classes, err := encodeClasses(r.Classes)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO reconciliation_runs (`+runColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Day.String(), zoneName(r.Day), r.Source, r.InputHash, r.LedgerMark, r.StartedBy, us(r.StartedAt), us(r.HeartbeatAt),
		us(r.FinishedAt), r.Status.String(), r.Error, r.Rows, r.BadRows, classes)
	if err != nil {
		return fmt.Errorf("insert reconciliation run of %s: %w", r.Day, err)
	}
	return nil
}

func (t *tx) runGone(ctx context.Context, id string, what string) error {
	if _, err := t.ReconRunByID(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("reconciliation run %s %s: %w", id, what, ports.ErrConflict)
}

func (t *tx) TakeOverReconRun(ctx context.Context, id string, staleBefore, at time.Time, reason string) error {
	n, err := t.exec(ctx, `UPDATE reconciliation_runs SET status = 'failed', error = ?, finished_at_us = ?
		WHERE id = ? AND status = 'running' AND heartbeat_at_us < ?`, reason, us(at), id, us(staleBefore))
	if err != nil {
		return err
	}
	if n == 0 {
		return t.runGone(ctx, id, "is not running, or still beating")
	}
	return nil
}

func (t *tx) BeatReconRun(ctx context.Context, id string, at time.Time) error {
	n, err := t.exec(ctx, `UPDATE reconciliation_runs SET heartbeat_at_us = ? WHERE id = ? AND status = 'running'`, us(at), id)
	if err != nil {
		return err
	}
	if n == 0 {
		return t.runGone(ctx, id, "is not running")
	}
	return nil
}

func (t *tx) FinishReconRun(ctx context.Context, r ports.ReconRun) error {
	if r.Status != ports.RunFinished && r.Status != ports.RunFailed {
		return fmt.Errorf("%w: a run finishes as finished or failed, not %q", domain.ErrInvalidInput, r.Status)
	}
	classes, err := encodeClasses(r.Classes)
	if err != nil {
		return err
	}
	n, err := t.exec(ctx, `UPDATE reconciliation_runs SET status = ?, error = ?, input_hash = ?, ledger_mark = ?, rows_read = ?,
		bad_rows = ?, classes = ?, finished_at_us = ? WHERE id = ? AND status = 'running'`,
		r.Status.String(), r.Error, r.InputHash, r.LedgerMark, r.Rows, r.BadRows, classes, us(r.FinishedAt), r.ID)
	if err != nil {
		return err
	}
	if n == 0 {
		return t.runGone(ctx, r.ID, "is not running")
	}
	return nil
}

func (t *tx) DeleteReconRun(ctx context.Context, id string) error {
	for _, q := range []string{`DELETE FROM reconciliation_rows WHERE run_id = ?`, `DELETE FROM reconciliation_items WHERE run_id = ?`,
		`DELETE FROM reconciliation_runs WHERE id = ?`} {
		if _, err := t.exec(ctx, q, id); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) DropStagedRows(ctx context.Context, runID string) error {
	_, err := t.exec(ctx, `DELETE FROM reconciliation_rows WHERE run_id = ?`, runID)
	return err
}

func (t *tx) StageReconRows(ctx context.Context, rows []ports.ReconItem) error {
	return t.insertItems(ctx, "reconciliation_rows", rows)
}

func (t *tx) InsertReconItems(ctx context.Context, items []ports.ReconItem) error {
	return t.insertItems(ctx, "reconciliation_items", items)
}

// itemsPerInsert bounds the rows of one multi-row INSERT (19 values each:
// SQLite allows 32766 parameters).
const itemsPerInsert = 200

func (t *tx) insertItems(ctx context.Context, table string, items []ports.ReconItem) error {
	for len(items) > 0 {
		n := min(len(items), itemsPerInsert)
		var (
			b    strings.Builder
			args = make([]any, 0, n*19)
		)
		b.WriteString(`INSERT INTO ` + table + ` (` + itemColumns + `) VALUES `)
		for i, it := range items[:n] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, it.RunID, it.Seq, it.Class.String(), int64(it.Line), it.ProjectID, it.PaymentID, it.OperationID,
				it.OperationType, it.OperationStatus, us(it.CompletedAt), it.Platform.Minor(), it.Platform.Currency().Code(),
				it.Ledger.Minor(), it.Ledger.Currency().Code(), it.DepositID, it.DepositStatus, it.ExceptionID, []byte(it.Raw), it.Note)
		}
		if _, err := t.exec(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("insert %d rows into %s: %w", n, table, err)
		}
		items = items[n:]
	}
	return nil
}

// dayStatement fills a day's statement from the latest closed day before
// it (its closing is the opening, plus the postings between) or from every
// posting before the day, and the day's own postings.
const dayStatement = `INSERT INTO day_balances (day, account_id, currency, system, opening_minor, credits_minor,
	debits_minor, closing_minor)
SELECT ?, x.account_id, x.currency, NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = x.account_id),
	SUM(x.opening), SUM(x.credits), SUM(x.debits), SUM(x.opening) + SUM(x.credits) - SUM(x.debits)
FROM (
	SELECT account_id, currency, closing_minor AS opening, 0 AS credits, 0 AS debits FROM day_balances WHERE day = ?
	UNION ALL
	SELECT account_id, currency, amount_minor, 0, 0 FROM postings WHERE created_at_us >= ? AND created_at_us < ?
	UNION ALL
	SELECT account_id, currency, 0, CASE WHEN amount_minor > 0 THEN amount_minor ELSE 0 END,
		CASE WHEN amount_minor < 0 THEN -amount_minor ELSE 0 END
	FROM postings WHERE created_at_us >= ? AND created_at_us < ?
) x
GROUP BY x.account_id, x.currency
HAVING SUM(x.opening) <> 0 OR SUM(x.credits) <> 0 OR SUM(x.debits) <> 0`

func (t *tx) CloseDay(ctx context.Context, rec ports.DayRecord) (ports.DayRecord, error) {
	if err := t.flush(ctx); err != nil {
		return rec, err
	}
	// Every other writer waits until this transaction ends: PostgreSQL's
	// SHARE lock conflicts with the ROW EXCLUSIVE lock an INSERT takes
	// (and waits for those in flight to commit, so their rows count);
	// SQLite has one writer, and this transaction holds its lock.
	if t.dialect == Postgres {
		if _, err := t.exec(ctx, `LOCK TABLE postings IN SHARE MODE`); err != nil {
			return rec, fmt.Errorf("lock the ledger to close %s: %w", rec.Day, err)
		}
	}
	day := rec.Day
	start, end := us(day.Start()), us(day.End())
	var (
		prevDay string
		prevEnd int64 = math.MinInt64
	)
	err := t.db.QueryRowContext(ctx, `SELECT day, ends_at_us FROM business_days WHERE ends_at_us <= ?
		ORDER BY ends_at_us DESC LIMIT 1`, start).Scan(&prevDay, &prevEnd)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return rec, classify(err)
	}
	if _, err := t.exec(ctx, `INSERT INTO business_days (day, zone, starts_at_us, ends_at_us, closed_at_us, closed_by,
		run_id, open_breaks, override, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		day.String(), zoneName(day), start, end, us(rec.ClosedAt), rec.ClosedBy, rec.RunID, rec.OpenBreaks, rec.Override,
		rec.Reason); err != nil {
		return rec, fmt.Errorf("close business day %s: %w", day, err)
	}
	n, err := t.exec(ctx, dayStatement, day.String(), prevDay, prevEnd, start, start, end)
	if err != nil {
		return rec, fmt.Errorf("statement of business day %s: %w", day, err)
	}
	rec.Accounts = n
	if _, err := t.exec(ctx, `UPDATE business_days SET accounts = ? WHERE day = ?`, n, day.String()); err != nil {
		return rec, err
	}
	if _, err := t.exec(ctx, `UPDATE ledger_freeze SET frozen_until_us = ? WHERE id = 1 AND frozen_until_us < ?`, end, end); err != nil {
		return rec, fmt.Errorf("freeze the ledger up to the end of %s: %w", day, err)
	}
	return rec, nil
}
