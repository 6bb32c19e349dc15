package platform

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/monetix/signature"
)

// maxDataRequestBytes bounds a Data API request's body (~400 bytes).
const maxDataRequestBytes = 64 << 10

// DataAPIConfig configures a DataAPI.
type DataAPIConfig struct {
	// Payments is the record the operations are listed from.
	Payments *Payments
	// Token and Secret are the one Data API token the platform knows and
	// its secret key: requests must carry the token and be signed with the
	// key, and answers are signed with it.
	Token  string
	Secret []byte
	// Mapping names the members the vendor's reference does not show
	// (the zero value is monetix.DefaultDataMapping).
	Mapping monetix.DataMapping
}

// DataAPI serves the platform's Data API from the record: POST
// /v1/operations/get (monetix.DataOperationsPath), read with the adapter's
// platform side (monetix.ParseDataRequest: the token known, the signature
// valid) and answered with monetix.DataAPIPage.Body, signed. It lists
// every operation whose completion time lies in the request's interval
// [from, to) — an operation not completed has no completion time and is
// in no interval — of the projects asked for (all without a list), the
// copies a FaultDuplicate lists twice included, ordered by completion
// time, then operation id, and answers the page [offset, offset+limit).
// Times are written in the request's zone. A request with an unknown token
// is answered 401, any other bad request 400, with the platform's errors
// list. Safe for concurrent use.
type DataAPI struct {
	payments *Payments
	token    string
	secret   []byte
	mapping  monetix.DataMapping

	requests, answered, refused atomic.Int64

	mu   sync.Mutex
	snap dataSnapshot
}

// dataSnapshot is the sorted list of one interval's operations, kept while
// the record and the request's interval and projects stay the same (a day
// is read page by page).
type dataSnapshot struct {
	key   string
	gen   int64
	items []monetix.DataAPIItem
}

// NewDataAPI checks cfg and returns the Data API.
func NewDataAPI(cfg DataAPIConfig) (*DataAPI, error) {
	if cfg.Payments == nil || cfg.Token == "" || len(cfg.Secret) == 0 {
		return nil, errors.New("platform.NewDataAPI: a record, a token and its secret are needed")
	}
	m := cfg.Mapping
	if m == (monetix.DataMapping{}) {
		m = monetix.DefaultDataMapping()
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("platform.NewDataAPI: %w", err)
	}
	return &DataAPI{payments: cfg.Payments, token: cfg.Token, secret: append([]byte(nil), cfg.Secret...), mapping: m}, nil
}

// DataAPIStats counts a DataAPI's requests.
type DataAPIStats struct {
	// Requests is every request; Answered those answered with a page,
	// Refused the others.
	Requests, Answered, Refused int64
}

// Stats returns the counts so far.
func (d *DataAPI) Stats() DataAPIStats {
	return DataAPIStats{Requests: d.requests.Load(), Answered: d.answered.Load(), Refused: d.refused.Load()}
}

// ServeHTTP answers POST /v1/operations/get.
func (d *DataAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.requests.Add(1)
	if r.URL.Path != monetix.DataOperationsPath {
		d.refuse(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		d.refuse(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDataRequestBytes))
	if err != nil {
		d.refuse(w, http.StatusBadRequest, "unreadable body: "+err.Error())
		return
	}
	req, err := monetix.ParseDataRequest(d.mapping, body, func(token string) []byte {
		if token == d.token {
			return d.secret
		}
		return nil
	})
	switch {
	case errors.Is(err, monetix.ErrUnknownDataToken):
		d.refuse(w, http.StatusUnauthorized, "unknown token")
		return
	case errors.Is(err, signature.ErrInvalidSignature):
		d.refuse(w, http.StatusUnauthorized, "invalid signature")
		return
	case err != nil:
		d.refuse(w, http.StatusBadRequest, err.Error())
		return
	case !req.From.Before(req.To):
		d.refuse(w, http.StatusBadRequest, "the interval is empty")
		return
	}
	items := d.list(req)
	lo := min(req.Offset, len(items))
	hi := min(lo+req.Limit, len(items))
	out, err := monetix.DataAPIPage{Items: items[lo:hi]}.Body(d.mapping, d.secret, req.Zone)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	d.answered.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// list returns the interval's operations in order, from the snapshot when
// the record has not changed since it was made.
func (d *DataAPI) list(req monetix.DataRequest) []monetix.DataAPIItem {
	key := req.From.UTC().Format(time.RFC3339Nano) + "|" + req.To.UTC().Format(time.RFC3339Nano) + "|" + strings.Join(req.Projects, ",")
	gen := d.payments.Generation()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.snap.key == key && d.snap.gen == gen && d.snap.items != nil {
		return d.snap.items
	}
	items := ListOperations(d.payments, req.From, req.To, req.Projects)
	d.snap = dataSnapshot{key: key, gen: gen, items: items}
	return items
}

// ListOperations lists the record's operations completed in [from, to)
// of the projects named (all when none), each as many times as its
// payment's Listings, ordered by completion time, then operation id (the
// copies of a duplicate next to each other). Never nil.
func ListOperations(ps *Payments, from, to time.Time, projects []string) []monetix.DataAPIItem {
	items := []monetix.DataAPIItem{}
	_ = ps.Each(func(p *Payment) error {
		project := strconv.FormatInt(p.ProjectID, 10)
		if len(projects) > 0 && !slices.Contains(projects, project) {
			return nil
		}
		for _, o := range p.Operations() {
			if o.Completed.IsZero() || o.Completed.Before(from) || !o.Completed.Before(to) {
				continue
			}
			it := o.item(project, p.ID)
			for range p.Listings() {
				items = append(items, it)
			}
		}
		return nil
	})
	slices.SortStableFunc(items, func(a, b monetix.DataAPIItem) int {
		if c := a.CompletedAt.Compare(b.CompletedAt); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(len(a.OperationID), len(b.OperationID)), strings.Compare(a.OperationID, b.OperationID))
	})
	return items
}

// item is the operation as the Data API lists it.
func (o Operation) item(project, paymentID string) monetix.DataAPIItem {
	return monetix.DataAPIItem{
		ProjectID: project, PaymentID: paymentID, OperationID: strconv.FormatInt(o.ID, 10),
		OperationType: o.Type(), OperationStatus: o.Status.String(), AmountMinor: o.AmountMinor, Currency: o.Currency,
		CreatedAt: o.Created, CompletedAt: o.Completed,
	}
}

func (d *DataAPI) refuse(w http.ResponseWriter, status int, message string) {
	d.refused.Add(1)
	out, _ := json.Marshal(map[string]any{"errors": []any{map[string]any{"code": strconv.Itoa(status), "message": message}}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(out)
}
