package mvcc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
	"google.golang.org/protobuf/proto"
)

// TestDataDriven runs the transcripts in testdata/. Commands (keys are user
// keys, timestamps are "wall" or "wall,logical"):
//
//	txn t=<name> ts=<ts> [epoch=<n>] [seq=<n>]    define or redefine a transaction
//	put k=<key> ts=<ts> v=<value> [t=<txn>]        Put (a transaction writes at its ts and seq)
//
// With t=<txn>, ts= defaults to the transaction's write timestamp and seq=<n>
// first steps the transaction to sequence n.
//
//	del k=<key> ts=<ts> [t=<txn>]                  Delete
//	del_range k=<start> end=<end> ts=<ts> [t=<txn>] [max=<n>]
//	get k=<key> ts=<ts> [t=<txn>] [unc=<ts>] [locking] [ignore=<a>-<b>]
//	scan k=<start> end=<end> ts=<ts> [t=<txn>] [unc=<ts>] [locking] [reverse] [max=<n>] [bytes=<n>]
//	resolve k=<key> t=<txn> status=committed|aborted|pending [ignore=<a>-<b>]
//	resolve_range k=<start> end=<end> t=<txn> status=... [max=<n>]
//	gc k=<start> end=<end> threshold=<ts>
//	stats                                          incremental stats (checked against a recount after every command)
//	dump                                           every version and lock in the store
//
// Each command runs in its own batch, committed only if it succeeds, so a
// failed write is seen to change nothing.
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		e, err := Open("", Options{FS: vfs.NewMem()})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		h := &harness{e: e, txns: map[string]*api.TxnMeta{}}
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			out := h.run(t, td)
			got, err := ComputeStats(e.DB(), keys.UserSpanStart, keys.UserSpanEnd)
			if err != nil {
				t.Fatal(err)
			}
			if got != h.ms {
				t.Fatalf("%s: incremental stats %s, recomputed %s", td.Pos, h.ms, got)
			}
			return out
		})
	})
}

type harness struct {
	e    *Engine
	ms   Stats
	txns map[string]*api.TxnMeta
}

func parseTS(t *testing.T, s string) hlc.Timestamp {
	wall, logical, _ := strings.Cut(s, ",")
	w, err := strconv.ParseInt(wall, 10, 64)
	if err != nil {
		t.Fatalf("bad timestamp %q", s)
	}
	var l int64
	if logical != "" {
		if l, err = strconv.ParseInt(logical, 10, 32); err != nil {
			t.Fatalf("bad timestamp %q", s)
		}
	}
	return hlc.Timestamp{WallTime: w, Logical: int32(l)}
}

func fmtTS(ts hlc.Timestamp) string {
	if ts.Logical == 0 {
		return strconv.FormatInt(ts.WallTime, 10)
	}
	return fmt.Sprintf("%d,%d", ts.WallTime, ts.Logical)
}

func userKey(k []byte) string {
	if u, err := keys.DecodeUserKey(k); err == nil {
		return strconv.Quote(string(u))
	}
	return keys.Pretty(k)
}

func (h *harness) arg(td *datadriven.TestData, key string) (string, bool) {
	a, ok := td.Arg(key)
	if !ok {
		return "", false
	}
	if len(a.Vals) == 0 {
		return "", true
	}
	return a.Vals[0], true
}

func (h *harness) must(t *testing.T, td *datadriven.TestData, key string) string {
	v, ok := h.arg(td, key)
	if !ok {
		td.Fatalf(t, "missing %s=", key)
	}
	return v
}

func (h *harness) int(t *testing.T, td *datadriven.TestData, key string) int64 {
	v, ok := h.arg(td, key)
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		td.Fatalf(t, "bad %s=%s", key, v)
	}
	return n
}

func (h *harness) txn(t *testing.T, td *datadriven.TestData) *api.TxnMeta {
	name, ok := h.arg(td, "t")
	if !ok {
		return nil
	}
	txn, ok := h.txns[name]
	if !ok {
		td.Fatalf(t, "unknown txn %s", name)
	}
	return txn
}

func (h *harness) txnName(m *api.TxnMeta) string {
	for name, txn := range h.txns {
		if string(txn.GetId()) == string(m.GetId()) {
			return name
		}
	}
	return "?" + string(m.GetId())
}

func (h *harness) ignored(t *testing.T, td *datadriven.TestData) []*api.SeqRange {
	v, ok := h.arg(td, "ignore")
	if !ok {
		return nil
	}
	a, b, _ := strings.Cut(v, "-")
	s, err1 := strconv.Atoi(a)
	e, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil {
		td.Fatalf(t, "bad ignore=%s", v)
	}
	return []*api.SeqRange{{Start: int32(s), End: int32(e)}}
}

