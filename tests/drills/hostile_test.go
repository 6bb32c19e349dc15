package drills_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/tiyn/tiyn/adapters/monetix/signature"
)

// The hostile corpus: testdata/hostile/<endpoint>/*.txt, one case a file.
//
// A case file is a header, a line "---", and the body sent, byte for byte
// (one final newline is dropped, so that editors may end the file with
// one). Header lines ("# …" lines are comments):
//
//	endpoint: requests | callbacks | rest   (the folder says it too)
//	method: POST                            (default POST; rest: any)
//	path: /v1/accounts                      (rest only; requests/callbacks have fixed paths)
//	header: Name: value                     (repeatable; "header: Content-Type:" sends none)
//	token: write | operator | read | none | wrong   (rest only; default write)
//	chunked: yes                            (send without Content-Length)
//	status: 400                             (the HTTP status expected)
//	code: 500                               (requests: the JSON "code" expected)
//	error: invalid_json                     (rest: the JSON error.code expected)
//	effect: exception                       (callbacks answered 200: the effect expected)
//	changes: callback_inbox+1 exceptions+1  (row count changes allowed; default none)
//	after-sign: OLD => NEW                  (repeatable: the body is altered after signing)
//	contains: TEXT                          (repeatable: the answer's body holds TEXT; placeholders filled)
//
// Placeholders, in the body, the path and header values:
//
//	{{sig}}            the body's signature with project 1234's key
//	{{sig:5678}}       the body's signature with project 5678's key
//	{{payment_id}}     a pending deposit of 100.00 KZT for {{customer_id}}
//	{{customer_id}}    a customer with an account funded with 100.00 KZT
//	{{account_id}}     that customer's account id
//	{{exception_id}}   an open exception
//	{{op}}             an operation id unique to the case
//	{{repeat N TEXT}}  TEXT (no "}}" inside) repeated N times
//
// Signatures are computed over the body with every other placeholder
// already filled in; the signature member's own value is not signed.
const hostileDir = "testdata/hostile"

// minCasesPerEndpoint is the corpus's promise (RELIABILITY.md).
const minCasesPerEndpoint = 50

// tables are the rows a hostile case may not change unless it says so.
var tables = []string{"accounts", "deposits", "transfers", "postings", "callback_inbox", "exceptions", "debits", "audit_log"}

// hostileCase is one parsed corpus file.
type hostileCase struct {
	file     string
	endpoint string
	method   string
	path     string
	headers  [][2]string
	noCT     bool
	token    string
	chunked  bool
	status   int
	code     *int
	errCode  string
	effect   string
	changes  map[string]int64
	tamper   [][2]string
	contains []string
	body     []byte
}

// loadCorpus reads every case under testdata/hostile.
func loadCorpus(t *testing.T) []hostileCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(hostileDir, "*", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus under %s: %v", hostileDir, err)
	}
	sort.Strings(files)
	var out []hostileCase
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		hc, err := parseCase(f, raw)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, hc)
	}
	return out
}

func parseCase(file string, raw []byte) (hostileCase, error) {
	hc := hostileCase{file: filepath.ToSlash(file), method: http.MethodPost, token: "write", changes: map[string]int64{}}
	head, body, ok := bytes.Cut(raw, []byte("\n---\n"))
	if !ok {
		return hc, fmt.Errorf(`no "---" line between header and body`)
	}
	hc.body = bytes.TrimSuffix(body, []byte("\n"))
	for _, line := range strings.Split(string(head), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			return hc, fmt.Errorf("header line %q is not key: value", line)
		}
		value = strings.TrimSpace(value)
		switch key {
		case "endpoint":
			hc.endpoint = value
		case "method":
			hc.method = value
		case "path":
			hc.path = value
		case "header":
			name, v, _ := strings.Cut(value, ":")
			name, v = strings.TrimSpace(name), strings.TrimSpace(v)
			if strings.EqualFold(name, "Content-Type") && v == "" {
				hc.noCT = true
				continue
			}
			hc.headers = append(hc.headers, [2]string{name, v})
		case "token":
			hc.token = value
		case "chunked":
			hc.chunked = value == "yes"
		case "status":
			n, err := strconv.Atoi(value)
			if err != nil {
				return hc, fmt.Errorf("status %q", value)
			}
			hc.status = n
		case "code":
			n, err := strconv.Atoi(value)
			if err != nil {
				return hc, fmt.Errorf("code %q", value)
			}
			hc.code = &n
		case "error":
			hc.errCode = value
		case "effect":
			hc.effect = value
		case "after-sign":
			old, repl, ok := strings.Cut(value, " => ")
			if !ok || old == "" {
				return hc, fmt.Errorf("after-sign %q: want OLD => NEW", value)
			}
			hc.tamper = append(hc.tamper, [2]string{old, repl})
		case "contains":
			if value == "" {
				return hc, fmt.Errorf("contains needs a text")
			}
			hc.contains = append(hc.contains, value)
		case "changes":
			for _, ch := range strings.Fields(value) {
				name, n, ok := strings.Cut(ch, "+")
				d, err := strconv.ParseInt(n, 10, 64)
				if !ok || err != nil {
					return hc, fmt.Errorf("changes %q: want table+N", ch)
				}
				hc.changes[name] = d
			}
		default:
			return hc, fmt.Errorf("unknown header key %q", key)
		}
	}
	dir := filepath.Base(filepath.Dir(file))
	switch {
	case hc.endpoint != dir:
		return hc, fmt.Errorf("endpoint %q in folder %q", hc.endpoint, dir)
	case hc.status == 0:
		return hc, fmt.Errorf("no expected status")
	case hc.endpoint == "requests" && hc.status == http.StatusOK && hc.code == nil:
		return hc, fmt.Errorf("a request answered 200 needs an expected code")
	case hc.endpoint == "rest" && hc.path == "":
		return hc, fmt.Errorf("a rest case needs a path")
	case hc.endpoint == "rest" && hc.status >= 400 && hc.errCode == "" && hc.status != http.StatusRequestHeaderFieldsTooLarge:
		return hc, fmt.Errorf("a rest error needs an expected error code")
	case hc.endpoint == "callbacks" && hc.status == http.StatusOK && hc.effect == "":
		return hc, fmt.Errorf("a callback answered 200 needs an expected effect")
	}
	return hc, nil
}

