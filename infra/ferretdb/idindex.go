package main

// FerretDB 1.24's SQLite backend indexes `_id` as `_ferretdb_sjson->"_id"` but looks documents up with
// `WHERE _ferretdb_sjson->'$._id' = ?`. SQLite only uses an expression index for the identical
// expression, so every find, update and delete by _id scans and parses the whole table
// (EXPLAIN QUERY PLAN: "SCAN", 7 ms per lookup at 1,200 documents, growing with the collection).
// This indexer adds the index the lookup can use, in every database file, for every collection,
// as collections appear. FerretDB's own metadata does not list it; a dropped collection drops it.

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the driver FerretDB itself uses
)

const (
	idColumn    = `_ferretdb_sjson->'$._id'` // FerretDB's metadata.IDColumn, as its queries spell it
	indexSuffix = "_relais_id_lookup"
)

type idIndexer struct {
	dir string
	dbs map[string]openFile // database file -> connection
}

type openFile struct {
	db   *sql.DB
	info os.FileInfo // to notice a dropped and re-created database (same name, new file)
}

// sqliteDir turns FerretDB's `file:/abs/dir/` URL into the directory path.
func sqliteDir(sqliteURL string) (string, error) {
	u, err := url.Parse(sqliteURL)
	if err != nil {
		return "", err
	}
	dir := u.Opaque
	if dir == "" {
		dir = u.Path
	}
	return filepath.Clean(dir), nil
}

// run indexes what exists now, then what appears, every interval until ctx ends.
func (x *idIndexer) run(ctx context.Context, interval time.Duration) {
	defer x.close()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		x.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func (x *idIndexer) pass(ctx context.Context) {
	files, err := filepath.Glob(filepath.Join(x.dir, "*.sqlite"))
	if err != nil {
		log.Printf("id indexer: %v", err)
		return
	}
	for file, open := range x.dbs { // a dropped database removes its file
		if info, err := os.Stat(file); err != nil || !os.SameFile(info, open.info) {
			_ = open.db.Close()
			delete(x.dbs, file)
		}
	}
	for _, file := range files {
		if err := x.indexFile(ctx, file); err != nil && ctx.Err() == nil {
			log.Printf("id indexer: %s: %v", filepath.Base(file), err)
		}
	}
}

func (x *idIndexer) indexFile(ctx context.Context, file string) error {
	open, ok := x.dbs[file]
	if !ok {
		info, err := os.Stat(file)
		if err != nil {
			return nil // dropped meanwhile
		}
		// FerretDB switches a new database file to WAL when it first opens it, which needs the file to
		// itself (a connection of ours at that moment made it fail with SQLITE_BUSY). Its write-ahead log
		// exists once the switch is done; from then on readers and writers share the file.
		if _, err := os.Stat(file + "-wal"); err != nil {
			return nil
		}
		// Never create a file (mode=rw); wait for FerretDB's writers rather than fail.
		db, err := sql.Open("sqlite", "file:"+file+"?mode=rw&_pragma=busy_timeout(10000)")
		if err != nil {
			return err
		}
		db.SetMaxOpenConns(1)
		open = openFile{db: db, info: info}
		x.dbs[file] = open
	}
	db := open.db
	// Tables without our index; a table re-created under the same name has lost it and is listed again.
	rows, err := db.QueryContext(ctx, `SELECT c.table_name FROM _ferretdb_collections c
		WHERE NOT EXISTS (SELECT 1 FROM sqlite_master m WHERE m.type = 'index' AND m.name = c.table_name || ?)`,
		indexSuffix)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return nil // FerretDB has not written its metadata yet
		}
		return err
	}
	var tables []string
	for rows.Next() {
		var table string
		if err := rows.Scan(&table); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, table)
	}
	rows.Close()
	for _, table := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (%s)`, table+indexSuffix, table, idColumn)
		if _, err := db.ExecContext(ctx, q); err != nil {
			if strings.Contains(err.Error(), "no such table") {
				continue // dropped meanwhile
			}
			return err
		}
	}
	return nil
}

func (x *idIndexer) close() {
	for _, open := range x.dbs {
		_ = open.db.Close()
	}
}