func (h *harness) fmtErr(err error) string {
	var wto *api.WriteTooOldError
	var unc *api.ReadWithinUncertaintyError
	var lce *api.LockConflictError
	switch {
	case errors.As(err, &wto):
		return fmt.Sprintf("error: WriteTooOld: %s at %s, retry at %s", userKey(wto.Key),
			fmtTS(wto.Timestamp.ToHLC()), fmtTS(wto.ActualTimestamp.ToHLC()))
	case errors.As(err, &unc):
		return fmt.Sprintf("error: ReadWithinUncertainty: %s read at %s saw a value at %s (limit %s)", userKey(unc.Key),
			fmtTS(unc.ReadTimestamp.ToHLC()), fmtTS(unc.ValueTimestamp.ToHLC()), fmtTS(unc.UncertaintyLimit.ToHLC()))
	case errors.As(err, &lce):
		var parts []string
		for _, l := range lce.Locks {
			parts = append(parts, fmt.Sprintf("%s held by %s", userKey(l.Key), h.txnName(l.Txn)))
		}
		return "error: LockConflict: " + strings.Join(parts, ", ")
	default:
		return "error: " + err.Error()
	}
}

func (h *harness) readOpts(t *testing.T, td *datadriven.TestData) ReadOptions {
	o := ReadOptions{Txn: h.txn(t, td), FailOnMoreRecent: td.HasArg("locking"), IgnoredSeqNums: h.ignored(t, td)}
	if v, ok := h.arg(td, "unc"); ok {
		o.UncertaintyLimit = parseTS(t, v)
	}
	o.MaxKeys = h.int(t, td, "max")
	o.TargetBytes = h.int(t, td, "bytes")
	return o
}

