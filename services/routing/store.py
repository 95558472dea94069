"""Routing's stores: a Protocol each, and their PyMongo implementation (FerretDB locally, MongoDB in compose).

- `routes`: one document per case: situation, current decision, history of decisions, outbox.
- `antennas`: the directory (seeded on first start, edited through the admin API).
- `capacities`: per antenna, the free places coaching last reported and the places held since.
- `waitlists`: per association, the case ids waiting for a place, in order.
Every write is one single-document write through `shared.store`, idempotent on retry ($addToSet, exact
$pullAll, the causing event's id).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import TypeAdapter
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.routing.domain import (
    AntennaEntry,
    Capacity,
    CapacityReport,
    Reservation,
    RoutedCase,
)
from services.routing.geo import Location
from shared.outbox import OutboxRelay
from shared.schemas import Association, CaseRouted, Envelope, ReferrerKind
from shared.schemas.events import Situation
from shared.store import (
    STATE_ONLY,
    apply_event,
    insert_many_once,
    insert_once,
    update_by_id,
    update_by_id_returning,
    update_if,
    was_applied,
)

DIRECTORY_MARKER = "directory-seeded"
_LOCATION: TypeAdapter[Location | None] = TypeAdapter(Location | None)


@dataclass(frozen=True)
class Decision:
    """A routing decision to record, and what the case's record keeps beside it."""

    routed: CaseRouted
    situation: Situation
    location: Location | None
    apesa_done: bool
    # Kept from the first decision on: who referred the case and when intake received it.
    referral_kind: ReferrerKind | None = None
    received_at: datetime | None = None


# --- protocols ----------------------------------------------------------------------------------------------


class RouteStore(Protocol):
    async def was_applied(self, case_id: uuid.UUID, event_id: uuid.UUID) -> bool: ...

    async def record(self, case_id: uuid.UUID, cause: Envelope, decision: Decision, event: Envelope) -> bool:
        """Store the decision with `event` to publish, once per `cause`; False when `cause` was applied."""

    async def get(self, case_id: uuid.UUID) -> RoutedCase | None: ...


class AntennaStore(Protocol):
    async def seed(self, entries: list[AntennaEntry]) -> bool:
        """Insert the default antennas on the first start only (later starts keep staff's edits)."""

    async def all(self) -> list[AntennaEntry]: ...

    async def get(self, antenna_id: str) -> AntennaEntry | None: ...

    async def put(self, entry: AntennaEntry) -> tuple[AntennaEntry, bool]:
        """Create or replace the antenna's fields; True when it was created."""

    async def patch(self, antenna_id: str, changes: Mapping[str, Any]) -> AntennaEntry | None: ...


class CapacityStore(Protocol):
    async def all(self) -> dict[str, Capacity]: ...

    async def report(self, antenna_id: str, association: Association, report: CapacityReport) -> bool:
        """Take a newer report in and forget the places it counts; False for a report not newer."""

    async def hold(self, antenna_id: str, reservation: Reservation) -> bool:
        """Hold a place once per reservation key; False when that key holds one already."""

    async def release(self, case_id: str, keep_key: str | None = None) -> None:
        """Let go of the places the case holds, except the one of `keep_key`."""


class WaitlistStore(Protocol):
    async def entries(self, association: Association) -> list[str]: ...

    async def add(self, association: Association, case_id: str) -> tuple[int, int]:
        """(position of the case, length of the list); adding twice keeps the first position."""

    async def remove(self, case_id: str) -> dict[Association, int]:
        """Take the case off every waitlist; the new lengths of the lists it was on."""


@dataclass(frozen=True)
class RoutingStores:
    routes: RouteStore
    antennas: AntennaStore
    capacities: CapacityStore
    waitlists: WaitlistStore


# --- MongoDB ------------------------------------------------------------------------------------------------


def mongo_stores(db: AsyncDatabase, relay: OutboxRelay) -> RoutingStores:
    return RoutingStores(
        MongoRouteStore(db, relay), MongoAntennaStore(db), MongoCapacityStore(db), MongoWaitlistStore(db)
    )


class MongoRouteStore:
    def __init__(self, db: AsyncDatabase, relay: OutboxRelay) -> None:
        self.routes = db["routes"]
        self.relay = relay
        relay.watch(self.routes)

    async def was_applied(self, case_id: uuid.UUID, event_id: uuid.UUID) -> bool:
        return await was_applied(self.routes, str(case_id), event_id)

    async def record(self, case_id: uuid.UUID, cause: Envelope, decision: Decision, event: Envelope) -> bool:
        routed = decision.routed.model_dump(mode="json")
        update: dict[str, Any] = {
            "$set": {
                "association": routed["association"],
                "status": routed["status"],
                "current": routed,
                "situation": decision.situation.model_dump(mode="json"),
                "location": _LOCATION.dump_python(decision.location, mode="json"),
                "apesa_done": decision.apesa_done,
            },
            "$push": {"history": routed},
        }
        first = {
            key: value
            for key, value in (("referral_kind", decision.referral_kind), ("received_at", decision.received_at))
            if value is not None
        }
        if first:
            update["$setOnInsert"] = first
        applied = await apply_event(self.routes, str(case_id), cause, update, emit=[event])
        if applied:
            self.relay.notify(self.routes, str(case_id))
        return applied

    async def get(self, case_id: uuid.UUID) -> RoutedCase | None:
        doc = await self.routes.find_one({"_id": str(case_id)}, STATE_ONLY)
        return None if doc is None else RoutedCase.model_validate({**doc, "case_id": doc["_id"]})


class MongoAntennaStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.antennas = db["antennas"]
        self.meta = db["meta"]

    async def seed(self, entries: list[AntennaEntry]) -> bool:
        if await self.meta.find_one({"_id": DIRECTORY_MARKER}) is not None:
            return False
        await insert_many_once(self.antennas, [_antenna_doc(entry) for entry in entries])
        await insert_once(self.meta, {"_id": DIRECTORY_MARKER, "at": datetime.now(UTC)})
        return True

    async def all(self) -> list[AntennaEntry]:
        return [_antenna(doc) for doc in await self.antennas.find({}).sort("_id", 1).to_list(None)]

    async def get(self, antenna_id: str) -> AntennaEntry | None:
        doc = await self.antennas.find_one({"_id": antenna_id})
        return None if doc is None else _antenna(doc)

    async def put(self, entry: AntennaEntry) -> tuple[AntennaEntry, bool]:
        doc = _antenna_doc(entry)
        if await insert_once(self.antennas, doc):
            return entry, True
        fields = {key: value for key, value in doc.items() if key != "_id"}
        after = await update_by_id_returning(self.antennas, entry.id, {"$set": fields}, upsert=True)
        assert after is not None  # upserted
        return _antenna(after), False

    async def patch(self, antenna_id: str, changes: Mapping[str, Any]) -> AntennaEntry | None:
        after = await update_by_id_returning(self.antennas, antenna_id, {"$set": dict(changes)})
        return None if after is None else _antenna(after)


class MongoCapacityStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.capacities = db["capacities"]

    async def all(self) -> dict[str, Capacity]:
        return {doc["_id"]: _capacity(doc) async for doc in self.capacities.find({})}

    async def report(self, antenna_id: str, association: Association, report: CapacityReport) -> bool:
        doc = await self.capacities.find_one({"_id": antenna_id})
        current = _capacity(doc) if doc is not None else Capacity(antenna_id=antenna_id)
        if not current.accepts(report):
            return False
        update: dict[str, Any] = {"$set": {"reported": report.model_dump(), "association": association.value}}
        counted = {r.key for r in current.counted_in(report)}
        if counted:
            items = [r for r in (doc or {}).get("reservations", []) if r["key"] in counted]
            update["$pullAll"] = {"reservations": items, "reservation_keys": [r["key"] for r in items]}
        # Written only if no other report came in since the read (a reservation meanwhile is kept).
        return await update_if(
            self.capacities, antenna_id, {"reported": (doc or {}).get("reported")}, update, upsert=doc is None
        )

    async def hold(self, antenna_id: str, reservation: Reservation) -> bool:
        try:
            result = await update_by_id(
                self.capacities,
                antenna_id,
                {"$push": {"reservation_keys": reservation.key, "reservations": reservation.model_dump()}},
                upsert=True,
                condition={"reservation_keys": {"$ne": reservation.key}},
            )
        except DuplicateKeyError:  # the key is there: the filter missed, the upsert found the document
            return False
        return result.modified_count == 1 or result.upserted_id is not None

    async def release(self, case_id: str, keep_key: str | None = None) -> None:
        # One document per antenna: a handful, read whole.
        async for doc in self.capacities.find({}):
            items = [r for r in doc.get("reservations", []) if r["case_id"] == case_id and r["key"] != keep_key]
            if items:
                await update_by_id(
                    self.capacities,
                    doc["_id"],
                    {"$pullAll": {"reservations": items, "reservation_keys": [r["key"] for r in items]}},
                )


class MongoWaitlistStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.waitlists = db["waitlists"]

    async def entries(self, association: Association) -> list[str]:
        doc = await self.waitlists.find_one({"_id": association.value})
        return list((doc or {}).get("entries", []))

    async def add(self, association: Association, case_id: str) -> tuple[int, int]:
        doc = await update_by_id_returning(
            self.waitlists, association.value, {"$addToSet": {"entries": case_id}}, upsert=True
        )
        assert doc is not None  # upserted
        return doc["entries"].index(case_id) + 1, len(doc["entries"])

    async def remove(self, case_id: str) -> dict[Association, int]:
        lengths = {}
        # One document per association: the filter reads two documents.
        async for doc in self.waitlists.find({"entries": case_id}, {"_id": 1}):
            after = await update_by_id_returning(self.waitlists, doc["_id"], {"$pullAll": {"entries": [case_id]}})
            lengths[Association(doc["_id"])] = len((after or {}).get("entries", []))
        return lengths


def _antenna_doc(entry: AntennaEntry) -> dict[str, Any]:
    return {
        "_id": entry.id,
        **entry.model_dump(mode="json", exclude={"id", "updated_at"}),
        "updated_at": entry.updated_at,
    }


def _antenna(doc: dict[str, Any]) -> AntennaEntry:
    return AntennaEntry.model_validate({**doc, "id": doc["_id"]})


def _capacity(doc: dict[str, Any]) -> Capacity:
    return Capacity(
        antenna_id=doc["_id"], reported=doc.get("reported"), reservations=tuple(doc.get("reservations", ()))
    )
