package keys

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/meridiandb/meridian/hlc"
)

const (
	sentinel       = 0x00
	wallLen        = 8
	wallLogicalLen = 12
	// suffixWall and suffixWallLogical are the two valid length bytes of a
	// versioned engine key: the timestamp bytes plus the length byte itself.
	suffixWall        = wallLen + 1
	suffixWallLogical = wallLogicalLen + 1
	// MaxEngineKeyOverhead is the most bytes EncodeEngineKey adds to a key.
	MaxEngineKeyOverhead = 1 + suffixWallLogical
)

// ErrBadEngineKey is wrapped by every DecodeEngineKey error.
var ErrBadEngineKey = errors.New("keys: malformed engine key")

// EncodeEngineKey returns the Pebble key of key at ts. An empty ts gives the
// unversioned key (key | 0x00), which sorts before every version of key.
// ts.WallTime must not be negative (hlc never produces one).
func EncodeEngineKey(key []byte, ts hlc.Timestamp) []byte {
	return AppendEngineKey(make([]byte, 0, len(key)+MaxEngineKeyOverhead), key, ts)
}

// AppendEngineKey appends the engine key of key at ts to dst.
func AppendEngineKey(dst, key []byte, ts hlc.Timestamp) []byte {
	dst = append(dst, key...)
	dst = append(dst, sentinel)
	return AppendEngineSuffix(dst, ts)
}

// AppendEngineSuffix appends the version suffix of ts (nothing for an empty
// ts) to dst.
func AppendEngineSuffix(dst []byte, ts hlc.Timestamp) []byte {
	if ts.IsEmpty() {
		return dst
	}
	dst = binary.BigEndian.AppendUint64(dst, uint64(ts.WallTime))
	if ts.Logical == 0 {
		return append(dst, suffixWall)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(ts.Logical))
	return append(dst, suffixWallLogical)
}

// DecodeEngineKey splits an engine key into its key and timestamp (empty for
// an unversioned key). The returned key aliases b. Malformed input gives an
// error wrapping ErrBadEngineKey, never a panic.
func DecodeEngineKey(b []byte) (key []byte, ts hlc.Timestamp, err error) {
	n := len(b)
	if n == 0 {
		return nil, hlc.Timestamp{}, fmt.Errorf("%w: empty", ErrBadEngineKey)
	}
	suffixLen := int(b[n-1])
	if suffixLen == 0 {
		return b[: n-1 : n-1], hlc.Timestamp{}, nil
	}
	if suffixLen != suffixWall && suffixLen != suffixWallLogical {
		return nil, hlc.Timestamp{}, fmt.Errorf("%w: bad length byte %d in %x", ErrBadEngineKey, suffixLen, b)
	}
	if n < suffixLen+1 || b[n-suffixLen-1] != sentinel {
		return nil, hlc.Timestamp{}, fmt.Errorf("%w: missing sentinel in %x", ErrBadEngineKey, b)
	}
	ts, err = decodeSuffix(b[n-suffixLen:])
	if err != nil {
		return nil, hlc.Timestamp{}, err
	}
	k := n - suffixLen - 1
	return b[:k:k], ts, nil
}

// DecodeEngineSuffix decodes the timestamp of a version suffix (as returned
// by Pebble's Split), for block-property and suffix code. An empty suffix is
// the empty timestamp.
func DecodeEngineSuffix(suffix []byte) (hlc.Timestamp, error) {
	if len(suffix) == 0 {
		return hlc.Timestamp{}, nil
	}
	if int(suffix[len(suffix)-1]) != len(suffix) {
		return hlc.Timestamp{}, fmt.Errorf("%w: bad suffix %x", ErrBadEngineKey, suffix)
	}
	return decodeSuffix(suffix)
}

// decodeSuffix decodes a suffix whose length byte matches its length (9 or
// 13) and enforces the canonical form.
func decodeSuffix(s []byte) (hlc.Timestamp, error) {
	wall := binary.BigEndian.Uint64(s)
	if wall > 1<<63-1 {
		return hlc.Timestamp{}, fmt.Errorf("%w: negative wall time in %x", ErrBadEngineKey, s)
	}
	ts := hlc.Timestamp{WallTime: int64(wall)}
	if len(s) == suffixWallLogical {
		logical := binary.BigEndian.Uint32(s[wallLen:])
		if logical == 0 || logical > 1<<31-1 {
			return hlc.Timestamp{}, fmt.Errorf("%w: non-canonical logical %d in %x", ErrBadEngineKey, logical, s)
		}
		ts.Logical = int32(logical)
	} else if len(s) != suffixWall {
		return hlc.Timestamp{}, fmt.Errorf("%w: bad suffix length %d", ErrBadEngineKey, len(s))
	}
	if ts.IsEmpty() {
		return hlc.Timestamp{}, fmt.Errorf("%w: empty timestamp encoded as a version", ErrBadEngineKey)
	}
	return ts, nil
}

