// Command meridian-jepsen is Meridian's Jepsen-style test suite. For now it
// re-checks saved histories (`meridian-jepsen check --dir DIR`); the harness
// that runs clusters under faults comes later. This file only wires the
// command tree of tests/jepsen/cli to the process.
package main

import (
	"os"

	"github.com/meridiandb/meridian/tests/jepsen/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}
