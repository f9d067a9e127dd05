package ranges

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
	"github.com/meridiandb/meridian/mvcc"
	"github.com/meridiandb/meridian/raftgroup"
)

// FirstRangeID is the system range: it holds meta (one descriptor per
// range, keyed by its end key) and the system keys (the Consistent Core).
const FirstRangeID = 1

// InitialReplica names a store that holds a replica of every bootstrapped
// range.
type InitialReplica struct {
	NodeID, StoreID uint64
}

// BootstrapConfig describes the ranges a new cluster starts with.
type BootstrapConfig struct {
	// Replicas hold every initial range (replica IDs 1..n in this order).
	// Every store listed is bootstrapped with the same state, so their Raft
	// groups agree without a snapshot.
	Replicas []InitialReplica
	// SplitKeys cut the user keyspace into more ranges (logical keys inside
	// [keys.UserSpanStart, keys.UserSpanEnd), ascending).
	SplitKeys [][]byte
	// Timestamp the meta entries are written at.
	Timestamp hlc.Timestamp
	// SystemValues are written into range 1 with the meta entries (system
	// keys: the cluster ID, the node ID generator, the first node's
	// record), so a cluster is never half bootstrapped.
	SystemValues []SystemValue
	// LocalValues are store-local, unversioned keys (the store ident)
	// written in the same batch, so a store never holds ranges without
	// knowing whose they are.
	LocalValues []SystemValue
}

// SystemValue is one key and value of BootstrapConfig.SystemValues.
type SystemValue struct {
	Key, Value []byte
}

// ErrAlreadyBootstrapped is returned by Bootstrap on an engine that already
// holds ranges.
var ErrAlreadyBootstrapped = errors.New("ranges: store already bootstrapped")

// Bootstrap writes the initial ranges into an empty engine: the system range
// [MetaMin, UserSpanStart) and the user range(s) [UserSpanStart, KeyMax),
// their descriptors, applied states, meta entries and the range ID
// generator, in one synced batch.
func Bootstrap(e *mvcc.Engine, cfg BootstrapConfig) ([]*api.RangeDescriptor, error) {
	if len(cfg.Replicas) == 0 {
		return nil, errors.New("ranges: bootstrap needs at least one replica")
	}
	if existing, err := loadDescriptors(e.DB()); err != nil {
		return nil, err
	} else if len(existing) > 0 {
		return nil, ErrAlreadyBootstrapped
	}
	bounds := [][]byte{keys.MetaMin, keys.UserSpanStart}
	prev := keys.UserSpanStart
	for _, k := range cfg.SplitKeys {
		if bytes.Compare(k, prev) <= 0 || bytes.Compare(k, keys.UserSpanEnd) >= 0 {
			return nil, fmt.Errorf("ranges: split key %s must be ascending and inside the user keyspace", keys.Pretty(k))
		}
		bounds = append(bounds, k)
		prev = k
	}
	bounds = append(bounds, keys.KeyMax)

	var replicas []*api.ReplicaDescriptor
	for i, r := range cfg.Replicas {
		replicas = append(replicas, &api.ReplicaDescriptor{NodeId: r.NodeID, StoreId: r.StoreID, ReplicaId: uint64(i + 1)})
	}
	var descs []*api.RangeDescriptor
	for i := 0; i+1 < len(bounds); i++ {
		descs = append(descs, &api.RangeDescriptor{
			RangeId: uint64(i + 1), StartKey: bounds[i], EndKey: bounds[i+1],
			Replicas: replicas, NextReplicaId: uint64(len(replicas) + 1),
		})
	}

	b := e.DB().NewIndexedBatch()
	defer b.Close()
	ts := cfg.Timestamp
	if ts.IsEmpty() {
		ts = hlc.Timestamp{WallTime: 1}
	}
	// Range 1's data: a meta entry per range and the range ID generator.
	var sysStats mvcc.Stats
	for _, d := range descs {
		v, err := proto.Marshal(d)
		if err != nil {
			return nil, err
		}
		if err := mvcc.Put(b, &sysStats, keys.MetaKey(d.GetEndKey()), ts, v, nil); err != nil {
			return nil, err
		}
	}
	if err := mvcc.Put(b, &sysStats, keys.RangeIDGeneratorKey, ts, api.EncodeCounter(int64(len(descs))), nil); err != nil {
		return nil, err
	}
	for _, kv := range cfg.SystemValues {
		if bytes.Compare(kv.Key, keys.SystemMin) < 0 || bytes.Compare(kv.Key, keys.SystemMax) >= 0 {
			return nil, fmt.Errorf("ranges: bootstrap value %s is not a system key", keys.Pretty(kv.Key))
		}
		if err := mvcc.Put(b, &sysStats, kv.Key, ts, kv.Value, nil); err != nil {
			return nil, err
		}
	}
	for _, d := range descs {
		id := keys.RangeID(d.GetRangeId())
		if err := putProto(b, keys.RangeDescriptorKey(id), d); err != nil {
			return nil, err
		}
		st := &rangeState{desc: d, applied: raftgroup.InitialIndex, confState: confStateFor(d)}
		if d.GetRangeId() == FirstRangeID {
			st.stats = sysStats
		}
		if err := st.writeApplied(b); err != nil {
			return nil, err
		}
	}
	for _, kv := range cfg.LocalValues {
		if !keys.IsLocal(kv.Key) {
			return nil, fmt.Errorf("ranges: bootstrap value %s is not a local key", keys.Pretty(kv.Key))
		}
		if err := b.Set(localKey(kv.Key), kv.Value, nil); err != nil {
			return nil, err
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return nil, err
	}
	return descs, nil
}

// loadDescriptors returns the descriptor of every range with state in db.
func loadDescriptors(db *pebble.DB) ([]*api.RangeDescriptor, error) {
	start, end := keys.RangeLocalSpan(1)
	start = localKey(start[:2]) // every range-ID local key starts 0x01 'i'
	end = localKey([]byte{end[0], end[1] + 1})
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []*api.RangeDescriptor
	for ok := it.First(); ok; ok = it.Next() {
		k, _, err := keys.DecodeEngineKey(it.Key())
		if err != nil {
			return nil, err
		}
		id, _, code, _, err := keys.DecodeRangeIDKey(k)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(k, keys.RangeDescriptorKey(id)) || code == nil {
			continue
		}
		d := &api.RangeDescriptor{}
		if err := proto.Unmarshal(it.Value(), d); err != nil {
			return nil, fmt.Errorf("ranges: corrupt descriptor of range %d: %w", id, err)
		}
		out = append(out, d)
	}
	return out, it.Error()
}
