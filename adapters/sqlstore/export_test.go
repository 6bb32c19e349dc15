package sqlstore

import "context"

// MigrateTo applies the migrations up to version target, for the upgrade
// tests.
func (s *Store) MigrateTo(ctx context.Context, target int) error {
	_, err := migrateTo(ctx, s.write, s.dialect, target)
	return err
}

// BatchStatements returns the texts a PostgreSQL group-commit batch runs
// for n rows (the settle and account read-aheads for n keys, and the
// flush), with $1, $2, … placeholders and their parameter counts, for the
// plan test in sqlstore_test.
func BatchStatements(n int) map[string]struct {
	Text   string
	Params int
} {
	out := map[string]struct {
		Text   string
		Params int
	}{}
	add := func(name, q string) {
		text, params, ok := placeholders(q, true)
		if !ok {
			panic("placeholders: " + name)
		}
		out[name] = struct {
			Text   string
			Params int
		}{text, params}
	}
	add("settle read-ahead", multiRow(readAheadPrefix, readAheadRow, n, readAheadSuffix))
	add("account read-ahead", multiRow(accountsAheadPrefix, accountsAheadRow, n, accountsAheadSuffix))
	add("flush", flushSQL)
	return out
}

// CountExceptionsSQL is the text behind Store.CountExceptions, for the plan
// test.
const CountExceptionsSQL = countExceptionsSQL
