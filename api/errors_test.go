package api

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/meridiandb/meridian/hlc"
	"google.golang.org/protobuf/proto"
)

func TestTimestampConversion(t *testing.T) {
	for _, ts := range []hlc.Timestamp{{}, {WallTime: 1}, {WallTime: 5, Logical: 3}, hlc.MaxTimestamp} {
		if got := NewTimestamp(ts).ToHLC(); got != ts {
			t.Errorf("round trip of %s gave %s", ts, got)
		}
	}
}

func TestErrorsCrossTheWire(t *testing.T) {
	orig := &LockConflictError{Locks: []*Lock{{Key: []byte("k"), Txn: &TxnMeta{Id: []byte{0xab, 0xcd, 0xef, 0x01, 0x02}}}}}
	b, err := proto.Marshal(orig)
	if err != nil {
		t.Fatal(err)
	}
	var back LockConflictError
	if err := proto.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	wrapped := fmt.Errorf("evaluating: %w", &back)
	var lce *LockConflictError
	if !errors.As(wrapped, &lce) || !proto.Equal(lce, orig) {
		t.Fatalf("errors.As lost the lock conflict: %v", wrapped)
	}
	if msg := lce.Error(); !strings.Contains(msg, `"k" held by txn abcdef01`) {
		t.Fatalf("message %q", msg)
	}
	wto := &WriteTooOldError{Key: []byte("k"), Timestamp: NewTimestamp(hlc.Timestamp{WallTime: 1e9}), ActualTimestamp: NewTimestamp(hlc.Timestamp{WallTime: 2e9, Logical: 1})}
	if msg := wto.Error(); !strings.Contains(msg, "retry at 2.000000000,1") {
		t.Fatalf("message %q", msg)
	}
	if err := proto.Unmarshal([]byte{0xff, 0xff, 0xff}, &back); err == nil {
		t.Fatal("garbage unmarshalled")
	}
}
