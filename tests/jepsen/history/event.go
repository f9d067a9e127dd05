package history

import (
	"encoding/json"
	"fmt"

	"github.com/meridiandb/meridian/hlc"
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

// String prints t in hlc's form, which ParseTS reads.
func (t TS) String() string {
	return hlc.Timestamp{WallTime: t.Wall, Logical: t.Logical}.String()
}

// ParseTS parses the text form of a server timestamp (hlc.ParseTimestamp's
// form: the fraction and the logical part are optional).
func ParseTS(s string) (TS, error) {
	ts, err := hlc.ParseTimestamp(s)
	if err != nil {
		return TS{}, fmt.Errorf("history: %w", err)
	}
	return TS{Wall: ts.WallTime, Logical: ts.Logical}, nil
}
