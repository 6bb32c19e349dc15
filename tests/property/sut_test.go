package property_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"

	"github.com/tiyn/tiyn/adapters/monetix"
	"github.com/tiyn/tiyn/adapters/rest"
	"github.com/tiyn/tiyn/adapters/sqlstore"
	"github.com/tiyn/tiyn/adapters/system"
	"github.com/tiyn/tiyn/app"
	"github.com/tiyn/tiyn/ports"
)

// The system under test: the real Monetix and REST handlers over the real
// app over a real store, called in-process through httptest (no network).
// Several instances may share one database, each with its own pool, as
// several tiyn processes would.

const (
	projectID    = "1234"
	otherProject = "5678"
	// apiToken is the back office's write token (accounts, debits).
	apiToken = "prop-token-0123456789abcdef"
	// operatorTokens are two operators, "op1" and "op2": corrections,
	// account status, and with four eyes one proposes, the other approves.
	op1Token = "prop-op1-token-0123456789abcdef"
	op2Token = "prop-op2-token-0123456789abcdef"
)

// operators maps an operator's name to its token.
var operators = map[string]string{"op1": op1Token, "op2": op2Token}

var (
	projectSecret = []byte("prop-secret-of-project-1234")
	otherSecret   = []byte("prop-secret-of-project-5678")
)

// faultMode is a one-shot fault armed on a store wrapper.
type faultMode int32

const (
	faultNone faultMode = iota
	// faultBeforeCommit: the transaction's work fails before COMMIT, so
	// nothing is stored.
	faultBeforeCommit
	// faultAfterCommit: the transaction commits, then the store reports a
	// failure — the crash between the commit and the HTTP answer.
	faultAfterCommit
)

// faultStore wraps a ports.Store and fails the next Update or Batch as armed. Only
// tests use it.
type faultStore struct {
	ports.Store
	mode atomic.Int32
}

func (f *faultStore) arm(m faultMode) { f.mode.Store(int32(m)) }

func (f *faultStore) Update(ctx context.Context, fn ports.TxFunc) error {
	return f.inject(fn, func(fn ports.TxFunc) error { return f.Store.Update(ctx, fn) })
}

// Batch forwards the write (its key and its read-ahead) to the store: on
// PostgreSQL callbacks cross group-commit partitions as in production.
func (f *faultStore) Batch(ctx context.Context, w ports.Write, fn ports.TxFunc) error {
	return f.inject(fn, func(fn ports.TxFunc) error { return f.Store.Batch(ctx, w, fn) })
}

// inject runs fn through run with the armed fault, if any.
func (f *faultStore) inject(fn ports.TxFunc, run func(ports.TxFunc) error) error {
	switch faultMode(f.mode.Swap(int32(faultNone))) {
	case faultBeforeCommit:
		return run(func(ctx context.Context, tx ports.Tx) error {
			if err := fn(ctx, tx); err != nil {
				return err
			}
			return fmt.Errorf("%w: injected fault before commit", ports.ErrUnavailable)
		})
	case faultAfterCommit:
		if err := run(fn); err != nil {
			return err
		}
		return fmt.Errorf("%w: injected fault after commit", ports.ErrUnavailable)
	}
	return run(fn)
}

// instance is one tiyn "process": a store pool, a fault wrapper, the app
// and the HTTP handlers.
type instance struct {
	store   *sqlstore.Store
	svc     *app.Service // the use cases REST does not serve yet (reconciliation)
	faults  *faultStore
	handler http.Handler
	poller  *app.StatusPoller // asks the machine's Gate (attachPollers)
}

func newInstance(store *sqlstore.Store, fourEyes bool) (*instance, error) {
	fs := &faultStore{Store: store}
	svc := app.NewService(fs, system.Clock{}, &system.IDs{}, app.WithFourEyes(fourEyes), app.WithBusinessZone(businessZone))
	mux := http.NewServeMux()
	rest.Register(mux, svc, rest.Options{Tokens: []rest.Token{
		{Name: "prop", Role: rest.RoleWrite, Secret: apiToken},
		{Name: "op1", Role: rest.RoleOperator, Secret: op1Token},
		{Name: "op2", Role: rest.RoleOperator, Secret: op2Token},
	}})
	mh, err := monetix.New(svc, monetix.Config{Projects: []monetix.Project{
		{ID: projectID, Secret: projectSecret},
		{ID: otherProject, Secret: otherSecret},
	}})
	if err != nil {
		return nil, err
	}
	mh.Register(mux)
	return &instance{store: store, svc: svc, faults: fs, handler: mux}, nil
}

// response is what a handler answered.
type response struct {
	Status int
	Body   []byte
	Header http.Header
}

func (r response) json(v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("decode %d answer %q: %w", r.Status, r.Body, err)
	}
	return nil
}

func (in *instance) do(method, path string, body []byte, header map[string]string) response {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	in.handler.ServeHTTP(rec, req)
	return response{Status: rec.Code, Body: rec.Body.Bytes(), Header: rec.Header()}
}

// api calls the REST API with the back office's token.
func (in *instance) api(method, path string, body any, header map[string]string) response {
	return in.apiAs(apiToken, method, path, body, header)
}

// apiAs calls the REST API with a token.
func (in *instance) apiAs(token, method, path string, body any, header map[string]string) response {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			panic(err)
		}
	}
	h := map[string]string{"Authorization": "Bearer " + token}
	for k, v := range header {
		h[k] = v
	}
	return in.do(method, path, raw, h)
}
