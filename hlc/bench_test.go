package hlc

import (
	"testing"
	"time"
)

// The clock benchmarks. Run with
//
//	go test -run '^$' -bench . -benchmem ./hlc
//
// Now and Update must report 0 allocs/op.

func BenchmarkClockNow(b *testing.B) {
	b.Run("system", func(b *testing.B) {
		c := NewClock(SystemClock{}, 250*time.Millisecond)
		b.ReportAllocs()
		for b.Loop() {
			c.Now()
		}
	})
	b.Run("manual-stopped", func(b *testing.B) {
		// The physical clock stands still: every call takes the logical path.
		c := NewClock(NewManualClock(t0), 250*time.Millisecond)
		b.ReportAllocs()
		for b.Loop() {
			c.Now()
		}
	})
	b.Run("system-persistent", func(b *testing.B) {
		// In-memory store: the cost of the bound check, not of fsync.
		c, err := NewPersistentClock(SystemClock{}, 250*time.Millisecond, &MemWallTimeStore{}, 100*time.Millisecond)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			c.Now()
		}
	})
}

func BenchmarkClockNowParallel(b *testing.B) {
	c := NewClock(SystemClock{}, 250*time.Millisecond)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Now()
		}
	})
}

func BenchmarkClockUpdate(b *testing.B) {
	c := NewClock(SystemClock{}, 250*time.Millisecond)
	b.Run("forward", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Update(Timestamp{WallTime: SystemClock{}.UnixNano()}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("behind", func(b *testing.B) {
		r := Timestamp{WallTime: 1}
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Update(r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkPhysicalNow(b *testing.B) {
	c := NewClock(NewOffsetClock(SystemClock{}), 250*time.Millisecond)
	b.ReportAllocs()
	for b.Loop() {
		c.PhysicalNow()
	}
}

// BenchmarkFileWallTimeStore is the cost of one bound write (temp file,
// fsync, rename, directory fsync): what the Now call that crosses the
// half-way mark pays, once per ahead/2 of wall time.
func BenchmarkFileWallTimeStore(b *testing.B) {
	s := NewFileWallTimeStore(b.TempDir() + "/hlc-bound")
	v := t0
	b.ReportAllocs()
	for b.Loop() {
		v++
		if err := s.Store(v); err != nil {
			b.Fatal(err)
		}
	}
}
