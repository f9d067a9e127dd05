package clockbound

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

const sec = int64(time.Second)

// goodSegment is a healthy daemon snapshot taken at monotonic time asOf.
func goodSegment(version uint16, asOf int64) Segment {
	return Segment{
		Version:          version,
		Generation:       2,
		AsOf:             asOf,
		VoidAfter:        asOf + 1000*sec,
		BoundNanos:       50_000, // 50 µs
		MaxDriftPPB:      50_000, // 50 ppm
		ClockStatus:      rawSynchronized,
		DisruptionMarker: map[uint16]uint64{1: 0, 2: 7}[version],
	}
}

func mustEncode(t testing.TB, s Segment) []byte {
	t.Helper()
	b, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSegmentLayout(t *testing.T) {
	// Byte offsets from docs/PROTOCOL.md, checked field by field so an
	// Encode/Decode pair that agree with each other but not with the daemon
	// cannot pass.
	ne := binary.NativeEndian
	v2 := goodSegment(2, 100*sec+5)
	v2.DisruptionSupport = true
	b := mustEncode(t, v2)
	if len(b) != 80 {
		t.Fatalf("v2 segment is %d bytes, want 80", len(b))
	}
	checks := []struct {
		name      string
		got, want uint64
	}{
		{"magic0", uint64(ne.Uint32(b[0:])), 0x414D5A4E},
		{"magic1", uint64(ne.Uint32(b[4:])), 0x43420200},
		{"segsize", uint64(ne.Uint32(b[8:])), 80},
		{"version", uint64(ne.Uint16(b[12:])), 2},
		{"generation", uint64(ne.Uint16(b[14:])), 2},
		{"as_of.sec", ne.Uint64(b[16:]), 100},
		{"as_of.nsec", ne.Uint64(b[24:]), 5},
		{"void_after.sec", ne.Uint64(b[32:]), 1100},
		{"bound", ne.Uint64(b[48:]), 50_000},
		{"disruption_marker", ne.Uint64(b[56:]), 7},
		{"max_drift", uint64(ne.Uint32(b[64:])), 50_000},
		{"clock_status", uint64(ne.Uint32(b[68:])), 1},
		{"disruption_support", uint64(b[72]), 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("v2 %s = %d, want %d", c.name, c.got, c.want)
		}
	}
	b1 := mustEncode(t, goodSegment(1, 100*sec))
	if len(b1) != 72 || ne.Uint32(b1[8:]) != 72 || ne.Uint16(b1[12:]) != 1 ||
		ne.Uint32(b1[56:]) != 50_000 || ne.Uint32(b1[64:]) != 1 {
		t.Errorf("v1 layout wrong: % x", b1)
	}
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 && string(b[:8]) != "NZMA\x00\x02BC" {
		t.Errorf("little-endian magic bytes = %q", b[:8])
	}
}

func TestDecodeSegment(t *testing.T) {
	for _, v := range []uint16{1, 2} {
		want := goodSegment(v, 123*sec+456)
		want.SegmentSize = uint32(requiredSize(v))
		got, err := DecodeSegment(mustEncode(t, want))
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		if got != want {
			t.Fatalf("v%d: decoded %+v, want %+v", v, got, want)
		}
	}
	// A larger declared segment (a newer writer) is fine; we read the prefix.
	big := goodSegment(2, sec)
	big.SegmentSize = 4096
	b := append(mustEncode(t, big), make([]byte, 100)...)
	if _, err := DecodeSegment(b); err != nil {
		t.Fatalf("larger segment: %v", err)
	}
}

func TestDecodeSegmentErrors(t *testing.T) {
	good := mustEncode(t, goodSegment(2, 10*sec))
	ne := binary.NativeEndian
	mut := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	for _, tc := range []struct {
		name, want string
		b          []byte
	}{
		{"empty", "shorter than the 16-byte header", nil},
		{"short header", "shorter than the 16-byte header", good[:15]},
		{"bad magic", "bad magic", mut(func(b []byte) { b[0] ^= 0xff })},
		{"byte-swapped magic", "bad magic", mut(func(b []byte) {
			binary.BigEndian.PutUint32(b, ne.Uint32(b))
			binary.BigEndian.PutUint32(b[4:], ne.Uint32(b[4:]))
		})},
		{"version 0", "version 0", mut(func(b []byte) { ne.PutUint16(b[12:], 0) })},
		{"version 3", "unsupported layout version 3", mut(func(b []byte) { ne.PutUint16(b[12:], 3) })},
		{"generation 0", "generation 0", mut(func(b []byte) { ne.PutUint16(b[14:], 0) })},
		{"segsize too small", "declared size 16 bytes, version 2 needs 80", mut(func(b []byte) { ne.PutUint32(b[8:], 16) })},
		{"truncated body", "truncated: 79 bytes", good[:79]},
		{"v1 layout cut to header", "truncated: 16 bytes, version 1 needs 72",
			mut(func(b []byte) { ne.PutUint16(b[12:], 1); ne.PutUint32(b[8:], 72) })[:16]},
		{"as_of nsec out of range", "as_of timespec", mut(func(b []byte) { ne.PutUint64(b[24:], 1e9) })},
		{"as_of negative", "as_of timespec", mut(func(b []byte) { ne.PutUint64(b[16:], math.MaxUint64) })},
		{"void_after huge", "void_after timespec", mut(func(b []byte) { ne.PutUint64(b[32:], math.MaxInt64) })},
		{"negative bound", "negative bound", mut(func(b []byte) { ne.PutUint64(b[48:], math.MaxUint64) })},
		{"drift 1e9", "max drift", mut(func(b []byte) { ne.PutUint32(b[64:], 1e9) })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeSegment(tc.b)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
	if _, err := (Segment{Version: 9}).Encode(); err == nil {
		t.Fatal("Encode of version 9: want error")
	}
}

func TestSegmentBound(t *testing.T) {
	const real = int64(1_700_000_000) * sec
	asOf := 1000 * sec
	seg := goodSegment(2, asOf) // 50 µs at as_of, 50 ppm drift, void after 1000 s
	for _, tc := range []struct {
		name       string
		mod        func(*Segment)
		mono       int64
		wantBound  int64
		wantStatus Status
	}{
		{"at as_of", nil, asOf, 50_000, Synchronized},
		{"just before as_of (clock resolution)", nil, asOf - 999, 50_000, Synchronized},
		{"2 s later: +100 µs drift", nil, asOf + 2*sec, 150_000, Synchronized},
		{"drift rounds up", func(s *Segment) { s.MaxDriftPPB = 1 }, asOf + 1, 50_001, Synchronized},
		{"past 5 s grace: free-running", nil, asOf + 5*sec, 300_000, FreeRunning},
		{"free-running stays until void_after", nil, asOf + 999*sec, 50_000 + 999*50_000, FreeRunning},
		{"void_after passed: unknown", nil, asOf + 1000*sec, 50_000 + 1000*50_000, Unknown},
		{"daemon says free-running", func(s *Segment) { s.ClockStatus = rawFreeRunning }, asOf + sec, 100_000, FreeRunning},
		{"daemon says unknown", func(s *Segment) { s.ClockStatus = rawUnknown }, asOf, 50_000, Unknown},
		{"daemon says disrupted", func(s *Segment) { s.ClockStatus = rawDisrupted }, asOf, 50_000, Unknown},
		{"status value from the future", func(s *Segment) { s.ClockStatus = 42 }, asOf, 50_000, Unknown},
		{"negative status", func(s *Segment) { s.ClockStatus = -1 }, asOf, 50_000, Unknown},
		{"void_after before grace ends", func(s *Segment) { s.VoidAfter = asOf + sec }, asOf + 2*sec, 150_000, Synchronized},
		{"zero drift", func(s *Segment) { s.MaxDriftPPB = 0 }, asOf + 3*sec, 50_000, Synchronized},
		{"huge age saturates", func(s *Segment) { s.BoundNanos = math.MaxInt64 - 10; s.AsOf = 0 }, math.MaxInt64, math.MaxInt64, Unknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := seg
			if tc.mod != nil {
				tc.mod(&s)
			}
			r, err := s.Bound(real, tc.mono)
			if err != nil {
				t.Fatal(err)
			}
			want := interval(real, tc.wantBound, tc.wantStatus)
			if r != want {
				t.Fatalf("Bound = %v, want %v", r, want)
			}
		})
	}
	if _, err := seg.Bound(real, asOf-int64(time.Microsecond)-1); err == nil || !strings.Contains(err.Error(), "causality") {
		t.Fatalf("mono before as_of: error %v, want causality breach", err)
	}
	bad := seg
	bad.MaxDriftPPB = 1e9
	if _, err := bad.Bound(real, asOf); !errors.Is(err, ErrMalformed) {
		t.Fatalf("drift 1e9: error %v, want ErrMalformed", err)
	}
}

// TestSegmentRoundTrip: every segment Encode accepts decodes to itself, and
// its bound always contains the real time it was centred on.
func TestSegmentRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		v := rapid.Uint16Range(1, 2).Draw(t, "version")
		s := Segment{
			Version:     v,
			Generation:  rapid.Uint16Range(1, math.MaxUint16).Draw(t, "gen"),
			AsOf:        rapid.Int64Range(0, math.MaxInt64/2).Draw(t, "asOf"),
			VoidAfter:   rapid.Int64Range(0, math.MaxInt64/2).Draw(t, "voidAfter"),
			BoundNanos:  rapid.Int64Range(0, math.MaxInt64).Draw(t, "bound"),
			MaxDriftPPB: rapid.Uint32Range(0, maxDriftLimitPPB-1).Draw(t, "drift"),
			ClockStatus: rapid.Int32Range(-1, 4).Draw(t, "status"),
		}
		s.SegmentSize = uint32(requiredSize(v))
		if v == 2 {
			s.DisruptionMarker = rapid.Uint64().Draw(t, "marker")
			s.DisruptionSupport = rapid.Bool().Draw(t, "support")
		}
		b, err := s.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeSegment(b)
		if err != nil {
			t.Fatalf("decode of encoded %+v: %v", s, err)
		}
		if got != s {
			t.Fatalf("round trip: %+v != %+v", got, s)
		}
		real := rapid.Int64().Draw(t, "real")
		mono := rapid.Int64Range(s.AsOf, math.MaxInt64).Draw(t, "mono")
		r, err := got.Bound(real, mono)
		if err != nil {
			t.Fatal(err)
		}
		if !(r.Earliest <= real && real <= r.Latest) {
			t.Fatalf("reading %v does not contain real %d", r, real)
		}
		if mono >= s.VoidAfter && mono >= s.AsOf+int64(restartGrace) && r.Status != Unknown {
			t.Fatalf("past void_after and grace but status %s", r.Status)
		}
	})
}

