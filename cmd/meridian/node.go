package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meridiandb/meridian/api"
	"github.com/meridiandb/meridian/keys"
)

func newInitCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Bootstrap a new cluster through a node started with --join",
		Long: `Bootstrap a new cluster: the node at --host (started with --join and
waiting) becomes its first node, and the other nodes started with --join
join it. On a cluster that is already initialised, init says so and exits 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := callNode(&cf, func(ctx context.Context, c api.NodeClient) (*api.InitResponse, error) {
				return c.Init(ctx, &api.InitRequest{})
			})
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return printJSON(cmd.OutOrStdout(), map[string]any{"cluster_id": resp.GetClusterId(), "already_initialized": resp.GetAlreadyInitialized()})
			}
			if resp.GetAlreadyInitialized() {
				fmt.Fprintf(cmd.OutOrStdout(), "cluster %s is already initialised; nothing to do\n", resp.GetClusterId())
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "cluster %s initialised\n", resp.GetClusterId())
			}
			return nil
		},
	}
	cf.register(cmd)
	return cmd
}

func newNodeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Inspect the cluster's nodes"}
	var cf clientFlags
	status := &cobra.Command{
		Use:   "status",
		Short: "Every node: address, liveness, replicas, leases, clock source and the guarantee in force",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := callNode(&cf, func(ctx context.Context, c api.NodeClient) (*api.ClusterStatusResponse, error) {
				return c.ClusterStatus(ctx, &api.ClusterStatusRequest{})
			})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if cf.output == "json" {
				type nodeJSON struct {
					NodeID          uint64 `json:"node_id"`
					Address         string `json:"address"`
					SQLAddress      string `json:"sql_address"`
					HTTPAddress     string `json:"http_address"`
					StartedAt       string `json:"started_at"`
					Build           string `json:"build"`
					Live            bool   `json:"live"`
					Draining        bool   `json:"draining"`
					Replicas        int32  `json:"replicas"`
					Leaseholders    int32  `json:"leaseholders"`
					ClockSource     string `json:"clock_source"`
					ClockErrorBound string `json:"clock_error_bound"`
					MaxOffset       string `json:"max_offset"`
					CommitWait      string `json:"commit_wait"`
					Guarantee       string `json:"guarantee"`
					Error           string `json:"error,omitempty"`
				}
				out := []nodeJSON{}
				for _, n := range resp.GetNodes() {
					out = append(out, nodeJSON{
						NodeID: n.GetNodeId(), Address: n.GetAddress(), SQLAddress: n.GetSqlAddress(), HTTPAddress: n.GetHttpAddress(),
						StartedAt: time.Unix(0, n.GetStartedAt()).UTC().Format(time.RFC3339), Build: n.GetBuild(),
						Live: n.GetLive(), Draining: n.GetDraining(), Replicas: n.GetReplicas(), Leaseholders: n.GetLeaseholders(),
						ClockSource: n.GetClockSource(), ClockErrorBound: time.Duration(n.GetClockErrorBoundNanos()).String(),
						MaxOffset: time.Duration(n.GetMaxOffsetNanos()).String(), CommitWait: n.GetCommitWait(),
						Guarantee: n.GetGuarantee(), Error: n.GetError(),
					})
				}
				return printJSON(w, out)
			}
			var rows [][]string
			for _, n := range resp.GetNodes() {
				live := "live"
				switch {
				case n.GetDraining():
					live = "draining"
				case !n.GetLive():
					live = "dead"
				}
				clock := n.GetClockSource()
				if clock != "" {
					clock += fmt.Sprintf(" ε=%s", time.Duration(n.GetClockErrorBoundNanos()))
				}
				if n.GetError() != "" {
					clock = "unreachable: " + n.GetError()
				}
				rows = append(rows, []string{
					strconv.FormatUint(n.GetNodeId(), 10), n.GetAddress(), live,
					strconv.Itoa(int(n.GetReplicas())), strconv.Itoa(int(n.GetLeaseholders())),
					clock, n.GetGuarantee(),
				})
			}
			return table(w, []string{"ID", "ADDRESS", "LIVENESS", "REPLICAS", "LEASES", "CLOCK", "GUARANTEE"}, rows)
		},
	}
	cf.register(status)
	cmd.AddCommand(status)
	return cmd
}

func newRangeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "range", Short: "Inspect the cluster's ranges"}
	var cf clientFlags
	var key string
	list := &cobra.Command{
		Use:   "list",
		Short: "Every range (or the one holding --key): ID, span, replicas, leaseholder, size",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := callNode(&cf, func(ctx context.Context, c api.NodeClient) (*api.ListRangesResponse, error) {
				return c.ListRanges(ctx, &api.ListRangesRequest{Key: []byte(key)})
			})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			type row struct {
				RangeID     uint64   `json:"range_id"`
				Start       string   `json:"start_key"`
				End         string   `json:"end_key"`
				Replicas    []uint64 `json:"replica_nodes"`
				Learners    []uint64 `json:"learner_nodes"`
				Leaseholder uint64   `json:"leaseholder_node"`
				SizeBytes   int64    `json:"size_bytes"`
				LiveKeys    int64    `json:"live_keys"`
			}
			var out []row
			for _, r := range resp.GetRanges() {
				d := r.GetRangeDescriptor()
				rw := row{RangeID: d.GetRangeId(), Start: keys.Pretty(d.GetStartKey()), End: keys.Pretty(d.GetEndKey()),
					Leaseholder: r.GetLeaseholderNodeId(), SizeBytes: r.GetSizeBytes(), LiveKeys: r.GetLiveKeys()}
				rw.Learners = []uint64{}
				for _, rd := range d.GetReplicas() {
					rw.Replicas = append(rw.Replicas, rd.GetNodeId())
					if rd.GetType() == api.ReplicaType_LEARNER {
						rw.Learners = append(rw.Learners, rd.GetNodeId())
					}
				}
				out = append(out, rw)
			}
			if cf.output == "json" {
				if out == nil {
					out = []row{}
				}
				return printJSON(w, out)
			}
			var rows [][]string
			for _, r := range out {
				var reps []string
				for _, n := range r.Replicas {
					rep := "n" + strconv.FormatUint(n, 10)
					if slices.Contains(r.Learners, n) {
						rep += "(learner)"
					}
					reps = append(reps, rep)
				}
				lh := "-"
				if r.Leaseholder != 0 {
					lh = "n" + strconv.FormatUint(r.Leaseholder, 10)
				}
				rows = append(rows, []string{strconv.FormatUint(r.RangeID, 10), r.Start, r.End, strings.Join(reps, ","), lh,
					strconv.FormatInt(r.SizeBytes, 10), strconv.FormatInt(r.LiveKeys, 10)})
			}
			return table(w, []string{"ID", "START", "END", "REPLICAS", "LEASEHOLDER", "BYTES", "KEYS"}, rows)
		},
	}
	cf.register(list)
	list.Flags().StringVar(&key, "key", "", "only the range holding this key")
	cmd.AddCommand(list)
	return cmd
}

// callNode makes one Node-service call on --host within --timeout.
func callNode[T any](cf *clientFlags, call func(context.Context, api.NodeClient) (T, error)) (T, error) {
	var zero T
	conn, ctx, cancel, err := cf.dial()
	if err != nil {
		return zero, err
	}
	defer conn.Close()
	defer cancel()
	resp, err := call(ctx, api.NewNodeClient(conn))
	if err != nil {
		return zero, rpcError(cf.host, err)
	}
	return resp, nil
}
