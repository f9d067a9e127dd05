package grouptest

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

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
	// FailApplySnapshot makes ApplySnapshot fail after writing part of the
	// snapshot, to test that a failed apply leaves nothing behind.
	FailApplySnapshot atomic.Bool

	db  *pebble.DB
	pad []byte // guarded by mu
	// noCounts: apply counts are neither kept nor persisted
	// (Options.NoApplyCounts).
	noCounts bool

	mu struct {
		sync.Mutex
		data    map[uint64]map[string]string
		applied map[uint64]uint64
		conf    map[uint64]*raftpb.ConfState
		counts  map[uint64]map[raftgroup.CommandID]int
		// confBytes caches conf marshalled, for the applied state written
		// with every Apply.
		confBytes map[uint64][]byte
	}
}

// NewKV loads a KV state machine from db.
func NewKV(db *pebble.DB) *KV {
	kv := &KV{db: db}
	kv.mu.data = map[uint64]map[string]string{}
	kv.mu.applied = map[uint64]uint64{}
	kv.mu.conf = map[uint64]*raftpb.ConfState{}
	kv.mu.counts = map[uint64]map[raftgroup.CommandID]int{}
	kv.mu.confBytes = map[uint64][]byte{}
	return kv
}

// state records per group: applied index + conf state under the range's
// applied-state key; data and command counts under user keys prefixed by the
// group ID.

func appliedKey(group uint64) []byte {
	return keys.EncodeEngineKey(keys.RangeAppliedStateKey(keys.RangeID(group)), hlc.Timestamp{})
}

// groupPrefix appends "g", the group ID as 20 decimal digits, and "/".
func groupPrefix(buf []byte, group uint64) []byte {
	var digits [20]byte
	for i := len(digits) - 1; i >= 0; i-- {
		digits[i] = byte('0' + group%10)
		group /= 10
	}
	buf = append(buf, 'g')
	buf = append(buf, digits[:]...)
	return append(buf, '/')
}

// dataKey is the engine key of "g<group>/<kind>/<k>" (on Apply's path, so
// without fmt).
func dataKey(group uint64, kind, k string) []byte {
	uk := make([]byte, 0, 24+len(kind)+len(k))
	uk = groupPrefix(uk, group)
	uk = append(uk, kind...)
	uk = append(uk, '/')
	uk = append(uk, k...)
	return keys.EncodeEngineKey(keys.UserKey(uk), hlc.Timestamp{})
}

// The applied state is the applied index (8 bytes, big-endian) followed
// by the marshalled ConfState.
func encodeAppliedState(applied uint64, conf []byte) []byte {
	st := make([]byte, 8, 8+len(conf))
	binary.BigEndian.PutUint64(st, applied)
	return append(st, conf...)
}

func decodeAppliedState(v []byte) (uint64, *raftpb.ConfState, error) {
	if len(v) < 8 {
		return 0, nil, fmt.Errorf("grouptest: applied state of %d bytes", len(v))
	}
	cs := &raftpb.ConfState{}
	if err := proto.Unmarshal(v[8:], cs); err != nil {
		return 0, nil, err
	}
	return binary.BigEndian.Uint64(v), cs, nil
}

// setConfLocked records a group's membership and its marshalled form.
func (kv *KV) setConfLocked(group uint64, cs *raftpb.ConfState) error {
	b, err := proto.Marshal(cs)
	if err != nil {
		return err
	}
	kv.mu.conf[group], kv.mu.confBytes[group] = cs, b
	return nil
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
	applied, cs, err := decodeAppliedState(v)
	closer.Close()
	if err != nil {
		return 0, nil, err
	}
	kv.mu.applied[group] = applied
	if err := kv.setConfLocked(group, cs); err != nil {
		return 0, nil, err
	}

	prefix := keys.UserKey(groupPrefix(nil, group))
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
	return applied, cs, it.Error()
}

// Init records the initial membership of a new group, so the state machine
// persists it with its first applied entries.
func (kv *KV) Init(group uint64, cs *raftpb.ConfState) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	_ = kv.setConfLocked(group, cs) // a ConfState always marshals
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
			if err := kv.setConfLocked(group, e.ConfState); err != nil {
				return err
			}
		case raftgroup.EntryCommand:
			if !kv.noCounts {
				counts[e.ID]++
				var cnt [8]byte
				binary.BigEndian.PutUint64(cnt[:], uint64(counts[e.ID]))
				if err := b.Set(dataKey(group, "c", string(e.ID[:])), cnt[:], nil); err != nil {
					return err
				}
			}
			op, k, v, ok := parseCommand(e.Command)
			switch {
			case ok && op == "put":
				data[k] = v
				e.Result = v
			case ok && op == "incr":
				n, _ := strconv.Atoi(data[k])
				data[k] = strconv.Itoa(n + 1)
				e.Result = data[k]
			default:
				e.Result = fmt.Errorf("grouptest: bad command %q", e.Command)
				continue
			}
			if err := b.Set(dataKey(group, "d", k), []byte(data[k]), nil); err != nil {
				return err
			}
		}
		kv.mu.applied[group] = e.Index
	}
	return b.Set(appliedKey(group), encodeAppliedState(kv.mu.applied[group], kv.mu.confBytes[group]), nil)
}

