package api

import (
	"strings"
	"testing"

	"github.com/meridiandb/meridian/hlc"
)

func testDesc() *RangeDescriptor {
	return &RangeDescriptor{
		RangeId: 7, StartKey: []byte("b"), EndKey: []byte("m"),
		Replicas: []*ReplicaDescriptor{
			{NodeId: 1, StoreId: 1, ReplicaId: 1},
			{NodeId: 2, StoreId: 2, ReplicaId: 2},
			{NodeId: 3, StoreId: 3, ReplicaId: 4, Type: ReplicaType_LEARNER},
		},
		Generation: 3, NextReplicaId: 5,
	}
}

func TestDescriptorContains(t *testing.T) {
	d := testDesc()
	for _, tc := range []struct {
		key, end string
		want     bool
	}{
		{"a", "", false},
		{"b", "", true}, // start is inclusive
		{"b\x00", "", true},
		{"lzzz", "", true},
		{"m", "", false}, // end is exclusive
		{"", "", false},
		{"b", "m", true}, // the whole range
		{"c", "d", true},
		{"a", "c", false}, // starts before
		{"c", "m\x00", false},
		{"c", "n", false},
		{"d", "c", false}, // inverted
		{"c", "c", false}, // empty
		{"m", "n", false},
	} {
		var got bool
		if tc.end == "" {
			got = d.ContainsKey([]byte(tc.key))
			if got2 := d.ContainsSpan([]byte(tc.key), nil); got2 != got {
				t.Errorf("ContainsSpan(%q, nil) = %v but ContainsKey = %v", tc.key, got2, got)
			}
		} else {
			got = d.ContainsSpan([]byte(tc.key), []byte(tc.end))
		}
		if got != tc.want {
			t.Errorf("contains(%q, %q) = %v, want %v", tc.key, tc.end, got, tc.want)
		}
	}
}

func TestDescriptorReplicaLookup(t *testing.T) {
	d := testDesc()
	if r := d.ReplicaByNode(2); r.GetReplicaId() != 2 {
		t.Errorf("ReplicaByNode(2) = %v", r)
	}
	if r := d.ReplicaByStore(3); r.GetReplicaId() != 4 {
		t.Errorf("ReplicaByStore(3) = %v", r)
	}
	if r := d.ReplicaByID(4); r.GetNodeId() != 3 {
		t.Errorf("ReplicaByID(4) = %v", r)
	}
	if d.ReplicaByNode(9) != nil || d.ReplicaByID(3) != nil || d.ReplicaByStore(0) != nil {
		t.Error("lookup of a missing replica found one")
	}
	if v := d.Voters(); len(v) != 2 || v[0].GetReplicaId() != 1 || v[1].GetReplicaId() != 2 {
		t.Errorf("Voters() = %v", v)
	}
	if s := d.ReplicaByID(4).Short(); s != "n3/s3/r4(learner)" {
		t.Errorf("Short() = %q", s)
	}
}

func TestDescriptorValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(d *RangeDescriptor)
		want   string // substring of the error; "" = valid
	}{
		{"valid", func(d *RangeDescriptor) {}, ""},
		{"no replicas", func(d *RangeDescriptor) { d.Replicas = nil }, ""},
		{"empty start key", func(d *RangeDescriptor) { d.StartKey = nil }, ""},
		{"zero range id", func(d *RangeDescriptor) { d.RangeId = 0 }, "without a range ID"},
		{"start = end", func(d *RangeDescriptor) { d.EndKey = []byte("b") }, "is not below end key"},
		{"start > end", func(d *RangeDescriptor) { d.EndKey = []byte("a") }, "is not below end key"},
		{"empty end key", func(d *RangeDescriptor) { d.EndKey = nil }, "is not below end key"},
		{"duplicate replica id", func(d *RangeDescriptor) { d.Replicas[1].ReplicaId = 1 }, "replica ID 1 appears twice"},
		{"two on one store", func(d *RangeDescriptor) { d.Replicas[1].StoreId = 1 }, "store 1 holds two replicas"},
		{"zero replica id", func(d *RangeDescriptor) { d.Replicas[0].ReplicaId = 0 }, "has a zero ID"},
		{"zero node id", func(d *RangeDescriptor) { d.Replicas[0].NodeId = 0 }, "has a zero ID"},
		{"nil replica", func(d *RangeDescriptor) { d.Replicas[2] = nil }, "nil replica"},
		{"id not below next", func(d *RangeDescriptor) { d.NextReplicaId = 4 }, "not below next replica ID 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := testDesc()
			tc.mutate(d)
			err := d.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("want error containing %q, got none", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
	var nilDesc *RangeDescriptor
	if nilDesc.Validate() == nil {
		t.Error("nil descriptor validated")
	}
}

func ts(wall int64, logical int32) hlc.Timestamp {
	return hlc.Timestamp{WallTime: wall, Logical: logical}
}

func TestLeaseCovers(t *testing.T) {
	l := &Lease{
		Replica:    &ReplicaDescriptor{NodeId: 1, StoreId: 1, ReplicaId: 1},
		Start:      NewTimestamp(ts(100, 0)),
		Expiration: NewTimestamp(ts(200, 0)),
		Sequence:   3,
	}
	for _, tc := range []struct {
		ts   hlc.Timestamp
		want bool
	}{
		{ts(99, 5), false},
		{ts(100, 0), true}, // start inclusive
		{ts(150, 0), true},
		{ts(199, 1<<30), true},
		{ts(200, 0), false}, // expiration exclusive
		{ts(300, 0), false},
	} {
		if got := l.Covers(tc.ts); got != tc.want {
			t.Errorf("Covers(%s) = %v, want %v", tc.ts, got, tc.want)
		}
	}
	var none *Lease
	if none.Covers(ts(150, 0)) {
		t.Error("nil lease covers a timestamp")
	}
	if s := l.Short(); s != "lease #3 held by n1/s1/r1 [0.000000100,0, 0.000000200,0)" {
		t.Errorf("Short() = %q", s)
	}
}

func TestLeaseEquivalent(t *testing.T) {
	base := func() *Lease {
		return &Lease{
			Replica:    &ReplicaDescriptor{NodeId: 1, StoreId: 1, ReplicaId: 1},
			Start:      NewTimestamp(ts(100, 0)),
			Expiration: NewTimestamp(ts(200, 0)),
			Sequence:   3,
			ProposedTs: NewTimestamp(ts(99, 0)),
		}
	}
	for _, tc := range []struct {
		name   string
		mutate func(l *Lease)
		want   bool
	}{
		{"identical", func(l *Lease) {}, true},
		{"extended", func(l *Lease) { l.Expiration = NewTimestamp(ts(300, 0)) }, true},
		{"other proposed ts and sequence", func(l *Lease) { l.ProposedTs = NewTimestamp(ts(150, 0)); l.Sequence = 4 }, true},
		{"learner promoted", func(l *Lease) { l.Replica.Type = ReplicaType_LEARNER }, true},
		{"shortened", func(l *Lease) { l.Expiration = NewTimestamp(ts(199, 0)) }, false},
		{"other start", func(l *Lease) { l.Start = NewTimestamp(ts(101, 0)) }, false},
		{"other replica", func(l *Lease) { l.Replica.ReplicaId = 2 }, false},
		{"other node", func(l *Lease) { l.Replica.NodeId = 2 }, false},
		{"other store", func(l *Lease) { l.Replica.StoreId = 2 }, false},
		{"nil", func(l *Lease) {}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			newer := base()
			tc.mutate(newer)
			if tc.name == "nil" {
				newer = nil
			}
			if got := base().Equivalent(newer); got != tc.want {
				t.Fatalf("Equivalent = %v, want %v", got, tc.want)
			}
		})
	}
	var a, b *Lease
	if !a.Equivalent(b) {
		t.Error("two nil leases are not equivalent")
	}
}
