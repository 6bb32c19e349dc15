package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/adapters/server"
	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/app"
)

// Limits of the settings: anything outside is a typo, not a choice.
const (
	// MaxShutdownTimeout: an orchestrator kills a process long before this.
	MaxShutdownTimeout = 10 * time.Minute
	// MaxDBConns: far beyond what one instance can use on any database.
	MaxDBConns = 1000
	// MaxGroupCommitBatch: a bigger transaction holds its locks too long.
	MaxGroupCommitBatch = 4096
	// MaxGroupCommitWait: every write waits this long at worst; above a
	// second it is a misconfiguration.
	MaxGroupCommitWait = time.Second
	// MaxGroupCommitPartitions: each partition holds up to two
	// connections; more executors than this only queue for the database.
	MaxGroupCommitPartitions = 64
	// MaxGateTimeout: a status request that takes longer is not coming.
	MaxGateTimeout = 5 * time.Minute
	// MaxPendingExpiry: a year; the platform's own threshold is 36 days.
	MaxPendingExpiry = 8760 * time.Hour
	// MaxSecretFileBytes bounds a …_FILE: a token or project list is a few
	// kilobytes; a bigger file is the wrong file.
	MaxSecretFileBytes = 1 << 20
)

// settingGroup selects the settings a command reads: `account show` needs
// the database but not the listen address or any secret.
type settingGroup uint8

const (
	groupDB settingGroup = 1 << iota
	groupLog
	groupServe
	// groupMonetix: the Monetix projects (their secrets sign and verify).
	groupMonetix
	// groupPoll: the Gate and the status poller.
	groupPoll
	// groupData: the Monetix Data API (datasettings.go).
	groupData
	// groupBooks: the business day (books.go).
	groupBooks
)

// setting is one configuration knob, read from its environment variable
// and its flag (the flag wins). The same table drives parsing, validation
// and `--help`, so they cannot disagree.
type setting struct {
	Env     string
	Flag    string
	Metavar string
	Default string
	Usage   string
	Group   settingGroup
	Bool    bool
	// Pair names the settings that are two forms of one secret (X and
	// X_FILE): a flag for either hides the environment for both. Paired
	// settings have no apply: resolveSecrets reads them last.
	Pair  string
	apply func(c *Config, v string) error
}

// Config is everything a command may need, validated.
type Config struct {
	Listen          string
	DatabaseURL     string
	LogLevel        slog.Level
	LogFormat       string
	ShutdownTimeout time.Duration
	// MetricsListen serves every metric, the business figures included
	// (empty: not served); PprofListen serves /debug/pprof on loopback
	// (empty: not served).
	MetricsListen string
	PprofListen   string
	// TLSCertFile and TLSKeyFile make the main listener speak HTTPS (both
	// or neither).
	TLSCertFile string
	TLSKeyFile  string
	// FourEyes makes operator credits proposals another operator approves.
	FourEyes bool
	// The Gate (the platform's payment status) and the status poller.
	GateURL               string
	GateURLSet            bool // set explicitly (a demo polls only then)
	GateTimeout           time.Duration
	GateRequireSignature  bool
	StatusPoll            bool
	StatusPollAfter       time.Duration
	StatusPollRate        float64
	StatusPollConcurrency int
	PendingExpiry         time.Duration
	// Data is the Monetix Data API (groupData).
	Data dataSettings
	// BusinessZone is the time zone of business days (groupBooks; nil
	// when the command does not read it: the default).
	BusinessZone *time.Location

	DBMaxConns          int
	GroupCommit         bool
	GroupCommitMaxBatch int
	// GroupCommitPartitions is how many batches execute side by side on
	// PostgreSQL.
	GroupCommitPartitions int
	GroupCommitWait       time.Duration
	PGDriver              string

	// APITokens and MonetixProjects hold secrets: never log them whole
	// (their String methods redact; log names and ids).
	APITokens       []rest.Token
	MonetixProjects []monetix.Project
	// …From says which setting they came from, for the start-up log.
	APITokensFrom       string
	MonetixProjectsFrom string
	// DatabaseURLFrom names the setting of DatabaseURL (which may hold a
	// password: log it through sqlstore.RedactURL only).
	DatabaseURLFrom string

	secrets map[string]sourced // raw secret inputs by env name, parsed last
}

// sourced is a raw value and the name of where it came from ("TIYN_X" or
// "--x"), which every error message starts with. set is false for a
// default.
type sourced struct {
	value string
	from  string
	set   bool
}

