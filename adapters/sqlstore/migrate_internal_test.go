package sqlstore

import (
	"reflect"
	"strings"
	"testing"
)

// TestStatementsDollarQuoted: a PostgreSQL function body ($$ … $$) holds
// lines that end with ';' and comment lines; it stays one statement.
func TestStatementsDollarQuoted(t *testing.T) {
	script := `-- a comment
CREATE TABLE a (id INT);
CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    x BIGINT;
BEGIN
    -- inside the body
    SELECT 1 INTO x;
    RETURN NULL;
END;
$$;
CREATE TRIGGER t AFTER INSERT ON a
    FOR EACH STATEMENT EXECUTE FUNCTION f();
CREATE FUNCTION g() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;
INSERT INTO a VALUES (1);`
	got := statements(script)
	if len(got) != 5 {
		t.Fatalf("%d statements: %q", len(got), got)
	}
	if !strings.HasPrefix(got[1], "CREATE FUNCTION f()") || !strings.HasSuffix(got[1], "$$;") ||
		!strings.Contains(got[1], "RETURN NULL;") || !strings.Contains(got[1], "-- inside the body") {
		t.Fatalf("function body split: %q", got[1])
	}
	want := []string{"CREATE TABLE a (id INT);", "", "CREATE TRIGGER t AFTER INSERT ON a\n    FOR EACH STATEMENT EXECUTE FUNCTION f();",
		"CREATE FUNCTION g() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;", "INSERT INTO a VALUES (1);"}
	got[1] = ""
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("statements = %q, want %q", got, want)
	}
}

// TestMigrationsSplitWhole: every migration of both dialects splits into
// statements that each end with ';', and the closed-day function is one.
func TestMigrationsSplitWhole(t *testing.T) {
	for _, d := range []string{Postgres, SQLite} {
		ms, err := loadMigrations(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			for _, st := range statements(m.sql) {
				if !strings.HasSuffix(st, ";") {
					t.Errorf("%s %s: statement without its end: %.80q", d, m.name, st)
				}
				if strings.Contains(st, "tiyn_refuse_closed_day() RETURNS") && strings.Count(st, "$$") != 2 {
					t.Errorf("%s %s: the function body is split", d, m.name)
				}
			}
		}
	}
}
