package mvcc

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/hlc"
	"github.com/meridiandb/meridian/keys"
	"pgregory.net/rapid"
)

// The model: plain maps of committed versions and intents, with the MVCC
// rules written as directly as possible. TestModel runs random operations
// against both and compares every result, the whole stored state and the
// stats after each one.

type mVersion struct {
	ts  hlc.Timestamp
	val []byte // nil: tombstone
}

type mHist struct {
	seq int32
	val []byte
}

type mIntent struct {
	txn     int
	epoch   int32
	seq     int32
	ts      hlc.Timestamp
	val     []byte
	history []mHist
}

type mTxn struct {
	meta    *api.TxnMeta
	ignored []*api.SeqRange
}

type model struct {
	versions map[string][]mVersion // newest first
	intents  map[string]*mIntent
}

// outcome is what an operation returned, comparable between model and
// engine.
type outcome struct {
	err  string // error class and details, "" for success
	vals []string
}

func classify(err error) string {
	var wto *api.WriteTooOldError
	var unc *api.ReadWithinUncertaintyError
	var lce *api.LockConflictError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &wto):
		return "wto " + wto.ActualTimestamp.ToHLC().String()
	case errors.As(err, &unc):
		return fmt.Sprintf("unc %q %s", unc.Key, unc.ValueTimestamp.ToHLC())
	case errors.As(err, &lce):
		s := "conflict"
		for _, l := range lce.Locks {
			s += fmt.Sprintf(" %q", l.Key)
		}
		return s
	case errors.Is(err, ErrSequenceReplayMismatch):
		return "replay mismatch"
	default:
		return "other: " + err.Error()
	}
}

func (m *model) newest(k string) (mVersion, bool) {
	vs := m.versions[k]
	if len(vs) == 0 {
		return mVersion{}, false
	}
	return vs[0], true
}

func (m *model) addVersion(k string, v mVersion) {
	vs := append(m.versions[k], v)
	sort.Slice(vs, func(i, j int) bool { return vs[j].ts.Less(vs[i].ts) })
	m.versions[k] = vs
}

func (m *model) put(k string, ts hlc.Timestamp, val []byte, txn *mTxn, txnIdx int) string {
	if in := m.intents[k]; in != nil {
		if txn == nil || in.txn != txnIdx {
			return fmt.Sprintf("conflict %q", keys.UserKey([]byte(k)))
		}
		meta := txn.meta
		if meta.Epoch == in.epoch && meta.Sequence <= in.seq {
			if meta.Sequence == in.seq {
				if bytes.Equal(in.val, val) && (in.val == nil) == (val == nil) {
					return ""
				}
				return "replay mismatch"
			}
			for _, h := range in.history {
				if h.seq == meta.Sequence {
					if bytes.Equal(h.val, val) && (h.val == nil) == (val == nil) {
						return ""
					}
					break
				}
			}
			return "replay mismatch"
		}
		if meta.Epoch == in.epoch {
			in.history = append(in.history, mHist{in.seq, in.val})
		} else {
			in.history = nil
		}
		in.epoch, in.seq, in.ts, in.val = meta.Epoch, meta.Sequence, ts.Forward(in.ts), val
		return ""
	}
	if n, ok := m.newest(k); ok && ts.LessEq(n.ts) {
		return "wto " + n.ts.Next().String()
	}
	if txn != nil {
		m.intents[k] = &mIntent{txn: txnIdx, epoch: txn.meta.Epoch, seq: txn.meta.Sequence, ts: ts, val: val}
		return ""
	}
	m.addVersion(k, mVersion{ts: ts, val: val})
	return ""
}

type mReadOpts struct {
	txn     *mTxn
	txnIdx  int
	unc     hlc.Timestamp
	locking bool
}

