package keys

import (
	"bytes"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/meridiandb/meridian/hlc"
	"pgregory.net/rapid"
)

type versionedKey struct {
	key []byte
	ts  hlc.Timestamp
}

// refCompare is the ordering the encoding must implement, written directly
// on (key, ts): key ascending, unversioned first, then ts descending.
func refCompare(a, b versionedKey) int {
	if c := bytes.Compare(a.key, b.key); c != 0 {
		return c
	}
	switch {
	case a.ts == b.ts:
		return 0
	case a.ts.IsEmpty():
		return -1
	case b.ts.IsEmpty():
		return 1
	default:
		return b.ts.Compare(a.ts)
	}
}

func genKey() *rapid.Generator[[]byte] {
	// A small alphabet with 0x00 and 0xff makes shared prefixes and
	// sentinel look-alikes common.
	return rapid.SliceOfN(rapid.SampledFrom([]byte{0x00, 0x01, 0x09, 0x0d, 'a', 'b', 0xfe, 0xff}), 0, 6)
}

func genTS() *rapid.Generator[hlc.Timestamp] {
	return rapid.Custom(func(t *rapid.T) hlc.Timestamp {
		if rapid.Bool().Draw(t, "empty") {
			return hlc.Timestamp{}
		}
		w := rapid.OneOf(rapid.Int64Range(0, 3), rapid.Int64Range(0, 1<<63-1)).Draw(t, "wall")
		l := rapid.OneOf(rapid.Int32Range(0, 2), rapid.Int32Range(0, 1<<31-1)).Draw(t, "logical")
		return hlc.Timestamp{WallTime: w, Logical: l}
	})
}

func genVersionedKey() *rapid.Generator[versionedKey] {
	return rapid.Custom(func(t *rapid.T) versionedKey {
		return versionedKey{key: genKey().Draw(t, "key"), ts: genTS().Draw(t, "ts")}
	})
}

func TestEngineKeyRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		vk := genVersionedKey().Draw(t, "vk")
		enc := EncodeEngineKey(vk.key, vk.ts)
		k, ts, err := DecodeEngineKey(enc)
		if err != nil {
			t.Fatalf("decode %x: %v", enc, err)
		}
		if !bytes.Equal(k, vk.key) || ts != vk.ts {
			t.Fatalf("round trip %q@%s gave %q@%s", vk.key, vk.ts, k, ts)
		}
		if n := Comparer.Split(enc); !bytes.Equal(enc[:n], append(slices.Clone(vk.key), 0)) {
			t.Fatalf("Split(%x) = %d, want the key and its sentinel", enc, n)
		}
		ts2, err := DecodeEngineSuffix(enc[Comparer.Split(enc):])
		if err != nil || ts2 != vk.ts {
			t.Fatalf("DecodeEngineSuffix: %s, %v", ts2, err)
		}
	})
}

func TestEngineKeyOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		vks := rapid.SliceOfN(genVersionedKey(), 2, 20).Draw(t, "vks")
		for i := range vks {
			for j := range vks {
				a, b := vks[i], vks[j]
				ea, eb := EncodeEngineKey(a.key, a.ts), EncodeEngineKey(b.key, b.ts)
				want := refCompare(a, b)
				if got := Comparer.Compare(ea, eb); got != want {
					t.Fatalf("Compare(%s, %s) = %d, want %d", PrettyEngineKey(ea), PrettyEngineKey(eb), got, want)
				}
				if Comparer.Equal(ea, eb) != (want == 0) {
					t.Fatalf("Equal disagrees with Compare on %x %x", ea, eb)
				}
				if aa, ab := Comparer.AbbreviatedKey(ea), Comparer.AbbreviatedKey(eb); (aa < ab && want >= 0) || (aa > ab && want <= 0) {
					t.Fatalf("AbbreviatedKey disagrees with Compare on %x %x", ea, eb)
				}
				if want < 0 {
					sep := Comparer.Separator(nil, ea, eb)
					if Comparer.Compare(ea, sep) > 0 || Comparer.Compare(sep, eb) >= 0 {
						t.Fatalf("Separator(%x, %x) = %x is not in [a, b)", ea, eb, sep)
					}
				}
			}
			ea := EncodeEngineKey(vks[i].key, vks[i].ts)
			if s := Comparer.Successor(nil, ea); Comparer.Compare(ea, s) > 0 {
				t.Fatalf("Successor(%x) = %x sorts before it", ea, s)
			}
			p := ea[:Comparer.Split(ea)]
			is := Comparer.ImmediateSuccessor(nil, p)
			if Comparer.Split(is) != len(is) || Comparer.Compare(p, is) >= 0 {
				t.Fatalf("ImmediateSuccessor(%x) = %x", p, is)
			}
			// Nothing that is a prefix fits between p and its immediate successor.
			for j := range vks {
				q := EncodeEngineKey(vks[j].key, hlc.Timestamp{})
				if Comparer.Compare(p, q) < 0 && Comparer.Compare(q, is) < 0 {
					t.Fatalf("prefix %x between %x and its immediate successor %x", q, p, is)
				}
			}
		}
	})
}

