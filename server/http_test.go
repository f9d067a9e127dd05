package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// startHTTP serves cfg's handler on a real loopback listener and shuts it
// down when the test ends.
func startHTTP(t *testing.T, cfg HTTPConfig) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := ServeHTTP(lis, NewHTTPHandler(cfg), nil)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), obsWait)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return "http://" + s.Addr().String()
}

func httpDo(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return resp.StatusCode, string(b)
}

func TestHTTPRoutes(t *testing.T) {
	m := newTestMetrics(t, 4)
	var notReady atomic.Pointer[error]
	starting := errors.New("node is draining")
	notReady.Store(&starting)
	base := startHTTP(t, HTTPConfig{Metrics: m.Handler(), Ready: func() error {
		if p := notReady.Load(); p != nil {
			return *p
		}
		return nil
	}})

	for _, tc := range []struct {
		method, path string
		code         int
		body         string // a substring of the body
	}{
		{"GET", "/health", 200, "ok"},
		{"HEAD", "/health", 200, ""},
		{"GET", "/health?ready=1", 503, "not ready: node is draining"},
		{"GET", "/health?ready=true", 503, "draining"},
		{"GET", "/health?ready=0", 200, "ok"},
		{"GET", "/health?ready=perhaps", 400, "bad ready parameter"},
		{"POST", "/health", 405, ""},
		{"GET", "/metrics", 200, "meridian_node_id 4"},
		{"GET", "/debug/pprof/", 200, "goroutine"},
		{"GET", "/debug/pprof/goroutine?debug=1", 200, "goroutine profile"},
		{"GET", "/debug/pprof/cmdline", 200, ""},
		{"POST", "/debug/pprof/symbol", 200, "num_symbols"},
		{"GET", "/nope", 404, ""},
	} {
		code, body := httpDo(t, tc.method, base+tc.path)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("%s %s = %d %q, want %d with %q", tc.method, tc.path, code, body, tc.code, tc.body)
		}
	}
	notReady.Store(nil)
	if code, body := httpDo(t, "GET", base+"/health?ready=1"); code != 200 || body != "ok\n" {
		t.Errorf("ready node: %d %q", code, body)
	}
}

func TestHTTPNoMetricsNoReady(t *testing.T) {
	base := startHTTP(t, HTTPConfig{})
	if code, _ := httpDo(t, "GET", base+"/metrics"); code != 404 {
		t.Errorf("/metrics without metrics = %d, want 404", code)
	}
	if code, _ := httpDo(t, "GET", base+"/health?ready=1"); code != 200 {
		t.Errorf("readiness without a check = %d, want 200", code)
	}
}

// rawRequest writes b on a new TCP connection and returns the status line
// the server answers (or "" if it closed the connection without one).
func rawRequest(t *testing.T, addr string, b []byte) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(obsWait)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(b); err != nil {
		t.Fatalf("writing: %v", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("reading the answer to %q...: %v", b[:min(len(b), 20)], err)
	}
	return strings.TrimSpace(line)
}

// TestHTTPGarbage: malformed requests get a 4xx and a closed connection,
// a client that stops mid-headers is cut off by ReadHeaderTimeout, and the
// server keeps answering throughout.
func TestHTTPGarbage(t *testing.T) {
	base := startHTTP(t, HTTPConfig{})
	addr := strings.TrimPrefix(base, "http://")

	// A connection that sends half a request and stalls.
	stalled, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	if _, err := stalled.Write([]byte("GET /health HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}

	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rng.UintN(256))
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want string // status line prefix; "" accepts a closed connection
	}{
		{"random bytes", append(random, "\r\n\r\n"...), "HTTP/1.1 400"},
		{"bad request line", []byte("HELLO\r\n\r\n"), "HTTP/1.1 400"},
		{"bad version", []byte("GET /health HTTP/9.9\r\nHost: x\r\n\r\n"), "HTTP/1.1 505"},
		{"huge header", []byte("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 200<<10) + "\r\n\r\n"), "HTTP/1.1 431"},
		{"TLS hello on plain HTTP", []byte("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"), ""},
	} {
		got := rawRequest(t, addr, tc.b)
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: answered %q, want %q", tc.name, got, tc.want)
		}
		if code, body := httpDo(t, "GET", base+"/health"); code != 200 || body != "ok\n" {
			t.Fatalf("after %s: /health = %d %q", tc.name, code, body)
		}
	}

	// The stalled connection is closed once ReadHeaderTimeout passes; the
	// server answered others meanwhile.
	if err := stalled.SetReadDeadline(time.Now().Add(obsWait)); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(stalled)
	if err != nil {
		t.Fatalf("the stalled connection was not closed by the server: %v", err)
	}
	if len(b) > 0 && !strings.HasPrefix(string(b), "HTTP/1.1 408") {
		t.Errorf("the stalled connection got %q", b)
	}
	if code, _ := httpDo(t, "GET", base+"/health"); code != 200 {
		t.Fatalf("after the stalled connection: /health = %d", code)
	}
}

func TestHTTPServerShutdown(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := ServeHTTP(lis, NewHTTPHandler(HTTPConfig{}), nil)
	if code, _ := httpDo(t, "GET", "http://"+s.Addr().String()+"/health"); code != 200 {
		t.Fatalf("/health = %d", code)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", s.Addr().String()); err == nil {
		t.Fatal("the listener still accepts after Close")
	}
}
