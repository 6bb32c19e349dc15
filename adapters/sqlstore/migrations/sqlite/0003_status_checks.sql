-- The platform as a second source of truth (issue 16); see the PostgreSQL
-- migration of the same number. SQLite cannot change a CHECK constraint,
-- so the deposits table is rebuilt under its own name. transfers reference
-- it, so its foreign keys are deferred to the commit (defer_foreign_keys)
-- and the rows are put back into the new table after the old one is
-- dropped: SQLite counts the references a drop orphans and each parent row
-- inserted afterwards settles its own (a copy made before the drop would
-- not), so the commit finds none outstanding.

PRAGMA defer_foreign_keys = ON;
CREATE TABLE deposits_copy AS SELECT * FROM deposits;
DROP TABLE deposits;
CREATE TABLE deposits (
    id            TEXT PRIMARY KEY,
    provider      TEXT NOT NULL,
    method        TEXT NOT NULL,
    project       TEXT NOT NULL,
    payment_id    TEXT NOT NULL,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    customer_id   TEXT NOT NULL,
    amount_minor  BIGINT NOT NULL CHECK (amount_minor > 0),
    currency      TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'declined', 'expired')),
    operation_id  TEXT NOT NULL DEFAULT '',
    version       BIGINT NOT NULL,
    created_at_us BIGINT NOT NULL,
    settled_at_us BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT deposits_payment_key UNIQUE (provider, project, payment_id)
);
INSERT INTO deposits (id, provider, method, project, payment_id, account_id, customer_id, amount_minor, currency,
    status, operation_id, version, created_at_us, settled_at_us)
SELECT id, provider, method, project, payment_id, account_id, customer_id, amount_minor, currency,
    status, operation_id, version, created_at_us, settled_at_us
FROM deposits_copy;
DROP TABLE deposits_copy;
CREATE INDEX deposits_status_idx ON deposits (status, id);
CREATE INDEX deposits_account_idx ON deposits (account_id, id);
CREATE INDEX deposits_customer_idx ON deposits (customer_id, id);
CREATE INDEX deposits_payment_idx ON deposits (payment_id);
CREATE INDEX deposits_pending_idx ON deposits (created_at_us, id) WHERE status = 'pending';

ALTER TABLE callback_inbox ADD COLUMN source TEXT NOT NULL DEFAULT 'callback'
    CHECK (source IN ('callback', 'status_poll', 'reconciliation'));

CREATE TABLE status_checks (
    deposit_id       TEXT PRIMARY KEY REFERENCES deposits (id),
    checks           INTEGER NOT NULL DEFAULT 0 CHECK (checks >= 0),
    next_at_us       BIGINT NOT NULL DEFAULT 0,
    last_at_us       BIGINT NOT NULL DEFAULT 0,
    last_result      TEXT NOT NULL DEFAULT '',
    answered         INTEGER NOT NULL DEFAULT 0,
    claimed_until_us BIGINT NOT NULL DEFAULT 0,
    escalated_at_us  BIGINT NOT NULL DEFAULT 0
);
