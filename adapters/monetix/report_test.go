package monetix_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

var almaty = func() *time.Location {
	loc, err := domain.LoadBusinessZone("")
	if err != nil {
		panic(err)
	}
	return loc
}()

// reconDay is the day every source test reads.
var reconDay = func() domain.BusinessDay {
	d, err := domain.ParseBusinessDay("2026-12-02", almaty)
	if err != nil {
		panic(err)
	}
	return d
}()

const header = monetix.DefaultReportHeader + "\n"

// collected is everything one Operations call said.
type collected struct {
	rows []ports.SourceRow
	bad  []ports.RowError
	sum  ports.SourceSummary
	err  error
}

func collect(t testing.TB, src ports.OperationSource, day domain.BusinessDay) collected {
	t.Helper()
	var c collected
	c.sum, c.err = src.Operations(context.Background(), day,
		func(r ports.SourceRow) error { c.rows = append(c.rows, r); return nil },
		func(e ports.RowError) error { c.bad = append(c.bad, e); return nil })
	if c.err == nil && (c.sum.Rows != len(c.rows)+len(c.bad) || c.sum.Bad != len(c.bad)) {
		t.Fatalf("summary %+v for %d rows and %d bad", c.sum, len(c.rows), len(c.bad))
	}
	return c
}

