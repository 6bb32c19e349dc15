-- Baseline data for bench/credit.pgbench, on the Tiyn schema (`tiyn migrate`
-- first). psql variables: accounts (customer accounts to spread credits
-- over) and deposits (pending deposits; each pgbench transaction settles
-- one, so make it more than the run can take).
INSERT INTO accounts (id, customer_id, additional_customer_id, currency, status, balance_minor, version,
                      created_at_us, updated_at_us)
SELECT 'acc_' || lpad(i::text, 8, '0'), 'bench-' || i, '', 'KZT', 'active', 0, 1, 1, 1
FROM generate_series(0, :accounts - 1) AS i;

INSERT INTO deposits (id, provider, method, project, payment_id, account_id, customer_id, amount_minor, currency,
                      status, operation_id, version, created_at_us, settled_at_us)
SELECT 'dep_' || lpad(i::text, 10, '0'), 'monetix', 'kassa24', '1234', 'pay-' || i,
       'acc_' || lpad((i % :accounts)::text, 8, '0'), 'bench-' || (i % :accounts),
       100 + (i % 997) * 100, 'KZT', 'pending', '', 1, 1, 0
FROM generate_series(0, :deposits - 1) AS i;

ANALYZE;