// split returns the length of the prefix of engine key k: the key plus its
// 0x00 sentinel. It never panics; keys that are not engine keys are all
// prefix.
func split(k []byte) int {
	n := len(k)
	if n == 0 {
		return 0
	}
	s := int(k[n-1])
	if s > n {
		return n
	}
	return n - s
}

// compareSuffixes orders version suffixes: the empty suffix first, then
// timestamps descending. Suffixes are canonical (no zero logical), so
// comparing the encoded timestamps bytewise, reversed, is exact: a wall-only
// suffix is a byte prefix of the same wall with a logical part and therefore
// sorts after it, as (w,0) < (w,l>0) requires for descending order.
func compareSuffixes(a, b []byte) int {
	if len(a) == 0 || len(b) == 0 {
		return cmp.Compare(len(a), len(b))
	}
	return bytes.Compare(b[:len(b)-1], a[:len(a)-1])
}

// Compare orders engine keys: key ascending, then the unversioned key, then
// versions by timestamp descending.
func Compare(a, b []byte) int {
	an, bn := split(a), split(b)
	if c := bytes.Compare(a[:an], b[:bn]); c != 0 {
		return c
	}
	return compareSuffixes(a[an:], b[bn:])
}

// userPart returns the key part of engine key k (its prefix without the
// sentinel), or false when k is not shaped like an engine key.
func userPart(k []byte) ([]byte, bool) {
	n := split(k)
	if n == 0 || k[n-1] != sentinel {
		return nil, false
	}
	return k[:n-1], true
}

// Comparer is the one Pebble comparer for every key a node stores. Its Name
// is stored in the database: never change the encoding under it.
var Comparer = &pebble.Comparer{
	Compare:              Compare,
	Equal:                bytes.Equal, // the encoding is canonical
	Split:                split,
	ComparePointSuffixes: compareSuffixes,
	CompareRangeSuffixes: compareSuffixes,
	AbbreviatedKey: func(k []byte) uint64 {
		return pebble.DefaultComparer.AbbreviatedKey(k[:split(k)])
	},
	Separator: func(dst, a, b []byte) []byte {
		ak, ok1 := userPart(a)
		bk, ok2 := userPart(b)
		if !ok1 || !ok2 || len(ak) == 0 || len(bk) == 0 || bytes.Equal(ak, bk) {
			return append(dst, a...)
		}
		n := len(dst)
		dst = pebble.DefaultComparer.Separator(dst, ak, bk)
		if bytes.Equal(dst[n:], ak) {
			return append(dst[:n], a...)
		}
		// The separator differs from ak at a byte it incremented, so
		// every version of ak sorts before it; it stays below bk.
		return append(dst, sentinel)
	},
	Successor: func(dst, a []byte) []byte {
		if len(a) == 0 {
			return append(dst, sentinel) // the empty key, unversioned
		}
		ak, ok := userPart(a)
		if !ok {
			return append(dst, a...)
		}
		n := len(dst)
		dst = pebble.DefaultComparer.Successor(dst, ak)
		if bytes.Equal(dst[n:], ak) {
			return append(dst[:n], a...)
		}
		return append(dst, sentinel)
	},
	// ImmediateSuccessor gets a prefix (key | 0x00) and returns the next
	// prefix: the key k|0x00, unversioned, i.e. k | 0x00 | 0x00.
	ImmediateSuccessor: func(dst, a []byte) []byte {
		return append(append(dst, a...), sentinel)
	},
	FormatKey: func(k []byte) fmt.Formatter { return engineKeyFormatter(k) },
	ValidateKey: func(k []byte) error {
		_, _, err := DecodeEngineKey(k)
		return err
	},
	Name: "meridian.engine.v1",
}

type engineKeyFormatter []byte

func (f engineKeyFormatter) Format(s fmt.State, _ rune) {
	fmt.Fprint(s, PrettyEngineKey(f))
}
