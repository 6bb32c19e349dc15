package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
)

// The Monetix Data API's settings (groupData): where a day's record of
// operations is asked for when no CSV report is given (issue 17). Config.
// DataSource builds the configured source; the commands that reconcile a
// day choose it.

// MaxDataTimeout: a page the platform takes longer than an hour to send is
// not coming.
const MaxDataTimeout = time.Hour

const (
	envDataURL        = "TIYN_MONETIX_DATA_URL"
	envDataToken      = "TIYN_MONETIX_DATA_TOKEN"
	envDataTokenFile  = "TIYN_MONETIX_DATA_TOKEN_FILE"
	envDataSecret     = "TIYN_MONETIX_DATA_SECRET"
	envDataSecretFile = "TIYN_MONETIX_DATA_SECRET_FILE"
	envDataTimeout    = "TIYN_MONETIX_DATA_TIMEOUT"
	envDataMapping    = "TIYN_MONETIX_DATA_MAPPING"
	envDataSigned     = "TIYN_MONETIX_DATA_REQUIRE_SIGNATURE"
	pairDataToken     = "data-token"
	pairDataSecret    = "data-secret"
)

// dataSettings is the Data API part of a Config.
type dataSettings struct {
	URL              string
	Token            string // a secret: never logged
	Secret           []byte // a secret: never logged
	Timeout          time.Duration
	Mapping          monetix.DataMapping
	RequireSignature bool
	// TokenFrom names the setting the token came from, for a log line.
	TokenFrom string
}

// dataSettingsTable is the Data API's rows of the settings table.
var dataSettingsTable = []setting{
	{Env: envDataURL, Flag: "monetix-data-url", Metavar: "URL", Group: groupData,
		Usage: "Base URL of the Monetix Data API, asked for a business day's operations (POST …" + monetix.DataOperationsPath +
			") when a day is reconciled without a CSV report. HTTPS only, except on a loopback host (tiyn simulate serves one). " +
			"The vendor does not publish the Monetix host: unset, a day is reconciled from a CSV report only.",
		apply: func(c *Config, v string) error {
			c.Data.URL = v
			if v == "" {
				return nil
			}
			_, err := monetix.NewDataSource(monetix.DataConfig{URL: v, Token: "t", Secret: []byte("s")})
			return err
		}},
	{Env: envDataToken, Flag: "monetix-data-token", Metavar: "TOKEN", Group: groupData, Pair: pairDataToken,
		Usage: "The Data API token made in the Dashboard for a user (it sees that user's projects)." + secretFlagNote},
	{Env: envDataTokenFile, Flag: "monetix-data-token-file", Metavar: "PATH", Group: groupData, Pair: pairDataToken,
		Usage: "File holding the Data API token (surrounding whitespace ignored), instead of " + envDataToken + "."},
	{Env: envDataSecret, Flag: "monetix-data-secret", Metavar: "SECRET", Group: groupData, Pair: pairDataSecret,
		Usage: "The Data API token's own secret key (not a project's): it signs the requests and verifies the answers." + secretFlagNote},
	{Env: envDataSecretFile, Flag: "monetix-data-secret-file", Metavar: "PATH", Group: groupData, Pair: pairDataSecret,
		Usage: "File holding the Data API secret key (surrounding whitespace ignored), instead of " + envDataSecret + "."},
	{Env: envDataTimeout, Flag: "monetix-data-timeout", Metavar: "DURATION", Default: monetix.DefaultDataTimeout.String(), Group: groupData,
		Usage: "Longest one Data API page request may take, connection to last byte (the vendor says a request may take " +
			"minutes). Past it the reconciliation fails and can be run again; nothing of an incomplete day is taken as the day.",
		apply: func(c *Config, v string) (err error) {
			c.Data.Timeout, err = parseDuration(v, time.Second, MaxDataTimeout)
			return err
		}},
	{Env: envDataMapping, Flag: "monetix-data-mapping", Metavar: "KEY=MEMBER,…", Group: groupData,
		Usage: "Data API member names the vendor's reference does not show, overriding Tiyn's defaults key by key " +
			"(MEMBER may be a dotted path; fields= and projects= send none). The defaults: " + monetix.DefaultDataMapping().String() + ".",
		apply: func(c *Config, v string) (err error) {
			c.Data.Mapping, err = monetix.ParseDataMapping(v)
			return err
		}},
	{Env: envDataSigned, Flag: "monetix-data-require-signature", Metavar: "BOOL", Default: "false", Group: groupData, Bool: true,
		Usage: "Refuse Data API pages that carry no signature. The vendor says answers are signed; by default a signature " +
			"is verified when present (a wrong one fails the run) and a page without one is accepted.",
		apply: func(c *Config, v string) (err error) { c.Data.RequireSignature, err = parseBool(v); return err }},
}

