package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// envName is the environment variable that sets a flag: MERIDIAN_ and the
// flag's name in upper case with '-' as '_' (--listen-addr:
// MERIDIAN_LISTEN_ADDR).
func envName(flag string) string {
	return "MERIDIAN_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag of cmd not given on the command line from its
// environment variable, if set. Flags win over the environment.
func applyEnv(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "help" {
			return
		}
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok {
			return
		}
		if serr := cmd.Flags().Set(f.Name, v); serr != nil {
			err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, serr)
		}
	})
	return err
}

// envHelp appends the environment note to every flag's usage.
func envHelp(cmd *cobra.Command) {
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" && !strings.Contains(f.Usage, "MERIDIAN_") {
			f.Usage += " [env " + envName(f.Name) + "]"
		}
	})
}

// testhooksEnvName names the control endpoint's address in a testhooks
// build (see testhooks_on.go); other builds ignore it.
const testhooksEnvName = "MERIDIAN_TESTHOOKS_ADDR"
