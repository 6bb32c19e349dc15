package monetix

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// A CSV report of a business day: a Dashboard export or a file a
// merchant's finance team makes, read as a ports.OperationSource (kind
// "csv"). The vendor does not publish the Dashboard's columns, so the
// reader expects a header and finds its columns by name:
//
//	project_id,payment_id,operation_id,operation_type,operation_status,amount,currency,completed_at
//
// (DefaultReportHeader), any of them renamed by a mapping (ParseColumns:
// payment_id=Payment ID,amount=Sum); other columns are ignored. amount is
// in major units (100.00) unless AmountMinor is asked for; completed_at is
// YYYY-MM-DD hh:mm:ss in the business time zone (the day's). The file is
// streamed through encoding/csv: only the row in hand is held.

// DefaultReportHeader is the header a report has unless its columns are
// mapped.
const DefaultReportHeader = "project_id,payment_id,operation_id,operation_type,operation_status,amount,currency,completed_at"

// Limits of a report.
const (
	// MaxReportLineBytes bounds one line of a report, its line end
	// included: a row of eight fields is well under a kilobyte, and a
	// Dashboard export with many more columns stays far below 64 KiB. A
	// longer line is a bad row (the others go on), never held whole.
	MaxReportLineBytes = 64 << 10
	// MaxReportRecordBytes bounds one row that spans lines (a quoted field
	// with line breaks): past it the file cannot be read as CSV any more
	// (a quote that never closes) and reading stops with an error.
	MaxReportRecordBytes = 1 << 20
)

// minReportLineBytes is the least line limit (bufio's least buffer).
const minReportLineBytes = 16

// ReportHeader is the default header's column names, in order.
func ReportHeader() []string { return slices.Clone(operationFields[:]) }

// Columns maps an operation field (FieldPaymentID, …) to the header name a
// report uses for it; a field not in the map has its own name. Header
// names are matched exactly (after a UTF-8 byte order mark is taken off
// the file's start).
type Columns map[string]string

