package raftgroup_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/meridiandb/meridian/raftgroup/grouptest"
)

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIdleQuiesced measures what idle groups cost: 3 in-process nodes
// (in-memory network, real 100 ms ticker) whose groups have all quiesced.
// Each iteration idles one second; cpu-%-of-core is the process's CPU time
// over that time.
func BenchmarkIdleQuiesced(b *testing.B) {
	for _, groups := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("groups=%d", groups), func(b *testing.B) {
			c := grouptest.NewCluster(b, grouptest.Options{Nodes: 3, Groups: groups, TickInterval: 100 * time.Millisecond})
			c.WaitFor(5*time.Minute, "every group to quiesce everywhere", func() bool {
				for _, n := range c.Nodes() {
					for g := uint64(1); g <= uint64(groups); g++ {
						if !n.Host.Quiesced(g) {
							return false
						}
					}
				}
				return true
			})
			start, cpu0 := time.Now(), cpuTime(b)
			for b.Loop() {
				time.Sleep(time.Second)
			}
			wall, cpu := time.Since(start), cpuTime(b)-cpu0
			b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu-%-of-core")
		})
	}
}

// BenchmarkSnapshot measures snapshot throughput: a 64 MiB state machine
// snapshot sent to a new learner over loopback gRPC, written to Pebble on
// disk with fsync.
func BenchmarkSnapshot(b *testing.B) {
	const size = 64 << 20
	for b.Loop() {
		b.StopTimer()
		c := grouptest.NewCluster(b, grouptest.Options{Nodes: 3, Groups: 1, GRPC: true, Dir: b.TempDir(), TickInterval: 20 * time.Millisecond})
		l := c.WaitLeader(1, 30*time.Second)
		c.Node(l).KV.SetSnapshotPadding(size)
		id := c.AddNode()
		b.StartTimer()
		start := time.Now()
		replica := id
		cc := &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeAddLearnerNode.Enum(), NodeId: &replica}}}
		if _, err := c.Node(l).Host.ProposeConfChange(b.Context(), 1, cc); err != nil {
			b.Fatal(err)
		}
		c.WaitFor(2*time.Minute, "the learner to apply its snapshot", func() bool {
			return c.Node(id).Host.Metrics().SnapshotsApplied > 0
		})
		b.ReportMetric(float64(size)/(1<<20)/time.Since(start).Seconds(), "MB/s")
		b.StopTimer()
		c.Close()
		b.StartTimer()
	}
}
