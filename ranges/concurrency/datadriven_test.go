package concurrency

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/meridiandb/meridian/hlc"
)

// The transcripts in testdata/latch/ drive a LatchManager one request at a time;
// they double as the spec of who waits for whom. Regenerate with
// `go test ./ranges/concurrency -run TestDataDriven -rewrite` and review the
// diff. Commands:
//
//	new                       a fresh manager
//	acquire r=<name>          declare the spans on the following lines, one
//	  read|write <key>[-<end>] [ts=<wall>]   per line (no ts: non-MVCC)
//	                          prints whether the request holds its latches
//	                          or which earlier requests it waits for
//	release r=<name>          release a request's latches
//	cancel r=<name>           cancel a waiting request's Acquire (its ctx)
//	status                    every live request and its state
//	len                       the number of latches in the manager
//
// release and cancel print every request that acquired its latches as a
// result, in arrival order.
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata/latch", func(t *testing.T, path string) {
		h := newHarness()
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			return h.run(t, td)
		})
	})
}

type ddReq struct {
	name     string
	g        *Guard
	acquired bool
}

type harness struct {
	m    *LatchManager
	reqs []*ddReq // live requests, in arrival order
}

func newHarness() *harness { return &harness{m: NewLatchManager()} }

func (h *harness) find(t *testing.T, td *datadriven.TestData) (int, *ddReq) {
	var name string
	td.ScanArgs(t, "r", &name)
	for i, r := range h.reqs {
		if r.name == name {
			return i, r
		}
	}
	td.Fatalf(t, "no live request %q", name)
	return 0, nil
}

func (h *harness) names(gs []*Guard) string {
	var out []string
	for _, g := range gs {
		for _, r := range h.reqs {
			if r.g == g {
				out = append(out, r.name)
			}
		}
	}
	return strings.Join(out, ", ")
}

func (h *harness) state(r *ddReq) string {
	if r.acquired {
		return r.name + ": acquired"
	}
	var waiting []*Guard
	for _, p := range r.g.prereqs {
		select {
		case <-p.done:
		default:
			waiting = append(waiting, p)
		}
	}
	return r.name + ": waiting on " + h.names(waiting)
}

// progress marks and prints requests that became ready.
func (h *harness) progress() string {
	var out []string
	for _, r := range h.reqs {
		if !r.acquired && r.g.ready() {
			r.acquired = true
			out = append(out, r.name+": acquired")
		}
	}
	if len(out) == 0 {
		return "no change"
	}
	return strings.Join(out, "\n")
}

func (h *harness) run(t *testing.T, td *datadriven.TestData) string {
	switch td.Cmd {
	case "new":
		*h = *newHarness()
		return "ok"
	case "acquire":
		var name string
		td.ScanArgs(t, "r", &name)
		var ss SpanSet
		for _, line := range strings.Split(strings.TrimSpace(td.Input), "\n") {
			sp, err := parseLatchSpan(line)
			if err != nil {
				td.Fatalf(t, "%v", err)
			}
			if sp.Access == Write {
				ss.AddWrite(sp.Key, sp.EndKey, sp.Timestamp)
			} else {
				ss.AddRead(sp.Key, sp.EndKey, sp.Timestamp)
			}
		}
		if err := ss.validate(); err != nil {
			return err.Error()
		}
		r := &ddReq{name: name, g: h.m.sequence(&ss)}
		h.reqs = append(h.reqs, r)
		r.acquired = r.g.ready()
		return h.state(r)
	case "release":
		i, r := h.find(t, td)
		if !r.acquired {
			td.Fatalf(t, "%s does not hold its latches", r.name)
		}
		h.m.Release(r.g)
		h.reqs = append(h.reqs[:i], h.reqs[i+1:]...)
		return h.progress()
	case "cancel":
		i, r := h.find(t, td)
		if r.acquired {
			td.Fatalf(t, "%s already holds its latches", r.name)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := h.m.wait(ctx, r.g)
		if err == nil {
			td.Fatalf(t, "wait of %s returned nil on a cancelled ctx", r.name)
		}
		h.reqs = append(h.reqs[:i], h.reqs[i+1:]...)
		return fmt.Sprintf("%s: %v\n%s", r.name, err, h.progress())
	case "status":
		var out []string
		for _, r := range h.reqs {
			out = append(out, h.state(r))
		}
		if len(out) == 0 {
			return "none"
		}
		return strings.Join(out, "\n")
	case "len":
		return strconv.Itoa(h.m.Len())
	default:
		td.Fatalf(t, "unknown command %q", td.Cmd)
		return ""
	}
}

// parseLatchSpan reads "read|write <key>[-<end>] [ts=<wall>]".
func parseLatchSpan(line string) (LatchSpan, error) {
	f := strings.Fields(line)
	if len(f) < 2 || len(f) > 3 {
		return LatchSpan{}, fmt.Errorf("bad span line %q", line)
	}
	var sp LatchSpan
	switch f[0] {
	case "read":
		sp.Access = Read
	case "write":
		sp.Access = Write
	default:
		return LatchSpan{}, fmt.Errorf("bad access %q", f[0])
	}
	k, e, _ := strings.Cut(f[1], "-")
	sp.Key = []byte(k)
	if e != "" {
		sp.EndKey = []byte(e)
	}
	if len(f) == 3 {
		v, ok := strings.CutPrefix(f[2], "ts=")
		if !ok {
			return LatchSpan{}, fmt.Errorf("bad ts %q", f[2])
		}
		w, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return LatchSpan{}, err
		}
		sp.Timestamp = hlc.Timestamp{WallTime: w}
	}
	return sp, nil
}