func FuzzDecodeSegment(f *testing.F) {
	for _, v := range []uint16{1, 2} {
		b, _ := goodSegment(v, 10*sec).Encode()
		f.Add(b)
		f.Add(b[:len(b)-1])
	}
	f.Add([]byte{})
	f.Add([]byte("NZMA\x00\x02BC\x50\x00\x00\x00\x02\x00\x02\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSegment(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// Anything accepted must re-encode to the bytes it came from (up to
		// padding and the part of the segment this reader does not know).
		enc, err := s.Encode()
		if err != nil {
			t.Fatalf("accepted segment %+v does not encode: %v", s, err)
		}
		for i := range enc {
			if i >= 73 || (s.Version == 1 && (i >= 60 && i < 64 || i >= 68)) {
				continue // padding and reserved bytes
			}
			if s.Version == 2 && i == 72 {
				if (enc[i] != 0) != (b[i] != 0) {
					t.Fatalf("disruption support byte %#x decoded as %v", b[i], s.DisruptionSupport)
				}
				continue // any non-zero byte is true
			}
			if enc[i] != b[i] {
				t.Fatalf("byte %d: re-encoded %#x, input %#x (segment %+v)", i, enc[i], b[i], s)
			}
		}
		// And computing a bound from it never panics.
		_, _ = s.Bound(0, s.AsOf)
		_, _ = s.Bound(math.MaxInt64, math.MaxInt64)
	})
}

func FuzzDecodeVMClockHeader(f *testing.F) {
	good := make([]byte, 24)
	binary.LittleEndian.PutUint32(good, vmclockMagic)
	binary.LittleEndian.PutUint32(good[4:], 104)
	binary.LittleEndian.PutUint16(good[8:], 1)
	f.Add(good)
	f.Add(good[:20])
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, _, err := decodeVMClockHeader(b); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v does not wrap ErrMalformed", err)
		}
	})
}
