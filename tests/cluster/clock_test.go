package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// setClock posts form values to a testhooks node's /testhooks/clock and
// returns the settings it answers with.
func setClock(t *testing.T, n *node, form url.Values) map[string]any {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.PostForm("http://"+n.hooksAddr+"/testhooks/clock", form)
	if err != nil {
		t.Fatalf("%s: POST /testhooks/clock: %v", n.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: POST /testhooks/clock %v: %s: %s", n.name, form, resp.Status, b)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: /testhooks/clock answered %q: %v", n.name, b, err)
	}
	return out
}

// A node whose clock is 2 s off (8 × --max-offset=250ms) fail-stops: it
// exits non-zero with a log line saying its clock is too far from the
// others', and the two other nodes keep serving reads and writes. The
// skew comes from the testhooks build's control endpoint, which moves the
// node's one physical clock (every reader of time in the node sees it).
func TestClockOffsetFailStop(t *testing.T) {
	if testhooksErr != nil {
		t.Fatalf("building meridian with -tags testhooks: %v", testhooksErr)
	}
	c := newCluster(t, testhooksBin, 3, "--max-offset=250ms")
	for _, n := range c.nodes {
		n.hooksAddr = freeAddr(t)
	}
	c.startAndInit()
	kv1, kv2 := kvClient(t, c.nodes[0].addr), kvClient(t, c.nodes[1].addr)
	acked := map[string]string{}
	for i := range 20 {
		k, v := fmt.Sprintf("before-%02d", i), fmt.Sprint(i)
		putRetry(t, kv1, k, v, 10*time.Second)
		acked[k] = v
	}
	// Every range on all three nodes, so the two healthy ones hold a
	// majority of each.
	c.waitReplicated(60 * time.Second)

	skewed := c.nodes[2]
	for _, n := range c.nodes[:2] {
		if strings.Contains(n.log(), "fail-stop") {
			t.Fatalf("%s fail-stopped before any skew", n.name)
		}
	}
	got := setClock(t, skewed, url.Values{"offset": {"2s"}})
	if got["offset"] != "2s" {
		t.Fatalf("%s's clock settings after offset=2s: %v", skewed.name, got)
	}
	t.Logf("%s's clock is now %v ahead", skewed.name, got["skew"])

	st := skewed.waitExit(30 * time.Second)
	if st.ExitCode() == 0 {
		t.Fatalf("%s exited 0 after its clock moved 2s; want a non-zero fail-stop", skewed.name)
	}
	log := skewed.log()
	if !strings.Contains(log, "fail-stop") || !strings.Contains(log, "clock synchronization error") ||
		!strings.Contains(log, "max offset 250ms") {
		t.Fatalf("%s's log has no fail-stop line about its clock offset", skewed.name)
	}
	t.Logf("%s exited: %v", skewed.name, st)

	// The healthy nodes serve reads and writes (retried while leases of the
	// stopped node expire), and stay up.
	for i := range 20 {
		kv := kv1
		if i%2 == 1 {
			kv = kv2
		}
		k, v := fmt.Sprintf("after-%02d", i), fmt.Sprint(i)
		putRetry(t, kv, k, v, 30*time.Second)
		acked[k] = v
	}
	checkValues(t, kv2, acked, 30*time.Second)
	for _, n := range c.nodes[:2] {
		if !n.running() {
			t.Fatalf("%s stopped too", n.name)
		}
		if strings.Contains(n.log(), "fail-stop") {
			t.Fatalf("%s fail-stopped: a healthy node must not stop for one skewed peer", n.name)
		}
		if err := n.ready(); err != nil {
			t.Fatalf("%s: %v", n.name, err)
		}
	}
}
