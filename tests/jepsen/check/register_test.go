package check

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meridiandb/meridian/tests/jepsen/history"
)

// hardRegister: many fully concurrent writes and reads of one key, which
// porcupine cannot decide instantly.
func hardRegister(n int) *hb {
	b := &hb{}
	for p := 0; p < n; p++ {
		if p%2 == 0 {
			b.op(p, history.Invoke, history.Register, "write", fmt.Sprintf(`["x",%d]`, p))
		} else {
			b.op(p, history.Invoke, history.Register, "read", `["x",null]`)
		}
	}
	for p := 0; p < n; p++ {
		if p%2 == 0 {
			b.op(p, history.OK, history.Register, "write", fmt.Sprintf(`["x",%d]`, p))
		} else {
			// Each read sees the write two processes later: legal only in
			// a few orders, so the search has to work.
			b.op(p, history.OK, history.Register, "read", fmt.Sprintf(`["x",%d]`, (p+1)%n))
		}
	}
	return b
}

func TestRegisterTimeoutIsUnknown(t *testing.T) {
	b := hardRegister(18)
	start := time.Now()
	r, err := CheckRegister(b.ops(history.Register), RegisterOptions{Timeout: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s in %s", r.Valid, time.Since(start))
	if r.Valid == ValidTrue {
		t.Fatalf("a search that timed out must not be valid:\n%s", Worst(r))
	}
	// Given time, the same history is linearizable (each read right after
	// the write it saw), so the verdict above came from the timeout.
	full, err := CheckRegister(b.ops(history.Register), RegisterOptions{})
	if err != nil || full.Valid != ValidTrue {
		t.Fatalf("without a timeout: %v %v", full.Valid, err)
	}
	if r.Valid == ValidUnknown && (len(r.Unknown) == 0 || !strings.Contains(r.Unknown[0], "timed out")) {
		t.Fatalf("unknown without the reason: %v", r.Unknown)
	}
}