// read returns the value of k at ts and whether one is visible, or records
// a conflict / too-old timestamp, or returns an uncertainty error.
func (m *model) read(k string, ts hlc.Timestamp, o mReadOpts, conflicts *[]string, tooOld *hlc.Timestamp) (val []byte, vts hlc.Timestamp, ok bool, unc string) {
	if in := m.intents[k]; in != nil {
		switch {
		case o.txn == nil || in.txn != o.txnIdx:
			if o.locking || in.ts.LessEq(ts.Forward(o.unc)) {
				*conflicts = append(*conflicts, fmt.Sprintf(" %q", keys.UserKey([]byte(k))))
				return nil, hlc.Timestamp{}, false, ""
			}
		case in.epoch == o.txn.meta.Epoch:
			seq := o.txn.meta.Sequence
			if in.seq <= seq && !seqIgnored(in.seq, o.txn.ignored) {
				return in.val, in.ts, in.val != nil, ""
			}
			for i := len(in.history) - 1; i >= 0; i-- {
				if h := in.history[i]; h.seq <= seq && !seqIgnored(h.seq, o.txn.ignored) {
					return h.val, in.ts, h.val != nil, ""
				}
			}
		}
	}
	for _, v := range m.versions[k] {
		if o.locking && ts.LessEq(v.ts) {
			if tooOld.Less(v.ts.Next()) {
				*tooOld = v.ts.Next()
			}
			return nil, hlc.Timestamp{}, false, ""
		}
		if ts.Less(v.ts) {
			if v.ts.LessEq(o.unc) {
				return nil, hlc.Timestamp{}, false, fmt.Sprintf("unc %q %s", keys.UserKey([]byte(k)), v.ts)
			}
			continue
		}
		return v.val, v.ts, v.val != nil, ""
	}
	return nil, hlc.Timestamp{}, false, ""
}

