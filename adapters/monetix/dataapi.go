package monetix

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix/signature"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// The Data API: the platform's record of a business day, asked for page by
// page, read as a ports.OperationSource (kind "data_api"). One request is
//
//	POST {data}/v1/operations/get
//	{"interval":{"from":"2026-12-02 00:00:00","to":"2026-12-03 00:00:00"},
//	 "time_zone":"Asia/Almaty","limit":1000,"offset":0,"fields":[…],
//	 "token":"…","signature":"…"}
//
// signed by the usual algorithm with the Data API token's own secret key
// (not a project's). The interval is the day's [start, end) in its zone;
// the answer's times are in that zone. Pages hold at most 1,000
// operations; the next page starts at offset + the page's length, and a
// short page is the last. Member names the vendor does not show come from
// a DataMapping (datamapping.go).

// Data API settings' defaults, the path and the limits.
const (
	// DataOperationsPath is the operations endpoint under the Data API URL.
	DataOperationsPath = "/v1/operations/get"
	// DefaultDataTimeout bounds one page request, connection to last byte.
	// The vendor says a request may take up to about five minutes; twice
	// that is still an answer.
	DefaultDataTimeout = 10 * time.Minute
	// MaxDataPageSize is the vendor's largest (and default) page.
	MaxDataPageSize = 1000
	// MaxDataPageBytes bounds one page's body: 1,000 operations of the
	// fields Tiyn asks for are a few hundred KiB; a full OperationItem
	// each, a few MiB.
	MaxDataPageBytes = 32 << 20
	// MaxDataPages bounds the pages of one day (a hundred million
	// operations): a platform that never sends a short page does not keep
	// a run going for ever.
	MaxDataPages = 100_000
	// MaxDataTokenLen bounds a token (the vendor's are 30 characters).
	MaxDataTokenLen = 256
)

// DataConfig configures a Data API source.
type DataConfig struct {
	// URL is the Data API's base URL ({data}; the Monetix host is not
	// public, so there is no default). It must be https, except on a
	// loopback host (tests, the simulator).
	URL string
	// Token is the Data API token made in the Dashboard; Secret is its
	// own secret key, which signs requests and verifies answers.
	Token  string
	Secret []byte
	// Timeout bounds one page request (DefaultDataTimeout when zero).
	Timeout time.Duration
	// PageSize is the limit asked for (MaxDataPageSize when zero; at most
	// that).
	PageSize int
	// Mapping names the members the reference does not show (the zero
	// value is DefaultDataMapping).
	Mapping DataMapping
	// Projects, when set, restricts the answer to these project ids;
	// otherwise the platform answers for every project of the token's user.
	Projects []string
	// RequireSignature refuses an answer without a signature. The vendor
	// says answers are signed; by default a signature is verified when
	// present and an answer without one is accepted (as for the Gate).
	RequireSignature bool
	// Client sends the requests; nil means a client of its own, which
	// follows no redirect (the token travels in the body). Its timeout is
	// not used: Timeout bounds each request.
	Client *http.Client
}

// DataSource reads a business day from the Data API. It is safe for
// concurrent use.
type DataSource struct {
	endpoint string
	token    string
	secret   []byte
	timeout  time.Duration
	pageSize int
	mapping  DataMapping
	projects []string
	signed   bool
	client   *http.Client
}

var _ ports.OperationSource = (*DataSource)(nil)

