package check

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/meridiandb/meridian/tests/jepsen/history"
)

var rewriteGolden = flag.Bool("rewrite", false, "rewrite testdata/golden from the table in golden_test.go")

// golden is one minimal history built for one anomaly, and the exact set of
// anomaly types the checkers must report for it.
type golden struct {
	name   string
	test   history.Test
	build  func(b *hb)
	valid  Valid
	expect []string
}

func laTest(model string) history.Test {
	return history.Test{Workloads: []string{history.ListAppend}, Model: model}
}

var goldens = []golden{
	{name: "la-valid", test: laTest(""), valid: ValidTrue, build: func(b *hb) {
		b.inv(1, "append x 1; r y").inv(2, "append y 1")
		b.done(1, history.OK, "append x 1; r y []").done(2, history.OK, "append y 1")
		b.ok(1, "r x [1]; r y [1]; append x 2").ok(2, "r x [1 2]")
	}},
	{name: "la-empty", test: laTest(""), valid: ValidUnknown, build: func(b *hb) {
		b.inv(1, "append x 1").done(1, history.Fail, "append x 1")
	}},
	{name: "G0", test: laTest(""), valid: ValidFalse, expect: []string{"G0"}, build: func(b *hb) {
		b.inv(1, "append x 1; append y 1").inv(2, "append x 2; append y 2")
		b.done(1, history.OK, "append x 1; append y 1").done(2, history.OK, "append x 2; append y 2")
		b.ok(3, "r x [1 2]; r y [2 1]")
	}},
	{name: "G1a", test: laTest(""), valid: ValidFalse, expect: []string{"G1a"}, build: func(b *hb) {
		b.inv(1, "append x 1").inv(2, "r x")
		b.done(1, history.Fail, "append x 1").done(2, history.OK, "r x [1]")
	}},
	{name: "G1b", test: laTest(""), valid: ValidFalse, expect: []string{"G1b", "G-single"}, build: func(b *hb) {
		b.inv(1, "append x 1; append x 2").inv(2, "r x")
		b.done(2, history.OK, "r x [1]").done(1, history.OK, "append x 1; append x 2")
	}},
	{name: "G1c", test: laTest(""), valid: ValidFalse, expect: []string{"G1c"}, build: func(b *hb) {
		b.inv(1, "append x 2; append y 1").inv(2, "append x 1; r y").inv(3, "r x")
		b.done(1, history.OK, "append x 2; append y 1").done(2, history.OK, "append x 1; r y [1]").done(3, history.OK, "r x [1 2]")
	}},
	{name: "G-single", test: laTest(""), valid: ValidFalse, expect: []string{"G-single"}, build: func(b *hb) {
		b.inv(1, "append x 1; append y 1").inv(2, "r x; r y")
		b.done(1, history.OK, "append x 1; append y 1").done(2, history.OK, "r x []; r y [1]")
	}},
	{name: "G-nonadjacent", test: laTest(""), valid: ValidFalse, expect: []string{"G-nonadjacent"}, build: func(b *hb) {
		b.inv(1, "r x; r w").inv(2, "append x 1; append y 1").inv(3, "r y; r z").inv(4, "append z 1; append w 1")
		b.done(1, history.OK, "r x []; r w [1]").done(2, history.OK, "append x 1; append y 1")
		b.done(3, history.OK, "r y [1]; r z []").done(4, history.OK, "append z 1; append w 1")
	}},
	{name: "G2-item", test: laTest(""), valid: ValidFalse, expect: []string{"G2-item"}, build: func(b *hb) {
		b.inv(1, "r x; r y; append x 1").inv(2, "r x; r y; append y 1")
		b.done(1, history.OK, "r x []; r y []; append x 1").done(2, history.OK, "r x []; r y []; append y 1")
	}},
	{name: "lost-update", test: laTest(""), valid: ValidFalse, expect: []string{"G-single", "lost-update"}, build: func(b *hb) {
		b.inv(1, "r x; append x 1").inv(2, "r x; append x 2")
		b.done(1, history.OK, "r x []; append x 1").done(2, history.OK, "r x []; append x 2")
		b.ok(3, "r x [1 2]")
	}},
	{name: "internal", test: laTest(""), valid: ValidFalse, expect: []string{"internal"}, build: func(b *hb) {
		b.ok(1, "r x []; append x 1; r x []")
	}},
	{name: "future-read", test: laTest(""), valid: ValidFalse, expect: []string{"future-read"}, build: func(b *hb) {
		b.ok(1, "r x [1]; append x 1")
	}},
	{name: "duplicate-elements", test: laTest(""), valid: ValidFalse, expect: []string{"duplicate-elements"}, build: func(b *hb) {
		b.ok(1, "append x 1").ok(2, "r x [1 1]")
	}},
	{name: "incompatible-order", test: laTest(""), valid: ValidFalse, expect: []string{"incompatible-order"}, build: func(b *hb) {
		b.inv(1, "append x 1").inv(2, "append x 2")
		b.done(1, history.OK, "append x 1").done(2, history.OK, "append x 2")
		b.inv(3, "r x").inv(4, "r x")
		b.done(3, history.OK, "r x [1 2]").done(4, history.OK, "r x [2 1]")
	}},
	{name: "dirty-update", test: laTest(""), valid: ValidFalse, expect: []string{"G1a", "dirty-update"}, build: func(b *hb) {
		b.inv(1, "append x 1").inv(2, "append x 2")
		b.done(1, history.Fail, "append x 1").done(2, history.OK, "append x 2")
		b.ok(3, "r x [1 2]")
	}},
	{name: "G0-realtime", test: laTest(""), valid: ValidFalse, expect: []string{"G0-realtime"}, build: func(b *hb) {
		b.ok(1, "append x 1").ok(2, "append x 2").ok(3, "r x [2 1]")
	}},
	{name: "G1c-realtime", test: laTest(""), valid: ValidFalse, expect: []string{"G1c-realtime"}, build: func(b *hb) {
		b.ok(1, "r y [1]").ok(2, "append y 1")
	}},
	{name: "G-single-realtime", test: laTest(""), valid: ValidFalse, expect: []string{"G-single-realtime"}, build: func(b *hb) {
		b.ok(1, "append x 1").ok(2, "r x []")
	}},
	{name: "G-single-process", test: laTest(""), valid: ValidFalse, expect: []string{"G-single-process"}, build: func(b *hb) {
		b.ok(1, "append x 1").ok(1, "r x []")
	}},
	{name: "G-nonadjacent-realtime", test: laTest(""), valid: ValidFalse, expect: []string{"G-nonadjacent-realtime"}, build: func(b *hb) {
		// T1 -rw(x)-> T2 -realtime-> T3 -rw(z)-> T4 -wr(w)-> T1; T4 starts
		// before T2 ends, so T2 -> T4 is no realtime shortcut.
		b.inv(1, "r x; r w").inv(2, "append x 1").inv(4, "append z 1; append w 1")
		b.done(2, history.OK, "append x 1")
		b.inv(3, "r z").done(3, history.OK, "r z []")
		b.done(4, history.OK, "append z 1; append w 1").done(1, history.OK, "r x []; r w [1]")
	}},
	{name: "G2-item-realtime", test: laTest(""), valid: ValidFalse, expect: []string{"G2-item-realtime"}, build: func(b *hb) {
		// T1 -rw(x)-> T2 -rw(y)-> T3, and T3 completes before T1 starts.
		b.inv(2, "append x 1; r y").inv(3, "append y 1").done(3, history.OK, "append y 1")
		b.inv(1, "r x").done(1, history.OK, "r x []").done(2, history.OK, "append x 1; r y []")
	}},
	{name: "G0-process", test: laTest(""), valid: ValidFalse, expect: []string{"G0-process"}, build: func(b *hb) {
		b.ok(1, "append x 1").ok(1, "append x 2").ok(3, "r x [2 1]")
	}},
	{name: "G1c-process", test: laTest(""), valid: ValidFalse, expect: []string{"G1c-process"}, build: func(b *hb) {
		b.ok(1, "r y [1]").ok(1, "append y 1")
	}},
	{name: "G-nonadjacent-process", test: laTest(""), valid: ValidFalse, expect: []string{"G-nonadjacent-process"}, build: func(b *hb) {
		// As G-nonadjacent-realtime, with T2 and T3 one process.
		b.inv(1, "r x; r w").inv(2, "append x 1").inv(4, "append z 1; append w 1")
		b.done(2, history.OK, "append x 1")
		b.inv(2, "r z").done(2, history.OK, "r z []")
		b.done(4, history.OK, "append z 1; append w 1").done(1, history.OK, "r x []; r w [1]")
	}},
	{name: "G2-item-process", test: laTest(""), valid: ValidFalse, expect: []string{"G2-item-process"}, build: func(b *hb) {
		// As G2-item-realtime, with T3 and T1 one process.
		b.inv(2, "append x 1; r y").inv(3, "append y 1").done(3, history.OK, "append y 1")
		b.inv(3, "r x").done(3, history.OK, "r x []").done(2, history.OK, "append x 1; r y []")
	}},
	{name: "unexpected-element", test: laTest(""), valid: ValidFalse, expect: []string{"unexpected-element"}, build: func(b *hb) {
		b.ok(1, "append x 1").ok(2, "r x [1 7]")
	}},
	{name: "ts-session", test: laTest(""), valid: ValidFalse, expect: []string{"session-ts-regression", "ts-inversion-realtime"}, build: func(b *hb) {
		b.ok(1, "append x 1", "10.0").ok(2, "append y 1", "12.0").ok(1, "append z 1", "9.0")
	}},
	{name: "ts-inversion-ww", test: laTest(Serializable), valid: ValidFalse, expect: []string{"ts-inversion-ww"}, build: func(b *hb) {
		b.inv(1, "append x 1").inv(2, "append x 2")
		b.done(1, history.OK, "append x 1", "10.0").done(2, history.OK, "append x 2", "9.0")
		b.ok(3, "r x [1 2]", "", "11.0")
	}},
	{name: "G-single-realtime-serializable", test: laTest(Serializable), valid: ValidTrue, build: func(b *hb) {
		b.ok(1, "append x 1").ok(2, "r x []")
	}},
	{name: "ts-inversion", test: laTest(""), valid: ValidFalse, expect: []string{"ts-inversion-realtime", "ts-inversion-wr"}, build: func(b *hb) {
		b.ok(1, "append x 1", "10.0,0").ok(2, "r x [1]; append y 1", "5.0,0")
	}},
	{name: "ts-inversion-rw", test: laTest(""), valid: ValidFalse, expect: []string{"ts-inversion-rw"}, build: func(b *hb) {
		b.inv(1, "r x").inv(2, "append x 1")
		b.done(1, history.OK, "r x []", "", "20.0").done(2, history.OK, "append x 1", "10.0")
	}},
	{name: "register-valid", test: history.Test{Workloads: []string{history.Register}}, valid: ValidTrue, build: func(b *hb) {
		b.op(1, history.Invoke, "", "write", `["x",1]`).op(1, history.OK, "", "write", `["x",1]`)
		b.op(2, history.Invoke, "", "cas", `["x",[1,2]]`).op(3, history.Invoke, "", "read", `["x",null]`)
		b.op(3, history.OK, "", "read", `["x",1]`).op(2, history.OK, "", "cas", `["x",[1,2]]`)
		b.op(1, history.Invoke, "", "cas", `["x",[1,3]]`).add(history.Event{Type: history.Fail, Process: 1, F: "cas", Value: mustJSON(`["x",[1,3]]`), Error: "precondition"})
		b.op(4, history.Invoke, "", "write", `["x",4]`).op(4, history.Info, "", "write", `["x",4]`)
		b.op(3, history.Invoke, "", "read", `["x",null]`).op(3, history.OK, "", "read", `["x",2]`)
		b.op(3, history.Invoke, "", "read", `["y",null]`).op(3, history.OK, "", "read", `["y",null]`)
	}},
	{name: "nonlinearizable", test: history.Test{Workloads: []string{history.Register}}, valid: ValidFalse, expect: []string{"nonlinearizable"}, build: func(b *hb) {
		b.op(1, history.Invoke, "", "write", `["x",1]`).op(1, history.OK, "", "write", `["x",1]`)
		b.op(1, history.Invoke, "", "write", `["x",2]`).op(1, history.OK, "", "write", `["x",2]`)
		b.op(2, history.Invoke, "", "read", `["x",null]`).op(2, history.OK, "", "read", `["x",1]`)
	}},
	{name: "bank-valid", test: bankTest(), valid: ValidTrue, build: func(b *hb) {
		b.op(1, history.Invoke, "", "transfer", `{"from":0,"to":1,"amount":3}`).op(2, history.Invoke, "", "read", nil)
		b.op(2, history.OK, "", "read", `{"0":10,"1":10}`).op(1, history.OK, "", "transfer", `{"from":0,"to":1,"amount":3}`)
		b.op(2, history.Invoke, "", "read", nil).op(2, history.OK, "", "read", `{"0":7,"1":13}`)
	}},
	{name: "wrong-total", test: bankTest(), valid: ValidFalse, expect: []string{"wrong-total"}, build: func(b *hb) {
		b.op(1, history.Invoke, "", "transfer", `{"from":0,"to":1,"amount":3}`).op(2, history.Invoke, "", "read", nil)
		b.op(2, history.OK, "", "read", `{"0":7,"1":10}`).op(1, history.OK, "", "transfer", `{"from":0,"to":1,"amount":3}`)
		b.op(2, history.Invoke, "", "read", nil).op(2, history.OK, "", "read", `{"0":7,"1":13}`)
	}},
	{name: "negative-value", test: bankTest(), valid: ValidFalse, expect: []string{"negative-value"}, build: func(b *hb) {
		b.op(1, history.Invoke, "", "transfer", `{"from":0,"to":1,"amount":12}`).op(1, history.OK, "", "transfer", `{"from":0,"to":1,"amount":12}`)
		b.op(2, history.Invoke, "", "read", nil).op(2, history.OK, "", "read", `{"0":-2,"1":22}`)
	}},
	{name: "missing-final-read", test: bankTest(), valid: ValidFalse, expect: []string{"missing-final-read"}, build: func(b *hb) {
		b.op(2, history.Invoke, "", "read", nil).op(2, history.OK, "", "read", `{"0":10,"1":10}`)
		b.op(1, history.Invoke, "", "transfer", `{"from":0,"to":1,"amount":3}`).op(1, history.OK, "", "transfer", `{"from":0,"to":1,"amount":3}`)
	}},
	{name: "bank-nil-unexpected", test: bankTest(), valid: ValidFalse, expect: []string{"nil-balance", "unexpected-key"}, build: func(b *hb) {
		b.op(2, history.Invoke, "", "read", nil).op(2, history.OK, "", "read", `{"0":10,"1":null,"9":10}`)
	}},
	{name: "set-valid", test: setTest(), valid: ValidTrue, build: func(b *hb) {
		b.op(1, history.Invoke, "", "add", 1).op(1, history.OK, "", "add", 1)
		b.op(1, history.Invoke, "", "add", 2).op(2, history.Invoke, "", "read", nil)
		b.op(2, history.OK, "", "read", []int{1}).op(1, history.Info, "", "add", 2)
		b.op(1, history.Invoke, "", "add", 3).op(1, history.Fail, "", "add", 3)
		b.op(2, history.Invoke, "", "read", nil).op(2, history.OK, "", "read", []int{1})
	}},
	{name: "set-lost", test: setTest(), valid: ValidFalse, expect: []string{"lost"}, build: func(b *hb) {
		b.op(1, history.Invoke, "", "add", 1).op(1, history.OK, "", "add", 1)
		b.op(1, history.Invoke, "", "add", 2).op(1, history.OK, "", "add", 2)
		b.op(2, history.Invoke, "", "read", nil).op(2, history.OK, "", "read", []int{1})
	}},
	{name: "set-stale", test: setTest(), valid: ValidFalse, expect: []string{"stale"}, build: func(b *hb) {
		b.op(1, history.Invoke, "", "add", 1).op(1, history.OK, "", "add", 1)
		b.op(2, history.Invoke, "", "read", nil).op(2, history.OK, "", "read", []int{})
		b.op(2, history.Invoke, "", "read", nil).op(2, history.OK, "", "read", []int{1})
	}},
	{name: "set-failed-present", test: setTest(), valid: ValidFalse, expect: []string{"failed-add-present", "unexpected"}, build: func(b *hb) {
		b.op(1, history.Invoke, "", "add", 1).op(1, history.Fail, "", "add", 1)
		b.op(2, history.Invoke, "", "read", nil).op(2, history.OK, "", "read", []int{1, 9})
	}},
	{name: "set-duplicated", test: setTest(), valid: ValidFalse, expect: []string{"duplicated"}, build: func(b *hb) {
		b.op(1, history.Invoke, "", "add", 1).op(1, history.OK, "", "add", 1)
		b.op(2, history.Invoke, "", "read", nil).op(2, history.OK, "", "read", []int{1, 1})
	}},
	{name: "set-final-read-missing", test: setTest(), valid: ValidFalse, expect: []string{"final-read-missing"}, build: func(b *hb) {
		b.op(2, history.Invoke, "", "read", nil).op(2, history.OK, "", "read", []int{})
		b.op(1, history.Invoke, "", "add", 1).op(1, history.OK, "", "add", 1)
	}},
	{name: "mixed", test: history.Test{Workloads: []string{history.ListAppend, history.Set}}, valid: ValidFalse, expect: []string{"G-single-realtime", "lost"}, build: func(b *hb) {
		b.op(1, history.Invoke, history.ListAppend, "txn", invokes("append x 1")).op(1, history.OK, history.ListAppend, "txn", txn("append x 1"))
		b.op(2, history.Invoke, history.ListAppend, "txn", invokes("r x")).op(2, history.OK, history.ListAppend, "txn", txn("r x []"))
		b.op(3, history.Invoke, history.Set, "add", 1).op(3, history.OK, history.Set, "add", 1)
		b.op(3, history.Invoke, history.Set, "read", nil).op(3, history.OK, history.Set, "read", []int{})
	}},
}

