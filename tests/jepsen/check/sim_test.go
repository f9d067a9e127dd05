package check

import (
	"encoding/json"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"pgregory.net/rapid"

	"github.com/meridiandb/meridian/tests/jepsen/history"
)

// refStore is an in-memory, strictly serial reference implementation of the
// KV API the workloads use: every operation runs atomically under one mutex,
// at some instant between its invocation and its completion. Any history it
// produces is strictly serializable and linearizable, so every checker must
// find it valid; a finding here is a false positive of the checker.
type refStore struct {
	mu    sync.Mutex
	ts    int64
	lists map[string][]int64
	regs  map[string]int64
	bank  map[string]int64
	set   map[int64]bool
	// staleReads, when set, makes some list-append reads return an old
	// prefix (lengths snapshotted every 16 txns): a deliberately broken
	// store, to exercise the checkers on anomalous histories at scale.
	staleReads func() bool
	snap       map[string]int
}

var bankAccounts = []string{"0", "1", "2", "3"}

const bankTotal = 40

func newRefStore() *refStore {
	s := &refStore{lists: map[string][]int64{}, regs: map[string]int64{}, bank: map[string]int64{}, set: map[int64]bool{}}
	for _, a := range bankAccounts {
		s.bank[a] = bankTotal / int64(len(bankAccounts))
	}
	return s
}

// recorder allocates indexes under one mutex, as the harness does.
type recorder struct {
	mu  sync.Mutex
	evs []history.Event
}

func (r *recorder) record(ev history.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev.Index = int64(len(r.evs))
	ev.TimeNS = ev.Index
	r.evs = append(r.evs, ev)
}

// planned is one client operation decided before the clients start (rapid
// draws are not goroutine-safe). outcome: 0 ok, 1 fail (not applied),
// 2 info and applied, 3 info and not applied.
type planned struct {
	workload string
	f        string
	keys     []int // list-append: key per micro-op; register: key
	appendOp []bool
	from, to int
	amount   int64
	outcome  int
}

type simConfig struct {
	clients [][]planned
	nkeys   int
}

func drawSim(t *rapid.T) simConfig { return drawSimSized(t, 1, 1) }

func drawSimSized(t *rapid.T, minClients, minOps int) simConfig {
	nclients := rapid.IntRange(minClients, 5).Draw(t, "clients")
	nkeys := rapid.IntRange(1, 4).Draw(t, "keys")
	faulty := rapid.Bool().Draw(t, "faulty")
	cfg := simConfig{nkeys: nkeys}
	for c := 0; c < nclients; c++ {
		n := rapid.IntRange(minOps, 12).Draw(t, "ops")
		var ops []planned
		for i := 0; i < n; i++ {
			p := planned{}
			if faulty {
				p.outcome = rapid.IntRange(0, 6).Draw(t, "outcome") % 4 // ok twice as likely
			}
			switch rapid.IntRange(0, 5).Draw(t, "workload") {
			case 0, 1, 2:
				p.workload, p.f = history.ListAppend, "txn"
				m := rapid.IntRange(1, 4).Draw(t, "mops")
				for j := 0; j < m; j++ {
					p.keys = append(p.keys, rapid.IntRange(0, nkeys-1).Draw(t, "key"))
					p.appendOp = append(p.appendOp, rapid.Bool().Draw(t, "append"))
				}
			case 3:
				p.workload = history.Register
				p.f = rapid.SampledFrom([]string{"read", "write", "cas"}).Draw(t, "f")
				p.keys = []int{rapid.IntRange(0, nkeys-1).Draw(t, "key")}
			case 4:
				p.workload = history.Bank
				p.f = rapid.SampledFrom([]string{"read", "transfer"}).Draw(t, "f")
				p.from = rapid.IntRange(0, len(bankAccounts)-1).Draw(t, "from")
				p.to = (p.from + rapid.IntRange(1, len(bankAccounts)-1).Draw(t, "to")) % len(bankAccounts)
				p.amount = int64(rapid.IntRange(1, 5).Draw(t, "amount"))
			case 5:
				p.workload = history.Set
				p.f = rapid.SampledFrom([]string{"read", "add"}).Draw(t, "f")
			}
			ops = append(ops, p)
		}
		cfg.clients = append(cfg.clients, ops)
	}
	return cfg
}

