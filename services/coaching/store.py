"""Coaching's case files: state, timeline and outbox in one document, changed under a version check."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.coaching.domain import CaseFile, Stage
from shared.outbox import OutboxRelay, with_outbox
from shared.schemas import CaseRouted, Contract, Envelope, new_envelope
from shared.store import apply_event, document_lock

PRODUCER = "coaching"


class VersionConflict(Exception):
    """Another writer changed the case file first; the caller reloads and tries again."""


class CaseFileStore:
    def __init__(self, db: AsyncDatabase, relay: OutboxRelay) -> None:
        self.files = db["case_files"]
        self.relay = relay
        relay.watch(self.files)

    async def open(self, cause: Envelope, routed: CaseRouted) -> bool:
        """Open (or re-route) the case file once per CaseRouted event."""
        entry = timeline_entry("oriente", routed.routed_at, association=routed.association.value,
                               reasons=routed.reasons, sequence=routed.sequence)
        applied = await apply_event(
            self.files, str(cause.case_id), cause,
            {
                "$setOnInsert": {"stage": Stage.AWAITING_COMMITTEE.value, "opened_at": datetime.now(UTC),
                                 "sessions": 0, "version": 0},
                "$set": {"association": routed.association.value, "received_at": routed.received_at},
                "$push": {"timeline": entry},
            },
        )
        return applied

    async def get(self, case_id: str) -> CaseFile | None:
        doc = await self.files.find_one({"_id": case_id}, {"outbox": 0, "outbox_count": 0, "processed_events": 0})
        return CaseFile.from_doc(doc) if doc else None

    async def change(self, case_id: uuid.UUID, step: Callable[[CaseFile], tuple[Contract | None, dict[str, Any]]],
                     attempts: int = 5) -> CaseFile | None:
        """Load, apply `step` (which returns the event and the timeline entry), save under a version check.

        The document lock serialises this process's writers; the version check catches another process.
        """
        for _ in range(attempts):
            async with document_lock(self.files, str(case_id)):
                file = await self.get(str(case_id))
                if file is None:
                    return None
                expected = file.version
                event, entry = step(file)
                emitted = [new_envelope(event, case_id=case_id, producer=PRODUCER)] if event else []
                update = with_outbox({
                    "$set": {
                        "stage": file.stage.value,
                        "approved_on": file.approved_on.isoformat() if file.approved_on else None,
                        "closed_on": file.closed_on.isoformat() if file.closed_on else None,
                        "sessions": file.sessions,
                        "version": expected + 1,
                    },
                    "$push": {"timeline": entry},
                }, emitted)
                result = await self.files.update_one({"_id": str(case_id), "version": expected}, update)
            if result.modified_count == 1:
                if emitted:
                    self.relay.notify(self.files, str(case_id))
                file.version = expected + 1
                file.timeline.append(entry)
                return file
        raise VersionConflict(str(case_id))


def timeline_entry(kind: str, at: datetime | None = None, **details: Any) -> dict[str, Any]:
    return {"kind": kind, "at": at or datetime.now(UTC), **details}
