// Package gctune configures the Go garbage collector for a Meridian
// process: a GC percent above Go's default, because a node's writes make
// much short-lived garbage over a small live heap, bounded by a soft memory
// limit (a quarter of the memory its cgroup or the machine allows) so the
// larger heap never takes the machine's memory. GOGC and GOMEMLIMIT, when
// set, win; where the memory size cannot be read nothing is changed. `meridian start` and `meridian demo` apply it,
// and so does raftgroup's benchmark, so its figures are the server's.
package gctune
