package gctune

import (
	"bufio"
	"bytes"
	"os"
	"runtime/debug"
	"slices"
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

// minLimit is the smallest soft memory limit Apply sets on a machine with
// room for it.
const minLimit = 1 << 30

// Settings is what Apply set; zero fields were left alone.
type Settings struct {
	Percent int   // GC percent, or 0
	Limit   int64 // soft memory limit in bytes, or 0
}

// Apply sets the GC percent to DefaultPercent unless GOGC is set, and a
// soft memory limit (debug.SetMemoryLimit) unless GOMEMLIMIT is set: a
// quarter of the memory available to the process — the smallest of
// physical memory and its cgroup's limit, v1 or v2 — but at least 1 GiB
// where that fits in three quarters of it. Near the limit the collector
// runs as often as it must, so the higher GC percent never takes the
// machine's memory. When the available memory cannot be read, Apply
// changes nothing.
func Apply() Settings {
	avail := availableMemory(os.ReadFile)
	if avail == 0 {
		return Settings{}
	}
	var s Settings
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(DefaultPercent)
		s.Percent = DefaultPercent
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		s.Limit = limitFor(avail)
		debug.SetMemoryLimit(s.Limit)
	}
	return s
}

// limitFor is a quarter of avail, raised to minLimit if that is at most
// three quarters of avail.
func limitFor(avail int64) int64 {
	return max(avail/4, min(minLimit, avail/4*3))
}

// availableMemory is the smallest of /proc/meminfo's MemTotal and the
// memory limits of the process's cgroups (v2 memory.max, v1
// memory.limit_in_bytes), or 0 when none can be read.
func availableMemory(read func(string) ([]byte, error)) int64 {
	vals := []int64{}
	if b, err := read("/proc/meminfo"); err == nil {
		vals = append(vals, parseMemTotal(b))
	}
	for _, p := range cgroupLimitFiles(read) {
		if b, err := read(p); err == nil {
			vals = append(vals, parseLimit(b))
		}
	}
	return smallest(vals...)
}

// cgroupLimitFiles names the files that may hold the process's memory
// limit: its own cgroup's (from /proc/self/cgroup) and the root of the
// cgroup mount (what a container with its own cgroup namespace sees).
func cgroupLimitFiles(read func(string) ([]byte, error)) []string {
	files := []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}
	b, err := read("/proc/self/cgroup")
	if err != nil {
		return files
	}
	for _, line := range strings.Split(string(b), "\n") {
		// "hierarchy-ID:controllers:path"; v2 is "0::path".
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 || !strings.HasPrefix(f[2], "/") || strings.Contains(f[2], "..") {
			continue
		}
		switch {
		case f[0] == "0" && f[1] == "":
			files = append(files, "/sys/fs/cgroup"+f[2]+"/memory.max")
		case slices.Contains(strings.Split(f[1], ","), "memory"):
			files = append(files, "/sys/fs/cgroup/memory"+f[2]+"/memory.limit_in_bytes")
		}
	}
	return files
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

// parseLimit reads a cgroup memory limit: a byte count, or "max" (v2) for
// none. (v1's "none" is a huge count, which MemTotal undercuts.)
func parseLimit(b []byte) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}
