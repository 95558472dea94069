"""Transactional outbox kept inside the aggregate's own document, and the relay that publishes it.

A service never "writes the database, then publishes": the events an effect causes are pushed into the
`outbox` array of the same document in the same write. The relay publishes them in order, keyed by case
id, then removes exactly those items (`$pullAll`). A crash in between republishes on restart; consumers
are idempotent, so at-least-once delivery gives exactly-once effects.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from shared.schemas import Envelope

OUTBOX_FIELD = "outbox"
log = logging.getLogger("relais.outbox")

# (topic, key, value, headers) -> a future resolved when the broker has acknowledged the record.
Send = Callable[[str, bytes, bytes, dict[str, str]], Awaitable[Awaitable[Any]]]


def outbox_items(envelopes: Iterable[Envelope]) -> list[dict[str, Any]]:
    return [
        {
            "event_id": str(e.event_id),
            "event_type": e.event_type,
            "topic": e.spec.topic,
            "key": e.key.decode(),
            "headers": e.headers(),
            "value": e.encode().decode(),
            "created_at": e.occurred_at.timestamp(),
        }
        for e in envelopes
    ]


class OutboxRelay:
    """Publishes pending outbox items of the given collections.

    Writers call `notify(collection, doc_id)` after a write for low latency; a scan at start and every
    `scan_interval_s` finds whatever a crash or a broker outage left behind.
    """

    def __init__(
        self,
        send: Send,
        *,
        scan_interval_s: float = 10.0,
        on_published: Callable[[dict[str, Any]], None] | None = None,
        on_backlog: Callable[[int], None] | None = None,
        batch_size: int = 200,
    ) -> None:
        self._collections: dict[str, AsyncCollection] = {}
        self._send = send
        self._scan_interval_s = scan_interval_s
        self._on_published = on_published or (lambda item: None)
        self._on_backlog = on_backlog or (lambda n: None)
        self._batch_size = batch_size
        self._hints: dict[str, set[Any]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._next_scan = 0.0

    def watch(self, collection: AsyncCollection) -> None:
        """Relay the outbox of this collection (called by the store that owns it)."""
        self._collections[collection.name] = collection
        self._hints[collection.name] = set()

    @property
    def watching(self) -> bool:
        return bool(self._collections)

    def notify(self, collection: AsyncCollection, doc_id: Any) -> None:
        self._hints[collection.name].add(doc_id)
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        # One last best-effort drain so that a clean shutdown leaves nothing behind.
        try:
            await asyncio.wait_for(self._drain_hints(), timeout=5)
        except Exception:  # noqa: BLE001 - the next start's scan will find the rest
            pass

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                if time.monotonic() >= self._next_scan:
                    backlog = await self._scan()
                    self._on_backlog(backlog)
                    self._next_scan = time.monotonic() + self._scan_interval_s
                await self._drain_hints()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - broker or store down: retry with backoff
                log.warning("outbox relay failed, retrying", extra={"error": type(exc).__name__,
                                                                   "retry_in_s": backoff})
                self._next_scan = 0.0
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.05, self._next_scan - time.monotonic()))
            except TimeoutError:
                pass

    async def _scan(self) -> int:
        """Find every document with pending items (after a crash, or items whose hint was lost)."""
        backlog = 0
        for name, collection in self._collections.items():
            cursor = collection.find({f"{OUTBOX_FIELD}.0": {"$exists": True}}, {"_id": 1, OUTBOX_FIELD: 1})
            async for doc in cursor:
                backlog += len(doc[OUTBOX_FIELD])
                self._hints[name].add(doc["_id"])
        return backlog

    async def _drain_hints(self) -> None:
        self._wake.clear()
        for name, collection in self._collections.items():
            while self._hints[name]:
                ids = list(self._hints[name])[: self._batch_size]
                docs = await collection.find(
                    {"_id": {"$in": ids}}, {"_id": 1, OUTBOX_FIELD: 1}
                ).to_list(None)
                await self._publish(collection, docs)
                self._hints[name].difference_update(ids)

    async def _publish(self, collection: AsyncCollection, docs: list[dict[str, Any]]) -> None:
        pending = [(doc, doc.get(OUTBOX_FIELD) or []) for doc in docs]
        # Send everything first (the idempotent producer keeps per-partition order), then await acks.
        acks = []
        for _doc, items in pending:
            for item in items:
                acks.append(await self._send(item["topic"], item["key"].encode(), item["value"].encode(),
                                             item["headers"]))
        await asyncio.gather(*acks)
        now = datetime.now(UTC).timestamp()
        for doc, items in pending:
            if not items:
                continue
            await collection.update_one({"_id": doc["_id"]}, {"$pullAll": {OUTBOX_FIELD: items}})
            for item in items:
                self._on_published({**item, "relay_seconds": max(0.0, now - item["created_at"])})
