package ranges_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
	"github.com/meridiandb/meridian/mvcc"
	"github.com/meridiandb/meridian/raftgroup"
	"github.com/meridiandb/meridian/ranges"
	"github.com/meridiandb/meridian/ranges/rangetest"
)

func split(t *testing.T, c *rangetest.Cluster, key []byte) (*api.RangeDescriptor, *api.RangeDescriptor) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for {
		d, err := c.RangeFor(key)
		if err != nil {
			t.Fatal(err)
		}
		lh := leaseholder(t, c, key)
		if lh != 0 {
			r, err := c.Node(lh).Store.Replica(keys.RangeID(d.GetRangeId()))
			if err == nil {
				left, right, err := r.AdminSplit(ctx, key)
				if err == nil {
					return left, right
				}
				var nlh *api.NotLeaseholderError
				var rkm *api.RangeKeyMismatchError
				if !errors.As(err, &nlh) && !errors.As(err, &rkm) {
					t.Fatalf("split at %s: %v", keys.Pretty(key), err)
				}
			}
		} else {
			put(t, c, string(key[1:])+"~lease", "x") // give the range a lease
		}
		if ctx.Err() != nil {
			t.Fatalf("split at %s: %v", keys.Pretty(key), ctx.Err())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSplitKeepsDataAndDividesStats(t *testing.T) {
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3})
	for i := 0; i < 50; i++ {
		put(t, c, fmt.Sprintf("k%02d", i), fmt.Sprint(i))
	}
	before, _ := c.RangeFor(uk("k00"))
	left, right := split(t, c, uk("k25"))
	if left.GetRangeId() != before.GetRangeId() || string(right.GetStartKey()) != string(uk("k25")) || string(left.GetEndKey()) != string(uk("k25")) {
		t.Fatalf("split gave %v | %v", left, right)
	}
	if left.GetGeneration() <= before.GetGeneration() || right.GetGeneration() <= before.GetGeneration() {
		t.Fatal("the split did not raise the generation")
	}
	// Every key still readable, from the range that now holds it.
	for i := 0; i < 50; i++ {
		if v, _ := get(t, c, fmt.Sprintf("k%02d", i)); v != fmt.Sprint(i) {
			t.Fatalf("k%02d = %q after the split", i, v)
		}
	}
	// Stats divide exactly: each side's stats equal a recount of its span.
	for _, n := range c.Nodes() {
		for _, d := range []*api.RangeDescriptor{left, right} {
			r, err := n.Store.Replica(keys.RangeID(d.GetRangeId()))
			if err != nil {
				t.Fatalf("node %d lacks range %d: %v", n.ID, d.GetRangeId(), err)
			}
			c.WaitFor(waitTimeout, "the split to apply", func() bool { return string(r.Desc().GetEndKey()) == string(d.GetEndKey()) })
			st, err := n.Store.Admin().RangeStatus(context.Background(), &api.RangeStatusRequest{RangeId: d.GetRangeId()})
			if err != nil {
				t.Fatal(err)
			}
			want, err := mvcc.ComputeStats(n.Engine.DB(), d.GetStartKey(), d.GetEndKey())
			if err != nil {
				t.Fatal(err)
			}
			if got := mvcc.StatsFromProto(st.GetRanges()[0].GetStats()); got != want {
				t.Fatalf("node %d range %d: stats %v, recount %v", n.ID, d.GetRangeId(), got, want)
			}
		}
	}
	// Writes continue on both sides, and the cluster (tiling, meta,
	// identical replicas) is consistent.
	put(t, c, "k10", "left")
	put(t, c, "k40", "right")
	c.WaitConsistent(waitTimeout)
}

// Splits while 16 clients write lose nothing.
func TestSplitsUnderConcurrentWrites(t *testing.T) {
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3})
	var acked sync.Map
	var n atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				k := fmt.Sprintf("w%04d", n.Add(1)%1000)
				rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := c.Send(rctx, batch(&api.PutRequest{Key: uk(k), Value: []byte(k)}))
				rcancel()
				if err == nil {
					acked.Store(k, true)
				}
			}
		}()
	}
	for i := 1; i < 8; i++ {
		split(t, c, uk(fmt.Sprintf("w%04d", i*125)))
	}
	cancel()
	wg.Wait()
	count := 0
	acked.Range(func(k, _ any) bool {
		count++
		if v, ok := get(t, c, k.(string)); !ok || v != k.(string) {
			t.Fatalf("acknowledged %s reads %q, %v", k, v, ok)
		}
		return true
	})
	if count == 0 {
		t.Fatal("no write succeeded during the splits")
	}
	t.Logf("7 splits under load, %d distinct keys acknowledged and readable", count)
	c.WaitConsistent(waitTimeout)
}

