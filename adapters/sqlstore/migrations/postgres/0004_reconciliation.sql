-- Business-day reconciliation and close (issue 17).
--
-- A reconciliation run is a record: the day, the source, a hash of the
-- input (and a fingerprint of the day's ledger side), who started it, when it started, beat and finished, and its
-- counts and sums per class (classes, JSON). One run per day is running at
-- a time (a unique partial index); one whose heartbeat stopped is failed
-- and replaced. Its items are the source's rows (staged while the source
-- is read, classified afterwards in payment order) and the day's ledger
-- deposits the source does not mention.

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
    -- The row as read, byte for byte: the evidence of a heal or a break.
    raw               BYTEA NOT NULL DEFAULT '',
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
    raw               BYTEA NOT NULL DEFAULT '',
    note              TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX reconciliation_rows_payment_idx ON reconciliation_rows (run_id, project_id, payment_id, seq);

CREATE INDEX reconciliation_items_class_idx ON reconciliation_items (run_id, class, seq);
-- The ledger pass skips deposits an operation already mentioned.
CREATE INDEX reconciliation_items_deposit_idx ON reconciliation_items (run_id, deposit_id);
-- A successful sale on record in another day's run.
CREATE INDEX reconciliation_items_success_idx ON reconciliation_items (payment_id, operation_id)
    WHERE class IN ('matched', 'healed');

-- The ledger side of a day: deposits created or settled within it.
CREATE INDEX deposits_created_idx ON deposits (created_at_us, id);
CREATE INDEX deposits_settled_idx ON deposits (settled_at_us, id) WHERE settled_at_us <> 0;
-- A day's postings, for its statement.
CREATE INDEX postings_created_idx ON postings (created_at_us);

-- A closed business day and its statement: per account (customers' and
-- the system's: clearing, revenue) and currency, the opening balance, the
-- day's credits and debits and the closing balance.
CREATE TABLE business_days (
    day          TEXT PRIMARY KEY,
    zone         TEXT NOT NULL,
    starts_at_us BIGINT NOT NULL,
    ends_at_us   BIGINT NOT NULL,
    closed_at_us BIGINT NOT NULL,
    closed_by    TEXT NOT NULL,
    run_id       TEXT NOT NULL DEFAULT '',
    open_breaks  BIGINT NOT NULL DEFAULT 0,
    override     BOOLEAN NOT NULL DEFAULT FALSE,
    reason       TEXT NOT NULL DEFAULT '',
    accounts     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX business_days_end_idx ON business_days (ends_at_us);

CREATE TABLE day_balances (
    day           TEXT NOT NULL REFERENCES business_days (day),
    account_id    TEXT NOT NULL,
    currency      TEXT NOT NULL,
    system        BOOLEAN NOT NULL,
    opening_minor BIGINT NOT NULL,
    credits_minor BIGINT NOT NULL,
    debits_minor  BIGINT NOT NULL,
    closing_minor BIGINT NOT NULL,
    PRIMARY KEY (day, account_id, currency)
);

-- The close marker: no deposit, transfer or posting may be inserted with
-- a time before frozen_until_us (the end of the latest closed day). Rows
-- take their time from the clock, which is past a closed day; the
-- triggers make a backdated row impossible, whoever writes it.
CREATE TABLE ledger_freeze (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    frozen_until_us BIGINT NOT NULL
);
INSERT INTO ledger_freeze (id, frozen_until_us) VALUES (1, 0);

-- One check per statement (over its transition table), not per row: the
-- money writes insert many rows in one statement. SQLSTATE TY001 is
-- Tiyn's own (class TY is implementation-defined) and maps to
-- ports.ErrDayClosed. The function is VOLATILE, so under READ COMMITTED
-- its query sees a close committed while the statement waited for the
-- close's lock.
CREATE FUNCTION tiyn_refuse_closed_day() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    until_us BIGINT;
    first_us BIGINT;
BEGIN
    SELECT frozen_until_us INTO until_us FROM ledger_freeze WHERE id = 1;
    IF until_us IS NULL OR until_us = 0 THEN
        RETURN NULL;
    END IF;
    SELECT min(created_at_us) INTO first_us FROM new_rows;
    IF first_us < until_us THEN
        RAISE EXCEPTION 'tiyn_day_closed: a % row dated % us is inside a closed business day (the ledger is closed until % us)',
            TG_TABLE_NAME, first_us, until_us USING ERRCODE = 'TY001';
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER deposits_closed_day AFTER INSERT ON deposits REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tiyn_refuse_closed_day();
CREATE TRIGGER transfers_closed_day AFTER INSERT ON transfers REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tiyn_refuse_closed_day();
CREATE TRIGGER postings_closed_day AFTER INSERT ON postings REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tiyn_refuse_closed_day();

-- An exception raised on evidence Tiyn cannot authenticate (an uploaded
-- report, not the platform's signed word) justifies no operator credit.
ALTER TABLE exceptions ADD COLUMN unverified BOOLEAN NOT NULL DEFAULT FALSE;