func readReport(t testing.TB, input string, opts monetix.ReportOptions) collected {
	t.Helper()
	src, err := monetix.NewReportSource(strings.NewReader(input), opts)
	if err != nil {
		t.Fatalf("NewReportSource: %v", err)
	}
	if src.Kind() != "csv" {
		t.Fatalf("Kind %q", src.Kind())
	}
	return collect(t, src, reconDay)
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func kzt(minor int64) domain.Amount { return domain.NewAmount(minor, domain.KZT) }

func at(s string) time.Time {
	t, err := time.ParseInLocation(time.DateTime, s, almaty)
	if err != nil {
		panic(err)
	}
	return t
}

func TestReportGoodFile(t *testing.T) {
	t.Parallel()
	input := header +
		"1234,pay-1,36011000001676,sale,success,100.00,KZT,2026-12-02 00:00:00\n" +
		"1234,pay-2,36011000001677,sale,decline,5,KZT,2026-12-02 12:30:15\n" +
		"5678,pay-3,36011000001678,sale,success,500000.00,KZT,2026-12-02 23:59:59\n"
	c := readReport(t, input, monetix.ReportOptions{})
	if c.err != nil || len(c.bad) != 0 {
		t.Fatalf("err %v, bad %+v", c.err, c.bad)
	}
	want := []ports.SourceRow{
		{Line: 2, ProjectID: "1234", PaymentID: "pay-1", OperationID: "36011000001676", Type: "sale", Status: "success",
			Amount: kzt(10000), CompletedAt: at("2026-12-02 00:00:00"),
			Raw: "1234,pay-1,36011000001676,sale,success,100.00,KZT,2026-12-02 00:00:00"},
		{Line: 3, ProjectID: "1234", PaymentID: "pay-2", OperationID: "36011000001677", Type: "sale", Status: "decline",
			Amount: kzt(500), CompletedAt: at("2026-12-02 12:30:15"),
			Raw: "1234,pay-2,36011000001677,sale,decline,5,KZT,2026-12-02 12:30:15"},
		{Line: 4, ProjectID: "5678", PaymentID: "pay-3", OperationID: "36011000001678", Type: "sale", Status: "success",
			Amount: kzt(50000000), CompletedAt: at("2026-12-02 23:59:59"),
			Raw: "5678,pay-3,36011000001678,sale,success,500000.00,KZT,2026-12-02 23:59:59"},
	}
	assertRows(t, c.rows, want)
	if c.sum != (ports.SourceSummary{Hash: sha(input), Rows: 3, Bad: 0}) {
		t.Fatalf("summary %+v", c.sum)
	}
	// The day is Almaty's: 00:00:00 local is 19:00 UTC the day before.
	if got := c.rows[0].CompletedAt.UTC(); !got.Equal(time.Date(2026, 12, 1, 19, 0, 0, 0, time.UTC)) {
		t.Fatalf("completed at %s UTC", got)
	}
}

func assertRows(t *testing.T, got, want []ports.SourceRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.CompletedAt.Equal(w.CompletedAt) {
			t.Fatalf("row %d completed at %s, want %s", i, g.CompletedAt, w.CompletedAt)
		}
		g.CompletedAt, w.CompletedAt = time.Time{}, time.Time{}
		if g != w {
			t.Fatalf("row %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func TestReportForms(t *testing.T) {
	t.Parallel()
	one := "1234,pay-1,1,sale,success,100.00,KZT,2026-12-02 10:00:00"
	tests := []struct {
		name  string
		input string
		opts  monetix.ReportOptions
		want  ports.SourceRow
	}{
		{name: "BOM", input: "\xEF\xBB\xBF" + header + one + "\n",
			want: ports.SourceRow{Line: 2, PaymentID: "pay-1", Amount: kzt(10000), Raw: one}},
		{name: "BOM and a quoted header", input: "\xEF\xBB\xBF\"project_id\",payment_id,operation_id,operation_type,operation_status,amount,currency,completed_at\n" + one,
			want: ports.SourceRow{Line: 2, PaymentID: "pay-1", Amount: kzt(10000), Raw: one}},
		{name: "CRLF", input: strings.ReplaceAll(header+one+"\n", "\n", "\r\n"),
			want: ports.SourceRow{Line: 2, PaymentID: "pay-1", Amount: kzt(10000), Raw: one}},
		{name: "no final line end", input: header + one,
			want: ports.SourceRow{Line: 2, PaymentID: "pay-1", Amount: kzt(10000), Raw: one}},
		{name: "blank lines count", input: "\n" + header + "\n\r\n" + one + "\n\n",
			want: ports.SourceRow{Line: 5, PaymentID: "pay-1", Amount: kzt(10000), Raw: one}},
		{name: "quoted fields", input: header + `"1234","pay,""1""",1,"sale","success","100.00",KZT,"2026-12-02 10:00:00"` + "\n",
			want: ports.SourceRow{Line: 2, PaymentID: `pay,"1"`, Amount: kzt(10000),
				Raw: `"1234","pay,""1""",1,"sale","success","100.00",KZT,"2026-12-02 10:00:00"`}},
		{name: "spaces around fields", input: header + "1234, pay-1 ,1,sale,success, 100.00 ,KZT,2026-12-02 10:00:00\n",
			want: ports.SourceRow{Line: 2, PaymentID: "pay-1", Amount: kzt(10000),
				Raw: "1234, pay-1 ,1,sale,success, 100.00 ,KZT,2026-12-02 10:00:00"}},
		{name: "whole tenge", input: header + "1234,pay-1,1,sale,success,100,KZT,2026-12-02 10:00:00\n",
			want: ports.SourceRow{Line: 2, PaymentID: "pay-1", Amount: kzt(10000), Raw: "1234,pay-1,1,sale,success,100,KZT,2026-12-02 10:00:00"}},
		{name: "minor units", opts: monetix.ReportOptions{Units: monetix.AmountMinor},
			input: header + "1234,pay-1,1,sale,success,10000,KZT,2026-12-02 10:00:00\n",
			want:  ports.SourceRow{Line: 2, PaymentID: "pay-1", Amount: kzt(10000), Raw: "1234,pay-1,1,sale,success,10000,KZT,2026-12-02 10:00:00"}},
		{name: "another listed currency", input: header + "1234,pay-1,1,sale,success,1.50,USD,2026-12-02 10:00:00\n",
			want: ports.SourceRow{Line: 2, PaymentID: "pay-1", Amount: domain.NewAmount(150, domain.MustRegisterCurrency("USD", 2)), Raw: "1234,pay-1,1,sale,success,1.50,USD,2026-12-02 10:00:00"}},
		{name: "an unlisted currency keeps its text and a whole amount", input: header + "1234,pay-1,1,sale,success,100.00,kzt,2026-12-02 10:00:00\n",
			want: ports.SourceRow{Line: 2, PaymentID: "pay-1", Amount: domain.NewAmount(100, domain.UnlistedCurrency("kzt")),
				Raw: "1234,pay-1,1,sale,success,100.00,kzt,2026-12-02 10:00:00"}},
		{name: "mapped columns in another order, an extra column",
			opts: monetix.ReportOptions{Columns: mustColumns(t, "payment_id=Payment ID, amount=Sum,completed_at=Completed at,project_id=Project")},
			input: "Completed at,Note,Sum,Payment ID,operation_status,operation_type,currency,operation_id,Project\n" +
				"2026-12-02 10:00:00,hello,100.00,pay-1,success,sale,KZT,1,1234\n",
			want: ports.SourceRow{Line: 2, PaymentID: "pay-1", Amount: kzt(10000), Raw: "2026-12-02 10:00:00,hello,100.00,pay-1,success,sale,KZT,1,1234"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := readReport(t, tt.input, tt.opts)
			if c.err != nil || len(c.bad) != 0 || len(c.rows) != 1 {
				t.Fatalf("err %v, bad %+v, rows %+v", c.err, c.bad, c.rows)
			}
			want := tt.want
			want.ProjectID, want.OperationID, want.Type, want.Status = "1234", "1", "sale", "success"
			if want.CompletedAt.IsZero() {
				want.CompletedAt = at("2026-12-02 10:00:00")
			}
			assertRows(t, c.rows, []ports.SourceRow{want})
			if c.sum.Hash != sha(tt.input) {
				t.Fatalf("hash %s is not of the bytes read", c.sum.Hash)
			}
		})
	}
}

func mustColumns(t testing.TB, s string) monetix.Columns {
	t.Helper()
	c, err := monetix.ParseColumns(s)
	if err != nil {
		t.Fatalf("ParseColumns(%q): %v", s, err)
	}
	return c
}

// TestReportBadRows: each kind of bad row is reported with its line and
// column, and the rows around it still come through.
func TestReportBadRows(t *testing.T) {
	t.Parallel()
	good := "1234,good,1,sale,success,100.00,KZT,2026-12-02 10:00:00"
	tests := []struct {
		name   string
		row    string
		opts   monetix.ReportOptions
		column string
		msg    string
	}{
		{"thousands separator", `1234,p,1,sale,success,"1,000.00",KZT,2026-12-02 10:00:00`, monetix.ReportOptions{}, "amount", "not a decimal"},
		{"too many decimals", "1234,p,1,sale,success,100.001,KZT,2026-12-02 10:00:00", monetix.ReportOptions{}, "amount", "more than 2 decimals"},
		{"an exponent", "1234,p,1,sale,success,1e4,KZT,2026-12-02 10:00:00", monetix.ReportOptions{}, "amount", "not a decimal"},
		{"a fraction of an unlisted currency", "1234,p,1,sale,success,100.50,kzt,2026-12-02 10:00:00", monetix.ReportOptions{}, "amount", "only a whole amount"},
		{"major units read as minor", "1234,p,1,sale,success,100.00,KZT,2026-12-02 10:00:00", monetix.ReportOptions{Units: monetix.AmountMinor}, "amount", "not an integer"},
		{"minor units out of range", "1234,p,1,sale,success,99999999999999999999,KZT,2026-12-02 10:00:00", monetix.ReportOptions{Units: monetix.AmountMinor}, "amount", "out of range"},
		{"ISO time", "1234,p,1,sale,success,100.00,KZT,2026-12-02T10:00:00", monetix.ReportOptions{}, "completed_at", "not YYYY-MM-DD hh:mm:ss"},
		{"a date only", "1234,p,1,sale,success,100.00,KZT,2026-12-02", monetix.ReportOptions{}, "completed_at", "not YYYY-MM-DD hh:mm:ss"},
		{"the next day's midnight", "1234,p,1,sale,success,100.00,KZT,2026-12-03 00:00:00", monetix.ReportOptions{}, "completed_at", "2026-12-03 00:00:00 is outside 2026-12-02"},
		{"the day before", "1234,p,1,sale,success,100.00,KZT,2026-12-01 23:59:59", monetix.ReportOptions{}, "completed_at", "is outside 2026-12-02"},
		{"empty payment id", "1234,,1,sale,success,100.00,KZT,2026-12-02 10:00:00", monetix.ReportOptions{}, "payment_id", "is empty"},
		{"blank status", "1234,p,1,sale,  ,100.00,KZT,2026-12-02 10:00:00", monetix.ReportOptions{}, "operation_status", "is empty"},
		{"empty currency", "1234,p,1,sale,success,100.00,,2026-12-02 10:00:00", monetix.ReportOptions{}, "currency", "is empty"},
		{"not a project id", "01234,p,1,sale,success,100.00,KZT,2026-12-02 10:00:00", monetix.ReportOptions{}, "project_id", "not a project id"},
		{"a control character", "1234,p\x01q,1,sale,success,100.00,KZT,2026-12-02 10:00:00", monetix.ReportOptions{}, "payment_id", "control character"},
		{"not UTF-8", "1234,p\xff,1,sale,success,100.00,KZT,2026-12-02 10:00:00", monetix.ReportOptions{}, "payment_id", "not valid UTF-8"},
		{"a long payment id", "1234," + strings.Repeat("p", 129) + ",1,sale,success,100.00,KZT,2026-12-02 10:00:00", monetix.ReportOptions{}, "payment_id", "longer than 128"},
		{"too few fields", "1234,p,1,sale,success,100.00,KZT", monetix.ReportOptions{}, "", "has 7 fields, the header has 8"},
		{"too many fields", good + ",x", monetix.ReportOptions{}, "", "has 9 fields, the header has 8"},
		{"a stray quote", `1234,p"q,1,sale,success,100.00,KZT,2026-12-02 10:00:00`, monetix.ReportOptions{}, "payment_id", "not CSV"},
		{"text after a closing quote", `1234,"p"q,1,sale,success,100.00,KZT,2026-12-02 10:00:00`, monetix.ReportOptions{}, "payment_id", "not CSV"},
		{"a mapped column is named as in the file", "1234,,1,sale,success,100.00,KZT,2026-12-02 10:00:00",
			monetix.ReportOptions{Columns: monetix.Columns{"payment_id": "payment_id"}}, "payment_id", "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			good := good
			if tt.opts.Units == monetix.AmountMinor {
				good = strings.Replace(good, "100.00", "10000", 1)
			}
			input := header + good + "\n" + tt.row + "\n" + strings.Replace(good, "good", "after", 1) + "\n"
			c := readReport(t, input, tt.opts)
			if c.err != nil {
				t.Fatalf("err %v", c.err)
			}
			if len(c.bad) != 1 {
				t.Fatalf("bad %+v, rows %+v", c.bad, c.rows)
			}
			e := c.bad[0]
			if e.Line != 3 || e.Column != tt.column || !strings.Contains(e.Message, tt.msg) {
				t.Fatalf("bad row %+v, want line 3, column %q, message with %q", e, tt.column, tt.msg)
			}
			if len(c.rows) != 2 || c.rows[0].PaymentID != "good" || c.rows[1].PaymentID != "after" || c.rows[1].Line != 4 {
				t.Fatalf("rows around the bad one: %+v", c.rows)
			}
			if c.sum.Rows != 3 || c.sum.Bad != 1 || c.sum.Hash != sha(input) {
				t.Fatalf("summary %+v", c.sum)
			}
		})
	}
}

// TestReportMappedColumnNames: a bad row names the column as the file
// does.
func TestReportMappedColumnNames(t *testing.T) {
	t.Parallel()
	input := "Project,Payment ID,operation_id,operation_type,operation_status,Sum,currency,completed_at\n" +
		"1234,p,1,sale,success,abc,KZT,2026-12-02 10:00:00\n"
	c := readReport(t, input, monetix.ReportOptions{Columns: mustColumns(t, "project_id=Project,payment_id=Payment ID,amount=Sum")})
	if c.err != nil || len(c.bad) != 1 || c.bad[0] != (ports.RowError{Line: 2, Column: "Sum", Message: c.bad[0].Message}) {
		t.Fatalf("err %v, bad %+v", c.err, c.bad)
	}
}

func TestReportLongLines(t *testing.T) {
	t.Parallel()
	good := func(id string) string { return "1234," + id + ",1,sale,success,100.00,KZT,2026-12-02 10:00:00\n" }
	long := "1234,long,1,sale,success,100.00,KZT,2026-12-02 10:00:00," + strings.Repeat("x", monetix.MaxReportLineBytes) + "\n"
	t.Run("a line over 64 KiB is a bad row and the others go on", func(t *testing.T) {
		t.Parallel()
		input := "project_id,payment_id,operation_id,operation_type,operation_status,amount,currency,completed_at,note\n" +
			strings.TrimSuffix(good("a"), "\n") + ",n\n" + long + strings.TrimSuffix(good("b"), "\n") + ",n\n"
		c := readReport(t, input, monetix.ReportOptions{})
		if c.err != nil || len(c.bad) != 1 || c.bad[0].Line != 3 || !strings.Contains(c.bad[0].Message, "longer than 65536 bytes") {
			t.Fatalf("err %v, bad %+v", c.err, c.bad)
		}
		if len(c.rows) != 2 || c.rows[0].Line != 2 || c.rows[1].Line != 4 || c.rows[1].PaymentID != "b" {
			t.Fatalf("rows %+v", c.rows)
		}
		if c.sum.Hash != sha(input) {
			t.Fatal("the hash does not cover the long line")
		}
	})
	t.Run("a line of exactly the limit is read", func(t *testing.T) {
		t.Parallel()
		row := good("a")
		pad := strings.Repeat("y", monetix.MaxReportLineBytes-len(row)-1)
		input := "project_id,payment_id,operation_id,operation_type,operation_status,amount,currency,completed_at,note\n" +
			strings.TrimSuffix(row, "\n") + "," + pad + "\n"
		c := readReport(t, input, monetix.ReportOptions{})
		if c.err != nil || len(c.bad) != 0 || len(c.rows) != 1 {
			t.Fatalf("err %v, bad %+v", c.err, c.bad)
		}
	})
	t.Run("a long line inside a quoted field spoils only its row", func(t *testing.T) {
		t.Parallel()
		input := header + good("a") + "1234,\"multi\n" + strings.Repeat("z", 70<<10) + "\nend\",1,sale,success,100.00,KZT,2026-12-02 10:00:00\n" + good("b")
		c := readReport(t, input, monetix.ReportOptions{})
		if c.err != nil || len(c.bad) != 1 || c.bad[0].Line != 4 || !strings.Contains(c.bad[0].Message, "longer than") {
			t.Fatalf("err %v, bad %+v", c.err, c.bad)
		}
		if len(c.rows) != 2 || c.rows[1].PaymentID != "b" || c.rows[1].Line != 6 {
			t.Fatalf("rows %+v", c.rows)
		}
	})
	t.Run("several long lines in a row", func(t *testing.T) {
		t.Parallel()
		input := header + long + long + good("a") + long
		c := readReport(t, input, monetix.ReportOptions{})
		if c.err != nil || len(c.bad) != 3 || c.bad[0].Line != 2 || c.bad[1].Line != 3 || c.bad[2].Line != 5 {
			t.Fatalf("err %v, bad %+v", c.err, c.bad)
		}
		if len(c.rows) != 1 || c.rows[0].Line != 4 {
			t.Fatalf("rows %+v", c.rows)
		}
	})
	t.Run("a smaller limit", func(t *testing.T) {
		t.Parallel()
		c := readReport(t, header+good("a"), monetix.ReportOptions{MaxLineBytes: 40})
		// The header itself is longer than 40 bytes.
		if !errors.Is(c.err, monetix.ErrReportHeader) || !strings.Contains(c.err.Error(), "line 1 is longer than 40 bytes") {
			t.Fatalf("err %v", c.err)
		}
	})
	t.Run("a quote that never closes stops the file", func(t *testing.T) {
		t.Parallel()
		input := header + good("a") + "1234,\"open" + strings.Repeat("\nshort line", monetix.MaxReportRecordBytes/10)
		c := readReport(t, input, monetix.ReportOptions{})
		if c.err == nil || !strings.Contains(c.err.Error(), "row longer than") || !strings.Contains(c.err.Error(), "from line 3") {
			t.Fatalf("err %v", c.err)
		}
		if len(c.rows) != 1 {
			t.Fatalf("rows before the broken one: %+v", c.rows)
		}
	})
	t.Run("a quote open at the end is a bad row", func(t *testing.T) {
		t.Parallel()
		c := readReport(t, header+good("a")+"1234,\"open\nmore\n", monetix.ReportOptions{})
		if c.err != nil || len(c.bad) != 1 || c.bad[0].Line != 3 || !strings.Contains(c.bad[0].Message, "not CSV") || len(c.rows) != 1 {
			t.Fatalf("err %v, bad %+v, rows %+v", c.err, c.bad, c.rows)
		}
	})
}

func TestReportQuotedLineBreak(t *testing.T) {
	t.Parallel()
	row := "1234,pay-1,1,sale,success,100.00,KZT,2026-12-02 10:00:00,\"two\r\nlines\""
	input := strings.TrimSuffix(header, "\n") + ",note\n" + row + "\n1234,p2,1,sale,success,100.00,KZT,2026-12-02 10:00:00,\n"
	c := readReport(t, input, monetix.ReportOptions{})
	if c.err != nil || len(c.bad) != 0 || len(c.rows) != 2 {
		t.Fatalf("err %v, bad %+v", c.err, c.bad)
	}
	if c.rows[0].PaymentID != "pay-1" || c.rows[0].Raw != row || c.rows[0].Line != 2 || c.rows[1].Line != 4 {
		t.Fatalf("rows %+v", c.rows)
	}
	// A line break is no part of an identifier.
	c = readReport(t, header+"1234,\"pay\n1\",1,sale,success,100.00,KZT,2026-12-02 10:00:00\n", monetix.ReportOptions{})
	if c.err != nil || len(c.bad) != 1 || c.bad[0].Column != "payment_id" || c.bad[0].Line != 2 {
		t.Fatalf("err %v, bad %+v", c.err, c.bad)
	}
}

func TestReportHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		opts  monetix.ReportOptions
		want  string // "" : no error
	}{
		{"empty file", "", monetix.ReportOptions{}, "the file is empty"},
		{"only a BOM", "\xEF\xBB\xBF", monetix.ReportOptions{}, "the file is empty"},
		{"only blank lines", "\n\r\n\n", monetix.ReportOptions{}, "the file is empty"},
		{"header only", header, monetix.ReportOptions{}, ""},
		{"header only, no line end", monetix.DefaultReportHeader, monetix.ReportOptions{}, ""},
		{"a missing column", "project_id,payment_id,operation_id,operation_type,operation_status,amount,completed_at\n",
			monetix.ReportOptions{}, `no column "currency"`},
		{"a mapped column missing", header, monetix.ReportOptions{Columns: monetix.Columns{"amount": "Sum"}}, `no column "Sum" (amount)`},
		{"names are matched exactly", strings.ToUpper(header), monetix.ReportOptions{}, `no column "project_id"`},
		{"a column twice", strings.TrimSuffix(header, "\n") + ",amount\n", monetix.ReportOptions{}, `column "amount" appears twice`},
		{"a broken header", "project_id,\"payment_id\n", monetix.ReportOptions{}, "report header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := readReport(t, tt.input, tt.opts)
			if tt.want == "" {
				if c.err != nil || c.sum != (ports.SourceSummary{Hash: sha(tt.input)}) {
					t.Fatalf("err %v, summary %+v", c.err, c.sum)
				}
				return
			}
			if !errors.Is(c.err, monetix.ErrReportHeader) || !strings.Contains(c.err.Error(), tt.want) {
				t.Fatalf("err %v, want ErrReportHeader with %q", c.err, tt.want)
			}
		})
	}
}

