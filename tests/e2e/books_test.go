package e2e_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
	"github.com/tiyn/tiyn/tests/testkit"
)

// CLITimeout bounds one operator command of the tests.
const CLITimeout = 60 * time.Second

// dayBack is a clock a day behind: what the seed writes lands on
// yesterday, a business day that has ended and can be closed.
type dayBack struct{}

func (dayBack) Now() time.Time {
	return time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Microsecond)
}

// yesterdaysBooks is what the seed wrote on yesterday's business day.
type yesterdaysBooks struct {
	day              domain.BusinessDay
	matched, pending domain.Deposit
	debitMinor       int64
}

// seedYesterday writes a business day that has ended into the database
// at dbURL, through the use cases with a clock a day behind (the binary
// has no clock to move, and a day that has not ended cannot be closed): a
// deposit credited and partly spent, and one left pending.
func seedYesterday(t *testing.T, dbURL string) yesterdaysBooks {
	t.Helper()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstore.Options{URL: dbURL})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close() }()
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	svc := app.NewService(store, dayBack{}, &system.IDs{})
	ch := domain.Channel{Provider: monetix.ProviderName, Method: monetix.Kassa24.Name, Project: projectPlain}
	b := yesterdaysBooks{day: domain.DayOf(dayBack{}.Now(), svc.BusinessZone()), debitMinor: 40_00}
	open := func(customer string, minor int64) (domain.Deposit, string) {
		acc, err := svc.OpenAccount(ctx, ports.OpenAccount{CustomerID: customer, Currency: domain.KZT, Actor: "seed"})
		if err != nil {
			t.Fatal(err)
		}
		d, err := svc.OpenDeposit(ctx, ports.OpenDeposit{Channel: ch, CustomerID: customer,
			Amount: domain.NewAmount(minor, domain.KZT), Limits: monetix.Kassa24.Limits})
		if err != nil {
			t.Fatal(err)
		}
		return d, acc.Account.ID()
	}
	var accountID string
	b.matched, accountID = open("books-matched", 250_00)
	b.pending, _ = open("books-pending", 99_90)
	res, err := svc.SettleDeposit(ctx, ports.SettleDeposit{Channel: ch, PaymentID: b.matched.PaymentID,
		Outcome: domain.Outcome{Method: ch.Method, Kind: domain.OutcomeSuccess, Status: "success",
			OperationID: "op-" + b.matched.PaymentID, Amount: b.matched.Amount},
		RawBody: `{"seed":true}`, ReceivedAt: dayBack{}.Now()})
	if err != nil || res.Effect != domain.EffectCredit {
		t.Fatalf("seed credit: %v %v", res.Effect, err)
	}
	if _, err := svc.Debit(ctx, ports.Debit{AccountID: accountID, Amount: domain.NewAmount(b.debitMinor, domain.KZT),
		Description: "yesterday's purchase", IdempotencyKey: "books-1", RequestHash: "seed", Actor: "seed"}); err != nil {
		t.Fatal(err)
	}
	return b
}

// report is yesterday's CSV: the credited payment, the pending one (to
// be healed) and one Tiyn never issued (a break).
func (b yesterdaysBooks) report() string {
	at := b.day.Start().Add(14 * time.Hour).Format(time.DateTime)
	line := func(payment, amount string) string {
		return fmt.Sprintf("%s,%s,op-%s,sale,success,%s,KZT,%s\n", projectPlain, payment, payment, amount, at)
	}
	return monetix.DefaultReportHeader + "\n" + line(b.matched.PaymentID, "250.00") + line(b.pending.PaymentID, "99.90") +
		line("not-from-tiyn-1", "12.00")
}

// tiynCLI runs an operator command of the binary on the server's
// database, and returns its exit code and output.
func tiynCLI(t *testing.T, dbURL, stdin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), CLITimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tiynBin, args...)
	cmd.Env = append(testkit.CleanEnv(), "TIYN_DATABASE_URL="+dbURL, "TIYN_MONETIX_PROJECTS="+projectsSetting)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("tiyn %q: %v", args, err)
	return 0, "", ""
}

type reconRunJSON struct {
	ID        string           `json:"id"`
	Day       string           `json:"day"`
	Source    string           `json:"source"`
	Status    string           `json:"status"`
	Unchanged bool             `json:"unchanged"`
	Breaks    int64            `json:"breaks"`
	Counts    map[string]int64 `json:"counts"`
}