// StoreOptions turns the database settings into sqlstore's.
func (c Config) StoreOptions() sqlstore.Options {
	return sqlstore.Options{
		URL:          c.DatabaseURL,
		PGDriver:     c.PGDriver,
		MaxOpenConns: c.DBMaxConns,
		GroupCommit:  c.GroupCommit,
		BatchMax:     c.GroupCommitMaxBatch,
		BatchWait:    c.GroupCommitWait,
		Partitions:   c.GroupCommitPartitions,
	}
}

// Names of the settings other code refers to.
const (
	envListen          = "TIYN_LISTEN"
	envDatabaseURL     = "TIYN_DATABASE_URL"
	envDatabaseURLFile = "TIYN_DATABASE_URL_FILE"
	envProjects        = "TIYN_MONETIX_PROJECTS"
	envProjectsFile    = "TIYN_MONETIX_PROJECTS_FILE"
	envTokens          = "TIYN_API_TOKENS"
	envTokensFile      = "TIYN_API_TOKENS_FILE"
	envFourEyes        = "TIYN_FOUR_EYES"
	envTLSCert         = "TIYN_TLS_CERT_FILE"
	envTLSKey          = "TIYN_TLS_KEY_FILE"
	envMetricsListen   = "TIYN_METRICS_LISTEN"
	envPprofListen     = "TIYN_PPROF_LISTEN"
	envGateURL         = "TIYN_MONETIX_GATE_URL"
	envGateTimeout     = "TIYN_MONETIX_GATE_TIMEOUT"
	envGateSigned      = "TIYN_MONETIX_GATE_REQUIRE_SIGNATURE"
	envStatusPoll      = "TIYN_STATUS_POLL"
	envPollAfter       = "TIYN_STATUS_POLL_AFTER"
	envPollRate        = "TIYN_STATUS_POLL_RATE"
	envPollConcurrency = "TIYN_STATUS_POLL_CONCURRENCY"
	envPendingExpiry   = "TIYN_PENDING_EXPIRY"
	defaultListen      = "127.0.0.1:8080"
	defaultDatabaseURL = "sqlite:tiyn.db"
	defaultShutdown    = server.DefaultShutdownTimeout
	pairDatabase       = "database"
	pairProjects       = "projects"
	pairTokens         = "tokens"
	secretFlagNote     = " Prefer the _FILE form or the environment: a flag's value shows in the process list."
)

