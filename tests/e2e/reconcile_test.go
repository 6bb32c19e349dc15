package e2e_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/tests/testkit"
	"github.com/tiyn/tiyn/tools/platformsim"
)

// The reconciliation end to end: the binary against the simulator with
// every class of break injected into the platform's record.
const (
	reconPayments  = 300
	reconCustomers = 20
	// reconDataToken and reconDataSecret are the Data API pair both the
	// server and the simulator are given.
	reconDataToken  = "e2e-data-api-token-0123456789"
	reconDataSecret = "e2e-data-api-secret-0123456789"
	// reconServeFor keeps the simulator's Data API up for the test; it is
	// stopped (SIGTERM) as soon as the test is done with it.
	reconServeFor = 5 * time.Minute
)

// reconRun is the part of a reconciliation run read here.
type reconRun struct {
	ID        string           `json:"id"`
	Day       string           `json:"day"`
	Source    string           `json:"source"`
	Status    string           `json:"status"`
	Unchanged bool             `json:"unchanged"`
	Rows      int64            `json:"rows"`
	BadRows   int64            `json:"bad_rows"`
	Breaks    int64            `json:"breaks"`
	Counts    map[string]int64 `json:"counts"`
}

// TestReconcileSimulatedDay plays a day with --recon-faults on each store
// and reconciles it through the service, from the Data API the simulator
// serves and from the CSV report it writes (SQLite reads the Data API
// first, PostgreSQL the CSV report, so each source meets every class on
// one store): every class comes out with the count injected, the healed
// payments are credited once and nothing else is, a rerun of the same
// input is unchanged and changes nothing, the other source's input is a
// new run that heals nothing more, today cannot be closed, and a past day
// closes with an override and an empty statement. Server and
// simulator keep business days in a zone where it is noon now
// (testkit.NoonZone), so the day played stays today to the end.
func TestReconcileSimulatedDay(t *testing.T) {
	t.Parallel()
	zone, loc, err := testkit.NoonZone(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range stores {
		dataFirst := i == 0
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			gate := freeLoopbackAddr(t)
			s := startServer(t, st.url(t),
				"TIYN_MONETIX_DATA_URL=http://"+gate,
				"TIYN_MONETIX_DATA_TOKEN="+reconDataToken,
				"TIYN_MONETIX_DATA_SECRET="+reconDataSecret,
				"TIYN_BUSINESS_TZ="+zone,
			)
			csvPath := filepath.Join(t.TempDir(), "report.csv")
			r := startReconSimulation(t, s, gate, csvPath, zone)
			reconcileSimulatedDay(t, s, r, csvPath, loc, dataFirst)
		})
	}
}

