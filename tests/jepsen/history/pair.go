package history

import (
	"encoding/json"
	"fmt"
	"math"
)

// Op is an invocation paired with its completion.
type Op struct {
	Process  int
	Workload string
	F        string
	// Type is ok, fail or info; an invocation with no completion is info.
	Type Type
	// Inv and Cmp are the indexes of the invocation and completion; Cmp is
	// math.MaxInt64 when there is no completion.
	Inv, Cmp int64
	// Value is the completion's value for ok ops and the invocation's
	// otherwise (so info/fail ops show what was attempted).
	Value    json.RawMessage
	Node     string
	Gateway  string
	Error    string
	ReadTS   string
	CommitTS string
}

// Pair turns client events into ops in invocation order; nemesis events are
// skipped. defaultWorkload is used for events that name none.
func Pair(events []Event, defaultWorkload string) ([]Op, error) {
	var ops []Op
	open := map[int]int{} // process -> position in ops
	for i := range events {
		ev := &events[i]
		if ev.Process == NemesisProcess {
			continue
		}
		wl := ev.Workload
		if wl == "" {
			wl = defaultWorkload
		}
		if ev.Type == Invoke {
			if _, busy := open[ev.Process]; busy {
				return nil, fmt.Errorf("history: index %d: process %d invokes twice", ev.Index, ev.Process)
			}
			if wl == "" {
				return nil, fmt.Errorf("history: index %d: no workload (name it on the event or list one workload in test.json)", ev.Index)
			}
			open[ev.Process] = len(ops)
			ops = append(ops, Op{
				Process: ev.Process, Workload: wl, F: ev.F, Type: Info,
				Inv: ev.Index, Cmp: math.MaxInt64, Value: ev.Value, Node: ev.Node,
			})
			continue
		}
		j, ok := open[ev.Process]
		if !ok {
			return nil, fmt.Errorf("history: index %d: process %d completes with no open invocation", ev.Index, ev.Process)
		}
		delete(open, ev.Process)
		op := &ops[j]
		if op.F != ev.F {
			return nil, fmt.Errorf("history: index %d: completion f=%s does not match invocation f=%s", ev.Index, ev.F, op.F)
		}
		op.Type, op.Cmp = ev.Type, ev.Index
		if ev.Type == OK {
			op.Value = ev.Value
		}
		op.Gateway, op.Error, op.ReadTS, op.CommitTS = ev.Gateway, ev.Error, ev.ReadTS, ev.CommitTS
	}
	return ops, nil
}