// NewDataSource checks cfg and builds a source.
func NewDataSource(cfg DataConfig) (*DataSource, error) {
	if cfg.URL == "" {
		return nil, errors.New("monetix data api: no URL (TIYN_MONETIX_DATA_URL)")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("monetix data api: URL %q must be scheme://host[:port][/path]", redactURL(cfg.URL))
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
	default:
		return nil, fmt.Errorf("monetix data api: URL %q must be https (plain http only on a loopback host)", redactURL(cfg.URL))
	}
	if err := validDataToken(cfg.Token); err != nil {
		return nil, err
	}
	if len(cfg.Secret) == 0 {
		return nil, errors.New("monetix data api: no secret key (TIYN_MONETIX_DATA_SECRET)")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("monetix data api: negative timeout %s", cfg.Timeout)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultDataTimeout
	}
	if cfg.PageSize < 0 || cfg.PageSize > MaxDataPageSize {
		return nil, fmt.Errorf("monetix data api: page size %d outside 1..%d", cfg.PageSize, MaxDataPageSize)
	}
	pageSize := cfg.PageSize
	if pageSize == 0 {
		pageSize = MaxDataPageSize
	}
	m := cfg.Mapping
	if m == (DataMapping{}) {
		m = DefaultDataMapping()
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	for _, p := range cfg.Projects {
		if _, ok := CanonicalProjectID(p); !ok {
			return nil, fmt.Errorf("monetix data api: %q is not a project id", truncateText(p, 32))
		}
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{
			Transport:     http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &DataSource{
		endpoint: strings.TrimSuffix(u.String(), "/") + DataOperationsPath,
		token:    cfg.Token, secret: append([]byte(nil), cfg.Secret...), timeout: timeout, pageSize: pageSize,
		mapping: m, projects: append([]string(nil), cfg.Projects...), signed: cfg.RequireSignature, client: client,
	}, nil
}

func validDataToken(t string) error {
	switch {
	case t == "":
		return errors.New("monetix data api: no token (TIYN_MONETIX_DATA_TOKEN)")
	case len(t) > MaxDataTokenLen:
		return fmt.Errorf("monetix data api: the token is longer than %d bytes", MaxDataTokenLen)
	case hasControl(t) || strings.ContainsAny(t, " \t"):
		return errors.New("monetix data api: the token holds a space or a control character")
	}
	return nil
}

// Kind is "data_api".
func (s *DataSource) Kind() string { return SourceKindDataAPI }

// Authenticated is true: the pages come from the platform's Data API, over
// HTTPS to its host (and with their signature verified when they carry one).
func (s *DataSource) Authenticated() bool { return true }

// Endpoint is the URL the source posts to.
func (s *DataSource) Endpoint() string { return s.endpoint }

// Mapping is the member mapping in use.
func (s *DataSource) Mapping() DataMapping { return s.mapping }

// DataAPIError is a page the Data API did not give: the run that asked
// must not take what it saw as the whole day. Reason is one of the Gate's
// NoAnswer… reasons (unavailable, timeout, rejected, bad_signature,
// unsigned, malformed).
type DataAPIError struct {
	Reason string
	Offset int // the page's offset
	Err    error
}

func (e *DataAPIError) Error() string {
	return fmt.Sprintf("monetix data api: page at offset %d: %s: %v", e.Offset, e.Reason, e.Err)
}

func (e *DataAPIError) Unwrap() error { return e.Err }

// Operations asks for day page by page (ports.OperationSource). An item
// that does not map to an operation (a member missing or unreadable, a
// time outside the day) is a bad row, with the member's path as its
// column; Line is the item's ordinal from 1 across pages; Raw is the
// item's JSON (members sorted). The hash covers every page's body as
// received, in order. Any page not received whole, not authentic or not
// of the answer's shape is a *DataAPIError; ctx's error is returned as is.
func (s *DataSource) Operations(ctx context.Context, day domain.BusinessDay, row func(ports.SourceRow) error, bad func(ports.RowError) error) (ports.SourceSummary, error) {
	if day.IsZero() {
		return ports.SourceSummary{}, errors.New("monetix data api: no business day")
	}
	hash := sha256.New()
	var sum ports.SourceSummary
	done := func(err error) (ports.SourceSummary, error) {
		sum.Hash = hex.EncodeToString(hash.Sum(nil))
		return sum, err
	}
	paths := s.mapping.itemPaths()
	offset := 0
	for page := 0; ; page++ {
		if page == MaxDataPages {
			return done(&DataAPIError{Reason: NoAnswerMalformed, Offset: offset,
				Err: fmt.Errorf("no short page after %d pages", MaxDataPages)})
		}
		body, err := BuildDataRequest(s.mapping, s.token, s.secret, day, s.projects, s.pageSize, offset)
		if err != nil {
			return done(err)
		}
		raw, err := s.post(ctx, body, offset)
		if err != nil {
			return done(err)
		}
		hash.Write(raw)
		items, err := s.items(raw)
		if err != nil {
			return done(&DataAPIError{Reason: reasonOf(err), Offset: offset, Err: err})
		}
		if len(items) > s.pageSize {
			return done(&DataAPIError{Reason: NoAnswerMalformed, Offset: offset,
				Err: fmt.Errorf("%d operations on a page of at most %d", len(items), s.pageSize)})
		}
		for _, it := range items {
			sum.Rows++
			r, rowErr := dataItemRow(it, paths, s.mapping.AmountUnits, day)
			if rowErr != nil {
				rowErr.Line = sum.Rows
				sum.Bad++
				if err := bad(*rowErr); err != nil {
					return done(err)
				}
				continue
			}
			r.Line = sum.Rows
			if err := row(r); err != nil {
				return done(err)
			}
		}
		if len(items) < s.pageSize {
			return done(nil)
		}
		offset += len(items)
	}
}

// post sends one page request and returns the body of a 200 answer.
func (s *DataSource) post(ctx context.Context, body []byte, offset int) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fail := func(reason string, err error) ([]byte, error) {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, &DataAPIError{Reason: reason, Offset: offset, Err: err}
	}
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		if errors.Is(rctx.Err(), context.DeadlineExceeded) {
			return fail(NoAnswerTimeout, fmt.Errorf("no answer within %s", s.timeout))
		}
		return fail(NoAnswerUnavailable, err)
	}
	defer func() { _ = resp.Body.Close() }() // the body was read (or failed); nothing to report
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxDataPageBytes+1))
	if err != nil {
		if errors.Is(rctx.Err(), context.DeadlineExceeded) {
			return fail(NoAnswerTimeout, fmt.Errorf("answer not complete within %s", s.timeout))
		}
		return fail(NoAnswerUnavailable, err)
	}
	switch {
	case len(raw) > MaxDataPageBytes:
		return fail(NoAnswerMalformed, fmt.Errorf("answer larger than %d bytes", MaxDataPageBytes))
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return fail(NoAnswerUnavailable, fmt.Errorf("HTTP %d", resp.StatusCode))
	case resp.StatusCode != http.StatusOK:
		return fail(NoAnswerRejected, fmt.Errorf("HTTP %d: %s", resp.StatusCode, errorText(raw)))
	}
	return raw, nil
}

