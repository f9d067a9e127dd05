package check

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/meridiandb/meridian/tests/jepsen/history"
)

// Consistency models the list-append checker understands.
const (
	StrictSerializable = "strict-serializable"
	Serializable       = "serializable"
)

// ListAppendOptions configure CheckListAppend.
type ListAppendOptions struct {
	// Model is StrictSerializable (default: realtime and process edges
	// count) or Serializable.
	Model string
	// SearchTimeout bounds the cycle search in each strongly connected
	// component (default 5 s). On expiry the result is never valid.
	SearchTimeout time.Duration
	// MinOK is the number of ok transactions below which the verdict is
	// unknown (default 1).
	MinOK int
}

func (o *ListAppendOptions) defaults() error {
	switch o.Model {
	case "":
		o.Model = StrictSerializable
	case StrictSerializable, Serializable:
	default:
		return fmt.Errorf("check: unknown model %q (want %s or %s)", o.Model, StrictSerializable, Serializable)
	}
	if o.SearchTimeout <= 0 {
		o.SearchTimeout = 5 * time.Second
	}
	if o.MinOK <= 0 {
		o.MinOK = 1
	}
	return nil
}

// laTxn is one list-append transaction.
type laTxn struct {
	op   *history.Op
	mops []history.MOp
	node int32 // graph node (ok and info txns), or -1 (fail)
	name string
}

// writeRef names the append of one element: by which transaction, and
// whether it was that transaction's last append to the key.
type writeRef struct {
	txn   int32
	final bool
}

// readRef is an external read of a key by an ok transaction: its first read
// of the key, before the transaction itself appends to it.
type readRef struct {
	txn int32
	mop int32
}

// laKey is everything known about one key.
type laKey struct {
	name    string
	writers map[int64]writeRef
	appends []int64 // every appended value, in history order of the txns
	reads   []readRef
	// allReads: every read of the key by an ok txn, internal ones included.
	allReads []readRef
	// order is the version order (the longest ok read); pos indexes it.
	order []int64
	pos   map[int64]int
	// bad keys (incompatible orders, duplicates) get no ww/rw edges.
	bad bool
}

// listAppend holds a checked history; tsorder reuses its graph.
type listAppend struct {
	opts  ListAppendOptions
	txns  []laTxn
	nodes []int32 // node -> txn
	keys  map[string]*laKey
	kord  []*laKey // keys in first-seen order
	g     *graph
	why   map[whyKey]whyVal
	res   *Result
}

// whyVal is the evidence for one relation on one edge; whyText renders it
// only when an anomaly is reported.
type whyVal struct {
	key      string
	e, prev  int64 // ww/rw: the appended element and its predecessor; wr: the last element read
	prevInit bool  // the predecessor is the initial empty list
	mop      int32 // wr: the reader's micro-op
}

type whyKey struct {
	a, b int32
	rel  Relation
}

// CheckListAppend checks list-append transactions (ops of other workloads
// are ignored). It returns an error only for a malformed history (bad
// values, appended values that are not unique per key).
func CheckListAppend(ops []history.Op, opts ListAppendOptions) (*Result, error) {
	la, err := analyzeListAppend(ops, opts)
	if err != nil {
		return nil, err
	}
	return la.res, nil
}

func analyzeListAppend(ops []history.Op, opts ListAppendOptions) (*listAppend, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	la := &listAppend{opts: opts, keys: map[string]*laKey{}, why: map[whyKey]whyVal{},
		res: newResult("list-append (" + opts.Model + ")")}
	if err := la.index(ops); err != nil {
		return nil, err
	}
	nok := 0
	for i := range la.txns {
		if la.txns[i].op.Type == history.OK {
			nok++
		}
	}
	la.res.Notes = append(la.res.Notes, fmt.Sprintf("%d transactions (%d ok), %d keys", len(la.txns), nok, len(la.keys)))
	if nok < opts.MinOK {
		la.res.unknown(fmt.Sprintf("too few operations: %d ok transactions, need %d", nok, opts.MinOK))
	}
	la.internal()
	la.readChecks()
	la.lostUpdates()
	la.versionOrders()
	la.buildGraph()
	la.searchCycles()
	return la, nil
}

