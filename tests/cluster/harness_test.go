package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/meridiandb/meridian/api"
	meridianv1 "github.com/meridiandb/meridian/api/meridian/v1"
	"github.com/meridiandb/meridian/internal/leakcheck"
)

// The binaries TestMain builds.
var (
	// meridianBin is `go build ./cmd/meridian`.
	meridianBin string
	// testhooksBin is the same built with -tags testhooks; testhooksErr
	// says why it could not be built.
	testhooksBin string
	testhooksErr error
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "meridian-cluster-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "tests/cluster:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	meridianBin = filepath.Join(dir, "meridian")
	testhooksBin = filepath.Join(dir, "meridian-testhooks")
	var wg sync.WaitGroup
	var plainErr error
	wg.Go(func() { plainErr = goBuild(meridianBin) })
	wg.Go(func() { testhooksErr = goBuild(testhooksBin, "-tags", "testhooks") })
	wg.Wait()
	if plainErr != nil {
		fmt.Fprintln(os.Stderr, "tests/cluster: building meridian:", plainErr)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := leakcheck.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "tests/cluster: goroutines leaked:", err)
			return 1
		}
	}
	return code
}

// goBuild builds ./cmd/meridian (from the module root, two levels up) into
// out. The binary gets no -race: only the test process runs under it.
func goBuild(out string, flags ...string) error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return err
	}
	args := append([]string{"build", "-o", out}, flags...)
	args = append(args, "./cmd/meridian")
	cmd := exec.Command(goTool, args...)
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

// env is the environment of every meridian process: the test's own, minus
// any MERIDIAN_* variable (each flag also reads one), plus extra.
func env(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MERIDIAN_") {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// givenPorts are the ports freeAddr has handed out: a port is closed
// again when freeAddr returns, so the kernel may offer it twice before the
// node that gets it listens.
var givenPorts struct {
	sync.Mutex
	m map[string]bool
}

// freeAddr returns 127.0.0.1:<port> with a port that was free a moment ago
// and that no other node of this test binary was given. The port comes from
// below the kernel's ephemeral range where it can: ports from that range
// are also what every other process's outgoing connections and ":0"
// listeners get, so one could take a node's port between here and the
// node's listen, or while the node is down for a restart.
func freeAddr(t testing.TB) string {
	t.Helper()
	givenPorts.Lock()
	defer givenPorts.Unlock()
	if givenPorts.m == nil {
		givenPorts.m = map[string]bool{}
	}
	low, high := quietPorts()
	for range 100 {
		port := 0
		if high > low {
			port = low + rand.IntN(high-low)
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			if port != 0 {
				continue // taken
			}
			t.Fatalf("picking a free port: %v", err)
		}
		addr := l.Addr().String()
		l.Close()
		if !givenPorts.m[addr] {
			givenPorts.m[addr] = true
			return addr
		}
	}
	t.Fatalf("no unused free port in 100 tries")
	return ""
}

// quietPorts returns a range of ports [low, high) below the kernel's
// ephemeral ports (and below 26257, where a demo cluster may listen), or
// (0, 0) when it cannot tell: then the kernel picks.
func quietPorts() (low, high int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	var first, last int
	if _, err := fmt.Sscan(string(b), &first, &last); err != nil {
		return 0, 0
	}
	high = min(first, 26000)
	low = high - 8000
	if low < 10000 {
		return 0, 0
	}
	return low, high
}

// waitFor polls cond until it returns nil; past timeout the test fails
// with what and cond's last error.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s; last: %v", timeout, what, err)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
}

// node is one `meridian start` process, restartable with the same store
// and addresses. Its output (stdout and stderr, every run) goes to one log
// file, printed when the test fails.
type node struct {
	t    testing.TB
	name string
	bin  string
	// store is the --store directory.
	store                   string
	addr, httpAddr, sqlAddr string
	join                    []string
	flags                   []string // more flags for `meridian start`
	envs                    []string // more environment variables
	logPath                 string
	run                     *procRun // the current or last run; nil before start
	hooksAddr               string   // MERIDIAN_TESTHOOKS_ADDR, if set
}

