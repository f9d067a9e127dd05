package cli

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/meridiandb/meridian/tests/jepsen/check"
)

const checkLong = `Re-check a saved run directory offline and print the verdict with an
explanation of every anomaly found.

Exit codes: 0 valid, 1 invalid (anomalies found), 2 unknown (too few
operations, or a search gave up), 3 error (unreadable or malformed run).

A run directory holds two files.

test.json describes the run:
  {"workloads": ["list-append", "register", "bank", "set"],
   "model": "strict-serializable" | "serializable",   (default strict-serializable)
   "min_ok": 1,                   ok ops a workload needs for a verdict
   "checker_timeout": "10s",      per cycle-search component / per register key
   "bank": {"accounts": ["0","1"], "total": 20, "final_read": true},
   "set": {"final_read": true}, "seed": 42, "name": "..."}

history.jsonl holds one event per line, in index order:
  {"index":812,"type":"invoke","process":7,"time_ns":40213377120,"node":"n2",
   "workload":"list-append","f":"txn","value":[["append","k",5],["r","j",null]]}
  {"index":815,"type":"ok","process":7,"time_ns":40219001011,"node":"n2",
   "workload":"list-append","f":"txn","value":[["append","k",5],["r","j",[1,2]]],
   "commit_ts":"1795641225.298964423,3","gateway":"2"}

  index      strictly increasing; realtime order is index order
  type       invoke | ok | fail (definitely no effect) | info (outcome unknown)
  process    client process (one op at a time); the nemesis is -1
  time_ns    the harness's monotonic clock (display only)
  node       the harness's name for the node the client used
  gateway    the server's node ID, when returned
  workload   optional when test.json lists one workload
  f, value   per workload:
    list-append  txn       [["append",key,int] | ["r",key,null]]  ->  reads filled: [ints]
    register     read      [key,null] -> [key,int|null]
                 write     [key,int]
                 cas       [key,[old,new]]  (fail with error "precondition" = old differed)
    bank         transfer  {"from":0,"to":1,"amount":3}
                 read      null -> {"0":10,"1":10}
    set          add       int
                 read      null -> [ints]
  error      on fail / info
  read_ts, commit_ts   server HLC timestamps "<sec>.<nanos>,<logical>", when
             returned; they enable the white-box timestamp-order checker.

Checkers: list-append (Elle-style: internal, future-read, duplicate-elements,
unexpected-element,
incompatible-order, G1a, G1b, dirty-update, lost-update, G0, G1c, G-single,
G-nonadjacent, G2-item and their -process / -realtime variants),
ts-order (ts-inversion-ww/wr/rw/realtime, session-ts-regression), register
(porcupine: nonlinearizable; HTML visualisation written on failure), bank
(wrong-total, negative-value, nil-balance, unexpected-key,
missing-final-read), set (lost, stale, duplicated, unexpected,
failed-add-present, final-read-missing).`

func newCheckCmd() *cobra.Command {
	var (
		dir     string
		model   string
		timeout time.Duration
		viz     string
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "check --dir DIR",
		Short: "Re-check a saved history (history.jsonl + test.json) and print the verdict",
		Long:  checkLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return fmt.Errorf("--dir is required")
			}
			if viz == "" {
				viz = check.DefaultVisualizePath(dir)
			}
			s, err := check.CheckDir(dir, check.Options{Model: model, Timeout: timeout, VisualizePath: viz})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(toJSON(s)); err != nil {
					return err
				}
			} else {
				fmt.Fprint(out, s.String())
			}
			switch s.Valid {
			case check.ValidFalse:
				return exitCode(exitInvalid)
			case check.ValidUnknown:
				return exitCode(exitUnknown)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "run directory holding history.jsonl and test.json")
	cmd.Flags().StringVar(&model, "model", "", "override test.json's model: strict-serializable or serializable")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "bound each search (default test.json's checker_timeout, else 5s per component / 10s per key)")
	cmd.Flags().StringVar(&viz, "viz", "", "where to write the register visualisation on failure (default DIR/linear.html)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the results as JSON")
	return cmd
}

type jsonResult struct {
	Checker   string          `json:"checker"`
	Valid     string          `json:"valid"`
	Types     []string        `json:"anomaly_types,omitempty"`
	Counts    map[string]int  `json:"counts,omitempty"`
	Anomalies []check.Anomaly `json:"anomalies,omitempty"`
	Unknown   []string        `json:"unknown,omitempty"`
	Notes     []string        `json:"notes,omitempty"`
}

func toJSON(s check.Summary) any {
	var rs []jsonResult
	for _, r := range s.Results {
		rs = append(rs, jsonResult{Checker: r.Checker, Valid: r.Valid.String(), Types: r.AnomalyTypes(),
			Counts: r.Counts, Anomalies: r.Anomalies, Unknown: r.Unknown, Notes: r.Notes})
	}
	return struct {
		Valid    string       `json:"valid"`
		Types    []string     `json:"anomaly_types"`
		Checkers []jsonResult `json:"checkers"`
	}{s.Valid.String(), s.AnomalyTypes(), rs}
}
