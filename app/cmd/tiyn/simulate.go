package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/tools/platformsim"
)

func init() {
	registerCommand("simulate", Command{
		Summary: "play the Monetix platform against a running tiyn and check every balance",
		Run:     runSimulate,
	})
}

// Settings only `tiyn simulate` reads. Without them it falls back on the
// settings `tiyn serve` reads (TIYN_LISTEN, TIYN_API_TOKENS[_FILE],
// TIYN_MONETIX_PROJECTS[_FILE]), so running it with the same environment
// as the server just works.
const (
	envSimulateToken   = "TIYN_SIMULATE_TOKEN"
	envSimulateProject = "TIYN_SIMULATE_PROJECT"
	envSimulateSecret  = "TIYN_SIMULATE_SECRET"
)

// Defaults of `tiyn simulate`: a short demo that exercises every case.
const (
	simDefaultCustomers   = 20
	simDefaultPayments    = 1000
	simDefaultConcurrency = 8
)

var simulateSpec = cmdSpec{
	Name: "simulate",
	Args: "[flags]",
	Description: "Plays the Monetix platform against a running tiyn (loopback only): opens --customers accounts through\n" +
		"the REST API, sends signed verify → check_deposit → callback sequences from --concurrency workers, with\n" +
		"declined, late, intermediate, replayed and concurrently duplicated callbacks, then reads every balance back\n" +
		"and compares it with the expected one. Prints throughput, latency percentiles, mismatches and errors.\n\n" +
		"Credentials: --token, else " + envSimulateToken + ", else the first write token of " + envTokens + "[_FILE].\n" +
		"Project: --project/--secret, else " + envSimulateProject + "/" + envSimulateSecret + ", else the first entry of\n" +
		envProjects + "[_FILE]; amounts lie within that project's own min/max there, else kassa24's 1.00–500000.00 KZT.\n" +
		"URL: --url, else http:// + " + envListen + ", else " + platformsim.DefaultBaseURL + ".\n\n" +
		"--mode callbacks opens every deposit first and times only the callbacks (crediting in isolation).\n" +
		"--platform retries like the platform (every non-200 callback, and failed requests) so a restart is survived.\n\n" +
		"--gate-listen ADDR makes it the platform's Gate too (loopback; repeat it for one listener per tiyn serve\n" +
		"instance): it serves POST /v2/payment/status about every payment it made, signed with the project's key —\n" +
		"point TIYN_MONETIX_GATE_URL at http://ADDR — and reports the peak request rate per listener (1 s windows).\n" +
		"--drop-callbacks FRACTION never delivers the callbacks of that fraction of payments; the Gate still answers\n" +
		"their status truthfully, and at the end the run waits up to --recovery-timeout for tiyn's status poller to\n" +
		"settle each as the platform did (read through the REST API). A payment not settled by then fails the run.\n\n" +
		"Reconciliation: with " + envDataToken + " and " + envDataSecret + " (or their _FILE) set, each --gate-listen\n" +
		"address serves the platform's Data API too (POST /v1/operations/get, the default mapping or " + envDataMapping + ")\n" +
		"from the same record — point TIYN_MONETIX_DATA_URL at http://ADDR. --report-csv FILE writes the CSV report of\n" +
		"the run's business day (" + envBusinessTZ + ", default Asia/Almaty) at the end. --recon-faults injects 2–3 payments\n" +
		"of every class of break into the platform's record (needs --payments >= 100) and prints them per class.\n" +
		"--serve-for DURATION keeps the Gate and the Data API up after the report, until then or an interrupt.\n\n" +
		"Exit status: 0 all balances as expected and nothing unexpected, 1 mismatches or errors, 2 bad usage.",
}

// simFlags are the command line of `tiyn simulate`.
type simFlags struct {
	url, token, secret, mode      string
	project                       int64
	customers, payments, conc     int
	duration, retryFor, timeout   time.Duration
	rate                          float64
	dup, concDup, decline, late   float64
	intermediate, unknown         float64
	platform, jsonOut, noProgress bool
	seed                          int64
	cpuProfile                    string
	gateListen                    listFlag
	dropCallbacks                 float64
	recoveryTimeout               time.Duration
	reportCSV                     string
	reconFaults                   bool
	serveFor                      time.Duration
}

// listFlag is a flag that may be repeated, each value a comma-separated
// list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l = append(*l, part)
		}
	}
	return nil
}

