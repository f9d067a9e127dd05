//go:build linux

package clockbound

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/meridiandb/meridian/hlc"
)

// TestTranscripts runs testdata/transcripts/*: a fake ClockBound daemon (a segment file),
// a fake kernel NTP state, and manual clocks, read through the real
// ClockBound, Adjtimex, Static and Auto sources.
//
//	daemon write [version=2] [gen=2] [asof=0s] [void=1000s] [bound=50us] [drift=50000] [status=synchronized] [marker=<n>]
//	    (marker=<n>: with clock-disruption support, having seen VMClock marker n)
//	    write the whole segment in place (asof/void relative to monotonic now)
//	daemon gen=<n>     set only the generation word
//	daemon remove      delete the file
//	daemon truncate=<bytes>
//	vmclock marker=<n> the hypervisor's VMClock page
//	kernel maxerror=<dur> [unsync] [error]
//	tick <dur>         advance wall and monotonic time
//	skew <dur>         offset the node's physical clock from true time
//	now                read every source
func TestTranscripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/transcripts/*")
	if len(files) == 0 {
		t.Fatal("no transcripts in testdata/transcripts")
	}
	datadriven.Walk(t, "testdata/transcripts", func(t *testing.T, path string) {
		dir := t.TempDir()
		shm := filepath.Join(dir, "shm0")
		trueWall := hlc.NewManualClock(testWall)
		node := hlc.NewOffsetClock(trueWall)
		mono := hlc.NewManualClock(1000 * sec)
		var gen uint16 = 2
		kernel := KernelState{StatusBits: staUnsync, MaxErrorMicros: MaxErrorClamp, ClockState: timeError}
		var kernelErr error

		vmclock := filepath.Join(dir, "vmclock0")
		cb, err := NewClockBound(ClockBoundConfig{Clock: node, Paths: []string{shm}, VMClockPath: vmclock,
			Knobs: ClockBoundKnobs{Monotonic: mono.UnixNano}})
		if err != nil {
			t.Fatal(err)
		}
		defer cb.Close()
		adj := NewAdjtimexWithQuery(node, func() (KernelState, error) { return kernel, kernelErr })
		static, _ := NewStatic(node, 250*time.Millisecond)
		auto, _ := NewAuto(AutoConfig{ClockBound: cb, Adjtimex: adj, Static: static})

		dur := func(td *datadriven.TestData, key string, def time.Duration) time.Duration {
			arg, ok := td.Arg(key)
			if !ok {
				return def
			}
			d, err := time.ParseDuration(arg.SingleVal(t))
			if err != nil {
				td.Fatalf(t, "%s: %v", key, err)
			}
			return d
		}
		num := func(td *datadriven.TestData, key string, def int64) int64 {
			arg, ok := td.Arg(key)
			if !ok {
				return def
			}
			n, err := strconv.ParseInt(arg.SingleVal(t), 10, 64)
			if err != nil {
				td.Fatalf(t, "%s: %v", key, err)
			}
			return n
		}
		show := func(r Reading, err error) string {
			if err != nil {
				return "error: " + strings.ReplaceAll(err.Error(), dir, "$DIR")
			}
			centre := time.Duration(r.Midpoint() - trueWall.UnixNano())
			s := fmt.Sprintf("±%s %s", r.Width()/2, r.Status)
			if centre != 0 {
				s += fmt.Sprintf(" (centred %+v off true time)", centre)
			}
			return s
		}

		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			switch td.Cmd {
			case "daemon":
				switch {
				case td.HasArg("write"):
					statuses := map[string]int32{"unknown": rawUnknown, "synchronized": rawSynchronized, "free-running": rawFreeRunning, "disrupted": rawDisrupted}
					st := int32(rawSynchronized)
					if arg, ok := td.Arg("status"); ok {
						v, known := statuses[arg.SingleVal(t)]
						if !known {
							td.Fatalf(t, "unknown status %q", arg.SingleVal(t))
						}
						st = v
					}
					gen = uint16(num(td, "gen", int64(gen)))
					asOf := mono.UnixNano() + int64(dur(td, "asof", 0))
					seg := Segment{
						Version:     uint16(num(td, "version", 2)),
						Generation:  gen,
						AsOf:        asOf,
						VoidAfter:   asOf + int64(dur(td, "void", 1000*time.Second)),
						BoundNanos:  int64(dur(td, "bound", 50*time.Microsecond)),
						MaxDriftPPB: uint32(num(td, "drift", 50_000)),
						ClockStatus: st,
					}
					if td.HasArg("marker") {
						seg.DisruptionSupport = true
						seg.DisruptionMarker = uint64(num(td, "marker", 0))
					}
					b := mustEncode(t, seg)
					f, err := os.OpenFile(shm, os.O_WRONLY|os.O_CREATE, 0o644)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := f.WriteAt(b, 0); err != nil {
						t.Fatal(err)
					}
					f.Close()
				case td.HasArg("gen"):
					gen = uint16(num(td, "gen", 0))
					setGeneration(t, shm, gen)
				case td.HasArg("remove"):
					if err := os.Remove(shm); err != nil {
						t.Fatal(err)
					}
				case td.HasArg("truncate"):
					if err := os.Truncate(shm, num(td, "truncate", 0)); err != nil {
						t.Fatal(err)
					}
				default:
					td.Fatalf(t, "daemon: want write, gen, remove or truncate")
				}
				return ""
			case "vmclock":
				writeVMClock(t, vmclock, 2, uint64(num(td, "marker", 0)))
				return ""
			case "kernel":
				kernel, kernelErr = KernelState{MaxErrorMicros: int64(dur(td, "maxerror", 0) / time.Microsecond)}, nil
				if td.HasArg("unsync") {
					kernel.StatusBits |= staUnsync
				}
				if td.HasArg("error") {
					kernelErr = errors.New("adjtimex: operation not permitted")
				}
				return ""
			case "tick":
				d, err := time.ParseDuration(td.CmdArgs[0].Key)
				if err != nil {
					td.Fatalf(t, "tick: %v", err)
				}
				trueWall.Advance(d)
				mono.Advance(d)
				return ""
			case "skew":
				d, err := time.ParseDuration(td.CmdArgs[0].Key)
				if err != nil {
					td.Fatalf(t, "skew: %v", err)
				}
				node.SetOffset(d)
				return ""
			case "now":
				var out strings.Builder
				fmt.Fprintf(&out, "clockbound: %s\n", show(cb.Now()))
				fmt.Fprintf(&out, "adjtimex:   %s\n", show(adj.Now()))
				fmt.Fprintf(&out, "static:     %s\n", show(static.Now()))
				name, eps := auto.Current()
				fmt.Fprintf(&out, "auto:       %s, ε=%s\n", name, eps)
				return out.String()
			default:
				td.Fatalf(t, "unknown command %q", td.Cmd)
				return ""
			}
		})
	})
}