// settings is every setting, in the order --help lists them.
var settings = []setting{
	{Env: envListen, Flag: "listen", Metavar: "HOST:PORT", Default: defaultListen, Group: groupServe,
		Usage: "Address to serve HTTP on (HTTPS with " + envTLSCert + " and " + envTLSKey + "). Port 0 picks a free port. Without credentials configured, only a loopback address is allowed (demo setup).",
		apply: func(c *Config, v string) error { c.Listen = v; return validateListen(v) }},
	{Env: envDatabaseURL, Flag: "database-url", Metavar: "URL", Default: defaultDatabaseURL, Group: groupDB, Pair: pairDatabase,
		Usage: "Database: postgres://USER[:PASSWORD]@HOST/DB?… for PostgreSQL, or sqlite:PATH for an embedded SQLite file. " +
			"Logs and errors show it with the password and every query parameter whose name contains pass, secret, token or key " +
			"as xxxxx." + secretFlagNote},
	{Env: envDatabaseURLFile, Flag: "database-url-file", Metavar: "PATH", Group: groupDB, Pair: pairDatabase,
		Usage: "File holding the database URL (surrounding whitespace ignored), instead of " + envDatabaseURL + "."},
	{Env: envProjects, Flag: "monetix-projects", Metavar: "ID=SECRET,…", Group: groupMonetix, Pair: pairProjects,
		Usage: "Monetix projects and their secret keys: ID=SECRET[;min=1.00;max=200000.00;sign_answers=true][,ID=SECRET…]. " +
			"min and max are KZT and may only narrow the kassa24 limits 1.00–500000.00 KZT. SECRET is percent-decoded: " +
			"write ',' as %2C, ';' as %3B, '%' as %25, a space at either end as %20 (any byte as %XX); a '%' not followed " +
			"by two hex digits is refused." + secretFlagNote},
	{Env: envProjectsFile, Flag: "monetix-projects-file", Metavar: "PATH", Group: groupMonetix, Pair: pairProjects,
		Usage: "File with the Monetix projects. TOML when the name ends in .toml or the first line that is not blank or a # comment " +
			"starts with '[': [[project]] tables with id, secret, min, max, sign_answers, the secret taken verbatim. " +
			"Otherwise the form of " + envProjects + ", one entry per line (# comments allowed)."},
	{Env: envTokens, Flag: "api-tokens", Metavar: "NAME:ROLE:TOKEN,…", Group: groupServe, Pair: pairTokens,
		Usage: "REST API bearer tokens. ROLE read (GET only), write (the back office: + open accounts, debits) or " +
			"operator (+ resolve exceptions, block/unblock/close accounts, reconcile, close days)." + secretFlagNote},
	{Env: envTokensFile, Flag: "api-tokens-file", Metavar: "PATH", Group: groupServe, Pair: pairTokens,
		Usage: "File with the REST API tokens, one NAME:ROLE:TOKEN per line (# comments allowed)."},
	{Env: envFourEyes, Flag: "four-eyes", Metavar: "BOOL", Default: "false", Group: groupServe, Bool: true,
		Usage: "Four eyes on operator credits: a credit resolution of an exception is only proposed (HTTP 202, state proposed) " +
			"and moves money when another operator approves it (POST /v1/exceptions/{id}/approve). Dismissals need one operator.",
		apply: func(c *Config, v string) (err error) { c.FourEyes, err = parseBool(v); return err }},
	{Env: envGateURL, Flag: "monetix-gate-url", Metavar: "URL", Default: monetix.DefaultGateURL, Group: groupPoll,
		Usage: "Base URL of the Monetix Gate, asked for the status of payments that stay pending (POST …" + monetix.GateStatusPath +
			"). HTTPS only, except on a loopback host (tiyn simulate --platform serves one). The default is the production " +
			"host the vendor's public SDKs use.",
		apply: func(c *Config, v string) error {
			c.GateURL = v
			_, err := monetix.NewGate(monetix.GateConfig{URL: v, Projects: []monetix.Project{{ID: "1", Secret: []byte("x")}}})
			return err
		}},
	{Env: envGateTimeout, Flag: "monetix-gate-timeout", Metavar: "DURATION", Default: monetix.DefaultGateTimeout.String(), Group: groupPoll,
		Usage: "Longest one Gate status request may take, connection to last byte; past it the check counts as no answer " +
			"(timeout) and is asked again later. The vendor documents no timeout: this is Tiyn's choice.",
		apply: func(c *Config, v string) (err error) {
			c.GateTimeout, err = parseDuration(v, 100*time.Millisecond, MaxGateTimeout)
			return err
		}},
	{Env: envGateSigned, Flag: "monetix-gate-require-signature", Metavar: "BOOL", Default: "false", Group: groupPoll, Bool: true,
		Usage: "Refuse Gate status answers that carry no signature. Whether the Gate signs every answer is not documented: " +
			"by default a signature is verified when present (a wrong one is never an answer) and an answer without one is accepted.",
		apply: func(c *Config, v string) (err error) { c.GateRequireSignature, err = parseBool(v); return err }},
	{Env: envStatusPoll, Flag: "status-poll", Metavar: "BOOL", Default: "true", Group: groupPoll, Bool: true,
		Usage: "Ask the Gate about deposits that stay pending, and apply the expiry (tiyn serve). A demo setup polls only with " +
			envGateURL + " set.",
		apply: func(c *Config, v string) (err error) { c.StatusPoll, err = parseBool(v); return err }},
	{Env: envPollAfter, Flag: "status-poll-after", Metavar: "DURATION", Default: app.DefaultStatusPollAfter.String(), Group: groupPoll,
		Usage: "A deposit pending this long is asked about, then again after 15m, 1h, 4h and every 12h while it stays pending. " +
			"At least " + app.MinStatusPollAfter.String() + ".",
		apply: func(c *Config, v string) (err error) {
			c.StatusPollAfter, err = parseDuration(v, app.MinStatusPollAfter, MaxPendingExpiry)
			return err
		}},
	{Env: envPollRate, Flag: "status-poll-rate", Metavar: "PER_SECOND", Default: strconv.FormatFloat(app.DefaultStatusPollRate, 'f', -1, 64), Group: groupPoll,
		Usage: "Most Gate status requests per second this instance makes, evenly spaced (e.g. 0.5, 5, 20). Each instance keeps its own rate.",
		apply: func(c *Config, v string) (err error) {
			c.StatusPollRate, err = parseFloat(v, 0.01, app.MaxStatusPollRate)
			return err
		}},
	{Env: envPollConcurrency, Flag: "status-poll-concurrency", Metavar: "N", Default: strconv.Itoa(app.DefaultPollConcurrency), Group: groupPoll,
		Usage: "Most Gate status requests in flight at once.",
		apply: func(c *Config, v string) (err error) { c.StatusPollConcurrency, err = parseInt(v, 1, 64); return err }},
	{Env: envPendingExpiry, Flag: "pending-expiry", Metavar: "DURATION", Default: app.DefaultPendingExpiry.String(), Group: groupPoll,
		Usage: "A deposit still pending this long expires when the Gate's latest answer about it was a decline or not final " +
			"(a late success still credits it); one the Gate never answered about is raised as a status_unknown exception " +
			"instead. The default is Kassa24's threshold, 36 days (864h), after which the platform declines a payment itself. " +
			"Longer than " + envPollAfter + ".",
		apply: func(c *Config, v string) (err error) {
			c.PendingExpiry, err = parseDuration(v, time.Minute, MaxPendingExpiry)
			return err
		}},
	{Env: "TIYN_LOG_LEVEL", Flag: "log-level", Metavar: "LEVEL", Default: "info", Group: groupLog,
		Usage: "Least level logged: debug, info, warn or error.",
		apply: func(c *Config, v string) error {
			if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
				return fmt.Errorf("%q is not one of debug, info, warn, error", v)
			}
			return nil
		}},
	{Env: "TIYN_LOG_FORMAT", Flag: "log-format", Metavar: "FORMAT", Default: server.LogFormatAuto, Group: groupLog,
		Usage: "Log format: json, text, or auto (text on a terminal, JSON otherwise).",
		apply: func(c *Config, v string) error {
			c.LogFormat = v
			if server.ValidateLogFormat(v) != nil {
				return fmt.Errorf("%q is not one of auto, json, text", v)
			}
			return nil
		}},
	{Env: "TIYN_SHUTDOWN_TIMEOUT", Flag: "shutdown-timeout", Metavar: "DURATION", Default: defaultShutdown.String(), Group: groupServe,
		Usage: "How long a graceful shutdown waits for requests in flight (SIGTERM, SIGINT).",
		apply: func(c *Config, v string) (err error) {
			c.ShutdownTimeout, err = parseDuration(v, time.Millisecond, MaxShutdownTimeout)
			return err
		}},
	{Env: envTLSCert, Flag: "tls-cert-file", Metavar: "PATH", Group: groupServe,
		Usage: "PEM certificate (chain) to serve HTTPS with, TLS 1.2 or later; with " + envTLSKey + ", both or neither. " +
			"Without them Tiyn speaks plain HTTP: off loopback put a TLS proxy in front, or bearer tokens travel in clear text.",
		apply: func(c *Config, v string) error { c.TLSCertFile = v; return nil }},
	{Env: envTLSKey, Flag: "tls-key-file", Metavar: "PATH", Group: groupServe,
		Usage: "PEM private key of " + envTLSCert + ".",
		apply: func(c *Config, v string) error { c.TLSKeyFile = v; return nil }},
	{Env: envMetricsListen, Flag: "metrics-listen", Metavar: "HOST:PORT", Group: groupServe,
		Usage: "Address of a listener of its own serving GET /metrics with every metric, the ledger's business figures " +
			"included (credited sums, Monetix counters, open exceptions). No authentication: bind it to loopback or a " +
			"private interface only the monitoring system reaches. The main listener's /metrics has process, Go, HTTP and " +
			"database-pool metrics only. Unset: not served.",
		apply: func(c *Config, v string) error {
			c.MetricsListen = v
			if v == "" {
				return nil
			}
			return validateListen(v)
		}},
	{Env: envPprofListen, Flag: "pprof-listen", Metavar: "HOST:PORT", Group: groupServe,
		Usage: "Loopback address of a listener of its own serving /debug/pprof/* (profiling; /debug/pprof/cmdline is never " +
			"served). Only 127.0.0.0/8, [::1] or localhost is accepted. Unset: not served.",
		apply: func(c *Config, v string) error {
			c.PprofListen = v
			if v == "" {
				return nil
			}
			if err := validateListen(v); err != nil {
				return err
			}
			if !isLoopback(v) {
				return fmt.Errorf("%q is not a loopback address: profiles expose internals, so pprof listens only on "+
					"127.0.0.1, [::1] or localhost (e.g. 127.0.0.1:6060)", v)
			}
			return nil
		}},
	{Env: "TIYN_PPROF", Flag: "pprof", Metavar: "BOOL", Default: "false", Group: groupServe, Bool: true,
		Usage: "Removed: pprof is no longer served on the main listener. true is refused (set " + envPprofListen +
			" instead); false is accepted and does nothing.",
		apply: func(_ *Config, v string) error {
			on, err := parseBool(v)
			if err != nil {
				return err
			}
			if on {
				return fmt.Errorf("is no longer supported: /debug/pprof is not served on the main listener any more; "+
					"set %s to a loopback address (e.g. 127.0.0.1:6060) to serve it on a listener of its own", envPprofListen)
			}
			return nil
		}},
	{Env: "TIYN_DB_MAX_CONNS", Flag: "db-max-conns", Metavar: "N", Default: "0", Group: groupDB,
		Usage: "Database connection pool size; 0 picks the store's default.",
		apply: func(c *Config, v string) (err error) { c.DBMaxConns, err = parseInt(v, 0, MaxDBConns); return err }},
	{Env: "TIYN_GROUP_COMMIT", Flag: "group-commit", Metavar: "BOOL", Default: "true", Group: groupDB, Bool: true,
		Usage: "Let concurrent writes share one database transaction (each still atomic on its own): fewer commits under load.",
		apply: func(c *Config, v string) (err error) { c.GroupCommit, err = parseBool(v); return err }},
	{Env: "TIYN_GROUP_COMMIT_MAX_BATCH", Flag: "group-commit-max-batch", Metavar: "N", Default: strconv.Itoa(sqlstore.DefaultBatchMax), Group: groupDB,
		Usage: "Most writes one group commit may carry.",
		apply: func(c *Config, v string) (err error) {
			c.GroupCommitMaxBatch, err = parseInt(v, 1, MaxGroupCommitBatch)
			return err
		}},
	{Env: "TIYN_GROUP_COMMIT_PARTITIONS", Flag: "group-commit-partitions", Metavar: "N", Default: strconv.Itoa(sqlstore.DefaultPartitions), Group: groupDB,
		Usage: "PostgreSQL: how many group commits execute side by side, each on its own share of the accounts (SQLite has one writer).",
		apply: func(c *Config, v string) (err error) {
			c.GroupCommitPartitions, err = parseInt(v, 1, MaxGroupCommitPartitions)
			return err
		}},
	{Env: "TIYN_GROUP_COMMIT_WAIT", Flag: "group-commit-wait", Metavar: "DURATION", Default: sqlstore.DefaultBatchWait.String(), Group: groupDB,
		Usage: "How long a group commit waits for more writes once it has one (0: only what is already queued).",
		apply: func(c *Config, v string) (err error) {
			c.GroupCommitWait, err = parseDuration(v, 0, MaxGroupCommitWait)
			return err
		}},
	{Env: "TIYN_PG_DRIVER", Flag: "pg-driver", Metavar: "DRIVER", Default: sqlstore.DriverPG, Group: groupDB,
		Usage: "PostgreSQL driver: pgdriver (bun's, fastest here) or pgx.",
		apply: func(c *Config, v string) error {
			c.PGDriver = v
			if v != sqlstore.DriverPG && v != sqlstore.DriverPGX {
				return fmt.Errorf("%q is not one of %s, %s", v, sqlstore.DriverPG, sqlstore.DriverPGX)
			}
			return nil
		}},
}

