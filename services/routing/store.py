"""Routing's collections (PyMongo async; FerretDB locally, MongoDB in compose).

- `routes`: one document per case: situation, current decision, history of decisions, outbox.
- `antennas`: the directory (seeded on first start, edited through the admin API).
- `capacities`: per antenna, the free places coaching last reported and the cases routed there since.
- `waitlists`: per association, the case ids waiting for a place, in order.
Every write is a single-document update, idempotent on retry ($addToSet, exact $pullAll, event markers),
made under `document_lock` (FerretDB applies updates as read-modify-write: concurrent ones would be lost).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.routing.domain import as_aware
from shared.outbox import OutboxRelay
from shared.schemas import AntennaCapacityChanged, CaseRouted, Envelope
from shared.store import PROCESSED_FIELD, apply_event, document_lock

DIRECTORY_MARKER = "directory-seeded"


class RoutingStore:
    def __init__(self, db: AsyncDatabase, relay: OutboxRelay) -> None:
        self.routes = db["routes"]
        self.antennas = db["antennas"]
        self.capacities = db["capacities"]
        self.waitlists = db["waitlists"]
        self.meta = db["meta"]
        self.relay = relay
        relay.watch(self.routes)

    # --- cases ---------------------------------------------------------------------------------------------

    async def processed(self, case_id: str, event_id: Any) -> bool:
        return await self.routes.find_one({"_id": case_id, PROCESSED_FIELD: str(event_id)}, {"_id": 1}) is not None

    async def record(self, case_id: str, cause: Envelope, routed: CaseRouted, event: Envelope,
                     situation: dict[str, Any], extra: dict[str, Any] | None = None,
                     on_insert: dict[str, Any] | None = None) -> bool:
        """Store a decision (current + history) with its CaseRouted in the outbox, once per cause."""
        decision = routed.model_dump(mode="json")
        update: dict[str, Any] = {
            "$set": {"association": decision["association"], "status": decision["status"],
                     "current": decision, "situation": situation, **(extra or {})},
            "$push": {"history": decision},
        }
        if on_insert:
            update["$setOnInsert"] = on_insert
        applied = await apply_event(self.routes, case_id, cause, update, emit=[event])
        if applied:
            self.relay.notify(self.routes, case_id)
        return applied

    async def get(self, case_id: str) -> dict[str, Any] | None:
        return await self.routes.find_one({"_id": case_id}, {"outbox": 0, "outbox_count": 0, PROCESSED_FIELD: 0})

    # --- directory -----------------------------------------------------------------------------------------

    async def seed_directory(self, antennas: list[dict[str, Any]]) -> bool:
        """Insert the default antennas once; later starts keep what staff edited (or deleted)."""
        if await self.meta.find_one({"_id": DIRECTORY_MARKER}) is not None:
            return False
        now = datetime.now(UTC)
        for antenna in antennas:
            try:
                await self.antennas.insert_one({**antenna, "updated_at": now})
            except DuplicateKeyError:
                pass
        try:
            await self.meta.insert_one({"_id": DIRECTORY_MARKER, "at": now})
        except DuplicateKeyError:
            pass
        return True

    async def list_antennas(self) -> list[dict[str, Any]]:
        return await self.antennas.find({}).sort("_id", 1).to_list(None)

    async def get_antenna(self, antenna_id: str) -> dict[str, Any] | None:
        return await self.antennas.find_one({"_id": antenna_id})

    async def put_antenna(self, antenna_id: str, fields: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create or replace the editable fields; True when it was created."""
        async with document_lock(self.antennas, antenna_id):
            existed = await self.antennas.find_one({"_id": antenna_id}, {"_id": 1}) is not None
            doc = await self.antennas.find_one_and_update(
                {"_id": antenna_id}, {"$set": {**fields, "updated_at": datetime.now(UTC)}},
                upsert=True, return_document=ReturnDocument.AFTER)
        return doc, not existed

    async def patch_antenna(self, antenna_id: str, fields: dict[str, Any]) -> dict[str, Any] | None:
        async with document_lock(self.antennas, antenna_id):
            return await self.antennas.find_one_and_update(
                {"_id": antenna_id}, {"$set": {**fields, "updated_at": datetime.now(UTC)}},
                return_document=ReturnDocument.AFTER)

    # --- capacity ------------------------------------------------------------------------------------------

    async def list_capacities(self) -> dict[str, dict[str, Any]]:
        return {doc["_id"]: doc async for doc in self.capacities.find({})}

    async def update_capacity(self, report: AntennaCapacityChanged, event_id: Any) -> bool:
        """Keep the newest report only (events of one antenna are ordered, but replays may be old)."""
        as_of = report.as_of
        async with document_lock(self.capacities, report.antenna_id):
            current = await self.capacities.find_one({"_id": report.antenna_id})
            reported = (current or {}).get("reported")
            if reported is not None and as_aware(reported["as_of"]) >= as_of:
                return False
            value = {"coach_slots_free": report.coach_slots_free, "sponsor_slots_free": report.sponsor_slots_free,
                     "as_of": as_of, "event_id": str(event_id)}
            await self.capacities.update_one(
                {"_id": report.antenna_id},
                {"$set": {"reported": value, "association": report.association.value}}, upsert=True)
            # Reservations made before this report are counted in it: forget them (exact items only).
            stale = [r for r in (current or {}).get("reservations", []) if as_aware(r["at"]) <= as_of]
            if stale:
                await self.capacities.update_one(
                    {"_id": report.antenna_id},
                    {"$pullAll": {"reservations": stale, "reservation_keys": [r["key"] for r in stale]}})
        return True

    async def reserve(self, antenna_id: str, case_id: str, event_id: Any, at: datetime) -> bool:
        """Hold a place for the case, once per causing event (a retry finds the key and changes nothing)."""
        key = f"{case_id}/{event_id}"
        try:
            async with document_lock(self.capacities, antenna_id):
                await self.capacities.update_one(
                    {"_id": antenna_id, "reservation_keys": {"$ne": key}},
                    {"$push": {"reservation_keys": key,
                               "reservations": {"key": key, "case_id": case_id, "at": at}}},
                    upsert=True)
        except DuplicateKeyError:
            return False
        return True

    async def release(self, case_id: str, keep_event_id: Any = None) -> None:
        """Free the places a case holds, except the one made for `keep_event_id` (a handful of antennas)."""
        keep = f"{case_id}/{keep_event_id}"
        async for doc in self.capacities.find({}):
            items = [r for r in doc.get("reservations", []) if r["case_id"] == case_id and r["key"] != keep]
            if items:
                async with document_lock(self.capacities, doc["_id"]):
                    await self.capacities.update_one(
                        {"_id": doc["_id"]},
                        {"$pullAll": {"reservations": items, "reservation_keys": [r["key"] for r in items]}})

    # --- waitlists -----------------------------------------------------------------------------------------

    async def waitlist(self, association: str) -> list[str]:
        doc = await self.waitlists.find_one({"_id": association})
        return list((doc or {}).get("entries", []))

    async def waitlist_add(self, association: str, case_id: str) -> tuple[int, int]:
        """(position of the case, length of the list); adding twice keeps the first position."""
        async with document_lock(self.waitlists, association):
            doc = await self.waitlists.find_one_and_update(
                {"_id": association}, {"$addToSet": {"entries": case_id}}, upsert=True,
                return_document=ReturnDocument.AFTER)
        return doc["entries"].index(case_id) + 1, len(doc["entries"])

    async def waitlist_remove(self, case_id: str) -> dict[str, int]:
        """Take the case off every waitlist; returns the new lengths of the lists it was on."""
        lengths = {}
        async for doc in self.waitlists.find({"entries": case_id}):
            async with document_lock(self.waitlists, doc["_id"]):
                after = await self.waitlists.find_one_and_update(
                    {"_id": doc["_id"]}, {"$pullAll": {"entries": [case_id]}},
                    return_document=ReturnDocument.AFTER)
            lengths[doc["_id"]] = len((after or {}).get("entries", []))
        return lengths

