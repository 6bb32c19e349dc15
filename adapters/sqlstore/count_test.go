package sqlstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
	"github.com/tiyn/tiyn/tests/pgtest"
)

// insertOpenExceptions stores n open exceptions.
func insertOpenExceptions(t *testing.T, s *sqlstore.Store, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		x := domain.Exception{
			ID: fmt.Sprintf("exc_%04d", i), Reason: domain.ReasonAmountMismatch, Detail: "test",
			Channel:   domain.Channel{Provider: "monetix", Method: "kassa24", Project: "1"},
			PaymentID: fmt.Sprintf("p%d", i), OperationID: "op", Status: "success",
			Amount: domain.NewAmount(100, domain.KZT), Evidence: "{}", DedupeKey: fmt.Sprintf("key-%d", i),
			State: domain.ExceptionOpen, CreatedAt: time.Unix(1_800_000_000, 0).UTC(),
		}
		if err := s.Update(ctx, func(ctx context.Context, tx ports.Tx) error {
			_, _, err := tx.InsertException(ctx, x)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCountExceptions: the count behind the open exceptions gauge counts
// one state and stops at its bound, on both stores.
func TestCountExceptions(t *testing.T) {
	t.Parallel()
	for name, open := range map[string]func(t *testing.T) *sqlstore.Store{
		"sqlite":   func(t *testing.T) *sqlstore.Store { return openSQLite(t, false) },
		"postgres": func(t *testing.T) *sqlstore.Store { return pgtest.Open(t, sqlstore.Options{}) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			ctx := context.Background()
			if n, err := s.CountExceptions(ctx, domain.ExceptionOpen, 100); err != nil || n != 0 {
				t.Fatalf("empty: %d %v", n, err)
			}
			insertOpenExceptions(t, s, 7)
			for _, tc := range []struct {
				state        domain.ExceptionStatus
				limit, wantN int
			}{
				{domain.ExceptionOpen, 100, 7}, {domain.ExceptionOpen, 7, 7}, {domain.ExceptionOpen, 5, 5},
				{domain.ExceptionResolved, 100, 0}, {domain.ExceptionDismissed, 100, 0},
			} {
				if n, err := s.CountExceptions(ctx, tc.state, tc.limit); err != nil || n != tc.wantN {
					t.Errorf("CountExceptions(%s, %d) = %d, %v; want %d", tc.state, tc.limit, n, err, tc.wantN)
				}
			}
			if _, err := s.CountExceptions(ctx, domain.ExceptionOpen, 0); err == nil {
				t.Error("a zero bound accepted")
			}
		})
	}
}

// TestCountExceptionsIsAnIndexRead: the count reads the (state, id) index,
// never the table: a scrape costs at most its bound of index entries.
func TestCountExceptionsIsAnIndexRead(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		s := openSQLite(t, false)
		rows, err := s.DB().QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+sqlstore.CountExceptionsSQL, "open", 10)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var plan strings.Builder
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan.WriteString(detail + "\n")
		}
		if !strings.Contains(plan.String(), "USING COVERING INDEX exceptions_state_idx (state=?)") {
			t.Errorf("plan:\n%s", plan.String())
		}
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		s := pgtest.Open(t, sqlstore.Options{})
		ctx := context.Background()
		conn, err := s.DB().DB.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close() }()
		// An empty table is cheapest to scan; forbid that to see that the
		// index serves the query at all.
		if _, err := conn.ExecContext(ctx, "SET enable_seqscan = off"); err != nil {
			t.Fatal(err)
		}
		q := strings.Replace(strings.Replace(sqlstore.CountExceptionsSQL, "?", "'open'", 1), "?", "10", 1)
		rows, err := conn.QueryContext(ctx, "EXPLAIN "+q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var plan strings.Builder
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan.WriteString(line + "\n")
		}
		if !strings.Contains(plan.String(), "exceptions_state_idx") || !strings.Contains(plan.String(), "Limit") {
			t.Errorf("plan:\n%s", plan.String())
		}
	})
}
