package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/tiyn/tiyn/adapters/monetix"
)

// callbackLog remembers every well-signed callback a server answered 200,
// per payment id and in order, so the inbox can be compared with it byte
// for byte at the end.
type callbackLog struct {
	bodies map[string][]string
	total  int
}

func newCallbackLog() *callbackLog { return &callbackLog{bodies: map[string][]string{}} }

// deliver posts a callback and requires HTTP 200 with the effect.
func (l *callbackLog) deliver(t *testing.T, s *server, paymentID string, body []byte, wantEffect string) {
	t.Helper()
	r, x := s.callback(t, body)
	if x.Status != http.StatusOK || r.Status != "ok" || r.Effect != wantEffect {
		t.Fatalf("callback for %s: HTTP %d %s, want 200 effect %q", paymentID, x.Status, x.Answer, wantEffect)
	}
	l.bodies[paymentID] = append(l.bodies[paymentID], string(body))
	l.total++
}

// rejected posts a callback that must be refused with 400 and must store
// nothing: neither in the inbox, nor as an exception, nor in the deposit.
func rejected(t *testing.T, s *server, contentType string, body []byte, paymentID string) {
	t.Helper()
	inboxBefore := len(s.callbacks(t, ""))
	exceptionsBefore := len(s.exceptions(t))
	var depBefore depositJSON
	if paymentID != "" {
		depBefore = s.deposit(t, paymentID)
	}
	r, x := s.callbackAs(t, contentType, body)
	if x.Status != http.StatusBadRequest || r.Status != "error" || r.Error == "" {
		t.Fatalf("callback answered HTTP %d %s, want 400 with an error", x.Status, x.Answer)
	}
	if n := len(s.callbacks(t, "")); n != inboxBefore {
		t.Fatalf("a refused callback changed the inbox: %d records, before %d", n, inboxBefore)
	}
	if n := len(s.exceptions(t)); n != exceptionsBefore {
		t.Fatalf("a refused callback raised an exception: %d, before %d", n, exceptionsBefore)
	}
	if paymentID != "" {
		if n := len(s.callbacks(t, paymentID)); n != 0 {
			t.Fatalf("GET /v1/callbacks?payment_id=%s lists %d records after refused callbacks", paymentID, n)
		}
		if d := s.deposit(t, paymentID); d != depBefore {
			t.Fatalf("a refused callback changed the deposit: %+v, before %+v", d, depBefore)
		}
	}
}

