"""Intake's cases collection: one document per case, carrying its CaseReceived in the outbox."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.outbox import OutboxRelay, new_outbox
from shared.schemas import CaseReceived, Envelope


class CaseStore:
    def __init__(self, db: AsyncDatabase, relay: OutboxRelay) -> None:
        self.cases = db["cases"]
        self.relay = relay
        relay.watch(self.cases)

    async def add(self, case: CaseReceived, event: Envelope, fingerprint: str) -> tuple[dict[str, Any], bool]:
        """Insert the case with its event; on a resubmission return the stored case and False."""
        doc = {
            "_id": str(event.case_id),
            "status": "received",
            "received_at": case.received_at,
            "situation": case.situation.model_dump(mode="json"),
            "referral": case.referral.model_dump(mode="json"),
            "personal": case.personal.model_dump(mode="json"),
            "fingerprint": fingerprint,
            **new_outbox([event]),
        }
        try:
            await self.cases.insert_one(doc)
        except DuplicateKeyError:
            existing = await self.get(str(event.case_id))
            if existing is None:  # deleted in between: let the client retry
                raise
            return existing, False
        self.relay.notify(self.cases, doc["_id"])
        return doc, True


    async def get(self, case_id: str) -> dict[str, Any] | None:
        return await self.cases.find_one({"_id": case_id}, {"outbox": 0, "outbox_count": 0})