// parseCommand splits "put <key> <value>" or "incr <key>".
func parseCommand(cmd []byte) (op, k, v string, ok bool) {
	f := strings.Fields(string(cmd))
	switch {
	case len(f) == 3 && f[0] == "put":
		return f[0], f[1], f[2], true
	case len(f) == 2 && f[0] == "incr":
		return f[0], f[1], "", true
	}
	return "", "", "", false
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

type kvSnapshot struct {
	Applied   uint64
	ConfState []byte
	Data      map[string]string
	Counts    map[string]int // hex command ID -> count
}

// A KV snapshot is an 8-byte big-endian length, that many bytes of JSON
// (kvSnapshot), then optional padding (SetSnapshotPadding) the receiver
// reads and discards.

// Snapshot implements raftgroup.StateMachine: a JSON copy of the group's
// state as of its applied index.
func (kv *KV) Snapshot(group uint64) (*raftgroup.SnapshotData, error) {
	kv.mu.Lock()
	snap := kvSnapshot{Applied: kv.mu.applied[group], Data: map[string]string{}, Counts: map[string]int{}}
	cs, err := proto.Marshal(kv.mu.conf[group])
	if err != nil {
		kv.mu.Unlock()
		return nil, err
	}
	snap.ConfState = cs
	for k, v := range kv.mu.data[group] {
		snap.Data[k] = v
	}
	for id, n := range kv.mu.counts[group] {
		snap.Counts[hex.EncodeToString(id[:])] = n
	}
	confState := proto.Clone(kv.mu.conf[group]).(*raftpb.ConfState)
	pad := kv.pad
	kv.mu.Unlock()
	b, err := json.Marshal(snap)
	if err != nil {
		return nil, err
	}
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(len(b)))
	r := io.MultiReader(bytes.NewReader(hdr[:]), bytes.NewReader(b), bytes.NewReader(pad))
	return &raftgroup.SnapshotData{Index: snap.Applied, ConfState: confState, Size: int64(8 + len(b) + len(pad)), Data: io.NopCloser(r)}, nil
}

// ApplySnapshot implements raftgroup.StateMachine.
func (kv *KV) ApplySnapshot(group uint64, meta raftgroup.SnapshotMeta, data io.Reader, b *pebble.Batch) error {
	var hdr [8]byte
	if _, err := io.ReadFull(data, hdr[:]); err != nil {
		return fmt.Errorf("grouptest: bad snapshot: %w", err)
	}
	n := binary.BigEndian.Uint64(hdr[:])
	if n > 1<<30 {
		return fmt.Errorf("grouptest: bad snapshot: header of %d bytes", n)
	}
	raw := make([]byte, n)
	if _, err := io.ReadFull(data, raw); err != nil {
		return fmt.Errorf("grouptest: bad snapshot: %w", err)
	}
	if _, err := io.Copy(io.Discard, data); err != nil {
		return err
	}
	var snap kvSnapshot
	if err := json.Unmarshal(raw, &snap); err != nil {
		return fmt.Errorf("grouptest: bad snapshot: %w", err)
	}
	if snap.Applied != meta.Index {
		return fmt.Errorf("grouptest: snapshot at %d presented as %d", snap.Applied, meta.Index)
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	prefix := keys.UserKey(groupPrefix(nil, group))
	if err := b.DeleteRange(keys.EncodeEngineKey(prefix, hlc.Timestamp{}), keys.EncodeEngineKey(keys.PrefixEnd(prefix), hlc.Timestamp{}), nil); err != nil {
		return err
	}
	data2 := map[string]string{}
	counts := map[raftgroup.CommandID]int{}
	for k, v := range snap.Data {
		data2[k] = v
		if err := b.Set(dataKey(group, "d", k), []byte(v), nil); err != nil {
			return err
		}
	}
	for h, n := range snap.Counts {
		raw, err := hex.DecodeString(h)
		if err != nil || len(raw) != len(raftgroup.CommandID{}) {
			return fmt.Errorf("grouptest: bad command id %q in snapshot", h)
		}
		var id raftgroup.CommandID
		copy(id[:], raw)
		counts[id] = n
		var cnt [8]byte
		binary.BigEndian.PutUint64(cnt[:], uint64(n))
		if err := b.Set(dataKey(group, "c", string(id[:])), cnt[:], nil); err != nil {
			return err
		}
	}
	if kv.FailApplySnapshot.Load() {
		return errors.New("grouptest: injected ApplySnapshot failure")
	}
	cs := proto.Clone(meta.ConfState).(*raftpb.ConfState)
	csBytes, err := proto.Marshal(cs)
	if err != nil {
		return err
	}
	if err := b.Set(appliedKey(group), encodeAppliedState(meta.Index, csBytes), nil); err != nil {
		return err
	}
	kv.mu.data[group], kv.mu.counts[group] = data2, counts
	kv.mu.applied[group] = meta.Index
	kv.mu.conf[group], kv.mu.confBytes[group] = cs, csBytes
	return nil
}

// SetSnapshotPadding makes every snapshot this state machine sends carry n
// extra bytes, to measure snapshot throughput.
func (kv *KV) SetSnapshotPadding(n int) {
	kv.mu.Lock()
	kv.pad = make([]byte, n)
	kv.mu.Unlock()
}
