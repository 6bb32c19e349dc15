package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// migrated returns an environment with a fresh, migrated SQLite database.
func migrated(t *testing.T) map[string]string {
	t.Helper()
	env := sqliteEnv(t)
	m, stdout, stderr := testMain(env)
	if code, err := run(t, m, "migrate"); code != exitOK {
		t.Fatalf("migrate: exit %d err %v %s", code, err, stderr)
	}
	if !strings.Contains(stdout.String(), "is up to date") || !strings.Contains(stdout.String(), "migration(s) applied:\n  ") {
		t.Fatalf("migrate printed %q", stdout)
	}
	return env
}

func TestMigrateTwice(t *testing.T) {
	t.Parallel()
	env := migrated(t)
	m, stdout, _ := testMain(env)
	if code, err := run(t, m, "migrate"); code != exitOK {
		t.Fatalf("second migrate: %v", err)
	}
	if !strings.Contains(stdout.String(), "(sqlite) is up to date") {
		t.Fatalf("second migrate printed %q", stdout)
	}
}

func TestAccountOpenAndShow(t *testing.T) {
	t.Parallel()
	env := migrated(t)

	m, stdout, stderr := testMain(env)
	if code, err := run(t, m, "account", "open", "6552", "--additional-id", "A-1"); code != exitOK {
		t.Fatalf("open: %v %s", err, stderr)
	}
	out := stdout.String()
	for _, want := range []string{"opened:", "customer         6552", "additional id    A-1", "currency         KZT", "status           active", "balance          0.00"} {
		if !strings.Contains(out, want) {
			t.Errorf("open output lacks %q:\n%s", want, out)
		}
	}
	id := fieldOf(out, "id")
	if !strings.HasPrefix(id, accountIDPrefix) {
		t.Fatalf("account id %q", id)
	}
	// Times as the API answers them: RFC 3339 UTC, six fractional digits.
	for _, key := range []string{"created", "updated"} {
		if v := fieldOf(out, key); !sixFractionalDigits.MatchString(v) {
			t.Errorf("%s %q is not RFC 3339 UTC with six fractional digits", key, v)
		}
	}

	// Opening again is idempotent.
	m, stdout, _ = testMain(env)
	if code, err := run(t, m, "account", "open", "--currency", "kzt", "6552"); code != exitOK || !strings.Contains(stdout.String(), "already open:") ||
		fieldOf(stdout.String(), "id") != id {
		t.Fatalf("reopen: exit %d err %v\n%s", code, err, stdout)
	}

	// Shown by customer and by id.
	for _, ref := range []string{"6552", id} {
		m, stdout, _ = testMain(env)
		if code, err := run(t, m, "account", "show", ref); code != exitOK || fieldOf(stdout.String(), "id") != id {
			t.Fatalf("show %s: exit %d err %v\n%s", ref, code, err, stdout)
		}
	}

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"UnknownCustomer", []string{"account", "show", "nobody"}, exitError, `customer "nobody" has no KZT account`},
		{"UnknownID", []string{"account", "show", "acc_nope"}, exitError, "has no KZT account"},
		{"UnknownCurrency", []string{"account", "show", "6552", "--currency", "XXX"}, exitUsage, "--currency"},
		{"NoCustomer", []string{"account", "open"}, exitUsage, "takes one CUSTOMER"},
		{"TwoCustomers", []string{"account", "open", "a", "b"}, exitUsage, "takes one CUSTOMER"},
		{"BadCustomer", []string{"account", "open", strings.Repeat("x", domain.MaxCustomerIDLen+1)}, exitError, "open account"},
		{"ShowNoArg", []string{"account", "show"}, exitUsage, "takes one CUSTOMER or ACCOUNT_ID"},
	}
	for _, tc := range tests {
		m, _, stderr := testMain(env)
		code, err := run(t, m, tc.args...)
		if code != tc.wantCode || err == nil || !strings.Contains(stderr.String(), tc.wantErr) {
			t.Errorf("%s: exit %d err %v, want %d and %q", tc.name, code, err, tc.wantCode, tc.wantErr)
		}
	}
}

func TestOperatorCommandsNeedMigratedDatabase(t *testing.T) {
	t.Parallel()
	env := sqliteEnv(t) // the file exists, empty: never migrated
	path := strings.TrimPrefix(env["TIYN_DATABASE_URL"], "sqlite:")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"account", "show", "1"}, {"account", "open", "1"}, {"statement", "1"}} {
		m, _, _ := testMain(env)
		code, err := run(t, m, args...)
		if code != exitError || !errors.Is(err, errNotMigrated) || !errors.Is(err, ports.ErrNotMigrated) {
			t.Errorf("%q: exit %d err %v, want the migrate hint", args, code, err)
		}
	}
}

// TestOperatorCommandsNeverCreateADatabase: pointed at an SQLite file that
// does not exist (a typo, the wrong directory), a read command — or
// account open — says so and leaves no file behind.
func TestOperatorCommandsNeverCreateADatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i, args := range [][]string{{"account", "show", "1"}, {"statement", "1"}, {"statement", "acc_1", "--csv"}, {"account", "open", "1"}} {
		path := filepath.Join(dir, fmt.Sprintf("typo-%d.db", i))
		m, _, stderr := testMain(map[string]string{"TIYN_DATABASE_URL": "sqlite:" + path})
		code, err := run(t, m, args...)
		if code != exitError || !errors.Is(err, errNoDatabase) || !strings.Contains(stderr.String(), path+" does not exist") {
			t.Errorf("%q: exit %d err %v", args, code, err)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 0 {
			t.Fatalf("%q created %v", args, entries)
		}
	}
}

