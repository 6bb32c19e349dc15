package monetix_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/monetix/signature"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

const dataToken = "ZOyTL5shY8ddhpxdQyplRPJYmGV7Kv"

var dataSecret = []byte("data-api-secret-of-the-token")

// dataPlatform is the platform's side of /v1/operations/get, built on the
// exported wire (as the simulator will be): it checks each request's
// signature with the token's secret and serves items page by page.
type dataPlatform struct {
	t       testing.TB
	mapping monetix.DataMapping
	items   []monetix.DataAPIItem
	// answerSecret signs the pages (nil: unsigned).
	answerSecret []byte
	// answer, when set, replaces the page for the n-th request (from 0).
	answer func(w http.ResponseWriter, n int, req monetix.DataRequest) bool

	mu       sync.Mutex
	requests []monetix.DataRequest
	raw      [][]byte // request bodies
	pages    [][]byte // page bodies sent
}

func newDataPlatform(t testing.TB, items []monetix.DataAPIItem) *dataPlatform {
	return &dataPlatform{t: t, mapping: monetix.DefaultDataMapping(), items: items, answerSecret: dataSecret}
}

func (p *dataPlatform) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != monetix.DataOperationsPath {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	req, err := monetix.ParseDataRequest(p.mapping, body, func(token string) []byte {
		if token == dataToken {
			return dataSecret
		}
		return nil
	})
	if err != nil {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `{"errors":[{"code":"403","message":%q}]}`, err.Error())
		return
	}
	p.mu.Lock()
	n := len(p.requests)
	p.requests = append(p.requests, req)
	p.raw = append(p.raw, body)
	p.mu.Unlock()
	if p.answer != nil && p.answer(w, n, req) {
		return
	}
	start := min(req.Offset, len(p.items))
	end := min(start+req.Limit, len(p.items))
	page, err := monetix.DataAPIPage{Items: p.items[start:end]}.Body(p.mapping, p.secretOrUnsigned(), req.Zone)
	if err != nil {
		p.t.Errorf("page body: %v", err)
		return
	}
	p.mu.Lock()
	p.pages = append(p.pages, page)
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(page)
}

// secretOrUnsigned signs with answerSecret; without one the page is
// signed with a throwaway key and the signature removed below.
func (p *dataPlatform) secretOrUnsigned() []byte {
	if p.answerSecret != nil {
		return p.answerSecret
	}
	return []byte("unused")
}

