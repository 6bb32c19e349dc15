package rest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tiyn/tiyn/adapters/rest"
)

// externalRoutes are documented for completeness but served by other
// adapters, without a bearer token.
var externalRoutes = []string{
	"POST /v1/monetix/requests",
	"POST /v1/monetix/callbacks",
	"GET /healthz",
	"GET /readyz",
	"GET /metrics",
}

type openAPIOperation struct {
	Security   *[]map[string][]string `json:"security"`
	Role       string                 `json:"x-tiyn-role"`
	ServedBy   string                 `json:"x-tiyn-served-by"`
	Parameters []json.RawMessage      `json:"parameters"`
	Responses  map[string]any         `json:"responses"`
}

func loadOpenAPI(t *testing.T) (map[string]any, []byte) {
	t.Helper()
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return doc, raw
}

func TestOpenAPIServedIsTheFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, raw := loadOpenAPI(t)
	rec := e.do("GET", "/v1/openapi.json", readSecret, "")
	wantStatus(t, rec, http.StatusOK)
	if !bytes.Equal(rec.Body.Bytes(), raw) || !bytes.Equal(rest.OpenAPI(), raw) {
		t.Fatal("the served document differs from adapters/rest/openapi.json")
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q", ct)
	}
}

// TestOpenAPIMatchesRoutes: the (method, path) pairs in the document are
// exactly the routes the handler registers plus the external ones, with
// the same roles.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	doc, _ := loadOpenAPI(t)
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Fatalf("openapi version %q", v)
	}
	paths, _ := doc["paths"].(map[string]any)
	documented := map[string]openAPIOperation{}
	pathParam := regexp.MustCompile(`\{([a-z_]+)\}`)
	for path, item := range paths {
		itemMap, _ := item.(map[string]any)
		declared := map[string]bool{}
		collectPathParams(t, doc, itemMap["parameters"], declared)
		for method, raw := range itemMap {
			if method == "parameters" {
				continue
			}
			if !slices.Contains([]string{"get", "post", "put", "patch", "delete"}, method) {
				t.Errorf("%s: unexpected key %q", path, method)
				continue
			}
			var op openAPIOperation
			b, _ := json.Marshal(raw)
			if err := json.Unmarshal(b, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			key := strings.ToUpper(method) + " " + path
			documented[key] = op
			opDeclared := map[string]bool{}
			for k := range declared {
				opDeclared[k] = true
			}
			collectPathParams(t, doc, raw.(map[string]any)["parameters"], opDeclared)
			for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
				if !opDeclared[m[1]] {
					t.Errorf("%s: path parameter %q is not declared", key, m[1])
				}
			}
		}
	}

	want := map[string]rest.Route{}
	for _, r := range rest.Routes() {
		key := r.Method + " " + r.Path
		if _, dup := want[key]; dup {
			t.Errorf("route %s registered twice", key)
		}
		want[key] = r
	}
	for key, route := range want {
		op, ok := documented[key]
		if !ok {
			t.Errorf("route %s is served but not documented", key)
			continue
		}
		if op.Role != string(route.Role) {
			t.Errorf("%s: x-tiyn-role %q, route needs %q", key, op.Role, route.Role)
		}
		if op.Security != nil || op.ServedBy != "" {
			t.Errorf("%s: a token route must inherit the bearer security", key)
		}
		for _, status := range []string{"200", "401", "500", "503"} {
			if status == "200" && (op.Responses["200"] != nil || op.Responses["201"] != nil) {
				continue
			}
			if op.Responses[status] == nil {
				t.Errorf("%s: response %s not documented", key, status)
			}
		}
		if route.Role != rest.RoleRead && op.Responses["403"] == nil {
			t.Errorf("%s: a write or operator route must document 403", key)
		}
		if route.Method == http.MethodPost && (op.Responses["413"] == nil || op.Responses["415"] == nil || op.Responses["400"] == nil) {
			t.Errorf("%s: a POST route must document 400, 413 and 415", key)
		}
	}
	for key, op := range documented {
		if _, ok := want[key]; ok {
			continue
		}
		if !slices.Contains(externalRoutes, key) {
			t.Errorf("%s is documented but not served", key)
			continue
		}
		if op.Security == nil || len(*op.Security) != 0 || op.ServedBy == "" {
			t.Errorf("%s: an external route must say security: [] and x-tiyn-served-by", key)
		}
	}
	for _, key := range externalRoutes {
		if _, ok := documented[key]; !ok {
			t.Errorf("external route %s is not documented", key)
		}
	}
}

func collectPathParams(t *testing.T, doc map[string]any, raw any, into map[string]bool) {
	t.Helper()
	list, _ := raw.([]any)
	for _, p := range list {
		m, _ := p.(map[string]any)
		if ref, ok := m["$ref"].(string); ok {
			m, _ = resolveRef(doc, ref).(map[string]any)
		}
		if m["in"] == "path" {
			name, _ := m["name"].(string)
			into[name] = true
		}
	}
}

func resolveRef(doc map[string]any, ref string) any {
	if !strings.HasPrefix(ref, "#/") {
		return nil
	}
	var cur any = doc
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")]
	}
	return cur
}

// TestOpenAPIRefsAndErrorCodes: every $ref resolves, and the error schema
// lists exactly the codes the package answers.
func TestOpenAPIRefsAndErrorCodes(t *testing.T) {
	t.Parallel()
	doc, _ := loadOpenAPI(t)
	var walk func(v any, at string)
	refs := 0
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				if k == "$ref" {
					refs++
					if ref, _ := child.(string); resolveRef(doc, ref) == nil {
						t.Errorf("%s: $ref %v does not resolve", at, child)
					}
					continue
				}
				walk(child, at+"/"+k)
			}
		case []any:
			for _, child := range v {
				walk(child, at)
			}
		}
	}
	walk(doc, "")
	if refs < 20 {
		t.Fatalf("only %d $refs: the walk is broken", refs)
	}

	codeSchema := resolveRef(doc, "#/components/schemas/Error/properties/error/properties/code")
	m, _ := codeSchema.(map[string]any)
	enum, _ := m["enum"].([]any)
	var documented []string
	for _, c := range enum {
		documented = append(documented, c.(string))
	}
	want := rest.ErrorCodes()
	slices.Sort(documented)
	slices.Sort(want)
	if !slices.Equal(documented, want) {
		t.Fatalf("documented codes %v, package codes %v", documented, want)
	}
}

// TestOpenAPIDocumentsPlatformErrors: the Monetix endpoints document every
// status they answer besides 200: the callbacks' 400, 413, 415 and 503,
// and both endpoints' 405.
func TestOpenAPIDocumentsPlatformErrors(t *testing.T) {
	t.Parallel()
	doc, _ := loadOpenAPI(t)
	for path, statuses := range map[string][]string{
		"/v1/monetix/callbacks": {"200", "400", "405", "413", "415", "500", "503"},
		"/v1/monetix/requests":  {"200", "405"},
	} {
		responses, _ := resolveRef(doc, "#/paths/"+strings.ReplaceAll(path, "/", "~1")+"/post/responses").(map[string]any)
		for _, status := range statuses {
			r, _ := responses[status].(map[string]any)
			if r == nil {
				t.Errorf("POST %s: response %s not documented", path, status)
				continue
			}
			if _, ok := r["content"]; !ok {
				t.Errorf("POST %s: response %s has no body shape", path, status)
			}
		}
	}
}
