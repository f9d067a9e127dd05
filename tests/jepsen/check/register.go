package check

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/meridiandb/meridian/tests/jepsen/history"
)

// RegisterOptions configure CheckRegister.
type RegisterOptions struct {
	// Timeout bounds the linearizability search of each key (default 10 s);
	// on expiry that key, and so the result, is unknown.
	Timeout time.Duration
	// VisualizePath, when set, receives porcupine's HTML visualisation of
	// the keys that are not linearizable (written only on failure).
	VisualizePath string
	// MinOK is the number of ok ops below which the verdict is unknown.
	MinOK int
}

type regState struct {
	present bool
	v       int64
}

func (s regState) String() string {
	if !s.present {
		return "nil"
	}
	return fmt.Sprint(s.v)
}

type regInput struct {
	f        string // read, write, cas
	v, old   int64
	mustFail bool // cas that failed on its precondition
}

type regOutput struct {
	known bool // an ok read's result
	state regState
}

type regMeta struct {
	key      string
	inv, cmp int64
	typ      history.Type
}

var registerModel = porcupine.Model{
	Init: func() any { return regState{} },
	Step: func(st, in, out any) (bool, any) {
		s, i, o := st.(regState), in.(regInput), out.(regOutput)
		switch i.f {
		case "read":
			return o.state == s, s
		case "write":
			return true, regState{present: true, v: i.v}
		case "cas":
			match := s.present && s.v == i.old
			if i.mustFail {
				return !match, s
			}
			if match {
				return true, regState{present: true, v: i.v}
			}
			// An ok cas needs the match; an info cas may have failed.
			return !o.known, s
		}
		return false, s
	},
	DescribeOperation: func(in, out any) string {
		i, o := in.(regInput), out.(regOutput)
		switch i.f {
		case "read":
			return "read -> " + o.state.String()
		case "write":
			return fmt.Sprintf("write %d", i.v)
		default:
			if i.mustFail {
				return fmt.Sprintf("cas %d->%d (failed)", i.old, i.v)
			}
			return fmt.Sprintf("cas %d->%d", i.old, i.v)
		}
	},
	DescribeState: func(st any) string { return st.(regState).String() },
	DescribeOperationMetadata: func(m any) string {
		md, ok := m.(regMeta)
		if !ok {
			return ""
		}
		return fmt.Sprintf("%s: %s, index %d..%s", md.key, md.typ, md.inv, fmtIndex(md.cmp))
	},
	Partition: func(ops []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range ops {
			k := op.Metadata.(regMeta).key
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, len(keys))
		for i, k := range keys {
			out[i] = by[k]
		}
		return out
	},
}