// fixtures are the existing things placeholders name.
type fixtures struct {
	customerID, accountID, paymentID, exceptionID string
	c                                             creds
}

var repeatRE = regexp.MustCompile(`\{\{repeat (\d+) ((?:[^}]|\}[^}])*)\}\}`)

// maxRepeatBytes bounds what one {{repeat}} may expand to.
const maxRepeatBytes = 8 << 20

// expand fills in the placeholders of one case (opSeq makes {{op}} unique).
func (f fixtures) expand(b []byte, op string) ([]byte, error) {
	var err error
	b = repeatRE.ReplaceAllFunc(b, func(m []byte) []byte {
		sub := repeatRE.FindSubmatch(m)
		n, _ := strconv.Atoi(string(sub[1]))
		if n*len(sub[2]) > maxRepeatBytes {
			err = fmt.Errorf("repeat expands beyond %d bytes", maxRepeatBytes)
			return nil
		}
		return bytes.Repeat(sub[2], n)
	})
	if err != nil {
		return nil, err
	}
	r := strings.NewReplacer("{{payment_id}}", f.paymentID, "{{customer_id}}", f.customerID,
		"{{account_id}}", f.accountID, "{{exception_id}}", f.exceptionID, "{{op}}", op)
	b = []byte(r.Replace(string(b)))
	for _, p := range []struct {
		marker string
		secret []byte
	}{{"{{sig}}", f.c.secret}, {"{{sig:" + otherProjectID + "}}", f.c.otherSecret}} {
		at := bytes.Index(b, []byte(p.marker))
		if at < 0 {
			continue
		}
		sig, err := signature.SignBody(p.secret, signedPart(b, at))
		if err != nil {
			return nil, fmt.Errorf("%s in a body that cannot be signed: %w", p.marker, err)
		}
		b = bytes.ReplaceAll(b, []byte(p.marker), []byte(sig))
	}
	return b, nil
}

// signedPart is the part of b a signature placeholder at offset at signs:
// the whole body when it is a JSON object, else the object around the
// placeholder, so that a signed callback can be wrapped in an array, put
// behind a byte order mark or followed by trailing data.
func signedPart(b []byte, at int) []byte {
	if _, err := signature.Decode(b); err == nil {
		return b
	}
	start := bytes.IndexByte(b, '{')
	if start < 0 || start > at {
		return b
	}
	for end := at; end < len(b); end++ {
		if b[end] != '}' {
			continue
		}
		if _, err := signature.Decode(b[start : end+1]); err == nil {
			return b[start : end+1]
		}
	}
	return b
}

// rowCounter counts the rows of every table straight from the database.
type rowCounter struct{ db *sql.DB }

func (r rowCounter) counts(t *testing.T) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, table := range tables {
		var n int64
		if err := r.db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		out[table] = n
	}
	return out
}

