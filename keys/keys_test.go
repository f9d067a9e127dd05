package keys

import (
	"bytes"
	"math"
	"testing"

	"pgregory.net/rapid"
)

func TestRaftLogKeys(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		id := RangeID(rapid.Uint64().Draw(t, "id"))
		a, b := rapid.Uint64().Draw(t, "a"), rapid.Uint64().Draw(t, "b")
		ka, kb := RaftLogKey(id, a), RaftLogKey(id, b)
		if c := bytes.Compare(ka, kb); c != cmpU64(a, b) {
			t.Fatalf("log keys %d, %d compare %d", a, b, c)
		}
		gid, gidx, err := DecodeRaftLogKey(ka)
		if err != nil || gid != id || gidx != a {
			t.Fatalf("DecodeRaftLogKey: %d %d %v", gid, gidx, err)
		}
		if !bytes.HasPrefix(ka, RaftLogPrefix(id)) {
			t.Fatal("log key lacks RaftLogPrefix")
		}
		start, end := RangeLocalSpan(id)
		for _, k := range [][]byte{ka, RaftHardStateKey(id), RaftTruncatedStateKey(id), RangeAppliedStateKey(id),
			RangeDescriptorKey(id), RangeLeaseKey(id), RangeGCThresholdKey(id), RangeTombstoneKey(id)} {
			if bytes.Compare(k, start) < 0 || (id != math.MaxUint64 && bytes.Compare(k, end) >= 0) {
				t.Fatalf("%s outside RangeLocalSpan", Pretty(k))
			}
			if !IsLocal(k) {
				t.Fatalf("%s is not local", Pretty(k))
			}
			if _, err := Addr(k); err == nil {
				t.Fatalf("range-ID key %s has an address", Pretty(k))
			}
		}
		// Another range's keys stay outside.
		if other := RangeID(rapid.Uint64().Draw(t, "other")); other != id {
			k := RaftLogKey(other, a)
			if bytes.Compare(k, start) >= 0 && bytes.Compare(k, end) < 0 {
				t.Fatalf("range %d key inside range %d's span", other, id)
			}
		}
	})
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestKeyspaceOrder checks the layout: local < meta < system < user, user
// keys (of any bytes) stay in [UserSpanStart, UserSpanEnd), and the
// decoders invert the builders.
func TestKeyspaceOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		uk := rapid.SliceOfN(rapid.Byte(), 0, 8).Draw(t, "uk")
		u := UserKey(uk)
		if bytes.Compare(u, UserSpanStart) < 0 || bytes.Compare(u, UserSpanEnd) >= 0 {
			t.Fatalf("user key %q outside the user span", u)
		}
		if got, err := DecodeUserKey(u); err != nil || !bytes.Equal(got, uk) {
			t.Fatalf("DecodeUserKey: %q %v", got, err)
		}
		order := [][]byte{LocalPrefix, RangeLocalPrefix(5), TransactionKey(u, []byte("t")), LockTableKey(u), LocalMax,
			MetaMin, MetaKey(u), MetaKey(KeyMax), MetaMax, SystemMin, ClusterIDKey, NodeRecordKey(3), SystemMax,
			UserSpanStart, u, UserSpanEnd, KeyMax}
		for i := 1; i < len(order); i++ {
			if bytes.Compare(order[i-1], order[i]) > 0 {
				t.Fatalf("%s sorts after %s", Pretty(order[i-1]), Pretty(order[i]))
			}
		}
		if got, err := DecodeLockTableKey(LockTableKey(u)); err != nil || !bytes.Equal(got, u) {
			t.Fatalf("DecodeLockTableKey: %q %v", got, err)
		}
		if got, err := DecodeMetaKey(MetaKey(u)); err != nil || !bytes.Equal(got, u) {
			t.Fatalf("DecodeMetaKey: %q %v", got, err)
		}
		id := rapid.SliceOfN(rapid.Byte(), 0, 4).Draw(t, "txnid")
		tk := TransactionKey(u, id)
		if gk, gid, err := DecodeTransactionKey(tk); err != nil || !bytes.Equal(gk, u) || !bytes.Equal(gid, id) {
			t.Fatalf("DecodeTransactionKey: %q %q %v", gk, gid, err)
		}
		for _, k := range [][]byte{tk, LockTableKey(u), u} {
			if a, err := Addr(k); err != nil || !bytes.Equal(a, u) {
				t.Fatalf("Addr(%s) = %q, %v", Pretty(k), a, err)
			}
		}
		// Transaction keys of a key order like the keys themselves.
		uk2 := rapid.SliceOfN(rapid.Byte(), 0, 8).Draw(t, "uk2")
		u2 := UserKey(uk2)
		if c := bytes.Compare(TransactionKey(u, nil), TransactionKey(u2, nil)); c != bytes.Compare(u, u2) {
			t.Fatalf("transaction keys of %q, %q compare %d", u, u2, c)
		}
	})
}

func TestPretty(t *testing.T) {
	for _, tc := range []struct {
		k    []byte
		want string
	}{
		{RaftLogKey(3, 7), "/Local/RangeID/3/u/RaftLog/7"},
		{RaftHardStateKey(3), "/Local/RangeID/3/u/RaftHardState"},
		{RangeDescriptorKey(12), "/Local/RangeID/12/r/Descriptor"},
		{RangeLeaseKey(12), "/Local/RangeID/12/r/Lease"},
		{LockTableKey(UserKey([]byte("k"))), `/Local/Lock/User/"k"`},
		{TransactionKey(UserKey([]byte("k\x00")), []byte("ab")), `/Local/Txn/User/"k\x00"/"ab"`},
		{MetaKey(KeyMax), "/Meta/Max"},
		{MetaKey(UserKey([]byte("m"))), `/Meta/User/"m"`},
		{NodeIDGeneratorKey, `/System/"node-idgen"`},
		{NodeRecordKey(4), "/System/node/4"},
		{UserKey([]byte("a\x00b")), `/User/"a\x00b"`},
		{nil, "/Min"},
		{KeyMax, "/Max"},
	} {
		if got := Pretty(tc.k); got != tc.want {
			t.Errorf("Pretty(%q) = %s, want %s", tc.k, got, tc.want)
		}
	}
}

func TestPrefixEnd(t *testing.T) {
	for _, tc := range []struct{ in, want []byte }{
		{[]byte("a"), []byte("b")},
		{[]byte("a\xff"), []byte("b")},
		{[]byte{}, KeyMax},
		{[]byte{0xff}, []byte{0xff}},
	} {
		if got := PrefixEnd(tc.in); !bytes.Equal(got, tc.want) {
			t.Errorf("PrefixEnd(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
