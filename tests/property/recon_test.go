package property_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"
	"time"

	"pgregory.net/rapid"

	"github.com/tiyn/tiyn/domain"
	"github.com/tiyn/tiyn/ports"
)

// A business day's reconciliation racing callbacks and status answers
// (issue 17). The platform's record of the day — what a CSV report or
// the Data API would list — is kept here for the check's own project (the
// tag: no other check's deposits are on its ledger side), and grows with
// every ReconcileRace action. The model states the rule in its own words:
//
//	The platform's last sale of a payment in the day decides (a later
//	successful refund overrides); that final word is applied like a
//	callback saying it — the same rule, so the same evidence is credited
//	once, whoever delivers it first, and a mismatch or a refund goes to
//	an operator. A deposit the ledger credited that the platform's record
//	does not back (no successful sale standing for it) is an exception,
//	raised once, and nothing is reversed. A deposit neither side has
//	finished is pending on both sides. The same input twice changes
//	nothing.

// reconBook is the platform's record of one business day for the check's
// project.
type reconBook struct {
	day      domain.BusinessDay
	rows     []ports.SourceRow
	payments []string              // the check's reconciled deposits, in order
	evidence map[string]*mCallback // row evidence by raw text
	orphans  int                   // orphan payment ids handed out
}

// memSource is a day's record in memory, read in order.
type memSource struct{ rows []ports.SourceRow }

func (m *memSource) Kind() string { return "data_api" }

// Authenticated: the record is the platform's own (an uploaded report's
// rows justify no credit; tests/contract holds that rule).
func (m *memSource) Authenticated() bool { return true }

func (m *memSource) Operations(ctx context.Context, _ domain.BusinessDay, row func(ports.SourceRow) error, _ func(ports.RowError) error) (ports.SourceSummary, error) {
	h := sha256.New()
	for i, r := range m.rows {
		if err := ctx.Err(); err != nil {
			return ports.SourceSummary{}, err
		}
		r.Line = i + 2
		h.Write([]byte(r.Raw + "\n"))
		if err := row(r); err != nil {
			return ports.SourceSummary{}, err
		}
	}
	return ports.SourceSummary{Hash: hex.EncodeToString(h.Sum(nil)), Rows: len(m.rows)}, nil
}

func (s *machine) channel() domain.Channel {
	return domain.Channel{Provider: "monetix", Method: "kassa24", Project: s.tag}
}

// book returns the check's record of the day. The business day cannot
// change during a check (businessZone is one where the run began at noon);
// if it did, the book would be another day's, so that fails.
func (s *machine) book(t *rapid.T) *reconBook {
	svc := s.instances[0].svc
	today := domain.DayOf(time.Now(), svc.BusinessZone())
	if s.recon == nil {
		s.recon = &reconBook{day: today, evidence: map[string]*mCallback{}}
	}
	if s.recon.day != today {
		t.Fatalf("the business day changed during the check: the book is %s, today %s in %s", s.recon.day, today, svc.BusinessZone())
	}
	return s.recon
}

// addRow puts an operation on the platform's record.
func (b *reconBook) addRow(m *model, tag, paymentID string, op int64, typ, status string, amount int64, at time.Time) {
	r := ports.SourceRow{ProjectID: tag, PaymentID: paymentID, OperationID: fmt.Sprint(op), Type: typ, Status: status,
		Amount: domain.NewAmount(amount, domain.KZT), CompletedAt: at}
	r.Raw = fmt.Sprintf("%s,%s,%d,%s,%s,%d.%02d,KZT,%s", tag, paymentID, op, typ, status, amount/100, amount%100,
		at.In(b.day.Location()).Format(time.DateTime+".000000"))
	b.rows = append(b.rows, r)
	ev := &mCallback{body: []byte(r.Raw), paymentID: paymentID}
	b.evidence[r.Raw] = ev
	m.direct = append(m.direct, ev) // the inbox keeps it when a run applies it
}

