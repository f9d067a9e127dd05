package check

import (
	"fmt"
	"strings"
	"time"
)

// cycleSpec describes a cycle shape to search for: the first edge carries
// start; the rest use allowed relations; constraints on anti-dependencies.
type cycleSpec struct {
	name    string
	start   Relation
	allowed Relation
	maxRW   int  // 0: unlimited
	minRW   int  // at least this many rw edges
	noAdjRW bool // no two rw edges adjacent (cyclically)
	needOrd bool // at least one process or realtime edge
}

var baseSpecs = []cycleSpec{
	{name: "G0", start: WW, allowed: WW},
	{name: "G1c", start: WR, allowed: WW | WR},
	{name: "G-single", start: RW, allowed: dataRels, maxRW: 1},
	{name: "G-nonadjacent", start: RW, allowed: dataRels, minRW: 2, noAdjRW: true},
	{name: "G2-item", start: RW, allowed: dataRels, minRW: 2},
}

func orderSpecs() []cycleSpec {
	var out []cycleSpec
	for _, s := range baseSpecs {
		s.name += "-realtime"
		s.allowed |= orderRels
		s.needOrd = true
		out = append(out, s)
	}
	return out
}

// baseImplies: finding the key anomaly makes searching for the values
// pointless (every such cycle is also one of them, Elle's implications).
var baseImplies = map[string][]string{
	"G0":            {"G1c"},
	"G-single":      {"G-nonadjacent"},
	"G-nonadjacent": {"G2-item"},
}

// implied returns every anomaly name implied by name, itself included.
func implied(name string) map[string]bool {
	out := map[string]bool{}
	var walk func(string)
	walk = func(n string) {
		if out[n] {
			return
		}
		out[n] = true
		base, suffix := n, ""
		for _, s := range []string{"-process", "-realtime"} {
			if strings.HasSuffix(n, s) {
				base, suffix = strings.TrimSuffix(n, s), s
			}
		}
		for _, b := range baseImplies[base] {
			walk(b + suffix)
		}
		switch suffix {
		case "":
			walk(n + "-process")
		case "-process":
			walk(base + "-realtime")
		}
	}
	walk(name)
	return out
}

// cycleStep is one edge of a found cycle, with the relation it stands for.
type cycleStep struct {
	from, to int32 // graph nodes
	rel      Relation
}

// classify names a cycle by its edges, as Elle's explainer does.
func classify(c []cycleStep) string {
	rw, wr, rt, proc := 0, 0, false, false
	adj := false
	for i, s := range c {
		switch s.rel {
		case RW:
			rw++
			if c[(i+1)%len(c)].rel == RW {
				adj = true
			}
		case WR:
			wr++
		case Realtime:
			rt = true
		case Process:
			proc = true
		}
	}
	var name string
	switch {
	case rw == 0 && wr == 0:
		name = "G0"
	case rw == 0:
		name = "G1c"
	case rw == 1:
		name = "G-single"
	case adj:
		name = "G2-item"
	default:
		name = "G-nonadjacent"
	}
	switch {
	case rt:
		name += "-realtime"
	case proc:
		name += "-process"
	}
	return name
}

// searcher runs cycle searches inside one strongly connected component.
type searcher struct {
	g        *graph
	comp     []int32 // node -> component
	c        int32
	nodes    []int32
	local    []int32 // node -> position in nodes (valid for this component's nodes)
	sub      []int32 // position -> sub-component for the current spec, -1 if none
	deadline time.Time
	timedOut bool
	steps    int
	// per-search scratch, stamped to avoid clearing
	stamp  []uint32
	parent []int32 // state -> previous state
	prel   []Relation
	gen    uint32
}

const nStates = 16 // lastRW(1) | rwCount(0..2)<<1 | usedOrd<<3

func newSearcher(g *graph, comp []int32, c int32, nodes []int32, local []int32, deadline time.Time) *searcher {
	s := &searcher{g: g, comp: comp, c: c, nodes: nodes, deadline: deadline, local: local, sub: make([]int32, len(nodes))}
	for i, v := range nodes {
		s.local[v] = int32(i)
	}
	n := len(nodes) * nStates
	s.stamp = make([]uint32, n)
	s.parent = make([]int32, n)
	s.prel = make([]Relation, n)
	return s
}

func (s *searcher) expired() bool {
	if s.timedOut {
		return true
	}
	s.steps++
	if s.steps&255 == 0 && time.Now().After(s.deadline) {
		s.timedOut = true
	}
	return s.timedOut
}

// find searches every start edge of the spec; it returns the first cycle.
func (s *searcher) find(sp cycleSpec) []cycleStep {
	if time.Now().After(s.deadline) {
		s.timedOut = true
		return nil
	}
	if !s.subComponents(sp.allowed | sp.start) {
		return nil
	}
	for ai, a := range s.nodes {
		if s.sub[ai] < 0 {
			continue
		}
		for _, e := range s.g.adj[a] {
			if e.rel&sp.start == 0 || s.comp[e.to] != s.c || s.sub[s.local[e.to]] != s.sub[ai] {
				continue
			}
			if c := s.bfs(sp, a, e.to); c != nil {
				return c
			}
			if s.timedOut {
				return nil
			}
		}
	}
	return nil
}