func reconcileSimulatedDay(t *testing.T, s *server, r platformsim.Report, csvPath string, loc *time.Location, dataFirst bool) {
	// The simulator's own verdict counts the faults in: the healed and
	// mismatched payments are not credited yet, and must not be.
	if !r.OK() || len(r.Mismatches) != 0 {
		t.Fatalf("simulation: %d errors %v, mismatches %v", r.Errors, r.ErrorSamples, r.Mismatches)
	}
	if r.ExpectedMinor != r.ActualMinor {
		t.Fatalf("simulation: expected %d, actual %d", r.ExpectedMinor, r.ActualMinor)
	}
	want := map[string]int64{}
	var breaks int64
	for class, n := range r.ReconFaultCounts {
		if n < 2 || n > 3 {
			t.Fatalf("%d faults of class %s injected, want 2 or 3: %v", n, class, r.ReconFaultCounts)
		}
		want[class] = int64(n)
		c, err := domain.ParseReconClass(class)
		if err != nil {
			t.Fatal(err)
		}
		if c.IsBreak() {
			breaks += int64(n)
		}
	}
	if len(want) != 7 || len(r.ReconFaults) != sumCounts(want) {
		t.Fatalf("fault counts %v for %d faults: want the seven classes", r.ReconFaultCounts, len(r.ReconFaults))
	}
	if len(r.ReportFiles) != 1 || r.ReportFiles[0].Path != csvPath {
		t.Fatalf("report files %+v, want one at %s", r.ReportFiles, csvPath)
	}
	day := r.ReportFiles[0].Day
	if today := domain.DayOf(time.Now(), loc).String(); day != today {
		t.Fatalf("the simulation's day %s is not today %s in %s", day, today, loc)
	}
	csv, err := os.ReadFile(csvPath)
	if err != nil {
		t.Fatal(err)
	}

	// Expectations: the healed payments credit their customers once.
	healedBy := map[string]int64{}
	for _, f := range r.ReconFaults {
		if f.Class == domain.ClassHealed.String() {
			healedBy[f.CustomerID] += f.AmountMinor
		}
	}
	before := reconBalances(t, s, r.CustomerPrefix)
	checkBefore := requireHealthy(t, s)

	dataRun := func() reconRun {
		var run reconRun
		x := s.mustSend(t, http.MethodPost, "/v1/reconciliations?day="+day, "", apiToken, nil)
		decodeRun(t, x, &run)
		return run
	}
	csvRun := func() reconRun {
		var run reconRun
		x := s.mustSend(t, http.MethodPost, "/v1/reconciliations?day="+day, "text/csv", apiToken, csv)
		decodeRun(t, x, &run)
		return run
	}
	first, second := dataRun, csvRun
	firstSource, secondSource := "data_api", "csv"
	if !dataFirst {
		first, second = csvRun, dataRun
		firstSource, secondSource = "csv", "data_api"
	}

	// The first run: every class with its injected count; the rest of the
	// day's payments matched.
	run1 := first()
	wantRun := func(run reconRun, source string, unchanged bool, healed int64) {
		t.Helper()
		if run.Source != source || run.Unchanged != unchanged || run.Day != day || run.BadRows != 0 {
			t.Fatalf("run %+v: want source %s, unchanged %v, day %s, no bad row", run, source, unchanged, day)
		}
		for class, n := range want {
			if class == domain.ClassHealed.String() {
				n = healed
			}
			if run.Counts[class] != n {
				t.Errorf("run %s (%s): %s %d, want %d (counts %v)", run.ID, source, class, run.Counts[class], n, run.Counts)
			}
		}
		for _, class := range []string{domain.ClassHeldForOperator.String(), domain.ClassUnreadableRow.String()} {
			if run.Counts[class] != 0 {
				t.Errorf("run %s (%s): %s %d, want 0", run.ID, source, class, run.Counts[class])
			}
		}
		if run.Breaks != breaks {
			t.Errorf("run %s (%s): %d breaks, want %d injected", run.ID, source, run.Breaks, breaks)
		}
		// Every payment played is one item: matched, or its fault's class
		// (a late success's declined first operation is matched too).
		var total int64
		for _, n := range run.Counts {
			total += n
		}
		if run.Counts[domain.ClassMatched.String()] < int64(reconPayments-sumCounts(want)) || total < int64(reconPayments) {
			t.Errorf("run %s (%s): counts %v for %d payments", run.ID, source, run.Counts, reconPayments)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	wantRun(run1, firstSource, false, want[domain.ClassHealed.String()])

	after := reconBalances(t, s, r.CustomerPrefix)
	checkAfter := requireHealthy(t, s)
	var healedTotal int64
	for id, b := range after {
		if b != before[id]+healedBy[id] {
			t.Errorf("customer %s: balance %d after the run, %d before, %d healed", id, b, before[id], healedBy[id])
		}
		healedTotal += healedBy[id]
	}
	if len(after) != reconCustomers || healedTotal != r.HealedAtReconciliationMinor {
		t.Fatalf("%d customers, healed %d, the simulator expects %d", len(after), healedTotal, r.HealedAtReconciliationMinor)
	}
	if checkAfter.Transfers != checkBefore.Transfers+want[domain.ClassHealed.String()] ||
		checkAfter.CustomerBalanceTotal != checkBefore.CustomerBalanceTotal+healedTotal ||
		checkAfter.CustomerBalanceTotal != r.ActualMinor+r.HealedAtReconciliationMinor {
		t.Fatalf("ledger %+v after the run, %+v before: want %d more transfers and %d more in the balances (simulator: %d + %d)",
			checkAfter, checkBefore, want[domain.ClassHealed.String()], healedTotal, r.ActualMinor, r.HealedAtReconciliationMinor)
	}

	// The same input again: unchanged, the same run, nothing moved.
	rerun := first()
	if rerun.ID != run1.ID {
		t.Fatalf("the same input again is run %s, want %s", rerun.ID, run1.ID)
	}
	wantRun(rerun, firstSource, true, want[domain.ClassHealed.String()])
	reconSameLedger(t, s, r.CustomerPrefix, after, checkAfter)

	// The other source: a new run; what was healed is matched now.
	run2 := second()
	if run2.ID == run1.ID {
		t.Fatalf("the %s input was answered by the %s run %s", secondSource, firstSource, run1.ID)
	}
	wantRun(run2, secondSource, false, 0)
	reconSameLedger(t, s, r.CustomerPrefix, after, checkAfter)
	rerun2 := second()
	if rerun2.ID != run2.ID {
		t.Fatalf("the same %s input again is run %s, want %s", secondSource, rerun2.ID, run2.ID)
	}
	wantRun(rerun2, secondSource, true, 0)
	reconSameLedger(t, s, r.CustomerPrefix, after, checkAfter)

	// Today has not ended: no close, override or not.
	x := s.mustSend(t, http.MethodPost, "/v1/days/"+day+"/close", "application/json", apiToken,
		mustJSON(map[string]any{"override": true, "reason": "e2e: today"}))
	if x.Status != http.StatusConflict || !strings.Contains(string(x.Answer), "day_not_ended") {
		t.Fatalf("closing today: HTTP %d %s, want 409 day_not_ended", x.Status, x.Answer)
	}
	// A past day closes: without a run only with an override.
	d, err := domain.ParseBusinessDay(day, loc)
	if err != nil {
		t.Fatal(err)
	}
	past := d.Prev().String()
	x = s.mustSend(t, http.MethodPost, "/v1/days/"+past+"/close", "application/json", apiToken, mustJSON(map[string]any{}))
	if x.Status != http.StatusConflict || !strings.Contains(string(x.Answer), "open_breaks") {
		t.Fatalf("closing %s without a run or an override: HTTP %d %s, want 409 open_breaks", past, x.Status, x.Answer)
	}
	x = s.mustSend(t, http.MethodPost, "/v1/days/"+past+"/close", "application/json", apiToken,
		mustJSON(map[string]any{"override": true, "reason": "e2e: a day before the simulation"}))
	if x.Status != http.StatusOK && x.Status != http.StatusCreated {
		t.Fatalf("closing %s with an override: HTTP %d %s", past, x.Status, x.Answer)
	}
	x = s.mustSend(t, http.MethodPost, "/v1/days/"+past+"/close", "application/json", apiToken,
		mustJSON(map[string]any{"override": true, "reason": "e2e: again"}))
	if x.Status != http.StatusConflict || !strings.Contains(string(x.Answer), "day_closed") {
		t.Fatalf("closing %s twice: HTTP %d %s, want 409 day_closed", past, x.Status, x.Answer)
	}
	var view struct {
		Day      string            `json:"day"`
		Override bool              `json:"override"`
		Accounts int64             `json:"accounts"`
		Items    []json.RawMessage `json:"items"`
	}
	s.rest(t, http.MethodGet, "/v1/days/"+past, nil, http.StatusOK, &view)
	if view.Day != past || !view.Override {
		t.Fatalf("day %s: %+v", past, view)
	}
	// The simulation opened every account today: the day before has none,
	// so its statement is empty (an account of today's on it is a bug).
	if view.Accounts != 0 || len(view.Items) != 0 {
		t.Fatalf("day %s, before any account: a statement of %d accounts %s", past, view.Accounts, view.Items)
	}
	// Closing the past day changed nothing of today's.
	reconSameLedger(t, s, r.CustomerPrefix, after, checkAfter)
}

func sumCounts(m map[string]int64) int {
	n := 0
	for _, v := range m {
		n += int(v)
	}
	return n
}

func decodeRun(t *testing.T, x exchange, run *reconRun) {
	t.Helper()
	if x.Status != http.StatusOK && x.Status != http.StatusCreated {
		t.Fatalf("POST %s: HTTP %d %s", x.Path, x.Status, x.Answer)
	}
	if err := json.Unmarshal(x.Answer, run); err != nil {
		t.Fatalf("POST %s: %v: %s", x.Path, err, x.Answer)
	}
	if run.Status != "finished" && run.Status != "" {
		t.Fatalf("POST %s: run %s is %s: %s", x.Path, run.ID, run.Status, x.Answer)
	}
}

// reconBalances reads the balance of every account of the simulation.
func reconBalances(t *testing.T, s *server, prefix string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, a := range listAll[accountJSON](t, s, "/v1/accounts") {
		if strings.HasPrefix(a.CustomerID, prefix) {
			out[a.CustomerID] = a.BalanceMinor
		}
	}
	return out
}

// reconSameLedger fails unless the balances and the ledger check are
// those of want and check.
func reconSameLedger(t *testing.T, s *server, prefix string, want map[string]int64, check ledgerCheckJSON) {
	t.Helper()
	got := reconBalances(t, s, prefix)
	for id, b := range want {
		if got[id] != b {
			t.Fatalf("customer %s: balance %d, want %d unchanged", id, got[id], b)
		}
	}
	if c := requireHealthy(t, s); c.Transfers != check.Transfers || c.CustomerBalanceTotal != check.CustomerBalanceTotal {
		t.Fatalf("ledger %+v, want %+v unchanged", c, check)
	}
}

// startReconSimulation runs `tiyn simulate --recon-faults` against s as
// the platform's Gate and Data API on gate, writing the CSV report to
// csvPath, with business days in zone, and returns its report once the
// run is done; the simulator keeps serving the Data API until the test
// ends (SIGTERM, then it must exit 0).
func startReconSimulation(t *testing.T, s *server, gate, csvPath, zone string) platformsim.Report {
	t.Helper()
	args := []string{"simulate", "--url", s.base, "--project", projectPlain, "--json", "--no-progress",
		"--customers", strconv.Itoa(reconCustomers), "--payments", strconv.Itoa(reconPayments), "--concurrency", "8",
		"--late-success", "0.1", "--declines", "0.1", "--duplicates", "0.1",
		"--gate-listen", gate, "--recon-faults", "--report-csv", csvPath, "--serve-for", reconServeFor.String(), "--seed", "17"}
	cmd := exec.Command(tiynBin, args...)
	cmd.Env = append(testkit.CleanEnv(), "TIYN_SIMULATE_TOKEN="+apiToken, "TIYN_SIMULATE_SECRET="+secretPlain,
		"TIYN_MONETIX_DATA_TOKEN="+reconDataToken, "TIYN_MONETIX_DATA_SECRET="+reconDataSecret, "TIYN_BUSINESS_TZ="+zone)
	var stdout, stderr testkit.SyncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	testkit.TieToParent(cmd)
	proc, err := testkit.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := proc.Stop(syscall.SIGTERM, StopTimeout); err != nil {
			t.Errorf("stopping the simulator: %v", err)
		}
		if err := proc.Err(); err != nil {
			t.Errorf("the simulator exited with %v: %s", err, stderr.String())
		}
	})
	deadline := time.Now().Add(SimTimeout)
	for !strings.Contains(stderr.String(), "serving the Gate and the Data API") {
		if proc.Exited() || time.Now().After(deadline) {
			t.Fatalf("the simulator never got to serving (exited %v, %v):\nstdout: %s\nstderr: %s", proc.Exited(), proc.Err(), stdout.String(), stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	var r platformsim.Report
	if err := json.NewDecoder(bytes.NewReader([]byte(stdout.String()))).Decode(&r); err != nil {
		t.Fatalf("the simulator's report: %v: %s", err, stdout.String())
	}
	t.Logf("simulate: %d payments, faults %v, healed at reconciliation %d", r.Payments, r.ReconFaultCounts, r.HealedAtReconciliationMinor)
	return r
}
