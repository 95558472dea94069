// Command ferretdb runs FerretDB (MongoDB wire protocol on SQLite) embedded as a library.
//
// The stock `go install .../cmd/ferretdb` binary panics at start because its generated
// build/version/version.txt is missing (FerretDB#2982); embedding the ferretdb package avoids that.
// It also adds the _id index FerretDB's own lookups can use (see idindex.go).
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	sqliteURL := flag.String("sqlite-url", "file:data/", "SQLite directory URL (file:/abs/dir/)")
	flag.Parse()

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Handler:   "sqlite",
		SQLiteURL: *sqliteURL,
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir, err := sqliteDir(*sqliteURL)
	if err != nil {
		log.Fatal(err)
	}
	indexer := &idIndexer{dir: dir, dbs: map[string]openFile{}}
	go indexer.run(ctx, 200*time.Millisecond)

	log.Printf("ferretdb listening on %s (sqlite %s)", *listen, *sqliteURL)
	if err := f.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