// subComponents computes, inside the component, the strongly connected
// components of the edges carrying mask (s.sub); a cycle of a spec lies
// within one of them, so start edges and searches outside are pruned. It
// reports whether any nontrivial one exists. Iterative Tarjan on local ids.
func (s *searcher) subComponents(mask Relation) bool {
	n := len(s.nodes)
	index := make([]int32, n)
	low := make([]int32, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
		s.sub[i] = -1
	}
	var stack []int32
	type frame struct {
		v    int32
		next int
	}
	var call []frame
	var counter, ncomp int32
	for root := int32(0); int(root) < n; root++ {
		if index[root] >= 0 {
			continue
		}
		call = append(call, frame{v: root})
		index[root], low[root] = counter, counter
		counter++
		stack = append(stack, root)
		onStack[root] = true
		for len(call) > 0 {
			f := &call[len(call)-1]
			v := f.v
			adj := s.g.adj[s.nodes[v]]
			descended := false
			for f.next < len(adj) {
				e := adj[f.next]
				f.next++
				if e.rel&mask == 0 || s.comp[e.to] != s.c {
					continue
				}
				w := s.local[e.to]
				if index[w] < 0 {
					index[w], low[w] = counter, counter
					counter++
					stack = append(stack, w)
					onStack[w] = true
					call = append(call, frame{v: w})
					descended = true
					break
				}
				if onStack[w] && index[w] < low[v] {
					low[v] = index[w]
				}
			}
			if descended {
				continue
			}
			if low[v] == index[v] {
				top := len(stack) - 1
				for stack[top] != v {
					top--
				}
				if len(stack)-top > 1 {
					for _, w := range stack[top:] {
						s.sub[w] = ncomp
					}
					ncomp++
				}
				for _, w := range stack[top:] {
					onStack[w] = false
				}
				stack = stack[:top]
			}
			call = call[:len(call)-1]
			if len(call) > 0 {
				p := call[len(call)-1].v
				if low[v] < low[p] {
					low[p] = low[v]
				}
			}
		}
	}
	return ncomp > 0
}

func stateOf(lastRW bool, cnt int, ord bool) int32 {
	st := int32(cnt) << 1
	if lastRW {
		st |= 1
	}
	if ord {
		st |= 8
	}
	return st
}

// bfs looks for a path from b back to a that, with the start edge a->b
// (relation sp.start), forms a cycle of the spec's shape.
func (s *searcher) bfs(sp cycleSpec, a, b int32) []cycleStep {
	s.gen++
	r0 := sp.start
	cnt0 := 0
	if r0 == RW {
		cnt0 = 1
	}
	startState := stateOf(r0 == RW, cnt0, r0&orderRels != 0)
	first := s.local[b]*nStates + startState
	s.stamp[first] = s.gen
	s.parent[first] = -1
	queue := []int32{first}
	for len(queue) > 0 {
		if s.expired() {
			return nil
		}
		cur := queue[0]
		queue = queue[1:]
		u := s.nodes[cur/nStates]
		st := cur % nStates
		lastRW, cnt, ord := st&1 != 0, int(st>>1)&3, st&8 != 0
		for _, e := range s.g.adj[u] {
			if s.comp[e.to] != s.c || s.sub[s.local[e.to]] != s.sub[s.local[a]] {
				continue
			}
			for _, rn := range relNames {
				r := rn.r
				if e.rel&r == 0 || sp.allowed&r == 0 {
					continue
				}
				ncnt, nlast, nord := cnt, false, ord || r&orderRels != 0
				if r == RW {
					if sp.maxRW > 0 && cnt >= sp.maxRW {
						continue
					}
					if sp.noAdjRW && lastRW {
						continue
					}
					nlast = true
					if ncnt < 2 {
						ncnt++
					}
				}
				if e.to == a {
					if ncnt < sp.minRW || (sp.needOrd && !nord) || (sp.noAdjRW && nlast && r0 == RW) {
						continue
					}
					return s.path(sp, a, cur, r)
				}
				next := s.local[e.to]*nStates + stateOf(nlast, ncnt, nord)
				if s.stamp[next] == s.gen {
					continue
				}
				s.stamp[next] = s.gen
				s.parent[next] = cur
				s.prel[next] = r
				queue = append(queue, next)
			}
		}
	}
	return nil
}

