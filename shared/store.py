"""MongoDB access (FerretDB locally): the client, readiness, and every single-document write of the services.

FerretDB's constraints live here and nowhere else, so that a move to MongoDB leaves no dead weight in the
services:
- no multi-document transactions: an effect is one document write carrying the state change, the id of
  the event that caused it (`was_applied`) and the events to publish (the outbox);
- each update is applied as read-modify-write, so two concurrent updates of one document lose one of
  them: every write below is serialised per document within this process (`_document_lock`); one
  document is only ever written by the process that owns its partition or its request;
- any filter other than `{"_id": ...}` reads the whole collection: conditions are compared in-process
  (`update_if`), on MongoDB they go into the filter.
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError
from pymongo.results import UpdateResult

from shared.documents import Client, Collection, Database
from shared.outbox import WITHOUT_OUTBOX, outbox_items, with_outbox, with_outbox_items
from shared.schemas import Envelope

PROCESSED_FIELD = "processed_events"
# Projection for reading a document's state only: no outbox, no dedup markers.
STATE_ONLY: dict[str, int] = {**WITHOUT_OUTBOX, PROCESSED_FIELD: 0}
DUPLICATE_KEY = 11000
R = TypeVar("R")


def connect(url: str, db: str, listeners: Sequence[Any] = ()) -> tuple[Client, Database]:
    """`listeners`: PyMongo event listeners (the service's store latency metrics)."""
    client: Client = AsyncMongoClient(
        url,
        serverSelectionTimeoutMS=5000,
        connectTimeoutMS=3000,
        tz_aware=True,
        uuidRepresentation="standard",
        event_listeners=list(listeners),
    )
    return client, client[db]


async def ping(db: Database) -> bool:
    try:
        await db.command("ping")
        return True
    except Exception:  # noqa: BLE001 - readiness reports any failure as not ready
        return False


_locks: dict[tuple[str, str, str], asyncio.Lock] = {}
_waiters: dict[tuple[str, str, str], int] = {}


@asynccontextmanager
async def _document_lock(collection: Collection, doc_id: Any) -> AsyncIterator[None]:
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
    collection: Collection,
    doc_id: Any,
    cause: Envelope,
    update: dict[str, Any],
    emit: Sequence[Envelope] = (),
) -> bool:
    """Apply `update` to one document once per causing event; False if it was already applied.

    Every query filters on `_id` alone: FerretDB turns only `{"_id": <string>}` into an SQL lookup and
    reads the whole collection for any other filter (apply_event took 670 ms at 2,000 documents with a
    `processed_events` condition). The read-then-write is safe because a document has one writer: the
    process owning the case's partition, serialised in-process.
    """
    update = with_outbox(update, list(emit))
    update.setdefault("$push", {})[PROCESSED_FIELD] = str(cause.event_id)
    async with _document_lock(collection, doc_id):
        if await was_applied(collection, doc_id, cause.event_id):
            return False
        try:
            await collection.update_one({"_id": doc_id}, update, upsert=True)
        except DuplicateKeyError:  # created by another writer at the same instant: apply as a redelivery
            return False
    return True


async def was_applied(collection: Collection, doc_id: Any, event_id: Any) -> bool:
    """The one duplicate check: has the event `event_id` already changed this document?"""
    doc = await collection.find_one({"_id": doc_id}, {PROCESSED_FIELD: 1})
    return doc is not None and applied_in(doc, event_id)


def applied_in(doc: dict[str, Any] | None, event_id: Any) -> bool:
    """The same check on a document already read (it must include `processed_events`)."""
    return doc is not None and str(event_id) in doc.get(PROCESSED_FIELD, [])


# Per client: does the server read the whole collection for any filter other than `{"_id": ...}`?
_scans_conditions: weakref.WeakKeyDictionary[Client, bool] = weakref.WeakKeyDictionary()


async def _conditions_scan(collection: Collection) -> bool:
    client = collection.database.client
    if client not in _scans_conditions:
        info = await client.admin.command("buildInfo")
        _scans_conditions[client] = "ferretdbVersion" in info  # FerretDB 1.x pushes down `_id` alone
    return _scans_conditions[client]


