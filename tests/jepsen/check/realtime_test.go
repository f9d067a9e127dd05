package check

import (
	"testing"

	"pgregory.net/rapid"

	"github.com/meridiandb/meridian/tests/jepsen/history"
)

// TestRealtimeReduction: the realtime and process edges, built as a
// transitive reduction from the frontier, have exactly the naive O(n^2)
// realtime order as their transitive closure: A (ok) precedes B (ok or
// info) iff A completed before B was invoked.
func TestRealtimeReduction(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		b := &hb{}
		nproc := rapid.IntRange(1, 5).Draw(rt, "procs")
		open := map[int]bool{}
		for steps := rapid.IntRange(1, 60).Draw(rt, "steps"); steps > 0; steps-- {
			p := rapid.IntRange(0, nproc-1).Draw(rt, "proc")
			if !open[p] {
				b.inv(p, "")
				open[p] = true
				continue
			}
			typ := rapid.SampledFrom([]history.Type{history.OK, history.OK, history.Fail, history.Info}).Draw(rt, "type")
			b.done(p, typ, "")
			delete(open, p)
		}
		ops := b.ops(history.ListAppend)
		la, err := analyzeListAppend(ops, ListAppendOptions{})
		if err != nil {
			rt.Fatal(err)
		}
		n := len(la.nodes)
		reach := make([][]bool, n)
		for i := range reach {
			reach[i] = make([]bool, n)
		}
		// Closure by DFS from every node over order edges.
		for s := 0; s < n; s++ {
			stack := []int32{int32(s)}
			for len(stack) > 0 {
				u := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				for _, e := range la.g.adj[u] {
					if e.rel&orderRels != 0 && !reach[s][e.to] {
						reach[s][e.to] = true
						stack = append(stack, e.to)
					}
				}
			}
		}
		for a := 0; a < n; a++ {
			ta := la.txns[la.nodes[a]].op
			for c := 0; c < n; c++ {
				tc := la.txns[la.nodes[c]].op
				want := ta.Type == history.OK && ta.Cmp < tc.Inv
				if reach[a][c] != want {
					rt.Fatalf("T%d (%s %d..%d) -> T%d (%s %d..%d): closure %v, realtime %v",
						a, ta.Type, ta.Inv, ta.Cmp, c, tc.Type, tc.Inv, tc.Cmp, reach[a][c], want)
				}
			}
		}
	})
}