// pageError is why a page is not usable, with its reason.
type pageError struct {
	reason string
	err    error
}

func (e *pageError) Error() string { return e.err.Error() }
func (e *pageError) Unwrap() error { return e.err }

func reasonOf(err error) string {
	var pe *pageError
	if errors.As(err, &pe) {
		return pe.reason
	}
	return NoAnswerMalformed
}

// items checks a page's signature and returns its operations.
func (s *DataSource) items(raw []byte) ([]any, error) {
	doc, err := signature.Decode(raw)
	if err != nil {
		return nil, &pageError{NoAnswerMalformed, err}
	}
	if _, has := doc[dataSignature]; has {
		if err := signature.Verify(s.secret, doc); err != nil {
			return nil, &pageError{NoAnswerBadSignature, err}
		}
	} else if s.signed {
		return nil, &pageError{NoAnswerUnsigned, errors.New("the answer carries no signature and TIYN_MONETIX_DATA_REQUIRE_SIGNATURE is on")}
	}
	return pageItems(doc, s.mapping)
}

// pageItems returns the list under the mapping's items member. A page
// without it is not an empty page: a wrong mapping must not read as a
// day without operations.
func pageItems(doc map[string]any, m DataMapping) ([]any, error) {
	v, ok := lookupPath(doc, m.Items)
	if !ok {
		if list, isList := doc["errors"].([]any); isList && len(list) > 0 {
			return nil, &pageError{NoAnswerRejected, fmt.Errorf("the answer carries errors and no %s: %s", m.Items, errorsText(list))}
		}
		return nil, &pageError{NoAnswerMalformed, fmt.Errorf("the answer has no member %q (TIYN_MONETIX_DATA_MAPPING items=…)", m.Items)}
	}
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, &pageError{NoAnswerMalformed, fmt.Errorf("%s must be an array, got %s", m.Items, jsonType(v))}
	}
	return list, nil
}

// dataItemRow reads one item.
func dataItemRow(it any, paths [numFields]string, units AmountUnits, day domain.BusinessDay) (ports.SourceRow, *ports.RowError) {
	item, ok := it.(map[string]any)
	if !ok {
		return ports.SourceRow{}, &ports.RowError{Message: fmt.Sprintf("the item is not an object but %s", jsonType(it))}
	}
	var t opText
	for i, p := range paths {
		v, ok := lookupPath(item, p)
		switch x := v.(type) {
		case string:
			t[i] = x
		case json.Number:
			t[i] = string(x)
		default:
			msg := "is missing"
			if ok && v != nil {
				msg = "must be a string or a number, got " + jsonType(v)
			}
			return ports.SourceRow{}, &ports.RowError{Column: p, Message: msg}
		}
	}
	r, fault := t.read(units, day)
	if fault != nil {
		return ports.SourceRow{}, &ports.RowError{Column: paths[fault.field], Message: fault.message}
	}
	r.Raw = itemJSON(item)
	return r, nil
}