// procRun is one run of a node's process.
type procRun struct {
	cmd   *exec.Cmd
	done  chan struct{} // closed when the process has exited
	state *os.ProcessState
	err   error
}

// newNode prepares a node (not started) with fresh ports and an empty
// store in the test's temporary directory. It is killed, and its log
// printed if the test failed, when the test ends.
func newNode(t testing.TB, name string, bin string) *node {
	t.Helper()
	dir := t.TempDir()
	n := &node{
		t: t, name: name, bin: bin,
		store: filepath.Join(dir, "store"), logPath: filepath.Join(dir, name+".log"),
		addr: freeAddr(t), httpAddr: freeAddr(t), sqlAddr: freeAddr(t),
	}
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			n.dumpLog()
		}
	})
	return n
}

// args are the node's `meridian start` arguments.
func (n *node) args() []string {
	args := []string{"start", "--store=" + n.store, "--listen-addr=" + n.addr,
		"--http-addr=" + n.httpAddr, "--sql-addr=" + n.sqlAddr}
	if len(n.join) > 0 {
		args = append(args, "--join="+strings.Join(n.join, ","))
	}
	return append(args, n.flags...)
}

// start starts the node's process (again, after it exited: same store,
// same addresses).
func (n *node) start() {
	n.t.Helper()
	if n.running() {
		n.t.Fatalf("%s: start while running", n.name)
	}
	args := n.args()
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.t.Fatal(err)
	}
	defer f.Close() // the child has its own descriptor
	fmt.Fprintf(f, "=== %s harness: %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), n.bin, strings.Join(args, " "))
	cmd := exec.Command(n.bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	extra := n.envs
	if n.hooksAddr != "" {
		extra = append(slices.Clip(extra), "MERIDIAN_TESTHOOKS_ADDR="+n.hooksAddr)
	}
	cmd.Env = env(extra...)
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("%s: %v", n.name, err)
	}
	r := &procRun{cmd: cmd, done: make(chan struct{})}
	n.run = r
	go func() {
		r.err = cmd.Wait()
		r.state = cmd.ProcessState
		close(r.done)
	}()
}

// running reports whether the node's process is running.
func (n *node) running() bool {
	if n.run == nil {
		return false
	}
	select {
	case <-n.run.done:
		return false
	default:
		return true
	}
}

// signal sends sig to the running process.
func (n *node) signal(sig syscall.Signal) {
	n.t.Helper()
	if !n.running() {
		n.t.Fatalf("%s: signal %v: not running", n.name, sig)
	}
	if err := n.run.cmd.Process.Signal(sig); err != nil {
		n.t.Fatalf("%s: signal %v: %v", n.name, sig, err)
	}
}

// kill SIGKILLs the process, if it runs, and waits for it.
func (n *node) kill() {
	if n.run == nil {
		return
	}
	if n.running() {
		_ = n.run.cmd.Process.Kill()
	}
	<-n.run.done
}

// waitExit waits up to timeout for the process to exit and returns its
// state; the test fails if it is still running.
func (n *node) waitExit(timeout time.Duration) *os.ProcessState {
	n.t.Helper()
	select {
	case <-n.run.done:
		return n.run.state
	case <-time.After(timeout):
		n.t.Fatalf("%s did not exit within %s", n.name, timeout)
		return nil
	}
}

// log returns the node's log so far.
func (n *node) log() string {
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", n.logPath, err)
	}
	return string(b)
}

// dumpLog prints the node's log into the test output (the last 256 KiB).
func (n *node) dumpLog() {
	s := n.log()
	const max = 256 << 10
	if len(s) > max {
		s = "...(cut)...\n" + s[len(s)-max:]
	}
	n.t.Logf("==== log of %s (%s, gRPC %s, HTTP %s)\n%s", n.name, n.store, n.addr, n.httpAddr, s)
}

