// Package cli is the command tree of the meridian-jepsen binary: today the
// offline `check --dir DIR` of a saved run, later `run`, `sweep`, `mutate`.
// It turns check.Summary verdicts into exit codes (0 valid, 1 invalid,
// 2 unknown, 3 error) and documents the history format in `check --help`.
//
// Who calls it: the binary's main package, which only does
// os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr)); tests call Run
// in-process.
package cli
