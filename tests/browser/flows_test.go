package browser_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tiyn/tiyn/adapters/monetix"
)

func strconvQuote(s string) string { return strconv.Quote(s) }

// world is the data every flow starts from: customer 7001 with a credited
// deposit of 15,000.00 and a debit of 250.00, and an amount mismatch (a
// deposit of 500.00 whose success callback claims 600.00).
type world struct {
	s         *server
	account   account
	paymentID string // the mismatched payment
	paidID    string // 7001's credited payment
	pendingID string // 7002's pending payment
}

func seed(t *testing.T, s *server) world {
	t.Helper()
	acc := s.openAccount(t, "7001")
	s.openAccount(t, "7002")
	paid := s.checkDeposit(t, "7001", 1_500_000)
	s.callback(t, paid, "7001", 91_000_001, 1_500_000)
	s.debit(t, acc.ID, "250.00", "Coffee <b>bar</b> & co", "debit-1")
	odd := s.checkDeposit(t, "7001", 50_000)
	s.callback(t, odd, "7001", 91_000_002, 60_000) // claims 600.00: an amount_mismatch
	pending := s.checkDeposit(t, "7002", 10_000)   // stays pending
	if got := s.account(t, acc.ID).BalanceMinor; got != 1_475_000 {
		t.Fatalf("seeded balance %d, want 1475000", got)
	}
	return world{s: s, account: acc, paymentID: odd, paidID: paid, pendingID: pending}
}

