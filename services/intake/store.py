"""Intake's cases collection: one document per case, carrying its CaseReceived in the outbox."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

from pymongo.asynchronous.database import AsyncDatabase

from services.intake.domain import RECEIVED, Case
from shared.outbox import OutboxRelay, new_outbox
from shared.schemas import CaseReceived, Envelope, ReferrerKind
from shared.schemas.events import PersonalDetails, Situation
from shared.store import STATE_ONLY, insert_once


class CaseStore(Protocol):
    async def add(
        self, received: CaseReceived, event: Envelope, fingerprint: str, private: PersonalDetails | None = None
    ) -> bool:
        """Store a new case with its event to publish; False when the case id exists already. `private`: the
        personal details as given, when the event carries fewer of them."""

    async def get(self, case_id: uuid.UUID) -> Case | None: ...


class PartnerCredentials(Protocol):
    """The partners' HTTP credentials, as token hashes (`relais partners add` writes them, intake reads them)."""

    async def partner_of(self, token_hash: str) -> str | None: ...

    async def add(self, partner: str, token_hash: str) -> None: ...

    async def revoke(self, partner: str) -> int:
        """Delete every credential of the partner; how many there were."""

    async def partners(self) -> list[str]: ...


class MongoCaseStore:
    def __init__(self, db: AsyncDatabase, relay: OutboxRelay) -> None:
        self.cases = db["cases"]
        self.relay = relay
        relay.watch(self.cases)

    async def add(
        self, received: CaseReceived, event: Envelope, fingerprint: str, private: PersonalDetails | None = None
    ) -> bool:
        doc = {
            "_id": str(event.case_id),
            "status": RECEIVED,
            "received_at": received.received_at,
            "situation": received.situation.model_dump(mode="json"),
            "referral": received.referral.model_dump(mode="json"),
            "personal": (private or received.personal).model_dump(mode="json"),
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
        partner=doc["referral"].get("partner"),
    )


class MongoPartnerCredentials:
    """One document per credential, keyed by the token's hash: a request's lookup reads one document."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.credentials = db["partner_credentials"]

    async def partner_of(self, token_hash: str) -> str | None:
        doc = await self.credentials.find_one({"_id": token_hash}, {"partner": 1})
        return None if doc is None else str(doc["partner"])

    async def add(self, partner: str, token_hash: str) -> None:
        await insert_once(self.credentials, {"_id": token_hash, "partner": partner, "created_at": datetime.now(UTC)})

    async def revoke(self, partner: str) -> int:
        return (await self.credentials.delete_many({"partner": partner})).deleted_count

    async def partners(self) -> list[str]:
        return sorted({doc["partner"] async for doc in self.credentials.find({}, {"partner": 1})})