// ready reports whether /health?ready=1 answers 200.
func (n *node) ready() error {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + n.httpAddr + "/health?ready=1")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: /health?ready=1: %s: %s", n.name, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

// cliResult is the outcome of one CLI command.
type cliResult struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r cliResult) String() string {
	return fmt.Sprintf("`meridian %s` exited %d\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// cli runs the meridian CLI (bounded by a minute) and returns its output
// and exit status.
func cli(t testing.TB, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, meridianBin, args...)
	cmd.Env = env()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := cliResult{args: args, stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("meridian %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("meridian %s did not finish within a minute", strings.Join(args, " "))
	}
	return r
}

// cliOK runs the CLI and fails the test unless it exits 0.
func cliOK(t testing.TB, args ...string) cliResult {
	t.Helper()
	r := cli(t, args...)
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	return r
}

// cliErr wraps a failed CLI run as an error, for waitFor.
func cliErr(r cliResult) error {
	if r.code == 0 {
		return nil
	}
	return errors.New(r.String())
}

// nodeRow is one node of `meridian node status -o json`.
type nodeRow struct {
	NodeID       uint64 `json:"node_id"`
	Address      string `json:"address"`
	Live         bool   `json:"live"`
	Draining     bool   `json:"draining"`
	Replicas     int32  `json:"replicas"`
	Leaseholders int32  `json:"leaseholders"`
	Error        string `json:"error"`
}

// cliRows runs `meridian <command...> -o json` against host and decodes
// its rows.
func cliRows[T any](t testing.TB, host string, command ...string) ([]T, error) {
	t.Helper()
	r := cli(t, append(command, "--host="+host, "-o", "json", "--timeout=5s")...)
	if r.code != 0 {
		return nil, cliErr(r)
	}
	var rows []T
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		return nil, fmt.Errorf("%s output: %v\n%s", strings.Join(command, " "), err, r.stdout)
	}
	return rows, nil
}

// nodeStatus runs `meridian node status -o json` against host.
func nodeStatus(t testing.TB, host string) ([]nodeRow, error) {
	t.Helper()
	return cliRows[nodeRow](t, host, "node", "status")
}

// rangeRow is one row of `meridian range list -o json`.
type rangeRow struct {
	RangeID     uint64   `json:"range_id"`
	Start       string   `json:"start_key"`
	End         string   `json:"end_key"`
	Replicas    []uint64 `json:"replica_nodes"`
	Leaseholder uint64   `json:"leaseholder_node"`
	SizeBytes   int64    `json:"size_bytes"`
	LiveKeys    int64    `json:"live_keys"`
}

// rangeList runs `meridian range list -o json` against host.
func rangeList(t testing.TB, host string) ([]rangeRow, error) {
	t.Helper()
	rows, err := cliRows[rangeRow](t, host, "range", "list")
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("range list shows no ranges")
	}
	return rows, nil
}

