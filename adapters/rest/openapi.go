package rest

import (
	_ "embed"
	"net/http"
)

// openAPIDocument is the API's OpenAPI 3.1 description, kept beside the
// code (openapi.json) and checked against routeTable by a test, so the
// published contract cannot drift from what is served.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns the embedded OpenAPI document (a copy), for tooling and
// for programs that embed Tiyn and publish the document themselves.
func OpenAPI() []byte {
	return append([]byte(nil), openAPIDocument...)
}

// openAPI: GET /v1/openapi.json.
func (a *api) openAPI(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openAPIDocument)
	return nil
}