// platformWord is the model's reading of a payment's operations: the last
// sale decides, a successful refund after it overrides. It returns the
// operation and the status the settle rule sees ("refund success" for a
// refund).
func platformWord(rows []ports.SourceRow) (ports.SourceRow, string) {
	order := append([]ports.SourceRow(nil), rows...)
	sort.SliceStable(order, func(i, j int) bool { return order[i].CompletedAt.Before(order[j].CompletedAt) })
	var last ports.SourceRow
	word := ""
	for _, r := range order {
		switch {
		case r.Type == "sale":
			last, word = r, r.Status
		case r.Type == "refund" && r.Status == "success" && word != "":
			last, word = r, "refund success"
		}
	}
	return last, word
}

// reasonClass is the class a payment's exception puts it in.
func reasonClass(reason string) string {
	switch reason {
	case "amount_mismatch", "currency_mismatch":
		return reason
	case "unknown_payment":
		return "orphan_operation"
	}
	return "held_for_operator"
}

// expectRecon is the model's verdict on one payment of the day (rows: its
// operations, none for a deposit the record does not mention): the
// classes its deciding item may take. The verdict is applied to the model.
func (s *machine) expectRecon(paymentID string, rows []ports.SourceRow) []string {
	d := s.m.deposits[paymentID]
	credited := d != nil && d.state == "succeeded"
	cwp := func() []string {
		// Raised once per deposit, whatever run finds it again.
		key := ledgerExceptionKey(d, "credited_without_platform_success")
		if _, ok := s.m.exceptions[key]; !ok {
			acc := s.m.accounts[d.customerID]
			s.m.exceptions[key] = &mException{paymentID: paymentID, operationID: d.operationID, status: "succeeded",
				currency: "KZT", reason: "credited_without_platform_success", accountID: acc.id, state: "open"}
		}
		return []string{"credited_without_platform_success"}
	}
	if len(rows) == 0 {
		if credited {
			return cwp()
		}
		return []string{"pending_both"}
	}
	last, word := platformWord(rows)
	op := parseOp(last.OperationID)
	amount := last.Amount.Minor()
	if word == "processing" || word == "" {
		if credited {
			return cwp()
		}
		return []string{"pending_both"} // nothing final on either side
	}
	// The ledger's side of a credited deposit is what it credited, which
	// an operator's credit within its evidence may have made other than
	// the deposit's amount: the platform's word is compared with that.
	ledger := int64(0)
	if d != nil {
		ledger = d.amount
	}
	over := credited && d.creditedAmount != d.amount
	if over {
		ledger = d.creditedAmount
	}
	mismatch := d != nil && amount != ledger
	if over && mismatch {
		// The ledger paid another amount than the platform collected: an
		// exception that claims nothing, raised once per deposit.
		key := ledgerExceptionKey(d, "amount_mismatch")
		if _, ok := s.m.exceptions[key]; !ok {
			s.m.exceptions[key] = &mException{paymentID: paymentID, operationID: d.operationID, status: "succeeded",
				currency: "KZT", reason: "amount_mismatch", accountID: s.m.accounts[d.customerID].id, state: "open"}
		}
		return []string{"amount_mismatch"}
	}
	switch {
	case !mismatch && credited && word != "success":
		return cwp() // a decline or a refund of a credited deposit: never reversed
	case !mismatch && d != nil && word == "decline" && d.state == "declined":
		return []string{"matched"}
	case !mismatch && credited && word == "success" && d.operationID == op:
		return []string{"matched"}
	}
	// Otherwise the final word is applied like a callback saying it.
	switch s.m.expectFor(paymentID, op, word, amount, "KZT", "kassa24") {
	case "credited":
		return []string{"healed", "matched"} // a racing callback or status answer may have come first
	case "declined":
		return []string{"matched"}
	}
	if e := s.m.exceptions[exceptionKey(paymentID, op, word, amount, "KZT")]; e != nil {
		return []string{reasonClass(e.reason)}
	}
	return []string{"matched"}
}

func parseOp(s string) int64 {
	var v int64
	_, _ = fmt.Sscan(s, &v)
	return v
}

