package grouptest

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
	"github.com/meridiandb/meridian/raftgroup"
)

// KV is a test state machine: commands are "put <key> <value>" or
// "incr <key>". Its data, applied index, membership and a count of how often
// each command ID applied live in Pebble and are written atomically with each
// Apply, so a restart resumes exactly where it left off. The counts let tests
// prove no command applied twice.
type KV struct {
	db *pebble.DB

	mu struct {
		sync.Mutex
		data    map[uint64]map[string]string
		applied map[uint64]uint64
		conf    map[uint64]*raftpb.ConfState
		counts  map[uint64]map[raftgroup.CommandID]int
	}
}

// NewKV loads a KV state machine from db.
func NewKV(db *pebble.DB) *KV {
	kv := &KV{db: db}
	kv.mu.data = map[uint64]map[string]string{}
	kv.mu.applied = map[uint64]uint64{}
	kv.mu.conf = map[uint64]*raftpb.ConfState{}
	kv.mu.counts = map[uint64]map[raftgroup.CommandID]int{}
	return kv
}

// state records per group: applied index + conf state under the range's
// applied-state key; data and command counts under user keys prefixed by the
// group ID.

func appliedKey(group uint64) []byte {
	return keys.EncodeEngineKey(keys.RangeAppliedStateKey(keys.RangeID(group)), hlc.Timestamp{})
}

func dataKey(group uint64, kind, k string) []byte {
	return keys.EncodeEngineKey(keys.UserKey([]byte(fmt.Sprintf("g%020d/%s/%s", group, kind, k))), hlc.Timestamp{})
}

type appliedState struct {
	Applied   uint64
	ConfState []byte
}

// Load reads a group's persisted state; it returns the applied index and
// ConfState to hand to raftgroup.GroupConfig (zero and nil for a new group).
func (kv *KV) Load(group uint64) (uint64, *raftpb.ConfState, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.mu.data[group] = map[string]string{}
	kv.mu.counts[group] = map[raftgroup.CommandID]int{}
	v, closer, err := kv.db.Get(appliedKey(group))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	var st appliedState
	err = json.Unmarshal(v, &st)
	closer.Close()
	if err != nil {
		return 0, nil, err
	}
	cs := &raftpb.ConfState{}
	if err := proto.Unmarshal(st.ConfState, cs); err != nil {
		return 0, nil, err
	}
	kv.mu.applied[group], kv.mu.conf[group] = st.Applied, cs

	prefix := keys.UserKey([]byte(fmt.Sprintf("g%020d/", group)))
	it, err := kv.db.NewIter(&pebble.IterOptions{
		LowerBound: keys.EncodeEngineKey(prefix, hlc.Timestamp{}),
		UpperBound: keys.EncodeEngineKey(keys.PrefixEnd(prefix), hlc.Timestamp{}),
	})
	if err != nil {
		return 0, nil, err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k, _, err := keys.DecodeEngineKey(it.Key())
		if err != nil {
			return 0, nil, err
		}
		uk, err := keys.DecodeUserKey(k)
		if err != nil {
			return 0, nil, err
		}
		parts := strings.SplitN(string(uk), "/", 3)
		switch parts[1] {
		case "d":
			kv.mu.data[group][parts[2]] = string(it.Value())
		case "c":
			var id raftgroup.CommandID
			copy(id[:], parts[2])
			kv.mu.counts[group][id] = int(binary.BigEndian.Uint64(it.Value()))
		}
	}
	return st.Applied, cs, it.Error()
}

// Init records the initial membership of a new group, so the state machine
// persists it with its first applied entries.
func (kv *KV) Init(group uint64, cs *raftpb.ConfState) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.mu.conf[group] = cs
}

// Apply implements raftgroup.StateMachine.
func (kv *KV) Apply(group uint64, ents []raftgroup.Entry, b *pebble.Batch) error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if kv.mu.data[group] == nil {
		kv.mu.data[group] = map[string]string{}
		kv.mu.counts[group] = map[raftgroup.CommandID]int{}
	}
	data, counts := kv.mu.data[group], kv.mu.counts[group]
	for i := range ents {
		e := &ents[i]
		if e.Index <= kv.mu.applied[group] {
			return fmt.Errorf("grouptest: entry %d applied twice (applied index %d)", e.Index, kv.mu.applied[group])
		}
		switch e.Type {
		case raftgroup.EntryConfChange:
			kv.mu.conf[group] = e.ConfState
		case raftgroup.EntryCommand:
			counts[e.ID]++
			var cnt [8]byte
			binary.BigEndian.PutUint64(cnt[:], uint64(counts[e.ID]))
			if err := b.Set(dataKey(group, "c", string(e.ID[:])), cnt[:], nil); err != nil {
				return err
			}
			f := strings.Fields(string(e.Command))
			switch {
			case len(f) == 3 && f[0] == "put":
				data[f[1]] = f[2]
				e.Result = f[2]
			case len(f) == 2 && f[0] == "incr":
				n, _ := strconv.Atoi(data[f[1]])
				data[f[1]] = strconv.Itoa(n + 1)
				e.Result = data[f[1]]
			default:
				e.Result = fmt.Errorf("grouptest: bad command %q", e.Command)
				continue
			}
			if err := b.Set(dataKey(group, "d", f[1]), []byte(data[f[1]]), nil); err != nil {
				return err
			}
		}
		kv.mu.applied[group] = e.Index
	}
	csBytes, err := proto.Marshal(kv.mu.conf[group])
	if err != nil {
		return err
	}
	st, _ := json.Marshal(appliedState{Applied: kv.mu.applied[group], ConfState: csBytes})
	return b.Set(appliedKey(group), st, nil)
}

// Get returns a key of a group as this replica has applied it.
func (kv *KV) Get(group uint64, k string) (string, bool) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	v, ok := kv.mu.data[group][k]
	return v, ok
}

// Count returns how many times the command with id applied in group.
func (kv *KV) Count(group uint64, id raftgroup.CommandID) int {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	return kv.mu.counts[group][id]
}

// Counts returns a copy of every command's apply count in group.
func (kv *KV) Counts(group uint64) map[raftgroup.CommandID]int {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	out := make(map[raftgroup.CommandID]int, len(kv.mu.counts[group]))
	for k, v := range kv.mu.counts[group] {
		out[k] = v
	}
	return out
}

// Applied returns the group's applied index on this replica.
func (kv *KV) Applied(group uint64) uint64 {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	return kv.mu.applied[group]
}
