package drills_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/tiyn/tiyn/tests/testkit"
	"github.com/tiyn/tiyn/tools/platformsim"
)

// simWaitSlack is how long a simulation may run past its planned load:
// the final balance check, and retries of payments cut off by a crash.
const simWaitSlack = 60 * time.Second

// simOptions shape one `tiyn simulate --platform` run.
type simOptions struct {
	duration    time.Duration // load time (payments are started until then)
	payments    int           // or a fixed count (when duration is 0)
	concurrency int
	customers   int
	rate        float64 // payments per second; 0 = as fast as possible
	retryFor    time.Duration
	seed        int64
}

// simRun is a simulation running in the background.
type simRun struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	err            error
	deadline       time.Duration
	srv            *server
}

// startSimulate runs `tiyn simulate --platform` against s: it retries
// every non-200 callback and every failed request with backoff until it
// gets through, so crashes and outages of the server are survived, and it
// checks every balance at the end.
func startSimulate(t testing.TB, s *server, c creds, o simOptions) *simRun {
	t.Helper()
	if o.concurrency == 0 {
		o.concurrency = 8
	}
	if o.customers == 0 {
		o.customers = 20
	}
	if o.retryFor == 0 {
		o.retryFor = 2 * time.Minute
	}
	args := []string{"simulate", "--platform", "--json", "--no-progress",
		"--url", s.url(), "--project", projectID,
		"--concurrency", strconv.Itoa(o.concurrency), "--customers", strconv.Itoa(o.customers),
		"--retry-for", o.retryFor.String(), "--timeout", "5s", "--seed", strconv.FormatInt(o.seed, 10)}
	if o.duration > 0 {
		args = append(args, "--duration", o.duration.String())
	} else {
		args = append(args, "--payments", strconv.Itoa(o.payments))
	}
	if o.rate > 0 {
		args = append(args, "--rate", strconv.FormatFloat(o.rate, 'f', -1, 64))
	}
	r := &simRun{cmd: exec.Command(s.bin, args...), done: make(chan struct{}), deadline: o.duration + simWaitSlack, srv: s}
	r.cmd.Env = append(testkit.CleanEnv(), "TIYN_SIMULATE_TOKEN="+c.writeToken, "TIYN_SIMULATE_SECRET="+string(c.secret))
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start tiyn simulate: %v", err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

// finished reports whether the simulation has exited.
func (r *simRun) finished() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// wait waits for the simulation and decodes its report.
func (r *simRun) wait(t testing.TB) platformsim.Report {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(r.deadline):
		_ = r.cmd.Process.Kill()
		<-r.done
		code, _ := r.srv.readyz()
		t.Fatalf("tiyn simulate still running after %s (server /readyz %d); simulate stderr:\n%s\nserver log tail:\n%s",
			r.deadline, code, r.stderr.String(), r.srv.logTail())
	}
	var rep platformsim.Report
	if err := json.Unmarshal(r.stdout.Bytes(), &rep); err != nil {
		t.Fatalf("tiyn simulate (%v): unreadable report %q: %v; stderr:\n%s", r.err, r.stdout.String(), err, r.stderr.String())
	}
	return rep
}

// checkSim fails the test unless the simulation found every balance as
// expected with nothing uncertain: in platform mode every payment must
// get through in the end.
func checkSim(t testing.TB, r *simRun, rep platformsim.Report) {
	t.Helper()
	var problems []string
	if r.err != nil {
		problems = append(problems, fmt.Sprintf("exit: %v", r.err))
	}
	if rep.Errors != 0 {
		problems = append(problems, fmt.Sprintf("%d errors %q", rep.Errors, rep.ErrorSamples))
	}
	if len(rep.Mismatches) != 0 {
		problems = append(problems, fmt.Sprintf("%d balance mismatches %+v", len(rep.Mismatches), rep.Mismatches))
	}
	if rep.Uncertain != 0 || rep.Failed != 0 {
		problems = append(problems, fmt.Sprintf("%d uncertain and %d failed payments", rep.Uncertain, rep.Failed))
	}
	if rep.Payments == 0 || rep.Succeeded == 0 {
		problems = append(problems, "no payment succeeded")
	}
	if rep.ExpectedMinor != rep.ActualMinor {
		problems = append(problems, fmt.Sprintf("expected %d tiyn credited, got %d", rep.ExpectedMinor, rep.ActualMinor))
	}
	if len(problems) > 0 {
		t.Fatalf("simulation: %v; stderr:\n%s", problems, r.stderr.String())
	}
}

// lostDoubled compares what the simulation had acknowledged (200 on a
// success callback) with the ledger: lost are acknowledged payments
// without a credit, doubled are credits beyond one per payment. extra is
// the number of transfers the drill made itself (its own funding and
// debits).
func lostDoubled(rep platformsim.Report, lc ledgerCheck, extra int64) (lost, doubled int64) {
	credits := lc.Transfers - extra
	lost = lc.SucceededWithoutCredit
	doubled = lc.DuplicateCredits
	if d := int64(rep.Succeeded) - credits; d > 0 {
		lost += d
	}
	if d := credits - int64(rep.Succeeded); d > 0 {
		doubled += d
	}
	return lost, doubled
}
