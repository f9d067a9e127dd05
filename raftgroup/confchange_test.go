package raftgroup

import (
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// TestCheckConfChange: the changes raft would panic on are refused, valid
// ones pass, against the membership given.
func TestCheckConfChange(t *testing.T) {
	single := func(typ raftpb.ConfChangeType, id uint64) *raftpb.ConfChangeSingle {
		return &raftpb.ConfChangeSingle{Type: typ.Enum(), NodeId: proto.Uint64(id)}
	}
	three := &raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	joint := &raftpb.ConfState{Voters: []uint64{1, 2, 4}, VotersOutgoing: []uint64{1, 2, 3}}
	for _, tc := range []struct {
		name string
		cs   *raftpb.ConfState
		cc   *raftpb.ConfChangeV2
		ok   bool
	}{
		{"add a voter", three, &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{single(raftpb.ConfChangeAddNode, 4)}}, true},
		{"add a learner", three, &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{single(raftpb.ConfChangeAddLearnerNode, 4)}}, true},
		{"swap two voters jointly", three, &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{single(raftpb.ConfChangeAddNode, 4), single(raftpb.ConfChangeRemoveNode, 3)}}, true},
		{"leave a joint config", joint, &raftpb.ConfChangeV2{}, true},
		{"remove every voter", &raftpb.ConfState{Voters: []uint64{1}}, &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{single(raftpb.ConfChangeRemoveNode, 1)}}, false},
		{"leave a config that is not joint", three, &raftpb.ConfChangeV2{}, false},
		{"enter joint while joint", joint, &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{single(raftpb.ConfChangeAddNode, 5), single(raftpb.ConfChangeRemoveNode, 4)}}, false},
	} {
		if err := checkConfChange(tc.cs, tc.cc); (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok=%t", tc.name, err, tc.ok)
		}
	}
}
