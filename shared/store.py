"""MongoDB access (FerretDB locally): the client, readiness, and idempotent single-document effects.

FerretDB has no multi-document transactions, so every effect is one document write that carries the
state change, the id of the event that caused it (dedup marker) and the events to publish (outbox).
"""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.outbox import OUTBOX_FIELD, outbox_items
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


async def apply_event(
    collection: AsyncCollection,
    doc_id: Any,
    cause: Envelope,
    update: dict[str, Any],
    emit: list[Envelope] = (),  # type: ignore[assignment]
) -> bool:
    """Apply `update` to one document once per causing event; False if it was already applied.

    The filter excludes documents that already list the event; with upsert, a second delivery then
    collides on `_id` (E11000), which is how an already-applied event is recognised.
    """
    update = {k: dict(v) for k, v in update.items()}
    push = update.setdefault("$push", {})
    push[PROCESSED_FIELD] = str(cause.event_id)
    if emit:
        push[OUTBOX_FIELD] = {"$each": outbox_items(emit)}
    try:
        result = await collection.update_one(
            {"_id": doc_id, PROCESSED_FIELD: {"$ne": str(cause.event_id)}}, update, upsert=True
        )
    except DuplicateKeyError:
        return False
    return result.upserted_id is not None or result.modified_count == 1
