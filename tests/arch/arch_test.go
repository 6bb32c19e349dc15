// Package arch_test guards the layer rule (docs/architecture.md, "The
// layers"). The rule itself is depguard's, in .golangci.yml, and `make lint`
// runs it; this package proves that configuration rejects what it should
// and covers what depguard cannot see:
//
//   - TestDepguardRules runs the pinned golangci-lint with the repository's
//     .golangci.yml over a tree of fixtures that break (or keep) each rule,
//     so a rule that stopped matching fails here instead of passing
//     silently. It needs the binary: `make lint` passes its path in
//     TIYN_GOLANGCI_LINT.
//   - TestLintSeesEveryLayeredFile: golangci-lint reads only the files that
//     the build constraints of the platform it runs on include. `make lint`
//     runs depguard with cgo on and off; a file in a layer that neither
//     includes (a _windows.go file, a custom tag) would be unchecked.
package arch_test

import (
	"encoding/json"
	"go/build"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tiyn/tiyn/tests/testkit"
)

// EnvGolangciLint names the golangci-lint binary TestDepguardRules runs.
const EnvGolangciLint = "TIYN_GOLANGCI_LINT"

// layers are the folders the depguard rules name, relative to the module
// root. Each must hold non-test Go files, or the rules check nothing.
var layers = []string{"domain", "ports", "app", "adapters", "tools"}

// layered reports whether a module-relative file path is inside a folder
// that a depguard rule covers.
func layered(rel string) bool {
	first, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
	return slices.Contains(layers, first)
}