type dayLine struct {
	AccountID    string `json:"account_id"`
	System       bool   `json:"system"`
	OpeningMinor int64  `json:"opening_minor"`
	CreditsMinor int64  `json:"credits_minor"`
	DebitsMinor  int64  `json:"debits_minor"`
	ClosingMinor int64  `json:"closing_minor"`
}

type dayRecordJSON struct {
	Day        string    `json:"day"`
	Override   bool      `json:"override"`
	Reason     *string   `json:"reason"`
	RunID      *string   `json:"run_id"`
	OpenBreaks int64     `json:"open_breaks"`
	Accounts   int64     `json:"accounts"`
	Items      []dayLine `json:"items"`
	NextCursor *string   `json:"next_cursor"`
	Totals     []struct {
		Currency  string `json:"currency"`
		Balanced  bool   `json:"balanced"`
		Customers struct {
			ClosingMinor int64 `json:"closing_minor"`
		} `json:"customers"`
	} `json:"totals"`
}

// TestReconcileAndCloseADay: a day reconciled from a CSV report over REST
// and by the CLI (the same input: unchanged), closed with an override,
// and its statement, as JSON and CSV, adds up: opening + credits − debits
// = closing on every line, and the clearing account balances the
// customers.
func TestReconcileAndCloseADay(t *testing.T) {
	t.Parallel()
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			dbURL := st.url(t)
			b := seedYesterday(t, dbURL)
			s := startServer(t, dbURL)
			day := b.day.String()
			body := []byte(b.report())

			x := s.mustSend(t, http.MethodPost, "/v1/reconciliations?day="+day, "text/csv", apiToken, body)
			if x.Status != http.StatusCreated {
				t.Fatalf("POST /v1/reconciliations: %d %s", x.Status, x.Answer)
			}
			var run reconRunJSON
			decodeJSON(t, x.Answer, &run)
			if run.Source != "csv" || run.Status != "finished" || run.Unchanged || run.Breaks != 1 ||
				run.Counts["matched"] != 1 || run.Counts["healed"] != 1 || run.Counts["orphan_operation"] != 1 ||
				len(run.Counts) != len(domain.ReconClasses()) {
				t.Fatalf("run %+v", run)
			}
			if d := s.deposit(t, b.pending.PaymentID); d.Status != "succeeded" {
				t.Fatalf("the healed deposit is %s", d.Status)
			}
			if got := s.balance(t, "books-pending"); got != 99_90 {
				t.Fatalf("healed balance %d, want 9990", got)
			}
			// Roles: a write token may not reconcile.
			if x := s.mustSend(t, http.MethodPost, "/v1/reconciliations?day="+day, "text/csv", backofficeToken, body); x.Status != http.StatusForbidden {
				t.Fatalf("write token: %d %s", x.Status, x.Answer)
			}
			// The same input again: over REST, and by the CLI from a file.
			x = s.mustSend(t, http.MethodPost, "/v1/reconciliations?day="+day, "text/csv", apiToken, body)
			var again reconRunJSON
			decodeJSON(t, x.Answer, &again)
			if x.Status != http.StatusOK || !again.Unchanged || again.ID != run.ID {
				t.Fatalf("rerun: %d %+v", x.Status, again)
			}
			file := filepath.Join(t.TempDir(), "report.csv")
			if err := os.WriteFile(file, body, 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := tiynCLI(t, dbURL, "", "reconcile", "day", day, "--csv", file)
			if code != 3 || !strings.Contains(out, "unchanged") || !strings.Contains(out, run.ID) ||
				!strings.Contains(out, "payment not-from-tiyn-1") {
				t.Fatalf("tiyn reconcile day: exit %d\n%s\n%s", code, out, errOut)
			}
			if got := s.balance(t, "books-pending"); got != 99_90 {
				t.Fatalf("balance after reruns %d: credited twice?", got)
			}

			// The open break stops a close; an override with a reason closes.
			x = s.mustSend(t, http.MethodPost, "/v1/days/"+day+"/close", "", apiToken, nil)
			if x.Status != http.StatusConflict || !strings.Contains(string(x.Answer), "open_breaks") ||
				!strings.Contains(string(x.Answer), "orphan_operation 1") {
				t.Fatalf("close with an open break: %d %s", x.Status, x.Answer)
			}
			code, out, errOut = tiynCLI(t, dbURL, "", "close", day, "--override", "--reason", "the orphan is another shop's payment")
			if code != 0 || !strings.Contains(out, "override: the orphan is another shop's payment") ||
				!strings.Contains(out, "KZT: the system accounts balance the customers") {
				t.Fatalf("tiyn close: exit %d\n%s\n%s", code, out, errOut)
			}
			x = s.mustSend(t, http.MethodPost, "/v1/days/"+day+"/close", "application/json", apiToken,
				[]byte(`{"override":true,"reason":"again"}`))
			if x.Status != http.StatusConflict || !strings.Contains(string(x.Answer), "day_closed") {
				t.Fatalf("second close: %d %s", x.Status, x.Answer)
			}

			var rec dayRecordJSON
			s.rest(t, http.MethodGet, "/v1/days/"+day, nil, http.StatusOK, &rec)
			if !rec.Override || rec.RunID == nil || *rec.RunID != run.ID || rec.OpenBreaks != 1 || rec.NextCursor != nil {
				t.Fatalf("day %+v", rec)
			}
			checkDay(t, b, rec.Items)
			if len(rec.Totals) != 1 || !rec.Totals[0].Balanced || rec.Totals[0].Customers.ClosingMinor != 250_00-b.debitMinor {
				t.Fatalf("totals %+v", rec.Totals)
			}
			x = s.mustSend(t, http.MethodGet, "/v1/days/"+day+".csv", "", readToken, nil)
			if x.Status != http.StatusOK || !strings.HasPrefix(x.Header.Get("Content-Type"), "text/csv") {
				t.Fatalf("GET .csv: %d %s", x.Status, x.Answer)
			}
			rows, err := csv.NewReader(bytes.NewReader(x.Answer)).ReadAll()
			if err != nil || len(rows) != len(rec.Items)+1 {
				t.Fatalf("CSV %s: %v", x.Answer, err)
			}
			var fromCSV []dayLine
			for _, r := range rows[1:] {
				n := func(i int) int64 {
					v, err := strconv.ParseInt(r[i], 10, 64)
					if err != nil {
						t.Fatalf("CSV row %q: %v", r, err)
					}
					return v
				}
				fromCSV = append(fromCSV, dayLine{AccountID: r[1], System: r[2] == "true", OpeningMinor: n(4),
					CreditsMinor: n(6), DebitsMinor: n(8), ClosingMinor: n(10)})
			}
			checkDay(t, b, fromCSV)

			// A debit now lands on today, not on the closed day.
			acc := s.account(t, "books-matched")
			req, err := http.NewRequest(http.MethodPost, s.base+"/v1/accounts/"+acc.ID+"/debits",
				strings.NewReader(`{"amount":"1.00","description":"today"}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+apiToken)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", "books-today-1")
			resp, err := s.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("debit today: %d", resp.StatusCode)
			}
			var after dayRecordJSON
			s.rest(t, http.MethodGet, "/v1/days/"+day, nil, http.StatusOK, &after)
			checkDay(t, b, after.Items)
			requireHealthy(t, s)
		})
	}
}

// checkDay: every line adds up, the customer spent yesterday closes at
// its credit less its debit, the healed customer (credited today, the
// day the run made the heal) is not on yesterday's statement, and the
// system accounts balance the customers.
func checkDay(t *testing.T, b yesterdaysBooks, lines []dayLine) {
	t.Helper()
	var customers, system int64
	customerLines := 0
	for _, l := range lines {
		if l.OpeningMinor+l.CreditsMinor-l.DebitsMinor != l.ClosingMinor {
			t.Errorf("line %+v: opening + credits − debits ≠ closing", l)
		}
		if l.System {
			system += l.ClosingMinor
			continue
		}
		customers += l.ClosingMinor
		customerLines++
		if l.ClosingMinor != 250_00-b.debitMinor || l.CreditsMinor != 250_00 || l.DebitsMinor != b.debitMinor || l.OpeningMinor != 0 {
			t.Errorf("customer line %+v", l)
		}
	}
	if customerLines != 1 || customers+system != 0 {
		t.Errorf("%d customer lines; customers close at %d, system accounts at %d: %+v", customerLines, customers, system, lines)
	}
}

func decodeJSON(t *testing.T, raw []byte, out any) {
	t.Helper()
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}
