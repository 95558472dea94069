"""Our FerretDB build gives its lookups by _id an index they can use (infra/ferretdb/idindex.go), and the
conditional update that keeps every other filter off FerretDB (shared.store.update_if).

FerretDB 1.24 filters `WHERE _ferretdb_sjson->'$._id' = ?` but indexes `_ferretdb_sjson->"_id"`, so
without ours every find, update and delete by _id scans the table. Read from the SQLite file itself:
the query plan is the proof, not a timing.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from typing import Any

from pymongo import AsyncMongoClient

from shared.store import update_if
from tests.conftest import Infra, wait_for

LOOKUP = "SELECT _ferretdb_sjson FROM {table} WHERE _ferretdb_sjson->'$._id' = ?"


def query_plan(path: str, collection: str) -> str:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT table_name FROM _ferretdb_collections WHERE name = ?", (collection,)).fetchone()
        if row is None:
            return "no table yet"
        plan = db.execute("EXPLAIN QUERY PLAN " + LOOKUP.format(table=f'"{row[0]}"'), ('"x"',)).fetchall()
        return " ".join(step[-1] for step in plan)
    finally:
        db.close()


async def test_lookups_by_id_use_an_index_in_new_and_recreated_collections(infra: Infra) -> None:
    db_name = f"idindex_{uuid.uuid4().hex[:8]}"
    path = str(infra.ferretdb.data_dir / "sqlite" / f"{db_name}.sqlite")
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongo_url)
    try:
        docs = client[db_name]["docs"]
        await docs.insert_many([{"_id": str(uuid.uuid4()), "n": i} for i in range(50)])
        await wait_for(lambda: _searches(path), timeout=10, what="the _id lookup to use an index")

        # A dropped and re-created collection keeps the same table name and must get the index again.
        await docs.drop()
        await docs.insert_one({"_id": "again"})
        await wait_for(lambda: _searches(path), timeout=10, what="the re-created collection's index")
        assert await docs.find_one({"_id": "again"}) == {"_id": "again"}
    finally:
        await client.drop_database(db_name)
        await client.close()


async def _searches(path: str) -> bool:
    plan = query_plan(path, "docs")
    return plan.startswith("SEARCH") and "_relais_id_lookup" in plan


async def test_update_if_applies_only_while_the_condition_holds(infra: Infra) -> None:
    """The conditional update every writer uses, on FerretDB (where it compares by reading the _id)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongo_url)
    db_name = f"update_if_{uuid.uuid4().hex[:8]}"
    try:
        docs = client[db_name]["docs"]
        assert await update_if(docs, "a", {"version": 0}, {"$set": {"version": 1}}, upsert=True)  # created
        assert not await update_if(docs, "a", {"version": 0}, {"$set": {"version": 9}}, upsert=True)  # stale
        assert await update_if(docs, "a", {"version": 1}, {"$set": {"version": 2}})
        assert not await update_if(docs, "missing", {"version": 0}, {"$set": {"version": 1}})  # no upsert
        # Writers of one document in this process take turns: exactly one of twenty same-version writes wins.
        won = await asyncio.gather(
            *(update_if(docs, "a", {"version": 2}, {"$set": {"version": 3, "by": i}}) for i in range(20))
        )
        assert sum(won) == 1
        assert await docs.find_one({"_id": "a"}) == {"_id": "a", "version": 3, "by": won.index(True)}
        assert await docs.count_documents({}) == 1
    finally:
        await client.drop_database(db_name)
        await client.close()
