#!/usr/bin/env bash
# Builds .local/bin/ferretdb: FerretDB 1.24.2 from the Go module proxy, embedded by main.go, with the
# patches of this folder applied to a copy of its source (`build.sh OUTPUT SOURCE_COPY_DIR`).
# sqlite-id-pushdown.patch: a filter with an `_id` equality and other conditions (a conditional update)
# is narrowed by `_id` in SQL, so it uses the index idindex.go adds instead of reading the collection.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1
src=$2
cd "$here"
go mod download github.com/FerretDB/FerretDB
pristine=$(go list -m -f '{{.Dir}}' github.com/FerretDB/FerretDB)
rm -rf "$src"
mkdir -p "$(dirname "$src")"
cp -R "$pristine" "$src"
chmod -R u+w "$src"
for p in "$here"/*.patch; do
  patch --quiet -p1 -d "$src" < "$p"
done
# A go.mod of our own with the replace, so that infra/ferretdb/go.mod stays the plain dependency.
cp go.mod "$src.go.mod"
cp go.sum "$src.go.sum"
go mod edit -modfile="$src.go.mod" -replace "github.com/FerretDB/FerretDB=$src"
go build -modfile="$src.go.mod" -trimpath -o "$out" .