// reconcileRace: new payments of the check's project with what the
// platform did with each; a run of the day on one instance while their
// callbacks and status answers arrive on others; then, sometimes, the
// same input again.
func (s *machine) reconcileRace(t *rapid.T) {
	b := s.book(t)
	ctx := context.Background()
	acc := s.drawAccount(t, func(a *mAccount) bool { return a.status == "active" && a.balance < ceilingTiyn/2 })
	ch := s.channel()
	type racer struct {
		paymentID string
		cb        ports.SettleDeposit
		ev        *mCallback
	}
	var racers []racer
	now := time.Now()
	for range rapid.IntRange(1, 4).Draw(t, "payments") {
		amount := rapid.Int64Range(minTiyn, 5_000_000).Draw(t, "amount")
		dep, err := s.pick(t).svc.OpenDeposit(ctx, ports.OpenDeposit{Channel: ch, CustomerID: acc.customerID,
			Amount: domain.NewAmount(amount, domain.KZT), Limits: domain.AmountLimits{MinMinor: minTiyn, MaxMinor: maxTiyn}})
		if err != nil {
			t.Fatalf("open deposit for reconciliation: %v", err)
		}
		p := dep.PaymentID
		s.m.deposits[p] = &mDeposit{paymentID: p, customerID: acc.customerID, amount: amount, state: "pending", direct: true}
		b.payments = append(b.payments, p)
		op := s.ops.Add(1)
		switch truth := rapid.SampledFrom([]string{"success", "success", "decline", "processing", "mismatch", "refund",
			"none", "rogue", "rogue then decline"}).Draw(t, "platform record"); truth {
		case "success", "decline":
			b.addRow(s.m, s.tag, p, op, "sale", truth, amount, now)
			if rapid.Bool().Draw(t, "race its callback") {
				cb := s.direct(p, op, truth, amount)
				racers = append(racers, racer{p, cb, s.evidenceOf(cb)})
				answer := s.direct(p, op, truth, amount)
				answer.Source, answer.RawBody = ports.SourceStatusPoll, fmt.Sprintf(`{"status_answer":%q,"op":%d,"tag":%q}`, truth, op, s.tag)
				racers = append(racers, racer{p, answer, s.evidenceOf(answer)})
			}
		case "processing":
			b.addRow(s.m, s.tag, p, op, "sale", "processing", amount, now)
		case "mismatch":
			b.addRow(s.m, s.tag, p, op, "sale", "success", amount+rapid.SampledFrom([]int64{-1, 1}).Draw(t, "delta"), now)
		case "refund":
			b.addRow(s.m, s.tag, p, op, "sale", "success", amount, now)
			b.addRow(s.m, s.tag, p, s.ops.Add(1), "refund", "success", amount, now.Add(time.Second))
		case "rogue", "rogue then decline":
			// The ledger credits a success the platform's record does not
			// back: a callback for an operation the platform never
			// completed (or declined).
			s.deliverDirect(t, s.direct(p, op, "success", amount))
			if truth == "rogue then decline" {
				b.addRow(s.m, s.tag, p, s.ops.Add(1), "sale", "decline", amount, now)
			}
		}
	}
	if rapid.IntRange(0, 3).Draw(t, "orphan") == 0 {
		b.orphans++
		b.addRow(s.m, s.tag, fmt.Sprintf("%s-orphan-%d", s.tag, b.orphans), s.ops.Add(1), "sale", "success",
			rapid.Int64Range(minTiyn, 5_000_000).Draw(t, "orphan amount"), now)
	}

	// The model: every payment of the record, and every deposit of the
	// check's project the record does not mention.
	byPayment := map[string][]ports.SourceRow{}
	var order []string
	for _, r := range b.rows {
		if _, seen := byPayment[r.PaymentID]; !seen {
			order = append(order, r.PaymentID)
		}
		byPayment[r.PaymentID] = append(byPayment[r.PaymentID], r)
	}
	for _, p := range b.payments {
		if _, seen := byPayment[p]; !seen {
			order = append(order, p)
		}
	}
	want := map[string][]string{}
	credit := map[string]bool{} // payments the model credits now: one of the racers or the run does it
	for _, p := range order {
		before := s.m.deposits[p] != nil && s.m.deposits[p].state == "succeeded"
		want[p] = s.expectRecon(p, byPayment[p])
		credit[p] = !before && s.m.deposits[p] != nil && s.m.deposits[p].state == "succeeded"
	}
	src := &memSource{rows: append([]ports.SourceRow(nil), b.rows...)}
	for _, r := range src.rows {
		b.evidence[r.Raw].delivered++ // a run writes a row's evidence when it applies it, at most once
	}

	// The race.
	runner := s.pick(t)
	var (
		wg     sync.WaitGroup
		run    ports.ReconRun
		runErr error
		mu     sync.Mutex
		effect = map[int]domain.Effect{}
	)
	wg.Add(1 + len(racers))
	go func() {
		defer wg.Done()
		run, runErr = runner.svc.ReconcileDay(ctx, ports.ReconcileDay{Day: b.day, Source: src, Provider: "monetix", Method: "kassa24",
			Projects: []string{s.tag}, Limits: domain.AmountLimits{MinMinor: minTiyn, MaxMinor: maxTiyn}, StartedBy: "op1"})
	}()
	for i, r := range racers {
		in := s.pick(t)
		go func() {
			defer wg.Done()
			res, err := in.svc.SettleDeposit(ctx, r.cb)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				effect[i] = domain.Effect{}
				return
			}
			effect[i] = res.Effect
		}()
	}
	wg.Wait()
	if runErr != nil {
		t.Fatalf("reconcile %s: %v", b.day, runErr)
	}
	if run.Unchanged || run.Status != ports.RunFinished {
		t.Fatalf("run %+v", run)
	}
	credits := map[string]int{}
	for i, r := range racers {
		r.ev.delivered++
		e := effect[i]
		if e == (domain.Effect{}) {
			t.Fatalf("racing %s for %s failed", r.cb.Source, r.paymentID)
		}
		r.ev.acked++
		switch {
		case e == domain.EffectCredit || e == domain.EffectDecline:
			credits[r.paymentID]++
		case e != domain.EffectReplay:
			t.Fatalf("racing %s for %s: effect %s", r.cb.Source, r.paymentID, e)
		}
	}

	// The run's items: each payment's deciding item in a class the model
	// allows, every other item of it superseded (matched).
	items := listItems(t, runner.svc, run.ID)
	gotBy := map[string][]ports.ReconItem{}
	for _, it := range items {
		gotBy[it.PaymentID] = append(gotBy[it.PaymentID], it)
	}
	if len(gotBy) != len(order) {
		t.Fatalf("run %s has items for %d payments, the model %d", run.ID, len(gotBy), len(order))
	}
	counted := map[string]int64{}
	for _, p := range order {
		its := gotBy[p]
		if n := max(len(byPayment[p]), 1); len(its) != n {
			t.Fatalf("payment %s: %d items, model %d", p, len(its), n)
		}
		// One item decides (its class one the model allows); the payment's
		// other operations are superseded: matched.
		found := ""
		for _, it := range its {
			c := it.Class.String()
			counted[c]++
			if c == "matched" {
				continue
			}
			if found != "" || !contains(want[p], c) {
				t.Fatalf("payment %s: classes %v (notes %q), model %v", p, classesOf(its), it.Note, want[p])
			}
			found = c
		}
		if found == "" && !contains(want[p], "matched") {
			t.Fatalf("payment %s: classes %v, model %v", p, classesOf(its), want[p])
		}
		// The racers and the run applied the decider's evidence once.
		if credit[p] {
			healed := 0
			if found == "healed" {
				healed = 1
			}
			if credits[p]+healed != 1 {
				t.Fatalf("payment %s: credited by %d racers and healed %d times", p, credits[p], healed)
			}
		}
	}
	for _, c := range domain.ReconClasses() {
		if run.Count(c) != counted[c.String()] {
			t.Fatalf("run counts %s %d, items %d", c, run.Count(c), counted[c.String()])
		}
	}
	s.checkReconDeposits(t)

	// The same input again changes nothing and says so.
	if rapid.IntRange(0, 2).Draw(t, "rerun") == 0 {
		before := s.reconTally(t)
		again, err := s.pick(t).svc.ReconcileDay(ctx, ports.ReconcileDay{Day: b.day, Source: src, Provider: "monetix",
			Method: "kassa24", Projects: []string{s.tag}, StartedBy: "op2"})
		if err != nil || !again.Unchanged || again.ID != run.ID {
			t.Fatalf("rerun of the same input: %+v, %v", again, err)
		}
		if after := s.reconTally(t); after != before {
			t.Fatalf("an unchanged rerun wrote: %+v → %+v", before, after)
		}
	}
}

