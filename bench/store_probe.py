"""`python -m bench.store_probe`: cost of the store queries our plumbing issues, by collection size.

FerretDB 1.24 on SQLite turns a query into SQL only when the filter is exactly `{"_id": <string>}`;
any other filter (`$in`, `_id` plus another condition, `outbox.0`) reads and decodes every document of
the collection. This probe times each query shape on collections of growing size, on a private FerretDB,
so that a slow-down seen in `make bench` can be traced to the query that causes it.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from pymongo.collection import Collection

from ops.devstack import FerretNode


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.store_probe", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 3000])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="relais-store-probe-"))
    node = FerretNode("ferretdb", data_dir, port=_free_port())
    node.start()
    try:
        client: MongoClient[dict[str, Any]] = MongoClient(node.url)
        coll = client["probe"]["docs"]
        print(f"median ms over {args.repeat} calls, by number of documents in the collection")
        print(f"{'query':58}" + "".join(f"{n:>9}" for n in args.sizes))
        results: dict[str, list[float]] = {}
        for size in args.sizes:
            missing = size - coll.count_documents({})
            if missing > 0:
                coll.insert_many([_document(str(uuid.uuid4())) for _ in range(missing)])
            every = [d["_id"] for d in coll.find({}, {"_id": 1})]
            ids = every[:: max(1, len(every) // args.repeat)][: args.repeat]  # spread over the table
            for name, call in shapes(coll).items():
                times = []
                for i in ids:
                    started = time.perf_counter()
                    call(i)
                    times.append((time.perf_counter() - started) * 1000)
                results.setdefault(name, []).append(statistics.median(times))
        for name, values in results.items():
            print(f"{name:58}" + "".join(f"{v:9.1f}" for v in values))
        client.close()
    finally:
        node.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
