package drills_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	// PRAGMA integrity_check reads the SQLite file with the driver the
	// store uses.
	"github.com/uptrace/bun/driver/sqliteshim"
)

// Bounds of the outage drills.
const (
	// outageDetect bounds how long /readyz may keep answering 200 after
	// the database went away (the ping itself is bounded by 2 s).
	outageDetect = 5 * time.Second
	// outageRecover bounds how long the service may take to answer again
	// once the database is back, without a restart.
	outageRecover = 20 * time.Second
	// probeRetry is the pause between a probe's attempts while waiting for
	// recovery.
	probeRetry = 100 * time.Millisecond
)

// allowedCallbackCodes are the only HTTP statuses a well-formed, signed
// callback may get while the database misbehaves: 200 after a commit,
// 500/503 (the platform retries) otherwise.
var allowedCallbackCodes = map[string]bool{"200": true, "500": true, "503": true}

// checkCallbackCodes fails the test when the callbacks route answered
// anything but 200/500/503 (a 4xx for a store failure would mislabel a
// retryable problem as the platform's fault).
func checkCallbackCodes(t *testing.T, s *server) map[string]float64 {
	t.Helper()
	codes, err := statusCounts(s, callbacksPath)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	for code := range codes {
		if !allowedCallbackCodes[code] {
			t.Errorf("callbacks answered HTTP %s during the outage drill: %s", code, formatCounts(codes))
		}
	}
	return codes
}

// prober is a customer the drill pays itself, one deposit per outage,
// whose callback is sent while the database is down (it must not get 200)
// and again after recovery (it must get 200, once).
type prober struct {
	t        *testing.T
	s        *server
	c        creds
	customer string
	account  account
	pending  []probe
	credited int64
	sent     int // callbacks sent while the database was down
	refused  int // of which answered 5xx
	requests int // check_deposits sent while the database was down
	codes500 int // of which answered code 500 (HTTP 200)
}

type probe struct {
	paymentID string
	body      []byte
	amount    int64
}

func newProber(t *testing.T, s *server, c creds) *prober {
	p := &prober{t: t, s: s, c: c, customer: "probe-" + randomHex(t, 4)}
	p.account = openAccount(t, s, c, p.customer)
	return p
}

// prepare opens a deposit while the database is up.
func (p *prober) prepare(amount int64) {
	p.t.Helper()
	id, err := openDeposit(p.t, p.s, p.c, p.customer, amount)
	if err != nil {
		p.t.Fatalf("probe deposit: %v", err)
	}
	p.pending = append(p.pending, probe{paymentID: id, amount: amount, body: callbackBody(p.t, p.c, id, "success", amount)})
}

// whileDown sends the last prepared callback and a check_deposit while the
// database cannot commit: neither may report success.
func (p *prober) whileDown() {
	p.t.Helper()
	last := p.pending[len(p.pending)-1]
	resp, err := postCallback(p.s, last.body)
	p.sent++
	switch {
	case err != nil:
		p.t.Errorf("probe callback while the database is down: %v", err)
	case resp.status == http.StatusOK:
		p.t.Errorf("probe callback answered 200 while the database is down: %s", resp.body)
	case resp.status >= 500:
		p.refused++
	default:
		p.t.Errorf("probe callback answered %d while the database is down (want 5xx): %s", resp.status, resp.body)
	}
	_, err = openDeposit(p.t, p.s, p.c, p.customer, 100)
	p.requests++
	switch {
	case err == nil:
		p.t.Errorf("check_deposit answered code 0 while the database is down")
	case strings.Contains(err.Error(), "code 500"):
		p.codes500++
	default:
		p.t.Errorf("check_deposit while the database is down: %v (want code 500)", err)
	}
}

// recover resends every pending callback until it gets 200 and returns how
// long the first one took.
func (p *prober) recover() time.Duration {
	p.t.Helper()
	start := time.Now()
	var first time.Duration
	for i, pr := range p.pending {
		for {
			resp, err := postCallback(p.s, pr.body)
			if err == nil && resp.status == http.StatusOK {
				break
			}
			if time.Since(start) > outageRecover {
				p.t.Fatalf("no recovery %s after the database came back: %v %d %s; log tail:\n%s",
					outageRecover, err, resp.status, resp.body, p.s.logTail())
			}
			time.Sleep(probeRetry)
		}
		if i == 0 {
			first = time.Since(start)
		}
		p.credited += pr.amount
	}
	p.pending = p.pending[:0]
	return first
}

