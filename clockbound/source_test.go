package clockbound

import (
	"math"
	"testing"
	"time"

	"github.com/meridiandb/meridian/hlc"
)

func TestStatusString(t *testing.T) {
	for s, want := range map[Status]string{
		Unknown: "unknown", Synchronized: "synchronized", FreeRunning: "free-running", Status(9): "status(9)",
	} {
		if got := s.String(); got != want {
			t.Errorf("Status(%d).String() = %q, want %q", int8(s), got, want)
		}
	}
	var zero Reading
	if zero.Status != Unknown {
		t.Fatalf("zero Reading has status %s, want unknown", zero.Status)
	}
}

func TestReadingHelpers(t *testing.T) {
	r := Reading{Earliest: 100, Latest: 300, Status: Synchronized}
	if r.Width() != 200 || r.Midpoint() != 200 {
		t.Fatalf("Width %d Midpoint %d, want 200 200", r.Width(), r.Midpoint())
	}
	if got := interval(math.MaxInt64-5, 10, Synchronized); got.Latest != math.MaxInt64 || got.Earliest != math.MaxInt64-15 {
		t.Fatalf("interval near MaxInt64 = %+v, want saturated latest", got)
	}
	if got := interval(math.MinInt64+5, 10, Synchronized); got.Earliest != math.MinInt64 {
		t.Fatalf("interval near MinInt64 = %+v, want saturated earliest", got)
	}
	if got := interval(7, -3, Unknown); got.Earliest != 7 || got.Latest != 7 {
		t.Fatalf("negative bound gave %+v, want a point", got)
	}
}

func TestStatic(t *testing.T) {
	clock := hlc.NewManualClock(1_000_000_000)
	s, err := NewStatic(clock, 250*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Now()
	if err != nil {
		t.Fatal(err)
	}
	want := Reading{Earliest: 750_000_000, Latest: 1_250_000_000, Status: Synchronized}
	if r != want {
		t.Fatalf("Now = %+v, want %+v", r, want)
	}
	// The reading follows the injected clock, skew included.
	off := hlc.NewOffsetClock(clock)
	off.SetOffset(time.Second)
	s2, _ := NewStatic(off, 250*time.Millisecond)
	if r2, _ := s2.Now(); r2.Earliest != r.Earliest+int64(time.Second) {
		t.Fatalf("static over skewed clock: %+v, want shifted by 1s from %+v", r2, r)
	}
	if s.Name() != "static" || s.MaxOffset() != 250*time.Millisecond {
		t.Fatalf("Name %q MaxOffset %s", s.Name(), s.MaxOffset())
	}
	if _, err := NewStatic(clock, 0); err == nil {
		t.Fatal("NewStatic with zero max offset: want error")
	}
	if _, err := NewStatic(nil, time.Second); err == nil {
		t.Fatal("NewStatic with nil clock: want error")
	}
}

func TestReadingExtremes(t *testing.T) {
	r := Reading{Earliest: math.MinInt64, Latest: math.MaxInt64}
	if r.Width() != math.MaxInt64 {
		t.Fatalf("Width of the whole line = %d, want saturated", r.Width())
	}
	if m := r.Midpoint(); m != 0 && m != -1 {
		t.Fatalf("Midpoint of the whole line = %d", m)
	}
	if m := (Reading{Earliest: -3, Latest: -1}).Midpoint(); m != -2 {
		t.Fatalf("Midpoint(-3,-1) = %d", m)
	}
	if m := (Reading{Earliest: 3, Latest: 6}).Midpoint(); m != 4 {
		t.Fatalf("Midpoint(3,6) = %d", m)
	}
}
