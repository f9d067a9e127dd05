package ranges

import (
	"sync/atomic"
	"testing"
)

// goBackground runs work that Stop waits for, and none once the store is
// stopping.
func TestGoBackground(t *testing.T) {
	s := &Store{}
	var ran atomic.Int32
	release := make(chan struct{})
	s.goBackground(func() { <-release; ran.Add(1) })
	close(release)
	s.wg.Wait()
	if ran.Load() != 1 {
		t.Fatalf("work ran %d times before the stop, want 1", ran.Load())
	}
	s.mu.stopped = true
	s.goBackground(func() { ran.Add(1) })
	s.wg.Wait()
	if ran.Load() != 1 {
		t.Fatal("work started on a stopped store")
	}
}
