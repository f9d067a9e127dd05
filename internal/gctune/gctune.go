package gctune

import (
	"bufio"
	"bytes"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// DefaultPercent is the GC percent a Meridian process runs with unless
// GOGC says otherwise. Raft, gRPC and Pebble's commit path allocate many
// short-lived objects per write while the live heap stays small, so at Go's
// default of 100 the collector runs often and took 10-20% of the CPU in
// raftgroup's BenchmarkPropose profiles; at 400 the heap may grow to five
// times the live heap between collections instead of twice.
const DefaultPercent = 400

// minLimit is the smallest soft memory limit Apply sets.
const minLimit = 1 << 30

// Settings is what Apply set; zero fields were left to the environment.
type Settings struct {
	Percent int   // GC percent, or 0 when GOGC is set
	Limit   int64 // soft memory limit in bytes, or 0 when GOMEMLIMIT is set
}

// Apply sets the GC percent to DefaultPercent unless GOGC is set, and a
// soft memory limit (debug.SetMemoryLimit) of a quarter of the memory
// available to the process (the smaller of physical memory and a cgroup v2
// limit), at least 1 GiB, unless GOMEMLIMIT is set: near the limit the
// collector runs as often as it must, so the higher GC percent never takes
// a machine's memory.
func Apply() Settings {
	var s Settings
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(DefaultPercent)
		s.Percent = DefaultPercent
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		s.Limit = limitFor(availableMemory())
		debug.SetMemoryLimit(s.Limit)
	}
	return s
}

// limitFor is a quarter of avail, at least minLimit (avail 0: unknown).
func limitFor(avail int64) int64 {
	return max(avail/4, minLimit)
}

// availableMemory is the smaller of /proc/meminfo's MemTotal and the cgroup
// v2 memory.max, or 0 when neither can be read.
func availableMemory() int64 {
	return smallest(readFile(parseMemTotal, "/proc/meminfo"), readFile(parseCgroupMax, "/sys/fs/cgroup/memory.max"))
}

func readFile(parse func([]byte) int64, path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return parse(b)
}

// smallest returns the smallest positive value, or 0.
func smallest(vs ...int64) int64 {
	var m int64
	for _, v := range vs {
		if v > 0 && (m == 0 || v < m) {
			m = v
		}
	}
	return m
}

// parseMemTotal reads "MemTotal: <n> kB" from /proc/meminfo's text.
func parseMemTotal(b []byte) int64 {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "MemTotal:" && f[2] == "kB" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || n <= 0 {
				return 0
			}
			return n << 10
		}
	}
	return 0
}

// parseCgroupMax reads a cgroup v2 memory.max: a byte count, or "max" for
// none.
func parseCgroupMax(b []byte) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}
