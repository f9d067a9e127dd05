package concurrency

import (
	"bytes"
	"fmt"

	"github.com/meridiandb/meridian/hlc"
)

// Span is the key interval [Key, EndKey). An empty EndKey (nil or zero
// length) makes it a point span covering Key alone. Keys compare bytewise.
type Span struct {
	Key    []byte
	EndKey []byte
}

// IsPoint reports whether s covers the single key s.Key.
func (s Span) IsPoint() bool { return len(s.EndKey) == 0 }

// Valid reports whether s is a point or a non-empty interval.
func (s Span) Valid() bool { return s.IsPoint() || bytes.Compare(s.Key, s.EndKey) < 0 }

// Overlaps reports whether s and o share at least one key.
func (s Span) Overlaps(o Span) bool {
	return before(s.Key, o.end()) && before(o.Key, s.end())
}

func (s Span) String() string {
	if s.IsPoint() {
		return fmt.Sprintf("%q", s.Key)
	}
	return fmt.Sprintf("[%q,%q)", s.Key, s.EndKey)
}

// bound is the exclusive upper end of a span: keys strictly before it are
// inside. A point span on k ends at the inclusive bound {k, true}, which
// admits the same keys as the exclusive bound k+"\x00" without allocating it.
type bound struct {
	key  []byte
	incl bool
}

func (s Span) end() bound {
	if s.IsPoint() {
		return bound{key: s.Key, incl: true}
	}
	return bound{key: s.EndKey}
}

// before reports whether key k lies below bound b.
func before(k []byte, b bound) bool {
	c := bytes.Compare(k, b.key)
	return c < 0 || (c == 0 && b.incl)
}

// less orders bounds consistently with before: if a.less(b), every key
// before a is also before b.
func (a bound) less(b bound) bool {
	c := bytes.Compare(a.key, b.key)
	return c < 0 || (c == 0 && !a.incl && b.incl)
}

// Access is the kind of latch a span is declared with.
type Access uint8

const (
	// Read latches admit other reads, and writes above their timestamp.
	Read Access = iota
	// Write latches exclude every overlapping write, and reads at or above
	// their timestamp.
	Write
)

func (a Access) String() string {
	if a == Write {
		return "write"
	}
	return "read"
}

// LatchSpan is one declared span: its access and the timestamp it is
// declared at. An empty Timestamp declares a non-MVCC access, which
// conflicts with every access of the other kind (see Conflicts).
type LatchSpan struct {
	Span
	Access    Access
	Timestamp hlc.Timestamp
}

// Conflicts reports whether latches a and b, if their spans overlap, may
// not be held at once. The rule, as in CockroachDB's spanlatch manager:
//
//   - read/read never conflict;
//   - write/write always conflict, whatever their timestamps;
//   - a read at r and a write at w conflict iff w <= r (the read could
//     observe the write), or either timestamp is empty (a non-MVCC access
//     conflicts with every access of the other kind).
//
// A reader must therefore declare its read at the highest timestamp it may
// observe: for a read with an uncertainty window, the uncertainty limit.
func Conflicts(a, b LatchSpan) bool {
	if a.Access == Read && b.Access == Read {
		return false
	}
	if !a.Span.Overlaps(b.Span) {
		return false
	}
	if a.Access == Write && b.Access == Write {
		return true
	}
	r, w := a, b
	if r.Access == Write {
		r, w = b, a
	}
	return r.Timestamp.IsEmpty() || w.Timestamp.IsEmpty() || w.Timestamp.LessEq(r.Timestamp)
}

// SpanSet is the set of spans a request declares before evaluation. The
// zero value is an empty set, ready to use. Spans of one set never conflict
// with each other: a request may read and write the same key.
type SpanSet struct {
	spans []LatchSpan
}

// AddRead declares a read of [key, endKey) (a point read of key if endKey
// is empty) at ts.
func (s *SpanSet) AddRead(key, endKey []byte, ts hlc.Timestamp) {
	s.spans = append(s.spans, LatchSpan{Span: Span{Key: key, EndKey: endKey}, Access: Read, Timestamp: ts})
}

// AddWrite declares a write of [key, endKey) (a point write of key if
// endKey is empty) at ts.
func (s *SpanSet) AddWrite(key, endKey []byte, ts hlc.Timestamp) {
	s.spans = append(s.spans, LatchSpan{Span: Span{Key: key, EndKey: endKey}, Access: Write, Timestamp: ts})
}

// Len returns the number of declared spans.
func (s *SpanSet) Len() int { return len(s.spans) }

// Spans returns the declared spans in the order they were added. The slice
// is shared with s; callers must not modify it.
func (s *SpanSet) Spans() []LatchSpan { return s.spans }

// Reset empties s, keeping its storage for reuse.
func (s *SpanSet) Reset() { s.spans = s.spans[:0] }

// validate checks every span is a point or a non-empty interval.
func (s *SpanSet) validate() error {
	for _, sp := range s.spans {
		if !sp.Valid() {
			return fmt.Errorf("concurrency: invalid %s span %s: start key must sort before end key", sp.Access, sp.Span)
		}
	}
	return nil
}
