package platform

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
)

// maxGateRequestBytes bounds a request's body: a status request is ~200
// bytes.
const maxGateRequestBytes = 64 << 10

// GateConfig configures a Gate.
type GateConfig struct {
	// Payments is the record the Gate answers from.
	Payments *Payments
	// Secrets maps each project id (canonical decimal) to its key: a
	// request must be signed with it, and the answer is.
	Secrets map[string][]byte
	// Method is payment.method in the answers (the simulated method's
	// name, kassa24).
	Method string
}

// Gate serves the platform's Gate API from the record: POST
// /v2/payment/status (monetix.GateStatusPath), in the shapes of the
// adapter's gatewire.go — a signed answer with the payment and its
// operations, or for a payment not on record (or of another project) the
// platform's not-found answer, HTTP 404, signed too. A request that is
// not signed with a known project's key is refused with 400. Every
// request, answered or not, is counted and metered (Stats). Safe for
// concurrent use; one Gate per listener gives each its own meter.
type Gate struct {
	payments *Payments
	secrets  map[string][]byte
	method   string
	mux      *http.ServeMux

	meter                       RateMeter
	answered, notFound, refused atomic.Int64
}

// NewGate checks cfg and returns the Gate.
func NewGate(cfg GateConfig) (*Gate, error) {
	if cfg.Payments == nil || len(cfg.Secrets) == 0 || cfg.Method == "" {
		return nil, errors.New("platform.NewGate: a record, at least one project and a method are needed")
	}
	for id, secret := range cfg.Secrets {
		if len(secret) == 0 {
			return nil, fmt.Errorf("platform.NewGate: project %s has no secret", id)
		}
	}
	g := &Gate{payments: cfg.Payments, secrets: maps.Clone(cfg.Secrets), method: cfg.Method, mux: http.NewServeMux()}
	g.mux.HandleFunc(monetix.GateStatusPath, g.serveStatus)
	return g, nil
}

// GateStats counts a Gate's requests.
type GateStats struct {
	// Requests is every request received; Answered those answered with a
	// payment, NotFound those about a payment not on record, Refused the
	// rest (unsigned, wrongly signed, malformed, another path or method).
	Requests, Answered, NotFound, Refused int64
	// PeakPerSecond is the most requests within one second (a sliding
	// window, MeterWindow); PeakSaturated marks it a lower bound.
	PeakPerSecond int
	PeakSaturated bool
}

// Stats returns the Gate's counts so far.
func (g *Gate) Stats() GateStats {
	m := g.meter.Read()
	return GateStats{Requests: m.Total, Answered: g.answered.Load(), NotFound: g.notFound.Load(), Refused: g.refused.Load(),
		PeakPerSecond: m.Peak, PeakSaturated: m.Saturated}
}

// ServeHTTP meters the request and routes it.
func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.meter.Observe(time.Now())
	if _, pattern := g.mux.Handler(r); pattern == "" {
		g.refuse(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
		return
	}
	g.mux.ServeHTTP(w, r)
}

func (g *Gate) serveStatus(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		g.refuse(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxGateRequestBytes))
	if err != nil {
		g.refuse(w, http.StatusBadRequest, "unreadable body: "+err.Error())
		return
	}
	project, paymentID, err := monetix.VerifyStatusRequest(func(id string) []byte { return g.secrets[id] }, body)
	if err != nil {
		g.refuse(w, http.StatusBadRequest, err.Error())
		return
	}
	secret := g.secrets[project]
	p, ok := g.payments.Get(paymentID)
	if !ok || strconv.FormatInt(p.ProjectID, 10) != project {
		g.notFound.Add(1)
		g.writeSigned(w, secret, http.StatusNotFound, monetix.StatusNotFoundBody(project, paymentID))
		return
	}
	g.answered.Add(1)
	g.writeSigned(w, secret, http.StatusOK, g.answer(project, &p))
}

// answer is the status answer about p: the payment's status is its latest
// operation's, its date that operation's last change.
func (g *Gate) answer(project string, p *Payment) map[string]any {
	last := p.Last()
	ops := make([]monetix.StatusOperation, 0, MaxOperations)
	for _, o := range p.Operations() {
		date := o.Completed
		if date.IsZero() {
			date = o.Created
		}
		ops = append(ops, monetix.StatusOperation{ID: o.ID, Type: o.Type(), Status: o.Status.String(), Date: date,
			Created: o.Created, AmountMinor: o.AmountMinor, Currency: o.Currency})
	}
	date := ops[len(ops)-1].Date
	return monetix.BuildStatusAnswer(monetix.StatusAnswerParams{ProjectID: project, PaymentID: p.ID,
		PaymentStatus: last.Status.String(), Method: g.method, AmountMinor: last.AmountMinor, Currency: last.Currency,
		Operations: ops, Date: date})
}

func (g *Gate) writeSigned(w http.ResponseWriter, secret []byte, status int, doc map[string]any) {
	out, err := monetix.SignedJSON(secret, doc)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

// refuse answers a request that names no payment it can answer about, with
// the platform's errors list (unsigned: the request proved no project).
func (g *Gate) refuse(w http.ResponseWriter, status int, message string) {
	g.refused.Add(1)
	out, _ := json.Marshal(map[string]any{"errors": []any{map[string]any{"code": strconv.Itoa(status), "message": message}}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(out)
}
