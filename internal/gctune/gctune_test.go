package gctune

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestParseMemTotal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"MemTotal:       24558772 kB\nMemFree:  1 kB\n", 24558772 << 10},
		{"MemFree: 5 kB\nMemTotal: 2048 kB\n", 2048 << 10},
		{"MemTotal: 2048 MB\n", 0},
		{"MemTotal: lots kB\n", 0},
		{"", 0},
	} {
		if got := parseMemTotal([]byte(tc.in)); got != tc.want {
			t.Errorf("parseMemTotal(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]int64{"max\n": 0, "4294967296\n": 4 << 30, "": 0, "-1": 0, "9223372036854771712\n": 9223372036854771712} {
		if got := parseLimit([]byte(in)); got != want {
			t.Errorf("parseLimit(%q) = %d, want %d", in, got, want)
		}
	}
}

// fakeFS serves files from a map.
func fakeFS(files map[string]string) func(string) ([]byte, error) {
	return func(p string) ([]byte, error) {
		if v, ok := files[p]; ok {
			return []byte(v), nil
		}
		return nil, os.ErrNotExist
	}
}

func TestAvailableMemory(t *testing.T) {
	meminfo := "MemTotal: 25165824 kB\n" // 24 GiB
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int64
	}{
		{"nothing readable", nil, 0},
		{"no cgroup limit", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory.max": "max\n"}, 24 << 30},
		{"v2 namespace root", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory.max": "2147483648\n"}, 2 << 30},
		{"v2 own cgroup", map[string]string{
			"/proc/meminfo":     meminfo,
			"/proc/self/cgroup": "0::/system.slice/meridian.service\n",
			"/sys/fs/cgroup/system.slice/meridian.service/memory.max": "1073741824\n",
		}, 1 << 30},
		{"v1 own cgroup", map[string]string{
			"/proc/meminfo":     meminfo,
			"/proc/self/cgroup": "12:cpu,cpuacct:/x\n7:memory:/docker/abc\n",
			"/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "536870912\n",
		}, 512 << 20},
		{"v1 unlimited", map[string]string{
			"/proc/meminfo":     meminfo,
			"/proc/self/cgroup": "7:memory:/\n",
			"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
		}, 24 << 30},
		{"path escaping the mount ignored", map[string]string{
			"/proc/meminfo":     meminfo,
			"/proc/self/cgroup": "0::/../../etc\n",
		}, 24 << 30},
	} {
		if got := availableMemory(fakeFS(tc.files)); got != tc.want {
			t.Errorf("%s: availableMemory = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestLimit(t *testing.T) {
	for avail, want := range map[int64]int64{
		512 << 20: 384 << 20, // the floor would not fit: three quarters
		2 << 30:   1 << 30,   // a quarter is below the floor
		24 << 30:  6 << 30,   // a quarter
	} {
		if got := limitFor(avail); got != want {
			t.Errorf("limitFor(%d MiB) = %d MiB, want %d MiB", avail>>20, got>>20, want>>20)
		}
	}
	if got := smallest(0, 8<<30, 4<<30); got != 4<<30 {
		t.Errorf("smallest = %d", got)
	}
}

func TestApplyRespectsEnvironment(t *testing.T) {
	if availableMemory(os.ReadFile) == 0 {
		t.Skip("this machine reports no memory size; Apply leaves the collector alone (TestAvailableMemory covers that)")
	}
	prevPercent := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	})

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	s := Apply()
	if s.Percent != DefaultPercent || debug.SetGCPercent(DefaultPercent) != DefaultPercent {
		t.Errorf("GC percent not set: %+v", s)
	}
	if s.Limit < minLimit || debug.SetMemoryLimit(-1) != s.Limit {
		t.Errorf("memory limit not set: %+v", s)
	}

	debug.SetGCPercent(100)
	t.Setenv("GOGC", "100")
	t.Setenv("GOMEMLIMIT", "3GiB")
	before := debug.SetMemoryLimit(-1)
	if s := Apply(); s != (Settings{}) {
		t.Errorf("Apply with GOGC and GOMEMLIMIT set changed %+v", s)
	}
	if debug.SetGCPercent(100) != 100 || debug.SetMemoryLimit(-1) != before {
		t.Error("Apply overrode GOGC or GOMEMLIMIT")
	}
}
