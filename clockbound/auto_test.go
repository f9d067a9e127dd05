package clockbound

import (
	"errors"
	"testing"
	"time"

	"github.com/meridiandb/meridian/hlc"
)

func TestAutoChoice(t *testing.T) {
	clock := hlc.NewManualClock(100 * sec)
	ms := time.Millisecond
	missing := errors.New("clockbound: daemon shared memory not found")
	type src struct {
		bound  time.Duration
		status Status
		err    error
		absent bool // nil Source
	}
	for _, tc := range []struct {
		name      string
		cb, adj   src
		threshold time.Duration
		want      string
		wantWidth time.Duration
	}{
		{"daemon synchronized wins", src{bound: ms / 2, status: Synchronized}, src{bound: ms, status: Synchronized}, 0, "clockbound", ms},
		{"daemon missing, adjtimex good", src{err: missing}, src{bound: 3 * ms, status: Synchronized}, 0, "adjtimex", 6 * ms},
		{"no daemon source at all", src{absent: true}, src{bound: 3 * ms, status: Synchronized}, 0, "adjtimex", 6 * ms},
		{"daemon unsynchronized", src{bound: ms, status: Unknown}, src{bound: 2 * ms, status: Synchronized}, 0, "adjtimex", 4 * ms},
		{"daemon free-running", src{bound: ms, status: FreeRunning}, src{bound: 2 * ms, status: Synchronized}, 0, "adjtimex", 4 * ms},
		{"adjtimex bound at the threshold", src{err: missing}, src{bound: 10 * ms, status: Synchronized}, 0, "adjtimex", 20 * ms},
		{"adjtimex bound too large", src{err: missing}, src{bound: 10*ms + 1, status: Synchronized}, 0, "static", 500 * ms},
		{"custom threshold", src{err: missing}, src{bound: 30 * ms, status: Synchronized}, 50 * ms, "adjtimex", 60 * ms},
		{"adjtimex unsynchronized", src{err: missing}, src{bound: ms, status: Unknown}, 0, "static", 500 * ms},
		{"adjtimex errors", src{err: missing}, src{err: ErrNotSupported}, 0, "static", 500 * ms},
		{"everything unknown", src{bound: ms, status: Unknown}, src{bound: 16 * time.Second, status: Unknown}, 0, "static", 500 * ms},
		{"nothing but static", src{absent: true}, src{absent: true}, 0, "static", 500 * ms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mk := func(name string, s src) Source {
				if s.absent {
					return nil
				}
				f := NewTrackingFake(name, clock, s.bound, s.status)
				f.SetError(s.err)
				return f
			}
			static, err := NewStatic(clock, 250*ms)
			if err != nil {
				t.Fatal(err)
			}
			a, err := NewAuto(AutoConfig{ClockBound: mk("clockbound", tc.cb), Adjtimex: mk("adjtimex", tc.adj), Static: static, MaxAdjtimexError: tc.threshold})
			if err != nil {
				t.Fatal(err)
			}
			name, eps := a.Current()
			if name != tc.want || eps != tc.wantWidth {
				t.Fatalf("Current() = %s, %s; want %s, %s", name, eps, tc.want, tc.wantWidth)
			}
			r, err := a.Now()
			if err != nil || r.Width() != tc.wantWidth || r.Midpoint() != clock.UnixNano() || r.Status == Unknown {
				t.Fatalf("Now() = %v, %v", r, err)
			}
		})
	}
}

func TestAutoFollowsChanges(t *testing.T) {
	clock := hlc.NewManualClock(100 * sec)
	cb := NewTrackingFake("clockbound", clock, time.Millisecond, Unknown)
	static, _ := NewStatic(clock, 250*time.Millisecond)
	a, err := NewAuto(AutoConfig{ClockBound: cb, Static: static})
	if err != nil {
		t.Fatal(err)
	}
	if name, _ := a.Current(); name != "static" {
		t.Fatalf("daemon not synced yet: %s", name)
	}
	cb.Track(clock, time.Millisecond, Synchronized)
	if name, _ := a.Current(); name != "clockbound" {
		t.Fatalf("daemon synced: %s", name)
	}
	cb.SetError(errors.New("gone"))
	if name, _ := a.Current(); name != "static" {
		t.Fatalf("daemon gone: %s", name)
	}
}

func TestAutoConfigErrors(t *testing.T) {
	if _, err := NewAuto(AutoConfig{}); err == nil {
		t.Fatal("no static fallback: want error")
	}
	static, _ := NewStatic(hlc.NewManualClock(0), time.Second)
	if _, err := NewAuto(AutoConfig{Static: static, MaxAdjtimexError: -1}); err == nil {
		t.Fatal("negative threshold: want error")
	}
	broken := NewFake("broken", Reading{})
	broken.SetError(errors.New("broken"))
	a, _ := NewAuto(AutoConfig{Static: broken})
	if name, eps := a.Current(); name != "" || eps != 0 {
		t.Fatalf("Current with a failing fallback = %q, %s", name, eps)
	}
	if _, err := a.Now(); err == nil {
		t.Fatal("Now with a failing fallback: want error")
	}
	if a.Name() != "auto" {
		t.Fatalf("Name = %q", a.Name())
	}
}