func TestCheckComparer(t *testing.T) {
	prefixes := [][]byte{{0}, []byte("a\x00"), []byte("ab\x00"), []byte("a\x00\x00"), []byte("\xff\x00")}
	var suffixes [][]byte
	for _, ts := range []hlc.Timestamp{{WallTime: 1}, {WallTime: 1, Logical: 1}, {WallTime: 2}, {WallTime: 1 << 40, Logical: 7}, {Logical: 3}} {
		suffixes = append(suffixes, AppendEngineSuffix(nil, ts))
	}
	c := *Comparer
	c.ValidateKey = nil // CheckComparer also feeds prefixes with leading bytes stripped
	if err := pebble.CheckComparer(&c, prefixes, suffixes); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeEngineKeyRejects(t *testing.T) {
	for _, b := range [][]byte{
		nil,
		{},
		{5},                                 // bad length byte
		{1, 2, 3, 4, 5, 6, 7, 8, 9},         // too short for its length byte
		{'a', 1, 0, 0, 0, 0, 0, 0, 0, 1, 9}, // no sentinel
		append([]byte{'a', 0}, 0, 0, 0, 0, 0, 0, 0, 0, 9),                 // empty ts as a version
		append([]byte{'a', 0}, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 13),    // zero logical written out
		append([]byte{'a', 0}, 0x80, 0, 0, 0, 0, 0, 0, 1, 9),              // negative wall
		append([]byte{'a', 0}, 0, 0, 0, 0, 0, 0, 0, 1, 0x80, 0, 0, 0, 13), // negative logical
	} {
		if _, _, err := DecodeEngineKey(b); err == nil {
			t.Errorf("DecodeEngineKey(%x) succeeded", b)
		}
	}
}

// TestPebbleOrder writes keys of every kind into a Pebble store with the
// Comparer and checks the iteration order, SeekGE to a read timestamp and
// prefix iteration (which uses Split and the bloom filters).
func TestPebbleOrder(t *testing.T) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Comparer: Comparer, FormatMajorVersion: pebble.FormatNewest})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var want [][]byte
	add := func(k []byte, ts hlc.Timestamp) {
		want = append(want, EncodeEngineKey(k, ts))
	}
	for idx := uint64(1); idx <= 300; idx++ {
		add(RaftLogKey(7, idx), hlc.Timestamp{})
	}
	add(RaftHardStateKey(7), hlc.Timestamp{})
	add(LockTableKey(UserKey([]byte("a"))), hlc.Timestamp{})
	add(MetaKey(KeyMax), hlc.Timestamp{WallTime: 5})
	add(UserKey([]byte("a")), hlc.Timestamp{})
	add(UserKey([]byte("a")), hlc.Timestamp{WallTime: 10, Logical: 2})
	add(UserKey([]byte("a")), hlc.Timestamp{WallTime: 10})
	add(UserKey([]byte("a")), hlc.Timestamp{WallTime: 3})
	add(UserKey([]byte("a\x00")), hlc.Timestamp{WallTime: 20})
	add(UserKey([]byte("b")), hlc.Timestamp{WallTime: 1})
	slices.SortFunc(want, Comparer.Compare)
	b := db.NewBatch()
	for i := len(want) - 1; i >= 0; i-- {
		_ = b.Set(want[i], []byte{byte(i)}, nil)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	it, _ := db.NewIter(nil)
	i := 0
	for it.First(); it.Valid(); it.Next() {
		if !bytes.Equal(it.Key(), want[i]) {
			t.Fatalf("key %d = %s, want %s", i, PrettyEngineKey(it.Key()), PrettyEngineKey(want[i]))
		}
		i++
	}
	_ = it.Close()
	if i != len(want) {
		t.Fatalf("iterated %d keys, want %d", i, len(want))
	}
	// Raft log keys sort by index within their prefix.
	lo, hi := RaftLogSpan(7, 1, 301)
	it, _ = db.NewIter(&pebble.IterOptions{LowerBound: EncodeEngineKey(lo, hlc.Timestamp{}), UpperBound: EncodeEngineKey(hi, hlc.Timestamp{})})
	next := uint64(1)
	for it.First(); it.Valid(); it.Next() {
		k, _, _ := DecodeEngineKey(it.Key())
		id, idx, err := DecodeRaftLogKey(k)
		if err != nil || id != 7 || idx != next {
			t.Fatalf("log key %s: %d %d %v, want index %d", Pretty(k), id, idx, err, next)
		}
		next++
	}
	_ = it.Close()
	if next != 301 {
		t.Fatalf("read log up to %d", next)
	}
	// SeekPrefixGE at a read timestamp lands on the newest version at or below it.
	it, _ = db.NewIter(nil)
	defer it.Close()
	ua := UserKey([]byte("a"))
	if !it.SeekPrefixGE(EncodeEngineKey(ua, hlc.Timestamp{WallTime: 10, Logical: 1})) {
		t.Fatal("SeekPrefixGE found nothing")
	}
	if k, ts, _ := DecodeEngineKey(it.Key()); !bytes.Equal(k, ua) || ts != (hlc.Timestamp{WallTime: 10}) {
		t.Fatalf("SeekPrefixGE landed on %s", PrettyEngineKey(it.Key()))
	}
	if it.SeekPrefixGE(EncodeEngineKey(UserKey([]byte("aa")), hlc.Timestamp{})) {
		t.Fatalf("SeekPrefixGE of an absent key found %s", PrettyEngineKey(it.Key()))
	}
}