// cmdSpec describes a command for its --help.
type cmdSpec struct {
	Name        string // "serve", "account open"
	Args        string // "CUSTOMER [flags]"
	Description string
	Groups      settingGroup
}

// LoadConfig defines the settings of spec.Groups as flags on fs, parses
// args and reads the environment: a flag wins over its variable, a
// variable over the default; an empty variable counts as unset. It returns
// the positional arguments, flag.ErrHelp after printing help for --help,
// and otherwise every invalid setting at once, each named, as a usage
// error. Secret values never appear in an error.
func (m *Main) LoadConfig(fs *flag.FlagSet, spec cmdSpec, args []string) (Config, []string, error) {
	flagVals := map[string]string{}
	var own []setting
	for _, s := range settings {
		if s.Group&spec.Groups == 0 {
			continue
		}
		own = append(own, s)
		record := func(v string) error { flagVals[s.Env] = v; return nil }
		if s.Bool {
			fs.BoolFunc(s.Flag, s.Usage, record)
		} else {
			fs.Func(s.Flag, s.Usage, record)
		}
	}
	help := wantsHelp(args)
	fs.SetOutput(io.Discard) // errors are returned; help is printed below
	fs.Usage = func() {}
	pos, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) || help {
		m.printHelp(fs, spec, own)
		return Config{}, nil, flag.ErrHelp
	}
	if err != nil {
		return Config{}, nil, usagef("%v (see tiyn %s --help)", err, spec.Name)
	}

	flagPairs := map[string]bool{}
	for _, s := range own {
		if _, ok := flagVals[s.Env]; ok && s.Pair != "" {
			flagPairs[s.Pair] = true
		}
	}
	var c Config
	var errs []error
	for _, s := range own {
		src := sourced{value: s.Default, from: s.Env}
		if v, ok := m.LookupEnv(s.Env); ok && v != "" && !(s.Pair != "" && flagPairs[s.Pair]) {
			src = sourced{value: v, from: s.Env, set: true}
		}
		if v, ok := flagVals[s.Env]; ok {
			src = sourced{value: v, from: "--" + s.Flag, set: true}
		}
		if s.Pair != "" {
			if c.secrets == nil {
				c.secrets = map[string]sourced{}
			}
			c.secrets[s.Env] = src
			continue
		}
		if err := s.apply(&c, src.value); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", src.from, err))
		}
	}
	if spec.Groups&groupDB != 0 {
		if err := c.resolveDatabaseURL(); err != nil {
			errs = append(errs, err)
		}
	}
	if spec.Groups&(groupServe|groupMonetix) != 0 {
		errs = append(errs, c.resolveSecrets(spec.Groups)...)
	}
	if spec.Groups&groupData != 0 {
		errs = append(errs, c.resolveDataSecrets()...)
	}
	if spec.Groups&groupPoll != 0 {
		if s, ok := m.LookupEnv(envGateURL); (ok && s != "") || flagVals[envGateURL] != "" {
			c.GateURLSet = true
		}
		if c.PendingExpiry <= c.StatusPollAfter {
			errs = append(errs, fmt.Errorf("%s (%s) must be longer than %s (%s)", envPendingExpiry, c.PendingExpiry,
				envPollAfter, c.StatusPollAfter))
		}
	}
	if spec.Groups&groupServe != 0 {
		if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
			errs = append(errs, fmt.Errorf("%s and %s: set both (HTTPS) or neither (plain HTTP)", envTLSCert, envTLSKey))
		}
	}
	c.secrets = nil
	if len(errs) > 0 {
		return Config{}, nil, &usageError{configError(errs)}
	}
	return c, pos, nil
}