func init() { settings = append(settings, dataSettingsTable...) }

// resolveDataSecrets reads the token and the secret (inline or from a
// file) and checks that the Data API is configured whole or not at all.
func (c *Config) resolveDataSecrets() []error {
	var errs []error
	read := func(valueEnv, fileEnv string) (string, string) {
		raw, from, path, err := c.secretValue(valueEnv, fileEnv)
		if err != nil {
			errs = append(errs, err)
			return "", ""
		}
		if path != "" {
			raw = strings.TrimSpace(raw)
			if strings.ContainsAny(raw, "\r\n") {
				errs = append(errs, fmt.Errorf("%s: %s holds more than one line", from, path))
				return "", ""
			}
		}
		return raw, from
	}
	token, tokenFrom := read(envDataToken, envDataTokenFile)
	secret, _ := read(envDataSecret, envDataSecretFile)
	if len(errs) > 0 {
		return errs
	}
	set := map[string]bool{envDataURL: c.Data.URL != "", envDataToken: token != "", envDataSecret: secret != ""}
	if set[envDataURL] || set[envDataToken] || set[envDataSecret] {
		for _, env := range []string{envDataURL, envDataToken, envDataSecret} {
			if !set[env] {
				errs = append(errs, fmt.Errorf("%s is not set: the Data API needs %s, %s (or _FILE) and %s (or _FILE)",
					env, envDataURL, envDataToken, envDataSecret))
			}
		}
	}
	if token != "" {
		if _, err := monetix.NewDataSource(monetix.DataConfig{URL: "https://data.invalid", Token: token, Secret: []byte("s")}); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", tokenFrom, err))
		}
	}
	c.Data.Token, c.Data.Secret, c.Data.TokenFrom = token, []byte(secret), tokenFrom
	return errs
}

// ErrNoDataAPI: the Data API is not configured.
var ErrNoDataAPI = errors.New(envDataURL + " is not set: reconcile the day from a CSV report (--csv FILE), or configure the Monetix Data API")

// DataSource is the configured Data API source, asking only about the
// configured Monetix projects (when any: otherwise about every project of
// the token's user). ErrNoDataAPI when it is not configured.
func (c Config) DataSource() (*monetix.DataSource, error) {
	if c.Data.URL == "" {
		return nil, ErrNoDataAPI
	}
	projects := make([]string, 0, len(c.MonetixProjects))
	for _, p := range c.MonetixProjects {
		projects = append(projects, p.ID)
	}
	return monetix.NewDataSource(monetix.DataConfig{
		URL: c.Data.URL, Token: c.Data.Token, Secret: c.Data.Secret, Timeout: c.Data.Timeout,
		Mapping: c.Data.Mapping, Projects: projects, RequireSignature: c.Data.RequireSignature,
	})
}

// String keeps the token and the key out of any log line that prints a
// Config.
func (d dataSettings) String() string {
	return fmt.Sprintf("{URL:%s Token:[redacted] Secret:[redacted] Timeout:%s Mapping:%s RequireSignature:%t}",
		d.URL, d.Timeout, d.Mapping, d.RequireSignature)
}