// direct builds a callback (or status answer) of the platform about a
// payment of the check's project, delivered to the app directly: the
// project is the check's own, which no Monetix handler serves.
func (s *machine) direct(paymentID string, op int64, status string, amount int64) ports.SettleDeposit {
	kind := domain.OutcomeSuccess
	if status == "decline" {
		kind = domain.OutcomeDecline
	}
	return ports.SettleDeposit{Channel: s.channel(), PaymentID: paymentID,
		Outcome: domain.Outcome{Kind: kind, Status: status, OperationID: fmt.Sprint(op), Amount: domain.NewAmount(amount, domain.KZT), Method: "kassa24"},
		RawBody: fmt.Sprintf(`{"callback":%q,"payment":%q,"op":%d,"tag":%q}`, status, paymentID, op, s.tag), ReceivedAt: time.Now(),
		Limits: domain.AmountLimits{MinMinor: minTiyn, MaxMinor: maxTiyn}}
}

// evidenceOf registers cb's body as sent.
func (s *machine) evidenceOf(cb ports.SettleDeposit) *mCallback {
	ev := &mCallback{body: []byte(cb.RawBody), paymentID: cb.PaymentID}
	s.m.direct = append(s.m.direct, ev)
	return ev
}

// deliverDirect applies one callback as the model says.
func (s *machine) deliverDirect(t *rapid.T, cb ports.SettleDeposit) {
	ev := s.evidenceOf(cb)
	want := s.m.expectFor(cb.PaymentID, parseOp(cb.Outcome.OperationID), cb.Outcome.Status, cb.Outcome.Amount.Minor(), "KZT", "kassa24")
	res, err := s.pick(t).svc.SettleDeposit(context.Background(), cb)
	ev.delivered++
	if err != nil {
		t.Fatalf("callback %s for %s: %v", cb.Outcome.Status, cb.PaymentID, err)
	}
	ev.acked++
	if res.Effect.String() != want {
		t.Fatalf("callback %s for %s: effect %s, model %s", cb.Outcome.Status, cb.PaymentID, res.Effect, want)
	}
}

