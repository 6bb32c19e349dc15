package sqlstore_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
	"github.com/tiyn/tiyn/tests/pgtest"
)

// TestUpgradeToStatusChecks migrates a ledger with rows in it from schema 2
// to 3 (issue 16): SQLite rebuilds the deposits table that transfers
// reference, so every row must survive, every reference still hold, and the
// new status and inbox source work.
func TestUpgradeToStatusChecks(t *testing.T) {
	t.Parallel()
	for name, open := range map[string]func(t *testing.T) *sqlstore.Store{
		"sqlite": func(t *testing.T) *sqlstore.Store {
			s, err := sqlstore.Open(context.Background(), sqlstore.Options{URL: "sqlite:" + filepath.Join(t.TempDir(), "up.db")})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		"postgres": func(t *testing.T) *sqlstore.Store {
			s := pgtest.Open(t, sqlstore.Options{})
			// A database of its own: start it over, empty.
			for _, q := range []string{`DROP SCHEMA public CASCADE`, `CREATE SCHEMA public`} {
				if _, err := s.DB().ExecContext(context.Background(), q); err != nil {
					t.Fatal(err)
				}
			}
			return s
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s := open(t)
			if err := s.MigrateTo(ctx, 2); err != nil {
				t.Fatal(err)
			}
			db := s.DB()
			for _, q := range []string{
				`INSERT INTO accounts (id, customer_id, currency, status, balance_minor, version, created_at_us, updated_at_us)
					VALUES ('acc_1', 'c1', 'KZT', 'active', 10000, 2, 1, 2)`,
				`INSERT INTO deposits (id, provider, method, project, payment_id, account_id, customer_id, amount_minor, currency,
					status, operation_id, version, created_at_us, settled_at_us)
					VALUES ('dep_1', 'monetix', 'kassa24', '1', 'pay_1', 'acc_1', 'c1', 10000, 'KZT', 'succeeded', 'op1', 2, 1, 2),
					       ('dep_2', 'monetix', 'kassa24', '1', 'pay_2', 'acc_1', 'c1', 500, 'KZT', 'pending', '', 1, 3, 0)`,
				`INSERT INTO transfers (id, kind, deposit_id, created_at_us) VALUES ('trf_1', 'deposit_credit', 'dep_1', 2)`,
				`INSERT INTO postings (transfer_id, account_id, amount_minor, currency, balance_after_minor, created_at_us)
					VALUES ('trf_1', 'clearing:monetix:kassa24', -10000, 'KZT', NULL, 2), ('trf_1', 'acc_1', 10000, 'KZT', 10000, 2)`,
				`INSERT INTO callback_inbox (provider, method, project, payment_id, operation_id, status, body, outcome,
					dedupe_key, received_at_us) VALUES ('monetix', 'kassa24', '1', 'pay_1', 'op1', 'success', 'x', 'credited', 'k1', 2)`,
			} {
				if _, err := db.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("upgrade: %v", err)
			}
			if err := s.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			if name == "sqlite" {
				rows, err := db.QueryContext(ctx, `PRAGMA foreign_key_check`)
				if err != nil {
					t.Fatal(err)
				}
				if rows.Next() {
					t.Fatal("a foreign key broke in the rebuild")
				}
				_ = rows.Close()
			}
			ch := domain.Channel{Provider: "monetix", Method: "kassa24", Project: "1"}
			d, err := s.DepositByPaymentID(ctx, ch, "pay_1")
			if err != nil || d.Status != domain.DepositSucceeded || d.OperationID != "op1" || d.Version != 2 {
				t.Fatalf("deposit after the upgrade = %+v, %v", d, err)
			}
			if c, err := s.CheckLedger(ctx); err != nil || !c.Healthy() || c.Transfers != 1 {
				t.Fatalf("ledger after the upgrade = %+v, %v", c, err)
			}
			recs, err := s.ListInbox(ctx, ports.InboxQuery{})
			if err != nil || len(recs) != 1 || recs[0].Source != ports.SourceCallback {
				t.Fatalf("inbox after the upgrade = %+v, %v", recs, err)
			}
			// The new status is allowed, indexes serve the pending list.
			if _, err := db.ExecContext(ctx, `UPDATE deposits SET status = 'expired' WHERE id = 'dep_2'`); err != nil {
				t.Fatalf("expired refused: %v", err)
			}
			if _, err := db.ExecContext(ctx, `UPDATE deposits SET status = 'gone' WHERE id = 'dep_2'`); err == nil {
				t.Fatal("the status CHECK was lost in the rebuild")
			}
			if _, ok, err := s.OldestPending(ctx); ok || err != nil {
				t.Fatalf("OldestPending = %v, %v", ok, err)
			}
			// The unique payment key survived.
			if _, err := db.ExecContext(ctx, `INSERT INTO deposits (id, provider, method, project, payment_id, account_id,
				customer_id, amount_minor, currency, status, version, created_at_us)
				VALUES ('dep_3', 'monetix', 'kassa24', '1', 'pay_1', 'acc_1', 'c1', 1, 'KZT', 'pending', 1, 4)`); err == nil {
				t.Fatal("deposits_payment_key was lost in the rebuild")
			}
		})
	}
}