func (h *harness) run(t *testing.T, td *datadriven.TestData) string {
	key := func(name string) []byte { return keys.UserKey([]byte(h.must(t, td, name))) }
	// ts is the ts= argument, or the transaction's write timestamp.
	ts := func() hlc.Timestamp {
		if v, ok := h.arg(td, "ts"); ok {
			return parseTS(t, v)
		}
		if txn := h.txn(t, td); txn != nil {
			return txn.WriteTS()
		}
		td.Fatalf(t, "missing ts=")
		return hlc.Timestamp{}
	}
	// seq= on any command steps the transaction to that sequence.
	if name, ok := h.arg(td, "t"); ok && td.HasArg("seq") && td.Cmd != "txn" {
		if txn, ok := h.txns[name]; ok {
			txn.Sequence = int32(h.int(t, td, "seq"))
		}
	}
	// write runs f in a batch and commits it (and the stats delta) only if
	// f succeeds.
	write := func(f func(b *pebble.Batch, ms *Stats) (string, error)) string {
		b := h.e.NewBatch()
		defer b.Close()
		var delta Stats
		out, err := f(b, &delta)
		if err != nil {
			return h.fmtErr(err)
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		h.ms.Add(delta)
		if out == "" {
			out = "ok"
		}
		return out
	}
	switch td.Cmd {
	case "txn":
		name := h.must(t, td, "t")
		m := &api.TxnMeta{Id: []byte(name), Key: keys.UserKey([]byte(name)), WriteTimestamp: api.NewTimestamp(ts()),
			Epoch: int32(h.int(t, td, "epoch")), Sequence: int32(h.int(t, td, "seq"))}
		if old, ok := h.txns[name]; ok {
			m.MinTimestamp = old.MinTimestamp
		} else {
			m.MinTimestamp = m.WriteTimestamp
		}
		h.txns[name] = m
		return fmt.Sprintf("%s: epoch=%d ts=%s seq=%d", name, m.Epoch, fmtTS(m.WriteTS()), m.Sequence)
	case "put", "del":
		return write(func(b *pebble.Batch, ms *Stats) (string, error) {
			txn := h.txn(t, td)
			if td.Cmd == "del" {
				return "", Delete(b, ms, key("k"), ts(), txn)
			}
			return "", Put(b, ms, key("k"), ts(), []byte(h.must(t, td, "v")), txn)
		})
	case "del_range":
		return write(func(b *pebble.Batch, ms *Stats) (string, error) {
			deleted, resume, err := DeleteRange(b, ms, key("k"), key("end"), ts(),
				DeleteRangeOptions{Txn: h.txn(t, td), IgnoredSeqNums: h.ignored(t, td), MaxKeys: h.int(t, td, "max")})
			var sb strings.Builder
			for _, k := range deleted {
				fmt.Fprintf(&sb, "deleted %s\n", userKey(k))
			}
			if resume != nil {
				fmt.Fprintf(&sb, "resume at %s\n", userKey(resume))
			}
			return strings.TrimSuffix(sb.String(), "\n"), err
		})
	case "get":
		v, ok, err := Get(h.e.DB(), key("k"), ts(), h.readOpts(t, td))
		switch {
		case err != nil:
			return h.fmtErr(err)
		case !ok:
			return "get: not found"
		default:
			return fmt.Sprintf("get: %q @%s", v.RawBytes, fmtTS(v.Timestamp))
		}
	case "scan":
		res, err := Scan(h.e.DB(), key("k"), key("end"), ts(), h.readOpts(t, td), td.HasArg("reverse"))
		if err != nil {
			return h.fmtErr(err)
		}
		var sb strings.Builder
		for _, kv := range res.KVs {
			fmt.Fprintf(&sb, "scan: %s -> %q @%s\n", userKey(kv.Key), kv.Value.RawBytes, fmtTS(kv.Value.Timestamp))
		}
		if len(res.KVs) == 0 {
			sb.WriteString("scan: empty\n")
		}
		if res.ResumeKey != nil {
			fmt.Fprintf(&sb, "resume at %s (%d bytes)\n", userKey(res.ResumeKey), res.NumBytes)
		}
		return strings.TrimSuffix(sb.String(), "\n")
	case "resolve", "resolve_range":
		up := LockUpdate{Txn: h.txn(t, td), IgnoredSeqNums: h.ignored(t, td)}
		switch s := h.must(t, td, "status"); s {
		case "committed":
			up.Status = api.TransactionStatus_COMMITTED
		case "aborted":
			up.Status = api.TransactionStatus_ABORTED
		case "pending":
			up.Status = api.TransactionStatus_PENDING
		default:
			td.Fatalf(t, "bad status %s", s)
		}
		return write(func(b *pebble.Batch, ms *Stats) (string, error) {
			if td.Cmd == "resolve" {
				ok, err := ResolveIntent(b, ms, key("k"), up)
				return fmt.Sprintf("resolved: %t", ok), err
			}
			n, resume, err := ResolveIntentRange(b, ms, key("k"), key("end"), up, h.int(t, td, "max"))
			out := fmt.Sprintf("resolved: %d", n)
			if resume != nil {
				out += fmt.Sprintf(", resume at %s", userKey(resume))
			}
			return out, err
		})
	case "gc":
		return write(func(b *pebble.Batch, ms *Stats) (string, error) {
			n, err := GC(b, ms, key("k"), key("end"), parseTS(t, h.must(t, td, "threshold")))
			return fmt.Sprintf("gc: removed %d", n), err
		})
	case "stats":
		return h.ms.String()
	case "dump":
		return h.dump(t)
	default:
		td.Fatalf(t, "unknown command %s", td.Cmd)
		return ""
	}
}

// dump prints every lock and version, in engine order.
func (h *harness) dump(t *testing.T) string {
	it, err := h.e.DB().NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var sb strings.Builder
	for ok := it.First(); ok; ok = it.Next() {
		k, ts, err := keys.DecodeEngineKey(it.Key())
		if err != nil {
			t.Fatal(err)
		}
		if lk, err := keys.DecodeLockTableKey(k); err == nil {
			var rec api.LockRecord
			if err := proto.Unmarshal(it.Value(), &rec); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&sb, "lock %s: %s epoch=%d seq=%d ts=%s", userKey(lk), h.txnName(rec.Txn),
				rec.Txn.Epoch, rec.Txn.Sequence, fmtTS(rec.Txn.WriteTS()))
			for _, hv := range rec.History {
				fmt.Fprintf(&sb, " [seq %d: %s]", hv.Sequence, fmtRaw(hv.Value))
			}
			sb.WriteString("\n")
			continue
		}
		fmt.Fprintf(&sb, "%s @%s: %s\n", userKey(k), fmtTS(ts), fmtRaw(it.Value()))
	}
	if sb.Len() == 0 {
		return "empty"
	}
	return strings.TrimSuffix(sb.String(), "\n")
}

func fmtRaw(raw []byte) string {
	v, live, err := decodeValue(raw)
	switch {
	case err != nil:
		return "<" + err.Error() + ">"
	case !live:
		return "<tombstone>"
	default:
		return strconv.Quote(string(v))
	}
}
