package raftgroup

import (
	"runtime"
	"testing"
)

// TestDefaultWorkers: one worker per two processors, at least 1, at most 8.
func TestDefaultWorkers(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	for procs, want := range map[int]int{1: 1, 2: 1, 3: 1, 4: 2, 9: 4, 16: 8, 64: 8} {
		runtime.GOMAXPROCS(procs)
		if got := defaultWorkers(); got != want {
			t.Errorf("GOMAXPROCS %d: %d workers, want %d", procs, got, want)
		}
	}
}
