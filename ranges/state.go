package ranges

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
	"github.com/meridiandb/meridian/mvcc"
)

// A range's replicated state lives under its range-local keys, written in
// the same batch as the effects of the command that changed it:
//   - RangeDescriptorKey: the api.RangeDescriptor;
//   - RangeLeaseKey: the api.Lease;
//   - RangeAppliedStateKey: api.RangeAppliedState (applied index, MVCC
//     stats, Raft membership).

func localKey(k []byte) []byte { return keys.EncodeEngineKey(k, hlc.Timestamp{}) }

func putProto(w mvcc.Writer, k []byte, m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	return w.Set(localKey(k), b, nil)
}

// getProto reads a message; found is false if the key is absent.
func getProto(db *pebble.DB, k []byte, m proto.Message) (found bool, err error) {
	v, closer, err := db.Get(localKey(k))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	if err := proto.Unmarshal(v, m); err != nil {
		return false, fmt.Errorf("ranges: corrupt %s: %w", keys.Pretty(k), err)
	}
	return true, nil
}

// rangeState is the replicated state of a range as one replica has applied it.
type rangeState struct {
	desc        *api.RangeDescriptor
	lease       *api.Lease
	applied     uint64
	stats       mvcc.Stats
	confState   *raftpb.ConfState
	gcThreshold hlc.Timestamp
}

func loadRangeState(db *pebble.DB, id keys.RangeID) (*rangeState, error) {
	st := &rangeState{desc: &api.RangeDescriptor{}, lease: &api.Lease{}}
	found, err := getProto(db, keys.RangeDescriptorKey(id), st.desc)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("ranges: range %d has no descriptor", id)
	}
	if _, err := getProto(db, keys.RangeLeaseKey(id), st.lease); err != nil {
		return nil, err
	}
	var as api.RangeAppliedState
	if _, err := getProto(db, keys.RangeAppliedStateKey(id), &as); err != nil {
		return nil, err
	}
	st.applied = as.GetRaftAppliedIndex()
	st.stats = mvcc.StatsFromProto(as.GetStats())
	st.confState = as.GetConfState()
	st.gcThreshold = as.GetGcThreshold().ToHLC()
	if st.confState == nil {
		st.confState = &raftpb.ConfState{}
	}
	return st, nil
}

func (st *rangeState) writeApplied(w mvcc.Writer) error {
	return putProto(w, keys.RangeAppliedStateKey(keys.RangeID(st.desc.GetRangeId())), &api.RangeAppliedState{
		RaftAppliedIndex: st.applied,
		Stats:            st.stats.ToProto(),
		ConfState:        st.confState,
		GcThreshold:      api.NewTimestamp(st.gcThreshold),
	})
}

// confStateFor returns the Raft membership a descriptor implies.
func confStateFor(d *api.RangeDescriptor) *raftpb.ConfState {
	cs := &raftpb.ConfState{}
	for _, r := range d.GetReplicas() {
		if r.GetType() == api.ReplicaType_LEARNER {
			cs.Learners = append(cs.Learners, r.GetReplicaId())
		} else {
			cs.Voters = append(cs.Voters, r.GetReplicaId())
		}
	}
	return cs
}
