"""`python -m bench.store_probe`: FerretDB 1.24 on SQLite against FerretDB 1.24 on PostgreSQL, measured.

Both backends run at once on this machine, each behind its own FerretDB (same binary), and every
measurement is taken on one backend then the other, so that a change of load on a shared machine falls
on both alike. Measured, with documents shaped like a routing document (about 500 bytes):

- single upserts by `_id` (new ids), 32 in flight: what a stage that writes once per event pays;
- `bulk_write` of 200 upserts, and `insert_many` of 200 (unordered): what a batch of events can cost;
- `find_one` by `_id` at 3,000 and 30,000 documents: one at a time (latency) and 32 in flight.

The table is printed and written to bench/results/stores.json. SQLite runs as the bench runs it (WAL,
synchronous=NORMAL, plus our `_id` index, infra/ferretdb/idindex.go): a commit waits for no fsync; a
killed FerretDB loses nothing, an OS crash may lose the last commits. PostgreSQL (Debian's packages;
`make bench-stores` installs them) runs a private cluster in a temporary folder, twice: `postgresql`
with synchronous_commit=off (no fsync wait either, but a crash of the PostgreSQL server itself may lose
the last few hundred milliseconds of commits) and `postgresql-sync` with synchronous_commit=on (every
commit flushed: stronger than our SQLite setting). Neither can be corrupted by a crash.

What the probe found out about FerretDB 1.24's PostgreSQL backend: it looks documents up by `_id` with
`_jsonb->$1 @> $2`, which its own btree index on `(_jsonb->'_id')` cannot serve (EXPLAIN: Seq Scan), so
a lookup by `_id` reads the whole table there too, as it did on SQLite before our indexer; the
`find_one` rows at two sizes show it.

`--shapes` prints instead the older table: the cost of each query shape our plumbing issues, by
collection size (FerretDB turns into SQL only the filter `{"_id": <string>}`; any other filter reads and
decodes the whole collection).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient, MongoClient, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.collection import Collection

from ops.devstack import (
    FERRETDB_BIN,
    ROOT,
    FerretNode,
    FerretPostgresNode,
    Node,
    PostgresNode,
    StartupError,
    postgres_bin_dir,
)

BACKENDS = ("sqlite", "postgresql", "postgresql-sync")
IN_FLIGHT = 32
BATCH = 200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _document(doc_id: str) -> dict:
    """About the size and shape of a routing document."""
    decision = {
        "association": "60000_rebonds",
        "rule": "procedure:liquidation_judiciaire",
        "reasons": ["Liquidation judiciaire prononcée il y a 2 mois → 60 000 rebonds"],
        "routed_at": "2026-03-10T10:00:00+00:00",
    }
    return {
        "_id": doc_id,
        "association": "60000_rebonds",
        "current": decision,
        "history": [decision],
        "situation": {"procedure": "liquidation_judiciaire", "postal_code": "69003"},
        "processed_events": [str(uuid.uuid4())],
        "outbox": [],
    }


def _new_ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


# --- the servers ---------------------------------------------------------------------------------------------


@dataclass
class Backend:
    name: str
    ferretdb: FerretNode
    postgres: PostgresNode | None = None

    @property
    def nodes(self) -> list[Node]:
        return [n for n in (self.ferretdb, self.postgres) if n is not None]

    def describe(self) -> str:
        if self.postgres is None:
            return "SQLite (WAL, synchronous=NORMAL) + the _id index of infra/ferretdb/idindex.go"
        sync = "on" if self.postgres.synchronous_commit else "off"
        return f"PostgreSQL {_postgres_version()} (private cluster, synchronous_commit={sync})"


def _postgres_version() -> str:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        return "?"
    out = subprocess.run([str(bin_dir / "postgres"), "--version"], check=False, capture_output=True, text=True)
    found = re.search(r"\(PostgreSQL\) (\S+)", out.stdout)  # postgres (PostgreSQL) 15.18 (Debian ...)
    return found.group(1) if found else "?"


def start_backend(name: str, data_dir: Path, binary: Path) -> Backend:
    if name == "sqlite":
        backend = Backend(name, FerretNode(f"ferretdb-{name}", data_dir / name, port=_free_port(), binary=binary))
        backend.ferretdb.start()
        return backend
    if postgres_bin_dir() is None:
        raise StartupError(
            "PostgreSQL is not installed: `make bench-stores` installs it from Debian's packages "
            "(scripts/ensure-postgres.sh), or pass --backends sqlite"
        )
    postgres = PostgresNode(
        f"postgresql-{name}",
        data_dir / f"{name}-cluster",
        port=_free_port(),
        synchronous_commit=name == "postgresql-sync",
    )
    ferretdb = FerretPostgresNode(
        f"ferretdb-{name}", data_dir / name, port=_free_port(), binary=binary, postgresql_url=postgres.url
    )
    backend = Backend(name, ferretdb, postgres)
    postgres.start()
    try:
        backend.ferretdb.start()
    except StartupError as exc:
        postgres.stop()
        raise StartupError(
            f"{exc}\n(a FerretDB built before --handler existed? `make provision` rebuilds it; or pass --ferretdb-bin)"
        ) from exc
    return backend


# --- the measurements ---------------------------------------------------------------------------------------


async def _timed(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


async def _in_flight(items: list[Any], one: Callable[[Any], Awaitable[Any]], width: int = IN_FLIGHT) -> None:
    limit = asyncio.Semaphore(width)

    async def run(item: Any) -> None:
        async with limit:
            await one(item)

    await asyncio.gather(*(run(item) for item in items))


async def single_upserts(coll: AsyncCollection, n: int) -> dict[str, Any]:
    ids = _new_ids(n)

    async def upsert(doc_id: str) -> None:
        doc = _document(doc_id)
        del doc["_id"]
        await coll.update_one({"_id": doc_id}, {"$set": doc}, upsert=True)

    seconds = await _timed(lambda: _in_flight(ids, upsert))
    return {"ops": n, "seconds": round(seconds, 3), "per_s": round(n / seconds, 1)}


async def bulk_upserts(coll: AsyncCollection, batches: int) -> dict[str, Any]:
    async def all_batches() -> None:
        for _ in range(batches):
            ops = []
            for doc_id in _new_ids(BATCH):
                doc = _document(doc_id)
                del doc["_id"]
                ops.append(UpdateOne({"_id": doc_id}, {"$set": doc}, upsert=True))
            await coll.bulk_write(ops, ordered=False)

    seconds = await _timed(all_batches)
    docs = batches * BATCH
    return {"docs": docs, "batch": BATCH, "seconds": round(seconds, 3), "docs_per_s": round(docs / seconds, 1)}


async def insert_batches(coll: AsyncCollection, batches: int) -> dict[str, Any]:
    async def all_batches() -> None:
        for _ in range(batches):
            await coll.insert_many([_document(i) for i in _new_ids(BATCH)], ordered=False)

    seconds = await _timed(all_batches)
    docs = batches * BATCH
    return {"docs": docs, "batch": BATCH, "seconds": round(seconds, 3), "docs_per_s": round(docs / seconds, 1)}


async def fill(coll: AsyncCollection, size: int) -> list[str]:
    """Grow the collection to `size` documents; return every id in it."""
    missing = size - await coll.count_documents({})
    for start in range(0, max(0, missing), 1000):
        await coll.insert_many([_document(i) for i in _new_ids(min(1000, missing - start))], ordered=False)
    return [d["_id"] async for d in coll.find({}, {"_id": 1})]


async def lookups(coll: AsyncCollection, ids: list[str], one_by_one: int, in_flight: int) -> dict[str, Any]:
    step = max(1, len(ids) // one_by_one)
    sample = ids[::step][:one_by_one]  # spread over the table
    times = []
    for doc_id in sample:
        started = time.perf_counter()
        found = await coll.find_one({"_id": doc_id})
        times.append((time.perf_counter() - started) * 1000)
        if found is None:
            raise RuntimeError(f"find_one did not find {doc_id}")
    times.sort()
    spread = [ids[(i * 7919) % len(ids)] for i in range(in_flight)]
    seconds = await _timed(lambda: _in_flight(spread, lambda i: coll.find_one({"_id": i})))
    return {
        "documents": len(ids),
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
        "one_at_a_time": len(times),
        f"per_s_{IN_FLIGHT}_in_flight": round(in_flight / seconds, 1),
    }


async def compare(backends: list[Backend], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    clients: dict[str, AsyncMongoClient[dict[str, Any]]] = {
        b.name: AsyncMongoClient(b.ferretdb.url, serverSelectionTimeoutMS=10000) for b in backends
    }
    results: dict[str, dict[str, Any]] = {b.name: {} for b in backends}

    async def each(
        label: str, measure: Callable[[AsyncCollection], Awaitable[dict[str, Any]]], collection: str
    ) -> None:
        for b in backends:  # one backend after the other, every time
            print(f"  {label} on {b.name} …", flush=True)
            results[b.name][label] = await measure(clients[b.name]["probe"][collection])

    try:
        await each("single_upserts", lambda c: single_upserts(c, args.upserts), "upserts")
        await each("bulk_write_200_upserts", lambda c: bulk_upserts(c, args.batches), "bulk")
        await each("insert_many_200", lambda c: insert_batches(c, args.batches * 2), "inserted")
        for size in args.sizes:

            async def at_size(c: AsyncCollection, size: int = size) -> dict[str, Any]:
                ids = await fill(c, size)
                return await lookups(c, ids, args.lookups, args.lookups_in_flight)

            await each(f"find_one_by_id_at_{size}", at_size, "lookups")
    finally:
        for client in clients.values():
            await client.close()
    return results


def table(result: dict[str, Any]) -> str:
    names = list(result["backends"])
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, key: str, field: str, unit: str = "") -> None:
        rows.append((label, [_fmt(result["backends"][n]["results"].get(key, {}).get(field)) + unit for n in names]))

    row(f"single upserts by _id, {IN_FLIGHT} in flight (ops/s)", "single_upserts", "per_s")
    row(f"bulk_write of {BATCH} upserts (docs/s)", "bulk_write_200_upserts", "docs_per_s")
    row(f"insert_many of {BATCH}, unordered (docs/s)", "insert_many_200", "docs_per_s")
    for size in result["options"]["sizes"]:
        key = f"find_one_by_id_at_{size}"
        row(f"find_one by _id at {size:,} docs, one at a time: p50 (ms)", key, "p50_ms")
        row(f"find_one by _id at {size:,} docs, one at a time: p95 (ms)", key, "p95_ms")
        row(f"find_one by _id at {size:,} docs, {IN_FLIGHT} in flight (ops/s)", key, f"per_s_{IN_FLIGHT}_in_flight")
    width = max(len(label) for label, _ in rows) + 2
    col = max(12, *(len(n) + 2 for n in names))
    m = result["machine"]
    lines = [
        (
            f"FerretDB 1.24 store comparison {result['timestamp']} — {m['cpu_count']} CPUs, load "
            f"{m['load_average_at_start'][0]} at start, {m['load_average_at_end'][0]} at the end"
        ),
        f"{'':{width}}" + "".join(f"{n:>{col}}" for n in names),
        "-" * (width + col * len(names)),
    ]
    lines += [f"{label:<{width}}" + "".join(f"{v:>{col}}" for v in values) for label, values in rows]
    lines += [f"{n}: {result['backends'][n]['store']}" for n in names]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}".replace(",", " ") if isinstance(value, float) else str(value)


# --- the older probe: query shapes by collection size ------------------------------------------------------


def shapes(coll: Collection) -> dict[str, Callable[[str], object]]:
    """Query shapes: the first three are what shared/store.py and shared/outbox.py issue per event."""
    return {
        "apply_event upsert, new doc  {_id, processed_events $ne}": lambda _: coll.update_one(
            {"_id": str(uuid.uuid4()), "processed_events": {"$ne": "e"}},
            {"$push": {"processed_events": "e"}},
            upsert=True,
        ),
        "apply_event, existing doc    {_id, processed_events $ne}": lambda i: coll.update_one(
            {"_id": i, "processed_events": {"$ne": str(uuid.uuid4())}}, {"$set": {"x": 1}}
        ),
        "outbox relay find            {_id: {$in: [id]}}": lambda i: list(
            coll.find({"_id": {"$in": [i]}}, {"outbox": 1})
        ),
        "by _id only: find_one        {_id}": lambda i: coll.find_one({"_id": i}, {"outbox": 1}),
        "by _id only: insert_one      new _id": lambda _: coll.insert_one(_document(str(uuid.uuid4()))),
        "by _id only: update_one      {_id} $max, upsert": lambda i: coll.update_one(
            {"_id": i}, {"$max": {"published": 1}}, upsert=True
        ),
    }


def shape_table(backend: Backend, sizes: list[int], repeat: int) -> None:
    client: MongoClient[dict[str, Any]] = MongoClient(backend.ferretdb.url)
    try:
        coll = client["probe"]["docs"]
        print(f"{backend.name}: median ms over {repeat} calls, by number of documents in the collection")
        print(f"{'query':58}" + "".join(f"{n:>9}" for n in sizes))
        results: dict[str, list[float]] = {}
        for size in sizes:
            missing = size - coll.count_documents({})
            if missing > 0:
                coll.insert_many([_document(str(uuid.uuid4())) for _ in range(missing)])
            every = [d["_id"] for d in coll.find({}, {"_id": 1})]
            ids = every[:: max(1, len(every) // repeat)][:repeat]  # spread over the table
            for name, call in shapes(coll).items():
                times = []
                for i in ids:
                    started = time.perf_counter()
                    call(i)
                    times.append((time.perf_counter() - started) * 1000)
                results.setdefault(name, []).append(statistics.median(times))
        for name, values in results.items():
            print(f"{name:58}" + "".join(f"{v:9.1f}" for v in values))
    finally:
        client.close()


# --- main ---------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.store_probe", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=BACKENDS,
        default=list(BACKENDS),
        help="default: all three (sqlite, postgresql, postgresql-sync)",
    )
    parser.add_argument(
        "--ferretdb-bin",
        type=Path,
        default=FERRETDB_BIN,
        help=f"the FerretDB to run (default {FERRETDB_BIN.relative_to(ROOT)})",
    )
    parser.add_argument("--upserts", type=int, default=2000, help="single upserts (default 2000)")
    parser.add_argument(
        "--batches",
        type=int,
        default=10,
        help=f"bulk_write batches of {BATCH} (default 10; insert_many runs twice as many)",
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=None,
        help="collection sizes of the find_one lookups (default 3000 30000; with --shapes 100 1000 3000)",
    )
    parser.add_argument("--lookups", type=int, default=300, help="find_one calls one at a time, per size")
    parser.add_argument(
        "--lookups-in-flight",
        type=int,
        default=2000,
        help=f"find_one calls {IN_FLIGHT} in flight, per size (default 2000)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "stores.json")
    parser.add_argument("--shapes", action="store_true", help="the query-shape table instead (each backend alone)")
    parser.add_argument("--repeat", type=int, default=15, help="with --shapes: calls per shape and size")
    args = parser.parse_args(argv)
    args.sizes = args.sizes or ([100, 1000, 3000] if args.shapes else [3000, 30000])
    if not args.ferretdb_bin.exists():
        parser.error(f"{args.ferretdb_bin} does not exist: run `make provision`")

    data_dir = Path(tempfile.mkdtemp(prefix="relais-store-probe-"))
    data_dir.chmod(0o755)  # PostgreSQL runs as another user when we are root: it must reach its folder
    backends: list[Backend] = []
    started = time.monotonic()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    try:
        for name in dict.fromkeys(args.backends):
            print(f"store probe: starting FerretDB on {name} …", flush=True)
            backends.append(start_backend(name, data_dir, args.ferretdb_bin))
        if args.shapes:
            for backend in backends:
                shape_table(backend, args.sizes, args.repeat)
            return 0
        measured = asyncio.run(compare(backends, args))
        load_at_end = [round(x, 2) for x in os.getloadavg()]
    except StartupError as exc:
        print(f"store probe: failed: {exc}", flush=True)
        return 1
    finally:
        for backend in backends:
            for node in backend.nodes:
                node.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    result = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - started, 1),
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": load_at_end,
        },
        "options": {
            "upserts": args.upserts,
            "batches": args.batches,
            "sizes": args.sizes,
            "lookups": args.lookups,
            "lookups_in_flight": args.lookups_in_flight,
            "in_flight": IN_FLIGHT,
            "batch": BATCH,
            "ferretdb_bin": str(args.ferretdb_bin),
        },
        "backends": {b.name: {"store": b.describe(), "results": measured[b.name]} for b in backends},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print()
    print(table(result))
    print(f"\nstore probe: {result['seconds']:.0f} s; results written to {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
