package history

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// File names inside a run directory.
const (
	HistoryFile = "history.jsonl"
	TestFile    = "test.json"
)

// Test is test.json: what ran and how to judge it.
type Test struct {
	Name string `json:"name,omitempty"`
	// Workloads that ran. An event without a workload field belongs to the
	// only workload when there is exactly one.
	Workloads []string `json:"workloads"`
	// Model is the consistency model claimed for transactions:
	// "strict-serializable" (default) or "serializable".
	Model string `json:"model,omitempty"`
	Seed  int64  `json:"seed,omitempty"`
	// MinOK is the number of ok operations each workload needs for its
	// verdict to be more than unknown (default 1).
	MinOK int `json:"min_ok,omitempty"`
	// CheckerTimeout bounds each search (Go duration, e.g. "10s").
	CheckerTimeout string          `json:"checker_timeout,omitempty"`
	Bank           *BankParams     `json:"bank,omitempty"`
	Set            *SetParams      `json:"set,omitempty"`
	Extra          json.RawMessage `json:"extra,omitempty"`
}

// BankParams describes the bank workload.
type BankParams struct {
	Accounts []string `json:"accounts"`
	Total    int64    `json:"total"`
	// FinalRead requires an ok read invoked after every transfer completed.
	FinalRead bool `json:"final_read,omitempty"`
}

// SetParams describes the set workload.
type SetParams struct {
	// FinalRead requires an ok read invoked after every add completed.
	FinalRead bool `json:"final_read,omitempty"`
}

// Run is a loaded run directory.
type Run struct {
	Dir    string
	Test   Test
	Events []Event
}

// LoadDir reads DIR/test.json and DIR/history.jsonl.
func LoadDir(dir string) (*Run, error) {
	b, err := os.ReadFile(filepath.Join(dir, TestFile))
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	// Unknown fields are allowed: the harness records its whole config
	// (nodes, nemeses, profile, ...) here, and the checkers need only this.
	var t Test
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("history: %s: %w", filepath.Join(dir, TestFile), err)
	}
	if len(t.Workloads) == 0 {
		return nil, fmt.Errorf("history: %s: no workloads listed", filepath.Join(dir, TestFile))
	}
	for _, w := range t.Workloads {
		switch w {
		case ListAppend, Register, Bank, Set:
		default:
			return nil, fmt.Errorf("history: %s: unknown workload %q", filepath.Join(dir, TestFile), w)
		}
	}
	evs, err := ReadFile(filepath.Join(dir, HistoryFile))
	if err != nil {
		return nil, err
	}
	return &Run{Dir: dir, Test: t, Events: evs}, nil
}

// WriteDir writes test.json and history.jsonl into dir (created if needed).
func WriteDir(dir string, t Test, events []Event) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, TestFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, HistoryFile))
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if err := WriteEvents(f, events); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
