package property_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"pgregory.net/rapid"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// machine is one rapid check: the system under test (one or more
// instances on one database) and the model.
type machine struct {
	instances []*instance
	fourEyes  bool // operator credits are proposals another operator approves
	m         *model
	tag       string // unique per check: customer ids, unknown payment ids
	ops       *atomic.Int64
	counts    *actionCounts

	customers []string // insertion order, for reproducible sampling
	payments  []string
	debitKeys []string
	seeds     []string   // transfers of ceilingCredit's seeded balances
	platform  *platform  // the lossy platform's Gate (platform_test.go)
	recon     *reconBook // the platform's record of the day (recon_test.go)

	start struct {
		clearing, revenue int64
		inboxID           int64
		at                time.Time
	}
}

// actionCounts counts the actions that really ran (not skipped), so a
// harness that skips everything cannot pass unnoticed.
type actionCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *actionCounts) add(name string) {
	c.mu.Lock()
	c.n[name]++
	c.mu.Unlock()
}

// below returns the actions of names that ran fewer than n times.
func (c *actionCounts) below(n int, names []string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, name := range names {
		if c.n[name] < n {
			out = append(out, fmt.Sprintf("%s=%d", name, c.n[name]))
		}
	}
	return out
}

func (c *actionCounts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make([]string, 0, len(c.n))
	for k := range c.n {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "  %-28s %6d\n", k, c.n[k])
	}
	return b.String()
}

const clearingID = "clearing:monetix:kassa24"

// allActions names every action of the machine, for the count check.
var allActions = []string{"OpenAccount", "OpenAccountAgain", "AccountStatus", "Verify", "CheckDeposit",
	"CheckDepositLimits", "CheckDepositWrong", "Payment", "CallbackSuccess", "CallbackDecline", "CallbackIntermediate",
	"CallbackReplay", "CallbackOtherOp", "CallbackMismatch", "CallbackUnknown", "CallbackRefused", "CallbackBurst",
	"CallbackFault", "DebitNew", "DebitAgain", "DebitInsufficient", "ResolveException", "ResolveCredited",
	"ResolveAboveEvidence", "ApproveProposal", "ApproveOwnProposal", "RejectProposal", "LateCallback", "CeilingCredit",
	"CorrectMismatch", "CallbackUnreadable", "PaymentLost", "PlatformSettles", "StatusPoll", "StatusWrongSignature",
	"LostCallbackLate", "PollRacesCallback", "ReconcileRace"}

