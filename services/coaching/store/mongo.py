"""The stores of coaching on PyMongo (FerretDB locally, MongoDB in compose).

FerretDB's constraints (writes of one document serialised, versioned changes retried, inserts keyed by a
deterministic id) are handled once in `shared/store.py`; the stores here only say what they read and write.
"""

from __future__ import annotations

import inspect
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import date
from typing import Any, TypeVar

from pymongo.asynchronous.database import AsyncDatabase

from services.coaching.audit import AuditEntry
from services.coaching.domain.applications import Application, ApplicationStatus
from services.coaching.domain.case_file import ASSIGNED_FIELD, FOLLOWED_STAGES, OPEN_STAGES, CaseFile
from services.coaching.domain.checkpoint import Checkpoint, CheckpointStatus
from services.coaching.domain.volunteers import AntennaCapacity, Volunteer
from services.coaching.store import CaseDecision, CoachingStores
from shared.outbox import OutboxRelay
from shared.schemas import Envelope, VolunteerRole
from shared.store import STATE_ONLY, Change, change_versioned, insert_once, update_by_id

R = TypeVar("R")


class MongoCaseFileStore:
    """Case files: state, timeline and outbox in one document, changed under a version check."""

    def __init__(self, db: AsyncDatabase, relay: OutboxRelay) -> None:
        self.files = db["case_files"]
        self.relay = relay
        relay.watch(self.files)

    async def ensure_indexes(self) -> None:
        for key in ("stage", *ASSIGNED_FIELD.values()):
            await self.files.create_index(key)

    async def open(self, file: CaseFile) -> bool:
        return await insert_once(
            self.files, {"_id": str(file.case_id), **file.state(), "version": 0, "timeline": file.new_entries}
        )

    async def get(self, case_id: uuid.UUID) -> CaseFile | None:
        doc = await self.files.find_one({"_id": str(case_id)}, STATE_ONLY)
        return CaseFile.from_doc(doc) if doc else None

    async def change(self, case_id: uuid.UUID, decide: CaseDecision) -> CaseFile | None:
        key = str(case_id)

        async def decision(doc: dict[str, Any] | None) -> Change[CaseFile] | None:
            if doc is None:
                return None
            file = CaseFile.from_doc(doc)
            emitted = decide(file)
            if inspect.isawaitable(emitted):
                emitted = await emitted
            if not emitted and not file.new_entries:
                return Change({}, result=file)  # nothing happened (e.g. a session already recorded)
            file.version += 1
            update: dict[str, Any] = {"$set": file.state()}
            if file.new_entries:
                update["$push"] = {"timeline": {"$each": file.new_entries}}
            return Change(update, result=file, emit=emitted)

        changed = await change_versioned(
            self.files, key, decision, projection=STATE_ONLY, on_emitted=lambda: self.relay.notify(self.files, key)
        )
        return None if changed is None else changed.result

    async def find(self, *, open_only: bool = True, antenna_id: str | None = None) -> list[CaseFile]:
        query: dict[str, Any] = {}
        if open_only:
            query["stage"] = {"$in": [s.value for s in OPEN_STAGES]}
        if antenna_id is not None:
            query["antenna_id"] = antenna_id
        return [CaseFile.from_doc(doc) async for doc in self.files.find(query, STATE_ONLY).sort("_id", 1)]

    async def loads(self) -> Counter[str]:
        loads: Counter[str] = Counter()
        projection = dict.fromkeys(ASSIGNED_FIELD.values(), 1)
        async for doc in self.files.find({"stage": {"$in": [s.value for s in FOLLOWED_STAGES]}}, projection):
            loads.update(doc[f] for f in ASSIGNED_FIELD.values() if doc.get(f))
        return loads


class MongoVolunteerStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.volunteers = db["volunteers"]

    async def add(self, volunteer: Volunteer) -> bool:
        return await insert_once(self.volunteers, {**volunteer.to_doc(), "version": 0})

    async def get(self, volunteer_id: str) -> Volunteer | None:
        doc = await self.volunteers.find_one({"_id": volunteer_id})
        return Volunteer.from_doc(doc) if doc else None

    async def find(self, antenna_id: str | None = None, role: VolunteerRole | None = None) -> list[Volunteer]:
        query: dict[str, Any] = {}
        if antenna_id is not None:
            query["antenna_id"] = antenna_id
        if role is not None:
            query["role"] = role.value
        return [Volunteer.from_doc(doc) async for doc in self.volunteers.find(query).sort("_id", 1)]

    async def change(self, volunteer_id: str, edit: Callable[[Volunteer], None]) -> Volunteer | None:
        def decide(doc: dict[str, Any] | None) -> Change[Volunteer] | None:
            if doc is None:
                return None
            volunteer = Volunteer.from_doc(doc)
            edit(volunteer)
            return Change({"$set": volunteer.state()}, result=volunteer)

        changed = await change_versioned(self.volunteers, volunteer_id, decide)
        return None if changed is None else changed.result

    async def assigning(self, volunteer_id: str, act: Callable[[Volunteer], Awaitable[R]]) -> R | None:
        async def decide(doc: dict[str, Any] | None) -> Change[R] | None:
            if doc is None:
                return None
            result = await act(Volunteer.from_doc(doc))
            # Only the version moves: another process assigning this volunteer meanwhile loses the race.
            return Change({"$set": {}}, result=result)

        changed = await change_versioned(self.volunteers, volunteer_id, decide)
        return None if changed is None else changed.result


