package rest_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// statusSource answers every status check with the deposit's own success,
// by operation "op-poll", except for payments in silent.
type statusSource struct{ silent map[string]bool }

func (s statusSource) PaymentStatus(_ context.Context, d domain.Deposit) (ports.StatusAnswer, error) {
	if s.silent[d.PaymentID] {
		return ports.StatusAnswer{}, &ports.NoAnswerError{Reason: "timeout"}
	}
	return ports.StatusAnswer{Known: true, Evidence: `{"payment":{"id":"` + d.PaymentID + `","status":"success"}}`,
		Outcome: domain.Outcome{Kind: domain.OutcomeSuccess, Status: "success", OperationID: "op-poll", Amount: d.Amount,
			Method: d.Channel.Method}}, nil
}

// The REST views of what the status poller does: the source of each piece
// of evidence, the deposit's status checks, the expired status in the
// views, the filters and the CSV register.
func TestStatusPollInTheViews(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	e := newEnvWith(t, app.NewService(store, system.Clock{}, &system.IDs{}), rest.Options{})
	ctx := context.Background()
	e.openAccount("c1")
	open := func() domain.Deposit {
		d, err := e.svc.OpenDeposit(ctx, ports.OpenDeposit{Channel: testChannel, CustomerID: "c1",
			Amount: domain.NewAmount(1500_00, domain.KZT), Limits: testLimits})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	lost, silent, _ := open(), open(), open() // the third is never asked about
	called := e.credit("c1", 700_00)          // its callback came

	// A poller whose "after" is tiny, asked on demand (the deposits are
	// seconds old).
	poller, err := app.NewStatusPoller(e.svc, statusSource{silent: map[string]bool{silent.PaymentID: true}},
		app.StatusPollerConfig{After: app.MinStatusPollAfter, Rate: app.MaxStatusPollRate})
	if err != nil {
		t.Fatal(err)
	}
	// The deposits are younger than After: RoundNow asks about none.
	if rep, err := poller.RoundNow(ctx, 100); err != nil || rep.Claimed != 0 {
		t.Fatalf("round on young deposits = %+v, %v", rep, err)
	}

	type checksJSON struct {
		Checks     int     `json:"checks"`
		LastAt     *string `json:"last_at"`
		LastResult *string `json:"last_result"`
		NextAt     *string `json:"next_at"`
		Answered   bool    `json:"answered"`
		Escalated  bool    `json:"escalated"`
	}
	type depositWithChecks struct {
		Status       string      `json:"status"`
		StatusChecks *checksJSON `json:"status_checks"`
	}
	// Never checked: no status_checks member.
	rec := e.do("GET", "/v1/deposits/"+lost.PaymentID, readSecret, "")
	wantStatus(t, rec, http.StatusOK)
	if strings.Contains(rec.Body.String(), "status_checks") {
		t.Fatalf("a deposit never checked shows status_checks: %s", rec.Body)
	}

	// Ask about the deposits through the store's ports as an old enough
	// round would: RecordStatusCheck and a settle with source status_poll.
	if _, err := e.svc.SettleDeposit(ctx, ports.SettleDeposit{Channel: testChannel, PaymentID: lost.PaymentID,
		Source: ports.SourceStatusPoll, RawBody: `{"payment":{"id":"` + lost.PaymentID + `"}}`, ReceivedAt: time.Now().UTC(),
		Outcome: domain.Outcome{Kind: domain.OutcomeSuccess, Status: "success", OperationID: "op-poll", Amount: lost.Amount,
			Method: "kassa24"}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, d := range []domain.Deposit{lost, silent} {
		result, answered := "credited", true
		if d.ID == silent.ID {
			result, answered = "timeout", false
		}
		if err := store.Update(ctx, func(ctx context.Context, tx ports.Tx) error {
			return tx.RecordStatusCheck(ctx, ports.StatusCheckResult{DepositID: d.ID, At: now, Result: result, Answered: answered,
				NextAt: now.Add(15 * time.Minute)})
		}); err != nil {
			t.Fatal(err)
		}
	}
	got := decode[depositWithChecks](t, e.do("GET", "/v1/deposits/"+lost.PaymentID, readSecret, ""))
	if got.Status != "succeeded" || got.StatusChecks == nil || got.StatusChecks.Checks != 1 || !got.StatusChecks.Answered ||
		*got.StatusChecks.LastResult != "credited" || got.StatusChecks.NextAt != nil {
		t.Fatalf("recovered deposit = %+v %+v", got, got.StatusChecks)
	}
	got = decode[depositWithChecks](t, e.do("GET", "/v1/deposits/"+silent.PaymentID, readSecret, ""))
	if got.Status != "pending" || got.StatusChecks == nil || got.StatusChecks.Answered || got.StatusChecks.NextAt == nil ||
		*got.StatusChecks.LastResult != "timeout" {
		t.Fatalf("silent deposit = %+v %+v", got, got.StatusChecks)
	}

	// The inbox tells a status answer from a callback, and filters on it.
	type sourceJSON struct {
		PaymentID string `json:"payment_id"`
		Source    string `json:"source"`
	}
	all := decode[listJSON[sourceJSON]](t, e.do("GET", "/v1/callbacks", readSecret, ""))
	sources := map[string]string{}
	for _, it := range all.Items {
		sources[it.PaymentID] = it.Source
	}
	if sources[lost.PaymentID] != "status_poll" || sources[called] != "callback" {
		t.Fatalf("sources = %v", sources)
	}
	polled := decode[listJSON[sourceJSON]](t, e.do("GET", "/v1/callbacks?source=status_poll", readSecret, ""))
	if len(polled.Items) != 1 || polled.Items[0].PaymentID != lost.PaymentID {
		t.Fatalf("?source=status_poll = %+v", polled.Items)
	}
	cbs := decode[listJSON[sourceJSON]](t, e.do("GET", "/v1/callbacks?source=callback", readSecret, ""))
	if len(cbs.Items) != 1 || cbs.Items[0].PaymentID != called {
		t.Fatalf("?source=callback = %+v", cbs.Items)
	}
	for _, bad := range []string{"Callback", "poll", "Reconciliation", "status_poll%00"} {
		wantError(t, e.do("GET", "/v1/callbacks?source="+bad, readSecret, ""), http.StatusBadRequest, "invalid_request")
	}

	// Expired: in the views, the filter and the register.
	if _, err := e.svc.ExpirePending(ctx, time.Nanosecond, 100); err != nil {
		t.Fatal(err)
	}
	// silent was answered never: raised, not expired; fresh was never asked.
	got = decode[depositWithChecks](t, e.do("GET", "/v1/deposits/"+silent.PaymentID, readSecret, ""))
	if got.Status != "pending" || !got.StatusChecks.Escalated {
		t.Fatalf("never answered at its expiry = %+v %+v", got, got.StatusChecks)
	}
	exc := decode[listJSON[struct {
		Reason    string `json:"reason"`
		PaymentID string `json:"payment_id"`
		Amount    string `json:"amount"`
	}]](t, e.do("GET", "/v1/exceptions?reason=status_unknown", readSecret, ""))
	if len(exc.Items) != 2 { // silent and fresh: neither was ever answered about
		t.Fatalf("status_unknown exceptions = %+v", exc.Items)
	}
	// The slow one: answered, not final, then past its expiry.
	slow := open()
	if err := store.Update(ctx, func(ctx context.Context, tx ports.Tx) error {
		return tx.RecordStatusCheck(ctx, ports.StatusCheckResult{DepositID: slow.ID, At: now, Result: "not_final", Answered: true,
			NextAt: now.Add(time.Hour)})
	}); err != nil {
		t.Fatal(err)
	}
	if rep, err := e.svc.ExpirePending(ctx, time.Nanosecond, 100); err != nil || rep.Expired != 1 {
		t.Fatalf("expiry = %+v, %v", rep, err)
	}
	expired := decode[listJSON[depositJSON]](t, e.do("GET", "/v1/deposits?status=expired", readSecret, ""))
	if len(expired.Items) != 1 || expired.Items[0].PaymentID != slow.PaymentID || expired.Items[0].SettledAt == nil ||
		expired.Items[0].OperationID != nil {
		t.Fatalf("?status=expired = %+v", expired.Items)
	}
	csv := e.do("GET", "/v1/deposits.csv?status=expired", readSecret, "")
	wantStatus(t, csv, http.StatusOK)
	lines := strings.Split(strings.TrimSpace(csv.Body.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], ","+"expired"+",") || !strings.Contains(lines[1], slow.PaymentID) {
		t.Fatalf("register of expired deposits:\n%s", csv.Body)
	}
	wantError(t, e.do("GET", "/v1/deposits?status=gone", readSecret, ""), http.StatusBadRequest, "invalid_request")
}