// TestDrillHostileInput sends every corpus case to a running server on
// SQLite and checks each answer against the case's documented one, the
// row counts against the case's allowed changes, the ledger check, and
// the server log for panics.
func TestDrillHostileInput(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tiyn.db")
	db, err := sql.Open(sqliteshim.ShimName, "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	runHostile(t, "hostile-sqlite", "sqlite:"+path, rowCounter{db})
}

// TestDrillHostileInputPostgres is the same corpus on PostgreSQL: no
// answer may depend on the store.
func TestDrillHostileInputPostgres(t *testing.T) {
	needFull(t)
	t.Parallel()
	url := freshPostgres(t)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	runHostile(t, "hostile-postgres", url, rowCounter{db})
}

func runHostile(t *testing.T, name, dbURL string, rc rowCounter) {
	cases := loadCorpus(t)
	per := map[string]int{}
	for _, hc := range cases {
		per[hc.endpoint]++
	}
	for _, ep := range []string{"requests", "callbacks", "rest"} {
		if per[ep] < minCasesPerEndpoint {
			t.Errorf("corpus has %d cases for %s, promised at least %d", per[ep], ep, minCasesPerEndpoint)
		}
	}

	c := newCreds(t)
	s := newServer(t, dbURL, c, "TIYN_LOG_LEVEL=debug")
	s.start()
	s.mustReady()
	fx := fixtures{c: c, customerID: "hostile-c1"}
	fx.accountID = openAccount(t, s, c, fx.customerID).ID
	fund(t, s, c, fx.customerID, 10000)
	var err error
	if fx.paymentID, err = openDeposit(t, s, c, fx.customerID, 10000); err != nil {
		t.Fatal(err)
	}
	resp, err := postCallback(s, callbackBody(t, c, "hostile-unknown-payment", "success", 5000))
	if err != nil || resp.status != http.StatusOK {
		t.Fatalf("fixture exception: %v %d %s", err, resp.status, resp.body)
	}
	var exc struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	if _, err := restJSON(s, c.readToken, http.MethodGet, "/v1/exceptions?state=open", nil, &exc); err != nil || len(exc.Items) != 1 {
		t.Fatalf("fixture exception: %v %+v", err, exc)
	}
	fx.exceptionID = exc.Items[0].ID

	before := checkLedger(t, s, c)
	sentBytes := 0
	statuses := map[int]int{}
	for i, hc := range cases {
		op := strconv.Itoa(900_000_000 + i)
		prev := rc.counts(t)
		got, n, err := sendCase(s, c, fx, hc, op)
		sentBytes += n
		if err != nil {
			t.Errorf("%s: %v", hc.file, err)
			continue
		}
		statuses[got.status]++
		hc.contains = expandAll(fx, hc.contains, op)
		if msg := hc.verdict(got); msg != "" {
			t.Errorf("%s: %s; answer %d %.300s", hc.file, msg, got.status, got.body)
		}
		after := rc.counts(t)
		for _, table := range tables {
			if d := after[table] - prev[table]; d != hc.changes[table] {
				t.Errorf("%s: %s changed by %d rows, the case allows %d", hc.file, table, d, hc.changes[table])
			}
		}
	}
	after := checkLedger(t, s, c)
	if after.Transfers != before.Transfers || after.CustomerBalanceTotal != before.CustomerBalanceTotal {
		t.Errorf("the corpus moved money: transfers %d → %d, customer balances %d → %d",
			before.Transfers, after.Transfers, before.CustomerBalanceTotal, after.CustomerBalanceTotal)
	}
	if code, _ := s.readyz(); code != http.StatusOK || !s.running() {
		t.Errorf("server not ready after the corpus (/readyz %d)", code)
	}
	s.checkNoPanic(t)
	figures(t, name, "inputs", len(cases), "requests", per["requests"], "callbacks", per["callbacks"], "rest", per["rest"],
		"bytes_sent", sentBytes, "statuses", fmt.Sprint(statuses), "panics", 0, "money_moved", after.CustomerBalanceTotal-before.CustomerBalanceTotal)
}

// hostileClient is probeClient that never follows a redirect: a case's
// answer is the server's first answer, so an unclean path answered with a
// 307 is seen as a 307, not as whatever the cleaned path answers.
var hostileClient = &http.Client{
	Timeout:       probeClient.Timeout,
	Transport:     probeClient.Transport,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// expandAll fills in the placeholders of texts (a new slice).
func expandAll(fx fixtures, texts []string, op string) []string {
	out := make([]string, len(texts))
	for i, text := range texts {
		out[i] = text
		if b, err := fx.expand([]byte(text), op); err == nil {
			out[i] = string(b)
		}
	}
	return out
}

// sendCase sends one case and returns the answer and the body size.
func sendCase(s *server, c creds, fx fixtures, hc hostileCase, op string) (response, int, error) {
	body, err := fx.expand(hc.body, op)
	if err != nil {
		return response{}, 0, err
	}
	for _, tp := range hc.tamper {
		if !bytes.Contains(body, []byte(tp[0])) {
			return response{}, 0, fmt.Errorf("after-sign: %q is not in the body", tp[0])
		}
		body = bytes.Replace(body, []byte(tp[0]), []byte(tp[1]), 1)
	}
	path := hc.path
	switch hc.endpoint {
	case "requests":
		path = requestsPath
	case "callbacks":
		path = callbacksPath
	}
	if p, err := fx.expand([]byte(path), op); err == nil {
		path = string(p)
	}
	var reader io.Reader = bytes.NewReader(body)
	if hc.chunked {
		reader = io.MultiReader(bytes.NewReader(body)) // hides the length: chunked encoding
	}
	ctx, cancel := context.WithTimeout(context.Background(), httpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, hc.method, s.url()+path, reader)
	if err != nil {
		return response{}, 0, err
	}
	if len(body) == 0 && !hc.chunked {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	if !hc.noCT {
		req.Header.Set("Content-Type", "application/json")
	}
	if hc.endpoint == "rest" {
		switch hc.token {
		case "write":
			req.Header.Set("Authorization", "Bearer "+c.writeToken)
		case "operator":
			req.Header.Set("Authorization", "Bearer "+c.operatorToken)
		case "read":
			req.Header.Set("Authorization", "Bearer "+c.readToken)
		case "wrong":
			req.Header.Set("Authorization", "Bearer "+c.writeToken+"x")
		case "none":
		}
	}
	for _, h := range hc.headers {
		v, err := fx.expand([]byte(h[1]), op)
		if err != nil {
			return response{}, 0, err
		}
		req.Header.Set(h[0], string(v))
	}
	resp, err := hostileClient.Do(req)
	if err != nil {
		return response{}, len(body), err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return response{status: resp.StatusCode, header: resp.Header, body: b}, len(body), err
}

// verdict compares an answer with the case's expectation; "" means it
// matches.
func (hc hostileCase) verdict(got response) string {
	if got.status != hc.status {
		return fmt.Sprintf("HTTP %d, documented %d", got.status, hc.status)
	}
	for _, want := range hc.contains {
		if !bytes.Contains(got.body, []byte(want)) {
			return fmt.Sprintf("the answer lacks %q", want)
		}
	}
	if got.status == http.StatusRequestHeaderFieldsTooLarge {
		return "" // net/http's own plain-text answer
	}
	switch hc.endpoint {
	case "requests":
		var a requestAnswer
		if err := json.Unmarshal(got.body, &a); err != nil {
			return "answer is not JSON"
		}
		if hc.code != nil && a.Code != *hc.code {
			return fmt.Sprintf("code %d, documented %d", a.Code, *hc.code)
		}
		if a.Code != 0 && a.Errors.Message == "" {
			return "an error answer without errors.message"
		}
	case "callbacks":
		var a struct {
			Status, Effect, Error string
		}
		if err := json.Unmarshal(got.body, &a); err != nil {
			return "answer is not JSON"
		}
		if got.status == http.StatusOK && (a.Status != "ok" || a.Effect != hc.effect) {
			return fmt.Sprintf("effect %q, documented %q", a.Effect, hc.effect)
		}
		if got.status != http.StatusOK && (a.Status != "error" || a.Error == "") {
			return "an error answer without status error and a message"
		}
	case "rest":
		if got.status < 400 {
			return ""
		}
		var a struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(got.body, &a); err != nil {
			return "error answer is not JSON"
		}
		if a.Error.Code != hc.errCode || a.Error.Message == "" {
			return fmt.Sprintf("error code %q, documented %q", a.Error.Code, hc.errCode)
		}
	}
	return ""
}

// TestCorpusParses keeps the corpus well-formed even where no server can
// run: every file parses, every endpoint has its cases.
func TestCorpusParses(t *testing.T) {
	t.Parallel()
	cases := loadCorpus(t)
	seen := map[string]bool{}
	for _, hc := range cases {
		seen[hc.endpoint] = true
		if _, err := (fixtures{c: creds{secret: []byte("x"), otherSecret: []byte("y")}}).expand(hc.body, "1"); err != nil {
			t.Errorf("%s: %v", hc.file, err)
		}
	}
	for _, ep := range []string{"requests", "callbacks", "rest"} {
		if !seen[ep] {
			t.Errorf("no %s cases", ep)
		}
	}
	if _, err := parseCase("testdata/hostile/rest/x.txt", []byte("endpoint: rest\nstatus: 400\n---\n{}")); err == nil {
		t.Error("a rest case without a path parsed")
	}
	if _, err := parseCase("testdata/hostile/rest/x.txt", []byte("endpoint: rest\n{}")); err == nil {
		t.Error("a case without --- parsed")
	}
}