// index decodes the transactions and indexes writers and reads per key.
func (la *listAppend) index(ops []history.Op) error {
	for i := range ops {
		op := &ops[i]
		if op.Workload != history.ListAppend {
			continue
		}
		if op.F != "txn" {
			return fmt.Errorf("check: list-append op at index %d has f=%q, want txn", op.Inv, op.F)
		}
		mops, err := history.DecodeTxn(op.Value)
		if err != nil {
			return fmt.Errorf("check: list-append op at index %d: %w", op.Inv, err)
		}
		t := laTxn{op: op, mops: mops, node: -1}
		if op.Type != history.Fail {
			t.node = int32(len(la.nodes))
			la.nodes = append(la.nodes, int32(len(la.txns)))
		}
		la.txns = append(la.txns, t)
	}
	for ti := range la.txns {
		t := &la.txns[ti]
		t.name = fmt.Sprintf("T%d", ti+1)
		appended := map[string]bool{}
		lastAppend := map[string]int64{}
		for mi, m := range t.mops {
			k := la.key(m.Key)
			switch m.F {
			case history.AppendF:
				if w, dup := k.writers[m.Val]; dup {
					return fmt.Errorf("check: key %s: value %d appended twice (ops at index %d and %d); list-append needs unique values per key",
						m.Key, m.Val, la.txns[w.txn].op.Inv, t.op.Inv)
				}
				k.writers[m.Val] = writeRef{txn: int32(ti)}
				k.appends = append(k.appends, m.Val)
				appended[m.Key] = true
				lastAppend[m.Key] = m.Val
			case history.ReadF:
				if t.op.Type == history.OK {
					k.allReads = append(k.allReads, readRef{txn: int32(ti), mop: int32(mi)})
				}
				if t.op.Type == history.OK && !m.HasRead {
					return fmt.Errorf("check: ok list-append op at index %d: read of %s has no result", t.op.Cmp, m.Key)
				}
				if t.op.Type == history.OK && !appended[m.Key] && !hasEarlierRead(t.mops[:mi], m.Key) {
					k.reads = append(k.reads, readRef{txn: int32(ti), mop: int32(mi)})
				}
			}
		}
		for key, v := range lastAppend {
			k := la.keys[key]
			w := k.writers[v]
			w.final = true
			k.writers[v] = w
		}
	}
	return nil
}

func hasEarlierRead(mops []history.MOp, key string) bool {
	for _, m := range mops {
		if m.F == history.ReadF && m.Key == key {
			return true
		}
	}
	return false
}

func (la *listAppend) key(name string) *laKey {
	k, ok := la.keys[name]
	if !ok {
		k = &laKey{name: name, writers: map[int64]writeRef{}}
		la.keys[name] = k
		la.kord = append(la.kord, k)
	}
	return k
}

// describe renders a transaction for explanations.
func (la *listAppend) describe(ti int32) string {
	t := &la.txns[ti]
	var parts []string
	for _, m := range t.mops {
		if m.F == history.AppendF {
			parts = append(parts, fmt.Sprintf("append %s %d", m.Key, m.Val))
		} else if m.HasRead {
			parts = append(parts, fmt.Sprintf("r %s %s", m.Key, fmtList(m.Read)))
		} else {
			parts = append(parts, fmt.Sprintf("r %s ?", m.Key))
		}
	}
	return fmt.Sprintf("%s = %s op of process %d (invoked at index %d, completed at %s): [%s]",
		t.name, t.op.Type, t.op.Process, t.op.Inv, fmtIndex(t.op.Cmp), strings.Join(parts, ", "))
}

func fmtIndex(i int64) string {
	if i == 1<<63-1 {
		return "never"
	}
	return fmt.Sprintf("index %d", i)
}

func fmtList(xs []int64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return "[" + strings.Join(s, " ") + "]"
}

func fmtVal(v int64, init bool) string {
	if init {
		return "the initial empty list"
	}
	return fmt.Sprint(v)
}

func (la *listAppend) cmp(ti int32) int64 { return la.txns[ti].op.Cmp }

