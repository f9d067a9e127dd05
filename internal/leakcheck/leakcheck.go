package leakcheck

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Patience is how long a check waits for goroutines to exit before it
// reports them as leaked.
const Patience = 10 * time.Second

// Find returns goleak's report of the goroutines still running beyond the
// test framework's own, once they have had Patience to exit; nil if none.
func Find(opts ...goleak.Option) error {
	deadline := time.Now().Add(Patience)
	for {
		err := goleak.Find(opts...)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// VerifyNone fails t if goroutines are still running after Patience.
func VerifyNone(t testing.TB, opts ...goleak.Option) {
	t.Helper()
	if err := Find(opts...); err != nil {
		t.Error(err)
	}
}

// VerifyTestMain runs the package's tests and then, if they passed, fails
// the run when goroutines are left over. Use it as TestMain's body.
func VerifyTestMain(m *testing.M, opts ...goleak.Option) {
	code := m.Run()
	if code == 0 {
		if err := Find(opts...); err != nil {
			fmt.Fprintln(os.Stderr, "leakcheck: goroutines outlived the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}