// configError is every invalid setting at once, so an operator fixes them
// in one round. Each error starts with the setting's name.
type configError []error

func (e configError) Error() string {
	if len(e) == 1 {
		return e[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d invalid settings:", len(e))
	for _, err := range e {
		b.WriteString("\n  " + err.Error())
	}
	return b.String()
}

// Unwrap gives errors.Is and errors.As every setting's error.
func (e configError) Unwrap() []error { return e }

// resolveDatabaseURL reads the database URL, given inline (or the default)
// or in a file, and checks it. The file's surrounding whitespace (its final
// newline) is not part of the URL. Errors show the URL redacted.
func (c *Config) resolveDatabaseURL() error {
	inline, file := c.secrets[envDatabaseURL], c.secrets[envDatabaseURLFile]
	v, from := inline.value, inline.from
	switch {
	case inline.set && file.value != "":
		return fmt.Errorf("%s and %s are both set: set one", inline.from, file.from)
	case file.value != "":
		b, err := readSecretFile(file.value)
		if err != nil {
			return fmt.Errorf("%s: %w", file.from, err)
		}
		v, from = strings.TrimSpace(b), file.from
		if strings.ContainsAny(v, "\r\n") {
			return fmt.Errorf("%s: %s holds more than one line: give only the URL", file.from, file.value)
		}
		c.DatabaseURLFrom = file.from + "=" + file.value
	default:
		c.DatabaseURLFrom = inline.from
	}
	c.DatabaseURL = v
	if err := validateDatabaseURL(v); err != nil {
		return fmt.Errorf("%s: %s", from, sqlstore.ScrubURLSecrets(err.Error(), v))
	}
	return nil
}

// resolveSecrets reads the token (groupServe) and project (groupMonetix)
// settings, inline or from a file, and parses them with their adapters'
// parsers.
func (c *Config) resolveSecrets(groups settingGroup) []error {
	var errs []error
	raw, from, _, err := c.secretValue(envTokens, envTokensFile)
	if groups&groupServe == 0 {
		raw, err = "", nil
	}
	if err != nil {
		errs = append(errs, err)
	} else if raw != "" {
		toks, err := rest.ParseTokens(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s", from, redact(err.Error(), raw)))
		} else if len(toks) > 0 {
			c.APITokens, c.APITokensFrom = toks, from
		}
	}
	raw, from, path, err := c.secretValue(envProjects, envProjectsFile)
	if groups&groupMonetix == 0 {
		raw, err = "", nil
	}
	if err != nil {
		errs = append(errs, err)
	} else if raw != "" {
		ps, err := parseProjects(raw, path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s", from, redact(err.Error(), raw)))
		} else {
			c.MonetixProjects, c.MonetixProjectsFrom = ps, from
		}
	}
	return errs
}

// parseProjects reads a projects setting: the text of TIYN_MONETIX_PROJECTS,
// or, when path is set, the contents of the TIYN_MONETIX_PROJECTS_FILE file
// at path (TOML or the line form, see monetix.ParseProjectsFile). They are
// checked against the methods served (monetix.Config.Validate: a project's
// own limits may only narrow kassa24's), so a bad configuration stops
// `tiyn serve` before it opens anything.
func parseProjects(raw, path string) ([]monetix.Project, error) {
	var ps []monetix.Project
	var err error
	if path != "" {
		ps, err = monetix.ParseProjectsFile(path, []byte(raw))
	} else {
		ps, err = monetix.ParseProjects(raw)
	}
	if err != nil {
		return nil, err
	}
	if err := (monetix.Config{Projects: ps}).Validate(); err != nil {
		return nil, err
	}
	return ps, nil
}

// secretValue returns the value of a secret given inline or in a file, the
// name of the setting it came from, and the file's path when it came from
// one. Both at once is an error: which one would win is not obvious to
// whoever reads the deployment.
func (c *Config) secretValue(valueEnv, fileEnv string) (raw, from, path string, err error) {
	inline, file := c.secrets[valueEnv], c.secrets[fileEnv]
	switch {
	case inline.value != "" && file.value != "":
		return "", "", "", fmt.Errorf("%s and %s are both set: set one", inline.from, file.from)
	case inline.value != "":
		return inline.value, inline.from, "", nil
	case file.value != "":
		b, err := readSecretFile(file.value)
		if err != nil {
			return "", "", "", fmt.Errorf("%s: %w", file.from, err)
		}
		return b, file.from + "=" + file.value, file.value, nil
	}
	return "", "", "", nil
}

func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, MaxSecretFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > MaxSecretFileBytes {
		return "", fmt.Errorf("%s is larger than %d bytes", path, MaxSecretFileBytes)
	}
	if strings.TrimSpace(string(b)) == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return string(b), nil
}

// minRedactLen: shorter pieces are not worth hiding (and would blank out
// ordinary words of an error message).
const minRedactLen = 8

// tomlOptionKeys are the keys of a TOML projects file whose values are not
// secrets (and are worth showing in an error).
var tomlOptionKeys = map[string]bool{"id": true, "min": true, "max": true, "sign_answers": true}

// redact removes from msg every secret-looking piece of raw (the part after
// the last ':' of a token entry, after the first '=' of a project entry up
// to its options). The parsers promise not to echo secrets; this keeps the
// promise even if one slips.
func redact(msg, raw string) string {
	for _, entry := range strings.FieldsFunc(raw, func(r rune) bool { return r == ',' || r == '\n' }) {
		entry = strings.TrimSpace(entry)
		var secrets []string
		if i := strings.IndexByte(entry, '='); i >= 0 && !tomlOptionKeys[strings.TrimSpace(entry[:i])] {
			s := entry[i+1:]
			if j := strings.IndexByte(s, ';'); j >= 0 {
				s = s[:j]
			}
			s = strings.TrimSpace(s)
			// secret = "…" in a TOML file: the key is between the quotes.
			secrets = append(secrets, s, strings.Trim(s, `"'`))
			if dec, err := monetix.DecodeSecret(s); err == nil {
				secrets = append(secrets, string(dec))
			}
		}
		if i := strings.LastIndexByte(entry, ':'); i >= 0 {
			secrets = append(secrets, strings.TrimSpace(entry[i+1:]))
		}
		for _, s := range secrets {
			if len(s) >= minRedactLen {
				msg = strings.ReplaceAll(msg, s, "[redacted]")
			}
		}
	}
	return msg
}

func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

func (m *Main) printHelp(fs *flag.FlagSet, spec cmdSpec, own []setting) {
	w := m.Stdout
	fmt.Fprintf(w, "Usage: tiyn %s %s\n\n%s\n", spec.Name, spec.Args, spec.Description)
	if len(own) > 0 {
		fmt.Fprintf(w, "\nSettings (environment variable or flag; the flag wins):\n")
		for _, s := range own {
			def := s.Default
			if def == "" {
				def = "unset"
			}
			arg := " " + s.Metavar
			if s.Bool {
				arg = "[=" + s.Metavar + "]" // a bare --flag means true; a value needs '='
			}
			fmt.Fprintf(w, "  %s, --%s%s  (default %s)\n", s.Env, s.Flag, arg, def)
			fmt.Fprint(w, wrap(s.Usage, helpIndent, helpWidth))
		}
	}
	isSetting := map[string]bool{}
	for _, s := range own {
		isSetting[s.Flag] = true
	}
	var other []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if !isSetting[f.Name] {
			other = append(other, f)
		}
	})
	if len(other) > 0 {
		fmt.Fprintf(w, "\nFlags:\n")
		slices.SortFunc(other, func(a, b *flag.Flag) int { return strings.Compare(a.Name, b.Name) })
		for _, f := range other {
			name, usage := flag.UnquoteUsage(f)
			line := "  --" + f.Name
			if name != "" {
				line += " " + name
			}
			if f.DefValue != "" && f.DefValue != "false" {
				line += "  (default " + f.DefValue + ")"
			}
			fmt.Fprintf(w, "%s\n%s", line, wrap(usage, helpIndent, helpWidth))
		}
	}
}

