package hlc

import (
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"
)

const (
	testMaxOffset = 500 * time.Millisecond
	t0            = int64(1_732_550_000_000_000_000) // 2024-11-25, nanoseconds
)

func ts(wall int64, logical int32) Timestamp { return Timestamp{WallTime: wall, Logical: logical} }

// TestNowTable walks the clock through the edge cases of Now: the physical
// clock standing still, moving forwards, stepping backwards, and the logical
// counter reaching its maximum.
func TestNowTable(t *testing.T) {
	type step struct {
		phys   int64     // physical clock reading before the call
		update Timestamp // if non-empty, Update(update) instead of Now
		want   Timestamp // Now's result (ignored for updates)
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"physical time moves: logical stays 0", []step{
			{phys: t0, want: ts(t0, 0)},
			{phys: t0 + 1, want: ts(t0+1, 0)},
			{phys: t0 + 1000, want: ts(t0+1000, 0)},
		}},
		{"physical time stands still: logical grows", []step{
			{phys: t0, want: ts(t0, 0)},
			{phys: t0, want: ts(t0, 1)},
			{phys: t0, want: ts(t0, 2)},
			{phys: t0 + 1, want: ts(t0+1, 0)},
		}},
		{"physical clock steps backwards: wall time holds, logical grows", []step{
			{phys: t0 + 1000, want: ts(t0+1000, 0)},
			{phys: t0, want: ts(t0+1000, 1)},
			{phys: t0 - int64(time.Hour), want: ts(t0+1000, 2)},
			{phys: t0 + 999, want: ts(t0+1000, 3)},
			{phys: t0 + 1001, want: ts(t0+1001, 0)},
		}},
		{"logical counter overflow moves to the next wall nanosecond", []step{
			{phys: t0, update: ts(t0, math.MaxInt32-1)},
			{phys: t0, want: ts(t0, math.MaxInt32)},
			{phys: t0, want: ts(t0+1, 0)},
			{phys: t0, want: ts(t0+1, 1)},
		}},
		{"update ahead of physical: wall time follows the remote", []step{
			{phys: t0, update: ts(t0+int64(100*time.Millisecond), 7)},
			{phys: t0, want: ts(t0+int64(100*time.Millisecond), 8)},
			{phys: t0 + int64(200*time.Millisecond), want: ts(t0+int64(200*time.Millisecond), 0)},
		}},
		{"update behind the clock changes nothing", []step{
			{phys: t0, want: ts(t0, 0)},
			{phys: t0, update: ts(t0-5, 99)},
			{phys: t0, want: ts(t0, 1)},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			phys := NewManualClock(0)
			c := NewClock(phys, testMaxOffset)
			for i, s := range tc.steps {
				phys.Set(s.phys)
				if !s.update.IsEmpty() {
					if err := c.Update(s.update); err != nil {
						t.Fatalf("step %d: Update(%s): %v", i, s.update, err)
					}
					continue
				}
				if got := c.Now(); got != s.want {
					t.Fatalf("step %d: Now() = %s, want %s", i, got, s.want)
				}
			}
		})
	}
}

// TestUpdateMaxOffset checks the max-offset guard: a remote timestamp up to
// exactly max offset ahead of local physical time is accepted, anything
// further is rejected with a typed error and leaves the clock unchanged.
func TestUpdateMaxOffset(t *testing.T) {
	mo := int64(testMaxOffset)
	for _, tc := range []struct {
		name     string
		remote   Timestamp
		rejected bool
	}{
		{"behind", ts(t0-mo, 0), false},
		{"equal", ts(t0, 5), false},
		{"within max offset", ts(t0+mo/2, 3), false},
		{"exactly max offset ahead", ts(t0+mo, math.MaxInt32), false},
		{"one nanosecond beyond max offset", ts(t0+mo+1, 0), true},
		{"far ahead", ts(t0+int64(time.Hour), 0), true},
		{"max timestamp (int64 overflow in a naive check)", MaxTimestamp, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			phys := NewManualClock(t0)
			c := NewClock(phys, testMaxOffset)
			before := c.Now()
			err := c.Update(tc.remote)
			if !tc.rejected {
				if err != nil {
					t.Fatalf("Update(%s) = %v, want accepted", tc.remote, err)
				}
				if now := c.Now(); !tc.remote.Less(now) || !before.Less(now) {
					t.Fatalf("after Update(%s), Now() = %s, want above it and above %s", tc.remote, now, before)
				}
				return
			}
			var ue *UntrustedRemoteError
			if !errors.As(err, &ue) {
				t.Fatalf("Update(%s) = %v, want *UntrustedRemoteError", tc.remote, err)
			}
			if ue.Remote != tc.remote || ue.Physical != t0 || ue.MaxOffset != testMaxOffset {
				t.Fatalf("error fields = %+v, want remote %s physical %d max offset %s", ue, tc.remote, t0, testMaxOffset)
			}
			if now := c.Now(); now != before.Next() {
				t.Fatalf("rejected Update moved the clock: Now() = %s, want %s", now, before.Next())
			}
			t.Log(err)
		})
	}
}

