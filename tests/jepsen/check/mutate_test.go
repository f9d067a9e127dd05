package check

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/meridiandb/meridian/tests/jepsen/history"
)

// simEvents indexes a recorded history: the invocation of each completion.
type simEvents struct {
	evs []history.Event
	inv map[int]int // completion position -> invocation position
}

func indexEvents(evs []history.Event) simEvents {
	s := simEvents{evs: evs, inv: map[int]int{}}
	open := map[int]int{}
	for i, e := range evs {
		if e.Type == history.Invoke {
			open[e.Process] = i
			continue
		}
		s.inv[i] = open[e.Process]
	}
	return s
}

func (s simEvents) okOf(wl, f string) []int {
	var out []int
	for i, e := range s.evs {
		if e.Type == history.OK && e.Workload == wl && e.F == f {
			out = append(out, i)
		}
	}
	return out
}

func onlyMopOn(mops []history.MOp, i int) bool {
	for j, m := range mops {
		if j != i && m.Key == mops[i].Key {
			return false
		}
	}
	return true
}

// appenders maps list-append key/value to the position of the ok
// completion that appended it.
func (s simEvents) appenders() map[string]map[int64]int {
	out := map[string]map[int64]int{}
	for _, i := range s.okOf(history.ListAppend, "txn") {
		mops, _ := history.DecodeTxn(s.evs[i].Value)
		for _, m := range mops {
			if m.F == history.AppendF {
				if out[m.Key] == nil {
					out[m.Key] = map[int64]int{}
				}
				out[m.Key][m.Val] = i
			}
		}
	}
	return out
}

type readSite struct{ ev, mop int }

// laReads lists reads (position of completion, micro-op) in ok txns that
// are the txn's only micro-op on their key.
func (s simEvents) laReads(minLen int) []readSite {
	var out []readSite
	for _, i := range s.okOf(history.ListAppend, "txn") {
		mops, _ := history.DecodeTxn(s.evs[i].Value)
		for j, m := range mops {
			if m.F == history.ReadF && len(m.Read) >= minLen && onlyMopOn(mops, j) {
				out = append(out, readSite{i, j})
			}
		}
	}
	return out
}

func (s simEvents) editRead(r readSite, edit func([]int64) []int64) {
	mops, _ := history.DecodeTxn(s.evs[r.ev].Value)
	mops[r.mop].Read = edit(slices.Clone(mops[r.mop].Read))
	s.evs[r.ev].Value = mustJSON(mops)
}

func (s simEvents) readOf(r readSite) []int64 {
	mops, _ := history.DecodeTxn(s.evs[r.ev].Value)
	return mops[r.mop].Read
}

func (s simEvents) keyOf(r readSite) string {
	mops, _ := history.DecodeTxn(s.evs[r.ev].Value)
	return mops[r.mop].Key
}

// mutation turns a valid history into one that must show one of expect.
type mutation struct {
	name   string
	expect []string // any of
	apply  func(t *rapid.T, s simEvents) bool
}

