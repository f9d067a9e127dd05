package check

import (
	"sort"
	"strings"
)

// Relation is a bit set of dependency kinds on a graph edge.
type Relation uint8

// Edge kinds. WW, WR and RW are Adya's dependencies; Process and Realtime
// are the session and realtime orders of the strict models.
const (
	WW Relation = 1 << iota
	WR
	RW
	Process
	Realtime

	dataRels  = WW | WR | RW
	orderRels = Process | Realtime
)

var relNames = []struct {
	r    Relation
	name string
}{{WW, "ww"}, {WR, "wr"}, {RW, "rw"}, {Process, "process"}, {Realtime, "realtime"}}

func (r Relation) String() string {
	var parts []string
	for _, n := range relNames {
		if r&n.r != 0 {
			parts = append(parts, n.name)
		}
	}
	return strings.Join(parts, "|")
}

type edge struct {
	to  int32
	rel Relation
}

// graph is a directed graph on dense node ids with relation-labelled edges.
// Edges are added into a map (so parallel relations merge into one edge)
// and frozen into sorted adjacency lists, which keeps every search
// deterministic.
type graph struct {
	n     int
	edges map[uint64]Relation
	adj   [][]edge
}

func newGraph(n int) *graph {
	return &graph{n: n, edges: make(map[uint64]Relation)}
}

func edgeKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

func (g *graph) link(a, b int32, r Relation) {
	if a == b {
		return
	}
	g.edges[edgeKey(a, b)] |= r
}

func (g *graph) freeze() {
	g.adj = make([][]edge, g.n)
	counts := make([]int, g.n)
	for k := range g.edges {
		counts[int32(k>>32)]++
	}
	for i := range g.adj {
		g.adj[i] = make([]edge, 0, counts[i])
	}
	for k, r := range g.edges {
		a := int32(k >> 32)
		g.adj[a] = append(g.adj[a], edge{to: int32(uint32(k)), rel: r})
	}
	for i := range g.adj {
		sort.Slice(g.adj[i], func(x, y int) bool { return g.adj[i][x].to < g.adj[i][y].to })
	}
}

// sccs returns the strongly connected components of the subgraph of edges
// carrying any relation in mask, restricted to nodes for which keep is true
// (nil keeps all), with more than one node. (The graph has no self edges.)
// Iterative Tarjan: histories of 1e5 transactions make recursion deep.
// comp[v] is the component number of v, or -1.
func (g *graph) sccs(mask Relation, keep func(int32) bool) (comps [][]int32, comp []int32) {
	const unvisited = -1
	index := make([]int32, g.n)
	low := make([]int32, g.n)
	onStack := make([]bool, g.n)
	comp = make([]int32, g.n)
	for i := range index {
		index[i] = unvisited
		comp[i] = -1
	}
	var stack []int32
	type frame struct {
		v    int32
		next int
	}
	var call []frame
	var counter int32
	for root := int32(0); int(root) < g.n; root++ {
		if index[root] != unvisited || (keep != nil && !keep(root)) {
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
			descended := false
			for f.next < len(g.adj[v]) {
				e := g.adj[v][f.next]
				f.next++
				if e.rel&mask == 0 || (keep != nil && !keep(e.to)) {
					continue
				}
				w := e.to
				if index[w] == unvisited {
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
				var c []int32
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					c = append(c, w)
					if w == v {
						break
					}
				}
				if len(c) > 1 {
					for _, w := range c {
						comp[w] = int32(len(comps))
					}
					sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
					comps = append(comps, c)
				}
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
	sort.Slice(comps, func(i, j int) bool { return comps[i][0] < comps[j][0] })
	for i, c := range comps {
		for _, w := range c {
			comp[w] = int32(i)
		}
	}
	return comps, comp
}