func TestUntrustedRemoteErrorMessage(t *testing.T) {
	c := NewClock(NewManualClock(t0), testMaxOffset)
	err := c.Update(ts(t0+int64(750*time.Millisecond), 2))
	want := "hlc: remote timestamp 1732550000.750000000,2 is 750ms ahead of local physical time 1732550000.000000000,0, more than the max offset 500ms"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant    %s", err, want)
	}
}

func TestClockAccessors(t *testing.T) {
	phys := NewManualClock(t0)
	c := NewClock(phys, testMaxOffset)
	if c.PhysicalClock() != PhysicalClock(phys) {
		t.Fatal("PhysicalClock() is not the clock passed to NewClock")
	}
	if c.MaxOffset() != testMaxOffset {
		t.Fatalf("MaxOffset() = %s", c.MaxOffset())
	}
	_ = c.Update(ts(t0+5, 0))
	phys.Advance(3)
	if got := c.PhysicalNow(); got != t0+3 {
		t.Fatalf("PhysicalNow() = %d, want the physical reading %d (not the HLC)", got, t0+3)
	}
}

func TestNewClockRejectsBadConfig(t *testing.T) {
	for name, f := range map[string]func(){
		"nil physical clock": func() { NewClock(nil, testMaxOffset) },
		"zero max offset":    func() { NewClock(SystemClock{}, 0) },
		"negative max offset": func() {
			NewClock(SystemClock{}, -time.Second)
		},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("NewClock did not panic")
				}
			}()
			f()
		})
	}
}

// TestClockProperties drives one clock with random physical-clock moves
// (including backwards steps), Now calls and remote updates, and checks the
// HLC invariants after every step:
//   - Now is strictly increasing and never below physical time;
//   - after Update(r) succeeds, every later Now is above r;
//   - a rejected Update leaves the clock as it was.
func TestClockProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		maxOffset := time.Duration(rapid.Int64Range(1, int64(time.Second)).Draw(rt, "maxOffset"))
		phys := NewManualClock(rapid.Int64Range(0, t0).Draw(rt, "start"))
		c := NewClock(phys, maxOffset)
		var last, floor Timestamp // last Now; highest accepted remote
		rt.Repeat(map[string]func(*rapid.T){
			"advance": func(rt *rapid.T) {
				phys.Advance(time.Duration(rapid.Int64Range(-int64(time.Second), int64(time.Second)).Draw(rt, "d")))
			},
			"now": func(rt *rapid.T) {
				p := phys.UnixNano()
				now := c.Now()
				if !last.Less(now) {
					rt.Fatalf("Now() = %s, not above the previous %s", now, last)
				}
				if !floor.Less(now) {
					rt.Fatalf("Now() = %s, not above accepted remote %s", now, floor)
				}
				if now.WallTime < p {
					rt.Fatalf("Now() = %s, below physical time %d", now, p)
				}
				last = now
			},
			"update": func(rt *rapid.T) {
				p := phys.UnixNano()
				r := Timestamp{
					WallTime: p + rapid.Int64Range(-2*int64(maxOffset), 2*int64(maxOffset)).Draw(rt, "ahead"),
					Logical:  rapid.Int32Range(0, math.MaxInt32).Draw(rt, "logical"),
				}
				err := c.Update(r)
				if (r.WallTime-p > int64(maxOffset)) != (err != nil) {
					rt.Fatalf("Update(%s) at physical %d with max offset %s: err = %v", r, p, maxOffset, err)
				}
				if err == nil {
					floor = floor.Forward(r)
				}
			},
		})
	})
}

// TestNowConcurrent has several goroutines call Now while others move the
// physical clock back and forth and feed updates; every goroutine must see a
// strictly increasing sequence and no two calls may return the same
// timestamp. Run it with -race.
func TestNowConcurrent(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		readers := rapid.IntRange(2, 6).Draw(rt, "readers")
		calls := rapid.IntRange(1, 300).Draw(rt, "calls")
		moves := rapid.SliceOfN(rapid.Int64Range(-1000, 1000), 1, 50).Draw(rt, "moves")
		remotes := rapid.SliceOfN(rapid.Int64Range(-1000, 1000), 0, 50).Draw(rt, "remotes")

		phys := NewManualClock(t0)
		c := NewClock(phys, testMaxOffset)
		results := make([][]Timestamp, readers)
		var wg sync.WaitGroup
		for i := range readers {
			wg.Go(func() {
				out := make([]Timestamp, 0, calls)
				for range calls {
					out = append(out, c.Now())
				}
				results[i] = out
			})
		}
		wg.Go(func() {
			for _, d := range moves {
				phys.Advance(time.Duration(d))
			}
		})
		wg.Go(func() {
			for _, d := range remotes {
				_ = c.Update(ts(t0+d, 0))
			}
		})
		wg.Wait()

		seen := make(map[Timestamp]int, readers*calls)
		for i, out := range results {
			for j, ts := range out {
				if j > 0 && !out[j-1].Less(ts) {
					rt.Fatalf("reader %d: Now() returned %s after %s", i, ts, out[j-1])
				}
				if k, dup := seen[ts]; dup {
					rt.Fatalf("readers %d and %d both got %s", k, i, ts)
				}
				seen[ts] = i
			}
		}
	})
}
