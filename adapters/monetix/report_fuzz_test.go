package monetix_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/ports"
)

var reportFuzzSeeds = []string{
	header + "1234,pay-1,36011000001676,sale,success,100.00,KZT,2026-12-02 10:00:00\n",
	"\xEF\xBB\xBF" + header + "1234,pay-1,1,sale,success,100,KZT,2026-12-02 00:00:00\r\n1234,pay-2,2,sale,decline,0.01,kzt,2026-12-02 23:59:59\r\n",
	header + `"1234","pay,""1""",1,sale,success,"100.00",KZT,"2026-12-02 10:00:00"` + "\n" + "1234,\"p\n2\",1,sale,success,1,KZT,2026-12-02 10:00:00\n",
	header + "1234,,1,sale,success,100.00,KZT,2026-12-02 10:00:00\n1234,p,1,sale,success,1e2,KZT,2026-12-03 00:00:00\n1,2,3\n",
	header + "1234,p,1,sale,success,100.00,KZT,2026-12-02 10:00:00," + strings.Repeat("x", 100) + "\n1234,q,1\n",
	header + "1234,\"open\n" + strings.Repeat("line\n", 5),
	header + `1234,p"q,1,sale,success,100.00,KZT,2026-12-02 10:00:00` + "\n",
	"", "\n\n", header, monetix.DefaultReportHeader, "project_id\n1\n",
	header + "01234,p\x00,1,sale,success,-5,USD,2026-12-02 10:00:00\n\xff\xfe,\n",
}

// FuzzReportReader: any bytes, in either amount unit and with a small line
// limit or the default one, never panic; every row read is either a
// SourceRow or a RowError, in the order of the file; the summary counts
// them; a good row holds what its own text says; and a file read to its
// end is hashed whole.
func FuzzReportReader(f *testing.F) {
	for i, s := range reportFuzzSeeds {
		f.Add([]byte(s), i%2 == 1, i%3 == 0)
	}
	f.Fuzz(func(t *testing.T, input []byte, minor, smallLines bool) {
		opts := monetix.ReportOptions{}
		if minor {
			opts.Units = monetix.AmountMinor
		}
		if smallLines {
			opts.MaxLineBytes = 96
		}
		src, err := monetix.NewReportSource(bytes.NewReader(input), opts)
		if err != nil {
			t.Fatal(err)
		}
		var rows []ports.SourceRow
		var bad []ports.RowError
		last := 0
		order := func(line int) {
			if line <= last {
				t.Fatalf("line %d after line %d", line, last)
			}
			last = line
		}
		sum, err := src.Operations(context.Background(), reconDay,
			func(r ports.SourceRow) error { order(r.Line); rows = append(rows, r); return nil },
			func(e ports.RowError) error { order(e.Line); bad = append(bad, e); return nil })
		if sum.Rows != len(rows)+len(bad) || sum.Bad != len(bad) {
			t.Fatalf("summary %+v for %d rows and %d bad", sum, len(rows), len(bad))
		}
		if err != nil {
			if !errors.Is(err, monetix.ErrReportHeader) && !strings.Contains(err.Error(), "row longer than") {
				t.Fatalf("unexpected error %v", err)
			}
		} else if sum.Hash != sha(string(input)) {
			t.Fatalf("hash %s is not of the input", sum.Hash)
		}
		for _, e := range bad {
			if e.Line < 1 || e.Message == "" {
				t.Fatalf("bad row %+v", e)
			}
		}
		for _, r := range rows {
			checkReportRow(t, r)
		}
	})
}

func checkReportRow(t *testing.T, r ports.SourceRow) {
	t.Helper()
	fields := []string{r.ProjectID, r.PaymentID, r.OperationID, r.Type, r.Status}
	for _, s := range fields {
		if s == "" || !utf8.ValidString(s) || strings.ContainsFunc(s, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
			t.Fatalf("row %+v has field %q", r, s)
		}
	}
	if r.Line < 2 || !reconDay.Contains(r.CompletedAt) || r.Amount.Currency().IsZero() {
		t.Fatalf("row %+v", r)
	}
	if !utf8.ValidString(r.Raw) || strings.ContainsRune(r.Raw, 0) {
		t.Fatalf("raw %q is not storable", r.Raw)
	}
	// The row's text, read as CSV on its own, holds each field.
	rec, err := csv.NewReader(strings.NewReader(r.Raw)).Read()
	if err != nil {
		t.Fatalf("raw %q of a good row is not CSV: %v", r.Raw, err)
	}
	for i := range rec {
		rec[i] = strings.TrimSpace(rec[i])
	}
	for _, s := range append(fields, r.Amount.Currency().Code(), r.CompletedAt.In(almaty).Format("2006-01-02 15:04:05")) {
		if !slices.Contains(rec, s) {
			t.Fatalf("raw %q does not hold %q", r.Raw, s)
		}
	}
}
