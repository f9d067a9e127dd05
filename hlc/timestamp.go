package hlc

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Timestamp is a hybrid logical clock reading: a wall time in nanoseconds
// since the Unix epoch and a logical counter that orders events sharing a
// wall time. The zero Timestamp is "empty" and sorts before every other.
type Timestamp struct {
	WallTime int64 // nanoseconds since the Unix epoch
	Logical  int32
}

// MaxTimestamp sorts after every other timestamp.
var MaxTimestamp = Timestamp{WallTime: math.MaxInt64, Logical: math.MaxInt32}

// IsEmpty reports whether t is the zero timestamp.
func (t Timestamp) IsEmpty() bool { return t == Timestamp{} }

// Less reports whether t sorts before u.
func (t Timestamp) Less(u Timestamp) bool {
	return t.WallTime < u.WallTime || (t.WallTime == u.WallTime && t.Logical < u.Logical)
}

// LessEq reports whether t sorts before u or equals it.
func (t Timestamp) LessEq(u Timestamp) bool { return !u.Less(t) }

// Compare returns -1, 0 or +1 as t sorts before, equal to or after u.
func (t Timestamp) Compare(u Timestamp) int {
	switch {
	case t.Less(u):
		return -1
	case u.Less(t):
		return 1
	default:
		return 0
	}
}

// Next returns the smallest timestamp greater than t.
func (t Timestamp) Next() Timestamp {
	if t.Logical == math.MaxInt32 {
		return Timestamp{WallTime: t.WallTime + 1}
	}
	return Timestamp{WallTime: t.WallTime, Logical: t.Logical + 1}
}

// Prev returns the largest timestamp smaller than t. Prev of the empty
// timestamp is the empty timestamp.
func (t Timestamp) Prev() Timestamp {
	switch {
	case t.Logical > 0:
		return Timestamp{WallTime: t.WallTime, Logical: t.Logical - 1}
	case t.WallTime > 0:
		return Timestamp{WallTime: t.WallTime - 1, Logical: math.MaxInt32}
	default:
		return Timestamp{}
	}
}

// Forward returns the later of t and u.
func (t Timestamp) Forward(u Timestamp) Timestamp {
	if t.Less(u) {
		return u
	}
	return t
}

// Backward returns the earlier of t and u.
func (t Timestamp) Backward(u Timestamp) Timestamp {
	if u.Less(t) {
		return u
	}
	return t
}

// AddNanos returns t moved by nanos on the wall-time axis, with a zero
// logical part.
func (t Timestamp) AddNanos(nanos int64) Timestamp {
	return Timestamp{WallTime: t.WallTime + nanos}
}

// String renders t as "<seconds>.<nanoseconds, 9 digits>,<logical>", for
// example "1732550000.000000123,4". The form is stable: logs, the CLI and
// `AS OF SYSTEM TIME` use it, and ParseTimestamp reads it back.
func (t Timestamp) String() string {
	var buf [40]byte
	b := t.AppendFormat(buf[:0])
	return string(b)
}

// AppendFormat appends the String form of t to b.
func (t Timestamp) AppendFormat(b []byte) []byte {
	w := t.WallTime
	if w < 0 {
		b = append(b, '-')
		w = -w
	}
	b = strconv.AppendInt(b, w/1e9, 10)
	b = append(b, '.')
	frac := w % 1e9
	for d := int64(1e8); d > 0; d /= 10 {
		b = append(b, byte('0'+frac/d%10))
	}
	b = append(b, ',')
	return strconv.AppendInt(b, int64(t.Logical), 10)
}

// ParseTimestamp reads the String form of a timestamp. The ",logical" suffix
// may be omitted (logical 0), and the fractional part may have 1 to 9 digits
// ("1732550000.5" is half a second past); a bare integer is whole seconds.
func ParseTimestamp(s string) (Timestamp, error) {
	orig := s
	bad := func(why string) (Timestamp, error) {
		return Timestamp{}, fmt.Errorf("hlc: invalid timestamp %q: %s", orig, why)
	}
	var logical int64
	if i := strings.IndexByte(s, ','); i >= 0 {
		var err error
		logical, err = strconv.ParseInt(s[i+1:], 10, 32)
		if err != nil || logical < 0 {
			return bad("logical part must be an integer in [0, 2^31)")
		}
		s = s[:i]
	}
	secPart, fracPart, hasFrac := strings.Cut(s, ".")
	if secPart == "" || secPart[0] == '-' || secPart[0] == '+' {
		return bad("seconds must be a non-negative integer")
	}
	sec, err := strconv.ParseInt(secPart, 10, 64)
	if err != nil || sec > math.MaxInt64/int64(1e9) {
		return bad("seconds must be a non-negative integer that fits in int64 nanoseconds")
	}
	var nanos int64
	if hasFrac {
		if len(fracPart) == 0 || len(fracPart) > 9 {
			return bad("fractional seconds must have 1 to 9 digits")
		}
		for _, c := range fracPart {
			if c < '0' || c > '9' {
				return bad("fractional seconds must be digits")
			}
		}
		n, _ := strconv.ParseInt(fracPart, 10, 64)
		for i := len(fracPart); i < 9; i++ {
			n *= 10
		}
		nanos = n
	}
	if sec == math.MaxInt64/int64(1e9) && nanos > math.MaxInt64%int64(1e9) {
		return bad("seconds must be a non-negative integer that fits in int64 nanoseconds")
	}
	return Timestamp{WallTime: sec*1e9 + nanos, Logical: int32(logical)}, nil
}