// checkReconDeposits: each reconciled deposit is as the model says.
func (s *machine) checkReconDeposits(t *rapid.T) {
	for _, p := range s.recon.payments {
		md := s.m.deposits[p]
		d, err := s.instances[0].store.DepositByPaymentID(context.Background(), s.channel(), p)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status.String() != md.state || d.Amount.Minor() != md.amount {
			t.Fatalf("reconciled deposit %s: %s %d, model %s %d", p, d.Status, d.Amount.Minor(), md.state, md.amount)
		}
		if md.state == "succeeded" && d.OperationID != fmt.Sprint(md.operationID) {
			t.Fatalf("reconciled deposit %s settled by %s, model %d", p, d.OperationID, md.operationID)
		}
	}
}

// reconTally counts what a rerun could write: transfers, inbox records,
// exceptions and runs.
type reconCounts struct{ transfers, inbox, exceptions, runs int64 }

func (s *machine) reconTally(t *rapid.T) reconCounts {
	db := s.instances[0].store.DB()
	var c reconCounts
	for _, q := range []struct {
		sql string
		v   *int64
	}{
		{`SELECT COUNT(*) FROM transfers`, &c.transfers},
		{`SELECT COUNT(*) FROM callback_inbox`, &c.inbox},
		{`SELECT COUNT(*) FROM exceptions`, &c.exceptions},
		{`SELECT COUNT(*) FROM reconciliation_runs`, &c.runs},
	} {
		if err := db.QueryRowContext(context.Background(), q.sql).Scan(q.v); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func listItems(t *rapid.T, svc interface {
	ListReconItems(context.Context, ports.ReconItemQuery) ([]ports.ReconItem, error)
}, runID string) []ports.ReconItem {
	var out []ports.ReconItem
	q := ports.ReconItemQuery{RunID: runID, Limit: ports.MaxPageSize}
	for range 100 {
		page, err := svc.ListReconItems(context.Background(), q)
		if err != nil {
			t.Fatalf("items of run %s: %v", runID, err)
		}
		out = append(out, page...)
		if len(page) < q.Limit {
			return out
		}
		q.AfterSeq = page[len(page)-1].Seq
	}
	t.Fatalf("run %s has too many items", runID)
	return nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func classesOf(its []ports.ReconItem) []string {
	var out []string
	for _, it := range its {
		out = append(out, it.Class.String())
	}
	return out
}