// sixFractionalDigits is the one timestamp form Tiyn prints.
var sixFractionalDigits = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$`)

// fieldOf reads "  key  value" from printAccount's output.
func fieldOf(out, key string) string {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == key {
			return f[1]
		}
	}
	return ""
}

// seed credits two deposits and makes one debit on customer 6552 through
// the use cases, on the same database file the CLI then reads.
func seed(t *testing.T, env map[string]string) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstore.Options{URL: env["TIYN_DATABASE_URL"]})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close() }()
	svc := app.NewService(store, system.Clock{}, &system.IDs{})
	acc, err := svc.OpenAccount(ctx, ports.OpenAccount{CustomerID: "6552", Currency: domain.KZT, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ch := domain.Channel{Provider: "monetix", Method: "kassa24", Project: "1234"}
	limits := domain.AmountLimits{MinMinor: 100, MaxMinor: 50_000_000}
	for i, minor := range []int64{150_000, 2_500} {
		dep, err := svc.OpenDeposit(ctx, ports.OpenDeposit{Channel: ch, CustomerID: "6552", Amount: domain.NewAmount(minor, domain.KZT), Limits: limits})
		if err != nil {
			t.Fatal(err)
		}
		_, err = svc.SettleDeposit(ctx, ports.SettleDeposit{Channel: ch, PaymentID: dep.PaymentID, RawBody: "{}", ReceivedAt: time.Now().UTC(),
			Outcome: domain.Outcome{Method: "kassa24", Kind: domain.OutcomeSuccess, Status: "success", OperationID: "op" + string(rune('a'+i)), Amount: dep.Amount}})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.Debit(ctx, ports.Debit{AccountID: acc.Account.ID(), Amount: domain.NewAmount(50_000, domain.KZT),
		Description: "=HYPERLINK(\"x\")", IdempotencyKey: "k1", RequestHash: "h", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
}

func TestStatement(t *testing.T) {
	t.Parallel()
	env := migrated(t)
	seed(t, env)

	m, stdout, stderr := testMain(env)
	if code, err := run(t, m, "statement", "6552"); code != exitOK {
		t.Fatalf("statement: %v %s", err, stderr)
	}
	out := stdout.String()
	for _, want := range []string{"customer 6552, KZT, active, balance 1025.00", "SEQ", "deposit_credit", "1500.00", "1525.00", "debit", "-500.00", "1025.00"} {
		if !strings.Contains(out, want) {
			t.Errorf("statement lacks %q:\n%s", want, out)
		}
	}

	m, stdout, _ = testMain(env)
	if code, err := run(t, m, "statement", "--csv", "6552"); code != exitOK {
		t.Fatalf("statement --csv: %v", err)
	}
	rows, err := csv.NewReader(strings.NewReader(stdout.String())).ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v\n%s", err, stdout)
	}
	wantHeader := "seq,transfer_id,kind,direction,amount_minor,amount,currency,balance_after_minor,balance_after,deposit_id,payment_id,description,created_at"
	if len(rows) != 4 || strings.Join(rows[0], ",") != wantHeader {
		t.Fatalf("CSV rows %q", rows)
	}
	// Amounts are never negative; direction says which way they went.
	last := rows[3]
	if last[2] != "debit" || last[3] != "debit" || last[4] != "50000" || last[5] != "500.00" || last[6] != "KZT" ||
		last[7] != "102500" || last[8] != "1025.00" || !sixFractionalDigits.MatchString(last[12]) {
		t.Fatalf("debit row %q", last)
	}
	if !strings.HasPrefix(last[11], "'=") {
		t.Fatalf("formula-looking description not neutralised: %q", last[11])
	}
	if rows[1][3] != "credit" || rows[1][4] != "150000" || rows[2][7] != "152500" || rows[1][9] == "" || rows[1][10] == "" {
		t.Fatalf("credit rows %q %q", rows[1], rows[2])
	}

	// A period with nothing in it.
	m, stdout, _ = testMain(env)
	if code, err := run(t, m, "statement", "6552", "--from", "2000-01-01", "--to", "2000-02-01"); code != exitOK ||
		!strings.Contains(stdout.String(), "no postings in that period") {
		t.Fatalf("empty period: exit %d err %v\n%s", code, err, stdout)
	}
	// A period that holds everything.
	m, stdout, _ = testMain(env)
	if code, err := run(t, m, "statement", "6552", "--csv", "--from", "2000-01-01T00:00:00Z", "--to", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)); code != exitOK ||
		strings.Count(stdout.String(), "\n") != 4 {
		t.Fatalf("whole period: exit %d err %v\n%s", code, err, stdout)
	}

	for _, args := range [][]string{
		{"statement", "6552", "--from", "yesterday"},
		{"statement", "6552", "--from", "2026-02-01", "--to", "2026-01-01"},
		{"statement"},
	} {
		m, _, _ := testMain(env)
		if code, _ := run(t, m, args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
	m, _, _ = testMain(env)
	if code, _ := run(t, m, "statement", "nobody"); code != exitError {
		t.Errorf("unknown customer: exit %d", code)
	}
}

func TestParseTimeFlag(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Time{
		"":                          {},
		"2026-01-31":                time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC),
		"2026-01-31T10:00:00+05:00": time.Date(2026, 1, 31, 5, 0, 0, 0, time.UTC),
	} {
		got, err := parseTimeFlag("--from", in)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTimeFlag(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"31.01.2026", "2026-13-01", "now"} {
		if _, err := parseTimeFlag("--from", bad); err == nil {
			t.Errorf("parseTimeFlag(%q) accepted", bad)
		}
	}
}
