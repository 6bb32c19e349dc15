// Package arch_test enforces Tiyn's layers (docs/architecture.md §4): the core
// (domain, ports, app) stays free of storage, HTTP and metrics libraries,
// domain and ports import almost nothing, adapters never reach into the
// use cases, and tools (what stands beside the binary: the platform
// simulator) are imported only by the binary and the test suites and never
// reach into the use cases either.
//
// It reads imports with go/parser over the source tree, so it needs no go
// tool and no build: every non-test .go file counts, whatever its build
// tags, and module-internal imports are followed transitively.
package arch_test

import (
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

// Import is one import of one file.
type Import struct {
	Path string
	Pos  string // file:line, for the report
}

// Package is one directory's non-test Go files.
type Package struct {
	Path    string // import path
	Imports []Import
}

// Graph holds every package of the module by import path.
type Graph struct {
	Module   string
	Packages map[string]*Package
}

// skipDir reports directories the go tool ignores (and so do we).
func skipDir(name string) bool {
	return name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

// Load parses the imports of every non-test .go file under fsys's root,
// which must hold go.mod.
func Load(fsys fs.FS) (*Graph, error) {
	mod, err := fs.ReadFile(fsys, "go.mod")
	if err != nil {
		return nil, err
	}
	g := &Graph{Packages: map[string]*Package{}}
	for _, line := range strings.Split(string(mod), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			g.Module = strings.Trim(strings.TrimSpace(rest), `"`)
			break
		}
	}
	if g.Module == "" {
		return nil, errors.New("go.mod has no module line")
	}
	fset := token.NewFileSet()
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != "." && skipDir(d.Name()) {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, p, src, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := path.Dir(p)
		ip := g.Module
		if dir != "." {
			ip += "/" + dir
		}
		pkg := g.Packages[ip]
		if pkg == nil {
			pkg = &Package{Path: ip}
			g.Packages[ip] = pkg
		}
		for _, spec := range f.Imports {
			target, err := strconv.Unquote(spec.Path.Value)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			pos := fset.Position(spec.Pos())
			pkg.Imports = append(pkg.Imports, Import{Path: target, Pos: fmt.Sprintf("%s:%d", pos.Filename, pos.Line)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// rel is an import path relative to the module ("" for the root, or
// "" with ok=false outside it).
func (g *Graph) rel(ip string) (string, bool) {
	if ip == g.Module {
		return "", true
	}
	r, ok := strings.CutPrefix(ip, g.Module+"/")
	return r, ok
}

// under reports whether a module-relative path is dir or inside it.
func under(rel, dir string) bool { return rel == dir || strings.HasPrefix(rel, dir+"/") }

// isStdlib uses the go tool's own rule: a standard-library path has no dot
// in its first element.
func isStdlib(ip string) bool {
	first, _, _ := strings.Cut(ip, "/")
	return !strings.Contains(first, ".")
}

// hasPrefixPath reports ip == prefix or ip inside prefix.
func hasPrefixPath(ip, prefix string) bool { return ip == prefix || strings.HasPrefix(ip, prefix+"/") }

// forbiddenInCore lists what domain, ports and app must not reach, directly
// or through module-internal packages: storage, drivers, HTTP, metrics.
var forbiddenInCore = []string{
	"github.com/uptrace/bun",
	"database/sql",
	"github.com/jackc/pgx",
	"github.com/jackc/pgconn",
	"modernc.org/sqlite",
	"github.com/mattn/go-sqlite3",
	"github.com/lib/pq",
	"net/http",
	"github.com/prometheus",
}

func forbiddenImport(ip string) bool {
	if strings.HasPrefix(ip, "github.com/uptrace/bun") { // bun and its sibling modules
		return true
	}
	for _, f := range forbiddenInCore {
		if hasPrefixPath(ip, f) {
			return true
		}
	}
	return false
}

// Violation is one broken rule.
type Violation struct {
	Rule   string
	Detail string
}

func (v Violation) String() string { return v.Rule + ": " + v.Detail }

// reach walks module-internal imports from root, breadth first, and calls
// visit for every import of every package reached, with the chain of
// packages that led there.
func (g *Graph) reach(root string, visit func(chain []string, imp Import)) {
	type item struct {
		pkg   string
		chain []string
	}
	seen := map[string]bool{root: true}
	queue := []item{{root, []string{root}}}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		pkg := g.Packages[it.pkg]
		if pkg == nil {
			continue
		}
		for _, imp := range pkg.Imports {
			visit(it.chain, imp)
			if _, internal := g.rel(imp.Path); internal && !seen[imp.Path] {
				seen[imp.Path] = true
				queue = append(queue, item{imp.Path, append(slices.Clone(it.chain), imp.Path)})
			}
		}
	}
}

func (g *Graph) short(chain []string) string {
	out := make([]string, len(chain))
	for i, c := range chain {
		if r, ok := g.rel(c); ok {
			out[i] = r
		} else {
			out[i] = c
		}
	}
	return strings.Join(out, " -> ")
}

// Check applies the layer rules to g and returns every violation, sorted.
func Check(g *Graph) []Violation {
	var out []Violation
	add := func(rule, format string, args ...any) {
		out = append(out, Violation{Rule: rule, Detail: fmt.Sprintf(format, args...)})
	}
	isCore := func(ip string) bool {
		rel, ok := g.rel(ip)
		return ok && (under(rel, "domain") || under(rel, "ports") || (under(rel, "app") && !under(rel, "app/cmd")))
	}
	isAdapter := func(ip string) bool {
		rel, ok := g.rel(ip)
		return ok && under(rel, "adapters")
	}
	isTool := func(ip string) bool {
		rel, ok := g.rel(ip)
		return ok && under(rel, "tools")
	}
	// A package reached through another package of the same kind is
	// reported as its own root; reporting it again per importer is noise.
	reportedElsewhere := func(chain []string, kind func(string) bool) bool {
		last := chain[len(chain)-1]
		return len(chain) > 1 && kind(last)
	}
	for ip, pkg := range g.Packages {
		rel, _ := g.rel(ip)
		if isCore(ip) {
			g.reach(ip, func(chain []string, imp Import) {
				if reportedElsewhere(chain, isCore) {
					return
				}
				if forbiddenImport(imp.Path) {
					add("core-free-of-infrastructure", "%s imports %s (%s)", g.short(chain), imp.Path, imp.Pos)
				}
				if r, internal := g.rel(imp.Path); internal && under(r, "adapters") {
					add("core-free-of-adapters", "%s imports %s (%s)", g.short(chain), r, imp.Pos)
				}
			})
		}
		for _, imp := range pkg.Imports {
			r, internal := g.rel(imp.Path)
			switch {
			case under(rel, "domain"):
				if !isStdlib(imp.Path) && !hasPrefixPath(imp.Path, "github.com/shopspring/decimal") && !(internal && under(r, "domain")) {
					add("domain-imports-stdlib-and-decimal", "%s imports %s (%s)", rel, imp.Path, imp.Pos)
				}
			case under(rel, "ports"):
				if !isStdlib(imp.Path) && !(internal && (under(r, "domain") || under(r, "ports"))) {
					add("ports-imports-stdlib-and-domain", "%s imports %s (%s)", rel, imp.Path, imp.Pos)
				}
			}
			if internal && under(r, "tools") && !under(rel, "tools") && !under(rel, "app/cmd") && !under(rel, "tests") {
				add("tools-imported-only-by-cmd-and-tests", "%s imports %s (%s)", rel, r, imp.Pos)
			}
		}
		if isAdapter(ip) {
			g.reach(ip, func(chain []string, imp Import) {
				if reportedElsewhere(chain, isAdapter) {
					return
				}
				if r, internal := g.rel(imp.Path); internal && under(r, "app") {
					add("adapters-never-import-app", "%s imports %s (%s)", g.short(chain), r, imp.Pos)
				}
			})
		}
		if isTool(ip) {
			g.reach(ip, func(chain []string, imp Import) {
				if reportedElsewhere(chain, isTool) {
					return
				}
				if r, internal := g.rel(imp.Path); internal && under(r, "app") {
					add("tools-never-import-app", "%s imports %s (%s)", g.short(chain), r, imp.Pos)
				}
			})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return slices.Compact(out)
}

// moduleRoot finds the directory holding go.mod above the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for range 10 { // tests/arch is two levels down; ten is plenty
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	t.Fatal("go.mod not found above the test directory")
	return ""
}

// TestLayers checks the real source tree.
func TestLayers(t *testing.T) {
	t.Parallel()
	g, err := Load(os.DirFS(moduleRoot(t)))
	if err != nil {
		t.Fatal(err)
	}
	// Guard against a vacuous pass: the layers must be there and have been
	// read (domain imports at least decimal, app at least domain and ports).
	for _, want := range []string{"domain", "ports", "app", "adapters/sqlstore", "tools/platformsim"} {
		pkg := g.Packages[g.Module+"/"+want]
		if pkg == nil || len(pkg.Imports) == 0 {
			t.Fatalf("package %s not found or without imports: the loader read nothing useful", want)
		}
	}
	for _, v := range Check(g) {
		t.Error(v)
	}
}

// TestCheckerCatchesViolations runs the loader and checker on in-memory
// trees, each breaking (or keeping) one rule, to prove TestLayers can fail.
func TestCheckerCatchesViolations(t *testing.T) {
	t.Parallel()
	const goMod = "module example.com/m\n\ngo 1.26\n"
	file := func(pkg string, imports ...string) *fstest.MapFile {
		var b strings.Builder
		b.WriteString("package " + pkg + "\n\nimport (\n")
		for _, imp := range imports {
			b.WriteString("\t_ " + strconv.Quote(imp) + "\n")
		}
		b.WriteString(")\n")
		return &fstest.MapFile{Data: []byte(b.String())}
	}
	clean := func() fstest.MapFS {
		return fstest.MapFS{
			"go.mod":                   {Data: []byte(goMod)},
			"domain/money.go":          file("domain", "fmt", "github.com/shopspring/decimal"),
			"ports/store.go":           file("ports", "context", "example.com/m/domain"),
			"app/service.go":           file("app", "example.com/m/domain", "example.com/m/ports"),
			"app/cmd/tiyn/main.go":     file("main", "net/http", "example.com/m/app", "example.com/m/adapters/sqlstore"),
			"adapters/sqlstore/s.go":   file("sqlstore", "database/sql", "github.com/uptrace/bun", "example.com/m/ports"),
			"adapters/rest/rest.go":    file("rest", "net/http", "example.com/m/ports", "github.com/prometheus/client_golang/prometheus"),
			"adapters/rest/x_test.go":  file("rest_test", "example.com/m/app"),
			"app/service_test.go":      file("app", "database/sql", "net/http/httptest"),
			"domain/testdata/x/x.go":   file("x", "net/http"),
			"tests/contract/helper.go": file("contract", "example.com/m/app", "example.com/m/adapters/sqlstore"),
			"tools/sim/sim.go":         file("sim", "net/http", "example.com/m/adapters/monetix", "example.com/m/domain", "example.com/m/tools/sim/gate"),
			"tools/sim/gate/gate.go":   file("gate", "example.com/m/adapters/monetix"),
			"adapters/monetix/m.go":    file("monetix", "net/http", "example.com/m/ports"),
			"app/cmd/tiyn/sim.go":      file("main", "example.com/m/tools/sim"),
			"tests/e2e/helper.go":      file("e2e", "example.com/m/tools/sim"),
			"tools/sim/x_test.go":      file("sim_test", "example.com/m/app"),
		}
	}
	tests := []struct {
		name  string
		edit  func(fstest.MapFS)
		rules []string // expected violated rules, sorted; empty: clean
		chain string   // a substring of the report (the chain for transitive cases)
	}{
		{name: "clean tree passes (test files, testdata and app/cmd are exempt)", edit: func(fstest.MapFS) {}},
		{name: "an adapter imports a tool", edit: func(m fstest.MapFS) { m["adapters/rest/sim.go"] = file("rest", "example.com/m/tools/sim") },
			rules: []string{"tools-imported-only-by-cmd-and-tests"}, chain: "adapters/rest imports tools/sim"},
		{name: "app imports a tool", edit: func(m fstest.MapFS) { m["app/sim.go"] = file("app", "example.com/m/tools/sim/gate") },
			rules: []string{"core-free-of-adapters", "core-free-of-infrastructure", "tools-imported-only-by-cmd-and-tests"}, chain: "app imports tools/sim/gate"},
		{name: "a package outside the layers imports a tool", edit: func(m fstest.MapFS) { m["internal/x/x.go"] = file("x", "example.com/m/tools/sim") },
			rules: []string{"tools-imported-only-by-cmd-and-tests"}},
		{name: "a tool imports app", edit: func(m fstest.MapFS) { m["tools/sim/svc.go"] = file("sim", "example.com/m/app") },
			rules: []string{"tools-never-import-app"}, chain: "tools/sim imports app"},
		{name: "a tool imports the composition root", edit: func(m fstest.MapFS) { m["tools/sim/gate/main.go"] = file("gate", "example.com/m/app/cmd/tiyn") },
			rules: []string{"tools-never-import-app"}, chain: "tools/sim/gate imports app/cmd/tiyn"},
		{name: "a tool reaches app through a shared package", edit: func(m fstest.MapFS) {
			m["tools/sim/w.go"] = file("sim", "example.com/m/internal/wiring")
			m["internal/wiring/w.go"] = file("wiring", "example.com/m/app")
		}, rules: []string{"tools-never-import-app"}, chain: "tools/sim -> internal/wiring imports app"},
		{name: "domain imports net/http", edit: func(m fstest.MapFS) { m["domain/http.go"] = file("domain", "net/http") },
			rules: []string{"core-free-of-infrastructure"}, chain: "domain imports net/http"},
		{name: "domain imports a third-party module", edit: func(m fstest.MapFS) { m["domain/u.go"] = file("domain", "github.com/google/uuid") },
			rules: []string{"domain-imports-stdlib-and-decimal"}},
		{name: "domain imports ports", edit: func(m fstest.MapFS) { m["domain/p.go"] = file("domain", "example.com/m/ports") },
			rules: []string{"domain-imports-stdlib-and-decimal"}},
		{name: "ports imports an adapter", edit: func(m fstest.MapFS) { m["ports/clock.go"] = file("ports", "example.com/m/adapters/system") },
			rules: []string{"core-free-of-adapters", "ports-imports-stdlib-and-domain"}},
		{name: "ports imports database/sql/driver", edit: func(m fstest.MapFS) { m["ports/v.go"] = file("ports", "database/sql/driver") },
			rules: []string{"core-free-of-infrastructure"}},
		{name: "app reaches bun through an internal helper", edit: func(m fstest.MapFS) {
			m["app/tx.go"] = file("app", "example.com/m/internal/dbutil")
			m["internal/dbutil/db.go"] = file("dbutil", "github.com/uptrace/bun/dialect/pgdialect")
		}, rules: []string{"core-free-of-infrastructure"}, chain: "app -> internal/dbutil imports github.com/uptrace/bun/dialect/pgdialect"},
		{name: "app imports pgx", edit: func(m fstest.MapFS) { m["app/pg.go"] = file("app", "github.com/jackc/pgx/v5") },
			rules: []string{"core-free-of-infrastructure"}},
		{name: "app imports prometheus", edit: func(m fstest.MapFS) { m["app/m.go"] = file("app", "github.com/prometheus/client_golang/prometheus") },
			rules: []string{"core-free-of-infrastructure"}},
		{name: "app imports the sqlite driver", edit: func(m fstest.MapFS) { m["app/s.go"] = file("app", "modernc.org/sqlite") },
			rules: []string{"core-free-of-infrastructure"}},
		{name: "app imports an adapter", edit: func(m fstest.MapFS) { m["app/a.go"] = file("app", "example.com/m/adapters/sqlstore") },
			rules: []string{"core-free-of-adapters", "core-free-of-infrastructure"}, chain: "app -> adapters/sqlstore imports database/sql"},
		{name: "adapter imports app", edit: func(m fstest.MapFS) { m["adapters/rest/svc.go"] = file("rest", "example.com/m/app") },
			rules: []string{"adapters-never-import-app"}},
		{name: "adapter reaches app through a shared package", edit: func(m fstest.MapFS) {
			m["adapters/rest/r.go"] = file("rest", "example.com/m/internal/wiring")
			m["internal/wiring/w.go"] = file("wiring", "example.com/m/app/cmd/tiyn")
		}, rules: []string{"adapters-never-import-app"}, chain: "adapters/rest -> internal/wiring imports app/cmd/tiyn"},
		{name: "adapter importing an offending adapter is reported once", edit: func(m fstest.MapFS) {
			m["adapters/rest/r.go"] = file("rest", "example.com/m/adapters/glue")
			m["adapters/glue/g.go"] = file("glue", "example.com/m/app")
		}, rules: []string{"adapters-never-import-app"}, chain: "adapters/glue imports app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fsys := clean()
			tt.edit(fsys)
			g, err := Load(fsys)
			if err != nil {
				t.Fatal(err)
			}
			vs := Check(g)
			var rules []string
			var report strings.Builder
			for _, v := range vs {
				rules = append(rules, v.Rule)
				report.WriteString(v.String() + "\n")
			}
			rules = slices.Compact(rules)
			if !slices.Equal(rules, tt.rules) {
				t.Fatalf("violated rules = %q, want %q\n%s", rules, tt.rules, report.String())
			}
			if tt.chain != "" && !strings.Contains(report.String(), tt.chain) {
				t.Fatalf("report lacks %q:\n%s", tt.chain, report.String())
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fsys fstest.MapFS
	}{
		{"no go.mod", fstest.MapFS{"domain/a.go": {Data: []byte("package domain\n")}}},
		{"no module line", fstest.MapFS{"go.mod": {Data: []byte("go 1.26\n")}}},
		{"unparsable file", fstest.MapFS{"go.mod": {Data: []byte("module m\n")}, "domain/a.go": {Data: []byte("package domain\nimport (\n")}}},
	}
	for _, tt := range tests {
		if _, err := Load(tt.fsys); err == nil {
			t.Errorf("%s: Load succeeded, want an error", tt.name)
		}
	}
}
