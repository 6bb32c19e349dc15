-- Business-day reconciliation and close (issue 17); see the PostgreSQL
-- migration of the same number.

CREATE TABLE reconciliation_runs (
    id              TEXT PRIMARY KEY,
    day             TEXT NOT NULL,
    zone            TEXT NOT NULL,
    source          TEXT NOT NULL,
    input_hash      TEXT NOT NULL DEFAULT '',
    ledger_mark     TEXT NOT NULL DEFAULT '',
    started_by      TEXT NOT NULL,
    started_at_us   BIGINT NOT NULL,
    heartbeat_at_us BIGINT NOT NULL,
    finished_at_us  BIGINT NOT NULL DEFAULT 0,
    status          TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed')),
    error           TEXT NOT NULL DEFAULT '',
    rows_read       BIGINT NOT NULL DEFAULT 0,
    bad_rows        BIGINT NOT NULL DEFAULT 0,
    classes         TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX reconciliation_runs_one_running ON reconciliation_runs (day) WHERE status = 'running';
CREATE INDEX reconciliation_runs_day_idx ON reconciliation_runs (day, status, started_at_us);

CREATE TABLE reconciliation_items (
    run_id            TEXT NOT NULL REFERENCES reconciliation_runs (id) ON DELETE CASCADE,
    seq               BIGINT NOT NULL,
    class             TEXT NOT NULL DEFAULT '',
    line              BIGINT NOT NULL DEFAULT 0,
    project_id        TEXT NOT NULL DEFAULT '',
    payment_id        TEXT NOT NULL DEFAULT '',
    operation_id      TEXT NOT NULL DEFAULT '',
    operation_type    TEXT NOT NULL DEFAULT '',
    operation_status  TEXT NOT NULL DEFAULT '',
    completed_at_us   BIGINT NOT NULL DEFAULT 0,
    platform_minor    BIGINT NOT NULL DEFAULT 0,
    platform_currency TEXT NOT NULL DEFAULT '',
    ledger_minor      BIGINT NOT NULL DEFAULT 0,
    ledger_currency   TEXT NOT NULL DEFAULT '',
    deposit_id        TEXT NOT NULL DEFAULT '',
    deposit_status    TEXT NOT NULL DEFAULT '',
    exception_id      TEXT NOT NULL DEFAULT '',
    raw               BLOB NOT NULL DEFAULT '',
    note              TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, seq)
);
-- A running run's source rows as read, staged for its matching pass,
-- which reads them back payment by payment; dropped when the run ends.
CREATE TABLE reconciliation_rows (
    run_id            TEXT NOT NULL REFERENCES reconciliation_runs (id) ON DELETE CASCADE,
    seq               BIGINT NOT NULL,
    class             TEXT NOT NULL DEFAULT '',
    line              BIGINT NOT NULL DEFAULT 0,
    project_id        TEXT NOT NULL DEFAULT '',
    payment_id        TEXT NOT NULL DEFAULT '',
    operation_id      TEXT NOT NULL DEFAULT '',
    operation_type    TEXT NOT NULL DEFAULT '',
    operation_status  TEXT NOT NULL DEFAULT '',
    completed_at_us   BIGINT NOT NULL DEFAULT 0,
    platform_minor    BIGINT NOT NULL DEFAULT 0,
    platform_currency TEXT NOT NULL DEFAULT '',
    ledger_minor      BIGINT NOT NULL DEFAULT 0,
    ledger_currency   TEXT NOT NULL DEFAULT '',
    deposit_id        TEXT NOT NULL DEFAULT '',
    deposit_status    TEXT NOT NULL DEFAULT '',
    exception_id      TEXT NOT NULL DEFAULT '',
    raw               BLOB NOT NULL DEFAULT '',
    note              TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX reconciliation_rows_payment_idx ON reconciliation_rows (run_id, project_id, payment_id, seq);

CREATE INDEX reconciliation_items_class_idx ON reconciliation_items (run_id, class, seq);
CREATE INDEX reconciliation_items_deposit_idx ON reconciliation_items (run_id, deposit_id);
CREATE INDEX reconciliation_items_success_idx ON reconciliation_items (payment_id, operation_id)
    WHERE class IN ('matched', 'healed');

CREATE INDEX deposits_created_idx ON deposits (created_at_us, id);
CREATE INDEX deposits_settled_idx ON deposits (settled_at_us, id) WHERE settled_at_us <> 0;
CREATE INDEX postings_created_idx ON postings (created_at_us);

CREATE TABLE business_days (
    day          TEXT PRIMARY KEY,
    zone         TEXT NOT NULL,
    starts_at_us BIGINT NOT NULL,
    ends_at_us   BIGINT NOT NULL,
    closed_at_us BIGINT NOT NULL,
    closed_by    TEXT NOT NULL,
    run_id       TEXT NOT NULL DEFAULT '',
    open_breaks  BIGINT NOT NULL DEFAULT 0,
    override     INTEGER NOT NULL DEFAULT 0,
    reason       TEXT NOT NULL DEFAULT '',
    accounts     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX business_days_end_idx ON business_days (ends_at_us);

CREATE TABLE day_balances (
    day           TEXT NOT NULL REFERENCES business_days (day),
    account_id    TEXT NOT NULL,
    currency      TEXT NOT NULL,
    system        INTEGER NOT NULL,
    opening_minor BIGINT NOT NULL,
    credits_minor BIGINT NOT NULL,
    debits_minor  BIGINT NOT NULL,
    closing_minor BIGINT NOT NULL,
    PRIMARY KEY (day, account_id, currency)
);

CREATE TABLE ledger_freeze (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    frozen_until_us BIGINT NOT NULL
);
INSERT INTO ledger_freeze (id, frozen_until_us) VALUES (1, 0);

-- RAISE(ABORT) rolls the statement back; the message maps to
-- ports.ErrDayClosed (errors.go).
CREATE TRIGGER deposits_closed_day BEFORE INSERT ON deposits
WHEN NEW.created_at_us < (SELECT frozen_until_us FROM ledger_freeze WHERE id = 1)
BEGIN SELECT RAISE(ABORT, 'tiyn_day_closed: a deposit dated inside a closed business day'); END;
CREATE TRIGGER transfers_closed_day BEFORE INSERT ON transfers
WHEN NEW.created_at_us < (SELECT frozen_until_us FROM ledger_freeze WHERE id = 1)
BEGIN SELECT RAISE(ABORT, 'tiyn_day_closed: a transfer dated inside a closed business day'); END;
CREATE TRIGGER postings_closed_day BEFORE INSERT ON postings
WHEN NEW.created_at_us < (SELECT frozen_until_us FROM ledger_freeze WHERE id = 1)
BEGIN SELECT RAISE(ABORT, 'tiyn_day_closed: a posting dated inside a closed business day'); END;

-- An exception raised on evidence Tiyn cannot authenticate (an uploaded
-- report, not the platform's signed word) justifies no operator credit.
ALTER TABLE exceptions ADD COLUMN unverified INTEGER NOT NULL DEFAULT 0;