// ParseColumns reads a column mapping, as tiyn reconcile --columns takes
// it: comma-separated FIELD=HEADER entries, e.g.
//
//	payment_id=Payment ID,amount=Sum,completed_at=Completed at
//
// FIELD is one of the default header's names; HEADER is everything after
// the first '=' up to the next ',' (so a header name cannot hold a comma),
// surrounding spaces trimmed. "" is no mapping. An unknown field, a field
// given twice, an empty header and two fields read from one column are
// refused.
func ParseColumns(s string) (Columns, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	c := Columns{}
	for entry := range strings.SplitSeq(s, ",") {
		field, header, ok := strings.Cut(entry, "=")
		field, header = strings.TrimSpace(field), strings.TrimSpace(header)
		switch {
		case strings.TrimSpace(entry) == "":
			return nil, fmt.Errorf("columns %q: an empty entry (two commas, or one at an end)", truncateText(s, 200))
		case !ok:
			return nil, fmt.Errorf("columns: %q is not FIELD=HEADER", truncateText(entry, 80))
		}
		if _, dup := c[field]; dup {
			return nil, fmt.Errorf("columns: %s is mapped twice", truncateText(field, 40))
		}
		c[field] = header
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks that every key is a field, every header name is
// non-empty and no two fields are read from one column.
func (c Columns) Validate() error {
	for field, header := range c {
		if !slices.Contains(operationFields[:], field) {
			return fmt.Errorf("columns: %q is not a field; the fields are %s", truncateText(field, 40), DefaultReportHeader)
		}
		if header == "" {
			return fmt.Errorf("columns: %s has an empty header name", field)
		}
		if len(header) > MaxWireTextLen || hasControl(header) {
			return fmt.Errorf("columns: the header name of %s is longer than %d bytes or holds a control character", field, MaxWireTextLen)
		}
	}
	seen := map[string]string{}
	for _, field := range operationFields {
		h := c.Header(field)
		if other, dup := seen[h]; dup {
			return fmt.Errorf("columns: %s and %s are both read from column %q", other, field, h)
		}
		seen[h] = field
	}
	return nil
}

// Header is the header name of field.
func (c Columns) Header(field string) string {
	if h, ok := c[field]; ok {
		return h
	}
	return field
}

// String is the mapping in ParseColumns' syntax, fields in header order.
func (c Columns) String() string {
	var parts []string
	for _, f := range operationFields {
		if h, ok := c[f]; ok {
			parts = append(parts, f+"="+h)
		}
	}
	return strings.Join(parts, ",")
}

// ReportOptions configure how a report is read and written.
type ReportOptions struct {
	// Columns renames header columns (nil: the default header).
	Columns Columns
	// Units of the amount column (AmountMajor by default).
	Units AmountUnits
	// MaxLineBytes bounds a line (MaxReportLineBytes when zero).
	MaxLineBytes int
}

func (o ReportOptions) validate() error {
	if err := o.Columns.Validate(); err != nil {
		return err
	}
	if o.Units != AmountMajor && o.Units != AmountMinor {
		return fmt.Errorf("report: amount units %d", o.Units)
	}
	if o.MaxLineBytes != 0 && (o.MaxLineBytes < minReportLineBytes || o.MaxLineBytes > MaxReportRecordBytes/4) {
		return fmt.Errorf("report: line limit %d outside %d..%d", o.MaxLineBytes, minReportLineBytes, MaxReportRecordBytes/4)
	}
	return nil
}

// ReportSource reads one report. It reads its input once: a second
// Operations fails. It is not safe for concurrent use (a run reads its
// source from one goroutine).
type ReportSource struct {
	r    io.Reader
	opts ReportOptions
	used bool
}

var _ ports.OperationSource = (*ReportSource)(nil)

// NewReportSource checks opts and returns a source that reads r.
func NewReportSource(r io.Reader, opts ReportOptions) (*ReportSource, error) {
	if r == nil {
		return nil, errors.New("report: no input")
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.MaxLineBytes == 0 {
		opts.MaxLineBytes = MaxReportLineBytes
	}
	opts.Columns = cloneColumns(opts.Columns)
	return &ReportSource{r: r, opts: opts}, nil
}

func cloneColumns(c Columns) Columns {
	if c == nil {
		return nil
	}
	out := make(Columns, len(c))
	for k, v := range c {
		out[k] = v
	}
	return out
}

// Kind is "csv".
func (s *ReportSource) Kind() string { return SourceKindCSV }

// Authenticated is false: a report is a file, whoever wrote it.
func (s *ReportSource) Authenticated() bool { return false }

// ErrReportHeader: the report's header lacks a column (or has one twice),
// or there is no header at all. Nothing of the file was read as rows.
var ErrReportHeader = errors.New("report header")

// Operations reads the report to its end (ports.OperationSource). A row is
// bad (passed to bad, the others go on) when it has another number of
// fields than the header, when a needed field is empty or unreadable (a
// bad amount, a bad time, an unknown project id form), when its
// completed_at lies outside day ("… is outside 2026-12-02": the
// platform's record of a day holds only the day, and nothing may
// disappear silently), when its line is longer than the limit, or when it
// is not CSV (a stray quote). Fields are taken with surrounding spaces
// trimmed, and otherwise exactly. A row's Raw is its text as read, line
// end removed, with any invalid UTF-8 or NUL byte replaced by U+FFFD (so
// that the evidence can be stored). Errors: ErrReportHeader for a missing
// or unusable header (an empty file has none), an I/O error of the
// input, a row past MaxReportRecordBytes, ctx's error; errors of row and
// bad as they are.
func (s *ReportSource) Operations(ctx context.Context, day domain.BusinessDay, row func(ports.SourceRow) error, bad func(ports.RowError) error) (ports.SourceSummary, error) {
	if day.IsZero() {
		return ports.SourceSummary{}, errors.New("report: no business day")
	}
	if s.used {
		return ports.SourceSummary{}, errors.New("report: already read (a report is read once)")
	}
	s.used = true
	hash := sha256.New()
	feed := newLineFeed(io.TeeReader(s.r, hash), s.opts.MaxLineBytes, max(MaxReportRecordBytes, 4*s.opts.MaxLineBytes))
	rd := &reportReader{feed: feed, csv: csv.NewReader(feed), units: s.opts.Units, day: day, row: row, bad: bad}
	rd.csv.FieldsPerRecord = -1 // the count is checked against the header, as a bad row
	rd.csv.ReuseRecord = true
	err := rd.header(s.opts.Columns)
	if err == nil {
		err = rd.rows(ctx)
	}
	rd.sum.Hash = hex.EncodeToString(hash.Sum(nil))
	return rd.sum, err
}

// reportReader is one pass over a report.
type reportReader struct {
	feed  *lineFeed
	csv   *csv.Reader
	units AmountUnits
	day   domain.BusinessDay
	row   func(ports.SourceRow) error
	bad   func(ports.RowError) error
	sum   ports.SourceSummary

	index   [numFields]int // field → position in a record
	names   []string       // header names, by position
	nfields int
}

func (rd *reportReader) header(cols Columns) error {
	rec, err := rd.csv.Read()
	switch {
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: the file is empty (a report of a day without operations still has its header line)", ErrReportHeader)
	case err != nil && !isParseError(err):
		return rd.readError(err)
	}
	text := trimRecord(rd.feed.take(rd.csv.InputOffset()))
	var line int
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		line = pe.Line
	} else {
		start, _ := rd.csv.FieldPos(0)
		line = start + strings.Count(text, "\n")
	}
	if n, ok := rd.feed.longUpTo(line + 1); ok {
		return fmt.Errorf("%w: line %d is longer than %d bytes", ErrReportHeader, n, rd.feed.maxLine)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrReportHeader, err)
	}
	rd.names = slices.Clone(rec)
	rd.nfields = len(rec)
	var missing []string
	for i, field := range operationFields {
		want := cols.Header(field)
		at := -1
		for j, name := range rd.names {
			if name != want {
				continue
			}
			if at >= 0 {
				return fmt.Errorf("%w: column %q appears twice (columns %d and %d)", ErrReportHeader, truncateText(want, 64), at+1, j+1)
			}
			at = j
		}
		if at < 0 {
			if want == field {
				missing = append(missing, strconv.Quote(truncateText(want, 64)))
			} else {
				missing = append(missing, fmt.Sprintf("%q (%s)", truncateText(want, 64), field))
			}
		}
		rd.index[i] = at
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: no column %s in the header %q (map other names with --columns FIELD=HEADER,…)",
			ErrReportHeader, strings.Join(missing, ", "), truncateText(strings.Join(rd.names, ","), 200))
	}
	return nil
}