// itemJSON is an item's JSON, members sorted, nothing HTML-escaped.
func itemJSON(item map[string]any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(item); err != nil {
		return ""
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// BuildDataRequest builds the signed request for one page of day: its
// interval [start, end) as YYYY-MM-DD hh:mm:ss in the day's zone, the
// zone's IANA name, the page's limit and offset, the item fields to
// return (unless the mapping sends none), the project ids (when any), the
// token and the signature.
func BuildDataRequest(m DataMapping, token string, secret []byte, day domain.BusinessDay, projects []string, limit, offset int) ([]byte, error) {
	if len(secret) == 0 {
		return nil, signature.ErrNoSecret
	}
	zone := day.Location().String()
	if zone == "" || zone == "Local" {
		return nil, fmt.Errorf("monetix data api: the business day's zone %q is not an IANA name", zone)
	}
	interval := map[string]any{}
	setPath(interval, m.IntervalFrom, day.Start().Format(OperationTimeLayout))
	setPath(interval, m.IntervalTo, day.End().In(day.Location()).Format(OperationTimeLayout))
	doc := map[string]any{dataInterval: interval, dataToken: token}
	setPath(doc, m.TimeZone, zone)
	setPath(doc, m.Limit, json.Number(fmt.Sprint(limit)))
	setPath(doc, m.Offset, json.Number(fmt.Sprint(offset)))
	if m.Fields != "" {
		var fields []any
		for _, f := range m.itemFields() {
			fields = append(fields, f)
		}
		setPath(doc, m.Fields, fields)
	}
	if m.Projects != "" && len(projects) > 0 {
		ids := make([]any, len(projects))
		for i, p := range projects {
			ids[i] = json.Number(p)
		}
		setPath(doc, m.Projects, ids)
	}
	return SignedJSON(secret, doc)
}

// The platform's side of the Data API, for the simulator and the tests.

// DataRequest is a page request as the platform reads it.
type DataRequest struct {
	Token string
	// From and To are the interval, in Zone.
	From, To time.Time
	Zone     *time.Location
	Limit    int // MaxDataPageSize when the request has none
	Offset   int
	Fields   []string // nil when the request has no list
	Projects []string // nil when the request has no list
}

// ErrUnknownDataToken: a request's token is not one the platform knows.
var ErrUnknownDataToken = errors.New("unknown Data API token")

// ParseDataRequest reads a page request named by m, after checking its
// signature with the secret of its token (secretOf returns nil for a
// token it does not know: ErrUnknownDataToken). Errors wrap
// signature.ErrMalformed, signature.ErrInvalidSignature,
// ErrUnknownDataToken or ErrInvalidField.
func ParseDataRequest(m DataMapping, body []byte, secretOf func(token string) []byte) (DataRequest, error) {
	doc, err := signature.Decode(body)
	if err != nil {
		return DataRequest{}, err
	}
	var r DataRequest
	if r.Token, err = stringField(doc, "", dataToken, MaxDataTokenLen, true); err != nil {
		return DataRequest{}, err
	}
	secret := secretOf(r.Token)
	if len(secret) == 0 {
		return DataRequest{}, ErrUnknownDataToken
	}
	if err := signature.Verify(secret, doc); err != nil {
		return DataRequest{}, err
	}
	zone, err := pathString(doc, m.TimeZone, m.TimeZone)
	if err != nil {
		return DataRequest{}, err
	}
	if r.Zone, err = time.LoadLocation(zone); err != nil || zone == "" || zone == "Local" {
		return DataRequest{}, fieldErr(m.TimeZone, "is not an IANA time zone: %q", truncateText(zone, 40))
	}
	interval, ok := doc[dataInterval].(map[string]any)
	if !ok {
		return DataRequest{}, fieldErr(dataInterval, "must be an object")
	}
	for _, end := range []struct {
		path string
		at   *time.Time
	}{{m.IntervalFrom, &r.From}, {m.IntervalTo, &r.To}} {
		s, err := pathString(interval, end.path, dataInterval+"."+end.path)
		if err != nil {
			return DataRequest{}, err
		}
		if *end.at, err = time.ParseInLocation(OperationTimeLayout, s, r.Zone); err != nil {
			return DataRequest{}, fieldErr(dataInterval+"."+end.path, "is not YYYY-MM-DD hh:mm:ss: %q", truncateText(s, 40))
		}
	}
	if r.Limit, err = pathInt(doc, m.Limit, MaxDataPageSize, 1, MaxDataPageSize); err != nil {
		return DataRequest{}, err
	}
	if r.Offset, err = pathInt(doc, m.Offset, 0, 0, MaxDataPageSize*MaxDataPages); err != nil {
		return DataRequest{}, err
	}
	if r.Fields, err = pathList(doc, m.Fields, false); err != nil {
		return DataRequest{}, err
	}
	if r.Projects, err = pathList(doc, m.Projects, true); err != nil {
		return DataRequest{}, err
	}
	return r, nil
}

// pathString reads a string member; name is its name in an error.
func pathString(doc map[string]any, path, name string) (string, error) {
	v, ok := lookupPath(doc, path)
	if !ok || v == nil {
		return "", fieldErr(name, "is missing")
	}
	s, ok := v.(string)
	if !ok {
		return "", fieldErr(name, "must be a string, got %s", jsonType(v))
	}
	return s, nil
}

// pathInt reads an optional integer member in [lo, hi] (def when absent).
func pathInt(doc map[string]any, path string, def, lo, hi int) (int, error) {
	v, ok := lookupPath(doc, path)
	if !ok || v == nil {
		return def, nil
	}
	n, ok := v.(json.Number)
	i, err := n.Int64()
	if !ok || err != nil || !isInteger(string(n)) || i < int64(lo) || i > int64(hi) {
		return 0, fieldErr(path, "must be an integer in %d..%d", lo, hi)
	}
	return int(i), nil
}

// pathList reads an optional list of strings (or of integers, numbers).
func pathList(doc map[string]any, path string, numbers bool) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	v, ok := lookupPath(doc, path)
	if !ok || v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fieldErr(path, "must be an array, got %s", jsonType(v))
	}
	out := make([]string, 0, len(list))
	for i, e := range list {
		switch x := e.(type) {
		case string:
			if !numbers {
				out = append(out, x)
				continue
			}
		case json.Number:
			if numbers {
				out = append(out, string(x))
				continue
			}
		}
		return nil, fieldErr(fmt.Sprintf("%s[%d]", path, i), "has the wrong type %s", jsonType(e))
	}
	return out, nil
}

