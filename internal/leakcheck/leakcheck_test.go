package leakcheck

import (
	"testing"
	"time"
)

// A goroutine that exits after goleak's own wait (about 0.4 s) but within
// Patience is not reported; one that never exits is.
func TestFindWaitsForSlowExits(t *testing.T) {
	done := make(chan struct{})
	go func() {
		time.Sleep(time.Second)
		close(done)
	}()
	if err := Find(); err != nil {
		t.Fatalf("a goroutine exiting after 1s was reported: %v", err)
	}
	<-done

	stop := make(chan struct{})
	go func() { <-stop }()
	defer close(stop)
	start := time.Now()
	if err := Find(); err == nil {
		t.Fatal("a goroutine that never exits was not reported")
	}
	if waited := time.Since(start); waited < Patience {
		t.Fatalf("reported after %s, before Patience (%s)", waited, Patience)
	}
}