// A crash between a split applying and its meta update leaves meta stale;
// the meta-repair queue rewrites it from the range-local descriptors.
func TestMetaRepairedAfterSplitWithoutMetaUpdate(t *testing.T) {
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3, Knobs: ranges.TestingKnobs{SkipMetaUpdateAfterSplit: true}, QueueInterval: time.Hour})
	put(t, c, "a", "1")
	left, _ := split(t, c, uk("m"))
	// Meta has no entry for the new left-hand range yet.
	n := c.Node(1)
	if _, ok, err := mvcc.Get(n.Engine.DB(), keys.MetaKey(left.GetEndKey()), hlc.MaxTimestamp, mvcc.ReadOptions{}); err != nil || ok {
		t.Fatalf("meta for the left range should be missing before repair (ok=%v, err=%v)", ok, err)
	}
	if err := c.CheckConsistency(); err == nil {
		t.Fatal("the consistency checker missed stale meta")
	}
	for _, node := range c.Nodes() {
		node.Store.RunQueuesOnce(context.Background())
	}
	c.WaitConsistent(waitTimeout)
	var repaired int64
	for _, node := range c.Nodes() {
		repaired += node.Store.Metrics().MetaRepairs
	}
	if repaired == 0 {
		t.Fatal("meta became consistent without the repair queue")
	}
}

// After a split every node restarts (a crash of the whole cluster after the
// split applied): both ranges come back from their range-local
// descriptors, with their data, and keep serving.
func TestSplitSurvivesRestart(t *testing.T) {
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3})
	for i := 0; i < 20; i++ {
		put(t, c, fmt.Sprintf("r%02d", i), fmt.Sprint(i))
	}
	left, right := split(t, c, uk("r10"))
	c.WaitConsistent(waitTimeout)
	for _, n := range c.Nodes() {
		c.Stop(n.ID)
	}
	for _, n := range c.Nodes() {
		c.Restart(n.ID)
	}
	for _, d := range []*api.RangeDescriptor{left, right} {
		for _, n := range c.Nodes() {
			r, err := n.Store.Replica(keys.RangeID(d.GetRangeId()))
			if err != nil || string(r.Desc().GetEndKey()) != string(d.GetEndKey()) {
				t.Fatalf("node %d after restart: range %d %v (%v)", n.ID, d.GetRangeId(), err, r)
			}
		}
	}
	for i := 0; i < 20; i++ {
		if v, _ := get(t, c, fmt.Sprintf("r%02d", i)); v != fmt.Sprint(i) {
			t.Fatalf("r%02d = %q after restart", i, v)
		}
	}
	put(t, c, "r05", "left-after")
	put(t, c, "r15", "right-after")
	c.WaitConsistent(waitTimeout)
}

// Every node crashes (losing what it had not synced) at each step of a
// split: just after it applied — before meta was updated — and after meta
// was updated. After a restart both ranges, the data and (through the
// repair queue) meta are back, and the cluster is consistent.
func TestSplitSurvivesCrashAtEachStep(t *testing.T) {
	for _, step := range []string{"before-meta", "after-meta"} {
		t.Run(step, func(t *testing.T) {
			c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3, Knobs: ranges.TestingKnobs{SkipMetaUpdateAfterSplit: step == "before-meta"}})
			for i := 0; i < 20; i++ {
				put(t, c, fmt.Sprintf("c%02d", i), fmt.Sprint(i))
			}
			left, right := split(t, c, uk("c10"))
			for _, n := range c.Nodes() {
				c.Crash(n.ID)
			}
			for _, n := range c.Nodes() {
				c.Restart(n.ID)
			}
			for i := 0; i < 20; i++ {
				if v, _ := get(t, c, fmt.Sprintf("c%02d", i)); v != fmt.Sprint(i) {
					t.Fatalf("c%02d = %q after the crash", i, v)
				}
			}
			// Every replica replays its log (or gets a snapshot) back to both
			// ranges.
			c.WaitFor(waitTimeout, "every node to hold both ranges again", func() bool {
				for _, n := range c.Nodes() {
					for _, d := range []*api.RangeDescriptor{left, right} {
						r, err := n.Store.Replica(keys.RangeID(d.GetRangeId()))
						if err != nil || string(r.Desc().GetEndKey()) != string(d.GetEndKey()) {
							return false
						}
					}
				}
				return true
			})
			put(t, c, "c05", "after")
			put(t, c, "c15", "after")
			c.WaitConsistent(waitTimeout)
		})
	}
}