// CheckRegister checks that each key's read / write / cas ops are
// linearizable, with porcupine, one key at a time. Ops whose outcome is
// unknown (info, or no completion) may take effect at any point after their
// invocation, or never: their return time is infinite. Failed reads and
// writes are dropped; a cas that failed on its precondition (error
// "precondition") must have seen a different value.
func CheckRegister(ops []history.Op, opts RegisterOptions) (*Result, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.MinOK <= 0 {
		opts.MinOK = 1
	}
	res := newResult("register (linearizable)")
	byKey := map[string][]porcupine.Operation{}
	var keys []string
	clients := map[string]map[int]int{}
	nok := 0
	for i := range ops {
		op := &ops[i]
		if op.Workload != history.Register {
			continue
		}
		rop, err := history.DecodeRegister(op.F, op.Value)
		if err != nil {
			return nil, fmt.Errorf("check: register op at index %d: %w", op.Inv, err)
		}
		in := regInput{f: op.F, v: rop.Value, old: rop.Old}
		var out regOutput
		ret := op.Cmp
		switch op.Type {
		case history.OK:
			nok++
			if op.F == "read" {
				out = regOutput{known: true, state: regState{present: rop.Present, v: rop.Value}}
			} else {
				out.known = true
			}
		case history.Fail:
			if op.F != "cas" || op.Error != "precondition" {
				continue // definitely had no effect
			}
			in.mustFail = true
		case history.Info:
			if op.F == "read" {
				continue // no effect, result unknown
			}
			ret = math.MaxInt64
		}
		if _, ok := byKey[rop.Key]; !ok {
			keys = append(keys, rop.Key)
			clients[rop.Key] = map[int]int{}
		}
		cm := clients[rop.Key]
		cid, ok := cm[op.Process]
		if !ok {
			cid = len(cm)
			cm[op.Process] = cid
		}
		byKey[rop.Key] = append(byKey[rop.Key], porcupine.Operation{
			ClientId: cid, Input: in, Call: op.Inv, Output: out, Return: ret,
			Metadata: regMeta{key: rop.Key, inv: op.Inv, cmp: op.Cmp, typ: op.Type},
		})
	}
	res.Notes = append(res.Notes, fmt.Sprintf("%d ok ops over %d keys", nok, len(keys)))
	if nok < opts.MinOK {
		res.unknown(fmt.Sprintf("too few operations: %d ok register ops, need %d", nok, opts.MinOK))
	}
	sort.Strings(keys)
	var failed []porcupine.Operation
	for _, k := range keys {
		kops := byKey[k]
		r, info := porcupine.CheckOperationsVerbose(registerModel, kops, opts.Timeout)
		switch r {
		case porcupine.Unknown:
			res.unknown(fmt.Sprintf("linearizability search of key %s timed out after %s", k, opts.Timeout))
		case porcupine.Illegal:
			res.add(Anomaly{Type: "nonlinearizable", Key: k, Ops: opIndexes(kops), Explanation: explainIllegal(k, kops, info)})
			failed = append(failed, kops...)
		}
	}
	if len(failed) > 0 && opts.VisualizePath != "" {
		_, info := porcupine.CheckOperationsVerbose(registerModel, failed, opts.Timeout)
		if err := porcupine.VisualizePath(registerModel, info, opts.VisualizePath); err != nil {
			return nil, fmt.Errorf("check: writing the register visualisation: %w", err)
		}
		res.Notes = append(res.Notes, "visualisation of the failing keys: "+opts.VisualizePath)
	}
	return res, nil
}

func opIndexes(ops []porcupine.Operation) []int64 {
	var idx []int64
	for _, op := range ops {
		if md := op.Metadata.(regMeta); md.typ == history.OK {
			idx = append(idx, md.cmp)
		}
	}
	return idx
}

// explainIllegal describes the longest linearizable prefix porcupine found
// and the ops that could not follow it.
func explainIllegal(key string, ops []porcupine.Operation, info porcupine.LinearizationInfo) string {
	var longest []porcupine.Operation
	for _, part := range info.PartialLinearizationsOperations() {
		for _, lin := range part {
			if len(lin) > len(longest) {
				longest = lin
			}
		}
	}
	describe := func(op porcupine.Operation) string {
		md := op.Metadata.(regMeta)
		return fmt.Sprintf("%s (%s, invoked at index %d, completed at %s)",
			registerModel.DescribeOperation(op.Input, op.Output), md.typ, md.inv, fmtIndex(md.cmp))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "the %d ops on key %s have no linearization.\n", len(ops), key)
	state := registerModel.Init()
	in := map[int64]bool{}
	b.WriteString("longest linearizable prefix:\n")
	for _, op := range longest {
		_, state = registerModel.Step(state, op.Input, op.Output)
		in[op.Metadata.(regMeta).inv] = true
		fmt.Fprintf(&b, "  %s -> state %s\n", describe(op), state.(regState))
	}
	b.WriteString("ops left over (no order of them extends the prefix legally):\n")
	n := 0
	for _, op := range ops {
		if in[op.Metadata.(regMeta).inv] {
			continue
		}
		if n++; n > 4 {
			b.WriteString("  ...\n")
			break
		}
		fmt.Fprintf(&b, "  %s\n", describe(op))
	}
	return strings.TrimRight(b.String(), "\n")
}