// runSim runs the planned clients concurrently against a refStore, then a
// final client reads everything, and returns the recorded history.
func runSim(cfg simConfig) []history.Event {
	s := newRefStore()
	rec := &recorder{}
	var counter atomic.Int64
	var wg sync.WaitGroup
	for c, plan := range cfg.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			proc := c
			lastSeen := map[int]int64{}
			for _, p := range plan {
				if s.run(rec, proc, p, &counter, lastSeen) {
					proc += len(cfg.clients) // a new process after info
				}
			}
		}()
	}
	wg.Wait()
	final := 10_000
	var keys []int
	for k := 0; k < cfg.nkeys; k++ {
		keys = append(keys, k)
	}
	s.run(rec, final, planned{workload: history.ListAppend, f: "txn", keys: keys, appendOp: make([]bool, len(keys))}, &counter, nil)
	for _, k := range keys {
		s.run(rec, final, planned{workload: history.Register, f: "read", keys: []int{k}}, &counter, nil)
	}
	s.run(rec, final, planned{workload: history.Bank, f: "read"}, &counter, nil)
	s.run(rec, final, planned{workload: history.Set, f: "read"}, &counter, nil)
	return rec.evs
}

func keyName(wl string, k int) string { return fmt.Sprintf("%s/%d", wl, k) }

// run performs one op; it reports whether it ended in info.
func (s *refStore) run(rec *recorder, proc int, p planned, counter *atomic.Int64, lastSeen map[int]int64) bool {
	ev := history.Event{Process: proc, Workload: p.workload, F: p.f}
	// Build the invocation.
	var mops []history.MOp
	var regKey string
	var regVal, regOld int64
	var addVal int64
	switch p.workload {
	case history.ListAppend:
		for i, k := range p.keys {
			m := history.MOp{F: history.ReadF, Key: keyName("la", k)}
			if p.appendOp[i] {
				m = history.MOp{F: history.AppendF, Key: m.Key, Val: counter.Add(1)}
			}
			mops = append(mops, m)
		}
		ev.Value = mustJSON(mops)
	case history.Register:
		regKey = keyName("reg", p.keys[0])
		regVal = counter.Add(1)
		switch p.f {
		case "read":
			ev.Value = mustJSON([]any{regKey, nil})
		case "write":
			ev.Value = mustJSON([]any{regKey, regVal})
		case "cas":
			regOld = lastSeen[p.keys[0]]
			ev.Value = mustJSON([]any{regKey, []int64{regOld, regVal}})
		}
	case history.Bank:
		if p.f == "transfer" {
			ev.Value = mustJSON(history.Transfer{From: p.from, To: p.to, Amount: p.amount})
		}
	case history.Set:
		if p.f == "add" {
			addVal = counter.Add(1)
			ev.Value = mustJSON(addVal)
		}
	}
	inv := ev
	inv.Type = history.Invoke
	rec.record(inv)
	runtime.Gosched()

	apply := p.outcome == 0 || p.outcome == 2
	done := ev
	done.Type = history.OK
	switch p.outcome {
	case 1:
		done.Type, done.Error = history.Fail, "aborted"
	case 2, 3:
		done.Type, done.Error = history.Info, "timeout"
	}
	s.mu.Lock()
	if apply {
		switch p.workload {
		case history.ListAppend:
			s.ts++
			writes := false
			out := make([]history.MOp, len(mops))
			for i, m := range mops {
				out[i] = m
				if m.F == history.AppendF {
					s.lists[m.Key] = append(s.lists[m.Key], m.Val)
					writes = true
				} else {
					cur := s.lists[m.Key]
					if s.staleReads != nil && s.staleReads() {
						cur = cur[:min(len(cur), s.snap[m.Key])]
					}
					out[i].Read = append([]int64{}, cur...)
					out[i].HasRead = true
				}
			}
			if s.staleReads != nil && s.ts%16 == 0 {
				if s.snap == nil {
					s.snap = map[string]int{}
				}
				for k, l := range s.lists {
					s.snap[k] = len(l)
				}
			}
			ts := history.TS{Wall: s.ts * 1000, Logical: int32(s.ts % 3)}.String()
			if writes {
				done.CommitTS = ts
			} else {
				done.ReadTS = ts
			}
			if done.Type == history.OK {
				done.Value = mustJSON(out)
			}
		case history.Register:
			cur, present := s.regs[regKey]
			switch p.f {
			case "read":
				if present {
					done.Value = mustJSON([]any{regKey, cur})
					if lastSeen != nil {
						lastSeen[p.keys[0]] = cur
					}
				} else {
					done.Value = mustJSON([]any{regKey, nil})
				}
			case "write":
				s.regs[regKey] = regVal
			case "cas":
				if !present || cur != regOld {
					if done.Type == history.OK {
						done.Type, done.Error = history.Fail, "precondition"
					}
				} else {
					s.regs[regKey] = regVal
				}
			}
		case history.Bank:
			if p.f == "read" {
				done.Value = mustJSON(s.bank)
			} else {
				from, to := bankAccounts[p.from], bankAccounts[p.to]
				if s.bank[from] < p.amount {
					if done.Type == history.OK {
						done.Type, done.Error = history.Fail, "insufficient"
					}
				} else {
					s.bank[from] -= p.amount
					s.bank[to] += p.amount
				}
			}
		case history.Set:
			if p.f == "read" {
				var xs []int64
				for x := range s.set {
					xs = append(xs, x)
				}
				sort.Slice(xs, func(i, j int) bool { return xs[i] < xs[j] })
				done.Value = mustJSON(append([]int64{}, xs...))
			} else {
				s.set[addVal] = true
			}
		}
	}
	s.mu.Unlock()
	if done.Type == history.Fail || done.Type == history.Info {
		done.Value = inv.Value // what was attempted
	}
	runtime.Gosched()
	rec.record(done)
	return done.Type == history.Info
}