func (p *dataPlatform) serve(t testing.TB) string {
	t.Helper()
	h := http.Handler(p)
	if p.answerSecret == nil {
		h = stripSignature(p)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// stripSignature removes the answer's top-level signature.
func stripSignature(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if doc, err := signature.Decode(body); err == nil {
			delete(doc, "signature")
			body, _ = json.Marshal(doc)
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
}

func dataItems(n int) []monetix.DataAPIItem {
	items := make([]monetix.DataAPIItem, n)
	for i := range items {
		items[i] = monetix.DataAPIItem{
			ProjectID: "1234", PaymentID: fmt.Sprintf("pay-%d", i+1), OperationID: fmt.Sprint(36011000000000 + i),
			OperationType: "sale", OperationStatus: "success", AmountMinor: int64(10000 + i), Currency: "KZT",
			CreatedAt:   reconDay.Start().Add(time.Duration(i) * time.Second),
			CompletedAt: reconDay.Start().Add(time.Duration(i)*time.Second + 500*time.Millisecond),
		}
	}
	return items
}

func newDataSource(t testing.TB, url string, mod func(*monetix.DataConfig)) *monetix.DataSource {
	t.Helper()
	cfg := monetix.DataConfig{URL: url, Token: dataToken, Secret: dataSecret}
	if mod != nil {
		mod(&cfg)
	}
	s, err := monetix.NewDataSource(cfg)
	if err != nil {
		t.Fatalf("NewDataSource: %v", err)
	}
	return s
}

func TestDataAPIPages(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		items, pageSize int
		requests        int
	}{
		{items: 2501, pageSize: 1000, requests: 3},
		{items: 2000, pageSize: 1000, requests: 3}, // the last page is empty
		{items: 7, pageSize: 3, requests: 3},
		{items: 0, pageSize: 0, requests: 1},
		{items: 999, pageSize: 0, requests: 1}, // a short first page is the last
	} {
		t.Run(fmt.Sprintf("%d items, pages of %d", tt.items, tt.pageSize), func(t *testing.T) {
			t.Parallel()
			p := newDataPlatform(t, dataItems(tt.items))
			src := newDataSource(t, p.serve(t), func(c *monetix.DataConfig) { c.PageSize = tt.pageSize })
			if src.Kind() != "data_api" {
				t.Fatalf("Kind %q", src.Kind())
			}
			c := collect(t, src, reconDay)
			if c.err != nil || len(c.bad) != 0 || len(c.rows) != tt.items {
				t.Fatalf("err %v, bad %d, rows %d", c.err, len(c.bad), len(c.rows))
			}
			if len(p.requests) != tt.requests {
				t.Fatalf("%d requests, want %d", len(p.requests), tt.requests)
			}
			size := tt.pageSize
			if size == 0 {
				size = monetix.MaxDataPageSize
			}
			h := sha256.New()
			for i, req := range p.requests {
				if req.Offset != i*size || req.Limit != size {
					t.Fatalf("request %d: offset %d limit %d", i, req.Offset, req.Limit)
				}
				h.Write(p.pages[i])
			}
			if c.sum.Hash != hex.EncodeToString(h.Sum(nil)) || c.sum.Rows != tt.items {
				t.Fatalf("summary %+v is not of the pages", c.sum)
			}
			for i, r := range c.rows {
				it := p.items[i]
				want := ports.SourceRow{Line: i + 1, ProjectID: "1234", PaymentID: it.PaymentID, OperationID: it.OperationID,
					Type: "sale", Status: "success", Amount: kzt(it.AmountMinor), CompletedAt: it.CompletedAt.Truncate(time.Second), Raw: r.Raw}
				if r != want && !(r.CompletedAt.Equal(want.CompletedAt) && withoutTime(r) == withoutTime(want)) {
					t.Fatalf("row %d: %+v, want %+v", i, r, want)
				}
			}
		})
	}
}

func withoutTime(r ports.SourceRow) ports.SourceRow { r.CompletedAt = time.Time{}; return r }

// TestDataAPIRequest: the day is sent as Almaty's interval, with the zone's
// name, the fields Tiyn reads, the projects, token and a signature the
// platform verifies.
func TestDataAPIRequest(t *testing.T) {
	t.Parallel()
	p := newDataPlatform(t, dataItems(1))
	src := newDataSource(t, p.serve(t), func(c *monetix.DataConfig) { c.Projects = []string{"1234", "5678"} })
	if c := collect(t, src, reconDay); c.err != nil || len(c.rows) != 1 {
		t.Fatalf("err %v, rows %+v", c.err, c.rows)
	}
	req := p.requests[0]
	if req.Zone.String() != "Asia/Almaty" || !req.From.Equal(reconDay.Start()) || !req.To.Equal(reconDay.End()) {
		t.Fatalf("request %+v", req)
	}
	if !slices.Equal(req.Fields, []string{"project_id", "payment_id", "operation_id", "operation_type", "operation_status",
		"sum_initial", "operation_completed_at"}) || !slices.Equal(req.Projects, []string{"1234", "5678"}) {
		t.Fatalf("fields %v, projects %v", req.Fields, req.Projects)
	}
	doc, err := signature.VerifyBody(dataSecret, p.raw[0])
	if err != nil {
		t.Fatalf("the request is not signed with the token's secret: %v", err)
	}
	interval := doc["interval"].(map[string]any)
	if interval["from"] != "2026-12-02 00:00:00" || interval["to"] != "2026-12-03 00:00:00" || doc["time_zone"] != "Asia/Almaty" ||
		doc["token"] != dataToken || doc["limit"] != json.Number("1000") || doc["offset"] != json.Number("0") {
		t.Fatalf("request body %s", p.raw[0])
	}
	// 2026-12-02 00:00 in Almaty (UTC+5) is 2026-12-01 19:00 UTC.
	if !req.From.Equal(time.Date(2026, 12, 1, 19, 0, 0, 0, time.UTC)) {
		t.Fatalf("from %s", req.From.UTC())
	}
}

func TestDataAPIItems(t *testing.T) {
	t.Parallel()
	good := func(id string) map[string]any {
		return map[string]any{"project_id": json.Number("1234"), "payment_id": id, "operation_id": json.Number("36011000001676"),
			"operation_type": "sale", "operation_status": "success", "operation_completed_at": "2026-12-02 10:00:00",
			"operation_created_at": "2026-12-02 09:59:00", "sum_initial": map[string]any{"amount": json.Number("10000"), "currency": "KZT"}}
	}
	with := func(id string, mod func(m map[string]any)) map[string]any { m := good(id); mod(m); return m }
	items := []any{
		good("a"),
		with("b", func(m map[string]any) { delete(m, "sum_initial") }),
		with("c", func(m map[string]any) { m["operation_completed_at"] = "2026-12-03 00:00:00" }),
		"not an object",
		with("d", func(m map[string]any) { m["sum_initial"] = map[string]any{"amount": "100.00", "currency": "KZT"} }),
		with("e", func(m map[string]any) { m["operation_status"] = map[string]any{} }),
		with("f", func(m map[string]any) { m["project_id"] = "1234"; m["sum_initial"].(map[string]any)["amount"] = "500" }),
		with("g", func(m map[string]any) { m["payment_id"] = json.Number("42") }),
	}
	p := newDataPlatform(t, nil)
	p.answer = func(w http.ResponseWriter, _ int, _ monetix.DataRequest) bool {
		body, err := monetix.SignedJSON(dataSecret, map[string]any{"operations": items})
		if err != nil {
			t.Error(err)
		}
		_, _ = w.Write(body)
		return true
	}
	c := collect(t, newDataSource(t, p.serve(t), nil), reconDay)
	if c.err != nil {
		t.Fatal(c.err)
	}
	wantBad := []ports.RowError{
		{Line: 2, Column: "sum_initial.amount", Message: "is missing"},
		{Line: 3, Column: "operation_completed_at", Message: "2026-12-03 00:00:00 is outside 2026-12-02"},
		{Line: 4, Message: "the item is not an object but a string"},
		{Line: 5, Column: "sum_initial.amount", Message: `"100.00": not an integer of minor units`},
		{Line: 6, Column: "operation_status", Message: "must be a string or a number, got an object"},
	}
	if !slices.Equal(c.bad, wantBad) {
		t.Fatalf("bad\n got %+v\nwant %+v", c.bad, wantBad)
	}
	if len(c.rows) != 3 || c.rows[0].Line != 1 || c.rows[1].Line != 7 || c.rows[1].Amount != kzt(500) || c.rows[2].PaymentID != "42" {
		t.Fatalf("rows %+v", c.rows)
	}
	wantRaw := `{"operation_completed_at":"2026-12-02 10:00:00","operation_created_at":"2026-12-02 09:59:00","operation_id":36011000001676,` +
		`"operation_status":"success","operation_type":"sale","payment_id":"a","project_id":1234,"sum_initial":{"amount":10000,"currency":"KZT"}}`
	if c.rows[0].Raw != wantRaw || c.rows[0].OperationID != "36011000001676" {
		t.Fatalf("raw %s", c.rows[0].Raw)
	}
	if c.sum.Rows != 8 || c.sum.Bad != 5 {
		t.Fatalf("summary %+v", c.sum)
	}
}

// TestDataAPIFailures: a page not given whole, authentic and of the
// answer's shape fails the run, with a reason.
func TestDataAPIFailures(t *testing.T) {
	t.Parallel()
	raw := func(status int, body string) func(http.ResponseWriter, int, monetix.DataRequest) bool {
		return func(w http.ResponseWriter, _ int, _ monetix.DataRequest) bool {
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
			return true
		}
	}
	signed := func(doc map[string]any) func(http.ResponseWriter, int, monetix.DataRequest) bool {
		return func(w http.ResponseWriter, _ int, _ monetix.DataRequest) bool {
			body, _ := monetix.SignedJSON(dataSecret, doc)
			_, _ = w.Write(body)
			return true
		}
	}
	secondPage := func(inner func(http.ResponseWriter, int, monetix.DataRequest) bool) func(http.ResponseWriter, int, monetix.DataRequest) bool {
		return func(w http.ResponseWriter, n int, req monetix.DataRequest) bool {
			return n == 1 && inner(w, n, req)
		}
	}
	tests := []struct {
		name    string
		setup   func(p *dataPlatform, c *monetix.DataConfig)
		reason  string
		message string
		offset  int
	}{
		{name: "5xx", setup: func(p *dataPlatform, _ *monetix.DataConfig) { p.answer = raw(http.StatusBadGateway, "busy") },
			reason: monetix.NoAnswerUnavailable, message: "HTTP 502"},
		{name: "429", setup: func(p *dataPlatform, _ *monetix.DataConfig) { p.answer = raw(http.StatusTooManyRequests, "") },
			reason: monetix.NoAnswerUnavailable, message: "HTTP 429"},
		{name: "5xx on the second page", setup: func(p *dataPlatform, c *monetix.DataConfig) {
			c.PageSize = 2
			p.answer = secondPage(raw(http.StatusInternalServerError, ""))
		}, reason: monetix.NoAnswerUnavailable, offset: 2},
		{name: "the platform refuses our signature", setup: func(_ *dataPlatform, c *monetix.DataConfig) { c.Secret = []byte("wrong secret") },
			reason: monetix.NoAnswerRejected, message: "HTTP 403: 403 monetix signature: invalid signature"},
		{name: "an unknown token", setup: func(_ *dataPlatform, c *monetix.DataConfig) { c.Token = "another" },
			reason: monetix.NoAnswerRejected, message: "unknown Data API token"},
		{name: "the answer's signature is wrong", setup: func(p *dataPlatform, _ *monetix.DataConfig) { p.answerSecret = []byte("not the token's") },
			reason: monetix.NoAnswerBadSignature},
		{name: "an unsigned answer when one is required", setup: func(p *dataPlatform, c *monetix.DataConfig) {
			p.answerSecret = nil
			c.RequireSignature = true
		}, reason: monetix.NoAnswerUnsigned},
		{name: "not JSON", setup: func(p *dataPlatform, _ *monetix.DataConfig) { p.answer = raw(http.StatusOK, "<html>") },
			reason: monetix.NoAnswerMalformed},
		{name: "a truncated page", setup: func(p *dataPlatform, _ *monetix.DataConfig) {
			p.answer = raw(http.StatusOK, `{"operations":[{"project_id":1`)
		},
			reason: monetix.NoAnswerMalformed},
		{name: "no items member", setup: func(p *dataPlatform, _ *monetix.DataConfig) { p.answer = signed(map[string]any{"data": []any{}}) },
			reason: monetix.NoAnswerMalformed, message: `no member "operations"`},
		{name: "items not a list", setup: func(p *dataPlatform, _ *monetix.DataConfig) { p.answer = signed(map[string]any{"operations": "none"}) },
			reason: monetix.NoAnswerMalformed, message: "must be an array"},
		{name: "errors only", setup: func(p *dataPlatform, _ *monetix.DataConfig) {
			p.answer = signed(map[string]any{"errors": []any{map[string]any{"code": "1", "message": "interval too long"}}})
		}, reason: monetix.NoAnswerRejected, message: "interval too long"},
		{name: "a page longer than the limit", setup: func(p *dataPlatform, c *monetix.DataConfig) {
			c.PageSize = 2
			p.answer = func(w http.ResponseWriter, _ int, req monetix.DataRequest) bool {
				body, _ := monetix.DataAPIPage{Items: dataItems(3)}.Body(p.mapping, dataSecret, req.Zone)
				_, _ = w.Write(body)
				return true
			}
		}, reason: monetix.NoAnswerMalformed, message: "3 operations on a page of at most 2"},
		{name: "a redirect is not followed", setup: func(p *dataPlatform, _ *monetix.DataConfig) {
			p.answer = func(w http.ResponseWriter, _ int, _ monetix.DataRequest) bool {
				w.Header().Set("Location", "https://elsewhere.example/v1/operations/get")
				w.WriteHeader(http.StatusFound)
				return true
			}
		}, reason: monetix.NoAnswerRejected, message: "HTTP 302"},
		{name: "another mapping on the platform", setup: func(p *dataPlatform, _ *monetix.DataConfig) {
			p.mapping = mustDataMapping(t, "items=data")
		}, reason: monetix.NoAnswerMalformed, message: `no member "operations"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newDataPlatform(t, dataItems(5))
			cfg := monetix.DataConfig{Token: dataToken, Secret: dataSecret}
			tt.setup(p, &cfg)
			cfg.URL = p.serve(t)
			src, err := monetix.NewDataSource(cfg)
			if err != nil {
				t.Fatal(err)
			}
			c := collect(t, src, reconDay)
			var de *monetix.DataAPIError
			if !errors.As(c.err, &de) || de.Reason != tt.reason || de.Offset != tt.offset || !strings.Contains(c.err.Error(), tt.message) {
				t.Fatalf("err %v, want a %s DataAPIError at offset %d with %q", c.err, tt.reason, tt.offset, tt.message)
			}
		})
	}
}

func TestDataAPIUnsignedAnswerAccepted(t *testing.T) {
	t.Parallel()
	p := newDataPlatform(t, dataItems(2))
	p.answerSecret = nil
	if c := collect(t, newDataSource(t, p.serve(t), nil), reconDay); c.err != nil || len(c.rows) != 2 {
		t.Fatalf("err %v, rows %d", c.err, len(c.rows))
	}
}

func TestDataAPITimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	p := newDataPlatform(t, dataItems(1))
	p.answer = func(http.ResponseWriter, int, monetix.DataRequest) bool {
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		return true
	}
	url := p.serve(t)
	t.Cleanup(func() { close(release) })
	src := newDataSource(t, url, func(c *monetix.DataConfig) { c.Timeout = 100 * time.Millisecond })
	c := collect(t, src, reconDay)
	var de *monetix.DataAPIError
	if !errors.As(c.err, &de) || de.Reason != monetix.NoAnswerTimeout {
		t.Fatalf("err %v", c.err)
	}
	// The caller's own cancellation is its error, not the platform's.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	src = newDataSource(t, url, nil)
	_, err := src.Operations(ctx, reconDay, func(ports.SourceRow) error { return nil }, func(ports.RowError) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &de) {
		t.Fatalf("err %v", err)
	}
}

func TestDataAPIUnreachable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c := collect(t, newDataSource(t, url, nil), reconDay)
	var de *monetix.DataAPIError
	if !errors.As(c.err, &de) || de.Reason != monetix.NoAnswerUnavailable {
		t.Fatalf("err %v", c.err)
	}
}

func TestDataAPIStops(t *testing.T) {
	t.Parallel()
	p := newDataPlatform(t, dataItems(5))
	src := newDataSource(t, p.serve(t), func(c *monetix.DataConfig) { c.PageSize = 2 })
	n := 0
	_, err := src.Operations(context.Background(), reconDay, func(ports.SourceRow) error {
		n++
		if n == 3 {
			return errStop
		}
		return nil
	}, func(ports.RowError) error { return nil })
	if err != errStop || len(p.requests) != 2 {
		t.Fatalf("err %v after %d requests", err, len(p.requests))
	}
}

// TestDataAPIMappingOverride: with the names changed on both sides (a
// nested page and pagination, amounts in major units, no field list), the
// day reads the same.
func TestDataAPIMappingOverride(t *testing.T) {
	t.Parallel()
	m := mustDataMapping(t, "items=result.operations, limit=pagination.limit,offset=pagination.offset,"+
		"amount=amount,currency=currency,amount_units=major,fields=,time_zone=timezone,interval_from=start,interval_to=end,"+
		"operation_type=type,operation_status=status,projects=projects")
	p := newDataPlatform(t, dataItems(5))
	p.mapping = m
	src := newDataSource(t, p.serve(t), func(c *monetix.DataConfig) { c.Mapping = m; c.PageSize = 2; c.Projects = []string{"1234"} })
	c := collect(t, src, reconDay)
	if c.err != nil || len(c.bad) != 0 || len(c.rows) != 5 || len(p.requests) != 3 {
		t.Fatalf("err %v, bad %+v, rows %d, requests %d", c.err, c.bad, len(c.rows), len(p.requests))
	}
	if c.rows[4].Amount != kzt(10004) || c.rows[4].Status != "success" {
		t.Fatalf("row %+v", c.rows[4])
	}
	if p.requests[2].Offset != 4 || p.requests[2].Limit != 2 || p.requests[0].Fields != nil || !slices.Equal(p.requests[0].Projects, []string{"1234"}) {
		t.Fatalf("requests %+v", p.requests)
	}
	doc, _ := signature.Decode(p.raw[0])
	if _, has := doc["fields"]; has || doc["pagination"] == nil || doc["timezone"] != "Asia/Almaty" ||
		doc["interval"].(map[string]any)["start"] != "2026-12-02 00:00:00" {
		t.Fatalf("request %s", p.raw[0])
	}
	if !strings.Contains(string(p.pages[0]), `"amount":"100.00"`) {
		t.Fatalf("page %s", p.pages[0])
	}
}

func mustDataMapping(t testing.TB, s string) monetix.DataMapping {
	t.Helper()
	m, err := monetix.ParseDataMapping(s)
	if err != nil {
		t.Fatalf("ParseDataMapping(%q): %v", s, err)
	}
	return m
}

func TestDataMapping(t *testing.T) {
	t.Parallel()
	def := monetix.DefaultDataMapping()
	want := "interval_from=from, interval_to=to, time_zone=time_zone, limit=limit, offset=offset, fields=fields, " +
		"projects=project_ids, items=operations, operation_type=operation_type, operation_status=operation_status, " +
		"amount=sum_initial.amount, currency=sum_initial.currency, amount_units=minor"
	if def.String() != want {
		t.Fatalf("default mapping\n%s\nwant\n%s", def, want)
	}
	if m, err := monetix.ParseDataMapping(want); err != nil || m != def {
		t.Fatalf("the printed default does not read back: %v", err)
	}
	if m, err := monetix.ParseDataMapping(""); err != nil || m != def {
		t.Fatalf("empty: %v", err)
	}
	m := mustDataMapping(t, " amount = sum.value , amount_units=major")
	if m.Amount != "sum.value" || m.AmountUnits != monetix.AmountMajor || m.Currency != def.Currency {
		t.Fatalf("override %s", m)
	}
	for _, bad := range []string{
		"nope=x",                        // not a key
		"amount=a,amount=b",             // twice
		"amount",                        // no '='
		"amount=",                       // empty, and not optional
		"amount=a..b",                   // empty name in a path
		"amount=a b",                    // a space
		"amount_units=cents",            // not a unit
		"limit=token",                   // the token's member
		"limit=page,offset=page",        // one member for two
		"limit=page,offset=page.offset", // one inside the other
		"amount=project_id",             // a known item member
		"currency=sum_initial",          // holds amount's path
		"items=signature",               // the answer's signature
		"interval_from=x,interval_to=x", // one end for both
		"time_zone=interval.zone",       // inside the interval
		"amount=" + strings.Repeat("a", 300) + "b", // too long
	} {
		if _, err := monetix.ParseDataMapping(bad); err == nil {
			t.Errorf("ParseDataMapping(%q) accepted", bad)
		}
	}
	if keys := monetix.DataMappingKeys(); len(keys) != 13 || keys[12] != "amount_units" {
		t.Fatalf("keys %v", keys)
	}
}

func TestNewDataSource(t *testing.T) {
	t.Parallel()
	ok := monetix.DataConfig{URL: "https://data.example.com", Token: dataToken, Secret: dataSecret}
	s, err := monetix.NewDataSource(ok)
	if err != nil || s.Endpoint() != "https://data.example.com/v1/operations/get" || s.Mapping() != monetix.DefaultDataMapping() {
		t.Fatalf("%v %v", s, err)
	}
	for name, mod := range map[string]func(*monetix.DataConfig){
		"no URL":                    func(c *monetix.DataConfig) { c.URL = "" },
		"plain http off loopback":   func(c *monetix.DataConfig) { c.URL = "http://data.example.com" },
		"a query":                   func(c *monetix.DataConfig) { c.URL = "https://data.example.com/?x=1" },
		"user info":                 func(c *monetix.DataConfig) { c.URL = "https://u:p@data.example.com" },
		"no token":                  func(c *monetix.DataConfig) { c.Token = "" },
		"a token with a space":      func(c *monetix.DataConfig) { c.Token = "a b" },
		"no secret":                 func(c *monetix.DataConfig) { c.Secret = nil },
		"a page over 1000":          func(c *monetix.DataConfig) { c.PageSize = 1001 },
		"a negative timeout":        func(c *monetix.DataConfig) { c.Timeout = -time.Second },
		"a bad project id":          func(c *monetix.DataConfig) { c.Projects = []string{"01"} },
		"a bad mapping":             func(c *monetix.DataConfig) { c.Mapping = monetix.DataMapping{Items: "x"} },
		"an overlapping mapping":    func(c *monetix.DataConfig) { c.Mapping = monetix.DefaultDataMapping(); c.Mapping.Limit = "offset" },
		"a token of 257 bytes":      func(c *monetix.DataConfig) { c.Token = strings.Repeat("t", 257) },
		"a control in the token":    func(c *monetix.DataConfig) { c.Token = "t\x00" },
		"an unsupported scheme":     func(c *monetix.DataConfig) { c.URL = "ftp://data.example.com" },
		"a URL that does not parse": func(c *monetix.DataConfig) { c.URL = "https://[::1" },
	} {
		cfg := ok
		mod(&cfg)
		if _, err := monetix.NewDataSource(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for _, url := range []string{"http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9/data"} {
		cfg := ok
		cfg.URL = url
		if _, err := monetix.NewDataSource(cfg); err != nil {
			t.Errorf("%s: %v", url, err)
		}
	}
}

func TestParseDataRequest(t *testing.T) {
	t.Parallel()
	m := monetix.DefaultDataMapping()
	secretOf := func(token string) []byte {
		if token == dataToken {
			return dataSecret
		}
		return nil
	}
	body, err := monetix.BuildDataRequest(m, dataToken, dataSecret, reconDay, nil, 500, 1500)
	if err != nil {
		t.Fatal(err)
	}
	req, err := monetix.ParseDataRequest(m, body, secretOf)
	if err != nil || req.Limit != 500 || req.Offset != 1500 || req.Projects != nil || req.Token != dataToken {
		t.Fatalf("%+v %v", req, err)
	}
	sign := func(doc map[string]any) []byte {
		b, err := monetix.SignedJSON(dataSecret, doc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	base := func() map[string]any {
		return map[string]any{"token": dataToken, "time_zone": "Asia/Almaty",
			"interval": map[string]any{"from": "2026-12-02 00:00:00", "to": "2026-12-03 00:00:00"}}
	}
	with := func(mod func(map[string]any)) []byte { d := base(); mod(d); return sign(d) }
	if req, err := monetix.ParseDataRequest(m, sign(base()), secretOf); err != nil || req.Limit != 1000 || req.Offset != 0 || req.Fields != nil {
		t.Fatalf("defaults: %+v %v", req, err)
	}
	for name, tt := range map[string]struct {
		body []byte
		want error
	}{
		"not JSON":         {[]byte("{"), signature.ErrMalformed},
		"unsigned":         {[]byte(`{"token":"` + dataToken + `"}`), signature.ErrInvalidSignature},
		"another key":      {func() []byte { b, _ := monetix.SignedJSON([]byte("x"), base()); return b }(), signature.ErrInvalidSignature},
		"unknown token":    {with(func(d map[string]any) { d["token"] = "other" }), monetix.ErrUnknownDataToken},
		"no token":         {with(func(d map[string]any) { delete(d, "token") }), monetix.ErrInvalidField},
		"no interval":      {with(func(d map[string]any) { delete(d, "interval") }), monetix.ErrInvalidField},
		"no zone":          {with(func(d map[string]any) { delete(d, "time_zone") }), monetix.ErrInvalidField},
		"a made-up zone":   {with(func(d map[string]any) { d["time_zone"] = "Mars/Olympus" }), monetix.ErrInvalidField},
		"an ISO interval":  {with(func(d map[string]any) { d["interval"].(map[string]any)["to"] = "2026-12-03T00:00:00" }), monetix.ErrInvalidField},
		"a page of 1001":   {with(func(d map[string]any) { d["limit"] = json.Number("1001") }), monetix.ErrInvalidField},
		"a limit of 0":     {with(func(d map[string]any) { d["limit"] = json.Number("0") }), monetix.ErrInvalidField},
		"an offset of -1":  {with(func(d map[string]any) { d["offset"] = json.Number("-1") }), monetix.ErrInvalidField},
		"a text limit":     {with(func(d map[string]any) { d["limit"] = "10" }), monetix.ErrInvalidField},
		"fields of ints":   {with(func(d map[string]any) { d["fields"] = []any{json.Number("1")} }), monetix.ErrInvalidField},
		"projects of text": {with(func(d map[string]any) { d["project_ids"] = []any{"1234"} }), monetix.ErrInvalidField},
	} {
		if _, err := monetix.ParseDataRequest(m, tt.body, secretOf); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", name, err, tt.want)
		}
	}
	utc, _ := domain.ParseBusinessDay("2026-12-02", time.UTC)
	if _, err := monetix.BuildDataRequest(m, dataToken, dataSecret, utc, nil, 1, 0); err != nil {
		t.Errorf("a UTC day: %v", err)
	}
	local, _ := domain.ParseBusinessDay("2026-12-02", time.Local)
	if _, err := monetix.BuildDataRequest(m, dataToken, dataSecret, local, nil, 1, 0); err == nil {
		t.Error("a day in the Local zone, which has no IANA name, was sent")
	}
}
