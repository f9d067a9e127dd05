package tscache

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/meridiandb/meridian/hlc"
)

// The transcripts in testdata/cache/ walk a Cache through adds, lookups,
// low-water raises and evictions; they double as documentation. Regenerate
// with `go test ./ranges/tscache -run TestDataDriven -rewrite` and review
// the diff. Timestamps are written as wall times (integers); txn=<n> names
// a transaction by a small number. Commands:
//
//	new [budget=<bytes>] [low-water=<wall>]
//	add <key>[-<end>] ts=<wall> [txn=<n>]   then print the cache
//	get <key>[-<end>]                       GetMaxValue
//	set-low-water ts=<wall>                 then print the cache
//	print
func TestDataDriven(t *testing.T) {
	datadriven.Walk(t, "testdata/cache", func(t *testing.T, path string) {
		c := New(0, hlc.Timestamp{})
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			switch td.Cmd {
			case "new":
				budget, lw := 0, 0
				if td.HasArg("budget") {
					td.ScanArgs(t, "budget", &budget)
				}
				if td.HasArg("low-water") {
					td.ScanArgs(t, "low-water", &lw)
				}
				c = New(budget, wall(lw))
				return c.String()
			case "add":
				start, end := spanArg(t, td)
				var ts, txn int
				td.ScanArgs(t, "ts", &ts)
				if td.HasArg("txn") {
					td.ScanArgs(t, "txn", &txn)
				}
				c.Add(start, end, wall(ts), txnID(txn))
				return c.String()
			case "get":
				start, end := spanArg(t, td)
				v := c.GetMaxValue(start, end)
				if v.Txn != NoTxn {
					return fmt.Sprintf("%s txn=%x", v.Timestamp, v.Txn[:4])
				}
				return v.Timestamp.String()
			case "set-low-water":
				var ts int
				td.ScanArgs(t, "ts", &ts)
				c.SetLowWater(wall(ts))
				return c.String()
			case "print":
				return fmt.Sprintf("%s\n(%d segments, %d bytes, %d evicted)", c, c.Len(), c.Bytes(), c.mu.evicted)
			default:
				td.Fatalf(t, "unknown command %q", td.Cmd)
				return ""
			}
		})
	})
}

func wall(w int) hlc.Timestamp { return hlc.Timestamp{WallTime: int64(w)} }

func txnID(n int) TxnID {
	var id TxnID
	if n != 0 {
		id[0] = byte(n)
	}
	return id
}

// spanArg reads the first positional argument, "<key>" or "<key>-<end>".
func spanArg(t *testing.T, td *datadriven.TestData) ([]byte, []byte) {
	t.Helper()
	if len(td.CmdArgs) == 0 || len(td.CmdArgs[0].Vals) != 0 {
		td.Fatalf(t, "want a span as the first argument")
	}
	k, e, _ := strings.Cut(td.CmdArgs[0].Key, "-")
	if e == "" {
		return []byte(k), nil
	}
	return []byte(k), []byte(e)
}