func (f *simFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "url", "", "base URL of the running tiyn (default http://$TIYN_LISTEN or "+platformsim.DefaultBaseURL+")")
	fs.StringVar(&f.token, "token", "", "REST bearer token with the write role (or "+envSimulateToken+")")
	fs.Int64Var(&f.project, "project", 0, "Monetix project id (or "+envSimulateProject+")")
	fs.StringVar(&f.secret, "secret", "", "the project's secret key (or "+envSimulateSecret+"; a flag's value shows in the process list)")
	fs.IntVar(&f.customers, "customers", simDefaultCustomers, "accounts to open")
	fs.IntVar(&f.payments, "payments", simDefaultPayments, "payments to play (with --duration and no --payments: until the time is up)")
	fs.DurationVar(&f.duration, "duration", 0, "stop starting payments after this long (fixed-time benchmark)")
	fs.IntVar(&f.conc, "concurrency", simDefaultConcurrency, "concurrent workers")
	fs.Float64Var(&f.rate, "rate", 0, "at most this many payments per second (0 = as fast as possible)")
	fs.StringVar(&f.mode, "mode", platformsim.ModeFull, "full (verify → check_deposit → callbacks) or callbacks (time the callbacks only)")
	fs.Float64Var(&f.dup, "duplicates", 0.1, "share of payments whose final callback is replayed after its 200")
	fs.Float64Var(&f.concDup, "concurrent-duplicates", 0.05, "share of payments whose final callback is sent twice at once")
	fs.Float64Var(&f.decline, "declines", 0.05, "share of payments declined")
	fs.Float64Var(&f.late, "late-success", 0.02, "share of payments declined, then successful with a new operation (credited)")
	fs.Float64Var(&f.intermediate, "intermediate", 0.05, "share of payments with a \"processing\" callback first")
	fs.Float64Var(&f.unknown, "unknown-verify", 0.02, "share of payments with an extra verify of an unknown customer (expects 404)")
	fs.BoolVar(&f.platform, "platform", false, "retry like the platform: every non-200 callback and failed request, with backoff")
	fs.DurationVar(&f.retryFor, "retry-for", platformsim.DefaultRetryFor, "with --platform, give up on one request after this long")
	fs.DurationVar(&f.timeout, "timeout", platformsim.DefaultRequestTimeout, "timeout of one HTTP request")
	fs.BoolVar(&f.jsonOut, "json", false, "print the report as JSON")
	fs.BoolVar(&f.noProgress, "no-progress", false, "no progress bar (it is drawn only on a terminal anyway)")
	fs.Int64Var(&f.seed, "seed", 1, "seed of the payment plan (customers, amounts, scenarios)")
	fs.Var(&f.gateListen, "gate-listen", "serve the platform's Gate (POST /v2/payment/status) on this loopback address; repeat for one per instance")
	fs.Float64Var(&f.dropCallbacks, "drop-callbacks", 0, "share of payments whose callbacks are never delivered (needs --gate-listen; the poller must recover them)")
	fs.DurationVar(&f.recoveryTimeout, "recovery-timeout", platformsim.DefaultRecoveryTimeout, "how long to wait at the end for tiyn's status poller to settle the dropped payments")
	fs.StringVar(&f.reportCSV, "report-csv", "", "write the CSV report of the run's business day to this file at the end")
	fs.BoolVar(&f.reconFaults, "recon-faults", false, "inject 2–3 payments of every class of reconciliation break into the platform's record")
	fs.DurationVar(&f.serveFor, "serve-for", 0, "keep serving the Gate and the Data API this long after the run (needs --gate-listen)")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write the simulator's own CPU profile to this file (what the load generator costs)")
}

