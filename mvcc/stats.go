package mvcc

import (
	"bytes"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
)

// Stats summarise the MVCC data of a span (see api.MVCCStats for each
// field). Every write operation takes a *Stats (nil to skip) and adds the
// change it made, so a range's stats stay current without rescans;
// ComputeStats recomputes them from scratch, and the two always agree.
//
// Definitions, per key k in the span:
//   - KeyCount/KeyBytes: k counts once if it has any version; KeyBytes sums
//     the engine key length of every version.
//   - ValCount/ValBytes: every version and its stored value length
//     (a tombstone stores 0 bytes).
//   - LiveCount/LiveBytes: k is live if its newest version, provisional or
//     committed, is not a tombstone; LiveBytes adds that version's engine
//     key and stored value lengths.
//   - IntentCount/LockBytes: one per lock record; its engine key and value
//     lengths.
type Stats struct {
	LiveBytes, LiveCount   int64
	KeyBytes, KeyCount     int64
	ValBytes, ValCount     int64
	IntentCount, LockBytes int64
}

// Add adds o to s.
func (s *Stats) Add(o Stats) {
	s.LiveBytes += o.LiveBytes
	s.LiveCount += o.LiveCount
	s.KeyBytes += o.KeyBytes
	s.KeyCount += o.KeyCount
	s.ValBytes += o.ValBytes
	s.ValCount += o.ValCount
	s.IntentCount += o.IntentCount
	s.LockBytes += o.LockBytes
}

// Subtract subtracts o from s.
func (s *Stats) Subtract(o Stats) {
	s.LiveBytes -= o.LiveBytes
	s.LiveCount -= o.LiveCount
	s.KeyBytes -= o.KeyBytes
	s.KeyCount -= o.KeyCount
	s.ValBytes -= o.ValBytes
	s.ValCount -= o.ValCount
	s.IntentCount -= o.IntentCount
	s.LockBytes -= o.LockBytes
}

// Total is the bytes the span occupies: keys, values and locks.
func (s Stats) Total() int64 { return s.KeyBytes + s.ValBytes + s.LockBytes }

// ToProto converts s for the wire or for storage in a range's state.
func (s Stats) ToProto() *api.MVCCStats {
	return &api.MVCCStats{LiveBytes: s.LiveBytes, LiveCount: s.LiveCount, KeyBytes: s.KeyBytes,
		KeyCount: s.KeyCount, ValBytes: s.ValBytes, ValCount: s.ValCount,
		IntentCount: s.IntentCount, LockBytes: s.LockBytes}
}

// StatsFromProto converts back; nil is zero stats.
func StatsFromProto(p *api.MVCCStats) Stats {
	return Stats{LiveBytes: p.GetLiveBytes(), LiveCount: p.GetLiveCount(), KeyBytes: p.GetKeyBytes(),
		KeyCount: p.GetKeyCount(), ValBytes: p.GetValBytes(), ValCount: p.GetValCount(),
		IntentCount: p.GetIntentCount(), LockBytes: p.GetLockBytes()}
}

func (s Stats) String() string {
	return fmt.Sprintf("live=%d/%dB keys=%d/%dB vals=%d/%dB intents=%d/%dB",
		s.LiveCount, s.LiveBytes, s.KeyCount, s.KeyBytes, s.ValCount, s.ValBytes, s.IntentCount, s.LockBytes)
}

// version describes one stored version for stats.
type version struct {
	present bool
	ts      hlc.Timestamp
	keyLen  int // engine key length
	valLen  int // stored value length; 0 is a tombstone
}

func (v version) live() bool { return v.present && v.valLen > 0 }

// addVersion/removeVersion account for one version being written/removed.
func (s *Stats) addVersion(v version) {
	if s == nil {
		return
	}
	s.KeyBytes += int64(v.keyLen)
	s.ValBytes += int64(v.valLen)
	s.ValCount++
}

func (s *Stats) removeVersion(v version) {
	if s == nil {
		return
	}
	s.KeyBytes -= int64(v.keyLen)
	s.ValBytes -= int64(v.valLen)
	s.ValCount--
}

// newestChanged accounts for a key's newest version changing from old to
// new (either may be absent): liveness and the key's existence.
func (s *Stats) newestChanged(old, new version) {
	if s == nil {
		return
	}
	if old.live() {
		s.LiveCount--
		s.LiveBytes -= int64(old.keyLen + old.valLen)
	}
	if new.live() {
		s.LiveCount++
		s.LiveBytes += int64(new.keyLen + new.valLen)
	}
	switch {
	case !old.present && new.present:
		s.KeyCount++
	case old.present && !new.present:
		s.KeyCount--
	}
}

func (s *Stats) lockChanged(oldSize, newSize int) {
	if s == nil {
		return
	}
	switch {
	case oldSize == 0 && newSize > 0:
		s.IntentCount++
	case oldSize > 0 && newSize == 0:
		s.IntentCount--
	}
	s.LockBytes += int64(newSize - oldSize)
}

// ComputeStats recomputes the stats of [start, end) from scratch.
func ComputeStats(r Reader, start, end []byte) (Stats, error) {
	var s Stats
	if err := checkSpan(start, end); err != nil {
		return s, err
	}
	lockStart, lockEnd := keys.LockTableSpan(start, end)
	it, err := r.NewIter(&pebble.IterOptions{
		LowerBound: keys.EncodeEngineKey(lockStart, hlc.Timestamp{}),
		UpperBound: keys.EncodeEngineKey(lockEnd, hlc.Timestamp{}),
	})
	if err != nil {
		return s, err
	}
	for ok := it.First(); ok; ok = it.Next() {
		s.IntentCount++
		s.LockBytes += int64(len(it.Key()) + len(it.Value()))
	}
	if err := it.Close(); err != nil {
		return s, err
	}
	it, err = r.NewIter(&pebble.IterOptions{
		LowerBound: keys.EncodeEngineKey(start, hlc.Timestamp{}),
		UpperBound: keys.EncodeEngineKey(end, hlc.Timestamp{}),
	})
	if err != nil {
		return s, err
	}
	defer it.Close()
	var prev []byte
	first := true
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		key, ts, err := keys.DecodeEngineKey(k)
		if err != nil {
			return s, err
		}
		if ts.IsEmpty() {
			return s, fmt.Errorf("mvcc: unversioned key %s in the MVCC keyspace", keys.Pretty(key))
		}
		v := it.Value()
		s.KeyBytes += int64(len(k))
		s.ValBytes += int64(len(v))
		s.ValCount++
		if first || !bytes.Equal(prev, key) {
			first = false
			s.KeyCount++
			prev = append(prev[:0], key...)
			if len(v) > 0 {
				s.LiveCount++
				s.LiveBytes += int64(len(k) + len(v))
			}
		}
	}
	return s, it.Error()
}
