package gctune

import (
	"runtime/debug"
	"testing"
)

func TestParseMemTotal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"MemTotal:       24558772 kB\nMemFree:  1 kB\n", 24558772 << 10},
		{"MemFree: 5 kB\nMemTotal: 2048 kB\n", 2048 << 10},
		{"MemTotal: 2048 MB\n", 0},
		{"MemTotal: lots kB\n", 0},
		{"", 0},
	} {
		if got := parseMemTotal([]byte(tc.in)); got != tc.want {
			t.Errorf("parseMemTotal(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestParseCgroupMax(t *testing.T) {
	for in, want := range map[string]int64{"max\n": 0, "4294967296\n": 4 << 30, "": 0, "-1": 0} {
		if got := parseCgroupMax([]byte(in)); got != want {
			t.Errorf("parseCgroupMax(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestLimit(t *testing.T) {
	if got := limitFor(0); got != minLimit {
		t.Errorf("unknown memory: limit %d, want %d", got, minLimit)
	}
	if got := limitFor(2 << 30); got != minLimit {
		t.Errorf("2 GiB: limit %d, want the 1 GiB floor", got)
	}
	if got := limitFor(24 << 30); got != 6<<30 {
		t.Errorf("24 GiB: limit %d, want 6 GiB", got)
	}
	if got := smallest(0, 8<<30, 4<<30); got != 4<<30 {
		t.Errorf("smallest = %d", got)
	}
}

func TestApplyRespectsEnvironment(t *testing.T) {
	prevPercent := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	})

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	s := Apply()
	if s.Percent != DefaultPercent || debug.SetGCPercent(DefaultPercent) != DefaultPercent {
		t.Errorf("GC percent not set: %+v", s)
	}
	if s.Limit < minLimit || debug.SetMemoryLimit(-1) != s.Limit {
		t.Errorf("memory limit not set: %+v", s)
	}

	debug.SetGCPercent(100)
	t.Setenv("GOGC", "100")
	t.Setenv("GOMEMLIMIT", "3GiB")
	before := debug.SetMemoryLimit(-1)
	if s := Apply(); s != (Settings{}) {
		t.Errorf("Apply with GOGC and GOMEMLIMIT set changed %+v", s)
	}
	if debug.SetGCPercent(100) != 100 || debug.SetMemoryLimit(-1) != before {
		t.Error("Apply overrode GOGC or GOMEMLIMIT")
	}
}
