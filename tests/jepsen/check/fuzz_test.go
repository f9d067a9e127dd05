package check

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/meridiandb/meridian/tests/jepsen/history"
)

// FuzzCheckRun: no history, however malformed, makes a checker panic; it
// gets a verdict or an error.
func FuzzCheckRun(f *testing.F) {
	dirs, _ := filepath.Glob(filepath.Join(goldenDir, "*", history.HistoryFile))
	for _, d := range dirs {
		if b, err := os.ReadFile(d); err == nil {
			f.Add(b)
		}
	}
	test := history.Test{
		Workloads: []string{history.ListAppend, history.Register, history.Bank, history.Set},
		Bank:      &history.BankParams{Accounts: []string{"0", "1"}, Total: 20, FinalRead: true},
		Set:       &history.SetParams{FinalRead: true},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, err := history.Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		for i := range evs {
			if evs[i].Workload == "" {
				evs[i].Workload = history.ListAppend
			}
		}
		s, err := CheckRun(&history.Run{Test: test, Events: evs}, Options{Timeout: time.Second})
		if err != nil {
			return
		}
		_ = s.String()
	})
}
