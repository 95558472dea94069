"""Transactional outbox kept inside the aggregate's own document, and the relay that publishes it.

A service never "writes the database, then publishes": the events an effect causes are appended to the
`outbox` array of the same document in the same single-document write (FerretDB has no multi-document
transactions). The array is append-only: it is the document's own event history.

The relay never writes the aggregate document. FerretDB applies an update as read-modify-write, so a
relay update racing a handler's update would silently lose one of them. Instead the relay keeps, in its
own `outbox_progress` collection, how many items of each document it has published, and publishes the
rest in order. A crash between publishing and recording progress republishes; consumers are idempotent,
so at-least-once delivery gives exactly-once effects.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from shared.documents import Collection
from shared.lookup import find_by_ids
from shared.runtime import BackgroundTask
from shared.schemas import Envelope
from shared.tracing import emitting

OUTBOX_FIELD = "outbox"
OUTBOX_COUNT_FIELD = "outbox_count"
PROGRESS_COLLECTION = "outbox_progress"
# Projection for reading a document's state without its outbox (the event history stays internal).
WITHOUT_OUTBOX: dict[str, int] = {OUTBOX_FIELD: 0, OUTBOX_COUNT_FIELD: 0}

# (topic, key, value, headers) -> a future resolved when the broker has acknowledged the record.
Send = Callable[[str, bytes, bytes, dict[str, str]], Awaitable[Awaitable[Any]]]


def outbox_item(
    *, topic: str, key: str, value: str, headers: dict[str, str], event_type: str, event_id: str, created_at: float
) -> dict[str, Any]:
    """One record to publish; `event_type` and `event_id` name it in metrics (any record kind, not only events)."""
    return {
        "event_id": event_id,
        "event_type": event_type,
        "topic": topic,
        "key": key,
        "headers": headers,
        "value": value,
        "created_at": created_at,
    }


def outbox_items(envelopes: Iterable[Envelope]) -> list[dict[str, Any]]:
    """Items of events; with tracing on, their headers carry the trace of the request or handler emitting them."""
    envelopes = list(envelopes)
    traced = emitting(str(e.correlation_id) for e in envelopes)
    return [
        outbox_item(
            topic=e.spec.topic,
            key=e.key.decode(),
            value=e.encode().decode(),
            headers={**e.headers(), **traced},
            event_type=e.event_type,
            event_id=str(e.event_id),
            created_at=e.occurred_at.timestamp(),
        )
        for e in envelopes
    ]


def with_outbox(update: dict[str, Any], envelopes: list[Envelope]) -> dict[str, Any]:
    """Add `envelopes` to an update document (`$push` to the outbox, `$inc` its count)."""
    return with_outbox_items(update, outbox_items(envelopes))


def with_outbox_items(update: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    """Add prepared records (`outbox_item`) to an update document."""
    if not items:
        return update
    merged = {op: dict(fields) for op, fields in update.items()}
    merged.setdefault("$push", {})[OUTBOX_FIELD] = {"$each": items}
    merged.setdefault("$inc", {})[OUTBOX_COUNT_FIELD] = len(items)
    return merged


def new_outbox(envelopes: list[Envelope]) -> dict[str, Any]:
    """Outbox fields of a document inserted with its first events."""
    return {OUTBOX_FIELD: outbox_items(envelopes), OUTBOX_COUNT_FIELD: len(envelopes)}


class OutboxRelay:
    """Publishes the unpublished outbox items of the collections it watches.

    Writers call `notify(collection, doc_id)` after a write for low latency; a scan at start and every
    `scan_interval_s` finds whatever a crash, a lost hint or another instance's crash left behind.
    """

    def __init__(
        self,
        send: Send,
        *,
        scan_interval_s: float = 30.0,
        on_published: Callable[[dict[str, Any]], None] | None = None,
        on_backlog: Callable[[int], None] | None = None,
        batch_size: int = 200,
    ) -> None:
        self._send = send
        self._collections: dict[str, Collection] = {}
        self._progress: Collection | None = None
        self._scan_interval_s = scan_interval_s
        self._on_published = on_published or (lambda item: None)
        self._on_backlog = on_backlog or (lambda n: None)
        self._batch_size = batch_size
        self._hints: dict[str, set[Any]] = {}
        self._task = BackgroundTask("outbox-relay", self._cycle, interval_s=scan_interval_s)
        self._next_scan = 0.0

    def watch(self, collection: Collection) -> None:
        """Relay the outbox of this collection (called by the store that owns it)."""
        self._collections[collection.name] = collection
        self._hints[collection.name] = set()
        self._progress = collection.database[PROGRESS_COLLECTION]

    @property
    def watching(self) -> bool:
        return bool(self._collections)

    def notify(self, collection: Collection, doc_id: Any) -> None:
        self._hints[collection.name].add(doc_id)
        self._task.wake()

    async def start(self) -> None:
        await self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
        # One last best-effort drain so that a clean shutdown leaves nothing behind.
        try:
            async with asyncio.timeout(5):
                await self._drain_hints()
        except Exception:  # noqa: BLE001 - the next start's scan will find the rest
            pass

    async def _cycle(self) -> float:
        """One round: the safety-net scan when it is due, then the hinted documents; returns the wait."""
        if time.monotonic() >= self._next_scan:
            started = time.monotonic()
            self._on_backlog(await self._scan())
            self._next_scan = time.monotonic() + scan_pause(self._scan_interval_s, time.monotonic() - started)
        await self._drain_hints()
        return max(0.05, self._next_scan - time.monotonic())

    async def _scan(self) -> int:
        """Compare each document's outbox count with the published count; hint the ones behind."""
        assert self._progress is not None
        published = {doc["_id"]: doc["published"] async for doc in self._progress.find({}, {"published": 1})}
        backlog = 0
        for name, collection in self._collections.items():
            cursor = collection.find({OUTBOX_COUNT_FIELD: {"$gt": 0}}, {"_id": 1, OUTBOX_COUNT_FIELD: 1})
            async for doc in cursor:
                behind = doc[OUTBOX_COUNT_FIELD] - published.get(_progress_id(name, doc["_id"]), 0)
                if behind > 0:
                    backlog += behind
                    self._hints[name].add(doc["_id"])
        return backlog

    async def _drain_hints(self) -> None:
        for name, collection in self._collections.items():
            while self._hints[name]:
                ids = list(self._hints[name])[: self._batch_size]
                # Taken out before publishing: a write notified meanwhile puts its id back for another round
                # (removing them afterwards would drop that hint and leave its event to the next scan).
                self._hints[name].difference_update(ids)
                try:
                    await self._publish(name, collection, ids)
                except BaseException:
                    self._hints[name].update(ids)
                    raise

    async def _publish(self, name: str, collection: Collection, ids: list[Any]) -> None:
        assert self._progress is not None
        progress = self._progress
        docs = await find_by_ids(collection, ids, {"_id": 1, OUTBOX_FIELD: 1})
        progress_ids = [_progress_id(name, doc["_id"]) for doc in docs]
        marks = await find_by_ids(progress, progress_ids, {"published": 1})
        published = {mark["_id"]: mark["published"] for mark in marks}
        pending = []
        for doc, progress_id in zip(docs, progress_ids, strict=True):
            items = doc.get(OUTBOX_FIELD) or []
            done = published.get(progress_id, 0)
            if len(items) > done:
                pending.append((progress_id, items[done:], len(items)))
        # Send everything first (the idempotent producer keeps per-partition order), then await acks.
        acks = []
        for _, items, _ in pending:
            for item in items:
                acks.append(
                    await self._send(item["topic"], item["key"].encode(), item["value"].encode(), item["headers"])
                )
        await asyncio.gather(*acks)
        now = datetime.now(UTC).timestamp()
        # Only the relay writes progress documents, one per aggregate; `$max` keeps them monotonic.
        await asyncio.gather(
            *(
                progress.update_one({"_id": progress_id}, {"$max": {"published": total}}, upsert=True)
                for progress_id, _, total in pending
            )
        )
        for _, items, _ in pending:
            for item in items:
                self._on_published({**item, "relay_seconds": max(0.0, now - item["created_at"])})


# A safety-net scan reads a whole collection (FerretDB uses no index for it): it waits at least this many
# times its own duration before the next one, so that it never takes more than a small share of the store.
SCAN_SHARE_FACTOR = 10


def scan_pause(interval_s: float, scan_took_s: float) -> float:
    """Seconds until the next safety-net scan: the configured interval, longer when scans are slow."""
    return max(interval_s, SCAN_SHARE_FACTOR * scan_took_s)


def _progress_id(collection: str, doc_id: Any) -> str:
    return f"{collection}:{doc_id}"
