package history

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func TestRoundTrip(t *testing.T) {
	txn, _ := json.Marshal([]MOp{{F: AppendF, Key: "x", Val: 1}, {F: ReadF, Key: "y"}})
	done, _ := json.Marshal([]MOp{{F: AppendF, Key: "x", Val: 1}, {F: ReadF, Key: "y", Read: []int64{}, HasRead: true}})
	evs := []Event{
		{Index: 0, Type: Invoke, Process: 0, F: "txn", Value: txn, Node: "n1"},
		{Index: 1, Type: Invoke, Process: NemesisProcess, F: "start-partition"},
		{Index: 2, Type: OK, Process: 0, F: "txn", Value: done, CommitTS: "12.000000005,2", Gateway: "1"},
		{Index: 3, Type: Info, Process: NemesisProcess, F: "start-partition"},
	}
	var buf bytes.Buffer
	if err := WriteEvents(&buf, evs); err != nil {
		t.Fatal(err)
	}
	got, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(evs) {
		t.Fatalf("read %d events, wrote %d", len(got), len(evs))
	}
	ops, err := Pair(got, ListAppend)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 1 || ops[0].Type != OK || ops[0].Inv != 0 || ops[0].Cmp != 2 || ops[0].CommitTS != "12.000000005,2" {
		t.Fatalf("ops = %+v", ops)
	}
	mops, err := DecodeTxn(ops[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if !mops[1].HasRead || mops[1].Read == nil || len(mops[1].Read) != 0 {
		t.Fatalf("read of missing key should decode as an empty list: %+v", mops[1])
	}
}

func TestReadErrors(t *testing.T) {
	inv := `{"index":0,"type":"invoke","process":0,"f":"txn","value":[]}` + "\n"
	for _, tc := range []struct{ name, in, want string }{
		{"truncated", inv + `{"index":1,"type":"ok","proc`, "line 2: truncated event"},
		{"bad-json", inv + "{nope}\n", "line 2:"},
		{"bad-type", `{"index":0,"type":"done","process":0,"f":"txn"}` + "\n", `line 1 (index 0): unknown type "done"`},
		{"no-f", `{"index":0,"type":"invoke","process":0}` + "\n", "line 1 (index 0): missing f"},
		{"no-index", `{"type":"invoke","process":0,"f":"txn"}` + "\n", "line 1: missing index"},
		{"index-order", inv + `{"index":0,"type":"ok","process":0,"f":"txn"}` + "\n", "line 2: index 0 does not follow index 0"},
		{"unknown-field", `{"index":0,"type":"invoke","process":0,"f":"txn","colour":1}` + "\n", `line 1: json: unknown field "colour"`},
		{"double-invoke", inv + `{"index":1,"type":"invoke","process":0,"f":"txn"}` + "\n", "still open"},
		{"orphan", `{"index":0,"type":"ok","process":3,"f":"txn"}` + "\n", "no open invocation"},
		{"f-mismatch", inv + `{"index":1,"type":"ok","process":0,"f":"read"}` + "\n", "open invocation (index 0) is f=txn"},
		{"bad-ts", `{"index":0,"type":"invoke","process":0,"f":"txn","commit_ts":"x"}` + "\n", "commit_ts"},
		{"empty-line", inv + "\n" + inv, "line 2: empty line"},
		{"two-values", `{"index":0,"type":"invoke","process":0,"f":"txn"} {}` + "\n", "more than one JSON value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	// A complete final line without its newline is fine.
	if _, err := Read(strings.NewReader(strings.TrimSuffix(inv, "\n"))); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, raw := range []string{`[["append","x"]]`, `[["append","x",null]]`, `[["w","x",1]]`, `[["r",1,null]]`, `[["r","x","a"]]`, `{}`} {
		if _, err := DecodeTxn(json.RawMessage(raw)); err == nil {
			t.Errorf("DecodeTxn(%s) = nil error", raw)
		}
	}
	for _, c := range [][2]string{{"write", `["k",null]`}, {"cas", `["k",[1]]`}, {"read", `["k"]`}, {"put", `["k",1]`}} {
		if _, err := DecodeRegister(c[0], json.RawMessage(c[1])); err == nil {
			t.Errorf("DecodeRegister(%s, %s) = nil error", c[0], c[1])
		}
	}
	op, err := DecodeRegister("cas", json.RawMessage(`["k",[1,2]]`))
	if err != nil || op.Old != 1 || op.Value != 2 || op.Key != "k" {
		t.Fatalf("cas = %+v, %v", op, err)
	}
}

func TestTSRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ts := TS{Wall: rapid.Int64Range(0, 1e18).Draw(t, "wall"), Logical: rapid.Int32Min(0).Draw(t, "logical")}
		got, err := ParseTS(ts.String())
		if err != nil || got != ts {
			t.Fatalf("ParseTS(%q) = %v, %v", ts.String(), got, err)
		}
	})
	if ts, err := ParseTS("1795641225.298964423,3"); err != nil || ts.Wall != 1795641225298964423 || ts.Logical != 3 {
		t.Fatalf("ParseTS = %v, %v", ts, err)
	}
	if ts, err := ParseTS("5.1"); err != nil || ts.Wall != 5_100_000_000 {
		t.Fatalf("ParseTS(5.1) = %v, %v", ts, err)
	}
	for _, bad := range []string{"", "x", "1.", "1.1234567890", "1,-1", "+1", "1.-2"} {
		if _, err := ParseTS(bad); err == nil {
			t.Errorf("ParseTS(%q) accepted", bad)
		}
	}
}

func FuzzRead(f *testing.F) {
	f.Add([]byte(`{"index":0,"type":"invoke","process":0,"f":"txn","value":[["r","x",null]]}` + "\n" +
		`{"index":1,"type":"ok","process":0,"f":"txn","value":[["r","x",[1,2]]]}` + "\n"))
	f.Add([]byte(`{"index":0,"type":"invoke","process":0,"f":"txn"`))
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, err := Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := WriteEvents(&buf, evs); err != nil {
			t.Fatalf("re-writing a valid history: %v", err)
		}
		again, err := Read(&buf)
		if err != nil || len(again) != len(evs) {
			t.Fatalf("re-reading: %d events, %v", len(again), err)
		}
		for i := range evs {
			if _, err := DecodeTxn(evs[i].Value); err == nil {
				// Decoding must not panic; nothing else to assert.
				continue
			}
		}
	})
}

func TestWriterConcurrent(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	done := make(chan error, 4)
	for p := 0; p < 4; p++ {
		go func() {
			for i := 0; i < 100; i++ {
				if _, err := w.Record(Event{Type: Invoke, Process: p, F: "add", Value: json.RawMessage("1")}); err != nil {
					done <- err
					return
				}
				if _, err := w.Record(Event{Type: OK, Process: p, F: "add", Value: json.RawMessage("1")}); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for p := 0; p < 4; p++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	evs, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 800 || evs[799].Index != 799 {
		t.Fatalf("read %d events", len(evs))
	}
	if err := w.Write(Event{Index: 5, Type: Invoke, Process: 9, F: "add"}); err == nil {
		t.Fatal("writing an index below the last should fail")
	}
}
