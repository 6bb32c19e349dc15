package sqlstore_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/tests/pgtest"
)

// TestBatchPlansAreIndexLookupsOnAFreshDatabase: PostgreSQL keeps the
// generic plan of a prepared statement once it has made one, and a fresh
// database's tables are near empty when it does. The statements a batch
// runs for every write must then still plan index lookups, not a hash
// join over a sequential scan of deposits, accounts or the inbox: that
// plan is cheap on an empty table and costs milliseconds per batch once
// the table holds thousands of rows (seen in the bench).
func TestBatchPlansAreIndexLookupsOnAFreshDatabase(t *testing.T) {
	t.Parallel()
	s := pgtest.Open(t, sqlstore.Options{GroupCommit: true})
	ctx := t.Context()
	conn, err := s.DB().DB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := conn.ExecContext(ctx, "SET plan_cache_mode = force_generic_plan"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 4, 64} {
		for name, st := range sqlstore.BatchStatements(n) {
			if name == "flush" && n > 1 {
				continue // one text for every batch
			}
			stmt := fmt.Sprintf("p_%d_%d", n, len(name))
			if _, err := conn.ExecContext(ctx, "PREPARE "+stmt+" AS "+st.Text); err != nil {
				t.Fatalf("%s (%d rows): prepare: %v", name, n, err)
			}
			args := strings.TrimSuffix(strings.Repeat("NULL, ", st.Params), ", ")
			rows, err := conn.QueryContext(ctx, "EXPLAIN EXECUTE "+stmt+"("+args+")")
			if err != nil {
				t.Fatalf("%s (%d rows): explain: %v", name, n, err)
			}
			var plan strings.Builder
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					t.Fatal(err)
				}
				plan.WriteString(line + "\n")
			}
			if err := rows.Close(); err != nil {
				t.Fatal(err)
			}
			for _, table := range []string{"deposits", "accounts", "callback_inbox"} {
				if strings.Contains(plan.String(), "Seq Scan on "+table) {
					t.Errorf("%s (%d rows): the generic plan scans %s:\n%s", name, n, table, plan.String())
				}
			}
		}
	}
}