// Layout of --help.
const (
	helpIndent = 6
	helpWidth  = 100
)

// wrap breaks text into lines of at most width columns (a longer word
// stands alone), each indented, each ending in a newline.
func wrap(text string, indent, width int) string {
	var b strings.Builder
	pad := strings.Repeat(" ", indent)
	col := 0
	for _, word := range strings.Fields(text) {
		switch {
		case col == 0:
			b.WriteString(pad)
			col = indent
		case col+1+len(word) > width:
			b.WriteString("\n" + pad)
			col = indent
		default:
			b.WriteByte(' ')
			col++
		}
		b.WriteString(word)
		col += len(word)
	}
	if col > 0 {
		b.WriteByte('\n')
	}
	return b.String()
}

// validateListen accepts HOST:PORT with a numeric port (HOST may be empty:
// every interface).
func validateListen(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("%q is not host:port", v)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number in 0..65535", v, port)
	}
	return nil
}

// validateDatabaseURL accepts the forms sqlstore opens. The value may hold
// a password, so errors show it redacted (sqlstore.RedactURL).
func validateDatabaseURL(v string) error {
	switch {
	case strings.HasPrefix(v, "postgres://"), strings.HasPrefix(v, "postgresql://"):
		u, err := url.Parse(v)
		if err != nil {
			return fmt.Errorf("not a valid postgres:// URL (%s)", redactURLError(err, v))
		}
		if u.Host == "" && u.Query().Get("host") == "" {
			return fmt.Errorf("%s: no host", sqlstore.RedactURL(v))
		}
		return nil
	case strings.HasPrefix(v, "sqlite:"), strings.HasPrefix(v, "file:"):
		path := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(v, "sqlite:"), "//"), "file:")
		if strings.TrimSpace(path) == "" {
			return fmt.Errorf("%q has no file path (e.g. sqlite:tiyn.db)", v)
		}
		if strings.Contains(path, "?") {
			return fmt.Errorf("%q: give only the file path; Tiyn sets SQLite's parameters", v)
		}
		return nil
	}
	red := sqlstore.RedactURL(v)
	if red == v {
		red = strconv.Quote(v)
	} else {
		red = "the value"
	}
	return fmt.Errorf("%s is neither postgres://… nor sqlite:PATH", red)
}

// redactURLError: url.Parse errors quote the whole input, password and all.
func redactURLError(err error, v string) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return sqlstore.ScrubURLSecrets(ue.Err.Error(), v)
	}
	return sqlstore.ScrubURLSecrets(strings.ReplaceAll(err.Error(), v, "…"), v)
}

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%q is not true or false", v)
	}
	return b, nil
}

func parseInt(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number", v)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is outside %d..%d", n, lo, hi)
	}
	return n, nil
}

func parseFloat(v string, lo, hi float64) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f != f { // NaN
		return 0, fmt.Errorf("%q is not a number", v)
	}
	if f < lo || f > hi {
		return 0, fmt.Errorf("%v is outside %v..%v", f, lo, hi)
	}
	return f, nil
}

func parseDuration(v string, lo, hi time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (e.g. 20s, 2ms)", v)
	}
	if d < lo || d > hi {
		return 0, fmt.Errorf("%s is outside %s..%s", d, lo, hi)
	}
	return d, nil
}
