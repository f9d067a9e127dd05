package check

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/meridiandb/meridian/tests/jepsen/history"
)

// Options configure CheckRun and CheckDir. Zero values take test.json's
// settings, then the defaults.
type Options struct {
	// Model overrides test.json's model for list-append.
	Model string
	// Timeout bounds each search (cycle search per component, porcupine
	// per key); overrides test.json's checker_timeout.
	Timeout time.Duration
	// VisualizePath receives porcupine's HTML on a register failure
	// (default: none).
	VisualizePath string
}

// CheckDir loads a run directory and checks it.
func CheckDir(dir string, opts Options) (Summary, error) {
	run, err := history.LoadDir(dir)
	if err != nil {
		return Summary{}, err
	}
	return CheckRun(run, opts)
}

// LinearVisualization is the conventional file name of porcupine's HTML in
// a run directory.
const LinearVisualization = "linear.html"

// DefaultVisualizePath is where the CLI writes the register visualisation.
func DefaultVisualizePath(dir string) string { return filepath.Join(dir, LinearVisualization) }

// CheckRun runs every checker that applies to the run's workloads and
// returns the worst verdict. The white-box timestamp-order checker runs
// when list-append transactions carry timestamps.
func CheckRun(run *history.Run, opts Options) (Summary, error) {
	t := run.Test
	def := ""
	if len(t.Workloads) == 1 {
		def = t.Workloads[0]
	}
	ops, err := history.Pair(run.Events, def)
	if err != nil {
		return Summary{}, err
	}
	listed := map[string]bool{}
	for _, w := range t.Workloads {
		listed[w] = true
	}
	for i := range ops {
		if !listed[ops[i].Workload] {
			return Summary{}, fmt.Errorf("check: op at index %d belongs to workload %q, which test.json does not list", ops[i].Inv, ops[i].Workload)
		}
	}
	timeout := opts.Timeout
	if timeout == 0 && t.CheckerTimeout != "" {
		if timeout, err = time.ParseDuration(t.CheckerTimeout); err != nil {
			return Summary{}, fmt.Errorf("check: test.json checker_timeout: %w", err)
		}
	}
	model := opts.Model
	if model == "" {
		model = t.Model
	}
	var results []*Result
	for _, w := range t.Workloads {
		var r *Result
		switch w {
		case history.ListAppend:
			la, err := analyzeListAppend(ops, ListAppendOptions{Model: model, SearchTimeout: timeout, MinOK: t.MinOK})
			if err != nil {
				return Summary{}, err
			}
			r = la.res
			if hasTimestamps(ops) {
				tr, err := la.tsOrder()
				if err != nil {
					return Summary{}, err
				}
				results = append(results, r)
				r = tr
			}
		case history.Register:
			r, err = CheckRegister(ops, RegisterOptions{Timeout: timeout, VisualizePath: opts.VisualizePath, MinOK: t.MinOK})
		case history.Bank:
			if t.Bank == nil {
				return Summary{}, fmt.Errorf("check: the bank workload needs \"bank\": {\"accounts\": [...], \"total\": N} in test.json")
			}
			r, err = CheckBank(ops, *t.Bank, t.MinOK)
		case history.Set:
			var p history.SetParams
			if t.Set != nil {
				p = *t.Set
			}
			r, err = CheckSet(ops, p, t.MinOK)
		default:
			return Summary{}, fmt.Errorf("check: no checker for workload %q", w)
		}
		if err != nil {
			return Summary{}, err
		}
		results = append(results, r)
	}
	return Worst(results...), nil
}

func hasTimestamps(ops []history.Op) bool {
	for i := range ops {
		if ops[i].Workload == history.ListAppend && ops[i].Type == history.OK && (ops[i].CommitTS != "" || ops[i].ReadTS != "") {
			return true
		}
	}
	return false
}
