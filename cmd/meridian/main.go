// Command meridian is the Meridian server and operator CLI. This file only
// wires cobra commands to the packages that do the work.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "meridian:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "meridian",
		Short:         "Meridian: a distributed, transactional key-value store",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyEnv(cmd)
		},
	}
	root.AddCommand(newVersionCmd(), newStartCmd(), newInitCmd(), newDemoCmd(), newKVCmd(), newNodeCmd(), newRangeCmd())
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		envHelp(c)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return root
}
