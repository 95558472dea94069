"""Routing's decisions: one document per case with its decision history and its outbox."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.outbox import OutboxRelay
from shared.schemas import CaseRouted, Envelope
from shared.store import apply_event


class RoutingStore:
    def __init__(self, db: AsyncDatabase, relay: OutboxRelay) -> None:
        self.routes = db["routes"]
        self.relay = relay
        relay.watch(self.routes)

    async def record(self, cause: Envelope, routed: CaseRouted, event: Envelope) -> bool:
        decision = routed.model_dump(mode="json")
        applied = await apply_event(
            self.routes, str(cause.case_id), cause,
            {
                "$set": {"association": decision["association"], "current": decision},
                "$setOnInsert": {"situation": cause.payload["situation"],
                                 "referral_kind": cause.payload["referral"]["kind"],
                                 "received_at": cause.payload["received_at"]},
                "$push": {"history": decision},
            },
            emit=[event],
        )
        if applied:
            self.relay.notify(self.routes, str(cause.case_id))
        return applied

    async def get(self, case_id: str) -> dict[str, Any] | None:
        return await self.routes.find_one({"_id": case_id}, {"outbox": 0, "outbox_count": 0, "processed_events": 0})
