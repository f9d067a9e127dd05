package cli

import (
	"testing"

	"go.uber.org/goleak"
)

// The reference-store clients and porcupine's per-partition checks start
// goroutines; none may outlive a test.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
