package hlc

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// The transcripts in testdata/ walk a Clock and an OffsetMonitor through
// their edge cases, one command at a time; they double as documentation.
// Regenerate with `go test ./hlc -run TestDataDriven -rewrite` and review
// the diff.
//
// Times are written in the String form of a timestamp in seconds
// ("100.25" is 100.25 s after the epoch) and durations in Go syntax.

func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		switch {
		case strings.HasSuffix(path, "/clock") || strings.Contains(path, "/clock_"):
			runClockTranscript(t, path)
		case strings.HasSuffix(path, "/offset") || strings.Contains(path, "/offset_"):
			runOffsetTranscript(t, path)
		default:
			t.Fatalf("no runner for %s", path)
		}
	})
}

func scanTime(t *testing.T, td *datadriven.TestData, key string) int64 {
	t.Helper()
	var s string
	td.ScanArgs(t, key, &s)
	v, err := ParseTimestamp(s)
	if err != nil {
		td.Fatalf(t, "%v", err)
	}
	return v.WallTime
}

func scanDuration(t *testing.T, td *datadriven.TestData, key string) time.Duration {
	t.Helper()
	var s string
	td.ScanArgs(t, key, &s)
	d, err := time.ParseDuration(s)
	if err != nil {
		td.Fatalf(t, "%v", err)
	}
	return d
}

// runClockTranscript understands:
//
//	new max-offset=<dur> [persist=<dur>] phys=<time>
//	    a clock on a manual physical clock; with persist, a persistent clock
//	    on an in-memory store writing that far ahead
//	phys t=<time> | advance by=<dur>
//	now [n=<count>]
//	update wall=<time> [logical=<n>]
//	restart [back=<dur>]   a new clock on the same store, physical clock moved back
//	bound                  the persisted bound and how many writes so far
//	fail-store             make later writes fail (the fatal handler records them)
func runClockTranscript(t *testing.T, path string) {
	var (
		phys      *ManualClock
		store     *faultyStore
		c         *Clock
		maxOffset time.Duration
		ahead     time.Duration
		fatal     []error
	)
	open := func(td *datadriven.TestData) string {
		var err error
		c, err = NewPersistentClock(phys, maxOffset, store, ahead,
			WithFatalHandler(func(err error) { fatal = append(fatal, err) }))
		if err != nil {
			return fmt.Sprintf("error: %v\n", err)
		}
		return fmt.Sprintf("bound %s, stores so far %d\n", Timestamp{WallTime: store.bound}, store.Stores())
	}
	datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
		var out strings.Builder
		switch td.Cmd {
		case "new":
			maxOffset = scanDuration(t, td, "max-offset")
			phys = NewManualClock(scanTime(t, td, "phys"))
			fatal = nil
			if td.HasArg("persist") {
				ahead = scanDuration(t, td, "persist")
				store = &faultyStore{}
				return open(td)
			}
			store = nil
			c = NewClock(phys, maxOffset)
			return ""
		case "phys":
			phys.Set(scanTime(t, td, "t"))
			return ""
		case "advance":
			phys.Advance(scanDuration(t, td, "by"))
			return ""
		case "now":
			n := 1
			td.MaybeScanArgs(t, "n", &n)
			for range n {
				before := len(fatal)
				fmt.Fprintf(&out, "%s\n", c.Now())
				for _, err := range fatal[before:] {
					fmt.Fprintf(&out, "fatal handler: %v\n", err)
				}
			}
			return out.String()
		case "update":
			r := Timestamp{WallTime: scanTime(t, td, "wall")}
			var logical int
			td.MaybeScanArgs(t, "logical", &logical)
			r.Logical = int32(logical)
			if err := c.Update(r); err != nil {
				var ue *UntrustedRemoteError
				if !errors.As(err, &ue) {
					td.Fatalf(t, "Update returned %T, want *UntrustedRemoteError", err)
				}
				return fmt.Sprintf("rejected: %v\n", err)
			}
			return "ok\n"
		case "restart":
			if td.HasArg("back") {
				phys.Advance(-scanDuration(t, td, "back"))
			}
			return open(td)
		case "bound":
			return fmt.Sprintf("bound %s, stores so far %d\n", Timestamp{WallTime: store.bound}, store.Stores())
		case "fail-store":
			store.storeErr = errors.New("injected: disk full")
			return ""
		default:
			td.Fatalf(t, "unknown command %q", td.Cmd)
			return ""
		}
	})
}

// runOffsetTranscript understands:
//
//	new max-offset=<dur> [stale-after=<dur>]   (local physical time starts at 1000)
//	record peer=<id> offset=<dur> rtt=<dur> [age=<dur>]
//	    a sample from a peer whose clock is offset ahead of ours, measured
//	    age ago with that round trip
//	advance by=<dur>
//	estimates
//	check
func runOffsetTranscript(t *testing.T, path string) {
	var (
		phys  *ManualClock
		m     *OffsetMonitor
		calls int
	)
	datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
		switch td.Cmd {
		case "new":
			phys = NewManualClock(1000 * int64(time.Second))
			cfg := OffsetMonitorConfig{OnFailStop: func(*ClockOffsetError) { calls++ }}
			if td.HasArg("stale-after") {
				cfg.StaleAfter = scanDuration(t, td, "stale-after")
			}
			calls = 0
			m = NewOffsetMonitor(NewClock(phys, scanDuration(t, td, "max-offset")), cfg)
			return fmt.Sprintf("threshold %s\n", m.Threshold())
		case "record":
			var peer string
			td.ScanArgs(t, "peer", &peer)
			var age time.Duration
			if td.HasArg("age") {
				age = scanDuration(t, td, "age")
			}
			s := sample(peer, phys.UnixNano()-int64(age), scanDuration(t, td, "rtt"), scanDuration(t, td, "offset"))
			if err := m.Record(s); err != nil {
				return fmt.Sprintf("error: %v\n", err)
			}
			return ""
		case "advance":
			phys.Advance(scanDuration(t, td, "by"))
			return ""
		case "estimates":
			var out strings.Builder
			for _, e := range m.Estimates() {
				fmt.Fprintf(&out, "%s (age %s)\n", e, time.Duration(phys.UnixNano()-e.MeasuredAt))
			}
			if out.Len() == 0 {
				return "none\n"
			}
			return out.String()
		case "check":
			before := calls
			err := m.Check()
			if err == nil {
				return "healthy\n"
			}
			out := fmt.Sprintf("%v\n", err)
			if calls > before {
				out += "fail-stop callback called\n"
			}
			return out
		default:
			td.Fatalf(t, "unknown command %q", td.Cmd)
			return ""
		}
	})
}
