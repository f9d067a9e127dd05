package clockbound

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/meridiandb/meridian/hlc"
)

func BenchmarkNow(b *testing.B) {
	clock := hlc.SystemClock{}
	static, _ := NewStatic(clock, 250*time.Millisecond)
	b.Run("static", func(b *testing.B) { benchNow(b, static) })
	b.Run("adjtimex", func(b *testing.B) {
		if runtime.GOOS != "linux" {
			b.Skip("linux only")
		}
		benchNow(b, NewAdjtimex(clock))
	})
	b.Run("clockbound", func(b *testing.B) {
		if runtime.GOOS != "linux" {
			b.Skip("linux only")
		}
		cb := benchClockBound(b, clock)
		benchNow(b, cb)
	})
	b.Run("clockbound-new-generation", func(b *testing.B) {
		// Worst case: the daemon wrote since the last read, so every call
		// copies and decodes the segment (in production: once a second).
		if runtime.GOOS != "linux" {
			b.Skip("linux only")
		}
		cb := benchClockBound(b, clock)
		b.ReportAllocs()
		for b.Loop() {
			cb.snap.Store(nil)
			if _, err := cb.Now(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("auto-static-fallback", func(b *testing.B) {
		a, _ := NewAuto(AutoConfig{
			ClockBound: mustClockBound(b, clock, filepath.Join(b.TempDir(), "absent")),
			Adjtimex:   NewAdjtimex(clock),
			Static:     static,
		})
		defer a.Close()
		benchNow(b, a)
	})
	b.Run("auto-clockbound", func(b *testing.B) {
		if runtime.GOOS != "linux" {
			b.Skip("linux only")
		}
		a, _ := NewAuto(AutoConfig{ClockBound: benchClockBound(b, clock), Adjtimex: NewAdjtimex(clock), Static: static})
		benchNow(b, a)
	})
}

func benchNow(b *testing.B, src Source) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := src.Now(); err != nil {
			b.Fatal(err)
		}
	}
}

func mustClockBound(b *testing.B, clock hlc.PhysicalClock, path string) *ClockBound {
	cb, err := NewClockBound(ClockBoundConfig{Clock: clock, Paths: []string{path}})
	if err != nil {
		b.Fatal(err)
	}
	return cb
}

// benchClockBound serves a fresh segment stamped with the real monotonic
// clock, so readings are Synchronized for the 5 s grace period.
func benchClockBound(b *testing.B, clock hlc.PhysicalClock) *ClockBound {
	path := filepath.Join(b.TempDir(), "shm0")
	cb := mustClockBound(b, clock, path)
	b.Cleanup(func() { cb.Close() })
	seg := goodSegment(2, cb.mono())
	seg.VoidAfter = seg.AsOf + int64(time.Hour)
	if err := os.WriteFile(path, mustEncode(b, seg), 0o644); err != nil {
		b.Fatal(err)
	}
	if r, err := cb.Now(); err != nil || r.Status != Synchronized {
		b.Fatalf("fixture: %v, %v", r, err)
	}
	return cb
}

func BenchmarkWaitUntilAfterNoWait(b *testing.B) {
	static, _ := NewStatic(hlc.SystemClock{}, time.Millisecond)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := WaitUntilAfter(b.Context(), static, 0); err != nil {
			b.Fatal(err)
		}
	}
}
