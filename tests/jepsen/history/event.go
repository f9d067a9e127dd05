package history

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Type is the kind of an event.
type Type string

// The event types. Info means the outcome is unknown: the operation may or
// may not have taken effect, at any point after its invocation.
const (
	Invoke Type = "invoke"
	OK     Type = "ok"
	Fail   Type = "fail"
	Info   Type = "info"
)

// NemesisProcess is the process number of fault-injection events.
const NemesisProcess = -1

// Workload names used in the f/value conventions below.
const (
	ListAppend = "list-append"
	Register   = "register"
	Bank       = "bank"
	Set        = "set"
)

// Event is one line of history.jsonl.
//
// Value shapes per workload (invocation / ok completion):
//
//	list-append f=txn      [["append","k",1],["r","k",null]] / [["append","k",1],["r","k",[1]]]
//	register    f=read     ["k",null] / ["k",3]   (null: key absent)
//	            f=write    ["k",3]
//	            f=cas      ["k",[1,2]]            (fail with error "precondition": old value differed)
//	bank        f=transfer {"from":0,"to":3,"amount":2}
//	            f=read     null / {"0":10,"1":12,...}
//	set         f=add      7
//	            f=read     null / [1,2,7]
type Event struct {
	Index    int64           `json:"index"`
	Type     Type            `json:"type"`
	Process  int             `json:"process"`
	TimeNS   int64           `json:"time_ns"`
	Worker   *int            `json:"worker,omitempty"`
	Node     string          `json:"node,omitempty"`
	Gateway  string          `json:"gateway,omitempty"`
	Workload string          `json:"workload,omitempty"`
	F        string          `json:"f"`
	Value    json.RawMessage `json:"value,omitempty"`
	Error    string          `json:"error,omitempty"`
	ReadTS   string          `json:"read_ts,omitempty"`
	CommitTS string          `json:"commit_ts,omitempty"`
}

// validate checks the fields every event must have.
func (e *Event) validate() error {
	switch e.Type {
	case Invoke, OK, Fail, Info:
	case "":
		return fmt.Errorf("missing type")
	default:
		return fmt.Errorf("unknown type %q (want invoke, ok, fail or info)", e.Type)
	}
	if e.F == "" {
		return fmt.Errorf("missing f")
	}
	if e.Process < NemesisProcess {
		return fmt.Errorf("process %d is negative (only the nemesis, -1, may be)", e.Process)
	}
	if e.Index < 0 {
		return fmt.Errorf("negative index %d", e.Index)
	}
	for _, ts := range []struct{ name, s string }{{"read_ts", e.ReadTS}, {"commit_ts", e.CommitTS}} {
		if ts.s == "" {
			continue
		}
		if _, err := ParseTS(ts.s); err != nil {
			return fmt.Errorf("%s: %w", ts.name, err)
		}
	}
	return nil
}

// TS is a server timestamp (an HLC timestamp) as returned to clients: wall
// time in nanoseconds and a logical counter. Its text form is the one
// Meridian's hlc package prints: "<seconds>.<nanoseconds>,<logical>", the
// fraction and the logical part optional.
type TS struct {
	Wall    int64
	Logical int32
}

// Less orders timestamps by wall time, then logical counter.
func (t TS) Less(o TS) bool {
	return t.Wall < o.Wall || (t.Wall == o.Wall && t.Logical < o.Logical)
}

// String prints t in the form ParseTS reads.
func (t TS) String() string {
	w := t.Wall
	sign := ""
	if w < 0 {
		sign, w = "-", -w
	}
	return fmt.Sprintf("%s%d.%09d,%d", sign, w/1e9, w%1e9, t.Logical)
}

// ParseTS parses the text form of a server timestamp.
func ParseTS(s string) (TS, error) {
	orig := s
	bad := func(why string) (TS, error) {
		return TS{}, fmt.Errorf("history: invalid timestamp %q: %s", orig, why)
	}
	var logical int64
	if i := strings.IndexByte(s, ','); i >= 0 {
		var err error
		logical, err = strconv.ParseInt(s[i+1:], 10, 32)
		if err != nil || logical < 0 {
			return bad("logical part must be an integer in [0, 2^31)")
		}
		s = s[:i]
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	sec, frac, hasFrac := strings.Cut(s, ".")
	if sec == "" || strings.ContainsAny(sec, "+-") {
		return bad("want <seconds>[.<nanoseconds>][,<logical>]")
	}
	secs, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || secs > math.MaxInt64/1_000_000_000-1 {
		return bad("seconds out of range")
	}
	var nanos int64
	if hasFrac {
		if frac == "" || len(frac) > 9 || strings.ContainsAny(frac, "+-") {
			return bad("fraction must have 1 to 9 digits")
		}
		n, err := strconv.ParseInt(frac, 10, 64)
		if err != nil {
			return bad("fraction must be digits")
		}
		for i := len(frac); i < 9; i++ {
			n *= 10
		}
		nanos = n
	}
	w := secs*1e9 + nanos
	if neg {
		w = -w
	}
	return TS{Wall: w, Logical: int32(logical)}, nil
}
