package main

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	meridianv1 "github.com/meridiandb/meridian/api/meridian/v1"
)

func newKVCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kv",
		Short: "Read and write keys",
	}
	cmd.AddCommand(newKVGetCmd(), newKVPutCmd(), newKVDelCmd(), newKVScanCmd())
	return cmd
}

// tsString formats a timestamp for output.
func tsString(ts *meridianv1.Timestamp) string {
	if ts == nil {
		return ""
	}
	t := time.Unix(0, ts.GetWallTime()).UTC().Format(time.RFC3339Nano)
	if ts.GetLogical() != 0 {
		t += "," + strconv.Itoa(int(ts.GetLogical()))
	}
	return t
}

// parseTS parses --as-of: an RFC 3339 time or Unix nanoseconds.
func parseTS(s string) (*meridianv1.Timestamp, error) {
	if s == "" {
		return nil, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return &meridianv1.Timestamp{WallTime: n}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, fmt.Errorf("--as-of %q: want RFC 3339 (2026-11-26T10:00:00Z) or Unix nanoseconds", s)
	}
	return &meridianv1.Timestamp{WallTime: t.UnixNano()}, nil
}

type kvRow struct {
	Key       string `json:"key"`
	Value     string `json:"value"`
	Timestamp string `json:"timestamp"`
}

func newKVGetCmd() *cobra.Command {
	var cf clientFlags
	var asOf string
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Read a key (exit status 1 when it is absent)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ts, err := parseTS(asOf)
			if err != nil {
				return err
			}
			conn, ctx, cancel, err := cf.dial()
			if err != nil {
				return err
			}
			defer conn.Close()
			defer cancel()
			resp, err := meridianv1.NewKVClient(conn).Get(ctx, &meridianv1.GetRequest{Key: []byte(args[0]), ReadTimestamp: ts})
			if err != nil {
				return rpcError(cf.host, err)
			}
			w := cmd.OutOrStdout()
			if cf.output == "json" {
				out := map[string]any{"key": args[0], "found": resp.GetFound(), "read_timestamp": tsString(resp.GetReadTimestamp())}
				if resp.GetFound() {
					out["value"] = string(resp.GetValue())
					out["timestamp"] = tsString(resp.GetValueTimestamp())
				}
				if err := printJSON(w, out); err != nil {
					return err
				}
			} else if resp.GetFound() {
				fmt.Fprintln(w, showBytes(resp.GetValue()))
			}
			if !resp.GetFound() {
				return fmt.Errorf("key %s not found", showBytes([]byte(args[0])))
			}
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVar(&asOf, "as-of", "", "read as of this time (RFC 3339 or Unix nanoseconds)")
	return cmd
}

func newKVPutCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "put KEY VALUE",
		Short: "Write a key",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, ctx, cancel, err := cf.dial()
			if err != nil {
				return err
			}
			defer conn.Close()
			defer cancel()
			resp, err := meridianv1.NewKVClient(conn).Put(ctx, &meridianv1.PutRequest{Key: []byte(args[0]), Value: []byte(args[1])})
			if err != nil {
				return rpcError(cf.host, err)
			}
			return printWrite(cmd.OutOrStdout(), cf.output, resp.GetWriteTimestamp())
		},
	}
	cf.register(cmd)
	return cmd
}

func printWrite(w io.Writer, output string, ts *meridianv1.Timestamp) error {
	if output == "json" {
		return printJSON(w, map[string]string{"write_timestamp": tsString(ts)})
	}
	fmt.Fprintf(w, "OK (written at %s)\n", tsString(ts))
	return nil
}

func newKVDelCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:     "del KEY",
		Aliases: []string{"delete"},
		Short:   "Delete a key (deleting an absent key succeeds)",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, ctx, cancel, err := cf.dial()
			if err != nil {
				return err
			}
			defer conn.Close()
			defer cancel()
			resp, err := meridianv1.NewKVClient(conn).Delete(ctx, &meridianv1.DeleteRequest{Key: []byte(args[0])})
			if err != nil {
				return rpcError(cf.host, err)
			}
			return printWrite(cmd.OutOrStdout(), cf.output, resp.GetWriteTimestamp())
		},
	}
	cf.register(cmd)
	return cmd
}

func newKVScanCmd() *cobra.Command {
	var cf clientFlags
	var limit int64
	var reverse bool
	var asOf string
	cmd := &cobra.Command{
		Use:   "scan [START [END]]",
		Short: "List the keys in [START, END) (all keys without arguments)",
		Args:  cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ts, err := parseTS(asOf)
			if err != nil {
				return err
			}
			req := &meridianv1.ScanRequest{Limit: limit, Reverse: reverse, ReadTimestamp: ts}
			if len(args) > 0 {
				req.StartKey = []byte(args[0])
			}
			if len(args) > 1 {
				req.EndKey = []byte(args[1])
			}
			conn, ctx, cancel, err := cf.dial()
			if err != nil {
				return err
			}
			defer conn.Close()
			defer cancel()
			stream, err := meridianv1.NewKVClient(conn).Scan(ctx, req)
			if err != nil {
				return rpcError(cf.host, err)
			}
			var rows []kvRow
			for {
				page, err := stream.Recv()
				if err == io.EOF {
					break
				}
				if err != nil {
					return rpcError(cf.host, err)
				}
				for _, kv := range page.GetRows() {
					rows = append(rows, kvRow{Key: showBytes(kv.GetKey()), Value: showBytes(kv.GetValue()), Timestamp: tsString(kv.GetTimestamp())})
				}
			}
			w := cmd.OutOrStdout()
			if cf.output == "json" {
				if rows == nil {
					rows = []kvRow{}
				}
				return printJSON(w, rows)
			}
			var tr [][]string
			for _, r := range rows {
				tr = append(tr, []string{r.Key, r.Value})
			}
			if err := table(w, []string{"KEY", "VALUE"}, tr); err != nil {
				return err
			}
			fmt.Fprintf(w, "(%d rows)\n", len(rows))
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().Int64Var(&limit, "limit", 0, "at most this many rows (0: all)")
	cmd.Flags().BoolVar(&reverse, "reverse", false, "descending key order")
	cmd.Flags().StringVar(&asOf, "as-of", "", "read as of this time (RFC 3339 or Unix nanoseconds)")
	return cmd
}
