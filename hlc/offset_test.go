package hlc

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const ms = time.Millisecond

// sample builds a sample measured at local time `at` with the given round
// trip, from a peer whose clock is `offset` ahead of ours.
func sample(peer string, at int64, rtt, offset time.Duration) OffsetSample {
	sent := at - int64(rtt)
	return OffsetSample{Peer: peer, Sent: sent, Remote: sent + int64(rtt)/2 + int64(offset), Received: at}
}

func TestOffsetEstimate(t *testing.T) {
	got := OffsetSample{Peer: "n2", Sent: 100, Remote: 1200, Received: 300}.estimate()
	want := OffsetEstimate{Peer: "n2", Offset: 1000, Error: 100, MeasuredAt: 300}
	if got != want {
		t.Fatalf("estimate = %+v, want %+v", got, want)
	}
	// An odd round trip rounds the error up, never down.
	if e := (OffsetSample{Sent: 0, Remote: 0, Received: 3}).estimate(); e.Error != 2 || e.Offset != -1 {
		t.Fatalf("odd round trip: %+v, want offset -1 error 2", e)
	}
}

// TestOffsetCheck is the fail-stop decision table. Max offset is 500ms, so
// the threshold is 400ms; every sample is fresh unless it says otherwise.
func TestOffsetCheck(t *testing.T) {
	type peer struct {
		name   string
		offset time.Duration
		rtt    time.Duration
		age    time.Duration // how long before the check it was measured
	}
	for _, tc := range []struct {
		name     string
		peers    []peer
		wantFar  []string // nil: healthy (Check returns nil)
		wantText string
		cluster  int // OffsetMonitorConfig.ClusterSize (0: unset)
	}{
		{name: "no peers: no decision"},
		{name: "all in sync", peers: []peer{{"n2", 5 * ms, 2 * ms, 0}, {"n3", -7 * ms, 2 * ms, 0}}},
		{name: "majority healthy, one peer off", peers: []peer{
			{"n2", 3 * ms, 2 * ms, 0}, {"n3", 900 * ms, 2 * ms, 0}, {"n4", -1 * ms, 2 * ms, 0},
		}},
		{name: "3-node cluster, the other node off: not our fault", peers: []peer{
			{"n2", 1 * ms, 2 * ms, 0}, {"n3", 900 * ms, 2 * ms, 0},
		}},
		{
			name: "self is the outlier (peers all behind us)",
			peers: []peer{
				{"n2", -610 * ms, 4 * ms, 0}, {"n3", -600 * ms, 2 * ms, 0}, {"n4", -5 * ms, 2 * ms, 0},
			},
			wantFar:  []string{"n2", "n3"},
			wantText: "away from 2 of 3 known peers: n2 offset -610ms ±2ms, n3 offset -600ms ±1ms",
		},
		{name: "exactly half the peers far is not a majority", peers: []peer{
			{"n2", 450 * ms, 0, 0}, {"n3", 450 * ms, 0, 0}, {"n4", 0, 0, 0}, {"n5", 0, 0, 0},
		}},
		{name: "exactly at the threshold is not beyond it", peers: []peer{{"n2", 400 * ms, 0, 0}}},
		{
			name:    "one nanosecond beyond the threshold",
			peers:   []peer{{"n2", 400*ms + 1, 0, 0}},
			wantFar: []string{"n2"},
		},
		{name: "beyond only within the error bound: at threshold after subtracting the error", peers: []peer{
			{"n2", 410 * ms, 20 * ms, 0},
		}},
		{
			name:    "beyond even after subtracting the error",
			peers:   []peer{{"n2", 410 * ms, 18 * ms, 0}},
			wantFar: []string{"n2"},
		},
		{name: "a slow round trip alone does not stop a node", peers: []peer{
			{"n2", 450 * ms, 200 * ms, 0}, {"n3", -450 * ms, 200 * ms, 0},
		}},
		{name: "stale peers are ignored", peers: []peer{
			{"n2", 900 * ms, 2 * ms, 11 * time.Second}, {"n3", 900 * ms, 2 * ms, 30 * time.Second}, {"n4", 0, 2 * ms, time.Second},
		}},
		{name: "only stale peers: no decision", peers: []peer{{"n2", 900 * ms, 2 * ms, time.Minute}}},
		{
			name:    "2-node cluster, far apart: both stop",
			peers:   []peer{{"n2", 900 * ms, 2 * ms, 0}},
			wantFar: []string{"n2"},
		},
		{name: "cluster size known: 3 nodes, one down, the only fresh peer is far: not a majority of the cluster", cluster: 3,
			peers: []peer{{"n2", 900 * ms, 2 * ms, 0}}},
		{name: "cluster size known: 2-node cluster far apart: neither can tell, neither stops", cluster: 2,
			peers: []peer{{"n2", 900 * ms, 2 * ms, 0}}},
		{
			name: "cluster size known: 3 nodes, both peers far: stop", cluster: 3,
			peers:   []peer{{"n2", 900 * ms, 2 * ms, 0}, {"n3", 905 * ms, 2 * ms, 0}},
			wantFar: []string{"n2", "n3"},
		},
		{name: "cluster size known: 5 nodes, 2 of 4 peers far: healthy", cluster: 5, peers: []peer{
			{"n2", 900 * ms, 2 * ms, 0}, {"n3", 905 * ms, 2 * ms, 0}, {"n4", 0, 2 * ms, 0}, {"n5", 0, 2 * ms, 0},
		}},
		{
			name: "cluster size known: 5 nodes, 3 peers far: stop", cluster: 5,
			peers:   []peer{{"n2", 900 * ms, 2 * ms, 0}, {"n3", 905 * ms, 2 * ms, 0}, {"n4", 910 * ms, 2 * ms, 0}},
			wantFar: []string{"n2", "n3", "n4"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			phys := NewManualClock(t0)
			var calls []*ClockOffsetError
			cfg := OffsetMonitorConfig{
				OnFailStop: func(err *ClockOffsetError) { calls = append(calls, err) },
			}
			if tc.cluster > 0 {
				cfg.ClusterSize = func() int { return tc.cluster }
			}
			m := NewOffsetMonitor(NewClock(phys, testMaxOffset), cfg)
			if m.Threshold() != 400*ms {
				t.Fatalf("threshold = %s, want 400ms", m.Threshold())
			}
			for _, p := range tc.peers {
				if err := m.Record(sample(p.name, t0-int64(p.age), p.rtt, p.offset)); err != nil {
					t.Fatal(err)
				}
			}
			for round := range 2 {
				err := m.Check()
				if tc.wantFar == nil {
					if err != nil || len(calls) != 0 {
						t.Fatalf("Check() = %v (fail-stop calls %d), want healthy", err, len(calls))
					}
					continue
				}
				var oe *ClockOffsetError
				if !errors.As(err, &oe) {
					t.Fatalf("Check() = %v, want *ClockOffsetError", err)
				}
				var far []string
				for _, f := range oe.Far {
					far = append(far, f.Peer)
				}
				if fmt.Sprint(far) != fmt.Sprint(tc.wantFar) {
					t.Fatalf("far peers = %v, want %v", far, tc.wantFar)
				}
				if !strings.Contains(err.Error(), "more than 400ms (80% of max offset 500ms)") ||
					!strings.Contains(err.Error(), tc.wantText) {
					t.Fatalf("message %q lacks the threshold or %q", err, tc.wantText)
				}
				if len(calls) != 1 || calls[0] != oe && round == 0 {
					t.Fatalf("after check %d: fail-stop called %d times, want exactly once", round+1, len(calls))
				}
			}
		})
	}
}