// everyRangeHas checks that every range of host's `range list` has
// exactly want replicas, and (as the descriptors say: `range list` does not
// tell learners from voters) that all of them are voters.
func everyRangeHas(t testing.TB, host string, want int) error {
	rows, err := rangeList(t, host)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if len(r.Replicas) != want {
			return fmt.Errorf("range %d [%s, %s) has replicas on nodes %v, want %d replicas", r.RangeID, r.Start, r.End, r.Replicas, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := grpc.NewClient(host, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := api.NewNodeClient(conn).ListRanges(ctx, &api.ListRangesRequest{})
	if err != nil {
		return err
	}
	for _, ri := range resp.GetRanges() {
		d := ri.GetRangeDescriptor()
		if v := len(d.Voters()); v != want {
			return fmt.Errorf("range %d has %d voters, want %d: %v", d.GetRangeId(), v, want, d)
		}
	}
	return nil
}

// dial opens a gRPC connection to addr, closed when the test ends.
func dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(32<<20), grpc.MaxCallSendMsgSize(32<<20)))
	if err != nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// kvClient is the public KV API of the node at addr.
func kvClient(t testing.TB, addr string) meridianv1.KVClient {
	return meridianv1.NewKVClient(dial(t, addr))
}

// putRetry writes key=value through kv, retrying failures that are safe to
// retry (rewriting the same value is idempotent, so an ambiguous result is
// retried too) until within has passed.
func putRetry(t testing.TB, kv meridianv1.KVClient, key, value string, within time.Duration) {
	t.Helper()
	if err := tryPut(kv, key, value, within); err != nil {
		t.Fatal(err)
	}
}

// tryPut is putRetry for any goroutine: it returns the error.
func tryPut(kv meridianv1.KVClient, key, value string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := kv.Put(ctx, &meridianv1.PutRequest{Key: []byte(key), Value: []byte(value)})
		cancel()
		switch {
		case err == nil:
			return nil
		case status.Code(err) == codes.InvalidArgument:
			return fmt.Errorf("put %s: %w", key, err)
		case time.Now().After(deadline):
			return fmt.Errorf("put %s: still failing after %s: %w", key, within, err)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
}

// getRetry reads key through kv, retrying errors until within has passed.
// found is false when the key has no value.
func getRetry(t testing.TB, kv meridianv1.KVClient, key string, within time.Duration) (value string, found bool) {
	t.Helper()
	waitFor(t, within, "get "+key, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		resp, err := kv.Get(ctx, &meridianv1.GetRequest{Key: []byte(key)})
		if err != nil {
			return err
		}
		value, found = string(resp.GetValue()), resp.GetFound()
		return nil
	})
	return value, found
}

// checkValues reads every key of want through kv and fails the test on a
// missing or different value.
func checkValues(t testing.TB, kv meridianv1.KVClient, want map[string]string, within time.Duration) {
	t.Helper()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		got, found := getRetry(t, kv, k, within)
		if !found || got != want[k] {
			t.Fatalf("get %s = %q (found %v), want %q: an acknowledged write is lost", k, got, found, want[k])
		}
	}
}

// scanAll reads every user key through kv in one Scan.
func scanAll(ctx context.Context, kv meridianv1.KVClient) (map[string]string, error) {
	stream, err := kv.Scan(ctx, &meridianv1.ScanRequest{})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for {
		page, err := stream.Recv()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		for _, r := range page.GetRows() {
			out[string(r.GetKey())] = string(r.GetValue())
		}
	}
}

// cluster is a set of nodes started with --join listing all of them.
type cluster struct {
	t     testing.TB
	nodes []*node
}

// newCluster prepares n nodes of bin whose --join lists every one of them
// (each node's own address included, as the docs allow), with more flags
// for every `meridian start`.
func newCluster(t testing.TB, bin string, n int, flags ...string) *cluster {
	t.Helper()
	c := &cluster{t: t}
	var addrs []string
	for i := range n {
		nd := newNode(t, fmt.Sprintf("n%d", i+1), bin)
		nd.flags = flags
		c.nodes = append(c.nodes, nd)
		addrs = append(addrs, nd.addr)
	}
	for _, nd := range c.nodes {
		nd.join = addrs
	}
	return c
}

// startAndInit starts every node, runs `meridian init` against the first
// and waits until every node is ready and live. It returns init's output.
func (c *cluster) startAndInit() cliResult {
	c.t.Helper()
	for _, n := range c.nodes {
		n.start()
	}
	// init answers once the first node's gRPC server listens.
	var r cliResult
	waitFor(c.t, 30*time.Second, "meridian init", func() error {
		r = cli(c.t, "init", "--host="+c.nodes[0].addr, "--timeout=5s")
		return cliErr(r)
	})
	c.waitReady()
	return r
}

// waitReady waits until every running node answers ready and `node
// status` shows every node live.
func (c *cluster) waitReady() {
	c.t.Helper()
	for _, n := range c.nodes {
		waitFor(c.t, 60*time.Second, n.name+" ready", n.ready)
	}
	c.waitLive(c.nodes[0].addr, len(c.nodes))
}

