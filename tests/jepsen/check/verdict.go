package check

import (
	"fmt"
	"sort"
	"strings"
)

// Valid is a checker's answer.
type Valid int

// Ordered from best to worst, so Worst is a max.
const (
	ValidTrue Valid = iota
	ValidUnknown
	ValidFalse
)

func (v Valid) String() string {
	switch v {
	case ValidTrue:
		return "valid"
	case ValidUnknown:
		return "unknown"
	case ValidFalse:
		return "invalid"
	}
	return fmt.Sprintf("Valid(%d)", int(v))
}

// Anomaly is one observed violation, with a human explanation naming the
// operations (by history index), edges and keys involved.
type Anomaly struct {
	Type        string
	Key         string
	Ops         []int64 // indexes of the completions involved
	Explanation string
}

// MaxExamples caps the anomalies kept per type in a Result (the count of
// all of them is kept in Counts).
const MaxExamples = 8

// Result is a checker's verdict.
type Result struct {
	Checker string
	Valid   Valid
	// Anomalies holds up to MaxExamples examples per type.
	Anomalies []Anomaly
	// Counts is the number of anomalies found per type.
	Counts map[string]int
	// Unknown says why the verdict is unknown (too few operations, a search
	// that timed out, ...). Empty otherwise.
	Unknown []string
	// Notes are informational (files written, counts allowed by the model).
	Notes []string
}

func newResult(checker string) *Result {
	return &Result{Checker: checker, Counts: map[string]int{}}
}

// add records an anomaly, which makes the result invalid.
func (r *Result) add(a Anomaly) {
	r.Counts[a.Type]++
	if r.Counts[a.Type] <= MaxExamples {
		r.Anomalies = append(r.Anomalies, a)
	}
	r.Valid = ValidFalse
}

// unknown records why the result cannot be valid; it never hides invalid.
func (r *Result) unknown(why string) {
	r.Unknown = append(r.Unknown, why)
	if r.Valid < ValidUnknown {
		r.Valid = ValidUnknown
	}
}

// AnomalyTypes lists the distinct anomaly types found, sorted.
func (r *Result) AnomalyTypes() []string {
	var ts []string
	for t, n := range r.Counts {
		if n > 0 {
			ts = append(ts, t)
		}
	}
	sort.Strings(ts)
	return ts
}

// Summary is the verdict of several checkers: the worst of them.
type Summary struct {
	Valid   Valid
	Results []*Result
}

// Worst combines results: invalid if any is invalid, else unknown if any is
// unknown, else valid. No results at all is unknown.
func Worst(results ...*Result) Summary {
	s := Summary{Valid: ValidTrue, Results: results}
	if len(results) == 0 {
		s.Valid = ValidUnknown
	}
	for _, r := range results {
		if r.Valid > s.Valid {
			s.Valid = r.Valid
		}
	}
	return s
}

// AnomalyTypes lists the distinct anomaly types of all results, sorted.
func (s Summary) AnomalyTypes() []string {
	seen := map[string]bool{}
	var ts []string
	for _, r := range s.Results {
		for _, t := range r.AnomalyTypes() {
			if !seen[t] {
				seen[t] = true
				ts = append(ts, t)
			}
		}
	}
	sort.Strings(ts)
	return ts
}

// String renders the summary for humans: the overall verdict, then each
// checker's verdict, anomalies with explanations, and reasons for unknown.
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "verdict: %s\n", s.Valid)
	for _, r := range s.Results {
		fmt.Fprintf(&b, "\n== %s: %s\n", r.Checker, r.Valid)
		for _, t := range r.AnomalyTypes() {
			fmt.Fprintf(&b, "  %s: %d\n", t, r.Counts[t])
		}
		for _, a := range r.Anomalies {
			fmt.Fprintf(&b, "\n  [%s]", a.Type)
			if a.Key != "" {
				fmt.Fprintf(&b, " key %s", a.Key)
			}
			b.WriteString("\n")
			for _, line := range strings.Split(a.Explanation, "\n") {
				fmt.Fprintf(&b, "    %s\n", line)
			}
		}
		for _, u := range r.Unknown {
			fmt.Fprintf(&b, "  unknown: %s\n", u)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "  note: %s\n", n)
		}
	}
	return b.String()
}
