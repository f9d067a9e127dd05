package cluster

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	meridianv1 "github.com/meridiandb/meridian/api/meridian/v1"
)

// singleNode starts one node without --join (it bootstraps its own
// cluster) and waits until it is ready.
func singleNode(t *testing.T, name string) *node {
	t.Helper()
	n := newNode(t, name, meridianBin)
	n.start()
	waitFor(t, 60*time.Second, name+" ready", n.ready)
	return n
}

// Keys over 16 KiB and values over 4 MiB get INVALID_ARGUMENT, from gRPC
// and through the CLI (exit status 1, a message naming the limit); keys of
// exactly 16 KiB and values of exactly 4 MiB are accepted.
func TestLimits(t *testing.T) {
	n := singleNode(t, "n1")
	kv := kvClient(t, n.addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	bigKey := bytes.Repeat([]byte("k"), 16<<10+1)
	bigValue := bytes.Repeat([]byte("v"), 4<<20+1)
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"put key 16KiB+1", func() error {
			_, err := kv.Put(ctx, &meridianv1.PutRequest{Key: bigKey, Value: []byte("x")})
			return err
		}},
		{"get key 16KiB+1", func() error {
			_, err := kv.Get(ctx, &meridianv1.GetRequest{Key: bigKey})
			return err
		}},
		{"delete key 16KiB+1", func() error {
			_, err := kv.Delete(ctx, &meridianv1.DeleteRequest{Key: bigKey})
			return err
		}},
		{"put value 4MiB+1", func() error {
			_, err := kv.Put(ctx, &meridianv1.PutRequest{Key: []byte("big"), Value: bigValue})
			return err
		}},
		{"put empty key", func() error {
			_, err := kv.Put(ctx, &meridianv1.PutRequest{Value: []byte("x")})
			return err
		}},
	} {
		err := tc.call()
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: got %v, want INVALID_ARGUMENT", tc.name, err)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
	}
	// Nothing over the limit was written.
	if resp, err := kv.Get(ctx, &meridianv1.GetRequest{Key: []byte("big")}); err != nil || resp.GetFound() {
		t.Errorf("get big after a refused put = %v, %v; want not found", resp, err)
	}

	// At the limits: accepted and read back whole.
	maxKey := bytes.Repeat([]byte("m"), 16<<10)
	maxValue := bytes.Repeat([]byte("w"), 4<<20)
	if _, err := kv.Put(ctx, &meridianv1.PutRequest{Key: maxKey, Value: maxValue}); err != nil {
		t.Fatalf("put of a 16 KiB key with a 4 MiB value: %v", err)
	}
	resp, err := kv.Get(ctx, &meridianv1.GetRequest{Key: maxKey})
	if err != nil || !resp.GetFound() || !bytes.Equal(resp.GetValue(), maxValue) {
		t.Fatalf("get of the 16 KiB key: found %v, %d bytes, %v; want the 4 MiB value", resp.GetFound(), len(resp.GetValue()), err)
	}

	// The CLI: a clear message and a non-zero exit. (A value over 4 MiB
	// cannot go through the CLI: Linux limits one argument to 128 KiB, and
	// `kv put` takes the value as an argument.)
	r := cli(t, "kv", "put", "--host="+n.addr, string(bigKey), "x")
	if r.code == 0 || !strings.Contains(strings.ToLower(r.stderr), "invalid") || !strings.Contains(r.stderr, "16384") {
		t.Errorf("CLI put of a 16 KiB+1 key: want a non-zero exit and a message naming the 16384-byte limit: %v", r)
	}
	r = cli(t, "kv", "get", "--host="+n.addr, string(bigKey))
	if r.code == 0 || !strings.Contains(r.stderr, "16384") {
		t.Errorf("CLI get of a 16 KiB+1 key: want a non-zero exit and a message naming the 16384-byte limit: %v", r)
	}
	if len(r.stderr) > 4<<10 {
		t.Errorf("CLI error for a big key is %d bytes long; it should not echo the key", len(r.stderr))
	}
}