func (m *model) allKeys() []string {
	var ks []string
	for k, vs := range m.versions {
		if len(vs) > 0 {
			ks = append(ks, k)
		}
	}
	for k := range m.intents {
		if len(m.versions[k]) == 0 {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks
}

func (m *model) scan(start, end string, ts hlc.Timestamp, o mReadOpts, reverse bool, maxKeys, targetBytes int64) outcome {
	var ks []string
	for _, k := range m.allKeys() {
		if start <= k && k < end {
			ks = append(ks, k)
		}
	}
	if reverse {
		slices.Reverse(ks)
	}
	var out outcome
	var conflicts []string
	var tooOld hlc.Timestamp
	var n, bytes int64
	for _, k := range ks {
		if (maxKeys > 0 && n >= maxKeys) || (targetBytes > 0 && bytes >= targetBytes) {
			r := keys.UserKey([]byte(k))
			if reverse {
				r = keys.Next(r)
			}
			out.vals = append(out.vals, fmt.Sprintf("resume %q", r))
			break
		}
		val, vts, ok, unc := m.read(k, ts, o, &conflicts, &tooOld)
		if unc != "" {
			return outcome{err: unc}
		}
		if ok {
			out.vals = append(out.vals, fmt.Sprintf("%q=%q@%s", keys.UserKey([]byte(k)), val, vts))
			n++
			bytes += int64(len(keys.UserKey([]byte(k))) + len(val))
		}
	}
	if len(conflicts) > 0 {
		return outcome{err: "conflict" + fmt.Sprint(joinStrings(conflicts))}
	}
	if !tooOld.IsEmpty() {
		return outcome{err: "wto " + tooOld.String()}
	}
	return out
}

func joinStrings(s []string) string {
	var b []byte
	for _, x := range s {
		b = append(b, x...)
	}
	return string(b)
}

// resolve mirrors ResolveIntent.
func (m *model) resolve(k string, txnIdx int, t *mTxn, status api.TransactionStatus) bool {
	in := m.intents[k]
	if in == nil || in.txn != txnIdx {
		return false
	}
	remove := status == api.TransactionStatus_ABORTED ||
		(status == api.TransactionStatus_COMMITTED && in.epoch < t.meta.Epoch)
	if status == api.TransactionStatus_PENDING && in.epoch != t.meta.Epoch {
		return false
	}
	val, seq, hist := in.val, in.seq, in.history
	if !remove && seqIgnored(in.seq, t.ignored) {
		remove = true
		for i := len(hist) - 1; i >= 0; i-- {
			if !seqIgnored(hist[i].seq, t.ignored) {
				val, seq, hist, remove = hist[i].val, hist[i].seq, hist[:i], false
				break
			}
		}
	}
	newTS := in.ts.Forward(t.meta.WriteTS())
	switch {
	case remove:
		delete(m.intents, k)
	case status == api.TransactionStatus_PENDING:
		in.ts, in.val, in.seq, in.history = newTS, val, seq, hist
	default:
		delete(m.intents, k)
		m.addVersion(k, mVersion{ts: newTS, val: val})
	}
	return true
}

func (m *model) gc(start, end string, threshold hlc.Timestamp) int64 {
	var n int64
	for k, vs := range m.versions {
		if k < start || k >= end {
			continue
		}
		for i, v := range vs {
			if v.ts.LessEq(threshold) {
				keep := i
				if v.val != nil {
					keep = i + 1
				}
				n += int64(len(vs) - keep)
				m.versions[k] = vs[:keep]
				break
			}
		}
	}
	return n
}

// dump renders the model's state like engineDump renders the engine's.
func (m *model) dump(txns []*mTxn) []string {
	var out []string
	for _, k := range m.allKeys() {
		if in := m.intents[k]; in != nil {
			s := fmt.Sprintf("lock %q txn=%d epoch=%d seq=%d ts=%s", keys.UserKey([]byte(k)), in.txn, in.epoch, in.seq, in.ts)
			for _, h := range in.history {
				s += fmt.Sprintf(" [%d %q %t]", h.seq, h.val, h.val == nil)
			}
			out = append(out, s, fmt.Sprintf("%q@%s=%q %t", keys.UserKey([]byte(k)), in.ts, in.val, in.val == nil))
		}
		for _, v := range m.versions[k] {
			out = append(out, fmt.Sprintf("%q@%s=%q %t", keys.UserKey([]byte(k)), v.ts, v.val, v.val == nil))
		}
	}
	return out
}

func engineDump(t *rapid.T, r Reader, txns []*mTxn) []string {
	txnIdx := func(id []byte) int {
		for i, tx := range txns {
			if bytes.Equal(tx.meta.Id, id) {
				return i
			}
		}
		return -1
	}
	locks, err := scanLocks(r, keys.UserSpanStart, keys.UserSpanEnd)
	if err != nil {
		t.Fatal(err)
	}
	lc := lockCursor{locks: locks}
	it, _ := r.NewIter(nil)
	defer it.Close()
	var out []string
	var lastKey []byte
	for ok := it.SeekGE(keys.EncodeEngineKey(keys.UserSpanStart, hlc.Timestamp{})); ok; ok = it.Next() {
		k, ts, err := keys.DecodeEngineKey(it.Key())
		if err != nil {
			t.Fatal(err)
		}
		if lastKey == nil || !bytes.Equal(k, lastKey) {
			lastKey = slices.Clone(k)
			if lk := lc.at(k); lk != nil {
				s := fmt.Sprintf("lock %q txn=%d epoch=%d seq=%d ts=%s", k, txnIdx(lk.rec.Txn.Id), lk.rec.Txn.Epoch, lk.rec.Txn.Sequence, lk.provTS)
				for _, h := range lk.rec.History {
					v, live, _ := decodeValue(h.Value)
					s += fmt.Sprintf(" [%d %q %t]", h.Sequence, v, !live)
				}
				out = append(out, s)
			}
		}
		v, live, err := decodeValue(it.Value())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%q@%s=%q %t", k, ts, v, !live))
	}
	if len(lc.locks) > 0 {
		t.Fatalf("locks without versions: %v", lc.locks[0].key)
	}
	return out
}

func TestModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e, err := Open("", Options{FS: vfs.NewMem(), CacheSize: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		m := &model{versions: map[string][]mVersion{}, intents: map[string]*mIntent{}}
		var ms Stats
		keyNames := []string{"a", "b", "c", "d", "e"}
		genKey := rapid.SampledFrom(keyNames)
		genTS := rapid.Custom(func(t *rapid.T) hlc.Timestamp {
			return hlc.Timestamp{WallTime: rapid.Int64Range(1, 12).Draw(t, "wall"), Logical: rapid.Int32Range(0, 1).Draw(t, "logical")}
		})
		genVal := rapid.SampledFrom([]string{"x", "y", "", "del"})
		valOf := func(s string) []byte {
			if s == "del" {
				return nil
			}
			return []byte(s)
		}
		var txns []*mTxn
		for i := range 3 {
			txns = append(txns, &mTxn{meta: &api.TxnMeta{Id: []byte{byte('A' + i)}, WriteTimestamp: api.NewTimestamp(hlc.Timestamp{WallTime: int64(3 * (i + 1))})}})
		}
		genTxn := rapid.IntRange(-1, len(txns)-1) // -1: no transaction

		// apply runs f in a batch, committing it and the stats delta only on
		// success, and compares the outcome with the model's.
		apply := func(name string, f func(b *pebble.Batch, ms *Stats) outcome, want outcome) {
			b := e.NewBatch()
			defer b.Close()
			var delta Stats
			got := f(b, &delta)
			if got.err == "" {
				if err := b.Commit(pebble.NoSync); err != nil {
					t.Fatal(err)
				}
				ms.Add(delta)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s: engine %v, model %v", name, got, want)
			}
		}
		t.Repeat(map[string]func(*rapid.T){
			"put": func(t *rapid.T) {
				k, v, ti := genKey.Draw(t, "k"), genVal.Draw(t, "v"), genTxn.Draw(t, "txn")
				var ts hlc.Timestamp
				var tx *mTxn
				var meta *api.TxnMeta
				if ti >= 0 {
					tx = txns[ti]
					if !rapid.Bool().Draw(t, "replay") {
						tx.meta.Sequence++
					}
					meta, ts = tx.meta, tx.meta.WriteTS()
				} else {
					ts = genTS.Draw(t, "ts")
				}
				want := outcome{err: m.put(k, ts, valOf(v), tx, ti)}
				apply("put", func(b *pebble.Batch, ms *Stats) outcome {
					var err error
					if v == "del" {
						err = Delete(b, ms, keys.UserKey([]byte(k)), ts, meta)
					} else {
						err = Put(b, ms, keys.UserKey([]byte(k)), ts, []byte(v), meta)
					}
					return outcome{err: classify(err)}
				}, want)
			},
			"get/scan": func(t *rapid.T) {
				ts, ti := genTS.Draw(t, "ts"), genTxn.Draw(t, "txn")
				ro := ReadOptions{FailOnMoreRecent: rapid.Bool().Draw(t, "locking")}
				mo := mReadOpts{txnIdx: ti, locking: ro.FailOnMoreRecent}
				if rapid.Bool().Draw(t, "unc") {
					ro.UncertaintyLimit = ts.Forward(genTS.Draw(t, "limit"))
					mo.unc = ro.UncertaintyLimit
				}
				if ti >= 0 {
					mo.txn = txns[ti]
					ro.Txn, ro.IgnoredSeqNums = txns[ti].meta, txns[ti].ignored
					ts = txns[ti].meta.WriteTS()
				}
				start := genKey.Draw(t, "start")
				if rapid.Bool().Draw(t, "point") {
					var conflicts []string
					var tooOld hlc.Timestamp
					val, vts, ok, unc := m.read(start, ts, mo, &conflicts, &tooOld)
					want := outcome{err: unc}
					switch {
					case unc != "":
					case len(conflicts) > 0:
						want.err = "conflict" + joinStrings(conflicts)
					case !tooOld.IsEmpty():
						want.err = "wto " + tooOld.String()
					case ok:
						want.vals = []string{fmt.Sprintf("%q@%s", val, vts)}
					}
					v, found, err := Get(e.DB(), keys.UserKey([]byte(start)), ts, ro)
					got := outcome{err: classify(err)}
					if found {
						got.vals = []string{fmt.Sprintf("%q@%s", v.RawBytes, v.Timestamp)}
					}
					if fmt.Sprint(got) != fmt.Sprint(want) {
						t.Fatalf("get %s: engine %v, model %v", start, got, want)
					}
					return
				}
				end := rapid.SampledFrom(append(keyNames, "z")).Filter(func(s string) bool { return s > start }).Draw(t, "end")
				reverse := rapid.Bool().Draw(t, "reverse")
				ro.MaxKeys = rapid.Int64Range(0, 3).Draw(t, "max")
				ro.TargetBytes = rapid.SampledFrom([]int64{0, 1, 3, 6}).Draw(t, "bytes")
				want := m.scan(start, end, ts, mo, reverse, ro.MaxKeys, ro.TargetBytes)
				// Read through the store, or through a batch holding an
				// unrelated uncommitted write (reads merge both).
				var r Reader = e.DB()
				if rapid.Bool().Draw(t, "batch") {
					b := e.NewBatch()
					defer b.Close()
					if err := b.Set(keys.EncodeEngineKey(keys.UserKey([]byte("zz")), hlc.Timestamp{WallTime: 1}), encodeValue(nil), nil); err != nil {
						t.Fatal(err)
					}
					r = b
				}
				res, err := Scan(r, keys.UserKey([]byte(start)), keys.UserKey([]byte(end)), ts, ro, reverse)
				got := outcome{err: classify(err)}
				for _, kv := range res.KVs {
					got.vals = append(got.vals, fmt.Sprintf("%q=%q@%s", kv.Key, kv.Value.RawBytes, kv.Value.Timestamp))
				}
				if res.ResumeKey != nil {
					got.vals = append(got.vals, fmt.Sprintf("resume %q", res.ResumeKey))
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("scan [%s,%s) reverse=%t: engine %v, model %v", start, end, reverse, got, want)
				}
			},
			"resolve": func(t *rapid.T) {
				ti := rapid.IntRange(0, len(txns)-1).Draw(t, "txn")
				tx := txns[ti]
				status := rapid.SampledFrom([]api.TransactionStatus{api.TransactionStatus_COMMITTED,
					api.TransactionStatus_ABORTED, api.TransactionStatus_PENDING}).Draw(t, "status")
				up := LockUpdate{Txn: tx.meta, Status: status, IgnoredSeqNums: tx.ignored}
				if rapid.Bool().Draw(t, "point") {
					k := genKey.Draw(t, "k")
					want := outcome{vals: []string{fmt.Sprint(m.resolve(k, ti, tx, status))}}
					apply("resolve", func(b *pebble.Batch, ms *Stats) outcome {
						ok, err := ResolveIntent(b, ms, keys.UserKey([]byte(k)), up)
						return outcome{err: classify(err), vals: []string{fmt.Sprint(ok)}}
					}, want)
					return
				}
				var n int64
				for _, k := range keyNames {
					if m.resolve(k, ti, tx, status) {
						n++
					}
				}
				apply("resolve_range", func(b *pebble.Batch, ms *Stats) outcome {
					got, _, err := ResolveIntentRange(b, ms, keys.UserSpanStart, keys.UserSpanEnd, up, 0)
					return outcome{err: classify(err), vals: []string{fmt.Sprint(got)}}
				}, outcome{vals: []string{fmt.Sprint(n)}})
			},
			"txn": func(t *rapid.T) {
				tx := txns[rapid.IntRange(0, len(txns)-1).Draw(t, "txn")]
				switch rapid.IntRange(0, 2).Draw(t, "what") {
				case 0: // push
					tx.meta.WriteTimestamp = api.NewTimestamp(tx.meta.WriteTS().Forward(genTS.Draw(t, "ts")))
				case 1: // restart
					tx.meta.Epoch++
					tx.meta.Sequence = 0
					tx.ignored = nil
				case 2: // roll back to a savepoint
					if tx.meta.Sequence > 0 {
						from := rapid.Int32Range(1, tx.meta.Sequence).Draw(t, "from")
						tx.ignored = append(tx.ignored, &api.SeqRange{Start: from, End: tx.meta.Sequence})
					}
				}
			},
			"del_range": func(t *rapid.T) {
				ti := genTxn.Draw(t, "txn")
				start := genKey.Draw(t, "start")
				end := rapid.SampledFrom(append(keyNames, "z")).Filter(func(s string) bool { return s > start }).Draw(t, "end")
				maxKeys := rapid.Int64Range(0, 3).Draw(t, "max")
				ts := genTS.Draw(t, "ts")
				mo := mReadOpts{txnIdx: ti, locking: true}
				var meta *api.TxnMeta
				var ignored []*api.SeqRange
				if ti >= 0 {
					mo.txn = txns[ti]
					meta, ignored = txns[ti].meta, txns[ti].ignored
					meta.Sequence++
					ts = meta.WriteTS()
				}
				// The model: a locking scan, then a tombstone on each key found.
				want := m.scan(start, end, ts, mo, false, maxKeys, 0)
				if want.err == "" {
					for _, k := range m.allKeys() {
						if start <= k && k < end && slices.ContainsFunc(want.vals, func(v string) bool {
							return len(v) > 0 && v[0] == '"' && bytes.HasPrefix([]byte(v), fmt.Appendf(nil, "%q=", keys.UserKey([]byte(k))))
						}) {
							if err := m.put(k, ts, nil, mo.txn, ti); err != "" {
								t.Fatalf("model delete of %s: %s", k, err)
							}
						}
					}
					for i, v := range want.vals {
						if !bytes.HasPrefix([]byte(v), []byte("resume")) {
							want.vals[i] = v[:bytes.IndexByte([]byte(v), '=')]
						}
					}
				}
				apply("del_range", func(b *pebble.Batch, ms *Stats) outcome {
					deleted, resume, err := DeleteRange(b, ms, keys.UserKey([]byte(start)), keys.UserKey([]byte(end)), ts, DeleteRangeOptions{Txn: meta, IgnoredSeqNums: ignored, MaxKeys: maxKeys})
					got := outcome{err: classify(err)}
					for _, k := range deleted {
						got.vals = append(got.vals, fmt.Sprintf("%q", k))
					}
					if resume != nil {
						got.vals = append(got.vals, fmt.Sprintf("resume %q", resume))
					}
					return got
				}, want)
			},
			"gc": func(t *rapid.T) {
				threshold := genTS.Draw(t, "threshold")
				start := genKey.Draw(t, "start")
				want := outcome{vals: []string{fmt.Sprint(m.gc(start, "z", threshold))}}
				apply("gc", func(b *pebble.Batch, ms *Stats) outcome {
					n, err := GC(b, ms, keys.UserKey([]byte(start)), keys.UserKey([]byte("z")), threshold)
					return outcome{err: classify(err), vals: []string{fmt.Sprint(n)}}
				}, want)
			},
			"": func(t *rapid.T) {
				// After every step: same state, and incremental stats agree
				// with a recount.
				if got, want := engineDump(t, e.DB(), txns), m.dump(txns); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("state differs:\nengine %q\nmodel  %q", got, want)
				}
				got, err := ComputeStats(e.DB(), keys.UserSpanStart, keys.UserSpanEnd)
				if err != nil {
					t.Fatal(err)
				}
				if got != ms {
					t.Fatalf("incremental stats %s, recomputed %s", ms, got)
				}
			},
		})
	})
}
