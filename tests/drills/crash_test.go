package drills_test

import (
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"
)

// crashPlan bounds one crash drill.
type crashPlan struct {
	kills        int           // SIGKILLs under load
	startupKills int           // SIGKILLs within the first moments of a start (migration, pool opening)
	load         time.Duration // how long the simulation starts payments
	gapMin       time.Duration // least time between a restart and the next kill
	gapMax       time.Duration // most time between a restart and the next kill
	downMax      time.Duration // most time the server stays dead
}

// TestDrillCrashSQLite kills `tiyn serve` on SQLite with SIGKILL at random
// moments while `tiyn simulate --platform` plays payments against it, and
// restarts it on the same port and file each time. At the end every
// payment answered 200 is credited exactly once and every balance matches.
func TestDrillCrashSQLite(t *testing.T) {
	parallelIfFast(t)
	plan := pick(
		crashPlan{kills: 4, startupKills: 3, load: 6 * time.Second, gapMin: 400 * time.Millisecond, gapMax: 1200 * time.Millisecond, downMax: 150 * time.Millisecond},
		crashPlan{kills: 40, startupKills: 10, load: 60 * time.Second, gapMin: 200 * time.Millisecond, gapMax: 1200 * time.Millisecond, downMax: 300 * time.Millisecond},
	)
	runCrashDrill(t, "crash-sqlite", "sqlite:"+filepath.Join(t.TempDir(), "tiyn.db"), plan)
}

// TestDrillCrashPostgres is the crash drill on a fresh PostgreSQL database.
func TestDrillCrashPostgres(t *testing.T) {
	needFull(t)
	plan := crashPlan{kills: 40, startupKills: 10, load: 60 * time.Second, gapMin: 200 * time.Millisecond, gapMax: 1200 * time.Millisecond, downMax: 300 * time.Millisecond}
	runCrashDrill(t, "crash-postgres", freshPostgres(t), plan)
}

func runCrashDrill(t *testing.T, name, dbURL string, plan crashPlan) {
	c := newCreds(t)
	s := newServer(t, dbURL, c)
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("%s: seed %d, database %s", name, seed, dbURL)

	// Kills while the process starts: the first one runs the migrations on
	// an empty database, later ones open pools and check the schema.
	for i := range plan.startupKills {
		s.start()
		time.Sleep(time.Duration(rng.Int64N(int64(40*time.Millisecond))) * time.Duration(i%3+1))
		s.kill()
	}
	s.start()
	s.mustReady()

	sim := startSimulate(t, s, c, simOptions{duration: plan.load, concurrency: 8, customers: 20, seed: seed})
	started := time.Now()
	kills, restarts := 0, 0
	var downtime time.Duration
	for kills < plan.kills && time.Since(started) < plan.load-plan.gapMin && !sim.finished() {
		time.Sleep(plan.gapMin + time.Duration(rng.Int64N(int64(plan.gapMax-plan.gapMin))))
		s.kill()
		kills++
		down := time.Duration(rng.Int64N(int64(plan.downMax)))
		time.Sleep(down)
		downtime += down
		s.start()
		restarts++
	}
	if err := s.waitReady(readyTimeout); err != nil {
		t.Fatal(err)
	}
	rep := sim.wait(t)
	checkSim(t, sim, rep)
	lc := checkLedger(t, s, c)
	lost, doubled := lostDoubled(rep, lc, 0)
	if lost != 0 || doubled != 0 || lc.CustomerBalanceTotal != rep.ExpectedMinor {
		t.Fatalf("after %d kills: lost %d, doubled %d, customer balances %d tiyn, expected %d", kills, lost, doubled,
			lc.CustomerBalanceTotal, rep.ExpectedMinor)
	}
	if kills < plan.kills/2 {
		t.Fatalf("only %d of %d planned kills happened: the load ended too early", kills, plan.kills)
	}
	s.checkNoPanic(t)
	if d, err := s.signal(sigterm); err != nil || s.exitErr() != nil {
		t.Fatalf("final SIGTERM: %v after %s, exit %v", err, d, s.exitErr())
	}
	figures(t, name, "kills_under_load", kills, "kills_at_startup", plan.startupKills, "restarts", restarts+plan.startupKills,
		"downtime", downtime.Round(time.Millisecond), "payments", rep.Payments, "credited", rep.Succeeded,
		"declined", rep.Declined, "callbacks", rep.Callbacks, "retries", rep.Retries,
		"transfers", lc.Transfers, "lost", lost, "doubled", doubled)
}