// check compares the probe account with what was acknowledged.
func (p *prober) check() {
	p.t.Helper()
	if got := balanceOf(p.t, p.s, p.c, p.account.ID); got != p.credited {
		p.t.Fatalf("probe account: balance %d tiyn, acknowledged %d", got, p.credited)
	}
}

// waitReadyz polls /readyz until it answers want, for at most d; it
// returns how long that took.
func waitReadyz(s *server, want int, d time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		code, _ := s.readyz()
		if code == want {
			return time.Since(start), nil
		}
		if time.Since(start) > d {
			return time.Since(start), fmt.Errorf("/readyz answered %d, not %d, for %s", code, want, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDrillPostgresOutage cuts the service off its PostgreSQL under load:
// first by terminating its connections again and again, then (on a private
// cluster the drill owns) by stopping the server, cleanly or like a crash,
// and starting it again. Nothing may be answered 200 without a commit,
// /readyz must say 503 while the database is gone, the service must
// recover without a restart, and nothing may be lost or doubled.
func TestDrillPostgresOutage(t *testing.T) {
	needFull(t)
	t.Run("terminate-backends", drillTerminateBackends)
	t.Run("stop-start-cluster", drillStopStartCluster)
}

func drillTerminateBackends(t *testing.T) {
	dbURL := freshPostgres(t)
	_, admin := adminPostgres(t)
	name := databaseName(t, dbURL)
	c := newCreds(t)
	s := newServer(t, dbURL, c)
	s.start()
	s.mustReady()

	const load = 20 * time.Second
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	sim := startSimulate(t, s, c, simOptions{duration: load, concurrency: 8, customers: 20, seed: seed})
	start := time.Now()
	rounds, terminated := 0, 0
	for time.Since(start) < load-time.Second && !sim.finished() {
		time.Sleep(100*time.Millisecond + time.Duration(rng.Int64N(int64(500*time.Millisecond))))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n, err := terminateBackends(ctx, admin, name)
		cancel()
		if err != nil {
			t.Fatalf("pg_terminate_backend: %v", err)
		}
		rounds++
		terminated += n
	}
	rep := sim.wait(t)
	checkSim(t, sim, rep)
	lc := checkLedger(t, s, c)
	lost, doubled := lostDoubled(rep, lc, 0)
	if lost != 0 || doubled != 0 {
		t.Fatalf("lost %d, doubled %d", lost, doubled)
	}
	codes := checkCallbackCodes(t, s)
	if s.starts != 1 || !s.running() {
		t.Fatalf("the service had to be restarted (%d starts)", s.starts)
	}
	if terminated == 0 {
		t.Fatal("no connection was ever terminated: the drill did not drill")
	}
	s.checkNoPanic(t)
	figures(t, "outage-terminate", "rounds", rounds, "connections_terminated", terminated, "payments", rep.Payments,
		"credited", rep.Succeeded, "retries", rep.Retries, "callback_codes", formatCounts(codes),
		"lost", lost, "doubled", doubled)
}

// databaseName is the database a PostgreSQL URL names.
func databaseName(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || strings.Trim(u.Path, "/") == "" {
		t.Fatalf("no database in %s: %v", redact(raw), err)
	}
	return strings.Trim(u.Path, "/")
}

func drillStopStartCluster(t *testing.T) {
	cl := newCluster(t)
	cl.createDatabase("tiyn")
	c := newCreds(t)
	s := newServer(t, cl.url("tiyn"), c)
	s.start()
	s.mustReady()
	p := newProber(t, s, c)

	const (
		cycles = 4
		up     = 3 * time.Second
		down   = 2 * time.Second
	)
	seed := time.Now().UnixNano()
	sim := startSimulate(t, s, c, simOptions{duration: cycles*(up+down) + up, concurrency: 8, customers: 20, seed: seed})
	var detect, recovery []string
	for i := range cycles {
		time.Sleep(up)
		p.prepare(int64(1000 + i))
		mode := []string{"immediate", "fast"}[i%2]
		cl.stop(mode)
		d, err := waitReadyz(s, http.StatusServiceUnavailable, outageDetect)
		if err != nil {
			t.Fatalf("cycle %d (stop -m %s): %v", i, mode, err)
		}
		detect = append(detect, d.Round(time.Millisecond).String())
		p.whileDown()
		time.Sleep(down)
		cl.start()
		if _, err := waitReadyz(s, http.StatusOK, outageRecover); err != nil {
			t.Fatalf("cycle %d: no recovery without a restart: %v; log tail:\n%s", i, err, s.logTail())
		}
		recovery = append(recovery, p.recover().Round(time.Millisecond).String())
	}
	rep := sim.wait(t)
	checkSim(t, sim, rep)
	p.check()
	lc := checkLedger(t, s, c)
	lost, doubled := lostDoubled(rep, lc, int64(cycles))
	if lost != 0 || doubled != 0 {
		t.Fatalf("lost %d, doubled %d", lost, doubled)
	}
	codes := checkCallbackCodes(t, s)
	if s.starts != 1 || !s.running() {
		t.Fatalf("the service had to be restarted (%d starts)", s.starts)
	}
	s.checkNoPanic(t)
	figures(t, "outage-stop-start", "cycles", cycles, "modes", "immediate+fast", "readyz_503_after", strings.Join(detect, ","),
		"recovered_after", strings.Join(recovery, ","), "probe_callbacks_refused", fmt.Sprintf("%d/%d", p.refused, p.sent),
		"probe_check_deposits_code500", fmt.Sprintf("%d/%d", p.codes500, p.requests),
		"payments", rep.Payments, "credited", rep.Succeeded, "retries", rep.Retries,
		"callback_codes", formatCounts(codes), "lost", lost, "doubled", doubled)
}

// TestDrillSQLiteDiskFailure makes every write of the SQLite server fail
// under load, as a failing or full disk does (its file size limit drops to
// one byte, so each write to the database or its WAL gets EFBIG), then
// lifts the limit. Callbacks must get 5xx while writes fail, the service
// must recover without a restart, the file must pass PRAGMA
// integrity_check, and nothing may be lost or doubled.
func TestDrillSQLiteDiskFailure(t *testing.T) {
	needFull(t)
	path := filepath.Join(t.TempDir(), "tiyn.db")
	c := newCreds(t)
	s := newServer(t, "sqlite:"+path, c)
	s.start()
	s.mustReady()
	p := newProber(t, s, c)

	const (
		cycles = 4
		up     = 2 * time.Second
		down   = 1500 * time.Millisecond
	)
	seed := time.Now().UnixNano()
	sim := startSimulate(t, s, c, simOptions{duration: cycles*(up+down) + up, concurrency: 8, customers: 20, seed: seed})
	var recovery []string
	readyDuring := map[int]int{}
	for i := range cycles {
		time.Sleep(up)
		p.prepare(int64(2000 + i))
		restore := limitFileSize(t, s.pid(), 1)
		time.Sleep(200 * time.Millisecond)
		p.whileDown()
		code, _ := s.readyz()
		readyDuring[code]++
		time.Sleep(down)
		restore()
		recovery = append(recovery, p.recover().Round(time.Millisecond).String())
	}
	rep := sim.wait(t)
	checkSim(t, sim, rep)
	p.check()
	lc := checkLedger(t, s, c)
	lost, doubled := lostDoubled(rep, lc, int64(cycles))
	if lost != 0 || doubled != 0 {
		t.Fatalf("lost %d, doubled %d", lost, doubled)
	}
	codes := checkCallbackCodes(t, s)
	if s.starts != 1 || !s.running() {
		t.Fatalf("the service had to be restarted (%d starts)", s.starts)
	}
	s.checkNoPanic(t)
	if _, err := s.signal(sigterm); err != nil || s.exitErr() != nil {
		t.Fatalf("SIGTERM: %v, exit %v", err, s.exitErr())
	}
	integrity := integrityCheck(t, path)
	figures(t, "sqlite-disk-failure", "cycles", cycles, "recovered_after", strings.Join(recovery, ","),
		"probe_callbacks_refused", fmt.Sprintf("%d/%d", p.refused, p.sent),
		"probe_check_deposits_code500", fmt.Sprintf("%d/%d", p.codes500, p.requests),
		"readyz_while_failing", fmt.Sprint(readyDuring), "integrity_check", integrity,
		"payments", rep.Payments, "credited", rep.Succeeded, "retries", rep.Retries,
		"callback_codes", formatCounts(codes), "lost", lost, "doubled", doubled)
}

// unprivilegedUser runs the server of a drill as when file permissions
// must bite: root ignores them.
const unprivilegedUser = "nobody"

// TestDrillSQLiteReadOnly makes the SQLite file and its directory
// read-only between two runs. A running server is not affected (its open
// descriptors keep write access, which is why TestDrillSQLiteDiskFailure
// fails the writes instead), so the drill restarts it: it must refuse to
// start (non-zero exit, the reason in its log) rather than serve without
// being able to commit, leave the file intact, and start again with
// everything in place once the file is writable.
func TestDrillSQLiteReadOnly(t *testing.T) {
	needFull(t)
	dir, err := os.MkdirTemp("", "tiyn-drill-ro-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o755); _ = os.RemoveAll(dir) })
	c := newCreds(t)
	path := filepath.Join(dir, "tiyn.db")
	s := newServer(t, "sqlite:"+path, c)
	if os.Geteuid() == 0 {
		u, err := user.Lookup(unprivilegedUser)
		if err != nil {
			t.Skipf("running as root without a %q user: file permissions cannot be drilled: %v", unprivilegedUser, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		s.prepare = func(cmd *exec.Cmd) {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		}
	}
	s.start()
	s.mustReady()
	customer := "ro-" + randomHex(t, 4)
	acc := openAccount(t, s, c, customer)
	fund(t, s, c, customer, 12345)
	before := checkLedger(t, s, c)
	if _, err := s.signal(sigterm); err != nil || s.exitErr() != nil {
		t.Fatalf("SIGTERM: %v, exit %v", err, s.exitErr())
	}

	files, _ := filepath.Glob(path + "*")
	setMode := func(file, dirMode os.FileMode) {
		for _, f := range files {
			if err := os.Chmod(f, file); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(dir, dirMode); err != nil {
			t.Fatal(err)
		}
	}
	setMode(0o444, 0o555)
	s.start()
	err = s.waitReady(readyTimeout)
	if err == nil || s.running() {
		t.Fatalf("tiyn serve became ready on a read-only database (%v)", err)
	}
	if s.exitErr() == nil || !strings.Contains(s.logText(), "readonly") {
		t.Fatalf("refused start: exit %v, log tail:\n%s", s.exitErr(), s.logTail())
	}
	setMode(0o644, 0o755)
	s.start()
	s.mustReady()
	after := checkLedger(t, s, c)
	if after != before || balanceOf(t, s, c, acc.ID) != 12345 {
		t.Fatalf("ledger after the read-only episode %+v, before %+v", after, before)
	}
	if _, err := s.signal(sigterm); err != nil || s.exitErr() != nil {
		t.Fatalf("SIGTERM: %v, exit %v", err, s.exitErr())
	}
	s.checkNoPanic(t)
	integrity := integrityCheck(t, path)
	figures(t, "sqlite-read-only", "start_on_read_only", "refused (exit non-zero)", "integrity_check", integrity,
		"restart_when_writable", "ready", "transfers_kept", after.Transfers)
}

// limitFileSize sets the soft RLIMIT_FSIZE of process pid to bytes and
// returns a function that puts the old limit back.
func limitFileSize(t *testing.T, pid int, bytes uint64) (restore func()) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, nil, &old); err != nil {
		t.Skipf("prlimit: %v", err)
	}
	lim := unix.Rlimit{Cur: bytes, Max: old.Max}
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &lim, nil); err != nil {
		t.Skipf("prlimit: %v", err)
	}
	return func() {
		if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &old, nil); err != nil {
			t.Fatalf("prlimit restore: %v", err)
		}
	}
}

// integrityCheck runs PRAGMA integrity_check on a SQLite file the server
// no longer has open and fails the test unless it says "ok".
func integrityCheck(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open(sqliteshim.ShimName, "file:"+path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer func() { _ = db.Close() }()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil {
		t.Fatalf("integrity_check: %v", err)
	}
	if res != "ok" {
		t.Fatalf("integrity_check: %s", res)
	}
	return res
}
