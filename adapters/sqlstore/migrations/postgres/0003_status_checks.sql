-- The platform as a second source of truth (issue 16).
--
-- A deposit still pending past the platform's threshold expires: a status
-- like declined, terminal for the balance, that a late success still
-- credits. The inbox keeps where each piece of evidence came from: a
-- callback, the answer to a status check (and, later, reconciliation).
-- status_checks is the poller's record of each pending deposit it asked
-- about: how often, when it is due again, what the platform last said, and
-- the claim an instance holds while it asks (claimed_until_us), so two
-- instances never ask about one deposit at the same moment.

ALTER TABLE deposits DROP CONSTRAINT deposits_status_check;
ALTER TABLE deposits ADD CONSTRAINT deposits_status_check
    CHECK (status IN ('pending', 'succeeded', 'declined', 'expired'));
-- What the poller and the pending-age metric look for.
CREATE INDEX deposits_pending_idx ON deposits (created_at_us, id) WHERE status = 'pending';

ALTER TABLE callback_inbox ADD COLUMN source TEXT NOT NULL DEFAULT 'callback'
    CONSTRAINT callback_inbox_source_check CHECK (source IN ('callback', 'status_poll', 'reconciliation'));

CREATE TABLE status_checks (
    deposit_id       TEXT PRIMARY KEY REFERENCES deposits (id),
    checks           INTEGER NOT NULL DEFAULT 0 CHECK (checks >= 0),
    next_at_us       BIGINT NOT NULL DEFAULT 0,
    last_at_us       BIGINT NOT NULL DEFAULT 0,
    last_result      TEXT NOT NULL DEFAULT '',
    answered         BOOLEAN NOT NULL DEFAULT FALSE,
    claimed_until_us BIGINT NOT NULL DEFAULT 0,
    escalated_at_us  BIGINT NOT NULL DEFAULT 0
);
