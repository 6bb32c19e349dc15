package rest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// The REST side of the corrections (issue 13): the operator role, the
// bounds in KZT, the 409 for a credited payment, four eyes.

func TestOperatorRoleGuardsCorrectionsAndAccountStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acc := e.openAccount("c-role")
	x := e.raiseException("pay-role", 5_000)
	for _, path := range []string{
		"/v1/exceptions/" + x + "/resolve", "/v1/exceptions/" + x + "/approve", "/v1/exceptions/" + x + "/reject",
		"/v1/accounts/" + acc.ID + "/block", "/v1/accounts/" + acc.ID + "/unblock", "/v1/accounts/" + acc.ID + "/close",
	} {
		body := `{"action":"credit","account_id":"` + acc.ID + `","note":"n"}`
		if !strings.HasSuffix(path, "/resolve") {
			body = `{"note":"n"}`
		}
		for _, secret := range []string{backofficeSecret, readSecret} {
			msg := wantError(t, e.do(http.MethodPost, path, secret, body), http.StatusForbidden, "forbidden")
			if !strings.Contains(msg, "needs the operator role") {
				t.Errorf("POST %s: message %q does not name the role needed", path, msg)
			}
		}
	}
	if bal := e.balanceMinor(acc.ID); bal != 0 {
		t.Fatalf("a refused token moved money: %d", bal)
	}
	// The back office keeps what it has: accounts and debits.
	e.credit("c-role", 1_000)
	rec := e.do(http.MethodPost, "/v1/accounts/"+acc.ID+"/debits", backofficeSecret, `{"amount":"1.00"}`, "Idempotency-Key", "k1")
	wantStatus(t, rec, http.StatusCreated)
	wantStatus(t, e.do(http.MethodPost, "/v1/accounts", backofficeSecret, `{"customer_id":"c-role-2"}`), http.StatusCreated)
	// An operator may do all of it.
	wantStatus(t, e.do(http.MethodPost, "/v1/accounts/"+acc.ID+"/block", writeSecret, ""), http.StatusOK)
	wantStatus(t, e.do(http.MethodPost, "/v1/exceptions/"+x+"/resolve", writeSecret,
		`{"action":"credit","account_id":"`+acc.ID+`","note":"found the payment"}`), http.StatusOK)
}

func TestCreditBoundsInKZT(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acc := e.openAccount("c-bounds")
	x := e.raiseException("pay-bounds", 10_000)
	resolve := func(body string) *httpRecorder {
		return e.do(http.MethodPost, "/v1/exceptions/"+x+"/resolve", writeSecret, body)
	}
	for _, amount := range []string{"400000.00", "100.01", "92233720368547758.07"} {
		msg := wantError(t, resolve(`{"action":"credit","account_id":"`+acc.ID+`","amount":"`+amount+`","note":"n"}`),
			http.StatusUnprocessableEntity, "amount_exceeds_evidence")
		if !strings.Contains(msg, amount+" KZT") || !strings.Contains(msg, "100.00 KZT") {
			t.Errorf("amount %s: message %q does not state both amounts in KZT", amount, msg)
		}
	}
	if bal := e.balanceMinor(acc.ID); bal != 0 {
		t.Fatalf("refused credits moved money: %d", bal)
	}
	rec := resolve(`{"action":"credit","account_id":"` + acc.ID + `","amount":"100.00","note":"n"}`)
	wantStatus(t, rec, http.StatusOK)
	if bal := e.balanceMinor(acc.ID); bal != 10_000 {
		t.Fatalf("balance %d", bal)
	}
}

func TestCreditOfACreditedPaymentIs409(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	acc := e.openAccount("c-dup")
	pid := e.credit("c-dup", 10_000)
	res, err := e.svc.SettleDeposit(t.Context(), ports.SettleDeposit{Channel: testChannel, PaymentID: pid,
		Outcome: domain.Outcome{Method: "kassa24", Kind: domain.OutcomeSuccess, Status: "success", OperationID: "op-other", Amount: domain.NewAmount(10_000, domain.KZT)},
		RawBody: `{"second":"success"}`, Limits: testLimits})
	if err != nil || res.Exception == nil || res.Exception.Reason != domain.ReasonDuplicateSuccess {
		t.Fatalf("duplicate success: %+v %v", res, err)
	}
	lines, err := e.svc.Statement(t.Context(), ports.StatementQuery{AccountID: acc.ID})
	if err != nil || len(lines) != 1 {
		t.Fatalf("statement %+v %v", lines, err)
	}
	msg := wantError(t, e.do(http.MethodPost, "/v1/exceptions/"+res.Exception.ID+"/resolve", writeSecret,
		`{"action":"credit","note":"pay again?"}`), http.StatusConflict, "already_credited")
	if !strings.Contains(msg, lines[0].TransferID) {
		t.Fatalf("message %q does not name the transfer %s", msg, lines[0].TransferID)
	}
	wantStatus(t, e.do(http.MethodPost, "/v1/exceptions/"+res.Exception.ID+"/resolve", writeSecret,
		`{"action":"dismiss","note":"already paid"}`), http.StatusOK)
	if bal := e.balanceMinor(acc.ID); bal != 10_000 {
		t.Fatalf("balance %d", bal)
	}
}

