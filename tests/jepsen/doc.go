// Package jepsen is the root of Meridian's Jepsen-style test suite: real
// server processes under faults, a recorded history, and checkers that prove
// (or refute) the guarantees in DESIGN.md "Time and the guarantees".
//
// Where to start reading:
//   - history: the event format (history.jsonl, test.json), its reader and
//     writer, and the pairing of invocations with completions into operations.
//   - check: the checkers (Elle-style list-append, porcupine registers, bank,
//     set, white-box timestamp order) and the verdict they return.
//
// The harness, nemeses and workload clients come later; they write the
// format that history defines and hand a run directory to check.CheckDir.
package jepsen
