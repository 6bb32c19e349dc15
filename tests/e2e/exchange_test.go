package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/monetix/signature"
)

// EnvRecord set to "1" makes TestExchange rewrite ExchangeFile from its
// SQLite run.
const EnvRecord = "TIYN_E2E_RECORD"

// ExchangeFile is one full exchange recorded from a real run, quoted in the
// project's notes and checked by TestExchangeFile.
const ExchangeFile = "testdata/exchange.txt"

// The exchange is the method page's example: customer johndoe@example.com,
// 100.00 KZT at a Kassa24 terminal, operation 36011000001676.
const (
	exCustomer    = "johndoe@example.com"
	exAdditional  = "HFVDW42345"
	exAmount      = 10_000
	exOperationID = 36011000001676
	exProviderPay = "2024290410"
)

// Section markers of the exchange file.
const (
	markSection  = "=== "
	markRequest  = ">>> "
	markResponse = "<<< "
)

// exchangeStep is one recorded request and answer.
type exchangeStep struct {
	title string
	x     exchange
}

// TestExchange plays one full exchange — verify, check_deposit, callback,
// the same callback again — on each store, checks every answer, and
// records it to ExchangeFile when TIYN_E2E_RECORD=1 (from the SQLite run).
func TestExchange(t *testing.T) {
	t.Parallel()
	record := os.Getenv(EnvRecord) == "1"
	forEachStore(t, func(t *testing.T, s *server) {
		s.openAccount(t, exCustomer, exAdditional)
		steps := playExchange(t, s)
		text := formatExchange(steps)
		checkExchange(t, text)
		if record && strings.HasSuffix(t.Name(), "/sqlite") {
			if err := os.WriteFile(ExchangeFile, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("recorded %s", ExchangeFile)
		}
	})
}

// TestExchangeFile checks the committed recording: it must still be a
// valid exchange (signatures verify with the project's key, the callback
// settles the payment check_deposit opened, the replay is a replay), so the
// quoted exchange cannot silently drift from what the service does.
func TestExchangeFile(t *testing.T) {
	t.Parallel()
	if os.Getenv(EnvRecord) == "1" {
		t.Skip("being re-recorded by TestExchange, which checks the new text")
	}
	b, err := os.ReadFile(ExchangeFile)
	if err != nil {
		t.Fatalf("%v (record it with %s=1 go test -run TestExchange ./tests/e2e/)", err, EnvRecord)
	}
	checkExchange(t, string(b))
}

// playExchange sends the four platform messages, indented for people (the
// signature covers the values, not the layout), then reads the account.
func playExchange(t *testing.T, s *server) []exchangeStep {
	t.Helper()
	secret := []byte(secretPlain)
	var steps []exchangeStep
	post := func(title, path string, body []byte) exchange {
		x := s.mustSend(t, http.MethodPost, path, contentJSON, "", indented(t, body))
		steps = append(steps, exchangeStep{title, x})
		return x
	}
	post("verify", monetix.RequestsPath, signedBody(t, secret, monetix.VerifyRequestBody(projectPlain, exCustomer)))
	x := post("check_deposit", monetix.RequestsPath,
		signedBody(t, secret, monetix.CheckDepositRequestBody(projectPlain, exCustomer, exAmount, "KZT", "kassa24")))
	a, err := monetix.ParseAnswer(x.Answer, nil)
	if err != nil || a.PaymentID == "" {
		t.Fatalf("check_deposit answer %s: %v", x.Answer, err)
	}
	cb := signedBody(t, secret, monetix.BuildCallback(monetix.CallbackParams{
		ProjectID: projectPlain, PaymentID: a.PaymentID, PaymentStatus: "success", Method: "kassa24",
		AmountMinor: exAmount, Currency: "KZT", CustomerID: "6552", OperationID: exOperationID,
		ProviderPayment: exProviderPay, Date: time.Now().UTC().Truncate(time.Second),
	}))
	post("callback", monetix.CallbacksPath, cb)
	post("the same callback again (the platform retries)", monetix.CallbacksPath, cb)
	acc := s.mustSend(t, http.MethodGet, "/v1/accounts?customer_id="+exCustomer+"&currency=KZT", "", readToken, nil)
	steps = append(steps, exchangeStep{"the balance, through the REST API", acc})
	// The inbox keeps the indented bodies byte for byte.
	recs := s.callbacks(t, a.PaymentID)
	if len(recs) != 2 || recs[0].Body != string(steps[2].x.Request) || recs[1].Body != string(steps[3].x.Request) {
		t.Fatalf("inbox of %s: %+v, want both callbacks byte for byte", a.PaymentID, recs)
	}
	return steps
}

// formatExchange renders steps as the exchange file.
func formatExchange(steps []exchangeStep) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# One full Monetix exchange with a real `tiyn serve` (SQLite), recorded by tests/e2e.\n")
	fmt.Fprintf(&b, "# Regenerate: %s=1 go test -count=1 -run 'TestExchange$' ./tests/e2e/\n", EnvRecord)
	fmt.Fprintf(&b, "# Project %s, secret key %q (a test key); its answers are not signed (the default).\n", projectPlain, secretPlain)
	fmt.Fprintf(&b, "# The account %s (additional_customer_id %s) was opened through POST /v1/accounts first.\n", exCustomer, exAdditional)
	fmt.Fprintf(&b, "# Bodies are indented for reading; the signature covers the values, not the layout.\n")
	for i, st := range steps {
		x := st.x
		fmt.Fprintf(&b, "\n%s%d. %s\n", markSection, i+1, st.title)
		fmt.Fprintf(&b, "%s%s %s\n", markRequest, x.Method, x.Path)
		if x.ContentType != "" {
			fmt.Fprintf(&b, "%sContent-Type: %s\n", markRequest, x.ContentType)
		}
		if x.Method == http.MethodGet {
			fmt.Fprintf(&b, "%sAuthorization: Bearer <read or write token>\n", markRequest)
		}
		if len(x.Request) > 0 {
			b.Write(bytes.TrimRight(x.Request, "\n"))
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%sHTTP %d %s\n", markResponse, x.Status, http.StatusText(x.Status))
		fmt.Fprintf(&b, "%sContent-Type: %s\n", markResponse, x.Header.Get("Content-Type"))
		answer := x.Answer
		if x.Method == http.MethodGet {
			var buf bytes.Buffer
			if json.Indent(&buf, answer, "", "  ") == nil {
				answer = buf.Bytes()
			}
		}
		b.Write(bytes.TrimRight(answer, "\n"))
		b.WriteByte('\n')
	}
	return b.String()
}

// parsedStep is one section of the exchange file.
type parsedStep struct {
	title, requestLine string
	request, answer    []byte
	status             int
}

// parseExchange reads the file format formatExchange writes.
func parseExchange(t *testing.T, text string) []parsedStep {
	t.Helper()
	var (
		steps []parsedStep
		cur   *parsedStep
		inAns bool
	)
	sc := lineScanner([]byte(text))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, markSection):
			steps = append(steps, parsedStep{title: strings.TrimPrefix(line, markSection)})
			cur, inAns = &steps[len(steps)-1], false
		case cur == nil:
			continue // the header comments
		case strings.HasPrefix(line, markRequest):
			if cur.requestLine == "" {
				cur.requestLine = strings.TrimPrefix(line, markRequest)
			}
		case strings.HasPrefix(line, markResponse):
			if !inAns {
				if _, err := fmt.Sscanf(strings.TrimPrefix(line, markResponse), "HTTP %d", &cur.status); err != nil {
					t.Fatalf("%s: bad status line %q", ExchangeFile, line)
				}
			}
			inAns = true
		case inAns:
			cur.answer = append(cur.answer, line+"\n"...)
		default:
			cur.request = append(cur.request, line+"\n"...)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return steps
}