func (rd *reportReader) rows(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := rd.csv.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var pe *csv.ParseError
		if err != nil && !errors.As(err, &pe) {
			return rd.readError(err)
		}
		text := trimRecord(rd.feed.take(rd.csv.InputOffset()))
		var start int
		if pe != nil {
			start = pe.StartLine
		} else {
			start, _ = rd.csv.FieldPos(0)
		}
		end := start + strings.Count(text, "\n")
		if pe != nil {
			end = max(end, pe.Line)
		}
		// A line too long was handed to the CSV reader as a line of its
		// own: a row of that line alone, or part of the row that holds it.
		for {
			n, ok := rd.feed.longBefore(start)
			if !ok {
				break
			}
			if err := rd.fail(ports.RowError{Line: n, Message: rd.tooLong()}); err != nil {
				return err
			}
		}
		if n, ok := rd.feed.longUpTo(end + 1); ok {
			if err := rd.fail(ports.RowError{Line: n, Message: rd.tooLong()}); err != nil {
				return err
			}
			continue
		}
		if pe != nil {
			col := ""
			if len(rec) < len(rd.names) {
				col = rd.names[len(rec)]
			}
			if err := rd.fail(ports.RowError{Line: start, Column: col,
				Message: fmt.Sprintf("not CSV: %v (line %d, byte %d)", pe.Err, pe.Line, pe.Column)}); err != nil {
				return err
			}
			continue
		}
		if err := rd.record(start, rec, text); err != nil {
			return err
		}
	}
	for {
		n, ok := rd.feed.longBefore(math.MaxInt)
		if !ok {
			return nil
		}
		if err := rd.fail(ports.RowError{Line: n, Message: rd.tooLong()}); err != nil {
			return err
		}
	}
}

