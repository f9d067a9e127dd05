package check

import (
	"fmt"

	"github.com/meridiandb/meridian/tests/jepsen/history"
)

// CheckTimestampOrder is the white-box check of list-append transactions
// against the commit (and read) timestamps the server returned. In a
// timestamp-ordered MVCC store the serial order is timestamp order, so with
// C = commit_ts (read_ts for a read-only txn) and R = read_ts (else
// commit_ts):
//
//	ww A->B: C(A) < C(B)             ts-inversion-ww
//	wr A->B: C(A) <= R(B)            ts-inversion-wr
//	rw A->B: R(A) < C(B)             ts-inversion-rw
//	realtime A->B (strict model): C(A) < C(B) if B writes, else C(A) <= C(B)
//	                                 ts-inversion-realtime
//	process A->B: as realtime        session-ts-regression
//
// Transactions without timestamps are skipped. Realtime edges are the
// transitive reduction, which suffices because the rules compose.
func CheckTimestampOrder(ops []history.Op, opts ListAppendOptions) (*Result, error) {
	la, err := analyzeListAppend(ops, opts)
	if err != nil {
		return nil, err
	}
	return la.tsOrder()
}

type txnTS struct {
	c, r   history.TS
	has    bool
	writes bool
}

func (la *listAppend) tsOrder() (*Result, error) {
	res := newResult("ts-order")
	ts := make([]txnTS, len(la.nodes))
	n := 0
	for node, ti := range la.nodes {
		t := &la.txns[ti]
		if t.op.Type != history.OK || (t.op.CommitTS == "" && t.op.ReadTS == "") {
			continue
		}
		var c, r history.TS
		var err error
		if t.op.CommitTS != "" {
			if c, err = history.ParseTS(t.op.CommitTS); err != nil {
				return nil, fmt.Errorf("check: op at index %d: %w", t.op.Cmp, err)
			}
			r = c
		}
		if t.op.ReadTS != "" {
			if r, err = history.ParseTS(t.op.ReadTS); err != nil {
				return nil, fmt.Errorf("check: op at index %d: %w", t.op.Cmp, err)
			}
			if t.op.CommitTS == "" {
				c = r
			}
		}
		ts[node] = txnTS{c: c, r: r, has: true, writes: appendsAny(t.mops)}
		n++
	}
	res.Notes = append(res.Notes, fmt.Sprintf("%d ok transactions with timestamps", n))
	if n == 0 {
		res.unknown("no transaction carries a timestamp")
		return res, nil
	}
	le := func(a, b history.TS) bool { return !b.Less(a) }
	for a := range la.g.adj {
		ta := ts[a]
		if !ta.has {
			continue
		}
		for _, e := range la.g.adj[a] {
			tb := ts[e.to]
			if !tb.has {
				continue
			}
			order := func(x, y txnTS) bool {
				if y.writes {
					return x.c.Less(y.c)
				}
				return le(x.c, y.c)
			}
			check := func(rel Relation, ok bool, typ, rule string) {
				if e.rel&rel == 0 || ok {
					return
				}
				la.tsAnomaly(res, typ, int32(a), e.to, rel, rule, ta, tb)
			}
			check(WW, ta.c.Less(tb.c), "ts-inversion-ww", "commit(A) < commit(B)")
			check(WR, le(ta.c, tb.r), "ts-inversion-wr", "commit(A) <= read(B)")
			check(RW, ta.r.Less(tb.c), "ts-inversion-rw", "read(A) < commit(B)")
			check(Realtime, order(ta, tb), "ts-inversion-realtime", "realtime A before B needs ts(A) < ts(B) (<= if B only reads)")
			if e.rel&Realtime == 0 {
				check(Process, order(ta, tb), "session-ts-regression", "a process's later txn needs a later timestamp")
			}
		}
	}
	return res, nil
}

func appendsAny(mops []history.MOp) bool {
	for _, m := range mops {
		if m.F == history.AppendF {
			return true
		}
	}
	return false
}

func (la *listAppend) tsAnomaly(res *Result, typ string, a, b int32, rel Relation, rule string, ta, tb txnTS) {
	ti, tj := la.nodes[a], la.nodes[b]
	why := la.why[whyKey{a, b, rel}]
	res.add(Anomaly{Type: typ, Key: why.key, Ops: []int64{la.cmp(ti), la.cmp(tj)}, Explanation: fmt.Sprintf(
		"%s\n%s\nA=%s < B=%s (%s): %s\nbut commit(A)=%s read(A)=%s, commit(B)=%s read(B)=%s violates %s",
		la.describe(ti), la.describe(tj), la.txns[ti].name, la.txns[tj].name, rel, la.whyText(a, b, rel),
		ta.c, ta.r, tb.c, tb.r, rule)})
}
