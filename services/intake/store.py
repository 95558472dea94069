"""Intake's cases collection: one document per case, carrying its CaseReceived in the outbox."""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from pymongo.asynchronous.database import AsyncDatabase

from services.intake.domain import RECEIVED, Case
from shared.outbox import OutboxRelay, new_outbox
from shared.schemas import CaseReceived, Envelope, ReferrerKind
from shared.schemas.events import Situation
from shared.store import STATE_ONLY, insert_once


class CaseStore(Protocol):
    async def add(self, received: CaseReceived, event: Envelope, fingerprint: str) -> bool:
        """Store a new case with its event to publish; False when the case id exists already."""

    async def get(self, case_id: uuid.UUID) -> Case | None: ...


class MongoCaseStore:
    def __init__(self, db: AsyncDatabase, relay: OutboxRelay) -> None:
        self.cases = db["cases"]
        self.relay = relay
        relay.watch(self.cases)

    async def add(self, received: CaseReceived, event: Envelope, fingerprint: str) -> bool:
        doc = {
            "_id": str(event.case_id),
            "status": RECEIVED,
            "received_at": received.received_at,
            "situation": received.situation.model_dump(mode="json"),
            "referral": received.referral.model_dump(mode="json"),
            "personal": received.personal.model_dump(mode="json"),
            "fingerprint": fingerprint,
            **new_outbox([event]),
        }
        if not await insert_once(self.cases, doc):
            return False
        self.relay.notify(self.cases, doc["_id"])
        return True

    async def get(self, case_id: uuid.UUID) -> Case | None:
        doc = await self.cases.find_one({"_id": str(case_id)}, {**STATE_ONLY, "personal": 0})
        return None if doc is None else _case(doc)


def _case(doc: dict[str, Any]) -> Case:
    return Case(
        case_id=uuid.UUID(doc["_id"]),
        status=doc["status"],
        received_at=doc["received_at"],
        situation=Situation.model_validate(doc["situation"]),
        referral_kind=ReferrerKind(doc["referral"]["kind"]),
        fingerprint=doc["fingerprint"],
    )
