package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/meridiandb/meridian/server"
)

// run executes the CLI in-process and returns stdout and the error.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func startTestNode(t *testing.T) *server.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := server.Start(ctx, server.Config{Store: "mem", ListenAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop(context.Background()) })
	if err := n.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCLIAgainstANode(t *testing.T) {
	n := startTestNode(t)
	h := "--host=" + n.Addr()
	if out, err := run(t, "kv", "put", h, "hello", "world"); err != nil || !strings.HasPrefix(out, "OK (written at ") {
		t.Fatalf("put: %q %v", out, err)
	}
	if out, err := run(t, "kv", "get", h, "hello"); err != nil || out != "world\n" {
		t.Fatalf("get: %q %v", out, err)
	}
	if _, err := run(t, "kv", "get", h, "absent"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("get of an absent key: %v", err)
	}
	// The environment supplies --host.
	t.Setenv("MERIDIAN_HOST", n.Addr())
	if out, err := run(t, "kv", "put", "bin\x01ary", "x"); err != nil {
		t.Fatalf("put with MERIDIAN_HOST: %q %v", out, err)
	}
	out, err := run(t, "kv", "scan", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var rows []kvRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("scan -o json: %v in %q", err, out)
	}
	if len(rows) != 2 || rows[0].Key != `"bin\x01ary"` || rows[1].Key != "hello" || rows[1].Value != "world" {
		t.Fatalf("scan rows %+v", rows)
	}
	if out, err := run(t, "kv", "del", "hello"); err != nil || !strings.HasPrefix(out, "OK") {
		t.Fatalf("del: %q %v", out, err)
	}
	if out, err := run(t, "kv", "scan", "--limit", "5"); err != nil || !strings.Contains(out, "(1 rows)") {
		t.Fatalf("scan after del: %q %v", out, err)
	}
	// A key over the limit is refused with a clear message.
	if _, err := run(t, "kv", "put", strings.Repeat("k", 16<<10+1), "v"); err == nil || !strings.Contains(err.Error(), "over the 16384-byte limit") {
		t.Fatalf("oversized key: %v", err)
	}
	out, err = run(t, "node", "status", "-o", "json")
	if err != nil || !strings.Contains(out, `"guarantee": "strictly serializable"`) || !strings.Contains(out, `"live": true`) {
		t.Fatalf("node status: %q %v", out, err)
	}
	out, err = run(t, "range", "list")
	if err != nil || !strings.Contains(out, "LEASEHOLDER") || !strings.Contains(out, "/User/") {
		t.Fatalf("range list: %q %v", out, err)
	}
	out, err = run(t, "range", "list", "--key", "hello", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var ranges []map[string]any
	if err := json.Unmarshal([]byte(out), &ranges); err != nil || len(ranges) != 1 {
		t.Fatalf("range list --key: %q %v", out, err)
	}
	if out, err := run(t, "init"); err != nil || !strings.Contains(out, "already initialised") {
		t.Fatalf("init on an initialised cluster: %q %v", out, err)
	}
	if _, err := run(t, "kv", "get", "-o", "yaml", "x"); err == nil || !strings.Contains(err.Error(), "output format") {
		t.Fatalf("bad -o accepted: %v", err)
	}
}

func TestStartFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"start", "--store=mem", "--commit-wait=sometimes"}, "--commit-wait"},
		{[]string{"start", "--store=mem", "--clock-source=sundial"}, "clock-source"},
		{[]string{"start", "--store=mem", "--log-level=loud"}, "--log-level"},
		{[]string{"start", "--store=mem", "--max-offset=1us"}, "--max-offset"},
		{[]string{"start", "--store=mem", "--listen-addr=256.1.1.1:1"}, "--listen-addr"},
		{[]string{"demo", "--nodes=0"}, "--nodes"},
	} {
		if tc.args[0] == "start" {
			tc.args = append(tc.args, "--http-addr=")
		}
		if _, err := run(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
}