// internal checks each ok transaction against its own earlier micro-ops.
func (la *listAppend) internal() {
	type state struct {
		known bool // whole list known (after a read)
		list  []int64
	}
	for ti := range la.txns {
		t := &la.txns[ti]
		if t.op.Type != history.OK {
			continue
		}
		st := map[string]*state{}
		for _, m := range t.mops {
			s := st[m.Key]
			if s == nil {
				s = &state{}
				st[m.Key] = s
			}
			if m.F == history.AppendF {
				s.list = append(s.list, m.Val)
				continue
			}
			ok := true
			if s.known {
				ok = slices.Equal(s.list, m.Read)
			} else if len(s.list) > 0 {
				ok = len(m.Read) >= len(s.list) && slices.Equal(m.Read[len(m.Read)-len(s.list):], s.list)
			}
			if !ok {
				want := fmtList(s.list)
				if !s.known {
					want = "a list ending in " + want
				}
				la.res.add(Anomaly{Type: "internal", Key: m.Key, Ops: []int64{t.op.Cmp},
					Explanation: fmt.Sprintf("%s\nread %s = %s, but its own earlier operations imply %s",
						la.describe(int32(ti)), m.Key, fmtList(m.Read), want)})
			}
			s.known, s.list = true, append([]int64(nil), m.Read...)
		}
		// future-read: a read shows a value this txn appends only later.
		for mi, m := range t.mops {
			if m.F != history.ReadF {
				continue
			}
			for _, later := range t.mops[mi+1:] {
				if later.F == history.AppendF && later.Key == m.Key && slices.Contains(m.Read, later.Val) {
					la.res.add(Anomaly{Type: "future-read", Key: m.Key, Ops: []int64{t.op.Cmp},
						Explanation: fmt.Sprintf("%s\nread %s = %s already contains %d, which the transaction appends only afterwards",
							la.describe(int32(ti)), m.Key, fmtList(m.Read), later.Val)})
				}
			}
		}
	}
}

// readChecks: duplicate elements, unknown elements, G1a, G1b, over every
// read of every ok transaction.
func (la *listAppend) readChecks() {
	for ti := range la.txns {
		t := &la.txns[ti]
		if t.op.Type != history.OK {
			continue
		}
		for _, m := range t.mops {
			if m.F != history.ReadF || len(m.Read) == 0 {
				continue
			}
			k := la.keys[m.Key]
			seen := make(map[int64]bool, len(m.Read))
			for _, e := range m.Read {
				if seen[e] {
					la.res.add(Anomaly{Type: "duplicate-elements", Key: m.Key, Ops: []int64{t.op.Cmp},
						Explanation: fmt.Sprintf("%s\nread %s = %s contains %d more than once", la.describe(int32(ti)), m.Key, fmtList(m.Read), e)})
					k.bad = true
					break
				}
				seen[e] = true
			}
			for _, e := range m.Read {
				w, ok := k.writers[e]
				if !ok {
					la.res.add(Anomaly{Type: "unexpected-element", Key: m.Key, Ops: []int64{t.op.Cmp},
						Explanation: fmt.Sprintf("%s\nread %s = %s contains %d, which no transaction appended", la.describe(int32(ti)), m.Key, fmtList(m.Read), e)})
					k.bad = true
					continue
				}
				if la.txns[w.txn].op.Type == history.Fail {
					la.res.add(Anomaly{Type: "G1a", Key: m.Key, Ops: []int64{la.cmp(w.txn), t.op.Cmp},
						Explanation: fmt.Sprintf("%s\n%s\n%s read %s = %s, which contains %d, appended by %s, which failed (aborted read)",
							la.describe(w.txn), la.describe(int32(ti)), t.name, m.Key, fmtList(m.Read), e, la.txns[w.txn].name)})
				}
			}
			last := m.Read[len(m.Read)-1]
			if w, ok := k.writers[last]; ok && w.txn != int32(ti) && !w.final {
				la.res.add(Anomaly{Type: "G1b", Key: m.Key, Ops: []int64{la.cmp(w.txn), t.op.Cmp},
					Explanation: fmt.Sprintf("%s\n%s\n%s read %s = %s, ending in %d, an intermediate append of %s (which appended to %s again later)",
						la.describe(w.txn), la.describe(int32(ti)), t.name, m.Key, fmtList(m.Read), last, la.txns[w.txn].name, m.Key)})
			}
		}
	}
}

// lostUpdates: two ok transactions that read the same version of a key
// (externally) and then both appended to it.
func (la *listAppend) lostUpdates() {
	for _, k := range la.kord {
		groups := map[string][]int32{}
		var order []string
		for _, r := range k.reads {
			t := &la.txns[r.txn]
			if !appendsTo(t.mops[r.mop+1:], k.name) {
				continue
			}
			read := t.mops[r.mop].Read
			v := "init"
			if len(read) > 0 {
				v = fmt.Sprint(read[len(read)-1])
			}
			if _, ok := groups[v]; !ok {
				order = append(order, v)
			}
			groups[v] = append(groups[v], r.txn)
		}
		for _, v := range order {
			g := groups[v]
			if len(g) < 2 {
				continue
			}
			var lines []string
			var idx []int64
			for _, ti := range g {
				lines = append(lines, la.describe(ti))
				idx = append(idx, la.cmp(ti))
			}
			what := "the version ending in " + v
			if v == "init" {
				what = "the initial empty list"
			}
			la.res.add(Anomaly{Type: "lost-update", Key: k.name, Ops: idx,
				Explanation: fmt.Sprintf("%s\n%d committed transactions read %s at %s and then each appended to it: all but one update is lost",
					strings.Join(lines, "\n"), len(g), k.name, what)})
		}
	}
}