// checkExchange checks a recorded exchange: the four platform messages
// signed with the project's key, the answers of a correct service, the
// callback naming the payment_id check_deposit answered, the replay the
// same bytes, and the balance credited once.
func checkExchange(t *testing.T, text string) {
	t.Helper()
	steps := parseExchange(t, text)
	if len(steps) != 5 {
		t.Fatalf("exchange has %d steps, want 5 (verify, check_deposit, callback, replay, balance)", len(steps))
	}
	secret := []byte(secretPlain)
	for i, st := range steps[:4] {
		if _, err := signature.VerifyBody(secret, st.request); err != nil {
			t.Errorf("step %d (%s): request signature does not verify: %v", i+1, st.title, err)
		}
		if st.status != http.StatusOK {
			t.Errorf("step %d (%s): HTTP %d, want 200", i+1, st.title, st.status)
		}
	}
	verify, err := monetix.DecodeRequest(steps[0].request)
	if err != nil || verify.Type != monetix.TypeVerify || verify.CustomerID != exCustomer {
		t.Fatalf("step 1 is not a verify of %s: %+v %v", exCustomer, verify, err)
	}
	if a, err := monetix.ParseAnswer(steps[0].answer, nil); err != nil || a.Code != 0 || a.Currency != "KZT" || a.AdditionalCustomerID != exAdditional {
		t.Errorf("verify answer %s (%v), want code 0, KZT, %s", steps[0].answer, err, exAdditional)
	}
	deposit, err := monetix.DecodeRequest(steps[1].request)
	if err != nil || deposit.Type != monetix.TypeCheckDeposit || deposit.AmountMinor != exAmount {
		t.Fatalf("step 2 is not a check_deposit of %d: %+v %v", exAmount, deposit, err)
	}
	a, err := monetix.ParseAnswer(steps[1].answer, nil)
	if err != nil || a.Code != 0 || a.PaymentID == "" {
		t.Fatalf("check_deposit answer %s (%v), want code 0 with a payment_id", steps[1].answer, err)
	}
	cb, err := monetix.DecodeCallback(steps[2].request)
	if err != nil || cb.PaymentID != a.PaymentID || cb.PaymentStatus != "success" || cb.AmountMinor != exAmount {
		t.Fatalf("step 3 is not the success callback of %s: %+v %v", a.PaymentID, cb, err)
	}
	if !bytes.Equal(steps[2].request, steps[3].request) {
		t.Errorf("step 4 is not the same callback as step 3")
	}
	for i, want := range []string{"credited", "replay"} {
		var r monetix.CallbackReply
		if err := json.Unmarshal(steps[2+i].answer, &r); err != nil || r.Status != "ok" || r.Effect != want {
			t.Errorf("step %d answer %s (%v), want ok %s", 3+i, steps[2+i].answer, err, want)
		}
	}
	var acc accountJSON
	if err := json.Unmarshal(steps[4].answer, &acc); err != nil || steps[4].status != http.StatusOK ||
		acc.CustomerID != exCustomer || acc.BalanceMinor != exAmount || acc.Balance != "100.00" {
		t.Errorf("balance step: HTTP %d %s (%v), want %s at 100.00 KZT", steps[4].status, steps[4].answer, err, exCustomer)
	}
}
