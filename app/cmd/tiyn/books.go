package main

import (
	"io"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// A business day's books (issue 17): the business time zone, and what
// reconciling and closing a day need from the configuration, shared by
// tiyn serve (REST), tiyn reconcile day and tiyn close.

const envBusinessTZ = "TIYN_BUSINESS_TZ"

// booksSettings are the business day's rows of the settings table.
var booksSettings = []setting{
	{Env: envBusinessTZ, Flag: "business-tz", Metavar: "ZONE", Default: domain.DefaultBusinessZone, Group: groupBooks,
		Usage: "IANA time zone of a business day: day D is [D 00:00, D+1 00:00) there. Platform operations belong to a day " +
			"by their completion time, ledger rows by their insertion time. The zone database is built into the binary, so " +
			"every machine agrees. Asia/Almaty is UTC+5 (all of Kazakhstan since 2024-03-01). Change it only before the first " +
			"day is reconciled or closed: a closed day is a day in this zone.",
		apply: func(c *Config, v string) (err error) {
			c.BusinessZone, err = domain.LoadBusinessZone(v)
			return err
		}},
}

func init() { settings = append(settings, booksSettings...) }

// reconTemplate is the reconciliation every source of this binary asks
// for: the Monetix platform's kassa24 method, the ledger side limited to
// the configured projects (the ones the Data API is asked about; none
// configured: every project), an exception's credit bounded by kassa24's
// per-payment maximum.
func reconTemplate(cfg Config) ports.ReconcileDay {
	projects := make([]string, 0, len(cfg.MonetixProjects))
	for _, p := range cfg.MonetixProjects {
		projects = append(projects, p.ID)
	}
	return ports.ReconcileDay{
		Provider: monetix.ProviderName, Method: monetix.Kassa24.Name, Projects: projects, Limits: monetix.Kassa24.Limits,
	}
}

// reportSource reads a CSV report from r, with the column mapping and the
// amount units as tiyn reconcile day --columns and --amount-units (and
// the REST query's columns and amount_units) give them ("" for the
// defaults).
func reportSource(r io.Reader, columns, units string) (ports.OperationSource, error) {
	cols, err := monetix.ParseColumns(columns)
	if err != nil {
		return nil, err
	}
	opts := monetix.ReportOptions{Columns: cols}
	if units != "" {
		if opts.Units, err = monetix.ParseAmountUnits(units); err != nil {
			return nil, err
		}
	}
	return monetix.NewReportSource(r, opts)
}

// businessZone is the configured zone, the default when the command did
// not read the setting.
func (c Config) businessZone() *time.Location {
	if c.BusinessZone != nil {
		return c.BusinessZone
	}
	loc, err := domain.LoadBusinessZone("")
	if err != nil {
		panic(err) // the zone database is embedded
	}
	return loc
}