func appendsTo(mops []history.MOp, key string) bool {
	for _, m := range mops {
		if m.F == history.AppendF && m.Key == key {
			return true
		}
	}
	return false
}

// versionOrders takes the longest ok read of each key as its version order
// and checks that every other read is a prefix of it; it also flags dirty
// updates (a committed append ordered after a failed one).
func (la *listAppend) versionOrders() {
	for _, k := range la.kord {
		var longest []int64
		var lt int32 = -1
		// Every ok read observes a prefix of the order, including reads
		// that follow the txn's own appends.
		for _, r := range k.allReads {
			if rd := la.txns[r.txn].mops[r.mop].Read; len(rd) > len(longest) {
				longest, lt = rd, r.txn
			}
		}
		bad := false
		for _, r := range k.allReads {
			rd := la.txns[r.txn].mops[r.mop].Read
			if !isPrefix(rd, longest) {
				la.res.add(Anomaly{Type: "incompatible-order", Key: k.name, Ops: []int64{la.cmp(r.txn), la.cmp(lt)},
					Explanation: fmt.Sprintf("%s\n%s\nreads of %s %s and %s cannot both be prefixes of one append order",
						la.describe(r.txn), la.describe(lt), k.name, fmtList(rd), fmtList(longest))})
				bad = true
				break
			}
		}
		if bad {
			k.bad = true
		}
		k.order = longest
		k.pos = make(map[int64]int, len(longest))
		for i, e := range longest {
			if _, dup := k.pos[e]; !dup {
				k.pos[e] = i
			}
		}
		var failed int64
		haveFailed := false
		for _, e := range longest {
			w, ok := k.writers[e]
			if !ok {
				continue
			}
			switch la.txns[w.txn].op.Type {
			case history.Fail:
				failed, haveFailed = e, true
			case history.OK:
				if haveFailed {
					fw := k.writers[failed].txn
					la.res.add(Anomaly{Type: "dirty-update", Key: k.name, Ops: []int64{la.cmp(fw), la.cmp(w.txn)},
						Explanation: fmt.Sprintf("%s\n%s\nin the version order of %s %s, committed %d (by %s) follows %d, appended by %s, which failed",
							la.describe(fw), la.describe(w.txn), k.name, fmtList(longest), e, la.txns[w.txn].name, failed, la.txns[fw].name)})
					haveFailed = false
				}
			}
		}
	}
}

func isPrefix(a, b []int64) bool {
	return len(a) <= len(b) && slices.Equal(a, b[:len(a)])
}

// strict reports whether realtime and process edges count.
func (la *listAppend) strict() bool { return la.opts.Model == StrictSerializable }

// buildGraph adds ww, wr, rw edges, and process and realtime edges under
// the strict model. Nodes are ok and info transactions.
func (la *listAppend) buildGraph() {
	la.g = newGraph(len(la.nodes))
	for _, k := range la.kord {
		la.keyEdges(k)
	}
	if la.strict() {
		la.orderEdges()
	}
	la.g.freeze()
}

func (la *listAppend) linkWhy(a, b int32, rel Relation, why whyVal) {
	na, nb := la.txns[a].node, la.txns[b].node
	if na < 0 || nb < 0 || na == nb {
		return
	}
	la.g.link(na, nb, rel)
	wk := whyKey{na, nb, rel}
	if _, ok := la.why[wk]; !ok {
		la.why[wk] = why
	}
}