// Splits while the lease (and with it Raft leadership) keeps moving: every
// split either happens or is refused as not-leaseholder and retried, and
// the ranges, meta and data stay consistent.
func TestSplitsDuringLeaseAndLeaderChanges(t *testing.T) {
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3})
	for i := 0; i < 40; i++ {
		put(t, c, fmt.Sprintf("m%02d", i), fmt.Sprint(i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var moves atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			for _, n := range c.Nodes() {
				for _, r := range n.Store.Replicas() {
					l := r.Lease()
					if l.GetReplica().GetNodeId() != n.ID || len(r.Desc().GetEndKey()) == 0 || r.Desc().GetRangeId() == 1 {
						continue
					}
					if r.TransferLease(ctx, l.GetReplica().GetReplicaId()%3+1) == nil {
						moves.Add(1)
					}
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	for i := 5; i < 40; i += 5 {
		split(t, c, uk(fmt.Sprintf("m%02d", i)))
	}
	cancel()
	wg.Wait()
	for i := 0; i < 40; i++ {
		if v, _ := get(t, c, fmt.Sprintf("m%02d", i)); v != fmt.Sprint(i) {
			t.Fatalf("m%02d = %q", i, v)
		}
	}
	c.WaitConsistent(waitTimeout)
	t.Logf("7 splits with %d lease moves around them", moves.Load())
}

// snapshotStream encodes key/value pairs as a range snapshot stream
// (uvarint length-prefixed key, then value).
func snapshotStream(pairs ...[]byte) []byte {
	var out []byte
	for _, p := range pairs {
		out = binary.AppendUvarint(out, uint64(len(p)))
		out = append(out, p...)
	}
	return out
}

// A replica declines a snapshot whose span overlaps another replica on its
// store (its left-hand range has not applied the split yet and could still
// write there), and accepts one that fits.
func TestSnapshotOverlappingAnotherReplicaIsDeclined(t *testing.T) {
	c := rangetest.NewCluster(t, rangetest.Options{Nodes: 3})
	put(t, c, "a", "1")
	_, right := split(t, c, uk("m"))
	var r *ranges.Replica
	c.WaitFor(waitTimeout, "node 1 to hold the right-hand range", func() bool {
		var err error
		r, err = c.Node(1).Store.Replica(keys.RangeID(right.GetRangeId()))
		return err == nil && len(r.Desc().GetEndKey()) > 0
	})
	descKey := keys.EncodeEngineKey(keys.RangeDescriptorKey(keys.RangeID(right.GetRangeId())), hlc.Timestamp{})
	stream := func(start []byte) []byte {
		d := proto.Clone(right).(*api.RangeDescriptor)
		d.StartKey = start
		v, err := proto.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return snapshotStream(descKey, v)
	}
	if r.AcceptSnapshot(right.GetRangeId(), raftgroup.SnapshotMeta{}, stream(uk("c"))) {
		t.Fatal("accepted a snapshot overlapping the left-hand range")
	}
	if !r.AcceptSnapshot(right.GetRangeId(), raftgroup.SnapshotMeta{}, stream(uk("m"))) {
		t.Fatal("declined a snapshot that fits")
	}
	if r.AcceptSnapshot(right.GetRangeId(), raftgroup.SnapshotMeta{}, []byte{0xff}) {
		t.Fatal("accepted a corrupt snapshot")
	}
}
