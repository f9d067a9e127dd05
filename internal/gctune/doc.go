// Package gctune configures the Go garbage collector for a Meridian
// process: a GC percent above Go's default, because a node's writes make
// much short-lived garbage over a small live heap, bounded by a soft memory
// limit so the larger heap never takes the machine's memory. GOGC and
// GOMEMLIMIT, when set, win. `meridian start` and `meridian demo` apply it,
// and so does raftgroup's benchmark, so its figures are the server's.
package gctune