func (la *listAppend) keyEdges(k *laKey) {
	// wr: from the writer of the last element of each external read.
	readersAt := map[int64][]int32{}
	var readersInit []int32
	for _, r := range k.reads {
		read := la.txns[r.txn].mops[r.mop].Read
		if len(read) == 0 {
			readersInit = append(readersInit, r.txn)
			continue
		}
		last := read[len(read)-1]
		readersAt[last] = append(readersAt[last], r.txn)
		if w, ok := k.writers[last]; ok {
			la.linkWhy(w.txn, r.txn, WR, whyVal{key: k.name, e: last, mop: r.mop})
		}
	}
	if k.bad {
		return
	}
	// ww and rw along the version order; each unobserved append comes
	// after the last observed element.
	next := func(prev int64, prevInit bool, e int64) {
		w, ok := k.writers[e]
		if !ok {
			return
		}
		readers := readersInit
		if !prevInit {
			readers = readersAt[prev]
			if pw, ok := k.writers[prev]; ok && pw.txn != w.txn {
				la.linkWhy(pw.txn, w.txn, WW, whyVal{key: k.name, e: e, prev: prev})
			}
		}
		for _, r := range readers {
			if r == w.txn {
				continue
			}
			la.linkWhy(r, w.txn, RW, whyVal{key: k.name, e: e, prev: prev, prevInit: prevInit})
		}
	}
	var prev int64
	prevInit := true
	for _, e := range k.order {
		next(prev, prevInit, e)
		prev, prevInit = e, false
	}
	for _, e := range k.appends {
		if _, observed := k.pos[e]; observed {
			continue
		}
		if la.txns[k.writers[e].txn].op.Type == history.Fail {
			continue
		}
		next(prev, prevInit, e)
	}
}

// orderEdges adds process edges (consecutive ops of one process, out of ok
// ops only) and realtime edges as a transitive reduction: walking the
// history in index order with a frontier of completed ok transactions, each
// invocation links from the frontier, and each ok completion replaces the
// frontier members it already follows. Edges stay O(n * concurrency).
func (la *listAppend) orderEdges() {
	type point struct {
		idx    int64
		txn    int32
		invoke bool
	}
	var pts []point
	prevOK := map[int]int32{}
	byInv := append([]int32(nil), la.nodes...)
	sort.Slice(byInv, func(i, j int) bool { return la.txns[byInv[i]].op.Inv < la.txns[byInv[j]].op.Inv })
	for _, ti := range byInv {
		t := &la.txns[ti]
		if p, ok := prevOK[t.op.Process]; ok {
			la.linkWhy(p, ti, Process, whyVal{})
		}
		if t.op.Type == history.OK {
			prevOK[t.op.Process] = ti
		}
		pts = append(pts, point{idx: t.op.Inv, txn: ti, invoke: true})
		if t.op.Type == history.OK {
			pts = append(pts, point{idx: t.op.Cmp, txn: ti})
		}
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].idx < pts[j].idx })
	var frontier []int32
	inFrontier := make([]bool, len(la.txns))
	preds := map[int32][]int32{}
	for _, p := range pts {
		if p.invoke {
			if len(frontier) > 0 {
				preds[p.txn] = append([]int32(nil), frontier...)
			}
			for _, f := range frontier {
				la.linkWhy(f, p.txn, Realtime, whyVal{})
			}
			continue
		}
		for _, q := range preds[p.txn] {
			inFrontier[q] = false
		}
		delete(preds, p.txn)
		kept := frontier[:0]
		for _, f := range frontier {
			if inFrontier[f] {
				kept = append(kept, f)
			}
		}
		frontier = append(kept, p.txn)
		inFrontier[p.txn] = true
	}
}

// whyText explains relation rel on the edge between graph nodes na -> nb.
func (la *listAppend) whyText(na, nb int32, rel Relation) string {
	w := la.why[whyKey{na, nb, rel}]
	a, b := &la.txns[la.nodes[na]], &la.txns[la.nodes[nb]]
	switch rel {
	case WR:
		return fmt.Sprintf("%s read %s = %s, ending in %d, which %s appended",
			b.name, w.key, fmtList(b.mops[w.mop].Read), w.e, a.name)
	case WW:
		return fmt.Sprintf("%s appended %d to %s after %s appended %d", b.name, w.e, w.key, a.name, w.prev)
	case RW:
		return fmt.Sprintf("%s read %s at %s, and %s appended %d, the next version",
			a.name, w.key, fmtVal(w.prev, w.prevInit), b.name, w.e)
	case Process:
		return fmt.Sprintf("%s and %s are consecutive operations of process %d", a.name, b.name, b.op.Process)
	case Realtime:
		return fmt.Sprintf("%s completed (index %d) before %s was invoked (index %d)", a.name, a.op.Cmp, b.name, b.op.Inv)
	}
	return ""
}
