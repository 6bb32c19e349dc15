package monetix_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/tiyn/tiyn/adapters/monetix"
)

// TestMethodNotAllowedShapes: a wrong method is HTTP 405 with Allow: POST,
// answered in the endpoint's own shape — the Monetix answer for requests,
// the CallbackReply for callbacks — through the mux and called directly.
func TestMethodNotAllowedShapes(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t)
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodHead} {
		for _, path := range []string{monetix.RequestsPath, monetix.CallbacksPath} {
			req, _ := http.NewRequest(method, path, nil)
			for _, direct := range []bool{false, true} {
				rec := newRecorder()
				switch {
				case !direct:
					e.mux.ServeHTTP(rec, req)
				case path == monetix.RequestsPath:
					e.h.ServeRequests(rec, req)
				default:
					e.h.ServeCallbacks(rec, req)
				}
				if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != http.MethodPost ||
					rec.Header().Get("Content-Type") != "application/json" {
					t.Fatalf("%s %s: %d %v", method, path, rec.Code, rec.Header())
				}
				if method == http.MethodHead {
					continue // no body to read
				}
				if path == monetix.RequestsPath {
					a, err := monetix.ParseAnswer(rec.Body.Bytes(), nil)
					var raw map[string]json.RawMessage
					if err != nil || json.Unmarshal(rec.Body.Bytes(), &raw) != nil || len(raw) != 2 ||
						a.Code != monetix.CodeGeneralError || a.Errors == nil || a.Errors.Message != "method not allowed" {
						t.Fatalf("%s %s: %s is not a Monetix answer {code:500, errors.message} (%v)", method, path, rec.Body.String(), err)
					}
					continue
				}
				var reply monetix.CallbackReply
				if err := json.Unmarshal(rec.Body.Bytes(), &reply); err != nil || reply.Status != "error" || reply.Error == "" || reply.Effect != "" {
					t.Fatalf("%s %s: %s is not a CallbackReply (%v)", method, path, rec.Body.String(), err)
				}
			}
		}
	}
}
