package history

import (
	"testing"

	"github.com/meridiandb/meridian/internal/leakcheck"
)

func TestMain(m *testing.M) {
	leakcheck.VerifyTestMain(m)
}
