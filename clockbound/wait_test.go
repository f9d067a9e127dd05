package clockbound

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/meridiandb/meridian/hlc"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

type waitResult struct {
	waited time.Duration
	err    error
}

func startWait(ctx context.Context, src Source, ts int64) <-chan waitResult {
	done := make(chan waitResult, 1)
	go func() {
		w, err := WaitUntilAfter(ctx, src, ts)
		done <- waitResult{w, err}
	}()
	return done
}

func TestWaitUntilAfterAlreadyPast(t *testing.T) {
	clock := hlc.NewManualClock(10 * sec)
	src := NewTrackingFake("", clock, time.Millisecond, Synchronized)
	ts := 10*sec - int64(time.Millisecond) - 1 // Earliest = ts + 1
	waited, err := WaitUntilAfter(context.Background(), src, ts)
	if err != nil || waited != 0 || src.Reads() != 1 {
		t.Fatalf("already past: waited %s, err %v, reads %d", waited, err, src.Reads())
	}
	// Even a cancelled context does not matter when no wait is needed.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := WaitUntilAfter(ctx, src, ts); err != nil {
		t.Fatalf("already past with cancelled ctx: %v", err)
	}
}

func TestWaitUntilAfterWaits(t *testing.T) {
	clock := hlc.NewManualClock(10 * sec)
	src := NewTrackingFake("", clock, time.Millisecond, Synchronized)
	ts := 10 * sec // Earliest is 1 ms short of it: Earliest must become > ts
	done := startWait(context.Background(), src, ts)
	waitFor(t, "the first reading", func() bool { return src.Reads() >= 1 })
	select {
	case r := <-done:
		t.Fatalf("returned %v before the clock moved", r)
	default:
	}
	clock.Advance(time.Millisecond) // Earliest == ts: not yet strictly after
	waitFor(t, "a re-read at Earliest == ts", func() bool { return src.Reads() >= 3 })
	select {
	case r := <-done:
		t.Fatalf("returned %v with Earliest == ts", r)
	default:
	}
	clock.Advance(time.Nanosecond)
	r := <-done
	if r.err != nil || r.waited != time.Millisecond+time.Nanosecond {
		t.Fatalf("waited %s, err %v; want 1.000001ms on the source's clock", r.waited, r.err)
	}
}

func TestWaitUntilAfterRealClock(t *testing.T) {
	src, _ := NewStatic(hlc.SystemClock{}, time.Millisecond)
	r, _ := src.Now()
	ts := r.Latest + int64(2*time.Millisecond) // about 3 ms ahead of Earliest
	waited, err := WaitUntilAfter(context.Background(), src, ts)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := src.Now()
	if after.Earliest <= ts || waited <= 0 {
		t.Fatalf("returned with Earliest %d <= ts %d (waited %s)", after.Earliest, ts, waited)
	}
}

func TestWaitUntilAfterContext(t *testing.T) {
	clock := hlc.NewManualClock(10 * sec)
	src := NewTrackingFake("", clock, time.Millisecond, Synchronized)
	ctx, cancel := context.WithCancel(context.Background())
	done := startWait(ctx, src, 20*sec) // ten seconds away on a clock nobody moves
	waitFor(t, "the first reading", func() bool { return src.Reads() >= 1 })
	cancel()
	r := <-done
	if !errors.Is(r.err, context.Canceled) || r.waited != 0 {
		t.Fatalf("cancelled: waited %s, err %v", r.waited, r.err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if _, err := WaitUntilAfter(ctx, src, 20*sec); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: err %v", err)
	}
}

func TestWaitUntilAfterSourceErrors(t *testing.T) {
	boom := errors.New("boom")
	src := NewFake("", Reading{})
	src.SetError(boom)
	if _, err := WaitUntilAfter(context.Background(), src, 0); !errors.Is(err, boom) {
		t.Fatalf("err %v, want the source's", err)
	}

	unknown := NewFake("shaky", Reading{Earliest: 100, Latest: 200, Status: Unknown})
	if _, err := WaitUntilAfter(context.Background(), unknown, 0); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("unknown status: err %v, want ErrUntrusted", err)
	}

	// The source fails while we wait.
	clock := hlc.NewManualClock(10 * sec)
	f := NewTrackingFake("", clock, time.Millisecond, Synchronized)
	done := startWait(context.Background(), f, 10*sec)
	waitFor(t, "the first reading", func() bool { return f.Reads() >= 1 })
	f.SetError(boom)
	if r := <-done; !errors.Is(r.err, boom) {
		t.Fatalf("error mid-wait: %v", r.err)
	}
}

func TestFake(t *testing.T) {
	f := NewFake("", Reading{Earliest: 1, Latest: 3, Status: FreeRunning})
	if r, err := f.Now(); err != nil || r != (Reading{1, 3, FreeRunning}) || f.Name() != "fake" {
		t.Fatalf("%v %v %q", r, err, f.Name())
	}
	clock := hlc.NewManualClock(50)
	f.Track(clock, 5, Synchronized)
	clock.Advance(10)
	if r, _ := f.Now(); r != (Reading{55, 65, Synchronized}) {
		t.Fatalf("tracking: %v", r)
	}
	f.Set(Reading{Earliest: 7, Latest: 7})
	if r, _ := f.Now(); r != (Reading{7, 7, Unknown}) {
		t.Fatalf("set after track: %v", r)
	}
	if f.Reads() != 3 {
		t.Fatalf("Reads = %d, want 3", f.Reads())
	}
}
