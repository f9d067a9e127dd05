package deploy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meridiandb/meridian/internal/leakcheck"
)

func TestMain(m *testing.M) {
	leakcheck.VerifyTestMain(m)
}

// Bounds on the test's steps. Nothing here is a performance assertion: they
// only stop a wedged docker from hanging `make test`.
const (
	testTimeout  = 7 * time.Minute  // the whole test, teardown aside
	buildTimeout = 5 * time.Minute  // go build (cold cache, beside other packages' tests) and docker build
	cmdTimeout   = 90 * time.Second // any other single docker or CLI command
	waitTimeout  = 90 * time.Second // init, readiness and liveness
	pollEvery    = 250 * time.Millisecond
	teardownTime = 90 * time.Second
)

// nodes are the compose file's node services.
var nodes = []string{"node1", "node2", "node3"}

// TestCompose brings deploy/docker-compose.yml up on an image built from
// this tree, and uses the cluster the way deploy/README.md tells a user to.
func TestCompose(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds an image and runs a 3-node cluster in docker")
	}
	composeCmd := requireDocker(t)
	root := repoRoot(t)

	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	suffix := randomSuffix(t)
	h := &harness{
		t:       t,
		compose: composeCmd,
		project: "meridiandeploytest" + suffix,
		file:    filepath.Join(root, "deploy", "docker-compose.yml"),
		image:   "meridian-deploytest:" + suffix,
	}
	h.buildImage(ctx, root)
	h.checkImageConfig(ctx)

	// Every host port 0: docker picks free ones, so the test neither clashes
	// with a node running on the host nor with another run of itself.
	h.env = []string{"MERIDIAN_IMAGE=" + h.image}
	for _, n := range nodes {
		up := strings.ToUpper(n)
		h.env = append(h.env, "MERIDIAN_"+up+"_GRPC_PORT=0", "MERIDIAN_"+up+"_HTTP_PORT=0")
	}
	t.Cleanup(h.down) // registered before up, so a half-started cluster goes too
	if _, err := h.composeRun(ctx, "up", "-d", "--no-build"); err != nil {
		t.Fatalf("compose up: %v", err)
	}

	grpcAddr := map[string]string{}
	httpAddr := map[string]string{}
	for _, n := range nodes {
		grpcAddr[n] = h.publishedAddr(ctx, n, 26257)
		httpAddr[n] = h.publishedAddr(ctx, n, 8080)
	}

	h.waitInitExited(ctx)

	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for _, n := range nodes {
		url := "http://" + httpAddr[n] + "/health?ready=1"
		waitFor(ctx, t, n+" ready ("+url+")", func() error {
			resp, err := hc.Get(url)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(body.String()))
			}
			return nil
		})
	}

	// node status through node1: three nodes, each live and reachable, each
	// known by the name it advertises on the compose network.
	waitFor(ctx, t, "3 live nodes in `node status`", func() error {
		out, err := h.cliRun(ctx, "node", "status", "--host="+grpcAddr["node1"], "-o", "json")
		if err != nil {
			return err
		}
		var st []struct {
			NodeID   uint64 `json:"node_id"`
			Address  string `json:"address"`
			Live     bool   `json:"live"`
			Draining bool   `json:"draining"`
			Error    string `json:"error"`
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return fmt.Errorf("node status -o json: %w in %q", err, out)
		}
		var addrs []string
		for _, n := range st {
			if !n.Live || n.Draining || n.Error != "" {
				return fmt.Errorf("node %d (%s) live=%v draining=%v error=%q", n.NodeID, n.Address, n.Live, n.Draining, n.Error)
			}
			addrs = append(addrs, n.Address)
		}
		slices.Sort(addrs)
		if want := []string{"node1:26257", "node2:26257", "node3:26257"}; !slices.Equal(addrs, want) {
			return fmt.Errorf("node addresses %v, want %v", addrs, want)
		}
		return nil
	})

	// A write through node1, read back through every node.
	key, value := "deploy-test/"+suffix, "value-"+suffix
	if _, err := h.cliRun(ctx, "kv", "put", "--host="+grpcAddr["node1"], key, value); err != nil {
		t.Fatalf("kv put through node1: %v", err)
	}
	for _, n := range nodes {
		out, err := h.cliRun(ctx, "kv", "get", "--host="+grpcAddr[n], "-o", "json", key)
		if err != nil {
			t.Fatalf("kv get through %s: %v", n, err)
		}
		var got struct {
			Found bool   `json:"found"`
			Value string `json:"value"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("kv get through %s: %v in %q", n, err, out)
		}
		if !got.Found || got.Value != value {
			t.Errorf("kv get %s through %s = found %v, %q; want %q", key, n, got.Found, got.Value, value)
		}
	}
}

// requireDocker skips the test unless a Docker engine answers and a compose
// tool exists, and returns the compose command: docker-compose (v1) when it
// is installed, else the `docker compose` plugin.
func requireDocker(t *testing.T) []string {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker CLI in PATH, so no Docker engine to run deploy/docker-compose.yml on")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if _, err := runCmd(ctx, nil, "", "docker", "version", "--format", "{{.Server.Version}}"); err != nil {
		t.Skipf("no Docker engine answers, so deploy/docker-compose.yml cannot run: %v", err)
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	if _, err := runCmd(ctx, nil, "", "docker", "compose", "version"); err == nil {
		return []string{"docker", "compose"}
	}
	t.Skip("a Docker engine answers, but neither docker-compose (Debian: apt-get install docker-compose) nor the `docker compose` plugin is installed")
	return nil
}

// repoRoot is the module root: two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found above the test: %v", err)
	}
	return root
}

func randomSuffix(t *testing.T) string {
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// harness runs one compose project.
type harness struct {
	t       *testing.T
	compose []string
	project string
	file    string
	image   string
	env     []string // for compose, on top of the test's: the port and image variables
	cli     string   // the meridian binary the image holds
}

// buildImage builds a static meridian into a fresh build context that holds
// it, the repository's Dockerfile and .dockerignore, and builds the image
// from it; the binary is the test's CLI as well. The image is removed when the
// test ends.
func (h *harness) buildImage(ctx context.Context, root string) {
	t := h.t
	t.Helper()
	bctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin", "meridian")
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not in PATH: %v", err)
	}
	// The flags tests/cluster builds with (only the link differs), so the
	// two packages' builds share the compiled packages in the build cache
	// instead of compiling the whole tree twice (-trimpath would key every
	// package anew).
	if _, err := runCmd(bctx, []string{"CGO_ENABLED=0"}, root, goCmd, "build", "-ldflags=-s -w", "-o", bin, "./cmd/meridian"); err != nil {
		t.Fatalf("building a static meridian: %v", err)
	}
	for _, f := range []string{"Dockerfile", ".dockerignore"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := runCmd(bctx, nil, "", "docker", "build", "-q", "-t", h.image, dir); err != nil {
		t.Fatalf("docker build: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), teardownTime)
		defer cancel()
		if _, err := runCmd(ctx, nil, "", "docker", "rmi", h.image); err != nil {
			t.Errorf("removing the test image: %v", err)
		}
	})
	h.cli = bin
}

// checkImageConfig checks what the Dockerfile promises a user of the image:
// the entrypoint, an unprivileged user, the store volume and the two ports.
func (h *harness) checkImageConfig(ctx context.Context) {
	t := h.t
	t.Helper()
	out, err := runCmd(ctx, nil, "", "docker", "image", "inspect", "-f", "{{json .Config}}", h.image)
	if err != nil {
		t.Fatalf("docker image inspect: %v", err)
	}
	var cfg struct {
		User         string
		Entrypoint   []string
		ExposedPorts map[string]struct{}
		Volumes      map[string]struct{}
	}
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("docker image inspect: %v in %q", err, out)
	}
	if cfg.User == "" || cfg.User == "0" || strings.HasPrefix(cfg.User, "0:") || cfg.User == "root" {
		t.Errorf("image user %q: want an unprivileged one", cfg.User)
	}
	if !slices.Equal(cfg.Entrypoint, []string{"/meridian"}) {
		t.Errorf("image entrypoint %q, want [/meridian]", cfg.Entrypoint)
	}
	for _, p := range []string{"26257/tcp", "8080/tcp"} {
		if _, ok := cfg.ExposedPorts[p]; !ok {
			t.Errorf("image does not expose %s (exposes %v)", p, cfg.ExposedPorts)
		}
	}
	if _, ok := cfg.Volumes["/data"]; !ok {
		t.Errorf("image has no /data volume (has %v)", cfg.Volumes)
	}
}

// cliRun runs the meridian CLI on the host.
func (h *harness) cliRun(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	return runCmd(ctx, nil, "", h.cli, args...)
}

func (h *harness) composeRun(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	full := append(slices.Clone(h.compose[1:]), "-p", h.project, "-f", h.file)
	return runCmd(ctx, h.env, "", h.compose[0], append(full, args...)...)
}

// publishedAddr is the host address compose published a node's port on,
// which must be on 127.0.0.1.
func (h *harness) publishedAddr(ctx context.Context, service string, port int) string {
	t := h.t
	t.Helper()
	out, err := h.composeRun(ctx, "port", service, fmt.Sprint(port))
	if err != nil {
		t.Fatalf("compose port %s %d: %v", service, port, err)
	}
	addr := strings.TrimSpace(out)
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("compose port %s %d = %q: %v", service, port, out, err)
	}
	if host != "127.0.0.1" {
		t.Fatalf("%s's port %d is published on %s, want 127.0.0.1 only", service, port, addr)
	}
	return addr
}

// waitInitExited waits for the init service to have exited 0: it
// bootstrapped the cluster (docker restarts it while it fails).
func (h *harness) waitInitExited(ctx context.Context) {
	t := h.t
	t.Helper()
	waitFor(ctx, t, "the init service to exit 0", func() error {
		id, err := h.composeRun(ctx, "ps", "-q", "init")
		if err != nil {
			return err
		}
		if id = strings.TrimSpace(id); id == "" {
			return errors.New("no init container yet")
		}
		state, err := runCmd(ctx, nil, "", "docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", id)
		if err != nil {
			return err
		}
		if state = strings.TrimSpace(state); state != "exited 0" {
			return fmt.Errorf("init is %q", state)
		}
		return nil
	})
	if logs, err := h.composeRun(ctx, "logs", "--no-color", "init"); err == nil {
		t.Logf("init:\n%s", logs)
	}
}

// down removes the project's containers, network and volumes, after logging
// the nodes' last lines if the test failed, and checks nothing is left.
func (h *harness) down() {
	t := h.t
	ctx, cancel := context.WithTimeout(context.Background(), teardownTime)
	defer cancel()
	if t.Failed() {
		if logs, err := h.composeRun(ctx, "logs", "--no-color", "--tail=40"); err == nil {
			t.Logf("compose logs:\n%s", logs)
		}
	}
	if _, err := h.composeRun(ctx, "down", "-v", "--remove-orphans", "-t", "10"); err != nil {
		t.Errorf("compose down: %v", err)
	}
	for _, kind := range [][]string{{"ps", "-a"}, {"volume", "ls"}, {"network", "ls"}} {
		args := append(slices.Clone(kind), "-q", "--filter", "name="+h.project)
		out, err := runCmd(ctx, nil, "", "docker", args...)
		if err != nil {
			t.Errorf("docker %s: %v", strings.Join(args, " "), err)
		} else if left := strings.Fields(out); len(left) > 0 {
			t.Errorf("docker %s: %v left behind by compose down", strings.Join(kind, " "), left)
		}
	}
}

// waitFor polls cond until it returns nil; it fails the test with cond's
// last error if waitTimeout passes first.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v (last: %v)", what, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// runCmd runs a command (in dir, with extra environment on top of the
// test's) and returns its stdout; the error carries its stderr. ctx bounds
// it.
func runCmd(ctx context.Context, env []string, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
