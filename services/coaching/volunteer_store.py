"""Volunteers' profiles, and each antenna's free places with the AntennaCapacityChanged events they cause.

An antenna document holds the last free places published and its own outbox: a recount that finds other
numbers stores them and the event in one write, so routing learns every change, in order, exactly as
stored. Recounts run after each change and periodically (certifications expire with time).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.coaching.store import PRODUCER, VersionConflict
from services.coaching.volunteers import Role, Volunteer
from shared.outbox import OutboxRelay, new_outbox, with_outbox
from shared.schemas import AntennaCapacityChanged, Association, new_envelope
from shared.store import document_lock


class VolunteerStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.volunteers = db["volunteers"]

    def lock(self, volunteer_id: str):  # noqa: ANN201 - an async context manager
        """Held while a volunteer's load is counted and a case is assigned to them (no overbooking)."""
        return document_lock(self.volunteers, volunteer_id)

    async def add(self, volunteer: Volunteer) -> bool:
        try:
            await self.volunteers.insert_one(volunteer.to_doc())
        except DuplicateKeyError:
            return False
        return True

    async def get(self, volunteer_id: str) -> Volunteer | None:
        doc = await self.volunteers.find_one({"_id": volunteer_id})
        return Volunteer.from_doc(doc) if doc else None

    async def find(self, antenna_id: str | None = None, role: Role | None = None) -> list[Volunteer]:
        query: dict[str, Any] = {}
        if antenna_id is not None:
            query["antenna_id"] = antenna_id
        if role is not None:
            query["role"] = role.value
        return [Volunteer.from_doc(doc) async for doc in self.volunteers.find(query).sort("_id", 1)]

    async def change(self, volunteer_id: str, edit: Callable[[Volunteer], None], attempts: int = 5) -> Volunteer | None:
        for _ in range(attempts):
            async with self.lock(volunteer_id):
                volunteer = await self.get(volunteer_id)
                if volunteer is None:
                    return None
                expected = volunteer.version
                edit(volunteer)
                volunteer.version = expected + 1
                result = await self.volunteers.replace_one({"_id": volunteer_id, "version": expected},
                                                           volunteer.to_doc())
            if result.modified_count == 1:
                return volunteer
        raise VersionConflict(volunteer_id)


class AntennaCapacityStore:
    def __init__(self, db: AsyncDatabase, relay: OutboxRelay, association: Association) -> None:
        self.antennas = db["antennas"]
        self.relay = relay
        self.association = association
        relay.watch(self.antennas)

    async def publish_if_changed(self, antenna_id: str, free: dict[Role, int], now: datetime,
                                 attempts: int = 5) -> bool:
        """Store the antenna's free places with an AntennaCapacityChanged event, if they changed."""
        coach, sponsor = free[Role.COACH], free[Role.SPONSOR]
        for _ in range(attempts):
            async with document_lock(self.antennas, antenna_id):
                doc = await self.antennas.find_one({"_id": antenna_id}, {"outbox": 0})
                if doc and (doc["coach_slots_free"], doc["sponsor_slots_free"]) == (coach, sponsor):
                    return False
                event = new_envelope(
                    AntennaCapacityChanged(association=self.association, antenna_id=antenna_id,
                                           coach_slots_free=coach, sponsor_slots_free=sponsor, as_of=now),
                    antenna_id=antenna_id, producer=PRODUCER)
                values = {"association": self.association.value, "coach_slots_free": coach,
                          "sponsor_slots_free": sponsor, "as_of": now}
                if doc is None:
                    try:
                        await self.antennas.insert_one({"_id": antenna_id, **values, "version": 1,
                                                        **new_outbox([event])})
                        stored = True
                    except DuplicateKeyError:
                        stored = False
                else:
                    result = await self.antennas.update_one(
                        {"_id": antenna_id, "version": doc["version"]},
                        with_outbox({"$set": {**values, "version": doc["version"] + 1}}, [event]))
                    stored = result.modified_count == 1
            if stored:
                self.relay.notify(self.antennas, antenna_id)
                return True
        raise VersionConflict(antenna_id)

    async def find(self) -> list[dict[str, Any]]:
        projection = {"outbox": 0, "outbox_count": 0}
        return await self.antennas.find({}, projection).sort("_id", 1).to_list(None)