func runSimulate(ctx context.Context, m *Main, args []string) error {
	var f simFlags
	fs := m.FlagSet("simulate")
	f.define(fs)
	_, pos, err := m.LoadConfig(fs, simulateSpec, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("simulate takes no arguments, got %q (see tiyn simulate --help)", pos)
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })

	cfg, err := f.config(m, set)
	if err != nil {
		return err
	}
	if !f.noProgress && isTerminal(m.Stderr) {
		cfg.Progress = m.Stderr
	}
	if cfg.GateListeners, err = listenGates(f.gateListen); err != nil {
		return err
	}

	if f.cpuProfile != "" {
		stop, err := startCPUProfile(f.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	var printed bool
	var printErr error
	cfg.Served = func(r platformsim.Report) {
		printed, printErr = true, printReport(m.Stdout, r, f.jsonOut)
		fmt.Fprintf(m.Stderr, "serving the Gate and the Data API on %s for %s (until interrupted)\n", f.gateListen.String(), f.serveFor)
	}
	report, runErr := platformsim.Run(ctx, cfg)
	switch {
	case errors.Is(runErr, platformsim.ErrConfig):
		return usagef("%v", strings.TrimPrefix(runErr.Error(), "platformsim: invalid config: "))
	case errors.Is(runErr, platformsim.ErrSetup):
		return runErr
	}
	if !printed {
		printErr = printReport(m.Stdout, report, f.jsonOut)
	}
	if printErr != nil {
		return printErr
	}
	switch {
	case runErr != nil:
		return fmt.Errorf("simulation interrupted: %w", runErr)
	case !report.OK():
		return fmt.Errorf("simulation found %d balance mismatches, %d errors and %d lost payments", len(report.Mismatches), report.Errors, report.Lost)
	}
	return nil
}

// listenGates opens a listener on each --gate-listen address: loopback
// only (a host name other than localhost is refused, not resolved).
func listenGates(addrs []string) ([]net.Listener, error) {
	var lns []net.Listener
	fail := func(err error) ([]net.Listener, error) {
		for _, ln := range lns {
			_ = ln.Close()
		}
		return nil, err
	}
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return fail(usagef("--gate-listen %q: %v", a, err))
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fail(usagef("--gate-listen %q: the Gate listens on loopback only (127.0.0.1, ::1 or localhost)", a))
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return fail(fmt.Errorf("--gate-listen: %w", err))
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func printReport(w io.Writer, r platformsim.Report, asJSON bool) error {
	if !asJSON {
		return r.WriteText(w)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// config turns the flags and the environment into a platformsim.Config.
// set names the flags given on the command line.
func (f *simFlags) config(m *Main, set map[string]bool) (platformsim.Config, error) {
	cfg := platformsim.Config{
		Customers: f.customers, Payments: f.payments, Duration: f.duration, Concurrency: f.conc, Rate: f.rate,
		Mode: f.mode, DuplicateShare: f.dup, ConcurrentDupShare: f.concDup, DeclineShare: f.decline,
		LateSuccessShare: f.late, IntermediateShare: f.intermediate, UnknownVerifyShare: f.unknown,
		Platform: f.platform, RetryFor: f.retryFor, RequestTimeout: f.timeout, Seed: f.seed,
		DropShare: f.dropCallbacks, RecoveryTimeout: f.recoveryTimeout,
		ReportCSV: f.reportCSV, ReconFaults: f.reconFaults, ServeFor: f.serveFor,
	}
	if f.duration > 0 && !set["payments"] {
		cfg.Payments = 0 // a fixed-time run: until the duration is up
	}
	if f.conc <= 0 || f.timeout <= 0 || f.retryFor <= 0 || f.recoveryTimeout <= 0 {
		return cfg, usagef("--concurrency, --timeout, --retry-for and --recovery-timeout must be positive")
	}

	env := func(k string) string {
		v, _ := m.LookupEnv(k)
		return strings.TrimSpace(v)
	}
	var err error
	if cfg.BaseURL, err = simulateURL(f.url, env(envListen)); err != nil {
		return cfg, err
	}
	if cfg.APIToken, err = simulateToken(f.token, env); err != nil {
		return cfg, err
	}
	var secret string
	var limits *domain.AmountLimits
	if cfg.ProjectID, secret, limits, err = simulateProject(f.project, f.secret, env); err != nil {
		return cfg, err
	}
	cfg.Secret = []byte(secret)
	if err := simulateRecon(&cfg, env); err != nil {
		return cfg, err
	}
	if limits != nil {
		// Draw within the project's own limits: Tiyn refuses the others.
		cfg.AmountMinMinor, cfg.AmountMaxMinor = limits.MinMinor, limits.MaxMinor
	}
	return cfg, nil
}

// simulateRecon reads what the platform's side of a reconciliation needs
// from the settings serve reads: the business zone (TIYN_BUSINESS_TZ), and
// the Data API's token, secret and mapping (TIYN_MONETIX_DATA_TOKEN,
// _SECRET, each with _FILE, and _MAPPING) — the Data API is served only
// when the token and secret are both set.
func simulateRecon(cfg *platformsim.Config, env func(string) string) error {
	zone, err := domain.LoadBusinessZone(env(envBusinessTZ))
	if err != nil {
		return usagef("%s: %v", envBusinessTZ, err)
	}
	cfg.BusinessZone = zone
	token, _, _, err := inlineOrFile(env, envDataToken, envDataTokenFile)
	if err != nil {
		return err
	}
	secret, _, _, err := inlineOrFile(env, envDataSecret, envDataSecretFile)
	if err != nil {
		return err
	}
	token, secret = strings.TrimSpace(token), strings.TrimSpace(secret)
	if token == "" || secret == "" {
		return nil
	}
	mapping, err := monetix.ParseDataMapping(env(envDataMapping))
	if err != nil {
		return usagef("%s: %v", envDataMapping, err)
	}
	cfg.DataToken, cfg.DataSecret, cfg.DataMapping = token, []byte(secret), mapping
	return nil
}

// simulateURL picks the base URL: --url, else the address serve listens
// on (a wildcard host becomes 127.0.0.1), else the default.
func simulateURL(flagURL, listen string) (string, error) {
	if flagURL != "" {
		return flagURL, nil
	}
	if listen == "" {
		return platformsim.DefaultBaseURL, nil
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil || port == "0" || port == "" {
		return "", usagef("%s=%q gives no address to simulate against: pass --url", envListen, listen)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// simulateToken picks the REST token: --token, TIYN_SIMULATE_TOKEN, or the
// first write token of TIYN_API_TOKENS (or its _FILE).
func simulateToken(flagToken string, env func(string) string) (string, error) {
	if flagToken != "" {
		return flagToken, nil
	}
	if v := env(envSimulateToken); v != "" {
		return v, nil
	}
	raw, from, _, err := inlineOrFile(env, envTokens, envTokensFile)
	if err != nil {
		return "", err
	}
	if raw != "" {
		toks, err := rest.ParseTokens(raw)
		if err != nil {
			return "", usagef("%s: %s", from, redact(err.Error(), raw))
		}
		for _, t := range toks {
			if t.Role.Allows(rest.RoleWrite) {
				return t.Secret, nil
			}
		}
		return "", usagef("%s has no write token; simulate opens accounts and needs one (or pass --token)", from)
	}
	return "", usagef("no REST token: pass --token, or set %s or %s (NAME:write:TOKEN)", envSimulateToken, envTokens)
}

// simulateProject picks the Monetix project: --project/--secret,
// TIYN_SIMULATE_PROJECT/SECRET, or the first entry of TIYN_MONETIX_PROJECTS
// (or its _FILE). An id given without a secret is looked up there. The
// project's own limits, when the projects list gives it some, come back
// too: the amounts drawn must lie within them.
func simulateProject(flagID int64, flagSecret string, env func(string) string) (int64, string, *domain.AmountLimits, error) {
	id, secret := flagID, flagSecret
	if id == 0 {
		if v := env(envSimulateProject); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return 0, "", nil, usagef("%s=%q is not a positive project id", envSimulateProject, v)
			}
			id = n
		}
	}
	if secret == "" {
		secret = env(envSimulateSecret)
	}
	raw, from, path, err := inlineOrFile(env, envProjects, envProjectsFile)
	if id != 0 && secret != "" {
		// Both given: the projects list, if there is a readable one, only
		// says whether this project has limits of its own.
		if err == nil && raw != "" {
			if projects, err := parseProjects(raw, path); err == nil {
				for _, p := range projects {
					if p.ID == strconv.FormatInt(id, 10) {
						return id, secret, p.Limits, nil
					}
				}
			}
		}
		return id, secret, nil, nil
	}
	if err != nil {
		return 0, "", nil, err
	}
	if raw == "" {
		return 0, "", nil, usagef("no Monetix project: pass --project and --secret, or set %s and %s, or %s (ID=SECRET)",
			envSimulateProject, envSimulateSecret, envProjects)
	}
	projects, err := parseProjects(raw, path)
	if err != nil {
		return 0, "", nil, usagef("%s: %s", from, redact(err.Error(), raw))
	}
	p := projects[0]
	if id != 0 {
		want := strconv.FormatInt(id, 10)
		found := false
		for _, q := range projects {
			if q.ID == want {
				p, found = q, true
				break
			}
		}
		if !found {
			return 0, "", nil, usagef("project %s is not in %s: pass --secret", want, from)
		}
	}
	n, err := strconv.ParseInt(p.ID, 10, 64)
	if err != nil {
		return 0, "", nil, usagef("%s: project id %s does not fit an int64", from, p.ID)
	}
	if secret == "" {
		secret = string(p.Secret)
	}
	return n, secret, p.Limits, nil
}

// inlineOrFile reads a secret setting given inline or as a file (X_FILE),
// like serve does; both at once is refused. path is the file's, when the
// value came from one.
func inlineOrFile(env func(string) string, inline, file string) (raw, from, path string, err error) {
	v, p := env(inline), env(file)
	switch {
	case v != "" && p != "":
		return "", "", "", usagef("%s and %s are both set: set one", inline, file)
	case v != "":
		return v, inline, "", nil
	case p != "":
		b, err := readSecretFile(p)
		if err != nil {
			return "", "", "", usagef("%s: %v", file, err)
		}
		return b, file, p, nil
	}
	return "", "", "", nil
}

// isTerminal reports whether w is a terminal (the progress bar and bold
// text are for people, not for files and pipes).
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// startCPUProfile profiles this process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}