// FuzzDecodeEngineKey: garbage in gives an error, never a panic, and what
// decodes re-encodes to the same bytes; the comparer never panics either.
func FuzzDecodeEngineKey(f *testing.F) {
	f.Add([]byte{})
	f.Add(EncodeEngineKey([]byte("a"), hlc.Timestamp{WallTime: 1, Logical: 2}))
	f.Add(EncodeEngineKey(RaftLogKey(3, 9), hlc.Timestamp{}))
	f.Add(EncodeEngineKey(TransactionKey(UserKey([]byte("k\x00")), []byte("id")), hlc.Timestamp{WallTime: 5}))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, ts, err := DecodeEngineKey(b)
		_ = PrettyEngineKey(b)
		_ = Comparer.Split(b)
		_ = Comparer.Compare(b, b)
		_ = Comparer.AbbreviatedKey(b)
		_ = Comparer.Successor(nil, b)
		if len(b) > 0 {
			_ = Comparer.Separator(nil, b, b)
		}
		if err != nil {
			return
		}
		if re := EncodeEngineKey(k, ts); !bytes.Equal(re, b) {
			t.Fatalf("%x decoded to %q@%s, re-encodes to %x", b, k, ts, re)
		}
		_ = Pretty(k)
		_, _ = Addr(k)
		_, _, _ = DecodeTransactionKey(k)
		_, _, _ = DecodeRaftLogKey(k)
		_, _, _, _, _ = DecodeRangeIDKey(k)
		_, _ = DecodeLockTableKey(k)
		_, _ = DecodeNodeRecordKey(k)
	})
}
