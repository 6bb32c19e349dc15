-- Corrections that cannot create money (issue 13); see the PostgreSQL
-- migration of the same number. SQLite cannot change a CHECK constraint,
-- so the exceptions table is rebuilt (nothing references it).

CREATE TABLE exceptions_new (
    id                      TEXT PRIMARY KEY,
    reason                  TEXT NOT NULL,
    detail                  TEXT NOT NULL,
    provider                TEXT NOT NULL,
    method                  TEXT NOT NULL,
    project                 TEXT NOT NULL,
    payment_id              TEXT NOT NULL,
    operation_id            TEXT NOT NULL,
    callback_status         TEXT NOT NULL,
    deposit_id              TEXT NOT NULL DEFAULT '',
    account_id              TEXT NOT NULL DEFAULT '',
    amount_minor            BIGINT NOT NULL,
    currency                TEXT NOT NULL,
    evidence                BLOB NOT NULL,
    dedupe_key              TEXT NOT NULL CONSTRAINT exceptions_dedupe_key UNIQUE,
    state                   TEXT NOT NULL CHECK (state IN ('open', 'proposed', 'resolved', 'dismissed')),
    resolution_credit       INTEGER NOT NULL DEFAULT 0,
    resolution_account_id   TEXT NOT NULL DEFAULT '',
    resolution_amount_minor BIGINT NOT NULL DEFAULT 0,
    resolution_transfer_id  TEXT NOT NULL DEFAULT '',
    resolution_note         TEXT NOT NULL DEFAULT '',
    resolved_by             TEXT NOT NULL DEFAULT '',
    resolved_at_us          BIGINT NOT NULL DEFAULT 0,
    created_at_us           BIGINT NOT NULL,
    outcome                 TEXT NOT NULL DEFAULT '',
    max_credit_minor        BIGINT NOT NULL DEFAULT 0,
    proposed_account_id     TEXT NOT NULL DEFAULT '',
    proposed_amount_minor   BIGINT NOT NULL DEFAULT 0,
    proposed_note           TEXT NOT NULL DEFAULT '',
    proposed_by             TEXT NOT NULL DEFAULT '',
    proposed_at_us          BIGINT NOT NULL DEFAULT 0
);
INSERT INTO exceptions_new (id, reason, detail, provider, method, project, payment_id, operation_id, callback_status,
    deposit_id, account_id, amount_minor, currency, evidence, dedupe_key, state, resolution_credit,
    resolution_account_id, resolution_amount_minor, resolution_transfer_id, resolution_note, resolved_by,
    resolved_at_us, created_at_us, outcome)
SELECT id, reason, detail, provider, method, project, payment_id, operation_id, callback_status,
    deposit_id, account_id, amount_minor, currency, evidence, dedupe_key, state, resolution_credit,
    resolution_account_id, resolution_amount_minor, resolution_transfer_id, resolution_note, resolved_by,
    resolved_at_us, created_at_us, CASE
        WHEN callback_status = 'success' THEN 'success'
        WHEN callback_status IN ('decline', 'error', 'internal error', 'external error', 'expired') THEN 'decline'
        WHEN callback_status IN ('refunded', 'partially refunded', 'reversed', 'partially reversed', 'canceled',
                                 'cancelled', 'chargeback') THEN 'reversal'
        ELSE 'intermediate' END
FROM exceptions;
DROP TABLE exceptions;
ALTER TABLE exceptions_new RENAME TO exceptions;
CREATE INDEX exceptions_state_idx ON exceptions (state, id);

ALTER TABLE transfers ADD COLUMN credit_key TEXT;
CREATE UNIQUE INDEX transfers_one_credit_per_payment ON transfers (credit_key) WHERE credit_key IS NOT NULL;
