package client

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"pgregory.net/rapid"

	"github.com/meridiandb/meridian/api"
)

// The transcript in testdata/rangecache walks a RangeCache through
// inserts (splits, merges, stale descriptors), evictions, lease updates and
// lookups. Keys are plain strings; the cache treats keys as opaque bytes.
// Regenerate with `go test ./client -run TestRangeCacheDataDriven -rewrite`
// and review the diff.
//
//	insert r=<id> span=(<start>,<end>) gen=<n> [nodes=(<n>,<n>...)]
//	    insert a descriptor (replicas on the nodes, replica IDs 1..), then
//	    print the cache
//	evict r=<id> span=(<start>,<end>) gen=<n>
//	    evict that descriptor, then print the cache
//	lease r=<id> span=(<start>,<end>) node=<n> seq=<n>
//	    record the replica on node as leaseholder, then print the cache
//	get key=<k> [reverse]
//	    the cached range holding k (reverse: start < k <= end), or "miss"
func TestRangeCacheDataDriven(t *testing.T) {
	c := NewRangeCache(nil)
	datadriven.RunTest(t, "testdata/rangecache", func(t *testing.T, td *datadriven.TestData) string {
		switch td.Cmd {
		case "insert":
			c.Insert(scanDesc(t, td))
			return showCache(c)
		case "evict":
			c.Evict(scanDesc(t, td))
			return showCache(c)
		case "lease":
			d := scanDesc(t, td)
			var node uint64
			var seq int64
			td.ScanArgs(t, "node", &node)
			td.ScanArgs(t, "seq", &seq)
			c.UpdateLeaseholder(d, &api.ReplicaDescriptor{NodeId: node, StoreId: node, ReplicaId: node}, seq)
			return showCache(c)
		case "get":
			var k string
			td.ScanArgs(t, "key", &k)
			e, ok := c.Get([]byte(k), td.HasArg("reverse"))
			if !ok {
				return "miss\n"
			}
			return showEntry(e) + "\n"
		}
		td.Fatalf(t, "unknown command %q", td.Cmd)
		return ""
	})
}

func scanDesc(t *testing.T, td *datadriven.TestData) *api.RangeDescriptor {
	var id uint64
	var start, end string
	var gen int64
	td.ScanArgs(t, "r", &id)
	td.ScanArgs(t, "span", &start, &end)
	td.MaybeScanArgs(t, "gen", &gen)
	d := &api.RangeDescriptor{RangeId: id, StartKey: []byte(start), EndKey: []byte(end), Generation: gen}
	nodes := []uint64{1, 2, 3}
	if arg, ok := td.Arg("nodes"); ok {
		nodes = nil
		for i := range arg.Vals {
			var n uint64
			arg.Scan(t, i, &n)
			nodes = append(nodes, n)
		}
	}
	for _, n := range nodes {
		d.Replicas = append(d.Replicas, &api.ReplicaDescriptor{NodeId: n, StoreId: n, ReplicaId: n})
	}
	return d
}

func showEntry(e CacheEntry) string {
	d := e.Desc
	s := fmt.Sprintf("r%d [%s,%s) gen=%d", d.GetRangeId(), d.GetStartKey(), d.GetEndKey(), d.GetGeneration())
	if e.Leaseholder != nil {
		s += fmt.Sprintf(" lease=n%d seq=%d", e.Leaseholder.GetNodeId(), e.LeaseSeq)
	}
	return s
}

func showCache(c *RangeCache) string {
	var sb strings.Builder
	for _, e := range c.All() {
		sb.WriteString(showEntry(e))
		sb.WriteByte('\n')
	}
	if sb.Len() == 0 {
		return "(empty)\n"
	}
	return sb.String()
}

// TestRangeCacheNeverOverlaps inserts random descriptors (spans over a
// small alphabet, random generations) and evictions and checks that the
// cache's entries stay ordered and disjoint, that every Get answer holds
// its key, and that a descriptor just inserted is either cached or was
// older than something overlapping it.
func TestRangeCacheNeverOverlaps(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		c := NewRangeCache(nil)
		keyGen := rapid.SampledFrom([]string{"a", "b", "c", "d", "e", "f", "g", "h"})
		for i := range rapid.IntRange(1, 40).Draw(rt, "ops") {
			s, e := keyGen.Draw(rt, "start"), keyGen.Draw(rt, "end")
			if s >= e {
				continue
			}
			d := &api.RangeDescriptor{RangeId: uint64(rapid.IntRange(1, 5).Draw(rt, "id")), StartKey: []byte(s), EndKey: []byte(e),
				Generation: int64(rapid.IntRange(0, 4).Draw(rt, "gen"))}
			if rapid.IntRange(0, 4).Draw(rt, "op") == 0 {
				c.Evict(d)
			} else {
				newer := false
				for _, x := range c.All() {
					if bytes.Compare(x.Desc.GetStartKey(), d.GetEndKey()) < 0 && bytes.Compare(d.GetStartKey(), x.Desc.GetEndKey()) < 0 &&
						x.Desc.GetGeneration() > d.GetGeneration() {
						newer = true
					}
				}
				c.Insert(d)
				got, ok := c.Get(d.GetStartKey(), false)
				if !newer && (!ok || got.Desc != d) {
					rt.Fatalf("op %d: inserted %v, cache has %v", i, d, got.Desc)
				}
				if newer && ok && got.Desc == d {
					rt.Fatalf("op %d: stale %v replaced a newer descriptor", i, d)
				}
			}
			all := c.All()
			for j := 1; j < len(all); j++ {
				if bytes.Compare(all[j-1].Desc.GetEndKey(), all[j].Desc.GetStartKey()) > 0 {
					rt.Fatalf("overlap: %s and %s", showEntry(all[j-1]), showEntry(all[j]))
				}
			}
			for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
				for _, rev := range []bool{false, true} {
					if e, ok := c.Get([]byte(k), rev); ok && !containsFor(e.Desc, []byte(k), rev) {
						rt.Fatalf("Get(%q, %v) = %s", k, rev, showEntry(e))
					}
				}
			}
		}
	})
}
