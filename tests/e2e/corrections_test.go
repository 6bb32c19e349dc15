package e2e_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// Corrections that cannot create money (issue 13), as an attacker with a
// token and the platform would try them against the real binary: the
// finding was 1,100.00 credited for one payment of 500.00.
func TestCorrectionsCannotCreateMoney(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *server) {
		s.openAccount(t, "corr-1", "")
		pid := s.checkDeposit(t, projectPlain, "corr-1", 50_000)
		// A success claiming 600.00 for the 500.00 deposit.
		if r, x := s.callback(t, signedFor(t, callbackBody(pid, "success", 60_000, 1))); r.Effect != "exception" {
			t.Fatalf("mismatching callback: %s", x.Answer)
		}
		var exc exceptionJSON
		for _, e := range s.exceptions(t) {
			if e.PaymentID == pid {
				exc = e
			}
		}
		if exc.ID == "" {
			t.Fatal("no exception raised")
		}
		path := "/v1/exceptions/" + exc.ID + "/resolve"
		send := func(token, body string) exchange {
			return s.mustSend(t, http.MethodPost, path, "application/json", token, []byte(body))
		}
		// The back office's write token may not move money by hand.
		if x := send(backofficeToken, `{"action":"credit","note":"x"}`); x.Status != http.StatusForbidden {
			t.Fatalf("write token resolving: HTTP %d %s", x.Status, x.Answer)
		}
		// Money from nothing is refused, in KZT.
		for _, amount := range []string{"400000.00", "92233720368547758.07", "600.01"} {
			x := send(apiToken, `{"action":"credit","amount":"`+amount+`","note":"x"}`)
			if x.Status != http.StatusUnprocessableEntity || !strings.Contains(string(x.Answer), "amount_exceeds_evidence") ||
				!strings.Contains(string(x.Answer), amount+" KZT") {
				t.Fatalf("credit of %s: HTTP %d %s", amount, x.Status, x.Answer)
			}
		}
		// The operator credits the evidence: the deposit is settled.
		if x := send(apiToken, `{"action":"credit","note":"the terminal took 600.00"}`); x.Status != http.StatusOK {
			t.Fatalf("credit: HTTP %d %s", x.Status, x.Answer)
		}
		if d := s.deposit(t, pid); d.Status != "succeeded" {
			t.Fatalf("deposit after the operator's credit: %+v", d)
		}
		// The platform's correct success, as a new operation and as the
		// same one, and a decline: never a second credit.
		for _, cb := range []struct {
			status string
			amount int64
			op     int64
			want   string
		}{{"success", 50_000, 2, "exception"}, {"success", 50_000, 1, "replay"}, {"decline", 50_000, 3, "exception"}} {
			r, x := s.callback(t, signedFor(t, callbackBody(pid, cb.status, cb.amount, cb.op)))
			if x.Status != http.StatusOK || r.Effect != cb.want {
				t.Fatalf("later %s op %d: HTTP %d %s, want effect %s", cb.status, cb.op, x.Status, x.Answer, cb.want)
			}
		}
		if b := s.balance(t, "corr-1"); b != 60_000 {
			t.Fatalf("balance %d after one payment, want 60000", b)
		}
		// A second success of a credited payment cannot be paid by hand.
		pid2 := s.checkDeposit(t, projectPlain, "corr-1", 10_000)
		s.callback(t, signedFor(t, callbackBody(pid2, "success", 10_000, 10)))
		s.callback(t, signedFor(t, callbackBody(pid2, "success", 10_000, 11)))
		for _, e := range s.exceptions(t) {
			if e.PaymentID != pid2 || e.Reason != "duplicate_success" {
				continue
			}
			x := s.mustSend(t, http.MethodPost, "/v1/exceptions/"+e.ID+"/resolve", "application/json", apiToken,
				[]byte(`{"action":"credit","note":"pay it again"}`))
			var body struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			_ = json.Unmarshal(x.Answer, &body)
			if x.Status != http.StatusConflict || body.Error.Code != "already_credited" || !strings.Contains(body.Error.Message, "trf_") {
				t.Fatalf("credit of a duplicate success: HTTP %d %s", x.Status, x.Answer)
			}
		}
		if b := s.balance(t, "corr-1"); b != 70_000 {
			t.Fatalf("balance %d, want 70000", b)
		}
		c := requireHealthy(t, s)
		if c.DuplicateCredits != 0 {
			t.Fatalf("ledger %+v", c)
		}
	})
}