func simTest() history.Test {
	return history.Test{
		Workloads: []string{history.ListAppend, history.Register, history.Bank, history.Set},
		Bank:      &history.BankParams{Accounts: bankAccounts, Total: bankTotal, FinalRead: true},
		Set:       &history.SetParams{FinalRead: true},
	}
}

// TestReferenceHistoriesValid: histories of the serial reference store,
// with concurrent clients and failed / unknown outcomes, always check valid
// under the strictest model. Thousands of them.
func TestReferenceHistoriesValid(t *testing.T) {
	rounds := 20
	if testing.Short() {
		rounds = 2
	}
	var histories, concurrent, infos int
	for i := 0; i < rounds; i++ {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			rapid.Check(t, func(rt *rapid.T) {
				evs := runSim(drawSim(rt))
				histories++
				open := 0
				overlapped, info := false, false
				for _, e := range evs {
					if e.Type == history.Invoke {
						if open++; open > 1 {
							overlapped = true
						}
					} else {
						open--
						info = info || e.Type == history.Info
					}
				}
				if overlapped {
					concurrent++
				}
				if info {
					infos++
				}
				s, err := CheckRun(&history.Run{Test: simTest(), Events: evs}, Options{})
				if err != nil {
					rt.Fatal(err)
				}
				if s.Valid != ValidTrue {
					raw, _ := json.Marshal(evs)
					rt.Fatalf("reference history judged %s:\n%s\nhistory: %s", s.Valid, s, raw)
				}
			})
		})
	}
	t.Logf("%d histories, %d with concurrent operations, %d with info outcomes", histories, concurrent, infos)
	if concurrent < histories/10 || infos == 0 {
		t.Fatalf("the generator should exercise concurrency and unknown outcomes: %d/%d concurrent, %d with info",
			concurrent, histories, infos)
	}
}
