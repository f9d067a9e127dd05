package raftgroup_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridiandb/meridian/internal/gctune"
	"github.com/meridiandb/meridian/raftgroup"
	"github.com/meridiandb/meridian/raftgroup/grouptest"
)

// BenchmarkPropose measures proposals through a 3-node cluster on loopback
// gRPC with Pebble on disk (real fsync), 128-byte commands, 64 proposers in
// total, against 1 group and spread over 100 groups. Applying a command
// writes its effect and the group's applied state to Pebble (grouptest's KV
// without its test-only apply counts). It reports proposals/s,
// p50/p99 commit latency, fsyncs/s, proposals per fsync, raft messages
// sent per proposal and the process's CPU time per proposal.
//
// Spread over 100 groups, proposer p proposes to group p%100+1 (so 64 of the
// 100 are busy, each with one proposal at a time); with "random", each
// proposal goes to a group chosen at random, as a client's writes go to
// whichever range holds their key: every group is busy, some with two
// proposals at once. With 256 proposers, pinned the same way, a group has
// two or three proposals in flight: what the cluster does when latency is
// not what limits it. Leaders are spread evenly over the nodes, so a run
// does not depend on where elections put them (one node leading 27 of the
// 64 busy groups, another 15, showed in p99). The garbage collector is set
// as a node sets it (internal/gctune).
func BenchmarkPropose(b *testing.B) {
	b.Run("groups=1/proposers=64", func(b *testing.B) { benchPropose(b, 1, 64, false) })
	b.Run("groups=100/proposers=64", func(b *testing.B) { benchPropose(b, 100, 64, false) })
	b.Run("groups=100/proposers=64/random", func(b *testing.B) { benchPropose(b, 100, 64, true) })
	b.Run("groups=100/proposers=256", func(b *testing.B) { benchPropose(b, 100, 256, false) })
}

func benchPropose(b *testing.B, groups, proposers int, random bool) {
	// The garbage collector as a node sets it.
	prevPercent, prevLimit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	debug.SetGCPercent(prevPercent)
	gctune.Apply()
	b.Cleanup(func() {
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	})
	c := grouptest.NewCluster(b, grouptest.Options{Nodes: 3, Groups: groups, GRPC: true, Dir: b.TempDir(), TickInterval: 50 * time.Millisecond, NoApplyCounts: true})
	leaders := make([]atomic.Uint64, groups+1)
	for g := 1; g <= groups; g++ {
		c.WaitLeader(uint64(g), 30*time.Second)
		// Group g is led by node (g-1)%3+1, as a rebalancer would spread
		// leaders, rather than wherever its election happened to put it.
		lead := uint64((g-1)%3 + 1)
		c.MoveLeader(uint64(g), lead, 30*time.Second)
		leaders[g].Store(lead)
	}
	// 128-byte command: "put kNNNN " + padding.
	// Built up front, so the proposers' CPU is not counted as raft's.
	var cmds [1000][]byte
	for i := range cmds {
		s := fmt.Sprintf("put k%d ", i)
		cmds[i] = []byte(s + strings.Repeat("v", 128-len(s)))
	}
	var before raftgroup.Metrics
	for _, n := range c.Nodes() {
		m := n.Host.Metrics()
		before.Fsyncs += m.Fsyncs
		before.MessagesSent += m.MessagesSent
	}
	var next atomic.Int64
	var mu sync.Mutex
	var lats []time.Duration
	var failed atomic.Int64
	cpu0 := cpuTime(b)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for p := 0; p < proposers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			rng := rand.New(rand.NewPCG(uint64(p), 1))
			g := p%groups + 1
			for {
				i := int(next.Add(1))
				if i > b.N {
					break
				}
				if random {
					g = rng.IntN(groups) + 1
				}
				t0 := time.Now()
				l := leaders[g].Load()
				_, err := c.Node(l).Host.Propose(context.Background(), uint64(g), cmds[i%len(cmds)])
				if err != nil {
					failed.Add(1)
					if nl := c.Leader(uint64(g)); nl != 0 {
						leaders[g].Store(nl)
					}
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	var after raftgroup.Metrics
	for _, n := range c.Nodes() {
		m := n.Host.Metrics()
		after.Fsyncs += m.Fsyncs
		after.MessagesSent += m.MessagesSent
	}
	slices.Sort(lats)
	if len(lats) == 0 {
		b.Fatal("no proposal succeeded")
	}
	fsyncs := float64(after.Fsyncs - before.Fsyncs)
	b.ReportMetric(float64(len(lats))/elapsed.Seconds(), "proposals/s")
	b.ReportMetric(float64(lats[len(lats)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(fsyncs/elapsed.Seconds(), "fsyncs/s")
	if fsyncs > 0 {
		// Every proposal is persisted on 3 nodes; count per node-fsync.
		b.ReportMetric(float64(len(lats))*3/fsyncs, "proposals/fsync")
	}
	b.ReportMetric(float64(failed.Load()), "failed")
	b.ReportMetric(float64(after.MessagesSent-before.MessagesSent)/float64(len(lats)), "msgs/proposal")
	// CPU (user+system, the whole process: all three nodes) per proposal,
	// less sensitive than the rates to other load on a shared machine.
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(lats)), "cpu-us/proposal")
}