var mutations = []mutation{
	{name: "drop-last-after-writer", expect: []string{"G-single-realtime", "G-single-process", "G-single", "incompatible-order"},
		apply: func(t *rapid.T, s simEvents) bool {
			w := s.appenders()
			var cands []readSite
			for _, r := range s.laReads(1) {
				rd, k := s.readOf(r), s.keyOf(r)
				last, ok := w[k][rd[len(rd)-1]]
				if !ok || last == r.ev || last >= s.inv[r.ev] {
					continue // the writer must complete before the read starts
				}
				if len(rd) >= 2 {
					if prev, ok := w[k][rd[len(rd)-2]]; ok && prev == last {
						continue // that would be an intermediate read (G1b) instead
					}
				}
				cands = append(cands, r)
			}
			if len(cands) == 0 {
				return false
			}
			s.editRead(rapid.SampledFrom(cands).Draw(t, "read"), func(xs []int64) []int64 { return xs[:len(xs)-1] })
			return true
		}},
	{name: "swap-elements", expect: []string{"incompatible-order"},
		apply: func(t *rapid.T, s simEvents) bool {
			type cand struct {
				r readSite
				i int
			}
			var cands []cand
			all := s.laReads(1)
			for _, r := range s.laReads(2) {
				k, n := s.keyOf(r), len(s.readOf(r))
				for i := 0; i+1 < n; i++ {
					for _, o := range all {
						if o.ev != r.ev && s.keyOf(o) == k && len(s.readOf(o)) > i {
							cands = append(cands, cand{r, i})
							break
						}
					}
				}
			}
			if len(cands) == 0 {
				return false
			}
			c := rapid.SampledFrom(cands).Draw(t, "read")
			s.editRead(c.r, func(xs []int64) []int64 { xs[c.i], xs[c.i+1] = xs[c.i+1], xs[c.i]; return xs })
			return true
		}},
	{name: "duplicate-element", expect: []string{"duplicate-elements"},
		apply: func(t *rapid.T, s simEvents) bool {
			cands := s.laReads(1)
			if len(cands) == 0 {
				return false
			}
			s.editRead(rapid.SampledFrom(cands).Draw(t, "read"), func(xs []int64) []int64 { return slices.Insert(xs, 1, xs[0]) })
			return true
		}},
	{name: "flip-appender-to-fail", expect: []string{"G1a"},
		apply: func(t *rapid.T, s simEvents) bool {
			w := s.appenders()
			seen := map[int]bool{}
			var cands []int
			for _, r := range s.laReads(1) {
				for _, e := range s.readOf(r) {
					if a, ok := w[s.keyOf(r)][e]; ok && a != r.ev && !seen[a] {
						seen[a] = true
						cands = append(cands, a)
					}
				}
			}
			if len(cands) == 0 {
				return false
			}
			slices.Sort(cands)
			i := rapid.SampledFrom(cands).Draw(t, "appender")
			s.evs[i].Type, s.evs[i].Error = history.Fail, "aborted"
			return true
		}},
	{name: "stale-register-read", expect: []string{"nonlinearizable"},
		apply: func(t *rapid.T, s simEvents) bool {
			type write struct {
				inv, cmp int
				key      string
				val      int64
			}
			var writes []write
			for i, e := range s.evs {
				if e.Type != history.OK || e.Workload != history.Register || e.F == "read" {
					continue
				}
				op, _ := history.DecodeRegister(e.F, e.Value)
				writes = append(writes, write{s.inv[i], i, op.Key, op.Value})
			}
			type cand struct {
				read int
				old  int64
			}
			var cands []cand
			for _, r := range s.okOf(history.Register, "read") {
				op, _ := history.DecodeRegister("read", s.evs[r].Value)
				for _, w1 := range writes {
					if w1.key != op.Key || w1.cmp >= s.inv[r] {
						continue
					}
					for _, w0 := range writes {
						if w0.key == op.Key && w0.cmp < w1.inv {
							cands = append(cands, cand{r, w0.val})
						}
					}
				}
			}
			if len(cands) == 0 {
				return false
			}
			c := rapid.SampledFrom(cands).Draw(t, "read")
			op, _ := history.DecodeRegister("read", s.evs[c.read].Value)
			s.evs[c.read].Value = mustJSON([]any{op.Key, c.old})
			return true
		}},
	{name: "remove-acked-element", expect: []string{"lost"},
		apply: func(t *rapid.T, s simEvents) bool {
			reads := s.okOf(history.Set, "read")
			var cands []int
			for _, a := range s.okOf(history.Set, "add") {
				for _, r := range reads {
					if s.inv[r] > a {
						cands = append(cands, a)
						break
					}
				}
			}
			if len(cands) == 0 {
				return false
			}
			a := rapid.SampledFrom(cands).Draw(t, "add")
			x, _ := history.DecodeInt(s.evs[a].Value)
			for _, r := range reads {
				if s.inv[r] > a {
					xs, _ := history.DecodeInts(s.evs[r].Value)
					s.evs[r].Value = mustJSON(slices.DeleteFunc(xs, func(y int64) bool { return y == x }))
				}
			}
			return true
		}},
	{name: "bank-balance-plus-one", expect: []string{"wrong-total"},
		apply: func(t *rapid.T, s simEvents) bool {
			reads := s.okOf(history.Bank, "read")
			r := rapid.SampledFrom(reads).Draw(t, "read")
			var bal map[string]int64
			if err := json.Unmarshal(s.evs[r].Value, &bal); err != nil {
				t.Fatal(err)
			}
			bal[rapid.SampledFrom(bankAccounts).Draw(t, "account")]++
			s.evs[r].Value = mustJSON(bal)
			return true
		}},
}

// TestMutations: each transformation of a valid reference history must be
// flagged with its named anomaly.
func TestMutations(t *testing.T) {
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			rapid.Check(t, func(rt *rapid.T) {
				evs := runSim(drawSimSized(rt, 2, 4))
				s := indexEvents(slices.Clone(evs))
				if !m.apply(rt, s) {
					rt.Skip("no site for this mutation")
				}
				sum, err := CheckRun(&history.Run{Test: simTest(), Events: s.evs}, Options{})
				if err != nil {
					rt.Fatal(err)
				}
				got := sum.AnomalyTypes()
				if sum.Valid != ValidFalse || !slices.ContainsFunc(got, func(a string) bool { return slices.Contains(m.expect, a) }) {
					rt.Fatalf("mutation %s: verdict %s with %v, want one of %v\n%s", m.name, sum.Valid, got, m.expect, sum)
				}
			})
		})
	}
}

func TestMutationsCoverIssue(t *testing.T) {
	var names []string
	for _, m := range mutations {
		names = append(names, m.name)
	}
	if len(names) != 7 {
		t.Fatalf("the issue lists 7 mutations, have %d: %s", len(names), strings.Join(names, ", "))
	}
}