// waitReplicated waits until every range has a voter on every node, as
// `range list` says (the meta descriptors) and as every node's own
// replicas say (their applied descriptors). The second matters: a
// follower that has not yet applied the promotion that made the range's
// third voter still counts two voters, and if the leaseholder dies then,
// the range cannot elect a leader (see TestKillRightAfterUpReplication).
func (c *cluster) waitReplicated(within time.Duration) {
	c.t.Helper()
	waitFor(c.t, within, fmt.Sprintf("every range on %d nodes", len(c.nodes)), func() error {
		if err := everyRangeHas(c.t, c.nodes[0].addr, len(c.nodes)); err != nil {
			return err
		}
		for _, n := range c.nodes {
			if err := replicasApplied(n.addr, len(c.nodes)); err != nil {
				return fmt.Errorf("%s: %w", n.name, err)
			}
		}
		return nil
	})
}

// replicasApplied checks, through the node's Admin.RangeStatus, that every
// replica the node holds has applied a descriptor with want voters.
func replicasApplied(addr string, want int) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rs, err := api.NewAdminClient(conn).RangeStatus(ctx, &api.RangeStatusRequest{})
	if err != nil {
		return err
	}
	for _, r := range rs.GetRanges() {
		if v := len(r.GetRangeDescriptor().Voters()); v != want {
			return fmt.Errorf("its replica of range %d has applied a descriptor with %d voters, want %d: %v",
				r.GetRangeDescriptor().GetRangeId(), v, want, r.GetRangeDescriptor())
		}
	}
	return nil
}

// waitLive waits until `node status` through host lists want nodes, all
// live and none draining.
func (c *cluster) waitLive(host string, want int) {
	c.t.Helper()
	waitFor(c.t, 60*time.Second, fmt.Sprintf("%d live nodes", want), func() error {
		st, err := nodeStatus(c.t, host)
		if err != nil {
			return err
		}
		if len(st) != want {
			return fmt.Errorf("node status lists %d nodes, want %d: %+v", len(st), want, st)
		}
		for _, n := range st {
			if !n.Live || n.Draining {
				return fmt.Errorf("node %d (%s) is not live: %+v", n.NodeID, n.Address, n)
			}
		}
		return nil
	})
}

// ids maps each node to its node ID, as `node status` through host says.
func (c *cluster) ids(host string) map[*node]uint64 {
	c.t.Helper()
	var st []nodeRow
	waitFor(c.t, 30*time.Second, "node status", func() (err error) {
		st, err = nodeStatus(c.t, host)
		return err
	})
	out := map[*node]uint64{}
	for _, s := range st {
		for _, n := range c.nodes {
			if n.addr == s.Address {
				out[n] = s.NodeID
			}
		}
	}
	if len(out) != len(c.nodes) {
		c.t.Fatalf("node status does not list every node's address: %+v", st)
	}
	return out
}

// byID returns the node with node ID id.
func (c *cluster) byID(id uint64) *node {
	c.t.Helper()
	for n, nid := range c.ids(c.nodes[0].addr) {
		if nid == id {
			return n
		}
	}
	c.t.Fatalf("no node has ID %d", id)
	return nil
}

// userLeaseholder returns the node ID holding the lease of the range with
// user key key, as `range list --key` through host says (waiting until one
// does).
func userLeaseholder(t testing.TB, host, key string) uint64 {
	t.Helper()
	var id uint64
	waitFor(t, 30*time.Second, "a leaseholder for "+key, func() error {
		r := cli(t, "range", "list", "--host="+host, "--key="+key, "-o", "json", "--timeout=5s")
		if r.code != 0 {
			return cliErr(r)
		}
		var rows []rangeRow
		if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
			return err
		}
		if len(rows) != 1 || rows[0].Leaseholder == 0 {
			return fmt.Errorf("range list --key=%s: %s", key, r.stdout)
		}
		id = rows[0].Leaseholder
		return nil
	})
	return id
}
