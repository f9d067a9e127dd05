package check

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/meridiandb/meridian/tests/jepsen/history"
)

// hb builds histories for tests: events get consecutive indexes.
type hb struct {
	evs []history.Event
}

func (b *hb) add(ev history.Event) *hb {
	ev.Index = int64(len(b.evs))
	ev.TimeNS = ev.Index * 1000
	b.evs = append(b.evs, ev)
	return b
}

func mustJSON(v any) json.RawMessage {
	if s, ok := v.(string); ok {
		return json.RawMessage(s)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return raw
}

// txn parses "append x 1; r y [1 2]; r z" into micro-ops ("r z" has no
// result: an invocation).
func txn(s string) []history.MOp {
	var out []history.MOp
	for _, part := range strings.Split(s, ";") {
		f := strings.Fields(strings.NewReplacer("[", " [ ", "]", " ] ").Replace(part))
		if len(f) == 0 {
			continue
		}
		m := history.MOp{F: f[0], Key: f[1]}
		switch f[0] {
		case history.AppendF:
			v, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				panic(part)
			}
			m.Val = v
		case history.ReadF:
			if len(f) > 2 {
				m.HasRead, m.Read = true, []int64{}
				for _, x := range f[3 : len(f)-1] {
					v, err := strconv.ParseInt(x, 10, 64)
					if err != nil {
						panic(part)
					}
					m.Read = append(m.Read, v)
				}
			}
		default:
			panic("bad micro-op " + part)
		}
		out = append(out, m)
	}
	return out
}

// invokes strips read results from a completed txn string.
func invokes(s string) []history.MOp {
	mops := txn(s)
	for i := range mops {
		mops[i].Read, mops[i].HasRead = nil, false
	}
	return mops
}

// inv / done for list-append transactions.
func (b *hb) inv(p int, t string) *hb {
	return b.add(history.Event{Type: history.Invoke, Process: p, F: "txn", Value: mustJSON(invokes(t))})
}

func (b *hb) done(p int, typ history.Type, t string, ts ...string) *hb {
	v := txn(t)
	if typ != history.OK {
		v = invokes(t)
	}
	ev := history.Event{Type: typ, Process: p, F: "txn", Value: mustJSON(v)}
	if len(ts) > 0 {
		ev.CommitTS = ts[0]
	}
	if len(ts) > 1 {
		ev.ReadTS = ts[1]
	}
	return b.add(ev)
}

// ok runs a whole transaction with no concurrency.
func (b *hb) ok(p int, t string, ts ...string) *hb {
	return b.inv(p, t).done(p, history.OK, t, ts...)
}

// op adds an invocation or completion of another workload's op.
func (b *hb) op(p int, typ history.Type, wl, f string, v any) *hb {
	ev := history.Event{Type: typ, Process: p, Workload: wl, F: f}
	if v != nil {
		ev.Value = mustJSON(v)
	}
	return b.add(ev)
}

func (b *hb) ops(defaultWorkload string) []history.Op {
	ops, err := history.Pair(b.evs, defaultWorkload)
	if err != nil {
		panic(fmt.Sprint("pairing test history: ", err))
	}
	return ops
}
