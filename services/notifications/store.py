"""Notifications to send, and the contacts they go to; idempotent by construction (ids from events)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from services.notifications.domain import PlannedNotification, notification_id
from shared.schemas import CaseReceived, Envelope


class NotificationStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.notifications = db["notifications"]
        self.contacts = db["contacts"]

    async def create_indexes(self) -> None:
        await self.notifications.create_index([("case_id", ASCENDING)])

    async def remember_contact(self, envelope: Envelope, received: CaseReceived) -> None:
        personal = received.personal
        await self.contacts.update_one(
            {"_id": str(envelope.case_id)},
            {"$setOnInsert": {
                "first_name": personal.first_name, "last_name": personal.last_name,
                "email": personal.email, "phone": personal.phone,
                "referral": received.referral.model_dump(mode="json"),
            }},
            upsert=True,
        )

    async def record(self, envelope: Envelope, planned: list[PlannedNotification]) -> None:
        now = datetime.now(UTC)
        for item in planned:
            await self.notifications.update_one(
                {"_id": notification_id(envelope, item)},
                {"$setOnInsert": {
                    "case_id": str(envelope.case_id), "event_id": str(envelope.event_id),
                    "event_type": envelope.event_type, "recipient": item.recipient.value,
                    "template": item.template, "channel": item.channel, "status": "a_envoyer",
                    "created_at": now,
                }},
                upsert=True,
            )

    async def for_case(self, case_id: str) -> list[dict[str, Any]]:
        cursor = self.notifications.find({"case_id": case_id}).sort("created_at", ASCENDING)
        return [{"id": doc.pop("_id"), **doc} async for doc in cursor]
