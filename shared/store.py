"""MongoDB access (FerretDB locally): the client, readiness, and idempotent single-document effects.

FerretDB has no multi-document transactions, so every effect is one document write that carries the
state change, the id of the event that caused it (dedup marker) and the events to publish (outbox).
FerretDB also applies each update as read-modify-write, so two concurrent updates of one document lose
one of them: every writer of an aggregate takes `document_lock` first, which serialises the writes of
this process (one case is only ever written by the process that owns its partition or its request).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.outbox import with_outbox
from shared.schemas import Envelope

PROCESSED_FIELD = "processed_events"


def connect(url: str, db: str) -> tuple[AsyncMongoClient, AsyncDatabase]:
    client: AsyncMongoClient = AsyncMongoClient(
        url, serverSelectionTimeoutMS=5000, connectTimeoutMS=3000, tz_aware=True, uuidRepresentation="standard"
    )
    return client, client[db]


async def ping(db: AsyncDatabase) -> bool:
    try:
        await db.command("ping")
        return True
    except Exception:  # noqa: BLE001 - readiness reports any failure as not ready
        return False


_locks: dict[tuple[str, str, str], asyncio.Lock] = {}
_waiters: dict[tuple[str, str, str], int] = {}


@asynccontextmanager
async def document_lock(collection: AsyncCollection, doc_id: Any) -> AsyncIterator[None]:
    """Serialise writes to one document within this process (see the module docstring)."""
    key = (collection.database.name, collection.name, str(doc_id))
    lock = _locks.setdefault(key, asyncio.Lock())
    _waiters[key] = _waiters.get(key, 0) + 1
    try:
        async with lock:
            yield
    finally:
        _waiters[key] -= 1
        if _waiters[key] == 0:
            del _waiters[key], _locks[key]


async def apply_event(
    collection: AsyncCollection,
    doc_id: Any,
    cause: Envelope,
    update: dict[str, Any],
    emit: list[Envelope] = (),  # type: ignore[assignment]
) -> bool:
    """Apply `update` to one document once per causing event; False if it was already applied.

    Every query filters on `_id` alone: FerretDB turns only `{"_id": <string>}` into an SQL lookup and
    reads the whole collection for any other filter (apply_event took 670 ms at 2,000 documents with a
    `processed_events` condition). The read-then-write is safe because a document has one writer: the
    process owning the case's partition, serialised in-process by `document_lock`.
    """
    update = with_outbox(update, list(emit))
    update.setdefault("$push", {})[PROCESSED_FIELD] = str(cause.event_id)
    async with document_lock(collection, doc_id):
        if await was_applied(collection, doc_id, cause):
            return False
        try:
            await collection.update_one({"_id": doc_id}, update, upsert=True)
        except DuplicateKeyError:  # created by another writer at the same instant: apply as a redelivery
            return False
    return True


async def was_applied(collection: AsyncCollection, doc_id: Any, cause: Envelope) -> bool:
    doc = await collection.find_one({"_id": doc_id}, {PROCESSED_FIELD: 1})
    return doc is not None and str(cause.event_id) in doc.get(PROCESSED_FIELD, [])


# Per client: does the server read the whole collection for any filter other than `{"_id": ...}`?
_scans_conditions: weakref.WeakKeyDictionary[AsyncMongoClient, bool] = weakref.WeakKeyDictionary()


async def _conditions_scan(collection: AsyncCollection) -> bool:
    client = collection.database.client
    if client not in _scans_conditions:
        info = await client.admin.command("buildInfo")
        _scans_conditions[client] = "ferretdbVersion" in info  # FerretDB 1.x pushes down `_id` alone
    return _scans_conditions[client]


async def update_if(collection: AsyncCollection, doc_id: Any, expected: dict[str, Any], update: dict[str, Any],
                    *, upsert: bool = False, locked: bool = False) -> bool:
    """Apply `update` to one document if its fields still equal `expected`; False when they do not.

    With `upsert`, a missing document is created (its absence counts as a match). `locked`: the caller
    already holds `document_lock` for this document. On MongoDB the condition goes into the filter, atomic
    across processes. On FerretDB that filter would read the whole collection, so the document is read
    by `_id` and compared here under `document_lock`: atomic within this process, which is all FerretDB's
    read-modify-write updates offer across processes anyway.
    """
    if not locked:
        async with document_lock(collection, doc_id):
            return await update_if(collection, doc_id, expected, update, upsert=upsert, locked=True)
    try:
        if not await _conditions_scan(collection):
            result = await collection.update_one({"_id": doc_id, **expected}, update, upsert=upsert)
            return result.matched_count == 1 or result.upserted_id is not None
        doc = await collection.find_one({"_id": doc_id}, dict.fromkeys(expected, 1) or {"_id": 1})
        if doc is None:
            if not upsert:
                return False
        elif any(doc.get(field) != value for field, value in expected.items()):
            return False
        result = await collection.update_one({"_id": doc_id}, update, upsert=upsert)
        return result.matched_count == 1 or result.upserted_id is not None
    except DuplicateKeyError:  # upsert of a document another writer created meanwhile
        return False