async def update_if(
    collection: Collection,
    doc_id: Any,
    expected: dict[str, Any],
    update: dict[str, Any],
    *,
    upsert: bool = False,
    _locked: bool = False,
) -> bool:
    """Apply `update` to one document if its fields still equal `expected`; False when they do not.

    With `upsert`, a missing document is created (its absence counts as a match). On MongoDB the
    condition goes into the filter, atomic
    across processes. On FerretDB that filter would read the whole collection, so the document is read
    by `_id` and compared here under the document's lock: atomic within this process, which is all FerretDB's
    read-modify-write updates offer across processes anyway.
    """
    if not _locked:
        async with _document_lock(collection, doc_id):
            return await update_if(collection, doc_id, expected, update, upsert=upsert, _locked=True)
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


# --- serialised single-document writes -------------------------------------------------------------------


async def update_by_id(
    collection: Collection,
    doc_id: Any,
    update: dict[str, Any],
    *,
    upsert: bool = False,
    condition: dict[str, Any] | None = None,
) -> UpdateResult:
    """One update of one document, serialised with this process's other writers of it.

    `condition` is added to the filter: use it only for conditions FerretDB evaluates without a whole-collection
    read being a problem (a small collection), otherwise `update_if`.
    """
    async with _document_lock(collection, doc_id):
        return await collection.update_one({"_id": doc_id, **(condition or {})}, update, upsert=upsert)


async def update_by_id_returning(
    collection: Collection, doc_id: Any, update: dict[str, Any], *, upsert: bool = False
) -> dict[str, Any] | None:
    """`update_by_id` that returns the document as it is after the update (None if it does not exist)."""
    async with _document_lock(collection, doc_id):
        return await collection.find_one_and_update(
            {"_id": doc_id}, update, upsert=upsert, return_document=ReturnDocument.AFTER
        )


async def insert_once(collection: Collection, doc: dict[str, Any]) -> bool:
    """Insert a document keyed by a deterministic `_id`; False when it exists (already applied).

    An insert on `_id` is exclusive on FerretDB and MongoDB alike: no read before, no lock."""
    try:
        await collection.insert_one(doc)
    except DuplicateKeyError:
        return False
    return True


async def insert_many_once(collection: Collection, docs: list[dict[str, Any]]) -> list[Any]:
    """Insert the documents whose `_id` is new, in one unordered command; return the ids that existed."""
    if not docs:
        return []
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if not errors or any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise
        return [docs[error["index"]]["_id"] for error in errors]
    return []


# --- versioned documents ------------------------------------------------------------------------------------

VERSION_FIELD = "version"


class VersionConflict(Exception):
    """Another writer changed the document first, every time we tried: the caller retries later."""


@dataclass
class Change(Generic[R]):
    """What a decision does to a versioned document: an update (without the version), the events it
    causes (appended to the document's outbox in the same write) and what the caller gets back."""

    update: dict[str, Any]
    result: R | None = None
    emit: list[Envelope] = field(default_factory=list)
    outbox_items: list[dict[str, Any]] = field(default_factory=list)


Decide = Callable[[dict[str, Any] | None], "Change[R] | Awaitable[Change[R] | None] | None"]


async def change_versioned(
    collection: Collection,
    doc_id: Any,
    decide: Decide[R],
    *,
    projection: dict[str, int] | None = None,
    create: bool = False,
    on_emitted: Callable[[], None] | None = None,
    attempts: int = 5,
) -> Change[R] | None:
    """Read a document, let `decide` compute its change, and write it if nobody wrote in between.

    An absent document gives None, unless `create`: then `decide` gets None and its change inserts it.
    `decide` returns a `Change` (one with an empty update and nothing to emit is returned unwritten: "nothing
    happened") or None (nothing to do: None is returned). The version check catches another process; this
    process's writers take turns. `on_emitted` runs after a write that appended events (to wake the outbox
    relay). Raises `VersionConflict` after `attempts` lost races.
    """
    for _ in range(attempts):
        async with _document_lock(collection, doc_id):
            doc = await collection.find_one({"_id": doc_id}, projection)
            if doc is None and not create:
                return None
            decided = decide(doc)
            change = await decided if inspect.isawaitable(decided) else decided
            items = outbox_items(change.emit) + change.outbox_items if change is not None else []
            if change is None or (not change.update and not items):
                return change
            version = (doc or {}).get(VERSION_FIELD, 0)
            update = {op: dict(fields) for op, fields in change.update.items()}
            update.setdefault("$set", {})[VERSION_FIELD] = version + 1
            saved = await update_if(
                collection,
                doc_id,
                {VERSION_FIELD: version},
                with_outbox_items(update, items),
                upsert=doc is None,
                _locked=True,
            )
        if saved:
            if items and on_emitted is not None:
                on_emitted()
            return change
    raise VersionConflict(str(doc_id))