// TestConsoleInTheBrowser runs the operator's flows in chromium against
// the real server: log in, the overview, an account's statement, a
// deposit's timeline, an exception resolved by credit under four eyes (the
// balance moves once), and Russian.
func TestConsoleInTheBrowser(t *testing.T) {
	browserPath(t) // skip (or fail under CI) before building anything
	s := startServer(t)
	w := seed(t, s)

	t.Run("LogInAndOverview", func(t *testing.T) {
		tb := newTab(t, s)
		tb.open("/console/")
		if loc := tb.location(); loc != "/console/login" {
			t.Fatalf("without a session at %s, want the login page", loc)
		}
		tb.mainHas("login page", "Log in to the Tiyn console", "API token")
		tb.shot("login")
		tb.login(viewerToken)
		body := plain(tb.mainHas("overview", "Today at a glance", "Pending deposits", "Exceptions waiting", "Ledger health"))
		for _, want := range []string{"15,000.00 KZT", "credits: 1", "amount mismatch", "Healthy"} {
			if !strings.Contains(body, want) {
				t.Fatalf("overview lacks %q:\n%s", want, body)
			}
		}
		// Keyboard only: the first Tab reaches the skip link.
		tb.do("tab", chromedpKey("\t"))
		if cls := eval[string](tb, `document.activeElement.className`); cls != "skip" {
			t.Fatalf("the first Tab focuses %q, want the skip link", cls)
		}
		tb.shot("overview")
	})

	t.Run("FindAnAccountAndReadItsStatement", func(t *testing.T) {
		tb := newTab(t, s)
		tb.login(viewerToken)
		tb.click(`a[href="/console/accounts"]`)
		tb.typeInto("#customer_id", "7001")
		if st := tb.submit("search", chromedpKey("\r")); st != http.StatusOK {
			t.Fatalf("search: %d", st)
		}
		if loc := tb.location(); loc != "/console/accounts/"+w.account.ID {
			t.Fatalf("search led to %s", loc)
		}
		body := plain(tb.mainHas("account", "Account of customer 7001", "Statement", "payment credited", "debit"))
		for _, want := range []string{"14,750.00 KZT", "15,000.00 KZT", "250.00 KZT", "Coffee <b>bar</b> & co"} {
			if !strings.Contains(body, want) {
				t.Fatalf("account page lacks %q:\n%s", want, body)
			}
		}
		// The description is text, not markup.
		if n := eval[int](tb, `document.querySelectorAll("main table b").length`); n != 0 {
			t.Fatalf("a description became markup (%d <b>)", n)
		}
		if n := eval[int](tb, `document.querySelectorAll("svg.chart-svg polyline").length`); n != 1 {
			t.Fatalf("no balance chart (%d)", n)
		}
		// Rows: a credit, then a debit with the running balance.
		rows := eval[[]string](tb, `[...document.querySelectorAll("table.statement tbody tr")].map(r => r.innerText)`)
		if len(rows) != 2 || !strings.Contains(plain(rows[0]), "15,000.00 KZT") || !strings.Contains(plain(rows[1]), "14,750.00 KZT") {
			t.Fatalf("statement rows %q", rows)
		}
		// The CSV download link is the console's, without a token.
		href := eval[string](tb, `document.querySelector("a[download]").getAttribute("href")`)
		if href != "/console/accounts/"+w.account.ID+"/statement.csv" {
			t.Fatalf("CSV link %q", href)
		}
		tb.shot("account")

		// The deposit's timeline from the statement's payment link.
		tb.click(`table.statement a.mono`)
		tb.mainHas("deposit", "Timeline", "check_deposit", "Callback", "credited", "Body as received")
		tb.shot("deposit")
		tb.click(`a[href="/console/deposits"]`)
		tb.mainHas("deposits", "Deposits", "pending", "succeeded")
		tb.shot("deposits")
	})

	t.Run("ResolveByCreditUnderFourEyes", func(t *testing.T) {
		before := s.account(t, w.account.ID).BalanceMinor
		tb := newTab(t, s)
		tb.login(annaToken)
		tb.click(`a[href="/console/exceptions"]`)
		tb.mainHas("queue", "Exceptions", "amount mismatch", w.paymentID)
		tb.shot("exceptions")
		tb.click(`main table tbody a`)
		tb.mainHas("exception", "Exception: amount mismatch", "Claimed by the platform", "600.00 KZT", "500.00 KZT",
			"The claim differs from the deposit.", "Propose a credit", "Four eyes are on")
		if n := eval[int](tb, `document.querySelectorAll("tr.differs").length`); n != 1 {
			t.Fatalf("the differing amount is not highlighted (%d rows)", n)
		}
		// payment.sum and the operation's sums all claim 600.00.
		if n := eval[int](tb, `document.querySelectorAll("pre.evidence .differs").length`); n != 3 {
			t.Fatalf("the claimed amount is not marked in the evidence (%d)", n)
		}
		tb.shot("exception")
		// Propose 500.00 (the deposit's amount, below the evidence's 600.00).
		tb.do("amount", chromedpClear("#amount"))
		tb.typeInto("#amount", "500.00")
		tb.typeInto("#credit-note", "Kassa24 confirmed 500.00 was collected")
		tb.click(`form[action$="/resolve"] button[type=submit]`)
		tb.mainHas("proposed", "Credit of 500.00", "no money has moved yet", "anna proposed on", "You proposed this credit")
		if n := eval[int](tb, `document.querySelectorAll('form[action$="/approve"]').length`); n != 0 {
			t.Fatal("the proposer is offered the approval")
		}
		tb.shot("exception-proposed")
		if got := s.account(t, w.account.ID).BalanceMinor; got != before {
			t.Fatalf("a proposal moved the balance: %d -> %d", before, got)
		}
		exceptionPath := tb.location()
		tb.logout()

		// Another operator approves.
		tb.login(borisToken)
		tb.open(exceptionPath)
		tb.mainHas("proposal for boris", "anna proposed on", "Approve and credit", "Reject the proposal")
		tb.typeInto("#approve-note", "checked against the terminal report")
		tb.click(`form[action$="/approve"] button[type=submit]`)
		tb.mainHas("approved", "Approved: 500.00", "boris credited")
		if got := s.account(t, w.account.ID).BalanceMinor; got != before+50_000 {
			t.Fatalf("after approval the balance is %d, want %d", got, before+50_000)
		}
		// The account page shows the balance once moved.
		tb.open("/console/accounts/" + w.account.ID)
		if body := plain(tb.text("main")); !strings.Contains(body, "15,250.00 KZT") || strings.Count(body, "operator credit")+strings.Count(body, "payment credited") != 2 {
			t.Fatalf("account after approval:\n%s", body)
		}
		// The platform's correct success arriving later credits nothing more.
		s.callback(t, w.paymentID, "7001", 91_000_003, 50_000)
		if got := s.account(t, w.account.ID).BalanceMinor; got != before+50_000 {
			t.Fatalf("a late callback moved the balance to %d", got)
		}
	})

	t.Run("ReconcileADayFromACSV", func(t *testing.T) {
		// The platform's report of today: 7001's credited payment
		// (matched), 7002's pending one (healed: credited now), one of
		// 7002's with another amount, and one Tiyn never issued.
		other := s.accountOf(t, "7002")
		odd := s.checkDeposit(t, "7002", 20_000)
		zone, err := time.LoadLocation("Asia/Almaty")
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().In(zone)
		at := now.Format(time.DateTime)
		report := monetix.DefaultReportHeader + "\n" + strings.Join([]string{
			fmt.Sprintf("%s,%s,91000001,sale,success,15000.00,KZT,%s", project, w.paidID, at),
			fmt.Sprintf("%s,%s,92000001,sale,success,100.00,KZT,%s", project, w.pendingID, at),
			fmt.Sprintf("%s,%s,92000002,sale,success,250.00,KZT,%s", project, odd, at),
			fmt.Sprintf("%s,never-issued-1,92000003,sale,success,10.00,KZT,%s", project, at),
		}, "\n") + "\n"
		file := filepath.Join(t.TempDir(), "report-"+now.Format(time.DateOnly)+".csv")
		if err := os.WriteFile(file, []byte(report), 0o644); err != nil {
			t.Fatal(err)
		}
		before := s.account(t, other.ID).BalanceMinor

		tb := newTab(t, s)
		tb.login(annaToken)
		tb.click(`a[href="/console/reconciliations"]`)
		tb.mainHas("runs", "Reconciliation with the platform", "Reconcile a day from a report")
		tb.do("fill the form",
			chromedp.SetValue(chromedp.CSS("#recon-day"), now.Format(time.DateOnly)),
			chromedp.SetUploadFiles(chromedp.CSS("#recon-report"), []string{file}))
		tb.click(`form[action="/console/reconciliations"] button[type=submit]`)
		if loc := tb.location(); !strings.HasPrefix(loc, "/console/reconciliations/rcn_") {
			t.Fatalf("after the upload at %s:\n%s", loc, tb.text("main"))
		}
		tb.mainHas("run", "reconciled: 4 rows", "Counts per class", "healed (credited now)", "amount mismatch",
			"operation of an unknown payment", "Open the exception")
		classCount := func(class string) int {
			return eval[int](tb, `(() => { for (const r of document.querySelectorAll("table.compact tbody tr")) {
				if (r.querySelector("th").innerText.startsWith(`+strconvQuote(class)+`)) return parseInt(r.querySelector("td").innerText.replace(/\D/g, "")); }
				return -1; })()`)
		}
		for class, want := range map[string]int{"matched": 1, "healed (credited now)": 1, "amount mismatch": 1, "operation of an unknown payment": 1} {
			if got := classCount(class); got != want {
				t.Fatalf("class %q: %d, want %d", class, got, want)
			}
		}
		if n := eval[int](tb, `document.querySelectorAll("table tbody tr.differs a[href^='/console/exceptions/']").length`); n < 2 {
			t.Fatalf("the breaks do not link their exceptions (%d links)", n)
		}
		if got := s.account(t, other.ID).BalanceMinor; got != before+10_000 {
			t.Fatalf("the heal moved 7002's balance from %d to %d, want +10000", before, got)
		}
		tb.shot("reconciliation")
		// A break leads to its exception, and its deposit.
		tb.click(`table tbody tr.differs a[href^="/console/exceptions/"]`)
		tb.mainHas("break's exception", "Exception:")
		tb.open("/console/reconciliations")
		tb.do("fill the form again",
			chromedp.SetValue(chromedp.CSS("#recon-day"), now.Format(time.DateOnly)),
			chromedp.SetUploadFiles(chromedp.CSS("#recon-report"), []string{file}))
		tb.click(`form[action="/console/reconciliations"] button[type=submit]`)
		tb.mainHas("rerun", "already reconciled with this very file", "nothing changed")
		if got := s.account(t, other.ID).BalanceMinor; got != before+10_000 {
			t.Fatalf("the same report twice moved the balance to %d", got)
		}
		tb.open("/console/reconciliations")
		tb.shot("reconciliations")
		// Today cannot be closed yet; the day page says so.
		tb.open("/console/days/" + now.Format(time.DateOnly))
		tb.mainHas("day", "Open", "The day has not ended yet")
		tb.shot("day")
	})

	t.Run("SwitchToRussian", func(t *testing.T) {
		tb := newTab(t, s)
		tb.login(viewerToken)
		tb.open("/console/accounts/" + w.account.ID)
		tb.click(`a[hreflang="ru"]`)
		if lang := eval[string](tb, `document.documentElement.lang`); lang != "ru" {
			t.Fatalf("lang %q after the switch", lang)
		}
		if loc := tb.location(); loc != "/console/accounts/"+w.account.ID {
			t.Fatalf("the switch came back to %s", loc)
		}
		body := tb.mainHas("russian account", "Счёт клиента 7001", "Выписка", "Скачать CSV", "зачисление платежа")
		if !strings.Contains(body, "15\u202f250,00\u00a0₸") {
			t.Fatalf("the Russian balance is not 15\u202f250,00\u00a0₸:\n%s", body)
		}
		if strings.Contains(body, ",00 KZT") || strings.Contains(body, "Statement") || strings.Contains(body, "Balance") {
			t.Fatalf("English left on the Russian page:\n%s", body)
		}
		tb.shot("account-ru")
		// Remembered: the next page is Russian too.
		tb.click(`a[href="/console/"]`)
		tb.mainHas("russian overview", "Сегодня коротко", "Ожидающие пополнения", "Исключения в очереди")
		tb.shot("overview-ru")

		// On a phone: nothing wider than the screen but the tables, which
		// scroll in their own box.
		tb.do("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
		for _, path := range []string{"/console/", "/console/exceptions", "/console/accounts/" + w.account.ID} {
			tb.open(path)
			if wide := eval[int](tb, `document.documentElement.scrollWidth - window.innerWidth`); wide > 0 {
				t.Fatalf("%s is %d px wider than a phone's screen", path, wide)
			}
		}
		tb.shot("account-ru-phone")
	})
}