func (s *machine) init(t *rapid.T) {
	ctx := context.Background()
	st := s.instances[0].store
	var err error
	if s.start.clearing, err = st.DerivedBalance(ctx, clearingID); err != nil {
		t.Fatal(err)
	}
	if s.start.revenue, err = st.DerivedBalance(ctx, domain.RevenueAccountID); err != nil {
		t.Fatal(err)
	}
	if err := st.DB().QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM callback_inbox`).Scan(&s.start.inboxID); err != nil {
		t.Fatal(err)
	}
	s.start.at = time.Now().Add(-time.Second)
}

// pick chooses the instance that serves an action.
func (s *machine) pick(t *rapid.T) *instance {
	if len(s.instances) == 1 {
		return s.instances[0]
	}
	return s.instances[rapid.IntRange(0, len(s.instances)-1).Draw(t, "instance")]
}

func (s *machine) actions() map[string]func(*rapid.T) {
	acts := map[string]func(*rapid.T){
		"OpenAccount":          s.openAccount,
		"OpenAccountAgain":     s.openAccountAgain,
		"AccountStatus":        s.accountStatus,
		"Verify":               s.verify,
		"CheckDeposit":         s.checkDeposit,
		"CheckDepositLimits":   s.checkDepositLimits,
		"CheckDepositWrong":    s.checkDepositWrong,
		"Payment":              s.payment,
		"CallbackSuccess":      s.callbackSuccess,
		"CallbackDecline":      s.callbackDecline,
		"CallbackIntermediate": s.callbackIntermediate,
		"CallbackReplay":       s.callbackReplay,
		"CallbackOtherOp":      s.callbackOtherOperation,
		"CallbackMismatch":     s.callbackMismatch,
		"CallbackUnknown":      s.callbackUnknown,
		"CallbackRefused":      s.callbackRefused,
		"CallbackBurst":        s.callbackBurst,
		"CallbackFault":        s.callbackFault,
		"DebitNew":             s.debitNew,
		"DebitAgain":           s.debitAgain,
		"DebitInsufficient":    s.debitInsufficient,
		"ResolveException":     s.resolveException,
		"ResolveCredited":      s.resolveCredited,
		"ResolveAboveEvidence": s.resolveAboveEvidence,
		"ApproveProposal":      s.approveProposal,
		"ApproveOwnProposal":   s.approveOwnProposal,
		"RejectProposal":       s.rejectProposal,
		"LateCallback":         s.lateCallback,
		"CeilingCredit":        s.ceilingCredit,
		"CorrectMismatch":      s.correctMismatch,
		"CallbackUnreadable":   s.callbackUnreadable,
		"PaymentLost":          s.paymentLost,
		"PlatformSettles":      s.platformSettles,
		"StatusPoll":           s.statusPoll,
		"StatusWrongSignature": s.statusWrongSignature,
		"LostCallbackLate":     s.lostCallbackLate,
		"PollRacesCallback":    s.pollRacesCallback,
		"ReconcileRace":        s.reconcileRace,
	}
	counted := make(map[string]func(*rapid.T), len(acts)+1)
	for name, fn := range acts {
		counted[name] = func(t *rapid.T) {
			fn(t)
			s.counts.add(name) // reached only when the action did not skip
		}
	}
	counted[""] = s.check
	return counted
}

// --- accounts ---------------------------------------------------------

type accountJSON struct {
	ID           string `json:"id"`
	CustomerID   string `json:"customer_id"`
	Currency     string `json:"currency"`
	Status       string `json:"status"`
	BalanceMinor int64  `json:"balance_minor"`
	Balance      string `json:"balance"`
}

func (s *machine) openAccount(t *rapid.T) {
	cust := fmt.Sprintf("%s-c%d", s.tag, len(s.customers))
	res := s.pick(t).api(http.MethodPost, "/v1/accounts", map[string]string{"customer_id": cust, "currency": "KZT"}, nil)
	if res.Status != http.StatusCreated {
		t.Fatalf("open account: %d %s", res.Status, res.Body)
	}
	var a accountJSON
	if err := res.json(&a); err != nil {
		t.Fatal(err)
	}
	if a.ID == "" || a.CustomerID != cust || a.Status != "active" || a.BalanceMinor != 0 || a.Balance != "0.00" {
		t.Fatalf("open account answered %+v", a)
	}
	acc := &mAccount{customerID: cust, id: a.ID, status: "active"}
	s.m.accounts[cust] = acc
	s.m.byID[a.ID] = acc
	s.customers = append(s.customers, cust)
}

func (s *machine) drawAccount(t *rapid.T, ok func(*mAccount) bool) *mAccount {
	var pool []string
	for _, c := range s.customers {
		if ok == nil || ok(s.m.accounts[c]) {
			pool = append(pool, c)
		}
	}
	if len(pool) == 0 {
		t.Skip("no suitable account")
	}
	return s.m.accounts[rapid.SampledFrom(pool).Draw(t, "customer")]
}

func (s *machine) openAccountAgain(t *rapid.T) {
	acc := s.drawAccount(t, nil)
	res := s.pick(t).api(http.MethodPost, "/v1/accounts", map[string]string{"customer_id": acc.customerID, "currency": "KZT"}, nil)
	if acc.status == "closed" { // a closed account is not handed back
		if res.Status != http.StatusConflict {
			t.Fatalf("reopen closed account %s: %d %s, want 409", acc.customerID, res.Status, res.Body)
		}
		return
	}
	var a accountJSON
	if res.Status != http.StatusOK || res.json(&a) != nil || a.ID != acc.id || a.BalanceMinor != acc.balance {
		t.Fatalf("reopen account %s: %d %s", acc.customerID, res.Status, res.Body)
	}
}

func (s *machine) setStatus(action, to string) func(*rapid.T) {
	return func(t *rapid.T) {
		acc := s.drawAccount(t, nil)
		res := s.pick(t).apiAs(op1Token, http.MethodPost, "/v1/accounts/"+acc.id+"/"+action, nil, nil)
		var refused bool
		switch {
		case acc.status == "closed" && to != "closed":
			refused = true
		case to == "closed" && acc.balance != 0:
			refused = true
		}
		if refused {
			if res.Status < 400 || res.Status >= 500 {
				t.Fatalf("%s %s (%s, balance %d): want a 4xx refusal, got %d %s", action, acc.id, acc.status, acc.balance, res.Status, res.Body)
			}
			return
		}
		var a accountJSON
		if res.Status != http.StatusOK || res.json(&a) != nil || a.Status != to {
			t.Fatalf("%s %s (%s): %d %s", action, acc.id, acc.status, res.Status, res.Body)
		}
		acc.status = to
	}
}

// --- platform requests -----------------------------------------------

func (s *machine) request(t *rapid.T, body map[string]any, secret []byte) monetix.Answer {
	raw, err := monetix.SignedJSON(secret, body)
	if err != nil {
		t.Fatal(err)
	}
	res := s.pick(t).do(http.MethodPost, "/v1/monetix/requests", raw, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("platform request answered HTTP %d %s", res.Status, res.Body)
	}
	a, err := monetix.ParseAnswer(res.Body, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// accountStatus blocks (often), unblocks (often) or closes (rarely: a
// closed account is out of play for good) an account.
func (s *machine) accountStatus(t *rapid.T) {
	switch rapid.SampledFrom([]string{"block", "unblock", "block", "unblock", "close"}).Draw(t, "status action") {
	case "block":
		s.setStatus("block", "blocked")(t)
	case "unblock":
		s.setStatus("unblock", "active")(t)
	default:
		s.setStatus("close", "closed")(t)
	}
}

func (s *machine) verify(t *rapid.T) {
	if len(s.customers) == 0 || rapid.Bool().Draw(t, "unknown customer") {
		s.verifyUnknown(t)
		return
	}
	s.verifyKnown(t)
}

func (s *machine) verifyKnown(t *rapid.T) {
	acc := s.drawAccount(t, nil)
	a := s.request(t, monetix.VerifyRequestBody(projectID, acc.customerID), projectSecret)
	want := 0
	if acc.status != "active" {
		want = 500
	}
	if a.Code != want {
		t.Fatalf("verify %s (%s): code %d %q, want %d", acc.customerID, acc.status, a.Code, a.Message(), want)
	}
	if want == 0 && a.Currency != "KZT" {
		t.Fatalf("verify answered currency %q", a.Currency)
	}
}

func (s *machine) verifyUnknown(t *rapid.T) {
	a := s.request(t, monetix.VerifyRequestBody(projectID, s.tag+"-nobody"), projectSecret)
	if a.Code != 404 {
		t.Fatalf("verify unknown: code %d %q", a.Code, a.Message())
	}
}

func (s *machine) openDeposit(t *rapid.T, acc *mAccount, amount int64) {
	a := s.request(t, monetix.CheckDepositRequestBody(projectID, acc.customerID, amount, "KZT", "kassa24"), projectSecret)
	if acc.status != "active" {
		if a.Code != 500 {
			t.Fatalf("check_deposit on %s account: code %d", acc.status, a.Code)
		}
		return
	}
	if a.Code != 0 || a.PaymentID == "" {
		t.Fatalf("check_deposit %d: code %d %q", amount, a.Code, a.Message())
	}
	if _, dup := s.m.deposits[a.PaymentID]; dup {
		t.Fatalf("payment id %s handed out twice", a.PaymentID)
	}
	s.m.deposits[a.PaymentID] = &mDeposit{paymentID: a.PaymentID, customerID: acc.customerID, amount: amount, state: "pending"}
	s.payments = append(s.payments, a.PaymentID)
}

func (s *machine) checkDeposit(t *rapid.T) {
	acc := s.drawAccount(t, nil)
	amount := rapid.OneOf(rapid.Int64Range(minTiyn, 1_000_000), rapid.Int64Range(minTiyn, maxTiyn)).Draw(t, "amount")
	s.openDeposit(t, acc, amount)
}

// checkDepositLimits tries amounts at and past each limit of the method.
func (s *machine) checkDepositLimits(t *rapid.T) {
	acc := s.drawAccount(t, func(a *mAccount) bool { return a.status == "active" })
	amount := rapid.SampledFrom([]int64{minTiyn - 1, minTiyn, maxTiyn, maxTiyn + 1, 0, -1}).Draw(t, "amount")
	if amount >= minTiyn && amount <= maxTiyn {
		s.openDeposit(t, acc, amount)
		return
	}
	a := s.request(t, monetix.CheckDepositRequestBody(projectID, acc.customerID, amount, "KZT", "kassa24"), projectSecret)
	if a.Code != 500 || a.PaymentID != "" {
		t.Fatalf("check_deposit %d: code %d %q, want 500", amount, a.Code, a.Message())
	}
}

func (s *machine) checkDepositWrong(t *rapid.T) {
	acc := s.drawAccount(t, nil)
	kind := rapid.SampledFrom([]string{"currency", "method", "unknown customer", "bad signature", "other project key"}).Draw(t, "wrong")
	body := monetix.CheckDepositRequestBody(projectID, acc.customerID, 10_000, "KZT", "kassa24")
	secret, want := projectSecret, 500
	switch kind {
	case "currency":
		body["currency"] = "USD"
	case "method":
		body["payment_method"] = "qiwi"
	case "unknown customer":
		body["customer_id"] = s.tag + "-nobody"
		want = 404
	case "bad signature":
		secret, want = []byte("not-the-key"), 400
	case "other project key":
		secret, want = otherSecret, 400
	}
	a := s.request(t, body, secret)
	if a.Code != want || a.PaymentID != "" {
		t.Fatalf("check_deposit with wrong %s: code %d %q, want %d", kind, a.Code, a.Message(), want)
	}
}

// --- callbacks --------------------------------------------------------

type reply struct {
	Status string `json:"status"`
	Effect string `json:"effect"`
}

func (s *machine) newCallback(t *rapid.T, paymentID, status string, op, amount int64, currency string) *mCallback {
	return s.newCallbackFor(t, paymentID, status, op, amount, currency, "kassa24")
}

func (s *machine) newCallbackFor(t *rapid.T, paymentID, status string, op, amount int64, currency, method string) *mCallback {
	body, err := monetix.SignedJSON(projectSecret, monetix.BuildCallback(monetix.CallbackParams{
		ProjectID: projectID, PaymentID: paymentID, PaymentStatus: status, Method: method,
		AmountMinor: amount, Currency: currency, OperationID: op,
		Date: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC),
	}))
	if err != nil {
		t.Fatal(err)
	}
	cb := &mCallback{body: body, paymentID: paymentID}
	s.m.callbacks = append(s.m.callbacks, cb)
	return cb
}

func (s *machine) send(in *instance, cb *mCallback) (int, reply) {
	res := in.do(http.MethodPost, "/v1/monetix/callbacks", cb.body, nil)
	var r reply
	_ = json.Unmarshal(res.Body, &r)
	return res.Status, r
}

// deliver sends a well-signed callback as the platform does: until it is
// answered 200 (bounded), and checks the final effect.
func (s *machine) deliver(t *rapid.T, cb *mCallback, want string, in *instance) {
	for attempt := 1; ; attempt++ {
		cb.delivered++
		status, r := s.send(in, cb)
		if status == http.StatusOK {
			cb.acked++
			if r.Effect != want {
				t.Fatalf("callback %s: effect %q, want %q (attempt %d)", cb.paymentID, r.Effect, want, attempt)
			}
			return
		}
		if status < 500 || attempt >= 3 {
			t.Fatalf("callback %s: HTTP %d (attempt %d)", cb.paymentID, status, attempt)
		}
	}
}

func (s *machine) drawDeposit(t *rapid.T, ok func(*mDeposit) bool) *mDeposit {
	var pool []string
	for _, p := range s.payments {
		if ok(s.m.deposits[p]) {
			pool = append(pool, p)
		}
	}
	if len(pool) == 0 {
		t.Skip("no suitable deposit")
	}
	return s.m.deposits[rapid.SampledFrom(pool).Draw(t, "payment")]
}

func (s *machine) settle(t *rapid.T, d *mDeposit, status string, op, amount int64, currency string) {
	s.settleFor(t, d, status, op, amount, currency, "kassa24")
}

func (s *machine) settleFor(t *rapid.T, d *mDeposit, status string, op, amount int64, currency, method string) {
	if d.direct {
		t.Fatalf("harness: deposit %s of the check's own project sent over HTTP (project %s would not know it)", d.paymentID, projectID)
	}
	cb := s.newCallbackFor(t, d.paymentID, status, op, amount, currency, method)
	want := s.m.expectFor(d.paymentID, op, status, amount, currency, method)
	s.deliver(t, cb, want, s.pick(t))
}

// payment is the whole happy path of one terminal payment: check_deposit,
// then a success (or decline) callback.
func (s *machine) payment(t *rapid.T) {
	acc := s.drawAccount(t, func(a *mAccount) bool { return a.status == "active" })
	before := len(s.payments)
	s.openDeposit(t, acc, rapid.Int64Range(minTiyn, 5_000_000).Draw(t, "amount"))
	if len(s.payments) == before {
		t.Fatalf("check_deposit for active account %s opened nothing", acc.customerID)
	}
	d := s.m.deposits[s.payments[len(s.payments)-1]]
	status := rapid.SampledFrom([]string{"success", "success", "success", "decline"}).Draw(t, "status")
	s.settle(t, d, status, s.ops.Add(1), d.amount, "KZT")
}

func (s *machine) callbackSuccess(t *rapid.T) {
	d := s.drawDeposit(t, func(d *mDeposit) bool { return d.state != "succeeded" })
	s.settle(t, d, "success", s.ops.Add(1), d.amount, "KZT")
}

func (s *machine) callbackDecline(t *rapid.T) {
	d := s.drawDeposit(t, func(*mDeposit) bool { return true })
	s.settle(t, d, "decline", s.ops.Add(1), d.amount, "KZT")
}

func (s *machine) callbackIntermediate(t *rapid.T) {
	d := s.drawDeposit(t, func(*mDeposit) bool { return true })
	s.settle(t, d, "processing", s.ops.Add(1), d.amount, "KZT")
}

func (s *machine) callbackOtherOperation(t *rapid.T) {
	d := s.drawDeposit(t, func(d *mDeposit) bool { return d.state == "succeeded" })
	s.settle(t, d, "success", s.ops.Add(1), d.amount, "KZT")
}

func (s *machine) callbackMismatch(t *rapid.T) {
	d := s.drawDeposit(t, func(*mDeposit) bool { return true })
	status := rapid.SampledFrom([]string{"success", "decline"}).Draw(t, "status")
	switch rapid.IntRange(0, 3).Draw(t, "mismatch") {
	case 0:
		// Another currency: an ISO one, one Tiyn does not know, text, none.
		s.settle(t, d, status, s.ops.Add(1), d.amount, rapid.SampledFrom([]string{testCurrency, "USD", "kzt", ""}).Draw(t, "currency"))
		return
	case 1:
		// Another payment method, the right one in capitals, none.
		s.settleFor(t, d, status, s.ops.Add(1), d.amount, "KZT", rapid.SampledFrom([]string{"qiwi", "KASSA24", ""}).Draw(t, "method"))
		return
	}
	delta := rapid.SampledFrom([]int64{-1, 1, 100}).Draw(t, "delta")
	s.settle(t, d, status, s.ops.Add(1), d.amount+delta, "KZT")
}

func (s *machine) callbackUnknown(t *rapid.T) {
	op := s.ops.Add(1)
	pid := fmt.Sprintf("%s-unknown-%d", s.tag, op)
	cb := s.newCallback(t, pid, "success", op, 10_000, "KZT")
	want := s.m.expect(pid, op, "success", 10_000, "KZT")
	s.deliver(t, cb, want, s.pick(t))
}

// callbackReplay redelivers an earlier body byte for byte.
func (s *machine) callbackReplay(t *rapid.T) {
	var pool []int
	for i, cb := range s.m.callbacks {
		if cb.acked > 0 {
			pool = append(pool, i)
		}
	}
	if len(pool) == 0 {
		t.Skip("nothing delivered yet")
	}
	cb := s.m.callbacks[rapid.SampledFrom(pool).Draw(t, "callback")]
	var doc struct {
		Payment struct {
			Status string `json:"status"`
		} `json:"payment"`
	}
	if err := json.Unmarshal(cb.body, &doc); err != nil {
		t.Fatal(err)
	}
	want := "replay"
	if doc.Payment.Status == "processing" {
		want = "recorded"
	}
	s.deliver(t, cb, want, s.pick(t))
}

// callbackUnreadable sends an authentic callback that cannot be read as an
// outcome (a field of the wrong type): kept, answered 200, an exception
// that justifies no credit; its redelivery is a replay.
func (s *machine) callbackUnreadable(t *rapid.T) {
	d := s.drawDeposit(t, func(*mDeposit) bool { return true })
	op := s.ops.Add(1)
	doc := monetix.BuildCallback(monetix.CallbackParams{ProjectID: projectID, PaymentID: d.paymentID, PaymentStatus: "success",
		Method: "kassa24", AmountMinor: d.amount, Currency: "KZT", OperationID: op})
	doc["payment"].(map[string]any)["sum"].(map[string]any)["amount"] = fmt.Sprint(d.amount) // a string
	body, err := monetix.SignedJSON(projectSecret, doc)
	if err != nil {
		t.Fatal(err)
	}
	cb := &mCallback{body: body, paymentID: d.paymentID}
	s.m.callbacks = append(s.m.callbacks, cb)
	key := exceptionKey(d.paymentID, op, "success", 0, "")
	want := "exception"
	if _, ok := s.m.exceptions[key]; ok {
		want = "replay"
	} else {
		s.m.exceptions[key] = &mException{paymentID: d.paymentID, operationID: op, status: "success", reason: "malformed_callback",
			accountID: s.m.accounts[d.customerID].id, state: "open"}
	}
	s.deliver(t, cb, want, s.pick(t))
}

func (s *machine) refusedCallback(t *rapid.T, body []byte, what string) {
	res := s.pick(t).do(http.MethodPost, "/v1/monetix/callbacks", body, nil)
	if res.Status != http.StatusBadRequest {
		t.Fatalf("%s callback: HTTP %d %s, want 400", what, res.Status, res.Body)
	}
}

// callbackRefused sends a callback that must be refused with 400 and
// change nothing: a bad signature of some kind, or a malformed body.
func (s *machine) callbackRefused(t *rapid.T) {
	if len(s.payments) == 0 || rapid.Bool().Draw(t, "malformed") {
		s.callbackMalformed(t)
		return
	}
	s.callbackBadSignature(t)
}

func (s *machine) callbackBadSignature(t *rapid.T) {
	d := s.drawDeposit(t, func(*mDeposit) bool { return true })
	kind := rapid.SampledFrom([]string{"wrong key", "other project key", "flipped", "missing"}).Draw(t, "kind")
	doc := monetix.BuildCallback(monetix.CallbackParams{ProjectID: projectID, PaymentID: d.paymentID,
		PaymentStatus: "success", AmountMinor: d.amount, Currency: "KZT", OperationID: s.ops.Add(1)})
	var body []byte
	var err error
	switch kind {
	case "wrong key":
		body, err = monetix.SignedJSON([]byte("wrong-key"), doc)
	case "other project key":
		body, err = monetix.SignedJSON(otherSecret, doc)
	case "flipped":
		body, err = monetix.SignedJSON(projectSecret, doc)
		if err == nil {
			var m map[string]any
			_ = json.Unmarshal(body, &m)
			sig := []byte(m["signature"].(string))
			sig[3] ^= 1
			m["signature"] = string(sig)
			body, err = json.Marshal(m)
		}
	case "missing":
		body, err = json.Marshal(doc)
	}
	if err != nil {
		t.Fatal(err)
	}
	s.refusedCallback(t, body, kind)
}

func (s *machine) callbackMalformed(t *rapid.T) {
	body := rapid.SampledFrom([]string{
		``, `{`, `[]`, `null`, `{"project_id":1234}`, `{"project_id":"x","payment":{}}`,
		`{"project_id":1234,"payment":{"id":5}}`, "\xff\xfe", `{"project_id":1234}{}`,
	}).Draw(t, "body")
	s.refusedCallback(t, []byte(body), "malformed")
}

// callbackBurst delivers one new callback k times at the same moment,
// spread over the instances: exactly one takes effect.
func (s *machine) callbackBurst(t *rapid.T) {
	d := s.drawDeposit(t, func(*mDeposit) bool { return true })
	status := rapid.SampledFrom([]string{"success", "decline"}).Draw(t, "status")
	k := rapid.IntRange(2, 8).Draw(t, "k")
	op := s.ops.Add(1)
	cb := s.newCallback(t, d.paymentID, status, op, d.amount, "KZT")
	want := s.m.expect(d.paymentID, op, status, d.amount, "KZT")
	targets := make([]*instance, k)
	for i := range targets {
		targets[i] = s.pick(t)
	}
	var wg sync.WaitGroup
	results := make([]reply, k)
	codes := make([]int, k)
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], results[i] = s.send(targets[i], cb)
		}()
	}
	wg.Wait()
	cb.delivered += k
	effects := map[string]int{}
	for i := range k {
		if codes[i] != http.StatusOK {
			t.Fatalf("burst delivery %d: HTTP %d", i, codes[i])
		}
		cb.acked++
		effects[results[i].Effect]++
	}
	switch want {
	case "replay", "recorded":
		if effects[want] != k {
			t.Fatalf("burst of %d: effects %v, want all %s", k, effects, want)
		}
	default:
		if effects[want] != 1 || effects["replay"] != k-1 {
			t.Fatalf("burst of %d: effects %v, want one %s and %d replays", k, effects, want, k-1)
		}
	}
}

// callbackFault makes the store fail the callback's transaction — before
// its commit, or after it (the crash between commit and answer) — and then
// lets the platform redeliver: the payment still takes effect exactly once.
func (s *machine) callbackFault(t *rapid.T) {
	d := s.drawDeposit(t, func(*mDeposit) bool { return true })
	status := rapid.SampledFrom([]string{"success", "decline"}).Draw(t, "status")
	mode := rapid.SampledFrom([]faultMode{faultBeforeCommit, faultAfterCommit}).Draw(t, "fault")
	in := s.pick(t)
	op := s.ops.Add(1)
	cb := s.newCallback(t, d.paymentID, status, op, d.amount, "KZT")
	want := s.m.expect(d.paymentID, op, status, d.amount, "KZT")
	in.faults.arm(mode)
	cb.delivered++
	code, _ := s.send(in, cb)
	in.faults.arm(faultNone)
	if code < 500 {
		t.Fatalf("faulted callback answered HTTP %d, want 5xx", code)
	}
	if mode == faultAfterCommit && want != "recorded" {
		want = "replay" // the first delivery committed; the redelivery finds it done
	}
	s.deliver(t, cb, want, s.pick(t))
}

// --- debits -----------------------------------------------------------

func tenge(minor int64) string { return fmt.Sprintf("%d.%02d", minor/100, minor%100) }

type debitJSON struct {
	AccountID         string `json:"account_id"`
	AmountMinor       int64  `json:"amount_minor"`
	BalanceAfterMinor int64  `json:"balance_after_minor"`
	Replayed          bool   `json:"replayed"`
}

func (s *machine) postDebit(t *rapid.T, acc *mAccount, key string, amount int64, desc string) response {
	return s.pick(t).api(http.MethodPost, "/v1/accounts/"+acc.id+"/debits",
		map[string]string{"amount": tenge(amount), "description": desc}, map[string]string{"Idempotency-Key": key})
}

func (s *machine) debitNew(t *rapid.T) {
	acc := s.drawAccount(t, func(a *mAccount) bool { return a.balance > 0 })
	amount := rapid.Int64Range(1, acc.balance).Draw(t, "amount")
	key := fmt.Sprintf("%s-k%d", s.tag, len(s.debitKeys))
	desc := rapid.SampledFrom([]string{"", "order 42", "подписка"}).Draw(t, "description")
	res := s.postDebit(t, acc, key, amount, desc)
	if acc.status != "active" {
		if res.Status < 400 || res.Status >= 500 {
			t.Fatalf("debit on %s account: %d %s", acc.status, res.Status, res.Body)
		}
		return
	}
	var d debitJSON
	if res.Status != http.StatusCreated || res.json(&d) != nil || d.Replayed || d.AmountMinor != amount ||
		d.BalanceAfterMinor != acc.balance-amount {
		t.Fatalf("debit %d of %d: %d %s", amount, acc.balance, res.Status, res.Body)
	}
	acc.balance -= amount
	s.m.debited += amount
	s.m.debits[acc.id+"/"+key] = &mDebit{accountID: acc.id, amount: amount, description: desc, balance: acc.balance}
	s.debitKeys = append(s.debitKeys, acc.id+"/"+key)
}

func (s *machine) drawDebit(t *rapid.T) (*mDebit, string) {
	if len(s.debitKeys) == 0 {
		t.Skip("no debit yet")
	}
	k := rapid.SampledFrom(s.debitKeys).Draw(t, "debit")
	_, key, _ := strings.Cut(k, "/")
	return s.m.debits[k], key
}

func (s *machine) debitAgain(t *rapid.T) {
	if rapid.Bool().Draw(t, "conflicting") {
		s.debitConflict(t)
		return
	}
	s.debitReplay(t)
}

func (s *machine) debitReplay(t *rapid.T) {
	d, key := s.drawDebit(t)
	res := s.postDebit(t, s.m.byID[d.accountID], key, d.amount, d.description)
	var got debitJSON
	if res.Status != http.StatusOK || res.json(&got) != nil || !got.Replayed || got.AmountMinor != d.amount ||
		got.BalanceAfterMinor != d.balance || res.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("debit replay: %d %s", res.Status, res.Body)
	}
}

func (s *machine) debitConflict(t *rapid.T) {
	d, key := s.drawDebit(t)
	res := s.postDebit(t, s.m.byID[d.accountID], key, d.amount+1, d.description)
	if res.Status != http.StatusConflict {
		t.Fatalf("debit with reused key: %d %s, want 409", res.Status, res.Body)
	}
}

func (s *machine) debitInsufficient(t *rapid.T) {
	acc := s.drawAccount(t, func(a *mAccount) bool { return a.status == "active" })
	key := fmt.Sprintf("%s-k%d", s.tag, len(s.debitKeys))
	res := s.postDebit(t, acc, key, acc.balance+1, "too much")
	if res.Status != http.StatusUnprocessableEntity {
		t.Fatalf("debit past the balance: %d %s, want 422", res.Status, res.Body)
	}
}

// --- exceptions -------------------------------------------------------

type exceptionJSON struct {
	ID            string  `json:"id"`
	Status        string  `json:"status"`
	PaymentID     string  `json:"payment_id"`
	OperationID   *string `json:"operation_id"`
	PaymentStatus string  `json:"payment_status"`
	AmountMinor   int64   `json:"amount_minor"`
	Proposal      *struct {
		ProposedBy  string `json:"proposed_by"`
		AmountMinor int64  `json:"amount_minor"`
	} `json:"proposal"`
	Resolution *struct {
		Actor string `json:"actor"`
	} `json:"resolution"`
}

func (s *machine) findException(t *rapid.T, e *mException) string {
	cursor := ""
	for range 1000 {
		path := "/v1/exceptions?status=" + e.state + "&limit=1000"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		res := s.pick(t).api(http.MethodGet, path, nil, nil)
		var page struct {
			Items      []exceptionJSON `json:"items"`
			NextCursor *string         `json:"next_cursor"`
		}
		if res.Status != http.StatusOK || res.json(&page) != nil {
			t.Fatalf("list exceptions: %d %s", res.Status, res.Body)
		}
		for _, x := range page.Items {
			if x.PaymentID == e.paymentID && x.OperationID != nil && *x.OperationID == fmt.Sprint(e.operationID) &&
				x.PaymentStatus == e.status && x.AmountMinor == e.amount {
				return x.ID
			}
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	t.Fatalf("%s exception for %s op %d not listed", e.state, e.paymentID, e.operationID)
	return ""
}

// --- corrections ----------------------------------------------------
//
// Every operator action is checked against the model's rule
// (model.creditRefusal): a payment is credited once, within its evidence.

func (s *machine) drawException(t *rapid.T, ok func(*mException) bool) *mException {
	var keys []string
	for k, e := range s.m.exceptions {
		if ok(e) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		t.Skip("no suitable exception")
	}
	sort.Strings(keys)
	return s.m.exceptions[rapid.SampledFrom(keys).Draw(t, "exception")]
}

func (s *machine) hasException(ok func(*mException) bool) bool {
	for _, e := range s.m.exceptions {
		if ok(e) {
			return true
		}
	}
	return false
}

func (s *machine) drawOperator(t *rapid.T) (name, token string) {
	name = rapid.SampledFrom([]string{"op1", "op2"}).Draw(t, "operator")
	return name, operators[name]
}

// resolve posts a resolution and checks the answer's status and shape.
func (s *machine) resolve(t *rapid.T, token, id string, body map[string]string, want int) exceptionJSON {
	res := s.pick(t).apiAs(token, http.MethodPost, "/v1/exceptions/"+id+"/resolve", body, nil)
	if res.Status != want {
		t.Fatalf("resolve %s %v: %d %s, want %d", id, body, res.Status, res.Body, want)
	}
	var got exceptionJSON
	if want < 300 {
		if err := res.json(&got); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

// creditBody is a credit resolution of e to target (nil: the default)
// with amount (0: the default).
func creditBody(target *mAccount, amount int64) map[string]string {
	body := map[string]string{"action": "credit", "note": "checked with the platform"}
	if target != nil {
		body["account_id"] = target.id
	}
	if amount != 0 {
		body["amount"] = tenge(amount)
	}
	return body
}

// credit asks for an operator credit of e and checks the rule's verdict:
// made (or proposed, with four eyes) when the model allows it, refused
// with the status the rule implies otherwise.
func (s *machine) credit(t *rapid.T, e *mException, target *mAccount, amount int64) {
	id := s.findException(t, e)
	name, token := s.drawOperator(t)
	refusal := s.m.creditRefusal(e, target, amount)
	want := http.StatusOK
	switch {
	case refusal != 0:
		want = refusal
	case s.fourEyes:
		want = http.StatusAccepted
	}
	got := s.resolve(t, token, id, creditBody(target, amount), want)
	switch want {
	case http.StatusOK:
		s.m.applyCredit(e, target, amount, e.operationID)
		if got.Status != "resolved" {
			t.Fatalf("credit of %s answered status %q", id, got.Status)
		}
		// Often the platform speaks of the payment right after.
		if d, ok := s.m.deposits[e.paymentID]; ok && rapid.Bool().Draw(t, "late callback now") {
			s.lateCallbackOn(t, d)
			s.counts.add("LateCallback")
		}
	case http.StatusAccepted:
		acct := e.accountID
		if target != nil {
			acct = target.id
		}
		if amount == 0 {
			amount = e.amount
		}
		e.state, e.proposal = "proposed", &mProposal{actor: name, accountID: acct, amount: amount}
		if got.Status != "proposed" || got.Proposal == nil || got.Proposal.ProposedBy != name || got.Proposal.AmountMinor != amount {
			t.Fatalf("proposal of %s answered %+v", id, got)
		}
		// Often a second operator decides right away (the separate
		// actions let callbacks come in between too).
		switch rapid.IntRange(0, 4).Draw(t, "decide now") {
		case 0:
			s.approveOwn(t, e)
			s.counts.add("ApproveOwnProposal")
		case 1:
			s.reject(t, e)
			s.counts.add("RejectProposal")
		case 2, 3:
			s.approve(t, e)
			s.counts.add("ApproveProposal")
		}
	}
}

// resolveException dismisses or credits an open exception, to its own
// account or another, for the evidence's amount or a drawn one.
func (s *machine) resolveException(t *rapid.T) {
	// Mostly an exception a credit can settle (the refusals have actions
	// of their own), sometimes any open one.
	creditable := func(e *mException) bool {
		if e.state != "open" || !e.creditable() {
			return false
		}
		if d, ok := s.m.deposits[e.paymentID]; ok {
			return d.creditedBy == ""
		}
		_, done := s.m.unknownCredited[e.paymentID]
		return !done
	}
	open := func(e *mException) bool { return e.state == "open" }
	pick := open
	if rapid.IntRange(0, 3).Draw(t, "creditable") > 0 && s.hasException(creditable) {
		pick = creditable
	}
	e := s.drawException(t, pick)
	if rapid.IntRange(0, 3).Draw(t, "dismiss") == 0 {
		id := s.findException(t, e)
		_, token := s.drawOperator(t)
		got := s.resolve(t, token, id, map[string]string{"action": "dismiss", "note": "checked with the platform"}, http.StatusOK)
		e.state = "dismissed"
		if got.Status != "dismissed" {
			t.Fatalf("dismissal of %s answered %q", id, got.Status)
		}
		again := s.pick(t).apiAs(token, http.MethodPost, "/v1/exceptions/"+id+"/resolve", creditBody(s.drawAccount(t, nil), 0), nil)
		if again.Status != http.StatusConflict {
			t.Fatalf("credit after dismissal of %s: %d %s, want 409", id, again.Status, again.Body)
		}
		return
	}
	var target *mAccount
	if e.accountID == "" || rapid.IntRange(0, 3).Draw(t, "named account") == 0 {
		if rapid.IntRange(0, 5).Draw(t, "omit account") > 0 {
			target = s.drawAccount(t, nil)
		}
	}
	var amount int64
	if e.amount > 1 && rapid.Bool().Draw(t, "own amount") {
		amount = rapid.Int64Range(1, e.amount).Draw(t, "amount")
	}
	s.credit(t, e, target, amount)
}

// correctMismatch is the issue's own story: a pending deposit, a success
// claiming another amount (an exception), an operator's credit of it — and
// then whatever the platform says next is never a second credit.
func (s *machine) correctMismatch(t *rapid.T) {
	d := s.drawDeposit(t, func(d *mDeposit) bool { return d.state != "succeeded" })
	delta := rapid.SampledFrom([]int64{-1, 1, 100, 10_000}).Draw(t, "delta")
	if d.amount+delta < 1 || d.amount+delta > maxTiyn {
		delta = -delta
	}
	op := s.ops.Add(1)
	s.settle(t, d, "success", op, d.amount+delta, "KZT")
	e := s.m.exceptions[exceptionKey(d.paymentID, op, "success", d.amount+delta, "KZT")]
	if e == nil || e.state != "open" {
		return // a replay of an exception already handled
	}
	var amount int64
	if rapid.Bool().Draw(t, "requested amount") && d.amount <= e.bound() {
		amount = d.amount // the operator believes check_deposit's amount
	}
	s.credit(t, e, nil, amount)
}

// resolveCredited tries to credit an exception whose payment is already
// credited (a duplicate success, a decline after success, or one an
// operator or a callback credited since): always refused.
func (s *machine) resolveCredited(t *rapid.T) {
	e := s.drawException(t, func(e *mException) bool {
		if e.state != "open" {
			return false
		}
		d, ok := s.m.deposits[e.paymentID]
		_, unknownDone := s.m.unknownCredited[e.paymentID]
		return (ok && d.creditedBy != "") || unknownDone
	})
	var target *mAccount
	if e.accountID == "" {
		target = s.drawAccount(t, func(a *mAccount) bool { return a.status != "closed" })
	}
	if s.m.creditRefusal(e, target, 0) != http.StatusConflict {
		t.Fatalf("model: a credited payment's exception is creditable")
	}
	s.credit(t, e, target, 0)
}

// resolveAboveEvidence asks for more than the evidence justifies: one
// tiyn more, the method's maximum and more, int64's maximum.
func (s *machine) resolveAboveEvidence(t *rapid.T) {
	e := s.drawException(t, func(e *mException) bool { return e.state == "open" && e.creditable() })
	var target *mAccount
	if e.accountID == "" {
		target = s.drawAccount(t, func(a *mAccount) bool { return a.status != "closed" })
	}
	amount := rapid.SampledFrom([]int64{e.bound() + 1, maxTiyn + 1, 1<<63 - 1}).Draw(t, "amount")
	s.credit(t, e, target, amount)
}

func (s *machine) decideProposal(t *rapid.T, e *mException, token, action string, body map[string]string, want int) exceptionJSON {
	id := s.findException(t, e)
	res := s.pick(t).apiAs(token, http.MethodPost, "/v1/exceptions/"+id+"/"+action, body, nil)
	if res.Status != want {
		t.Fatalf("%s %s: %d %s, want %d", action, id, res.Status, res.Body, want)
	}
	var got exceptionJSON
	if want == http.StatusOK {
		if err := res.json(&got); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

// approveProposal: another operator approves; the credit is checked again
// (a callback may have credited the payment meanwhile).
func (s *machine) approveProposal(t *rapid.T) {
	s.approve(t, s.drawException(t, func(e *mException) bool { return e.state == "proposed" }))
}

func (s *machine) approve(t *rapid.T, e *mException) {
	approver := "op1"
	if e.proposal.actor == "op1" {
		approver = "op2"
	}
	target := s.m.byID[e.proposal.accountID]
	want := http.StatusOK
	if r := s.m.creditRefusal(e, target, e.proposal.amount); r != 0 {
		want = r
	}
	got := s.decideProposal(t, e, operators[approver], "approve", nil, want)
	if want != http.StatusOK {
		return // refused: still proposed
	}
	proposer := e.proposal.actor
	s.m.applyCredit(e, target, e.proposal.amount, e.operationID)
	if got.Status != "resolved" || got.Resolution == nil || got.Resolution.Actor != approver || got.Proposal == nil ||
		got.Proposal.ProposedBy != proposer {
		t.Fatalf("approval answered %+v", got)
	}
}

// approveOwnProposal: the proposer may not approve (403), nothing moves.
func (s *machine) approveOwnProposal(t *rapid.T) {
	s.approveOwn(t, s.drawException(t, func(e *mException) bool { return e.state == "proposed" }))
}

func (s *machine) approveOwn(t *rapid.T, e *mException) {
	s.decideProposal(t, e, operators[e.proposal.actor], "approve", nil, http.StatusForbidden)
}

// rejectProposal: the proposal is dropped, the exception open again.
func (s *machine) rejectProposal(t *rapid.T) {
	s.reject(t, s.drawException(t, func(e *mException) bool { return e.state == "proposed" }))
}

func (s *machine) reject(t *rapid.T, e *mException) {
	_, token := s.drawOperator(t)
	got := s.decideProposal(t, e, token, "reject", map[string]string{"note": "not confirmed"}, http.StatusOK)
	e.state, e.proposal = "open", nil
	if got.Status != "open" || got.Proposal != nil {
		t.Fatalf("rejection answered %+v", got)
	}
}

// lateCallback: the platform speaks about a payment an operator credited:
// its success again (the operation the credit took, or another), the
// requested or the claimed amount, a decline. Never a second credit.
func (s *machine) lateCallback(t *rapid.T) {
	s.lateCallbackOn(t, s.drawDeposit(t, func(d *mDeposit) bool { return d.creditedBy == "operator" }))
}

func (s *machine) lateCallbackOn(t *rapid.T, d *mDeposit) {
	status := rapid.SampledFrom([]string{"success", "success", "decline"}).Draw(t, "status")
	op := d.operationID
	if rapid.Bool().Draw(t, "new operation") {
		op = s.ops.Add(1)
	}
	amount := rapid.SampledFrom([]int64{d.amount, d.creditedAmount}).Draw(t, "amount")
	if d.direct {
		s.deliverDirect(t, s.direct(d.paymentID, op, status, amount))
		return
	}
	s.settle(t, d, status, op, amount, "KZT")
}

// ceilingCredit stands an empty account just below the balance ceiling
// (a balanced transfer written directly, as years of payments would), then
// pays into it: a payment that would pass the ceiling is an exception,
// answered 200, never a credit and never a 5xx.
func (s *machine) ceilingCredit(t *rapid.T) {
	// Not an account a lost payment is pending on: the status round
	// settles several at once in no fixed order, and near the ceiling the
	// order would decide which one fits.
	acc := s.drawAccount(t, func(a *mAccount) bool { return a.status == "active" && a.balance == 0 && !s.lostPending(a) })
	room := rapid.Int64Range(0, 20_000).Draw(t, "room")
	seed := ceilingTiyn - room
	ctx := context.Background()
	db := s.instances[0].store.DB()
	trf := fmt.Sprintf("trf_seed_%s_%d", s.tag, s.ops.Add(1))
	now := time.Now().UnixMicro()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO transfers (id, kind, description, actor, created_at_us) VALUES (?, 'exception_credit', 'seed', 'prop', ?)`, []any{trf, now}},
		{`INSERT INTO postings (transfer_id, account_id, amount_minor, currency, balance_after_minor, created_at_us)
			VALUES (?, 'clearing:seed:prop', ?, 'KZT', NULL, ?)`, []any{trf, -seed, now}},
		{`INSERT INTO postings (transfer_id, account_id, amount_minor, currency, balance_after_minor, created_at_us)
			VALUES (?, ?, ?, 'KZT', ?, ?)`, []any{trf, acc.id, seed, seed, now}},
		{`UPDATE accounts SET balance_minor = ? WHERE id = ?`, []any{seed, acc.id}},
	} {
		if _, err := db.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	acc.balance = seed
	s.m.seeded += seed
	s.seeds = append(s.seeds, trf)
	before := len(s.payments)
	s.openDeposit(t, acc, rapid.Int64Range(minTiyn, 40_000).Draw(t, "amount"))
	if len(s.payments) == before {
		t.Fatalf("check_deposit for active account %s opened nothing", acc.customerID)
	}
	d := s.m.deposits[s.payments[len(s.payments)-1]]
	s.settle(t, d, "success", s.ops.Add(1), d.amount, "KZT")
}

