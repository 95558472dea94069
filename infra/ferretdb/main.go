// Command ferretdb runs FerretDB (MongoDB wire protocol on SQLite, or on PostgreSQL) embedded as a library.
//
// The stock `go install .../cmd/ferretdb` binary panics at start because its generated
// build/version/version.txt is missing (FerretDB#2982); embedding the ferretdb package avoids that.
// On SQLite it also adds the _id index FerretDB's own lookups can use (see idindex.go); the PostgreSQL
// backend's lookups use its own _id index, so the indexer stays off there.
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
	handler := flag.String("handler", "sqlite", "backend: sqlite or postgresql")
	sqliteURL := flag.String("sqlite-url", "file:data/", "SQLite directory URL (file:/abs/dir/)")
	postgresqlURL := flag.String("postgresql-url", "",
		"PostgreSQL URL for --handler=postgresql (postgres://user@127.0.0.1:5432/ferretdb)")
	flag.Parse()

	config := &ferretdb.Config{Listener: ferretdb.ListenerConfig{TCP: *listen}, Handler: *handler}
	var backend string
	switch *handler {
	case "sqlite":
		config.SQLiteURL = *sqliteURL
		backend = "sqlite " + *sqliteURL
	case "postgresql":
		if *postgresqlURL == "" {
			log.Fatal("--handler=postgresql needs --postgresql-url")
		}
		config.PostgreSQLURL = *postgresqlURL
		backend = "postgresql" // the URL may carry a password: not logged
	default:
		log.Fatalf("unknown --handler %q: sqlite or postgresql", *handler)
	}

	f, err := ferretdb.New(config)
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *handler == "sqlite" {
		dir, err := sqliteDir(*sqliteURL)
		if err != nil {
			log.Fatal(err)
		}
		indexer := &idIndexer{dir: dir, dbs: map[string]openFile{}}
		go indexer.run(ctx, 200*time.Millisecond)
	}

	log.Printf("ferretdb listening on %s (%s)", *listen, backend)
	if err := f.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