func (s *searcher) path(sp cycleSpec, a int32, last int32, lastRel Relation) []cycleStep {
	var rev []cycleStep
	rev = append(rev, cycleStep{from: s.nodes[last/nStates], to: a, rel: lastRel})
	for cur := last; s.parent[cur] >= 0; cur = s.parent[cur] {
		p := s.parent[cur]
		rev = append(rev, cycleStep{from: s.nodes[p/nStates], to: s.nodes[cur/nStates], rel: s.prel[cur]})
	}
	first := rev[len(rev)-1].from
	rev = append(rev, cycleStep{from: a, to: first, rel: sp.start})
	out := make([]cycleStep, len(rev))
	for i := range rev {
		out[i] = rev[len(rev)-1-i]
	}
	return out
}

// anyCycle finds some cycle through the component's first node using any
// edge of mask: the fallback when the shaped searches give up.
func (s *searcher) anyCycle(mask Relation) []cycleStep {
	a := s.nodes[0]
	prev := map[int32]int32{}
	prel := map[int32]Relation{}
	queue := []int32{a}
	seen := map[int32]bool{a: true}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for _, e := range s.g.adj[u] {
			if s.comp[e.to] != s.c || e.rel&mask == 0 {
				continue
			}
			r := pickRel(e.rel & mask)
			if e.to == a {
				var rev []cycleStep
				rev = append(rev, cycleStep{from: u, to: a, rel: r})
				for v := u; v != a; v = prev[v] {
					rev = append(rev, cycleStep{from: prev[v], to: v, rel: prel[v]})
				}
				out := make([]cycleStep, len(rev))
				for i := range rev {
					out[i] = rev[len(rev)-1-i]
				}
				return out
			}
			if !seen[e.to] {
				seen[e.to] = true
				prev[e.to], prel[e.to] = u, r
				queue = append(queue, e.to)
			}
		}
	}
	return nil
}

// pickRel chooses the mildest relation of a set for explanations.
func pickRel(r Relation) Relation {
	for _, n := range relNames {
		if r&n.r != 0 {
			return n.r
		}
	}
	return 0
}

// searchCycles finds the components of the model's graph and classifies
// cycles in each.
func (la *listAppend) searchCycles() {
	mask := dataRels
	specs := baseSpecs
	if la.strict() {
		mask |= orderRels
		specs = append(append([]cycleSpec(nil), baseSpecs...), orderSpecs()...)
	}
	comps, comp := la.g.sccs(mask, nil)
	local := make([]int32, la.g.n)
	// Each component gets SearchTimeout; all of them together at most
	// 10x that, after which the remaining components only get the cheap
	// fallback cycle (so the verdict stays invalid, never valid).
	overall := time.Now().Add(10 * la.opts.SearchTimeout)
	gaveUp, largest := 0, 0
	for ci, nodes := range comps {
		deadline := time.Now().Add(la.opts.SearchTimeout)
		if deadline.After(overall) {
			deadline = overall
		}
		s := newSearcher(la.g, comp, int32(ci), nodes, local, deadline)
		found := map[string]bool{}
		skip := map[string]bool{}
		for _, sp := range specs {
			if skip[sp.name] || s.timedOut {
				continue
			}
			c := s.find(sp)
			if c == nil {
				continue
			}
			name := classify(c)
			if !found[name] {
				found[name] = true
				la.reportCycle(name, c)
			}
			for n := range implied(name) {
				skip[n] = true
			}
		}
		if s.timedOut {
			gaveUp++
			largest = max(largest, len(nodes))
		}
		if len(found) == 0 {
			// The component is a cycle of the model's graph: report one,
			// so a give-up is never valid.
			if c := s.anyCycle(mask); c != nil {
				la.reportCycle(classify(c), c)
			}
		}
	}
	if gaveUp > 0 {
		la.res.unknown(fmt.Sprintf("cycle-search-timeout: the shaped search gave up on %d of %d components (largest: %d transactions; budget %s each); a component with no shaped cycle found reports a fallback cycle",
			gaveUp, len(comps), largest, la.opts.SearchTimeout))
	}
}

func (la *listAppend) reportCycle(name string, c []cycleStep) {
	var b strings.Builder
	names := make([]string, len(c))
	var idx []int64
	b.WriteString("Let:\n")
	for i, st := range c {
		ti := la.nodes[st.from]
		names[i] = la.txns[ti].name
		idx = append(idx, la.txns[ti].op.Cmp)
		fmt.Fprintf(&b, "  %s\n", la.describe(ti))
	}
	b.WriteString("Then:\n")
	for _, st := range c {
		a, bb := la.nodes[st.from], la.nodes[st.to]
		fmt.Fprintf(&b, "  %s < %s (%s): %s\n", la.txns[a].name, la.txns[bb].name, st.rel, la.whyText(st.from, st.to, st.rel))
	}
	fmt.Fprintf(&b, "a cycle: %s < %s, yet each must precede the next", strings.Join(names, " < "), names[0])
	key := ""
	for _, st := range c {
		if k := la.why[whyKey{st.from, st.to, st.rel}].key; k != "" {
			key = k
			break
		}
	}
	la.res.add(Anomaly{Type: name, Key: key, Ops: idx, Explanation: b.String()})
}
