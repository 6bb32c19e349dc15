package property_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/tests/pgtest"
	"github.com/tiyn/tiyn/tests/testkit"
)

// testCurrency is a second currency, registered only here, so a callback
// can claim a currency Tiyn knows but the deposit was not made in.
const testCurrency = "XTS"

func init() { domain.MustRegisterCurrency(testCurrency, 2) }

// counts accumulates over every check of every test in the binary.
var counts = &actionCounts{n: map[string]int{}}

// TestMain prints how many times each action really ran, so a harness
// that skips everything cannot be mistaken for one that passes; and with
// TIYN_PROP_MIN_ACTIONS=N (make test-prop sets it) it fails the run when
// any action kind ran fewer than N times, so a silently skipped action
// cannot pass a long run either.
// businessZone is the instances' business time zone: one where it was
// noon when the run started (testkit.NoonZone), so no check sees the
// business day change under its reconciliation book (a run is bounded by
// its -timeout, an hour at most).
var businessZone *time.Location

func TestMain(m *testing.M) {
	flag.Parse()
	var err error
	if _, businessZone, err = testkit.NoonZone(time.Now()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// 30 steps (rapid's default) rarely gets past opening accounts to
	// debits and resolutions; 60 does, at twice the cost per check.
	stepsSet := false
	flag.Visit(func(f *flag.Flag) { stepsSet = stepsSet || f.Name == "rapid.steps" })
	if !stepsSet {
		_ = flag.Set("rapid.steps", "60")
	}
	code := m.Run()
	if os.Getenv("TIYN_PROP_REPORT") != "" || testing.Verbose() {
		fmt.Printf("rapid state machine: actions exercised (all checks, all stores)\n%s", counts)
	}
	if v := os.Getenv("TIYN_PROP_MIN_ACTIONS"); v != "" && code == 0 {
		minimum, err := strconv.Atoi(v)
		if err != nil {
			fmt.Fprintf(os.Stderr, "TIYN_PROP_MIN_ACTIONS=%q is not a number\n", v)
			os.Exit(2)
		}
		if short := counts.below(minimum, allActions); len(short) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: actions that ran fewer than %d times: %v\n", minimum, short)
			code = 1
		}
	}
	os.Exit(code)
}

// opSeq numbers platform operations uniquely across checks sharing a database.
var opSeq atomic.Int64

func init() { opSeq.Store(time.Now().UnixMilli() * 1000) }

var checkSeq atomic.Int64

// runMachine runs one check over instances serving stores (several
// instances on one database stand for several tiyn processes). Whether
// operator credits need four eyes is drawn per check.
func runMachine(t *rapid.T, stores []*sqlstore.Store) {
	fourEyes := rapid.Bool().Draw(t, "four eyes")
	var instances []*instance
	for _, st := range stores {
		in, err := newInstance(st, fourEyes)
		if err != nil {
			t.Fatal(err)
		}
		instances = append(instances, in)
	}
	s := &machine{
		instances: instances,
		fourEyes:  fourEyes,
		m:         newModel(),
		tag:       fmt.Sprintf("p%d-%d", time.Now().UnixNano()%1_000_000_007, checkSeq.Add(1)),
		ops:       &opSeq,
		counts:    counts,
	}
	s.init(t)
	s.attachPollers(t)
	t.Repeat(s.actions())
}

// TestMachineSQLite runs the machine on a fresh SQLite file per check, with
// group commit (the path production takes).
func TestMachineSQLite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rapid.Check(t, func(rt *rapid.T) {
		store := testkit.OpenSQLiteFile(rt, filepath.Join(dir, fmt.Sprintf("check-%d.db", checkSeq.Load()+1)), sqlstore.Options{GroupCommit: true})
		runMachine(rt, []*sqlstore.Store{store})
	})
}

// TestMachinePostgres runs the machine on two instances (two pools, group
// commit on both) sharing one PostgreSQL database; each action goes to
// either at random and bursts are split between them. Checks share a
// database and are kept apart by fresh ids; every checksPerDatabase checks
// the pair moves to a fresh database, because some invariants (the ledger
// check) read whole tables and a long run would otherwise grow quadratic.
func TestMachinePostgres(t *testing.T) {
	t.Parallel()
	const checksPerDatabase = 50
	ctx := context.Background()
	var (
		stores []*sqlstore.Store
		checks int
	)
	closeAll := func() {
		for _, st := range stores {
			_ = st.Close()
		}
		stores = nil
	}
	fresh := func() {
		closeAll()
		url := pgtest.URL(t)
		for range 2 {
			store, err := sqlstore.Open(ctx, sqlstore.Options{URL: url, GroupCommit: true, MaxOpenConns: 8})
			if err != nil {
				t.Fatal(err)
			}
			// Registered after pgtest's own cleanup, so it runs first: the
			// pool must be closed before the database is dropped.
			t.Cleanup(func() { _ = store.Close() })
			stores = append(stores, store)
		}
	}
	rapid.Check(t, func(rt *rapid.T) {
		if checks%checksPerDatabase == 0 {
			fresh()
		}
		checks++
		runMachine(rt, stores)
	})
}
