package etcd_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// BenchmarkEtcdPut measures puts through a 3-member etcd cluster in this
// process (loopback, real fsync), 128-byte values, 64 writers: the load of
// raftgroup's BenchmarkPropose with one group, reported under the same
// metric names so the two can be set side by side.
func BenchmarkEtcdPut(b *testing.B) {
	b.Run("proposers=64", func(b *testing.B) { benchPut(b, 64) })
}

func benchPut(b *testing.B, proposers int) {
	cli := startCluster(b)
	// 1000 keys with 128-byte values, as BenchmarkPropose's 1000 commands.
	// Built up front, so the writers' CPU is not counted as etcd's.
	var keys [1000]string
	for i := range keys {
		keys[i] = fmt.Sprintf("k%06d", i)
	}
	val := strings.Repeat("v", 128)
	var next atomic.Int64
	var mu sync.Mutex
	var lats []time.Duration
	var failed atomic.Int64
	cpu0 := cpuTime(b)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range proposers {
		wg.Go(func() {
			var local []time.Duration
			for {
				i := int(next.Add(1))
				if i > b.N {
					break
				}
				t0 := time.Now()
				// Bounded, so a stuck cluster fails puts instead of hanging.
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := cli.Put(ctx, keys[i%len(keys)], val)
				cancel()
				if err != nil {
					failed.Add(1)
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	slices.Sort(lats)
	if len(lats) == 0 {
		b.Fatal("no put succeeded")
	}
	b.ReportMetric(float64(len(lats))/elapsed.Seconds(), "proposals/s")
	b.ReportMetric(float64(lats[len(lats)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(failed.Load()), "failed")
	// CPU (user+system, the whole process: three members and the client)
	// per put, less sensitive than the rates to other load on the machine.
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(lats)), "cpu-us/proposal")
}

// TestEtcdCluster proves the harness: the cluster starts, and a value
// written through the client reads back.
func TestEtcdCluster(t *testing.T) {
	cli := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k000001", "hello"); err != nil {
		t.Fatalf("put: %v", err)
	}
	resp, err := cli.Get(ctx, "k000001")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "hello" {
		t.Fatalf("get k000001 = %v, want one key with value hello", resp.Kvs)
	}
}

// startCluster starts three etcd members in this process, waits until all
// serve clients, and returns a client for all three. Cleanup closes the
// client, then the members.
func startCluster(tb testing.TB) *clientv3.Client {
	tb.Helper()
	const members = 3
	ports := freePorts(tb, 2*members)
	cfgs := make([]*embed.Config, members)
	var initial, endpoints []string
	for i := range cfgs {
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i+1)
		cfg.Dir = tb.TempDir()
		client := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[2*i])}
		peer := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[2*i+1])}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
		cfg.InitialClusterToken = "bench"
		// Silent, so the output is the figures: even at level "error" a
		// member logs every listener it closes on shutdown. A member that
		// fails still shows through StartEtcd, Err or the readiness
		// deadline.
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		cfgs[i] = cfg
		initial = append(initial, cfg.Name+"="+peer.String())
		endpoints = append(endpoints, client.String())
	}
	var servers []*embed.Etcd
	tb.Cleanup(func() {
		// One at a time: a closing leader hands leadership to a peer and
		// waits for it, up to 7 s, which never happens if the peers are
		// closing too.
		for _, e := range servers {
			e.Close()
		}
	})
	for _, cfg := range cfgs {
		cfg.InitialCluster = strings.Join(initial, ",")
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			tb.Fatalf("start etcd %s: %v", cfg.Name, err)
		}
		servers = append(servers, e)
	}
	// StartEtcd returns before the members have found each other; a member
	// is ready once the cluster has a leader and it has published itself.
	deadline := time.After(30 * time.Second)
	for _, e := range servers {
		select {
		case <-e.Server.ReadyNotify():
		case err := <-e.Err():
			tb.Fatalf("etcd %s: %v", e.Config().Name, err)
		case <-deadline:
			tb.Fatalf("etcd %s not ready in 30s", e.Config().Name)
		}
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		tb.Fatalf("etcd client: %v", err)
	}
	tb.Cleanup(func() { cli.Close() })
	return cli
}

// freePorts returns n distinct loopback ports that were free a moment ago.
// All n are held open together so none is handed out twice; another
// process could still take one before etcd binds it, which on a test
// machine is rare enough to accept.
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// cpuTime is the process's CPU time so far, user plus system, as
// raftgroup's benchmarks measure it.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
