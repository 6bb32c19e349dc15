-- Corrections that cannot create money (issue 13).
--
-- An exception keeps what its evidence says happened (outcome: only a
-- success justifies a credit) and the method's per-payment maximum when it
-- was raised; together with the claimed amount they bound an operator's
-- credit. With four eyes a credit is first proposed (state 'proposed',
-- the proposed_* columns) and approved by another operator.

ALTER TABLE exceptions ADD COLUMN outcome TEXT NOT NULL DEFAULT '';
ALTER TABLE exceptions ADD COLUMN max_credit_minor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE exceptions ADD COLUMN proposed_account_id TEXT NOT NULL DEFAULT '';
ALTER TABLE exceptions ADD COLUMN proposed_amount_minor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE exceptions ADD COLUMN proposed_note TEXT NOT NULL DEFAULT '';
ALTER TABLE exceptions ADD COLUMN proposed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE exceptions ADD COLUMN proposed_at_us BIGINT NOT NULL DEFAULT 0;
-- Exceptions raised before: their outcome from the status text, as the
-- Monetix adapter classifies it.
UPDATE exceptions SET outcome = CASE
    WHEN callback_status = 'success' THEN 'success'
    WHEN callback_status IN ('decline', 'error', 'internal error', 'external error', 'expired') THEN 'decline'
    WHEN callback_status IN ('refunded', 'partially refunded', 'reversed', 'partially reversed', 'canceled',
                             'cancelled', 'chargeback') THEN 'reversal'
    ELSE 'intermediate' END;
ALTER TABLE exceptions DROP CONSTRAINT exceptions_state_check;
ALTER TABLE exceptions ADD CONSTRAINT exceptions_state_check
    CHECK (state IN ('open', 'proposed', 'resolved', 'dismissed'));

-- An operator's credit of an unknown payment names the payment: at most
-- one such credit per payment, however many exceptions it raised.
ALTER TABLE transfers ADD COLUMN credit_key TEXT;
CREATE UNIQUE INDEX transfers_one_credit_per_payment ON transfers (credit_key) WHERE credit_key IS NOT NULL;
