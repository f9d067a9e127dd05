package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/meridiandb/meridian/internal/gctune"
	"github.com/meridiandb/meridian/server"
)

func newDemoCmd() *cobra.Command {
	var nodes, basePort int
	var logLevel string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a throwaway N-node cluster in this process and say how to connect",
		Long: `Run an N-node cluster in one process, on in-memory stores (the data is
gone when it stops). Node i listens on 127.0.0.1:<base-port + 10*(i-1)>
for gRPC and 127.0.0.1:<8080 + i-1> for HTTP, or on free ports when those
are taken.
Runs until Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nodes < 1 || nodes > 9 {
				return fmt.Errorf("--nodes %d: want 1 to 9", nodes)
			}
			logger, err := newLogger(cmd.ErrOrStderr(), logLevel, "text")
			if err != nil {
				return err
			}
			logGC(logger, gctune.Apply())
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var ns []*server.Node
			defer func() {
				for i := len(ns) - 1; i >= 0; i-- {
					_ = ns[i].Stop(context.Background())
				}
			}()
			for i := range nodes {
				cfg := server.Config{
					Store:      "mem",
					ListenAddr: freeAddr(basePort + 10*i),
					HTTPAddr:   freeAddr(8080 + i),
					Logger:     logger.With("demo_node", i+1),
				}
				if i > 0 {
					cfg.Join = []string{ns[0].Addr()}
				}
				n, err := server.Start(ctx, cfg)
				if err != nil {
					return err
				}
				ns = append(ns, n)
			}
			for _, n := range ns {
				if err := n.WaitReady(ctx); err != nil {
					return err
				}
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Meridian demo: %d nodes, cluster %s (in memory; gone on Ctrl-C)\n\n", nodes, ns[0].ClusterID())
			for _, n := range ns {
				fmt.Fprintf(w, "  node %d   gRPC %s   HTTP http://%s\n", n.NodeID(), n.Addr(), n.HTTPAddr())
			}
			h, self := ns[0].Addr(), os.Args[0] // "bin/meridian" under make demo
			fmt.Fprintf(w, "\nTry, from another terminal:\n")
			fmt.Fprintf(w, "  %s kv put --host=%s hello world\n", self, h)
			fmt.Fprintf(w, "  %s kv get --host=%s hello\n", self, h)
			fmt.Fprintf(w, "  %s kv scan --host=%s\n", self, h)
			fmt.Fprintf(w, "  %s node status --host=%s\n", self, h)
			fmt.Fprintf(w, "  %s range list --host=%s\n", self, h)
			fmt.Fprintf(w, "  curl http://%s/metrics\n", ns[0].HTTPAddr())
			fmt.Fprintf(w, "(SQL over the Postgres protocol comes with pgwire.)\n\nCtrl-C stops the demo.\n")
			waitForSignal()
			fmt.Fprintln(w, "stopping")
			return nil
		},
	}
	cmd.Flags().IntVar(&nodes, "nodes", 3, "number of nodes")
	cmd.Flags().IntVar(&basePort, "base-port", 26257, "gRPC port of node 1")
	cmd.Flags().StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	return cmd
}

// freeAddr returns 127.0.0.1:port if that port is free, else
// 127.0.0.1:0 (any free port).
func freeAddr(port int) string {
	a := fmt.Sprintf("127.0.0.1:%d", port)
	l, err := net.Listen("tcp", a)
	if err != nil {
		return "127.0.0.1:0"
	}
	l.Close()
	return a
}