// rawFrame is a gRPC message as bytes, sent as is by rawCodec.
type rawFrame struct{ b []byte }

// rawCodec sends and receives rawFrames unchanged: it lets the test put
// any bytes in a gRPC message to a method that expects a protobuf.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(*rawFrame).b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	v.(*rawFrame).b = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

// Garbage does not crash a node: raw bytes on its gRPC and HTTP ports
// (random bytes, HTTP/1 on the HTTP/2 port, an HTTP/2 preface followed by
// junk frames, malformed and oversized HTTP requests), and well-framed gRPC
// calls whose messages are not the protobufs they claim to be, to the
// public API and the node-to-node services. Afterwards the node still
// serves reads and writes.
func TestGarbageDoesNotCrash(t *testing.T) {
	n := singleNode(t, "n1")
	kv := kvClient(t, n.addr)
	putRetry(t, kv, "before", "1", 10*time.Second)

	rng := rand.New(rand.NewPCG(8, 9))
	random := func(size int) []byte {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	preface := []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	// An HTTP/2 frame header: 3-byte length, type, flags, 4-byte stream.
	frame := func(length int, typ, flags byte, stream uint32, payload []byte) []byte {
		h := []byte{byte(length >> 16), byte(length >> 8), byte(length), typ, flags,
			byte(stream >> 24), byte(stream >> 16), byte(stream >> 8), byte(stream)}
		return append(h, payload...)
	}
	grpcGarbage := [][]byte{
		random(1),
		random(64 << 10),
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		append(append([]byte{}, preface...), random(4096)...),
		// SETTINGS with a length that does not match, then HEADERS with
		// junk HPACK on stream 1, then DATA on a stream never opened.
		append(append(append(append([]byte{}, preface...),
			frame(5, 0x4, 0, 0, random(5))...),
			frame(64, 0x1, 0x4, 1, random(64))...),
			frame(16, 0x0, 0, 7, random(16))...),
		// A frame claiming 16 MiB.
		append(append([]byte{}, preface...), frame(1<<24-1, 0x0, 0, 1, random(100))...),
		preface[:10],
	}
	httpGarbage := [][]byte{
		random(1),
		random(64 << 10),
		[]byte("\r\n\r\n\r\n"),
		[]byte("GARBAGE /health?ready=1 HTTP/9.9\r\n\r\n"),
		[]byte("GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"),
		[]byte("GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
		append([]byte("GET /health HTTP/1.1\r\nHost: x\r\nX: "), bytes.Repeat([]byte("a"), 2<<20)...),
		append([]byte("GET /"), random(1024)...),
		append(append([]byte{}, preface...), random(512)...),
		[]byte("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"), // a TLS ClientHello's start
	}
	// send writes b on a new connection to addr, then reads whatever the
	// node answers until it hangs up or 3 s pass: the node may answer or
	// wait for more, but must not die.
	send := func(addr string, b []byte) error {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return fmt.Errorf("dialing %s: %v (did the node die?)", addr, err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		_, _ = c.Write(b) // the node may hang up half way
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				return nil
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(grpcGarbage)+len(httpGarbage))
	for _, b := range grpcGarbage {
		wg.Go(func() { errs <- send(n.addr, b) })
	}
	for _, b := range httpGarbage {
		wg.Go(func() { errs <- send(n.httpAddr, b) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	// Well-framed gRPC calls with garbage messages: empty, random bytes and
	// truncated protobufs, to the public API and the internal services.
	conn := dial(t, n.addr)
	methods := []string{
		"/meridian.v1.KV/Get", "/meridian.v1.KV/Put", "/meridian.v1.KV/Delete", "/meridian.v1.KV/DeleteRange",
		"/meridian.v1.KV/Txn",
		"/meridian.api.Internal/Batch",
		"/meridian.api.Node/Heartbeat", "/meridian.api.Node/LocalStatus", "/meridian.api.Node/ClusterStatus",
		"/meridian.api.Node/ListRanges",
		"/meridian.api.Admin/RangeStatus",
	}
	payloads := [][]byte{{}, {0x0a}, {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, {0x12, 0x80}}
	for range 20 {
		payloads = append(payloads, random(1+rng.IntN(200)))
	}
	calls := 0
	for _, m := range methods {
		for _, p := range payloads {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			var out rawFrame
			err := conn.Invoke(ctx, m, &rawFrame{b: p}, &out, grpc.ForceCodecV2(rawCodec{}))
			cancel()
			calls++
			if code := status.Code(err); code == codes.Unavailable || code == codes.DeadlineExceeded {
				t.Fatalf("%s with %d garbage bytes %x: %v (did the node die?)", m, len(p), p[:min(len(p), 16)], err)
			}
		}
	}
	// The server-streaming Scan with the same garbage.
	for _, p := range payloads {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/meridian.v1.KV/Scan", grpc.ForceCodecV2(rawCodec{}))
		if err == nil && s.SendMsg(&rawFrame{b: p}) == nil && s.CloseSend() == nil {
			var out rawFrame
			for s.RecvMsg(&out) == nil {
			}
		}
		cancel()
		calls++
	}
	t.Logf("sent %d raw garbage connections and %d garbage gRPC calls", len(grpcGarbage)+len(httpGarbage), calls)

	// Still running, still serving.
	if !n.running() {
		t.Fatalf("the node exited after garbage input")
	}
	if err := n.ready(); err != nil {
		t.Fatalf("the node is not ready after garbage input: %v", err)
	}
	putRetry(t, kv, "after", "2", 10*time.Second)
	checkValues(t, kvClient(t, n.addr), map[string]string{"before": "1", "after": "2"}, 10*time.Second)
	if log := n.log(); strings.Contains(log, "panic") {
		t.Fatalf("the node's log mentions a panic")
	}
}

var startedClusterRE = regexp.MustCompile(`node \d+ of cluster ([0-9a-f-]{36})`)

// clusterOf returns the cluster ID a started node printed.
func clusterOf(t *testing.T, n *node) string {
	t.Helper()
	m := startedClusterRE.FindStringSubmatch(n.log())
	if m == nil {
		t.Fatalf("%s's output names no cluster", n.name)
	}
	return m[1]
}

// A store belongs to one cluster: `meridian start` with a store of cluster
// A and --join naming a node of cluster B exits non-zero with a message
// naming both clusters, and B is unharmed.
func TestStoreOfAnotherClusterRefused(t *testing.T) {
	a := singleNode(t, "a")
	clusterA := clusterOf(t, a)
	a.signal(syscall.SIGTERM)
	if st := a.waitExit(30 * time.Second); st.ExitCode() != 0 {
		t.Fatalf("a exited %v after SIGTERM", st)
	}
	b := singleNode(t, "b")
	clusterB := clusterOf(t, b)
	if clusterA == clusterB {
		t.Fatalf("two bootstraps made the same cluster ID %s", clusterA)
	}

	before := len(a.log())
	a.join = []string{b.addr}
	a.start()
	st := a.waitExit(30 * time.Second)
	out := a.log()[before:]
	if st.ExitCode() == 0 {
		t.Fatalf("meridian start with a store of cluster %s and --join=%s (cluster %s) exited 0", clusterA, b.addr, clusterB)
	}
	var msg string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "meridian:") {
			msg = line
		}
	}
	if !strings.Contains(msg, clusterA) || !strings.Contains(msg, clusterB) {
		t.Fatalf("exit message %q does not name both clusters (%s, %s); output:\n%s", msg, clusterA, clusterB, out)
	}
	t.Logf("refused: %s", msg)

	if err := b.ready(); err != nil {
		t.Fatalf("b after the refused node: %v", err)
	}
	kv := kvClient(t, b.addr)
	putRetry(t, kv, "k", "v", 10*time.Second)
	if st, err := nodeStatus(t, b.addr); err != nil || len(st) != 1 {
		t.Fatalf("b's node status = %+v, %v; want its one node", st, err)
	}
}