func (rd *reportReader) record(line int, rec []string, text string) error {
	if len(rec) != rd.nfields {
		return rd.fail(ports.RowError{Line: line,
			Message: fmt.Sprintf("has %d fields, the header has %d", len(rec), rd.nfields)})
	}
	var t opText
	for i := range t {
		t[i] = strings.TrimSpace(rec[rd.index[i]])
	}
	r, fault := t.read(rd.units, rd.day)
	if fault != nil {
		return rd.fail(ports.RowError{Line: line, Column: rd.names[rd.index[fault.field]], Message: fault.message})
	}
	r.Line = line
	r.Raw = evidenceText(text)
	rd.sum.Rows++
	return rd.row(r)
}

func (rd *reportReader) fail(e ports.RowError) error {
	rd.sum.Rows++
	rd.sum.Bad++
	return rd.bad(e)
}

func (rd *reportReader) tooLong() string {
	return fmt.Sprintf("the line is longer than %d bytes", rd.feed.maxLine)
}

func (rd *reportReader) readError(err error) error {
	if errors.Is(err, errRecordTooLong) {
		return fmt.Errorf("report: %w (from line %d on, a quote that never closes?)", err, rd.feed.recordLine)
	}
	return fmt.Errorf("report: %w", err)
}

func isParseError(err error) bool {
	var pe *csv.ParseError
	return errors.As(err, &pe)
}

// trimRecord removes the blank lines the CSV reader skipped before a row
// and the row's line end.
func trimRecord(s string) string {
	for {
		if t, ok := strings.CutPrefix(s, "\n"); ok {
			s = t
		} else if t, ok := strings.CutPrefix(s, "\r\n"); ok {
			s = t
		} else {
			break
		}
	}
	s = strings.TrimSuffix(s, "\n")
	return strings.TrimSuffix(s, "\r")
}

// evidenceText makes a row's text storable on every store: invalid UTF-8
// and NUL (refused by PostgreSQL's text) become U+FFFD.
func evidenceText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// errRecordTooLong: a row spans more than MaxReportRecordBytes.
var errRecordTooLong = fmt.Errorf("a row longer than %d bytes", MaxReportRecordBytes)

// lineFeed hands a report to the CSV reader one physical line at a time,
// so that no line longer than maxLine is ever held: such a line is
// skipped up to its end and replaced by a line of one NUL (a row the CSV
// reader returns at once, so that the line is reported in order, with
// line numbers unchanged). It keeps what it handed over since the last
// row (take), which is each row's text as read, and strips a UTF-8 byte
// order mark from the start.
type lineFeed struct {
	src       *bufio.Reader
	maxLine   int
	maxRecord int
	pending   []byte // the rest of the current line, not yet handed over
	kept      []byte // kept[start:] is what was handed over since stream offset base
	start     int
	base      int64
	lines     int   // physical lines read
	long      []int // lines replaced, not yet reported, in order
	err       error // the source's error (io.EOF at its end), once pending is out
	// recordLine is the line after the last row taken, for an error.
	recordLine int
}

var longLineMarker = []byte("\x00\n")

func newLineFeed(r io.Reader, maxLine, maxRecord int) *lineFeed {
	return &lineFeed{src: bufio.NewReaderSize(r, maxLine), maxLine: maxLine, maxRecord: maxRecord, recordLine: 1}
}

func (f *lineFeed) Read(p []byte) (int, error) {
	for len(f.pending) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		f.next()
	}
	if len(f.kept)-f.start >= f.maxRecord {
		return 0, errRecordTooLong
	}
	n := copy(p, f.pending)
	f.pending = f.pending[n:]
	f.kept = append(f.kept, p[:n]...)
	return n, nil
}

// next reads one physical line into pending.
func (f *lineFeed) next() {
	line, err := f.src.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = f.src.ReadSlice('\n')
		}
		f.lines++
		f.long = append(f.long, f.lines)
		f.pending = longLineMarker
	} else {
		if len(line) > 0 {
			f.lines++
		}
		if f.lines == 1 && f.base == 0 && len(f.kept) == 0 {
			line = trimBOM(line)
		}
		f.pending = line
	}
	if err != nil {
		f.err = err
	}
}

