// Package check owns the checkers of Meridian's Jepsen-style suite: given a
// recorded history (package history) it decides whether the history is
// allowed by the guarantees Meridian claims, and explains every anomaly.
//
// Checkers:
//   - CheckListAppend, Elle-style (Kingsbury & Alvaro, VLDB 2020): checks
//     without a graph (internal, future-read, duplicate-elements, unexpected-element,
//     incompatible-order, G1a, G1b, dirty-update, lost-update); then version
//     orders from the longest read of each key, a dependency graph of ww, wr,
//     rw edges (plus process and realtime edges under strict-serializable),
//     Tarjan SCCs, and a breadth-first search per component for cycles of
//     each shape, classified as G0, G1c, G-single, G-nonadjacent, G2-item
//     and their -process / -realtime variants.
//   - CheckTimestampOrder (white box): server commit/read timestamps must
//     agree with every dependency and realtime edge.
//   - CheckRegister: per-key linearizability with porcupine.
//   - CheckBank, CheckSet: the invariants of the bank and set workloads.
//
// CheckDir / CheckRun run the checkers a run directory's workloads need and
// combine them with Worst (invalid > unknown > valid).
//
// Invariants:
//   - A checker never answers valid when it gave up: a search that times out
//     makes the result unknown, or invalid when a cycle is known to exist
//     (a nontrivial component always yields at least one reported cycle).
//   - Realtime order is history index order, never node clocks. Realtime
//     edges are a transitive reduction (each invocation links from the
//     frontier of ok completions not already implied), so their number is
//     O(n * concurrency), not O(n^2).
//   - Ops with unknown outcome (info) contribute writes and incoming edges
//     only; they never enter the realtime frontier; porcupine sees them with
//     an infinite return time.
//   - Every search is deterministic for a given history (sorted adjacency).
//
// Who calls it: the meridian-jepsen CLI (tests/jepsen/cli) and, later, the
// harness after a run. Pure Go; it imports no product package.
//
// Flow of CheckListAppend: index (decode txns, writers and reads per key)
// -> internal / readChecks / lostUpdates -> versionOrders -> buildGraph
// (keyEdges, orderEdges) -> searchCycles (sccs, then per component the
// shaped searches in severity order, skipping anomalies already implied).
//
// Tests: testdata/golden holds one minimal run directory per anomaly with
// an "expected" file (verdict, then the exact anomaly set); regenerate with
// `go test -run TestGolden -rewrite` and review the diff. Reference-store
// histories (sim_test.go) must always pass; mutated ones (mutate_test.go)
// must be flagged as named.
package check
