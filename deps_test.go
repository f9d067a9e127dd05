package meridian_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/meridiandb/meridian"

// layers is DESIGN.md "Layers", top to bottom. A package may import only
// packages of a strictly lower rank; packages that share a rank (raftgroup and
// mvcc) may not import each other. Sub-packages take the rank of their
// top-level folder and may import each other freely (Go forbids cycles).
// internal/ holds helpers any layer may use, so it ranks below everything.
var layers = [][]string{
	{"cmd"},
	{"server"},
	{"pgwire"},
	{"client"},
	{"txn"},
	{"ranges"},
	{"raftgroup", "mvcc"},
	{"keys"},
	{"api"},
	{"clockbound"},
	{"hlc"},
	{"internal"},
}

// exempt folders are not product packages: tests/ holds integration and
// Jepsen-style tests, which may import anything.
var exempt = map[string]bool{"tests": true}

// cmd/ may also import tests/jepsen: cmd/meridian-jepsen is the suite's
// binary, wiring only.
func allowedException(from, to string) bool {
	return topFolder(from) == "cmd" && (to == "tests/jepsen" || strings.HasPrefix(to, "tests/jepsen/"))
}

func rankOf(top string) (int, bool) {
	for i, names := range layers {
		for _, n := range names {
			if n == top {
				return len(layers) - i, true
			}
		}
	}
	return 0, false
}

// topFolder returns the first path element of a package path inside the
// module ("ranges" for "ranges/concurrency"), or "" for the module root.
func topFolder(rel string) string {
	rel = filepath.ToSlash(rel)
	if i := strings.IndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	if rel == "." {
		return ""
	}
	return rel
}

// checkImport returns a description of the violation, or "" if the import
// from package folder `from` to module package `to` respects the layers.
func checkImport(from, to string) string {
	ft, tt := topFolder(from), topFolder(to)
	if ft == tt || allowedException(from, to) {
		return ""
	}
	fr, ok := rankOf(ft)
	if !ok {
		return "folder " + ft + " is not in DESIGN.md's layers (add it to deps_test.go)"
	}
	tr, ok := rankOf(tt)
	if !ok {
		return "imported folder " + tt + " is not in DESIGN.md's layers"
	}
	if tr >= fr {
		return from + " imports " + to + ", which is not below it in DESIGN.md's layers"
	}
	return ""
}

func TestLayering(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin" || exempt[path]) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		dir := filepath.Dir(path)
		if dir == "." {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p != module && !strings.HasPrefix(p, module+"/") {
				continue
			}
			checked++
			if msg := checkImport(dir, strings.TrimPrefix(strings.TrimPrefix(p, module), "/")); msg != "" {
				t.Errorf("%s: %s", path, msg)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("no module-internal imports found: the walk is broken")
	}
}

// TestLayeringRules proves the checker rejects what DESIGN.md forbids.
func TestLayeringRules(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		ok       bool
	}{
		{"cmd/meridian", "server", true},
		{"ranges/concurrency", "mvcc", true},
		{"ranges/concurrency", "ranges/tscache", true},
		{"mvcc", "keys", true},
		{"clockbound", "hlc", true},
		{"hlc", "internal/buildinfo", true},
		{"hlc", "clockbound", false},
		{"mvcc", "raftgroup", false},
		{"raftgroup", "mvcc", false},
		{"keys", "mvcc", false},
		{"txn", "client", false},
		{"internal/buildinfo", "hlc", false},
		{"newthing", "hlc", false},
		{"cmd/meridian-jepsen", "tests/jepsen/cli", true},
		{"server", "tests/jepsen/cli", false},
	} {
		msg := checkImport(tc.from, tc.to)
		if (msg == "") != tc.ok {
			t.Errorf("%s -> %s: ok=%v, got %q", tc.from, tc.to, tc.ok, msg)
		}
	}
}

func TestLayersMatchDesign(t *testing.T) {
	design, err := os.ReadFile(filepath.Join("docs", "architecture.md"))
	if err != nil {
		t.Fatalf("docs/architecture.md must describe the layers: %v", err)
	}
	for _, names := range layers {
		for _, n := range names {
			if n != "internal" && !strings.Contains(string(design), n) {
				t.Errorf("layer %s is not described in docs/architecture.md", n)
			}
		}
	}
}