var errStop = errors.New("stop")

func TestReportStops(t *testing.T) {
	t.Parallel()
	input := header + "1234,p,1,sale,success,100.00,KZT,2026-12-02 10:00:00\n" + "1234,,1,sale,success,100.00,KZT,2026-12-02 10:00:00\n"
	t.Run("row's error is returned as is", func(t *testing.T) {
		t.Parallel()
		src, _ := monetix.NewReportSource(strings.NewReader(input), monetix.ReportOptions{})
		_, err := src.Operations(context.Background(), reconDay, func(ports.SourceRow) error { return errStop },
			func(ports.RowError) error { t.Fatal("read on after row's error"); return nil })
		if err != errStop {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("bad's error is returned as is", func(t *testing.T) {
		t.Parallel()
		src, _ := monetix.NewReportSource(strings.NewReader(input), monetix.ReportOptions{})
		_, err := src.Operations(context.Background(), reconDay, func(ports.SourceRow) error { return nil },
			func(ports.RowError) error { return errStop })
		if err != errStop {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("a cancelled context", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		src, _ := monetix.NewReportSource(strings.NewReader(input), monetix.ReportOptions{})
		_, err := src.Operations(ctx, reconDay, func(ports.SourceRow) error { return nil }, func(ports.RowError) error { return nil })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("an input error is not the end of the file", func(t *testing.T) {
		t.Parallel()
		r := io.MultiReader(strings.NewReader(input), iotest.ErrReader(errStop))
		src, _ := monetix.NewReportSource(r, monetix.ReportOptions{})
		c := collect(t, src, reconDay)
		if !errors.Is(c.err, errStop) {
			t.Fatalf("err %v", c.err)
		}
	})
	t.Run("a report is read once", func(t *testing.T) {
		t.Parallel()
		src, _ := monetix.NewReportSource(strings.NewReader(input), monetix.ReportOptions{})
		if c := collect(t, src, reconDay); c.err != nil {
			t.Fatal(c.err)
		}
		if c := collect(t, src, reconDay); c.err == nil {
			t.Fatal("read twice")
		}
	})
	t.Run("no day", func(t *testing.T) {
		t.Parallel()
		src, _ := monetix.NewReportSource(strings.NewReader(input), monetix.ReportOptions{})
		if c := collect(t, src, domain.BusinessDay{}); c.err == nil {
			t.Fatal("read without a day")
		}
	})
}

func TestReportHashIsOfTheInput(t *testing.T) {
	t.Parallel()
	a := header + "1234,p,1,sale,success,100.00,KZT,2026-12-02 10:00:00\n"
	b := header + "1234,p,1,sale,success,100.0,KZT,2026-12-02 10:00:00\n"
	ha, ha2, hb := readReport(t, a, monetix.ReportOptions{}).sum.Hash, readReport(t, a, monetix.ReportOptions{}).sum.Hash, readReport(t, b, monetix.ReportOptions{}).sum.Hash
	if ha != ha2 || ha == hb || ha != sha(a) {
		t.Fatalf("hashes %s %s %s", ha, ha2, hb)
	}
}

func TestParseColumns(t *testing.T) {
	t.Parallel()
	c, err := monetix.ParseColumns(" payment_id = Payment ID ,amount=Sum=Total,completed_at=Completed at")
	if err != nil {
		t.Fatal(err)
	}
	if c.Header("payment_id") != "Payment ID" || c.Header("amount") != "Sum=Total" || c.Header("currency") != "currency" {
		t.Fatalf("columns %v", c)
	}
	if c.String() != "payment_id=Payment ID,amount=Sum=Total,completed_at=Completed at" {
		t.Fatalf("String %q", c.String())
	}
	if c, err := monetix.ParseColumns("  "); err != nil || c != nil {
		t.Fatalf("empty: %v %v", c, err)
	}
	for _, bad := range []string{
		"payment=Payment ID",                 // not a field
		"payment_id=A,payment_id=B",          // twice
		"payment_id=",                        // empty header
		"payment_id",                         // no '='
		"payment_id=A,,amount=B",             // empty entry
		"payment_id=A,",                      // trailing comma
		"payment_id=amount",                  // amount's own column
		"payment_id=X,amount=X",              // one column for two fields
		"payment_id=a\x01b",                  // control character
		"amount=" + strings.Repeat("s", 257), // too long
	} {
		if _, err := monetix.ParseColumns(bad); err == nil {
			t.Errorf("ParseColumns(%q) accepted", bad)
		}
	}
	if _, err := monetix.NewReportSource(strings.NewReader(""), monetix.ReportOptions{Columns: monetix.Columns{"nope": "x"}}); err == nil {
		t.Error("NewReportSource took a bad mapping")
	}
	if _, err := monetix.NewReportSource(strings.NewReader(""), monetix.ReportOptions{MaxLineBytes: 8}); err == nil {
		t.Error("NewReportSource took a line limit under bufio's least buffer")
	}
}

func TestParseAmountUnits(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]monetix.AmountUnits{"major": monetix.AmountMajor, "minor": monetix.AmountMinor} {
		if u, err := monetix.ParseAmountUnits(s); err != nil || u != want || u.String() != s {
			t.Errorf("%q: %v %v", s, u, err)
		}
	}
	for _, bad := range []string{"", "Minor", "tiyn", "cents"} {
		if _, err := monetix.ParseAmountUnits(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestReportWriterRoundTrip(t *testing.T) {
	t.Parallel()
	rows := []ports.SourceRow{
		{ProjectID: "1234", PaymentID: "pay,\"1\"", OperationID: "36011000001676", Type: "sale", Status: "success",
			Amount: kzt(10050), CompletedAt: at("2026-12-02 00:00:00")},
		{ProjectID: "5678", PaymentID: "pay-2", OperationID: "7", Type: "sale", Status: "decline",
			Amount: domain.NewAmount(3, domain.UnlistedCurrency("kzt")), CompletedAt: at("2026-12-02 23:59:59").UTC()},
	}
	for _, opts := range []monetix.ReportOptions{
		{},
		{Units: monetix.AmountMinor},
		{Columns: monetix.Columns{"payment_id": "Payment ID", "amount": "Sum"}},
	} {
		var b bytes.Buffer
		if err := monetix.WriteReport(&b, almaty, opts, rows); err != nil {
			t.Fatal(err)
		}
		c := readReport(t, b.String(), opts)
		if c.err != nil || len(c.bad) != 0 || len(c.rows) != len(rows) {
			t.Fatalf("%+v: err %v, bad %+v\n%s", opts, c.err, c.bad, b.String())
		}
		for i, r := range c.rows {
			w := rows[i]
			if r.PaymentID != w.PaymentID || r.Amount != w.Amount || !r.CompletedAt.Equal(w.CompletedAt) || r.OperationID != w.OperationID ||
				r.ProjectID != w.ProjectID || r.Type != w.Type || r.Status != w.Status {
				t.Fatalf("%+v: row %d read back as %+v, wrote %+v", opts, i, r, w)
			}
		}
	}
	var b bytes.Buffer
	if err := monetix.WriteReport(&b, almaty, monetix.ReportOptions{}, nil); err != nil || b.String() != header {
		t.Fatalf("an empty day: %q %v", b.String(), err)
	}
	b.Reset()
	if err := monetix.WriteReport(&b, almaty, monetix.ReportOptions{}, rows[:1]); err != nil ||
		b.String() != header+"1234,\"pay,\"\"1\"\"\",36011000001676,sale,success,100.50,KZT,2026-12-02 00:00:00\n" {
		t.Fatalf("written %q %v", b.String(), err)
	}
	if _, err := monetix.NewReportWriter(&b, nil, monetix.ReportOptions{}); err == nil {
		t.Fatal("a writer without a zone")
	}
}

// rowGenerator streams a report of n rows without holding it.
type rowGenerator struct {
	n, i int
	line []byte
	off  int
}

func (g *rowGenerator) Read(p []byte) (int, error) {
	for g.off == len(g.line) {
		g.line, g.off = g.line[:0], 0
		switch {
		case g.i == 0:
			g.line = append(g.line, header...)
		case g.i > g.n:
			return 0, io.EOF
		default:
			sec := g.i % 86400
			g.line = fmt.Appendf(g.line, "1234,pay-%d,%d,sale,success,%d.%02d,KZT,2026-12-02 %02d:%02d:%02d\n",
				g.i, 36011000000000+g.i, 100+g.i%1000, g.i%100, sec/3600, sec/60%60, sec%60)
		}
		g.i++
	}
	n := copy(p, g.line[g.off:])
	g.off += n
	return n, nil
}

// BenchmarkReportSource reads reports of 10,000 and 100,000 rows, streamed
// from a generator: time per report, and live-heap-MiB, the most live heap
// (after a collection, every 5,000 rows) above what was live before the
// report. Memory that does not grow with the file shows as the same figure
// for both sizes.
func BenchmarkReportSource(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var peak uint64
			for b.Loop() {
				base := heapInUse()
				src, err := monetix.NewReportSource(&rowGenerator{n: n}, monetix.ReportOptions{})
				if err != nil {
					b.Fatal(err)
				}
				rows := 0
				sum, err := src.Operations(context.Background(), reconDay, func(ports.SourceRow) error {
					rows++
					if rows%5000 == 0 {
						if h := heapInUse(); h > base && h-base > peak {
							peak = h - base
						}
					}
					return nil
				}, func(e ports.RowError) error { return fmt.Errorf("bad row %+v", e) })
				if err != nil || sum.Rows != n || rows != n {
					b.Fatalf("%v: %+v, %d rows", err, sum, rows)
				}
			}
			b.ReportMetric(float64(peak)/(1<<20), "live-heap-MiB")
		})
	}
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestReportTimeIsExact(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"2026-12-02 10:00:00.5", "2026-12-02 1:00:00", "2026-12-02  0:00:00", "2026-12-02 10:00", " 2026-12-02 10:00:00Z"} {
		c := readReport(t, header+"1234,p,1,sale,success,100.00,KZT,"+s+"\n", monetix.ReportOptions{})
		if c.err != nil || len(c.bad) != 1 || c.bad[0].Column != "completed_at" {
			t.Errorf("%q: err %v, bad %+v, rows %+v", s, c.err, c.bad, c.rows)
		}
	}
}
