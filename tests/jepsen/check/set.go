package check

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/meridiandb/meridian/tests/jepsen/history"
)

func decodeStrict(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// CheckSet checks the set workload (Jepsen's set-full): an element is known
// once its add is acknowledged or a read shows it. Then:
//   - lost: a read invoked after it was known misses it, and no later read
//     has it (in particular: an acknowledged add missing from the final read);
//   - stale: a read invoked after it was known misses it, but a later read
//     has it again;
//   - failed-add-present: a read shows an element whose add definitely failed;
//   - unexpected: a read shows an element never added;
//   - duplicated: a read shows an element twice.
//
// Adds with unknown outcome that no read shows are allowed (never-read).
// With p.FinalRead, an ok read must follow every add's completion.
func CheckSet(ops []history.Op, p history.SetParams, minOK int) (*Result, error) {
	if minOK <= 0 {
		minOK = 1
	}
	res := newResult("set")
	type elem struct {
		add   *history.Op
		known int64 // index at which it became known; MaxInt64 if never
	}
	type read struct {
		op  *history.Op
		has map[int64]bool
	}
	elems := map[int64]*elem{}
	var order []int64
	var reads []read
	var lastAdd int64 = -1
	nok := 0
	for i := range ops {
		op := &ops[i]
		if op.Workload != history.Set {
			continue
		}
		switch op.F {
		case "add":
			v, err := history.DecodeInt(op.Value)
			if err != nil {
				return nil, fmt.Errorf("check: set add at index %d: %w", op.Inv, err)
			}
			if _, dup := elems[v]; dup {
				return nil, fmt.Errorf("check: set: element %d added twice (index %d); the workload adds unique elements", v, op.Inv)
			}
			e := &elem{add: op, known: 1<<63 - 1}
			if op.Type == history.OK {
				e.known = op.Cmp
				nok++
			}
			elems[v] = e
			order = append(order, v)
			end := op.Cmp
			if op.Type == history.Info {
				end = op.Inv
			}
			if end > lastAdd {
				lastAdd = end
			}
		case "read":
			if op.Type != history.OK {
				continue
			}
			nok++
			xs, err := history.DecodeInts(op.Value)
			if err != nil {
				return nil, fmt.Errorf("check: set read at index %d: %w", op.Cmp, err)
			}
			r := read{op: op, has: make(map[int64]bool, len(xs))}
			for _, x := range xs {
				if r.has[x] {
					res.add(Anomaly{Type: "duplicated", Ops: []int64{op.Cmp}, Explanation: fmt.Sprintf(
						"read completed at index %d (process %d) contains %d more than once", op.Cmp, op.Process, x)})
				}
				r.has[x] = true
			}
			reads = append(reads, r)
		default:
			return nil, fmt.Errorf("check: set op at index %d: unknown f %q (want add or read)", op.Inv, op.F)
		}
	}
	sort.Slice(reads, func(i, j int) bool { return reads[i].op.Inv < reads[j].op.Inv })
	// Elements a read shows: known from the read's completion on; reads of
	// failed or never-added elements are anomalies of their own.
	for _, r := range reads {
		var xs []int64
		for x := range r.has {
			xs = append(xs, x)
		}
		sort.Slice(xs, func(i, j int) bool { return xs[i] < xs[j] })
		for _, x := range xs {
			e, ok := elems[x]
			if !ok {
				res.add(Anomaly{Type: "unexpected", Ops: []int64{r.op.Cmp}, Explanation: fmt.Sprintf(
					"read completed at index %d shows %d, which was never added", r.op.Cmp, x)})
				continue
			}
			if e.add.Type == history.Fail {
				res.add(Anomaly{Type: "failed-add-present", Ops: []int64{e.add.Cmp, r.op.Cmp}, Explanation: fmt.Sprintf(
					"read completed at index %d shows %d, whose add failed at index %d (%s)", r.op.Cmp, x, e.add.Cmp, e.add.Error)})
				continue
			}
			if r.op.Cmp < e.known {
				e.known = r.op.Cmp
			}
		}
	}
	for _, x := range order {
		e := elems[x]
		if e.add.Type == history.Fail || e.known == 1<<63-1 {
			continue
		}
		// Reads invoked after x was known, in invocation order.
		first := sort.Search(len(reads), func(i int) bool { return reads[i].op.Inv > e.known })
		after := reads[first:]
		if len(after) == 0 {
			continue
		}
		var missing *read
		for i := range after {
			if !after[i].has[x] {
				missing = &after[i]
				break
			}
		}
		if missing == nil {
			continue
		}
		last := after[len(after)-1]
		if !last.has[x] {
			res.add(Anomaly{Type: "lost", Ops: []int64{e.add.Cmp, missing.op.Cmp}, Explanation: fmt.Sprintf(
				"%d was known at index %d (add %s), but the read invoked at index %d misses it and no later read shows it (last read: index %d)",
				x, e.known, e.add.Type, missing.op.Inv, last.op.Inv)})
			continue
		}
		res.add(Anomaly{Type: "stale", Ops: []int64{e.add.Cmp, missing.op.Cmp}, Explanation: fmt.Sprintf(
			"%d was known at index %d (add %s), but the read invoked at index %d misses it; a later read shows it again",
			x, e.known, e.add.Type, missing.op.Inv)})
	}
	res.Notes = append(res.Notes, fmt.Sprintf("%d elements, %d ok reads", len(order), len(reads)))
	if len(reads) == 0 || nok < minOK {
		res.unknown(fmt.Sprintf("too few operations: %d ok set ops, %d ok reads", nok, len(reads)))
	}
	if p.FinalRead && (len(reads) == 0 || reads[len(reads)-1].op.Inv < lastAdd) {
		res.add(Anomaly{Type: "final-read-missing", Explanation: fmt.Sprintf(
			"no ok read was invoked after the last add ended (index %d)", lastAdd)})
	}
	return res, nil
}