// --- invariants -------------------------------------------------------

// check holds the whole service to the model after every action.
func (s *machine) check(t *rapid.T) {
	ctx := context.Background()
	st := s.instances[0].store

	// Each balance and status equals the model; each statement's last
	// balance-after equals the balance.
	var storeTotal int64
	for _, cust := range s.customers {
		want := s.m.accounts[cust]
		acc, err := st.AccountByID(ctx, want.id)
		if err != nil {
			t.Fatal(err)
		}
		if acc.Balance().Minor() != want.balance || acc.Status().String() != want.status {
			t.Fatalf("account %s: balance %d %s, model %d %s", cust, acc.Balance().Minor(), acc.Status(), want.balance, want.status)
		}
		if acc.Balance().IsNegative() {
			t.Fatalf("account %s has a negative balance", cust)
		}
		storeTotal += acc.Balance().Minor()
		last, err := lastStatementLine(ctx, st, want.id)
		if err != nil {
			t.Fatal(err)
		}
		if last != nil && last.BalanceAfter.Minor() != want.balance {
			t.Fatalf("account %s: statement ends at %d, balance %d", cust, last.BalanceAfter.Minor(), want.balance)
		}
		if last == nil && want.balance != 0 {
			t.Fatalf("account %s: balance %d without postings", cust, want.balance)
		}
	}
	// Customer balances sum to credited deposits minus debits plus
	// resolved credits (plus the balances seeded at the ceiling).
	if want := s.m.credited - s.m.debited + s.m.resolvedCredits + s.m.seeded; storeTotal != want || s.m.customerTotal() != want {
		t.Fatalf("customer total %d (model %d), want credits %d - debits %d + resolved %d + seeded %d = %d",
			storeTotal, s.m.customerTotal(), s.m.credited, s.m.debited, s.m.resolvedCredits, s.m.seeded, want)
	}
	s.checkCreditsOncePerPayment(t, ctx)
	// The clearing account mirrors the credits; revenue mirrors debits.
	clearing, err := st.DerivedBalance(ctx, clearingID)
	if err != nil {
		t.Fatal(err)
	}
	if clearing != s.start.clearing-s.m.credited-s.m.resolvedCredits {
		t.Fatalf("clearing balance %d, want %d", clearing, s.start.clearing-s.m.credited-s.m.resolvedCredits)
	}
	revenue, err := st.DerivedBalance(ctx, domain.RevenueAccountID)
	if err != nil {
		t.Fatal(err)
	}
	if revenue != s.start.revenue+s.m.debited {
		t.Fatalf("revenue balance %d, want %d", revenue, s.start.revenue+s.m.debited)
	}
	// Every transfer balances, one credit per succeeded deposit, no
	// negative balance anywhere (recomputed from the rows).
	chk, err := st.CheckLedger(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !chk.Healthy() {
		t.Fatalf("ledger check: %+v", chk)
	}
	s.checkDeposits(t, ctx)
	s.checkInbox(t, ctx)
	s.checkExceptions(t, ctx)
}

// checkCreditsOncePerPayment holds the store's rows to the rule itself,
// whatever the effects the model predicted: every transfer that moved
// money into one of this check's accounts (but debits and seeds) is the
// one credit of one payment, and no more than the platform claimed for it
// in a success callback.
func (s *machine) checkCreditsOncePerPayment(t *rapid.T, ctx context.Context) {
	rows, err := s.instances[0].store.DB().QueryContext(ctx, `SELECT t.id, t.kind, COALESCE(d.payment_id, ''),
		COALESCE(t.credit_key, ''), p.account_id, p.amount_minor FROM postings p JOIN transfers t ON t.id = p.transfer_id
		LEFT JOIN deposits d ON d.id = t.deposit_id WHERE p.amount_minor > 0 AND t.kind <> 'debit' AND t.description <> 'seed'
		AND p.created_at_us >= ?`, s.start.at.UnixMicro())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	credits := map[string][]string{}
	for rows.Next() {
		var id, kind, paymentID, creditKey, accountID string
		var amount int64
		if err := rows.Scan(&id, &kind, &paymentID, &creditKey, &accountID, &amount); err != nil {
			t.Fatal(err)
		}
		if _, ours := s.m.byID[accountID]; !ours {
			continue
		}
		if paymentID == "" {
			// An unknown payment's credit names it: monetix/PROJECT/PAYMENT.
			parts := strings.SplitN(creditKey, "/", 3)
			if len(parts) != 3 {
				t.Fatalf("transfer %s (%s) credits %s without naming a payment", id, kind, accountID)
			}
			paymentID = parts[2]
		}
		if claimed := s.m.evidence[paymentID]; amount > claimed {
			t.Fatalf("transfer %s credits %d for payment %s, the platform claimed at most %d in a success", id, amount, paymentID, claimed)
		}
		credits[paymentID] = append(credits[paymentID], id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for p, ids := range credits {
		if len(ids) > 1 {
			t.Fatalf("payment %s credited %d times: %v", p, len(ids), ids)
		}
	}
}

func lastStatementLine(ctx context.Context, st ports.Reader, accountID string) (*ports.StatementLine, error) {
	var last *ports.StatementLine
	var after int64
	for range 1000 {
		lines, err := st.Statement(ctx, ports.StatementQuery{AccountID: accountID, AfterSeq: after, Limit: ports.MaxPageSize})
		if err != nil {
			return nil, err
		}
		if len(lines) == 0 {
			return last, nil
		}
		last = &lines[len(lines)-1]
		after = last.Seq
	}
	return last, nil
}

func (s *machine) checkDeposits(t *rapid.T, ctx context.Context) {
	want := map[string]string{"pending": "pending", "succeeded": "succeeded", "declined": "declined"}
	for _, p := range s.payments {
		md := s.m.deposits[p]
		d, err := s.instances[0].store.DepositByPaymentID(ctx, domain.Channel{Provider: "monetix", Project: projectID}, p)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status.String() != want[md.state] || d.Amount.Minor() != md.amount {
			t.Fatalf("deposit %s: %s %d, model %s %d", p, d.Status, d.Amount.Minor(), md.state, md.amount)
		}
		if md.state != "pending" && d.OperationID != fmt.Sprint(md.operationID) {
			t.Fatalf("deposit %s settled by operation %s, model %d", p, d.OperationID, md.operationID)
		}
	}
}

// checkInbox: every well-signed callback answered 200 and every status
// answer applied is in the inbox, byte for byte, at least as often as it
// was acknowledged (applied) and at most as often as it was delivered;
// nothing else arrived.
func (s *machine) checkInbox(t *rapid.T, ctx context.Context) {
	rows, err := s.instances[0].store.DB().QueryContext(ctx, `SELECT body FROM callback_inbox WHERE id > ? AND received_at_us >= ?`,
		s.start.inboxID, s.start.at.UnixMicro())
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int{}
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		stored[string(b)]++
	}
	_ = rows.Close()
	sent := map[string][2]int{}
	evidence := append([]*mCallback(nil), s.m.callbacks...)
	for _, a := range s.m.answers {
		evidence = append(evidence, a)
	}
	evidence = append(evidence, s.m.direct...)
	for _, cb := range evidence {
		v := sent[string(cb.body)]
		sent[string(cb.body)] = [2]int{v[0] + cb.acked, v[1] + cb.delivered}
	}
	for body, n := range sent {
		if stored[body] < n[0] || stored[body] > n[1] {
			t.Fatalf("inbox holds %d copies of a callback acked %d and delivered %d times: %.120s", stored[body], n[0], n[1], body)
		}
	}
	for body := range stored {
		if _, ok := sent[body]; !ok && strings.Contains(body, s.tag) {
			t.Fatalf("inbox holds a callback nobody sent well-signed: %.120s", body)
		}
	}
}

// checkExceptions: the open/resolved/dismissed exceptions of this check's
// payments are exactly the model's.
func (s *machine) checkExceptions(t *rapid.T, ctx context.Context) {
	rows, err := s.instances[0].store.DB().QueryContext(ctx, `SELECT payment_id, operation_id, callback_status,
		amount_minor, currency, state, reason FROM exceptions WHERE created_at_us >= ?`, s.start.at.UnixMicro())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for rows.Next() {
		var pid, op, status, cur, state, reason string
		var amount int64
		if err := rows.Scan(&pid, &op, &status, &amount, &cur, &state, &reason); err != nil {
			t.Fatal(err)
		}
		if _, ours := s.m.deposits[pid]; !ours && !strings.HasPrefix(pid, s.tag) {
			continue
		}
		key := fmt.Sprintf("%s|%s|%s|%d|%s", pid, op, status, amount, cur)
		if status == "succeeded" { // a reconciliation's exception about the credited deposit itself
			key += "|" + reason
		}
		if _, dup := got[key]; dup {
			t.Fatalf("exception %s stored twice", key)
		}
		got[key] = state
	}
	_ = rows.Close()
	if len(got) != len(s.m.exceptions) {
		t.Fatalf("%d exceptions stored, model has %d", len(got), len(s.m.exceptions))
	}
	for key, e := range s.m.exceptions {
		if got[key] != e.state {
			t.Fatalf("exception %s is %q, model %q", key, got[key], e.state)
		}
	}
}
