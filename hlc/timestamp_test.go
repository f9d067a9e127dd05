package hlc

import (
	"math"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// genTimestamp draws timestamps that are non-negative (wall times are
// nanoseconds since the Unix epoch), biased towards the edges of each field.
func genTimestamp() *rapid.Generator[Timestamp] {
	return rapid.Custom(func(t *rapid.T) Timestamp {
		wall := rapid.OneOf(
			rapid.Int64Range(0, 3),
			rapid.Int64Range(t0-3, t0+3),
			rapid.Int64Range(math.MaxInt64-3, math.MaxInt64),
			rapid.Int64Min(0),
		).Draw(t, "wall")
		logical := rapid.OneOf(
			rapid.Int32Range(0, 3),
			rapid.Int32Range(math.MaxInt32-3, math.MaxInt32),
			rapid.Int32Min(0),
		).Draw(t, "logical")
		return Timestamp{WallTime: wall, Logical: logical}
	})
}

func TestTimestampOrderProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		a, b, c := genTimestamp().Draw(rt, "a"), genTimestamp().Draw(rt, "b"), genTimestamp().Draw(rt, "c")
		if a.Less(a) {
			rt.Fatalf("Less is not irreflexive: %s < %s", a, a)
		}
		if a.Less(b) && b.Less(a) {
			rt.Fatalf("Less is not asymmetric for %s, %s", a, b)
		}
		if a.Less(b) && b.Less(c) && !a.Less(c) {
			rt.Fatalf("Less is not transitive: %s < %s < %s", a, b, c)
		}
		// Total: exactly one of <, =, > holds, and Compare says which.
		n := 0
		for _, holds := range []bool{a.Less(b), a == b, b.Less(a)} {
			if holds {
				n++
			}
		}
		if n != 1 {
			rt.Fatalf("%s and %s are not totally ordered", a, b)
		}
		want := 0
		if a.Less(b) {
			want = -1
		} else if b.Less(a) {
			want = 1
		}
		if got := a.Compare(b); got != want {
			rt.Fatalf("Compare(%s, %s) = %d, want %d", a, b, got, want)
		}
		if a.LessEq(b) != (a.Less(b) || a == b) {
			rt.Fatalf("LessEq(%s, %s) disagrees with Less", a, b)
		}
		// The order is lexicographic on (WallTime, Logical).
		lex := a.WallTime < b.WallTime || a.WallTime == b.WallTime && a.Logical < b.Logical
		if a.Less(b) != lex {
			rt.Fatalf("Less(%s, %s) is not the (WallTime, Logical) order", a, b)
		}
		if f := a.Forward(b); f.Less(a) || f.Less(b) || (f != a && f != b) {
			rt.Fatalf("Forward(%s, %s) = %s", a, b, f)
		}
		if bw := a.Backward(b); a.Less(bw) || b.Less(bw) || (bw != a && bw != b) {
			rt.Fatalf("Backward(%s, %s) = %s", a, b, bw)
		}
		if a.IsEmpty() != (a == Timestamp{}) || (!a.IsEmpty() && !(Timestamp{}).Less(a)) {
			rt.Fatalf("the empty timestamp does not sort first against %s", a)
		}
	})
}

func TestTimestampNextPrev(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		a := genTimestamp().Draw(rt, "a")
		if a.WallTime < math.MaxInt64 { // Next of the last wall nanosecond's last logical has nowhere to go
			n := a.Next()
			if !a.Less(n) {
				rt.Fatalf("Next(%s) = %s, not above it", a, n)
			}
			if n.Prev() != a {
				rt.Fatalf("Next(%s).Prev() = %s", a, n.Prev())
			}
		}
		if !a.IsEmpty() {
			p := a.Prev()
			if !p.Less(a) {
				rt.Fatalf("Prev(%s) = %s, not below it", a, p)
			}
			if p.Next() != a {
				rt.Fatalf("Prev(%s).Next() = %s", a, p.Next())
			}
		}
		// Nothing lies strictly between a and Next(a).
		b := genTimestamp().Draw(rt, "b")
		if a.WallTime < math.MaxInt64 && a.Less(b) && b.Less(a.Next()) {
			rt.Fatalf("%s lies between %s and its Next %s", b, a, a.Next())
		}
	})
}

func TestTimestampStringRoundTrip(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		a := genTimestamp().Draw(rt, "a")
		s := a.String()
		got, err := ParseTimestamp(s)
		if err != nil {
			rt.Fatalf("ParseTimestamp(%q): %v", s, err)
		}
		if got != a {
			rt.Fatalf("ParseTimestamp(%q) = %+v, want %+v", s, got, a)
		}
	})
}

func TestParseTimestamp(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Timestamp
	}{
		{"1732550000.000000123,4", ts(1732550000_000000123, 4)},
		{"1732550000.5", ts(1732550000_500000000, 0)},
		{"1732550000", ts(1732550000_000000000, 0)},
		{"0.000000001,0", ts(1, 0)},
		{"0,2147483647", ts(0, math.MaxInt32)},
		{"9223372036.854775807,2147483647", MaxTimestamp},
	} {
		got, err := ParseTimestamp(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseTimestamp(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{
		"", " ", "abc", ".5", "1.", "1.0000000001", "-1.5", "+1", "1,", "1,-1", "1,2147483648",
		"1.5x", "1.5,4,5", "99999999999999999999", "9223372037", "9223372036.854775808", "1 .5", "1.5 ", "0x10", "1e9",
		"1.٣", "1,4.5",
	} {
		if ts, err := ParseTimestamp(in); err == nil {
			t.Errorf("ParseTimestamp(%q) = %s, want an error", in, ts)
		} else if !strings.HasPrefix(err.Error(), "hlc: invalid timestamp") {
			t.Errorf("ParseTimestamp(%q) error %q lacks the package prefix", in, err)
		}
	}
}

// FuzzParseTimestamp: ParseTimestamp never panics, and every string it
// accepts denotes a timestamp whose String form parses back to the same
// timestamp (the canonical form may differ from the input: "1.5" becomes
// "1.500000000,0").
func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{
		"1732550000.000000123,4", "1732550000.5", "1732550000", "0", "1.", ",", "-1", "+1,+1",
		"9223372035.999999999,2147483647", "1.0000000001", "1,2147483648",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTimestamp(s)
		if err != nil {
			return
		}
		if got.WallTime < 0 || got.Logical < 0 {
			t.Fatalf("ParseTimestamp(%q) = %+v, negative", s, got)
		}
		again, err := ParseTimestamp(got.String())
		if err != nil {
			t.Fatalf("ParseTimestamp(%q) = %s, whose String does not parse: %v", s, got, err)
		}
		if again != got {
			t.Fatalf("ParseTimestamp(%q) = %+v; through String %q it becomes %+v", s, got, got.String(), again)
		}
	})
}
