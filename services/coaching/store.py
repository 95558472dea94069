"""Coaching's documents: case files (state, timeline, outbox in one document), checkpoints, loads.

Every case file change is one write under the document lock and a version check, carrying the new
timeline entries (stamped with who and when) and the events to publish.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.coaching.domain import ASSIGNED_FIELD, FOLLOWED_STAGES, OPEN_STAGES, CaseFile
from shared.outbox import OutboxRelay, with_outbox
from shared.schemas import Contract, Envelope, new_envelope
from shared.store import document_lock, update_if

PRODUCER = "coaching"
HIDDEN = {"outbox": 0, "outbox_count": 0, "processed_events": 0}

Step = Callable[[CaseFile], list[Contract]]


class VersionConflict(Exception):
    """Another writer changed the case file first; the caller reloads and tries again."""


class CaseFileStore:
    def __init__(self, db: AsyncDatabase, relay: OutboxRelay) -> None:
        self.files = db["case_files"]
        self.relay = relay
        relay.watch(self.files)

    async def ensure_indexes(self) -> None:
        for key in ("stage", *ASSIGNED_FIELD.values()):
            await self.files.create_index(key)

    async def insert(self, file: CaseFile, by: str) -> bool:
        """Store a new case file; False when it already exists (a redelivered event)."""
        doc = {"_id": str(file.case_id), **file.state(), "version": 0, "timeline": _stamped(file.new_entries, by)}
        try:
            await self.files.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def get(self, case_id: uuid.UUID | str) -> CaseFile | None:
        doc = await self.files.find_one({"_id": str(case_id)}, HIDDEN)
        return CaseFile.from_doc(doc) if doc else None

    async def change(self, case_id: uuid.UUID | str, step: Step, by: str,
                     attempts: int = 5) -> tuple[CaseFile, list[Envelope]] | None:
        """Load, apply `step` (which returns the events), save under a version check; None if unknown.

        The document lock serialises this process's writers; the version check catches another process.
        """
        for _ in range(attempts):
            async with document_lock(self.files, str(case_id)):
                file = await self.get(case_id)
                if file is None:
                    return None
                expected = file.version
                events = step(file)
                if not events and not file.new_entries:
                    return file, []  # nothing happened (e.g. a session already recorded)
                emitted = [new_envelope(e, case_id=file.case_id, producer=PRODUCER,
                                        correlation_id=_uuid(file.correlation_id)) for e in events]
                update = with_outbox({
                    "$set": {**file.state(), "version": expected + 1},
                    "$push": {"timeline": {"$each": _stamped(file.new_entries, by)}},
                }, emitted)
                saved = await update_if(self.files, str(case_id), {"version": expected}, update, locked=True)
            if saved:
                if emitted:
                    self.relay.notify(self.files, str(case_id))
                file.version = expected + 1
                return file, emitted
        raise VersionConflict(str(case_id))

    async def find(self, *, open_only: bool = True, antenna_id: str | None = None) -> list[CaseFile]:
        query: dict[str, Any] = {}
        if open_only:
            query["stage"] = {"$in": [s.value for s in OPEN_STAGES]}
        if antenna_id is not None:
            query["antenna_id"] = antenna_id
        return [CaseFile.from_doc(doc) async for doc in self.files.find(query, HIDDEN).sort("_id", 1)]

    async def loads(self) -> Counter[str]:
        """How many people each volunteer follows now (volunteer id -> open followed cases naming them)."""
        loads: Counter[str] = Counter()
        projection = dict.fromkeys(ASSIGNED_FIELD.values(), 1)
        async for doc in self.files.find({"stage": {"$in": [s.value for s in FOLLOWED_STAGES]}}, projection):
            loads.update(doc[f] for f in ASSIGNED_FIELD.values() if doc.get(f))
        return loads


class CheckpointStore:
    """Collective checkpoints: one meeting, many case files; kept until each file has recorded it."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.checkpoints = db["checkpoints"]

    async def add(self, checkpoint: dict[str, Any]) -> None:
        await self.checkpoints.insert_one(checkpoint)

    async def mark_recorded(self, checkpoint_id: str, refused: dict[str, str]) -> None:
        await self.checkpoints.update_one({"_id": checkpoint_id},
                                          {"$set": {"status": "enregistre", "refused": refused}})

    async def unfinished(self) -> list[dict[str, Any]]:
        return await self.checkpoints.find({"status": "en_cours"}).to_list(None)


def _stamped(entries: list[dict[str, Any]], by: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [{**entry, "at": entry.get("at") or now, "by": by} for entry in entries]


def _uuid(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None
