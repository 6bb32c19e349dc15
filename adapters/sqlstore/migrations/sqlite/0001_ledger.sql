-- Tiyn ledger schema, SQLite. Times are microseconds since the Unix epoch
-- (UTC) in BIGINT columns, the same on both dialects, so that ordering and
-- range filters behave identically everywhere. AUTOINCREMENT keeps posting
-- ids monotonic (never reused), which statements rely on.

CREATE TABLE accounts (
    id                     TEXT PRIMARY KEY,
    customer_id            TEXT NOT NULL,
    additional_customer_id TEXT NOT NULL DEFAULT '',
    currency               TEXT NOT NULL,
    status                 TEXT NOT NULL CHECK (status IN ('active', 'blocked', 'closed')),
    -- A customer balance never goes negative; debits are conditional
    -- updates, and this CHECK is the last line of defence.
    balance_minor          BIGINT NOT NULL DEFAULT 0 CHECK (balance_minor >= 0),
    version                BIGINT NOT NULL,
    created_at_us          BIGINT NOT NULL,
    updated_at_us          BIGINT NOT NULL,
    CONSTRAINT accounts_customer_currency_key UNIQUE (customer_id, currency)
);

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
    status        TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'declined')),
    operation_id  TEXT NOT NULL DEFAULT '',
    version       BIGINT NOT NULL,
    created_at_us BIGINT NOT NULL,
    settled_at_us BIGINT NOT NULL DEFAULT 0,
    -- A payment id is unique within a provider's project.
    CONSTRAINT deposits_payment_key UNIQUE (provider, project, payment_id)
);
CREATE INDEX deposits_status_idx ON deposits (status, id);
CREATE INDEX deposits_account_idx ON deposits (account_id, id);
CREATE INDEX deposits_customer_idx ON deposits (customer_id, id);
CREATE INDEX deposits_payment_idx ON deposits (payment_id);

CREATE TABLE transfers (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('deposit_credit', 'debit', 'exception_credit')),
    deposit_id    TEXT REFERENCES deposits (id),
    exception_id  TEXT,
    description   TEXT NOT NULL DEFAULT '',
    actor         TEXT NOT NULL DEFAULT '',
    created_at_us BIGINT NOT NULL
);
-- Exactly-once crediting, enforced by the database: one credit transfer
-- per deposit, one resolution credit per exception, whatever races.
CREATE UNIQUE INDEX transfers_one_credit_per_deposit ON transfers (deposit_id) WHERE kind = 'deposit_credit';
CREATE UNIQUE INDEX transfers_one_credit_per_exception ON transfers (exception_id) WHERE kind = 'exception_credit';

CREATE TABLE postings (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    transfer_id         TEXT NOT NULL REFERENCES transfers (id),
    account_id          TEXT NOT NULL,
    amount_minor        BIGINT NOT NULL CHECK (amount_minor <> 0),
    currency            TEXT NOT NULL,
    -- Set for customer accounts: the balance right after this posting.
    balance_after_minor BIGINT,
    created_at_us       BIGINT NOT NULL
);
CREATE INDEX postings_account_idx ON postings (account_id, id);
CREATE INDEX postings_transfer_idx ON postings (transfer_id);

CREATE TABLE callback_inbox (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    provider       TEXT NOT NULL,
    method         TEXT NOT NULL,
    project        TEXT NOT NULL,
    payment_id     TEXT NOT NULL,
    operation_id   TEXT NOT NULL,
    status         TEXT NOT NULL,
    -- The body exactly as received, byte for byte.
    body           BLOB NOT NULL,
    outcome        TEXT NOT NULL,
    deposit_id     TEXT NOT NULL DEFAULT '',
    exception_id   TEXT NOT NULL DEFAULT '',
    -- Identifies "the same callback" across redeliveries: an exact replay
    -- of a callback already applied changes nothing, whatever happened to
    -- the deposit since.
    dedupe_key     TEXT NOT NULL,
    received_at_us BIGINT NOT NULL
);
CREATE INDEX callback_inbox_payment_idx ON callback_inbox (payment_id, id);
CREATE INDEX callback_inbox_dedupe_idx ON callback_inbox (dedupe_key);

CREATE TABLE exceptions (
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
    -- The same callback redelivered maps to the same exception.
    dedupe_key              TEXT NOT NULL CONSTRAINT exceptions_dedupe_key UNIQUE,
    state                   TEXT NOT NULL CHECK (state IN ('open', 'resolved', 'dismissed')),
    resolution_credit       INTEGER NOT NULL DEFAULT 0,
    resolution_account_id   TEXT NOT NULL DEFAULT '',
    resolution_amount_minor BIGINT NOT NULL DEFAULT 0,
    resolution_transfer_id  TEXT NOT NULL DEFAULT '',
    resolution_note         TEXT NOT NULL DEFAULT '',
    resolved_by             TEXT NOT NULL DEFAULT '',
    resolved_at_us          BIGINT NOT NULL DEFAULT 0,
    created_at_us           BIGINT NOT NULL
);
CREATE INDEX exceptions_state_idx ON exceptions (state, id);

CREATE TABLE debits (
    account_id          TEXT NOT NULL REFERENCES accounts (id),
    idempotency_key     TEXT NOT NULL,
    request_hash        TEXT NOT NULL,
    transfer_id         TEXT NOT NULL,
    amount_minor        BIGINT NOT NULL,
    currency            TEXT NOT NULL,
    description         TEXT NOT NULL DEFAULT '',
    balance_after_minor BIGINT NOT NULL DEFAULT 0,
    actor               TEXT NOT NULL DEFAULT '',
    created_at_us       BIGINT NOT NULL,
    PRIMARY KEY (account_id, idempotency_key)
);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at_us   BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT ''
);