// skipDir reports the folders the go tool ignores.
func skipDir(name string) bool {
	return name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

// fixture is one Go file of the fixture tree: its path, its imports, and
// the depguard rule its imports break ("" when the file is clean).
type fixture struct {
	path    string
	imports []string
	broken  string
}

const mod = "github.com/tiyn/tiyn/"

var fixtures = []fixture{
	// What the rules allow.
	{path: "domain/money.go", imports: []string{"fmt", "github.com/shopspring/decimal"}},
	{path: "domain/rules/r.go", imports: []string{mod + "domain", "time"}},
	{path: "ports/store.go", imports: []string{"context", mod + "domain"}},
	{path: "ports/more/m.go", imports: []string{mod + "ports", mod + "domain"}},
	{path: "app/service.go", imports: []string{mod + "domain", mod + "ports", mod + "app/recon"}},
	{path: "app/recon/r.go", imports: []string{mod + "domain", mod + "ports"}},
	{path: "app/cmd/tiyn/main.go", imports: []string{"net/http", "database/sql", mod + "app", mod + "adapters/sqlstore", mod + "tools/sim"}},
	{path: "adapters/sqlstore/s.go", imports: []string{"database/sql", "github.com/uptrace/bun", mod + "ports", mod + "domain"}},
	{path: "adapters/rest/rest.go", imports: []string{"net/http", "github.com/prometheus/client_golang/prometheus", mod + "ports", mod + "adapters/cleanpath"}},
	{path: "adapters/newone/n.go", imports: []string{mod + "adapters/rest", "github.com/jackc/pgx/v5"}},
	{path: "tools/sim/sim.go", imports: []string{"net/http", mod + "adapters/rest", mod + "domain", mod + "tools/sim/wire"}},
	{path: "tests/contract/helper.go", imports: []string{mod + "app", mod + "adapters/sqlstore", mod + "app/cmd/tiyn"}},
	// Test files may wire anything.
	{path: "domain/money_test.go", imports: []string{"net/http/httptest", "database/sql"}},
	{path: "app/service_test.go", imports: []string{"database/sql", mod + "adapters/sqlstore"}},
	{path: "adapters/rest/rest_test.go", imports: []string{mod + "app", mod + "tests/testkit"}},
	{path: "tools/sim/sim_test.go", imports: []string{mod + "app"}},

	// domain: the standard library and decimal only.
	{path: "domain/bad1/x.go", imports: []string{"net/http"}, broken: "domain"},
	{path: "domain/bad2/x.go", imports: []string{"database/sql/driver"}, broken: "domain"},
	{path: "domain/bad3/x.go", imports: []string{"github.com/BurntSushi/toml"}, broken: "domain"},
	{path: "domain/bad4/x.go", imports: []string{mod + "ports"}, broken: "domain"},
	// ports: the standard library and domain.
	{path: "ports/bad1/x.go", imports: []string{mod + "adapters/system"}, broken: "ports"},
	{path: "ports/bad2/x.go", imports: []string{"database/sql/driver"}, broken: "ports"},
	{path: "ports/bad3/x.go", imports: []string{mod + "app"}, broken: "ports"},
	// app: the standard library, domain, ports and app's own packages.
	{path: "app/bad1/x.go", imports: []string{"github.com/jackc/pgx/v5"}, broken: "app"},
	{path: "app/bad2/x.go", imports: []string{"github.com/prometheus/client_golang/prometheus"}, broken: "app"},
	{path: "app/bad3/x.go", imports: []string{"modernc.org/sqlite"}, broken: "app"},
	{path: "app/bad4/x.go", imports: []string{"github.com/uptrace/bun/dialect/pgdialect"}, broken: "app"},
	{path: "app/bad5/x.go", imports: []string{mod + "adapters/sqlstore"}, broken: "app"},
	{path: "app/bad6/x.go", imports: []string{mod + "app/cmd/tiyn"}, broken: "app"},
	{path: "app/bad7/x.go", imports: []string{"net/http"}, broken: "app"},
	// A module package outside the layers would let app reach bun
	// through it; it is refused at the edge.
	{path: "app/bad8/x.go", imports: []string{mod + "internal/dbutil"}, broken: "app"},
	{path: "internal/dbutil/db.go", imports: []string{"github.com/uptrace/bun"}},
	// adapters: never app, app/cmd, tools, tests or another module folder.
	{path: "adapters/bad1/x.go", imports: []string{mod + "app"}, broken: "adapters"},
	{path: "adapters/bad2/x.go", imports: []string{mod + "app/cmd/tiyn"}, broken: "adapters"},
	{path: "adapters/bad3/x.go", imports: []string{mod + "internal/wiring"}, broken: "adapters"},
	{path: "adapters/bad4/x.go", imports: []string{mod + "tools/sim"}, broken: "adapters"},
	{path: "adapters/bad5/x.go", imports: []string{mod + "tests/testkit"}, broken: "adapters"},
	{path: "internal/wiring/w.go", imports: []string{mod + "app"}},
	// tools: adapters' wire types yes, the use cases no.
	{path: "tools/bad1/x.go", imports: []string{mod + "app"}, broken: "tools"},
	{path: "tools/bad2/x.go", imports: []string{mod + "tests/pgtest"}, broken: "tools"},
	{path: "tools/bad3/x.go", imports: []string{mod + "app/cmd/tiyn"}, broken: "tools"},
	// Tools are imported only by app/cmd, other tools and tests/.
	{path: "tests/e2e/helper.go", imports: []string{mod + "tools/sim"}},
	{path: "internal/x/x.go", imports: []string{mod + "tools/sim"}, broken: "elsewhere"},
	{path: "bench/report/report.go", imports: []string{mod + "tools/sim/wire"}, broken: "elsewhere"},
	{path: "bench/report/ok.go", imports: []string{"net/http", mod + "adapters/rest", mod + "app"}},
	{path: "ports/bad4/x.go", imports: []string{mod + "tools/sim"}, broken: "ports"},
	{path: "domain/bad5/x.go", imports: []string{mod + "tools/sim"}, broken: "domain"},
	{path: "app/bad9/x.go", imports: []string{mod + "tools/sim"}, broken: "app"},
}

// source is a Go file with the given imports. Every fixture is a library
// package (app/cmd/tiyn too): importing a main package is a type error,
// which would stop the lint before depguard.
func source(path string, imports []string) []byte {
	pkg := filepath.Base(filepath.Dir(path))
	if strings.HasSuffix(path, "_test.go") {
		pkg += "_test"
	}
	var b strings.Builder
	b.WriteString("package " + pkg + "\n\nimport (\n")
	for _, imp := range imports {
		b.WriteString("\t_ " + strconv.Quote(imp) + "\n")
	}
	b.WriteString(")\n")
	return []byte(b.String())
}

// lintIssue is one finding of golangci-lint's JSON output.
type lintIssue struct {
	FromLinter string
	Text       string
	Pos        struct {
		Filename string
		Line     int
	}
}

func TestDepguardRules(t *testing.T) {
	t.Parallel()
	bin := os.Getenv(EnvGolangciLint)
	if bin == "" {
		t.Skipf("%s is not set: `make lint` runs this test with the pinned golangci-lint", EnvGolangciLint)
	}
	root := testkit.MustModuleRoot(t)
	dir := t.TempDir()
	goMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	module, _, _ := strings.Cut(string(goMod), "\n")
	if module != "module "+strings.TrimSuffix(mod, "/") {
		t.Fatalf("go.mod starts with %q; the fixtures are written for %s", module, mod)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(module+"\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range fixtures {
		p := filepath.Join(dir, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, source(f.path, f.imports), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	report := filepath.Join(t.TempDir(), "lint.json")
	cmd := exec.Command(bin, "run", "--config", filepath.Join(root, ".golangci.yml"), "--enable-only", "depguard",
		"--output.json.path", report, "--issues-exit-code", "0", "./...")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("golangci-lint: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Issues []lintIssue }
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("golangci-lint output: %v\n%s", err, raw)
	}
	// Every broken file is reported by its rule, at each of its imports;
	// nothing else is reported.
	got := map[string][]lintIssue{}
	for _, is := range out.Issues {
		if is.FromLinter != "depguard" {
			t.Errorf("%s:%d: %s finding in the fixtures (the tree is broken): %s", is.Pos.Filename, is.Pos.Line, is.FromLinter, is.Text)
			continue
		}
		got[filepath.ToSlash(is.Pos.Filename)] = append(got[filepath.ToSlash(is.Pos.Filename)], is)
	}
	for _, f := range fixtures {
		issues := got[f.path]
		delete(got, f.path)
		if f.broken == "" {
			for _, is := range issues {
				t.Errorf("%s is allowed, but: %s", f.path, is.Text)
			}
			continue
		}
		if len(issues) != len(f.imports) {
			t.Errorf("%s imports %v: %d findings, want one per import from list %q: %v", f.path, f.imports, len(issues), f.broken, issues)
			continue
		}
		for _, is := range issues {
			if !strings.Contains(is.Text, "from list '"+f.broken+"'") {
				t.Errorf("%s: %q, want list %q", f.path, is.Text, f.broken)
			}
		}
	}
	for path, issues := range got {
		t.Errorf("finding for a file that is not a fixture: %s: %v", path, issues)
	}

	// The real tree has the folders the rules and the fixtures name.
	for _, l := range layers {
		n := 0
		err := filepath.WalkDir(filepath.Join(root, l), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
				n++
			}
			return err
		})
		if err != nil || n == 0 {
			t.Errorf("%s/: %d non-test Go files (%v): the depguard rules would check nothing", l, n, err)
		}
	}
}

// includedByLint reports whether golangci-lint reads the file in one of
// the configurations `make lint` runs on this platform: cgo on (with a C
// compiler) and CGO_ENABLED=0.
func includedByLint(dir, name string) (bool, error) {
	for _, cgo := range []bool{true, false} {
		ctx := build.Default
		ctx.CgoEnabled = cgo
		ok, err := ctx.MatchFile(dir, name)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

func TestLintSeesEveryLayeredFile(t *testing.T) {
	t.Parallel()
	root := testkit.MustModuleRoot(t)
	checked := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if p != root && skipDir(d.Name()) {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") || !layered(rel) {
			return nil
		}
		checked++
		ok, err := includedByLint(filepath.Dir(p), d.Name())
		if err != nil {
			return err
		}
		if !ok {
			t.Errorf("%s: its build constraints leave it out of every configuration `make lint` runs depguard in (cgo on, cgo off on %s/%s), so its imports are never checked; add a configuration to make lint", rel, build.Default.GOOS, build.Default.GOARCH)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("no layered Go file found: the walk read nothing")
	}
}

// TestIncludedByLint proves the check above can fail.
func TestIncludedByLint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{
		"plain.go":               "package x\n",
		"cgo.go":                 "//go:build cgo\n\npackage x\n",
		"purego.go":              "//go:build !cgo\n\npackage x\n",
		"other_os.go":            "//go:build " + otherOS() + "\n\npackage x\n",
		"x_" + otherOS() + ".go": "package x\n",
		"tagged.go":              "//go:build tiyn_never_set\n\npackage x\n",
	}
	want := map[string]bool{"plain.go": true, "cgo.go": true, "purego.go": true}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name := range files {
		got, err := includedByLint(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		if got != want[name] {
			t.Errorf("includedByLint(%s) = %v, want %v", name, got, want[name])
		}
	}
}

// otherOS is a GOOS that is not this one.
func otherOS() string {
	if build.Default.GOOS == "windows" {
		return "plan9"
	}
	return "windows"
}