func TestFourEyesOverREST(t *testing.T) {
	t.Parallel()
	svc := app.NewService(newStore(t), system.Clock{}, &system.IDs{}, app.WithFourEyes(true))
	e := newEnvWith(t, svc, rest.Options{})
	acc := e.openAccount("c-4e")
	x := e.raiseException("pay-4e", 7_500)
	path := "/v1/exceptions/" + x

	rec := e.do(http.MethodPost, path+"/resolve", writeSecret, `{"action":"credit","account_id":"`+acc.ID+`","note":"receipt seen"}`)
	wantStatus(t, rec, http.StatusAccepted)
	got := decode[exceptionJSON](t, rec)
	if got.Status != "proposed" || got.Proposal == nil || got.Proposal.ProposedBy != writeName || got.Proposal.AmountMinor != 7_500 ||
		got.Proposal.Amount != "75.00" || got.Proposal.AccountID != acc.ID || got.Resolution != nil {
		t.Fatalf("proposal answer %+v %+v", got, got.Proposal)
	}
	if bal := e.balanceMinor(acc.ID); bal != 0 {
		t.Fatalf("a proposal moved money: %d", bal)
	}
	if list := decode[listJSON[exceptionJSON]](t, e.do(http.MethodGet, "/v1/exceptions?status=proposed", readSecret, "")); len(list.Items) != 1 {
		t.Fatalf("proposed list %+v", list)
	}
	// The proposer may not approve; a read or write token may not either.
	wantError(t, e.do(http.MethodPost, path+"/approve", writeSecret, ""), http.StatusForbidden, "self_approval")
	wantError(t, e.do(http.MethodPost, path+"/approve", backofficeSecret, ""), http.StatusForbidden, "forbidden")
	// Reject needs a note; then open again.
	wantError(t, e.do(http.MethodPost, path+"/reject", operator2Secret, `{}`), http.StatusBadRequest, "invalid_request")
	rec = e.do(http.MethodPost, path+"/reject", operator2Secret, `{"note":"ask the terminal first"}`)
	wantStatus(t, rec, http.StatusOK)
	if got := decode[exceptionJSON](t, rec); got.Status != "open" || got.Proposal != nil {
		t.Fatalf("rejected %+v", got)
	}
	wantError(t, e.do(http.MethodPost, path+"/approve", operator2Secret, ""), http.StatusConflict, "conflict")
	// Propose again; the second operator approves: the balance moves once.
	wantStatus(t, e.do(http.MethodPost, path+"/resolve", writeSecret, `{"action":"credit","account_id":"`+acc.ID+`","note":"confirmed"}`), http.StatusAccepted)
	rec = e.do(http.MethodPost, path+"/approve", operator2Secret, `{"note":"agree"}`)
	wantStatus(t, rec, http.StatusOK)
	got = decode[exceptionJSON](t, rec)
	if got.Status != "resolved" || got.Resolution == nil || got.Resolution.Actor != "ops2" || got.Proposal == nil ||
		got.Proposal.ProposedBy != writeName {
		t.Fatalf("approved %+v %+v %+v", got, got.Resolution, got.Proposal)
	}
	wantError(t, e.do(http.MethodPost, path+"/approve", operator2Secret, ""), http.StatusConflict, "conflict")
	if bal := e.balanceMinor(acc.ID); bal != 7_500 {
		t.Fatalf("balance %d after approval, want 7500", bal)
	}
	// Dismissals need one operator.
	y := e.raiseException("pay-4e-2", 100)
	rec = e.do(http.MethodPost, "/v1/exceptions/"+y+"/resolve", writeSecret, `{"action":"dismiss","note":"test payment"}`)
	wantStatus(t, rec, http.StatusOK)
	if got := decode[exceptionJSON](t, rec); got.Status != "dismissed" {
		t.Fatalf("dismissal %+v", got)
	}
}