class MongoAntennaCapacityStore:
    """Each antenna's free places as last published, with the AntennaCapacityChanged events in its outbox."""

    def __init__(self, db: AsyncDatabase, relay: OutboxRelay) -> None:
        self.antennas = db["antennas"]
        self.relay = relay
        relay.watch(self.antennas)

    async def publish(self, capacity: AntennaCapacity, event: Envelope) -> bool:
        free = (capacity.coach_slots_free, capacity.sponsor_slots_free)

        def decide(doc: dict[str, Any] | None) -> Change[bool] | None:
            if doc is not None and (doc["coach_slots_free"], doc["sponsor_slots_free"]) == free:
                return None
            values = {k: v for k, v in asdict(capacity).items() if k != "antenna_id"}
            return Change({"$set": values}, result=True, emit=[event])

        changed = await change_versioned(
            self.antennas,
            capacity.antenna_id,
            decide,
            projection=STATE_ONLY,
            create=True,
            on_emitted=lambda: self.relay.notify(self.antennas, capacity.antenna_id),
        )
        return changed is not None

    async def find(self) -> list[AntennaCapacity]:
        return [
            AntennaCapacity(
                antenna_id=doc["_id"],
                coach_slots_free=doc["coach_slots_free"],
                sponsor_slots_free=doc["sponsor_slots_free"],
                as_of=doc["as_of"],
            )
            async for doc in self.antennas.find({}, STATE_ONLY).sort("_id", 1)
        ]


class MongoCheckpointStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.checkpoints = db["checkpoints"]

    async def add(self, checkpoint: Checkpoint) -> bool:
        return await insert_once(
            self.checkpoints,
            {
                "_id": checkpoint.checkpoint_id,
                "antenna_id": checkpoint.antenna_id,
                "held_on": checkpoint.held_on.isoformat(),
                "duration_minutes": checkpoint.duration_minutes,
                "present": [str(c) for c in checkpoint.present],
                "absent": [str(c) for c in checkpoint.absent],
                "by": checkpoint.by,
                "at": checkpoint.at,
                "status": checkpoint.status.value,
                "refused": checkpoint.refused,
            },
        )

    async def mark_recorded(self, checkpoint_id: str, refused: dict[str, str]) -> None:
        await update_by_id(
            self.checkpoints, checkpoint_id, {"$set": {"status": CheckpointStatus.RECORDED.value, "refused": refused}}
        )

    async def unfinished(self) -> list[Checkpoint]:
        docs = await self.checkpoints.find({"status": CheckpointStatus.IN_PROGRESS.value}).to_list(None)
        return [
            Checkpoint(
                checkpoint_id=doc["_id"],
                antenna_id=doc["antenna_id"],
                held_on=date.fromisoformat(doc["held_on"]),
                duration_minutes=doc.get("duration_minutes"),
                present=[uuid.UUID(c) for c in doc["present"]],
                absent=[uuid.UUID(c) for c in doc.get("absent", [])],
                by=doc["by"],
                at=doc["at"],
                status=CheckpointStatus(doc["status"]),
                refused=doc.get("refused") or {},
            )
            for doc in docs
        ]


class MongoAuditStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.entries = db["audit"]

    async def ensure_indexes(self) -> None:
        await self.entries.create_index([("case_id", 1), ("at", 1)])

    async def add(self, entry: AuditEntry) -> None:
        fields = {k: v for k, v in asdict(entry).items() if v is not None}
        await insert_once(self.entries, {"_id": str(uuid.uuid4()), **fields})

    async def for_case(self, case_id: str, limit: int = 200) -> list[AuditEntry]:
        cursor = self.entries.find({"case_id": case_id}, {"_id": 0}).sort("at", 1).limit(limit)
        return [AuditEntry(**doc) async for doc in cursor]


class MongoApplicationStore:
    """Volunteer applications: personal data of this association's instance only; a decision leaves with
    its event in the application's outbox."""

    def __init__(self, db: AsyncDatabase, relay: OutboxRelay) -> None:
        self.applications = db["volunteer_applications"]
        self.relay = relay
        relay.watch(self.applications)

    async def add(self, application: Application) -> bool:
        doc = {"_id": str(application.application_id), **application.state(), "version": 0}
        return await insert_once(self.applications, doc)

    async def get(self, application_id: uuid.UUID) -> Application | None:
        doc = await self.applications.find_one({"_id": str(application_id)}, STATE_ONLY)
        return Application.from_doc(doc) if doc else None

    async def find(self, status: ApplicationStatus | None = None) -> list[Application]:
        query = {"status": status.value} if status is not None else {}
        found = [Application.from_doc(doc) async for doc in self.applications.find(query, STATE_ONLY)]
        return sorted(found, key=lambda a: (a.received_at, str(a.application_id)))

    async def decide(
        self, application_id: uuid.UUID, decide: Callable[[Application], list[Envelope]]
    ) -> Application | None:
        key = str(application_id)

        def decision(doc: dict[str, Any] | None) -> Change[Application] | None:
            if doc is None:
                return None
            application = Application.from_doc(doc)
            emitted = decide(application)
            return Change({"$set": application.state()}, result=application, emit=emitted)

        changed = await change_versioned(
            self.applications,
            key,
            decision,
            projection=STATE_ONLY,
            on_emitted=lambda: self.relay.notify(self.applications, key),
        )
        return None if changed is None else changed.result


def mongo_stores(db: AsyncDatabase, relay: OutboxRelay) -> CoachingStores:
    return CoachingStores(
        MongoCaseFileStore(db, relay),
        MongoVolunteerStore(db),
        MongoAntennaCapacityStore(db, relay),
        MongoCheckpointStore(db),
        MongoAuditStore(db),
        MongoApplicationStore(db, relay),
    )