// TestCallbacks plays every callback case of docs/architecture.md §3 against the real
// process, checking balances, deposits, the exception queue and the inbox
// through the REST API.
func TestCallbacks(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *server) {
		log := newCallbackLog()
		wantExceptions := map[string]int{} // "payment id reason" → how many
		// newDeposit opens an account for customer and a deposit of amount.
		newDeposit := func(t *testing.T, customer string, amount int64) string {
			t.Helper()
			s.openAccount(t, customer, "")
			return s.checkDeposit(t, projectPlain, customer, amount)
		}
		requireDeposit := func(t *testing.T, paymentID, status, operation string) {
			t.Helper()
			d := s.deposit(t, paymentID)
			op := ""
			if d.OperationID != nil {
				op = *d.OperationID
			}
			if d.Status != status || op != operation {
				t.Fatalf("deposit %s: status %s operation %q, want %s %q", paymentID, d.Status, op, status, operation)
			}
		}
		requireBalance := func(t *testing.T, customer string, want int64) {
			t.Helper()
			if got := s.balance(t, customer); got != want {
				t.Fatalf("balance of %s: %d, want %d", customer, got, want)
			}
		}
		sign := func(t *testing.T, body map[string]any) []byte { return signedFor(t, body) }

		// Sequential on purpose: the "nothing stored" checks compare whole
		// lists before and after.
		t.Run("success credits once, replay changes nothing", func(t *testing.T) {
			const amount = 150_000
			pid := newDeposit(t, "cb-success", amount)
			body := sign(t, callbackBody(pid, "success", amount, 1001))
			transfers := s.ledgerCheck(t).Transfers
			log.deliver(t, s, pid, body, "credited")
			requireBalance(t, "cb-success", amount)
			requireDeposit(t, pid, "succeeded", "1001")
			log.deliver(t, s, pid, body, "replay")
			requireBalance(t, "cb-success", amount)
			if got := s.ledgerCheck(t).Transfers; got != transfers+1 {
				t.Fatalf("transfers %d after a credit and a replay, want %d", got, transfers+1)
			}
		})
		t.Run("decline records, replay changes nothing", func(t *testing.T) {
			pid := newDeposit(t, "cb-decline", 70_000)
			body := sign(t, callbackBody(pid, "decline", 70_000, 2001))
			log.deliver(t, s, pid, body, "declined")
			requireDeposit(t, pid, "declined", "2001")
			log.deliver(t, s, pid, body, "replay")
			requireBalance(t, "cb-decline", 0)
		})
		t.Run("late success after decline credits", func(t *testing.T) {
			pid := newDeposit(t, "cb-late", 80_000)
			log.deliver(t, s, pid, sign(t, callbackBody(pid, "decline", 80_000, 3001)), "declined")
			requireBalance(t, "cb-late", 0)
			log.deliver(t, s, pid, sign(t, callbackBody(pid, "success", 80_000, 3002)), "credited")
			requireBalance(t, "cb-late", 80_000)
			requireDeposit(t, pid, "succeeded", "3002")
		})
		t.Run("intermediate recorded, then success credits", func(t *testing.T) {
			pid := newDeposit(t, "cb-intermediate", 90_000)
			// charset in the content type is accepted on callbacks too.
			body := sign(t, callbackBody(pid, "processing", 90_000, 4001))
			r, x := s.callbackAs(t, "application/json; charset=utf-8", body)
			if x.Status != http.StatusOK || r.Effect != "recorded" {
				t.Fatalf("processing callback: HTTP %d %s, want 200 recorded", x.Status, x.Answer)
			}
			log.bodies[pid] = append(log.bodies[pid], string(body))
			log.total++
			requireDeposit(t, pid, "pending", "")
			requireBalance(t, "cb-intermediate", 0)
			log.deliver(t, s, pid, sign(t, callbackBody(pid, "awaiting customer action", 90_000, 4001)), "recorded")
			requireBalance(t, "cb-intermediate", 0)
			log.deliver(t, s, pid, sign(t, callbackBody(pid, "success", 90_000, 4001)), "credited")
			requireBalance(t, "cb-intermediate", 90_000)
		})
		t.Run("unknown payment id goes to exceptions", func(t *testing.T) {
			const pid = "no-such-payment-42"
			log.deliver(t, s, pid, sign(t, callbackBody(pid, "success", 10_000, 5001)), "exception")
			wantExceptions[pid+" unknown_payment"]++
			x := s.mustSend(t, http.MethodGet, "/v1/deposits/"+pid, "", apiToken, nil)
			if x.Status != http.StatusNotFound {
				t.Fatalf("GET /v1/deposits/%s: HTTP %d, want 404 (an exception opens no deposit)", pid, x.Status)
			}
		})
		t.Run("amount mismatch goes to exceptions", func(t *testing.T) {
			pid := newDeposit(t, "cb-mismatch", 50_000)
			log.deliver(t, s, pid, sign(t, callbackBody(pid, "success", 50_001, 6001)), "exception")
			wantExceptions[pid+" amount_mismatch"]++
			requireBalance(t, "cb-mismatch", 0)
			requireDeposit(t, pid, "pending", "")
			// The deposit stays settleable by a callback with the right sum.
			log.deliver(t, s, pid, sign(t, callbackBody(pid, "success", 50_000, 6002)), "credited")
			requireBalance(t, "cb-mismatch", 50_000)
		})
		t.Run("second success with another operation goes to exceptions", func(t *testing.T) {
			pid := newDeposit(t, "cb-second", 60_000)
			log.deliver(t, s, pid, sign(t, callbackBody(pid, "success", 60_000, 7001)), "credited")
			log.deliver(t, s, pid, sign(t, callbackBody(pid, "success", 60_000, 7002)), "exception")
			wantExceptions[pid+" duplicate_success"]++
			requireBalance(t, "cb-second", 60_000)
			requireDeposit(t, pid, "succeeded", "7001")
		})
		t.Run("decline after success goes to exceptions", func(t *testing.T) {
			pid := newDeposit(t, "cb-decline-after", 40_000)
			log.deliver(t, s, pid, sign(t, callbackBody(pid, "success", 40_000, 8001)), "credited")
			log.deliver(t, s, pid, sign(t, callbackBody(pid, "decline", 40_000, 8002)), "exception")
			wantExceptions[pid+" decline_after_success"]++
			requireBalance(t, "cb-decline-after", 40_000)
			requireDeposit(t, pid, "succeeded", "8001")
		})
		t.Run("bad signatures are refused and store nothing", func(t *testing.T) {
			pid := newDeposit(t, "cb-forged", 30_000)
			good := callbackBody(pid, "success", 30_000, 9001)
			signed := sign(t, good)
			for name, body := range map[string][]byte{
				"wrong key":                 signedBody(t, []byte("not-the-key"), good),
				"other project's key":       signedBody(t, []byte(secretSigned), good),
				"amount changed after sign": replaceOnce(t, signed, `"sum":{"amount":30000`, `"sum":{"amount":3000000`),
				"status changed after sign": replaceOnce(t, sign(t, callbackBody(pid, "decline", 30_000, 9001)), `"status":"decline","sum":`, `"status":"success","sum":`),
				"signature missing":         mustJSON(good),
				"unknown project":           signedBody(t, []byte(secretPlain), with(good, json.Number("4321"), "project_id")),
			} {
				t.Run(name, func(t *testing.T) { rejected(t, s, contentJSON, body, pid) })
			}
			requireBalance(t, "cb-forged", 0)
			requireDeposit(t, pid, "pending", "")
			// The control: the genuine callback still credits.
			log.deliver(t, s, pid, signed, "credited")
			requireBalance(t, "cb-forged", 30_000)
		})
		t.Run("bodies that cannot be authenticated are refused and store nothing", func(t *testing.T) {
			pid := newDeposit(t, "cb-malformed", 20_000)
			good := callbackBody(pid, "success", 20_000, 9101)
			for name, body := range map[string][]byte{
				"not JSON":   []byte("payment_id=" + pid + "&status=success"),
				"JSON array": []byte(`[1,2,3]`),
				"truncated":  sign(t, good)[:100],
				"empty":      {},
			} {
				t.Run(name, func(t *testing.T) { rejected(t, s, contentJSON, body, pid) })
			}
			t.Run("wrong content type", func(t *testing.T) { rejectedStatus(t, s, "text/plain", sign(t, good), http.StatusUnsupportedMediaType) })
			requireDeposit(t, pid, "pending", "")
			requireBalance(t, "cb-malformed", 0)
		})
		t.Run("authentic but unreadable callbacks are kept as exceptions", func(t *testing.T) {
			pid := newDeposit(t, "cb-unreadable", 20_000)
			good := callbackBody(pid, "success", 20_000, 9201)
			for _, body := range [][]byte{
				sign(t, without(good, "payment", "status")),
				sign(t, with(good, "20000", "payment", "sum", "amount")),                // amount as a string
				sign(t, with(good, json.Number("20000.5"), "payment", "sum", "amount")), // a fraction
				sign(t, with(good, json.Number("-20000"), "payment", "sum", "amount")),  // negative
				sign(t, without(good, "operation")),
				sign(t, with(good, true, "operation", "id")),
			} {
				log.deliver(t, s, pid, body, "exception")
				wantExceptions[pid+" malformed_callback"]++
				log.deliver(t, s, pid, body, "replay") // the platform's retry: kept again, no second exception
			}
			// Without a payment id the body is still kept.
			if r, x := s.callback(t, sign(t, without(good, "payment", "id"))); x.Status != http.StatusOK || r.Effect != "exception" {
				t.Fatalf("callback without a payment id: HTTP %d %s", x.Status, x.Answer)
			}
			log.total++
			wantExceptions[" malformed_callback"]++
			// Another currency is a mismatch, not a refusal.
			log.deliver(t, s, pid, sign(t, with(good, "USD", "payment", "sum", "currency")), "exception")
			wantExceptions[pid+" currency_mismatch"]++
			log.deliver(t, s, pid, sign(t, with(good, "qiwi", "payment", "method")), "exception")
			wantExceptions[pid+" method_mismatch"]++
			requireDeposit(t, pid, "pending", "")
			requireBalance(t, "cb-unreadable", 0)
			// The operator finds them by reason, and each callback says why.
			var page struct {
				Items []struct {
					Reason *string `json:"reason"`
				} `json:"items"`
			}
			s.rest(t, http.MethodGet, "/v1/callbacks?payment_id="+pid+"&outcome=exception", nil, http.StatusOK, &page)
			if len(page.Items) != 8 || page.Items[0].Reason == nil || *page.Items[0].Reason != "malformed_callback" {
				t.Fatalf("GET /v1/callbacks?outcome=exception: %+v", page)
			}
			var xs struct {
				Items []exceptionJSON `json:"items"`
			}
			s.rest(t, http.MethodGet, "/v1/exceptions?reason=malformed_callback", nil, http.StatusOK, &xs)
			if len(xs.Items) != 7 {
				t.Fatalf("GET /v1/exceptions?reason=malformed_callback: %d items", len(xs.Items))
			}
		})

		// The exception queue holds exactly the four exceptions, each
		// with its callback as evidence.
		t.Run("exceptions listed", func(t *testing.T) {
			got := map[string]int{}
			for _, e := range s.exceptions(t) {
				got[e.PaymentID+" "+e.Reason]++
				if e.Status != "open" || e.Project != projectPlain || e.Evidence == "" {
					t.Errorf("exception %+v: want open, project %s, with evidence", e, projectPlain)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(wantExceptions) {
				t.Fatalf("exceptions by payment and reason: %v, want %v", got, wantExceptions)
			}
		})
		// The inbox holds every well-signed callback byte for byte, in the
		// order received, and nothing else.
		t.Run("inbox byte for byte", func(t *testing.T) {
			all := s.callbacks(t, "")
			if len(all) != log.total {
				t.Fatalf("inbox holds %d callbacks, %d were answered 200", len(all), log.total)
			}
			for pid, want := range log.bodies {
				recs := s.callbacks(t, pid)
				got := make([]string, len(recs))
				for i, r := range recs {
					got[i] = r.Body
					if r.PaymentID != pid || r.Project != projectPlain {
						t.Errorf("inbox record %d: payment %s project %s, want %s %s", r.ID, r.PaymentID, r.Project, pid, projectPlain)
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("inbox of %s differs from what was sent:\n got %q\nwant %q", pid, got, want)
				}
			}
		})
		requireHealthy(t, s)
	})
}

// rejectedStatus posts a callback that must be refused with status.
func rejectedStatus(t *testing.T, s *server, contentType string, body []byte, status int) {
	t.Helper()
	before := len(s.callbacks(t, ""))
	r, x := s.callbackAs(t, contentType, body)
	if x.Status != status || r.Status != "error" {
		t.Fatalf("callback answered HTTP %d %s, want %d", x.Status, x.Answer, status)
	}
	if n := len(s.callbacks(t, "")); n != before {
		t.Fatalf("a refused callback changed the inbox: %d records, before %d", n, before)
	}
}

// ConcurrentDeliveries is how many copies of one callback arrive at once.
const ConcurrentDeliveries = 30

// TestConcurrentCallbackDelivery delivers one success callback 30 times at
// once: exactly one delivery credits, the others are replays, and the
// balance holds the amount once. With 30 different operation ids, one
// credits and the other 29 are exceptions.
func TestConcurrentCallbackDelivery(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *server) {
		t.Run("same callback", func(t *testing.T) {
			const amount = 123_456
			s.openAccount(t, "conc-same", "")
			pid := s.checkDeposit(t, projectPlain, "conc-same", amount)
			body := signedFor(t, callbackBody(pid, "success", amount, 424242))
			effects := deliverConcurrently(t, s, func(int) []byte { return body })
			if effects["credited"] != 1 || effects["replay"] != ConcurrentDeliveries-1 {
				t.Fatalf("effects %v, want 1 credited and %d replays", effects, ConcurrentDeliveries-1)
			}
			if got := s.balance(t, "conc-same"); got != amount {
				t.Fatalf("balance %d, want %d", got, amount)
			}
			recs := s.callbacks(t, pid)
			credited := 0
			for _, r := range recs {
				if r.Body != string(body) {
					t.Fatalf("inbox body differs from the one sent: %q", r.Body)
				}
				if r.Outcome == "credited" {
					credited++
				}
			}
			if len(recs) != ConcurrentDeliveries || credited != 1 {
				t.Fatalf("inbox: %d records with %d credited, want %d with 1", len(recs), credited, ConcurrentDeliveries)
			}
		})
		t.Run("distinct operations", func(t *testing.T) {
			const amount = 654_321
			s.openAccount(t, "conc-distinct", "")
			pid := s.checkDeposit(t, projectPlain, "conc-distinct", amount)
			bodies := make([][]byte, ConcurrentDeliveries)
			for i := range bodies {
				bodies[i] = signedFor(t, callbackBody(pid, "success", amount, int64(500_000+i)))
			}
			effects := deliverConcurrently(t, s, func(i int) []byte { return bodies[i] })
			if effects["credited"] != 1 || effects["exception"] != ConcurrentDeliveries-1 {
				t.Fatalf("effects %v, want 1 credited and %d exceptions", effects, ConcurrentDeliveries-1)
			}
			if got := s.balance(t, "conc-distinct"); got != amount {
				t.Fatalf("balance %d, want %d", got, amount)
			}
		})
		c := requireHealthy(t, s)
		if c.Transfers != 2 {
			t.Fatalf("ledger holds %d transfers, want 2 (one credit per deposit)", c.Transfers)
		}
	})
}

// deliverConcurrently sends ConcurrentDeliveries callbacks released at once
// and counts the effects of the 200 answers; any other answer fails.
func deliverConcurrently(t *testing.T, s *server, body func(i int) []byte) map[string]int {
	t.Helper()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		start   = make(chan struct{})
		effects = map[string]int{}
		errs    []string
	)
	for i := range ConcurrentDeliveries {
		b := body(i)
		wg.Go(func() {
			<-start
			x, err := s.send(context.Background(), http.MethodPost, monetix.CallbacksPath, contentJSON, "", b)
			var r callbackReply
			if err == nil {
				err = json.Unmarshal(x.Answer, &r)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, err.Error())
			case x.Status != http.StatusOK:
				errs = append(errs, fmt.Sprintf("HTTP %d %s", x.Status, x.Answer))
			default:
				effects[r.Effect]++
			}
		})
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d deliveries failed: %v", len(errs), ConcurrentDeliveries, errs)
	}
	return effects
}
