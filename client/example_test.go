package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"

	"github.com/meridiandb/meridian/client"
	"github.com/meridiandb/meridian/server"
)

// startNode starts a single-node cluster on an in-memory store, as
// `meridian start --store=mem` would, and returns its gRPC address and a
// function that stops it.
func startNode() (addr string, stop func()) {
	ctx := context.Background()
	n, err := server.Start(ctx, server.Config{
		Store: "mem", ListenAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	return n.Addr(), func() {
		if err := n.Stop(ctx); err != nil {
			log.Fatal(err)
		}
	}
}

func Example() {
	addr, stop := startNode()
	defer stop()
	ctx := context.Background()

	db, err := client.Open(ctx, addr) // any nodes of the cluster
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	if _, err := db.Put(ctx, []byte("greeting"), []byte("hello, world")); err != nil {
		log.Fatal(err)
	}
	got, err := db.Get(ctx, []byte("greeting"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Found, string(got.Value))

	if _, err := db.Delete(ctx, []byte("greeting")); err != nil {
		log.Fatal(err)
	}
	got, err = db.Get(ctx, []byte("greeting"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Found)
	// Output:
	// true hello, world
	// false
}

func ExampleDB_Get_asOf() {
	addr, stop := startNode()
	defer stop()
	ctx := context.Background()
	db, err := client.Open(ctx, addr)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	// Every write returns its timestamp; a read can be served as of one.
	written, err := db.Put(ctx, []byte("color"), []byte("red"))
	if err != nil {
		log.Fatal(err)
	}
	got, err := db.Get(ctx, []byte("color"), client.AsOf(written))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(got.Value), got.ValueTimestamp == written, got.ReadTimestamp == written)
	// Output: red true true
}

func ExampleDB_Scan() {
	addr, stop := startNode()
	defer stop()
	ctx := context.Background()
	db, err := client.Open(ctx, addr)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	for _, fruit := range []string{"apple", "banana", "cherry", "damson", "elderberry"} {
		if _, err := db.Put(ctx, []byte("fruit/"+fruit), []byte(fmt.Sprint(len(fruit)))); err != nil {
			log.Fatal(err)
		}
	}
	// The span [fruit/, fruit0): every key with the prefix "fruit/".
	all, err := db.Scan(ctx, []byte("fruit/"), []byte("fruit0"))
	if err != nil {
		log.Fatal(err)
	}
	for _, kv := range all.Rows {
		fmt.Printf("%s=%s\n", kv.Key, kv.Value)
	}

	// The last two, newest key first.
	last, err := db.Scan(ctx, []byte("fruit/"), []byte("fruit0"), client.Reverse(), client.Limit(2))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(last.Rows[0].Key), string(last.Rows[1].Key))
	// Output:
	// fruit/apple=5
	// fruit/banana=6
	// fruit/cherry=6
	// fruit/damson=6
	// fruit/elderberry=10
	// fruit/elderberry fruit/damson
}

func ExampleDB_ScanIter() {
	addr, stop := startNode()
	defer stop()
	ctx := context.Background()
	db, err := client.Open(ctx, addr)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	for i := range 1200 {
		if _, err := db.Put(ctx, fmt.Appendf(nil, "event/%05d", i), []byte("e")); err != nil {
			log.Fatal(err)
		}
	}
	// Rows stream in pages (here of 500 rows; 1,000 by default), all read
	// at one timestamp; only one page is in memory at a time.
	n := 0
	for kv, err := range db.ScanIter(ctx, []byte("event/"), []byte("event0"), client.PageSize(500)) {
		if err != nil {
			log.Fatal(err)
		}
		if n == 0 {
			fmt.Println("first:", string(kv.Key))
		}
		n++
	}
	fmt.Println("rows:", n)
	// Output:
	// first: event/00000
	// rows: 1200
}

func ExampleDB_DeleteRange() {
	addr, stop := startNode()
	defer stop()
	ctx := context.Background()
	db, err := client.Open(ctx, addr)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	for _, k := range []string{"tmp/a", "tmp/b", "tmp/c", "keep"} {
		if _, err := db.Put(ctx, []byte(k), []byte("x")); err != nil {
			log.Fatal(err)
		}
	}
	deleted, _, err := db.DeleteRange(ctx, []byte("tmp/"), []byte("tmp0"))
	if err != nil {
		log.Fatal(err)
	}
	left, err := db.Scan(ctx, nil, nil) // empty start and end: every key
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(deleted, len(left.Rows), string(left.Rows[0].Key))
	// Output: 3 1 keep
}

// Errors match sentinels with errors.Is.
func ExampleError() {
	addr, stop := startNode()
	defer stop()
	ctx := context.Background()
	db, err := client.Open(ctx, addr)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	_, err = db.Put(ctx, nil, []byte("a value needs a key"))
	fmt.Println(errors.Is(err, client.ErrInvalidArgument))

	big := make([]byte, 4<<20+1) // values are at most 4 MiB
	_, err = db.Put(ctx, []byte("big"), big)
	fmt.Println(errors.Is(err, client.ErrInvalidArgument))

	_, err = db.Put(ctx, []byte("ok"), []byte("fine"))
	if errors.Is(err, client.ErrAmbiguousResult) {
		// The write may or may not have applied: read before retrying.
	}
	fmt.Println(err)
	// Output:
	// true
	// true
	// <nil>
}