// DataAPIItem is one operation as the platform lists it.
type DataAPIItem struct {
	ProjectID       string
	PaymentID       string
	OperationID     string // digits are written as a JSON number, other text as a string
	OperationType   string
	OperationStatus string
	AmountMinor     int64
	Currency        string
	CreatedAt       time.Time
	CompletedAt     time.Time
}

// DataAPIPage is one page of an answer.
type DataAPIPage struct {
	Items []DataAPIItem
}

// Body is the page's signed JSON body, members named by m, times in loc.
// With amount_units=major an amount is written as decimal text in its
// currency's exponent.
func (p DataAPIPage) Body(m DataMapping, secret []byte, loc *time.Location) ([]byte, error) {
	if loc == nil {
		return nil, errors.New("monetix data api page: no time zone")
	}
	items := make([]any, 0, len(p.Items))
	for _, it := range p.Items {
		items = append(items, it.object(m, loc))
	}
	doc := map[string]any{}
	setPath(doc, m.Items, items)
	return SignedJSON(secret, doc)
}

func (it DataAPIItem) object(m DataMapping, loc *time.Location) map[string]any {
	o := map[string]any{
		dataProjectID:   json.Number(it.ProjectID),
		dataPaymentID:   it.PaymentID,
		dataCreatedAt:   it.CreatedAt.In(loc).Format(OperationTimeLayout),
		dataCompletedAt: it.CompletedAt.In(loc).Format(OperationTimeLayout),
	}
	if !isJSONInteger(it.ProjectID) {
		o[dataProjectID] = it.ProjectID
	}
	o[dataOperationID] = it.OperationID
	if isJSONInteger(it.OperationID) {
		o[dataOperationID] = json.Number(it.OperationID)
	}
	setPath(o, m.OperationType, it.OperationType)
	setPath(o, m.OperationStatus, it.OperationStatus)
	if m.AmountUnits == AmountMajor {
		setPath(o, m.Amount, domain.NewAmount(it.AmountMinor, domain.CurrencyOf(it.Currency)).String())
	} else {
		setPath(o, m.Amount, json.Number(fmt.Sprint(it.AmountMinor)))
	}
	setPath(o, m.Currency, it.Currency)
	return o
}

// isJSONInteger: a non-negative integer as JSON writes it (no leading
// zero), which is how the platform writes ids.
func isJSONInteger(s string) bool {
	return isInteger(s) && s[0] != '-' && (s == "0" || s[0] != '0')
}