// TestOffsetRecordKeepsBest checks which estimate the monitor keeps per peer.
func TestOffsetRecordKeepsBest(t *testing.T) {
	phys := NewManualClock(t0)
	m := NewOffsetMonitor(NewClock(phys, testMaxOffset), OffsetMonitorConfig{StaleAfter: 5 * time.Second})
	keep := func(s OffsetSample, wantOffset time.Duration) {
		t.Helper()
		if err := m.Record(s); err != nil {
			t.Fatal(err)
		}
		est := m.Estimates()
		if len(est) != 1 || est[0].Offset != wantOffset {
			t.Fatalf("after recording %+v: estimates %v, want offset %s", s, est, wantOffset)
		}
	}
	keep(sample("n2", t0-int64(3*time.Second), 10*ms, 100*ms), 100*ms)
	// More precise: replaces.
	keep(sample("n2", t0-int64(2*time.Second), 2*ms, 101*ms), 101*ms)
	// Less precise but consistent with the kept one: the kept one stays.
	keep(sample("n2", t0-int64(time.Second), 20*ms, 95*ms), 101*ms)
	// Less precise and contradicting the kept one (the clock moved): replaces.
	keep(sample("n2", t0-int64(time.Second), 20*ms, 300*ms), 300*ms)
	// Older than the kept one (out of order), even if more precise: ignored.
	keep(sample("n2", t0-int64(4*time.Second), 0, 0), 300*ms)
	// Once the kept one is stale, anything replaces it.
	phys.Advance(10 * time.Second)
	keep(sample("n2", phys.UnixNano(), 50*ms, 7*ms), 7*ms)
	// Stale estimates drop out of Estimates.
	phys.Advance(6 * time.Second)
	if est := m.Estimates(); len(est) != 0 {
		t.Fatalf("estimates after staleness: %v", est)
	}

	if err := m.Record(OffsetSample{Peer: "n3", Sent: 10, Received: 9}); err == nil {
		t.Fatal("Record accepted a sample received before it was sent")
	}
}

// TestOffsetMonitorConcurrent: many goroutines record and check; the
// fail-stop callback still runs exactly once. Run with -race.
func TestOffsetMonitorConcurrent(t *testing.T) {
	phys := NewManualClock(t0)
	var calls atomic.Int32
	m := NewOffsetMonitor(NewClock(phys, testMaxOffset), OffsetMonitorConfig{
		OnFailStop: func(*ClockOffsetError) { calls.Add(1) },
	})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				_ = m.Record(sample(fmt.Sprintf("n%d", g*10+i%5), t0, 2*ms, 700*ms))
				_ = m.Check()
				_ = m.Estimates()
			}
		})
	}
	wg.Wait()
	if err := m.Check(); err == nil {
		t.Fatal("every peer is 700ms away, yet Check is healthy")
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("fail-stop called %d times, want 1", n)
	}
}

func TestOffsetThreshold(t *testing.T) {
	for _, tc := range []struct{ maxOffset, want time.Duration }{
		{500 * ms, 400 * ms},
		{250 * ms, 200 * ms},
		{time.Second, 800 * ms},
		{5, 4},
		{7, 6}, // 5.6ns rounds to 6
		{3 * time.Second, 2400 * ms},
	} {
		m := NewOffsetMonitor(NewClock(NewManualClock(t0), tc.maxOffset), OffsetMonitorConfig{})
		if got := m.Threshold(); got != tc.want {
			t.Errorf("max offset %s: threshold %s, want %s", tc.maxOffset, got, tc.want)
		}
	}
}
