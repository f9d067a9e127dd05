package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/meridiandb/meridian/server"
)

// clientFlags are the flags of every command that talks to a node.
type clientFlags struct {
	host    string
	output  string
	timeout time.Duration
}

func (c *clientFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.host, "host", server.DefaultListenAddr, "gRPC address of any node")
	cmd.Flags().StringVarP(&c.output, "output", "o", "table", "output format: table or json")
	cmd.Flags().DurationVar(&c.timeout, "timeout", 15*time.Second, "how long to wait for the cluster")
}

// dial connects to --host; the context carries --timeout.
func (c *clientFlags) dial() (*grpc.ClientConn, context.Context, context.CancelFunc, error) {
	if c.output != "table" && c.output != "json" {
		return nil, nil, nil, fmt.Errorf("unknown output format %q (want table or json)", c.output)
	}
	conn, err := grpc.NewClient(c.host, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(server.MaxMessageBytes), grpc.MaxCallSendMsgSize(server.MaxMessageBytes)))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--host %q: %w", c.host, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	return conn, ctx, cancel, nil
}

// rpcError turns a gRPC status into a CLI message.
func rpcError(host string, err error) error {
	if s, ok := status.FromError(err); ok {
		return fmt.Errorf("%s: %s: %s", host, strings.ToLower(s.Code().String()), s.Message())
	}
	return err
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes rows under a header, aligned.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// showBytes prints a key or value: as is when it is printable UTF-8, else
// quoted with escapes.
func showBytes(b []byte) string {
	s := string(b)
	if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !strconv.IsPrint(r) || r == '\t' }) {
		return s
	}
	q := strconv.Quote(s)
	return q
}
