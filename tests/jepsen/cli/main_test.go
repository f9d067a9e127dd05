package cli

import (
	"testing"

	"github.com/meridiandb/meridian/internal/leakcheck"
)

// The reference-store clients and porcupine's per-partition checks start
// goroutines; none may outlive a test.
func TestMain(m *testing.M) {
	leakcheck.VerifyTestMain(m)
}