func trimBOM(b []byte) []byte {
	if len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF {
		return b[3:]
	}
	return b
}

// take returns what was handed over up to stream offset to (the CSV
// reader's InputOffset after a row) and forgets it. The bytes kept are
// moved to the buffer's front only once the forgotten part is the larger,
// so that a row costs a copy of itself, not of what was read ahead.
func (f *lineFeed) take(to int64) string {
	k := int(to - f.base)
	if k < 0 || k > len(f.kept)-f.start {
		k = len(f.kept) - f.start
	}
	out := string(f.kept[f.start : f.start+k])
	f.start += k
	if f.start > len(f.kept)-f.start {
		n := copy(f.kept, f.kept[f.start:])
		f.kept, f.start = f.kept[:n], 0
	}
	f.base = to
	f.recordLine = f.lines + 1
	return out
}

// longBefore pops the first unreported long line if it lies before line.
func (f *lineFeed) longBefore(line int) (int, bool) {
	if len(f.long) == 0 || f.long[0] >= line {
		return 0, false
	}
	n := f.long[0]
	f.long = f.long[1:]
	return n, true
}

// longUpTo pops every unreported long line before line and returns the
// first.
func (f *lineFeed) longUpTo(line int) (int, bool) {
	first, ok := f.longBefore(line)
	if !ok {
		return 0, false
	}
	for {
		if _, more := f.longBefore(line); !more {
			return first, true
		}
	}
}

// ReportWriter writes a report in the form ReportSource reads (the
// simulator's tiyn simulate --report-csv). Times are written in loc.
type ReportWriter struct {
	w      *csv.Writer
	loc    *time.Location
	opts   ReportOptions
	header bool
	rec    []string
}

// NewReportWriter checks opts (Columns and Units are used; the header is
// written in the mapped names) and returns a writer to w.
func NewReportWriter(w io.Writer, loc *time.Location, opts ReportOptions) (*ReportWriter, error) {
	if loc == nil {
		return nil, errors.New("report writer: no time zone")
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	opts.Columns = cloneColumns(opts.Columns)
	return &ReportWriter{w: csv.NewWriter(w), loc: loc, opts: opts, rec: make([]string, numFields)}, nil
}

func (rw *ReportWriter) writeHeader() error {
	if rw.header {
		return nil
	}
	rw.header = true
	for i, f := range operationFields {
		rw.rec[i] = rw.opts.Columns.Header(f)
	}
	return rw.w.Write(rw.rec)
}

// Write writes one row (the header first). The amount is written in the
// writer's units: major units with the currency's decimals ("100.00"; an
// unlisted currency's amount as its integer), or minor units.
func (rw *ReportWriter) Write(r ports.SourceRow) error {
	if err := rw.writeHeader(); err != nil {
		return err
	}
	amount := r.Amount.String()
	if rw.opts.Units == AmountMinor {
		amount = strconv.FormatInt(r.Amount.Minor(), 10)
	}
	rw.rec[fProject], rw.rec[fPayment], rw.rec[fOperation] = r.ProjectID, r.PaymentID, r.OperationID
	rw.rec[fType], rw.rec[fStatus] = r.Type, r.Status
	rw.rec[fAmount], rw.rec[fCurrency] = amount, r.Amount.Currency().Code()
	rw.rec[fCompleted] = r.CompletedAt.In(rw.loc).Format(OperationTimeLayout)
	return rw.w.Write(rw.rec)
}

// Flush writes the header if no row was written (a day without operations
// is a header line) and flushes; it returns the first write error.
func (rw *ReportWriter) Flush() error {
	if err := rw.writeHeader(); err != nil {
		return err
	}
	rw.w.Flush()
	return rw.w.Error()
}

// WriteReport writes rows as a whole report to w.
func WriteReport(w io.Writer, loc *time.Location, opts ReportOptions, rows []ports.SourceRow) error {
	rw, err := NewReportWriter(w, loc, opts)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := rw.Write(r); err != nil {
			return err
		}
	}
	return rw.Flush()
}
