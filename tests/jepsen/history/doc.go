// Package history owns the on-disk format of a Jepsen-style run: the event
// log history.jsonl (one JSON event per line) and the run description
// test.json, plus the pairing of invocations with their completions.
//
// Invariants of a valid history (checked by the reader, so every checker may
// rely on them):
//   - index is strictly increasing from line to line; realtime order is index
//     order (the harness allocates indexes under one mutex, at the instant a
//     request is sent and the instant its response arrives).
//   - type is invoke, ok, fail or info. info means the outcome is unknown.
//   - a process has at most one outstanding invocation, and a completion
//     belongs to the process's outstanding invocation with the same f.
//   - the nemesis is process -1; client processes are >= 0.
//
// Who calls it: the harness writes with Writer, checkers and the
// meridian-jepsen CLI read with ReadFile / LoadDir, then Pair.
//
// Flow: LoadDir(dir) -> Run{Test, Events} -> Pair(events) -> []Op, each op
// an invocation with its completion (or none, which counts as info). Values
// are kept raw and decoded per workload by DecodeTxn, DecodeRegister,
// DecodeTransfer, DecodeBalances and the set helpers.
package history
