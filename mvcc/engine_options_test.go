package mvcc

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestMemTableSize: an Engine's memtables grow to DefaultMemTableSize
// unless Options say otherwise.
func TestMemTableSize(t *testing.T) {
	for _, tc := range []struct {
		set, want uint64
	}{{0, DefaultMemTableSize}, {8 << 20, 8 << 20}} {
		e, err := Open("", Options{FS: vfs.NewMem(), MemTableSize: tc.set})
		if err != nil {
			t.Fatal(err)
		}
		if got := e.opts.MemTableSize; got != tc.want {
			t.Errorf("MemTableSize %d: Pebble got %d, want %d", tc.set, got, tc.want)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
