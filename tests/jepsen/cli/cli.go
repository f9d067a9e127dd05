package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Exit codes, shared by every subcommand that judges a history.
const (
	exitValid   = 0
	exitInvalid = 1
	exitUnknown = 2
	exitError   = 3
)

// exitCode carries a non-zero exit code out of a RunE without printing an
// error (the verdict was already printed).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// Run executes the meridian-jepsen CLI with args (without the program
// name) and returns the process exit code.
func Run(args []string, stdout, stderr io.Writer) int {
	root := NewRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	var code exitCode
	switch {
	case err == nil:
		return exitValid
	case errors.As(err, &code):
		return int(code)
	default:
		fmt.Fprintln(stderr, "meridian-jepsen:", err)
		return exitError
	}
}

// NewRootCmd returns the meridian-jepsen command tree.
func NewRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "meridian-jepsen",
		Short:         "Meridian's Jepsen-style test suite: run workloads under faults and check the histories",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newCheckCmd())
	return root
}
