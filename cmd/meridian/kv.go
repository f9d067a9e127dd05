package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meridiandb/meridian/client"
	"github.com/meridiandb/meridian/hlc"
)

func newKVCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kv",
		Short: "Read and write keys (through the Go client; --host may list several nodes)",
	}
	cmd.AddCommand(newKVGetCmd(), newKVPutCmd(), newKVDelCmd(), newKVScanCmd())
	return cmd
}

// openDB opens the Go client on --host (a comma-separated list fails over).
func (c *clientFlags) openDB() (*client.DB, context.Context, context.CancelFunc, error) {
	if c.output != "table" && c.output != "json" {
		return nil, nil, nil, fmt.Errorf("unknown output format %q (want table or json)", c.output)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	db, err := client.Open(ctx, strings.Split(c.host, ",")...)
	if err != nil {
		cancel()
		return nil, nil, nil, fmt.Errorf("--host %s: %w", c.host, err)
	}
	return db, ctx, cancel, nil
}

// tsString formats a timestamp for output: RFC 3339 with nanoseconds, and
// the logical counter after a comma when it is not zero.
func tsString(ts hlc.Timestamp) string {
	if ts.IsEmpty() {
		return ""
	}
	t := time.Unix(0, ts.WallTime).UTC().Format(time.RFC3339Nano)
	if ts.Logical != 0 {
		t += "," + strconv.Itoa(int(ts.Logical))
	}
	return t
}

// parseTS parses --as-of: an RFC 3339 time or Unix nanoseconds.
func parseTS(s string) (hlc.Timestamp, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
		return hlc.Timestamp{WallTime: n}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return hlc.Timestamp{}, fmt.Errorf("--as-of %q: want RFC 3339 (2026-11-26T10:00:00Z) or Unix nanoseconds", s)
	}
	return hlc.Timestamp{WallTime: t.UnixNano()}, nil
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
			var opts []client.GetOption
			if asOf != "" {
				ts, err := parseTS(asOf)
				if err != nil {
					return err
				}
				opts = append(opts, client.AsOf(ts))
			}
			db, ctx, cancel, err := cf.openDB()
			if err != nil {
				return err
			}
			defer db.Close()
			defer cancel()
			res, err := db.Get(ctx, []byte(args[0]), opts...)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if cf.output == "json" {
				out := map[string]any{"key": args[0], "found": res.Found, "read_timestamp": tsString(res.ReadTimestamp)}
				if res.Found {
					out["value"] = string(res.Value)
					out["timestamp"] = tsString(res.ValueTimestamp)
				}
				if err := printJSON(w, out); err != nil {
					return err
				}
			} else if res.Found {
				fmt.Fprintln(w, showBytes(res.Value))
			}
			if !res.Found {
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
			db, ctx, cancel, err := cf.openDB()
			if err != nil {
				return err
			}
			defer db.Close()
			defer cancel()
			ts, err := db.Put(ctx, []byte(args[0]), []byte(args[1]))
			if err != nil {
				return err
			}
			return printWrite(cmd.OutOrStdout(), cf.output, ts)
		},
	}
	cf.register(cmd)
	return cmd
}

func printWrite(w io.Writer, output string, ts hlc.Timestamp) error {
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
			db, ctx, cancel, err := cf.openDB()
			if err != nil {
				return err
			}
			defer db.Close()
			defer cancel()
			ts, err := db.Delete(ctx, []byte(args[0]))
			if err != nil {
				return err
			}
			return printWrite(cmd.OutOrStdout(), cf.output, ts)
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
			var opts []client.ScanOption
			if limit < 0 {
				return fmt.Errorf("--limit %d is negative", limit)
			}
			if limit > 0 {
				opts = append(opts, client.Limit(limit))
			}
			if reverse {
				opts = append(opts, client.Reverse())
			}
			if asOf != "" {
				ts, err := parseTS(asOf)
				if err != nil {
					return err
				}
				opts = append(opts, client.AsOf(ts))
			}
			var start, end []byte
			if len(args) > 0 {
				start = []byte(args[0])
			}
			if len(args) > 1 {
				end = []byte(args[1])
			}
			db, ctx, cancel, err := cf.openDB()
			if err != nil {
				return err
			}
			defer db.Close()
			defer cancel()
			res, err := db.Scan(ctx, start, end, opts...)
			if err != nil {
				return err
			}
			rows := []kvRow{}
			for _, kv := range res.Rows {
				rows = append(rows, kvRow{Key: showBytes(kv.Key), Value: showBytes(kv.Value), Timestamp: tsString(kv.Timestamp)})
			}
			w := cmd.OutOrStdout()
			if cf.output == "json" {
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