func bankTest() history.Test {
	return history.Test{Workloads: []string{history.Bank}, Bank: &history.BankParams{Accounts: []string{"0", "1"}, Total: 20, FinalRead: true}}
}

func setTest() history.Test {
	return history.Test{Workloads: []string{history.Set}, Set: &history.SetParams{FinalRead: true}}
}

const goldenDir = "testdata/golden"

// TestGolden checks every committed golden run directory against its
// expected file: the verdict and the exact set of anomaly types.
func TestGolden(t *testing.T) {
	if *rewriteGolden {
		if err := os.RemoveAll(goldenDir); err != nil {
			t.Fatal(err)
		}
		for _, g := range goldens {
			b := &hb{}
			g.build(b)
			dir := filepath.Join(goldenDir, g.name)
			g.test.Name = g.name
			if err := history.WriteDir(dir, g.test, b.evs); err != nil {
				t.Fatal(err)
			}
			exp := "verdict " + g.valid.String() + "\n"
			for _, a := range g.expect {
				exp += a + "\n"
			}
			if err := os.WriteFile(filepath.Join(dir, "expected"), []byte(exp), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	dirs, err := filepath.Glob(filepath.Join(goldenDir, "*"))
	if err != nil || len(dirs) < len(goldens) {
		t.Fatalf("found %d golden dirs (%v), want %d: run go test -run TestGolden -rewrite", len(dirs), err, len(goldens))
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			wantValid, wantTypes := readExpected(t, dir)
			s, err := CheckDir(dir, Options{VisualizePath: filepath.Join(t.TempDir(), "linear.html")})
			if err != nil {
				t.Fatal(err)
			}
			got := s.AnomalyTypes()
			if s.Valid.String() != wantValid || !slices.Equal(got, wantTypes) {
				t.Fatalf("verdict %s with %v, want %s with %v\n%s", s.Valid, got, wantValid, wantTypes, s)
			}
		})
	}
}

// readExpected parses a golden "expected" file: "verdict V", then one
// anomaly type per line.
func readExpected(t testing.TB, dir string) (string, []string) {
	b, err := os.ReadFile(filepath.Join(dir, "expected"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	valid, ok := strings.CutPrefix(lines[0], "verdict ")
	if !ok {
		t.Fatalf("%s/expected: first line %q, want \"verdict valid|invalid|unknown\"", dir, lines[0])
	}
	types := lines[1:]
	slices.Sort(types)
	return valid, types
}
