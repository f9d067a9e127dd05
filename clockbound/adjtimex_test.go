package clockbound

import (
	"errors"
	"testing"
	"time"

	"github.com/meridiandb/meridian/hlc"
)

func TestAdjtimexStates(t *testing.T) {
	const now = int64(5_000_000_000)
	margin := int64(adjtimexTickMargin)
	for _, tc := range []struct {
		name       string
		ks         KernelState
		wantStatus Status
		wantBound  int64
	}{
		{"synced", KernelState{MaxErrorMicros: 1500, StatusBits: 0x2001 /* STA_PLL|STA_NANO */}, Synchronized, 1_500_000 + margin},
		{"synced zero maxerror", KernelState{}, Synchronized, margin},
		{"STA_UNSYNC", KernelState{MaxErrorMicros: 1500, StatusBits: staUnsync}, Unknown, 1_500_000 + margin},
		{"STA_CLOCKERR", KernelState{MaxErrorMicros: 1500, StatusBits: staClockErr}, Unknown, 1_500_000 + margin},
		{"TIME_ERROR", KernelState{MaxErrorMicros: 1500, ClockState: timeError}, Unknown, 1_500_000 + margin},
		{"leap second pending is fine", KernelState{MaxErrorMicros: 1500, ClockState: 1 /* TIME_INS */}, Synchronized, 1_500_000 + margin},
		{"at the 16 s clamp", KernelState{MaxErrorMicros: MaxErrorClamp}, Unknown, MaxErrorClamp*1000 + margin},
		{"beyond the clamp", KernelState{MaxErrorMicros: 3 * MaxErrorClamp}, Unknown, MaxErrorClamp*1000 + margin},
		{"just under the clamp", KernelState{MaxErrorMicros: MaxErrorClamp - 1}, Synchronized, (MaxErrorClamp-1)*1000 + margin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAdjtimexWithQuery(hlc.NewManualClock(now), func() (KernelState, error) { return tc.ks, nil })
			r, err := a.Now()
			if err != nil {
				t.Fatal(err)
			}
			want := Reading{Earliest: now - tc.wantBound, Latest: now + tc.wantBound, Status: tc.wantStatus}
			if r != want {
				t.Fatalf("Now = %v, want %v", r, want)
			}
		})
	}
}

func TestAdjtimexErrors(t *testing.T) {
	boom := errors.New("boom")
	a := NewAdjtimexWithQuery(hlc.NewManualClock(0), func() (KernelState, error) { return KernelState{}, boom })
	if _, err := a.Now(); !errors.Is(err, boom) {
		t.Fatalf("Now error = %v, want the query's error", err)
	}
	a = NewAdjtimexWithQuery(hlc.NewManualClock(0), func() (KernelState, error) { return KernelState{MaxErrorMicros: -1}, nil })
	if _, err := a.Now(); err == nil {
		t.Fatal("negative maxerror: want error")
	}
	if a.Name() != "adjtimex" {
		t.Fatalf("Name = %q", a.Name())
	}
}

// TestAdjtimexRealKernel asks this machine's kernel. It asserts only that the
// answer is well-formed or a clear error; it logs what the kernel said.
func TestAdjtimexRealKernel(t *testing.T) {
	clock := hlc.SystemClock{}
	r, err := NewAdjtimex(clock).Now()
	if err != nil {
		if errors.Is(err, ErrNotSupported) {
			t.Skipf("adjtimex: %v", err)
		}
		t.Fatalf("adjtimex on this kernel: %v", err)
	}
	ks, _ := queryKernel()
	t.Logf("kernel: maxerror=%dµs esterror=%dµs status=%#x state=%d → %v (±%s)",
		ks.MaxErrorMicros, ks.EstErrorMicros, ks.StatusBits, ks.ClockState, r.Status, r.Width()/2)
	if r.Earliest > r.Latest {
		t.Fatalf("Earliest > Latest: %v", r)
	}
	if half := r.Width() / 2; half < adjtimexTickMargin || half > MaxErrorClamp*time.Microsecond+adjtimexTickMargin {
		t.Fatalf("half width %s outside [margin, clamp+margin]", half)
	}
	if r.Status != Synchronized && r.Status != Unknown {
		t.Fatalf("status %s: adjtimex reports only synchronized or unknown", r.Status)
	}
}

func TestAdjtimexCache(t *testing.T) {
	mono := hlc.NewManualClock(0)
	var queries int
	ks := KernelState{MaxErrorMicros: 1000}
	a := NewAdjtimexFromConfig(AdjtimexConfig{
		Clock: hlc.NewManualClock(100 * int64(time.Second)),
		Knobs: AdjtimexKnobs{
			Query:     func() (KernelState, error) { queries++; return ks, nil },
			Monotonic: mono.UnixNano,
		},
	})
	base := time.Millisecond + adjtimexTickMargin
	r, _ := a.Now()
	if queries != 1 || r.Width() != 2*base {
		t.Fatalf("first read: %d queries, width %s", queries, r.Width())
	}
	mono.Advance(4 * time.Millisecond)
	ks = KernelState{MaxErrorMicros: 1000, StatusBits: staUnsync} // not seen until the cache expires
	r, _ = a.Now()
	// Aged 4 ms at 500 ppm: +2 µs.
	if queries != 1 || r.Width() != 2*(base+2*time.Microsecond) || r.Status != Synchronized {
		t.Fatalf("cached read: %d queries, %v", queries, r)
	}
	mono.Advance(6 * time.Millisecond) // 10 ms: expired
	r, _ = a.Now()
	if queries != 2 || r.Status != Unknown || r.Width() != 2*base {
		t.Fatalf("after expiry: %d queries, %v", queries, r)
	}
	mono.Advance(-time.Second) // a monotonic clock that went back: do not trust the cache
	if _, _ = a.Now(); queries != 3 {
		t.Fatalf("clock went back: %d queries, want a fresh one", queries)
	}
}
