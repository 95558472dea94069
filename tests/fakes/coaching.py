"""In-memory stores of coaching, one per Protocol of `services/coaching/store.py`.

Dict-backed and small, with the real stores' semantics: an insert keyed by id happens once, a change of a
case file or a volunteer is versioned (one writer at a time, the version moves, a lost race is retried and
ends in VersionConflict), and a change's events are stored with it in the document's outbox.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from services.coaching.audit import AuditEntry
from services.coaching.directory import EDITABLE, DirectoryAntenna, DirectoryRefused, DirectoryUnavailable
from services.coaching.domain.applications import Application, ApplicationStatus
from services.coaching.domain.case_file import ASSIGNED_FIELD, FOLLOWED_STAGES, OPEN_STAGES, CaseFile
from services.coaching.domain.checkpoint import Checkpoint, CheckpointStatus
from services.coaching.domain.volunteers import AntennaCapacity, Volunteer
from services.coaching.store import CaseDecision, CoachingStores
from shared.schemas import Association, Envelope, VolunteerRole
from shared.store import VersionConflict

R = TypeVar("R")
ATTEMPTS = 5  # as shared.store.change_versioned


async def _io() -> None:
    """A read or write of the real store suspends the caller: other coroutines may run meanwhile."""
    await asyncio.sleep(0)


class _Writers:
    """One writer of a document at a time, as the real stores' single-document writes."""

    def __init__(self) -> None:
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def of(self, key: str) -> asyncio.Lock:
        return self._locks[key]


class FakeCaseFileStore:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.outbox: defaultdict[str, list[Envelope]] = defaultdict(list)
        self.events: list[Envelope] = []  # every envelope stored, in the order of the writes
        self._writers = _Writers()

    def other_writer(self, key: str) -> None:
        """Called between a change's read and its write: where another process could write first."""

    async def ensure_indexes(self) -> None:
        return None

    async def open(self, file: CaseFile) -> bool:
        key = str(file.case_id)
        if key in self.docs:
            return False
        self.docs[key] = {
            "_id": key,
            **copy.deepcopy(file.state()),
            "version": 0,
            "timeline": copy.deepcopy(file.new_entries),
        }
        return True

    async def get(self, case_id: uuid.UUID) -> CaseFile | None:
        await _io()
        doc = self.docs.get(str(case_id))
        return CaseFile.from_doc(copy.deepcopy(doc)) if doc else None

    async def change(self, case_id: uuid.UUID, decide: CaseDecision) -> CaseFile | None:
        key = str(case_id)
        for _ in range(ATTEMPTS):
            async with self._writers.of(key):
                await _io()
                if key not in self.docs:
                    return None
                version = self.docs[key]["version"]
                file = CaseFile.from_doc(copy.deepcopy(self.docs[key]))
                emitted = decide(file)
                if inspect.isawaitable(emitted):
                    emitted = await emitted
                if not emitted and not file.new_entries:
                    return file
                self.other_writer(key)
                if self.docs[key]["version"] != version:
                    continue
                file.version = version + 1
                self.docs[key] = {
                    "_id": key,
                    **copy.deepcopy(file.state()),
                    "version": file.version,
                    "timeline": self.docs[key]["timeline"] + copy.deepcopy(file.new_entries),
                }
                self.outbox[key].extend(emitted)
                self.events.extend(emitted)
                return file
        raise VersionConflict(key)

    async def find(self, *, open_only: bool = True, antenna_id: str | None = None) -> list[CaseFile]:
        await _io()
        files = [CaseFile.from_doc(copy.deepcopy(self.docs[key])) for key in sorted(self.docs)]
        return [
            f
            for f in files
            if (not open_only or f.stage in OPEN_STAGES) and (antenna_id is None or f.antenna_id == antenna_id)
        ]

    async def loads(self) -> Counter[str]:
        await _io()
        loads: Counter[str] = Counter()
        for doc in self.docs.values():
            if doc["stage"] in {s.value for s in FOLLOWED_STAGES}:
                loads.update(doc[f] for f in ASSIGNED_FIELD.values() if doc.get(f))
        return loads


class RacingCaseFileStore(FakeCaseFileStore):
    """Another process writes every case file between each read and write of ours: every race is lost."""

    def other_writer(self, key: str) -> None:
        self.docs[key] = {**self.docs[key], "version": self.docs[key]["version"] + 1}


class FakeVolunteerStore:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self._writers = _Writers()

    async def add(self, volunteer: Volunteer) -> bool:
        if volunteer.volunteer_id in self.docs:
            return False
        self.docs[volunteer.volunteer_id] = {**volunteer.to_doc(), "version": 0}
        return True

    async def get(self, volunteer_id: str) -> Volunteer | None:
        await _io()
        doc = self.docs.get(volunteer_id)
        return Volunteer.from_doc(copy.deepcopy(doc)) if doc else None

    async def find(self, antenna_id: str | None = None, role: VolunteerRole | None = None) -> list[Volunteer]:
        await _io()
        return [
            Volunteer.from_doc(copy.deepcopy(doc))
            for _, doc in sorted(self.docs.items())
            if (antenna_id is None or doc["antenna_id"] == antenna_id) and (role is None or doc["role"] == role)
        ]

    async def change(self, volunteer_id: str, edit: Callable[[Volunteer], None]) -> Volunteer | None:
        async with self._writers.of(volunteer_id):
            volunteer = await self.get(volunteer_id)
            if volunteer is None:
                return None
            edit(volunteer)
            self.docs[volunteer_id] = {**volunteer.to_doc(), "version": self.docs[volunteer_id]["version"] + 1}
            return volunteer

    async def assigning(self, volunteer_id: str, act: Callable[[Volunteer], Awaitable[R]]) -> R | None:
        async with self._writers.of(volunteer_id):
            volunteer = await self.get(volunteer_id)
            if volunteer is None:
                return None
            result = await act(volunteer)
            self.docs[volunteer_id]["version"] += 1
            return result


class FakeAntennaCapacityStore:
    def __init__(self) -> None:
        self.capacities: dict[str, AntennaCapacity] = {}
        self.outbox: defaultdict[str, list[Envelope]] = defaultdict(list)
        self.events: list[Envelope] = []

    async def publish(self, capacity: AntennaCapacity, event: Envelope) -> bool:
        known = self.capacities.get(capacity.antenna_id)
        if known is not None and (known.coach_slots_free, known.sponsor_slots_free) == (
            capacity.coach_slots_free,
            capacity.sponsor_slots_free,
        ):
            return False
        self.capacities[capacity.antenna_id] = capacity
        self.outbox[capacity.antenna_id].append(event)
        self.events.append(event)
        return True

    async def find(self) -> list[AntennaCapacity]:
        return [self.capacities[key] for key in sorted(self.capacities)]


class FakeCheckpointStore:
    def __init__(self) -> None:
        self.checkpoints: dict[str, Checkpoint] = {}

    async def add(self, checkpoint: Checkpoint) -> bool:
        if checkpoint.checkpoint_id in self.checkpoints:
            return False
        self.checkpoints[checkpoint.checkpoint_id] = copy.deepcopy(checkpoint)
        return True

    async def mark_recorded(self, checkpoint_id: str, refused: dict[str, str]) -> None:
        stored = self.checkpoints[checkpoint_id]
        stored.status, stored.refused = CheckpointStatus.RECORDED, dict(refused)

    async def unfinished(self) -> list[Checkpoint]:
        return [copy.deepcopy(c) for c in self.checkpoints.values() if c.status is CheckpointStatus.IN_PROGRESS]


class FakeAuditStore:
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    async def ensure_indexes(self) -> None:
        return None

    async def add(self, entry: AuditEntry) -> None:
        self.entries.append(entry)

    async def for_case(self, case_id: str, limit: int = 200) -> list[AuditEntry]:
        return sorted((e for e in self.entries if e.case_id == case_id), key=lambda e: e.at)[:limit]


class FakeApplicationStore:
    def __init__(self) -> None:
        self.docs: dict[str, Application] = {}
        self.events: list[Envelope] = []  # every decision's envelope, in the order of the writes
        self._writers = _Writers()

    async def add(self, application: Application) -> bool:
        await _io()
        key = str(application.application_id)
        if key in self.docs:
            return False
        self.docs[key] = copy.deepcopy(application)
        return True

    async def get(self, application_id: uuid.UUID) -> Application | None:
        await _io()
        return copy.deepcopy(self.docs.get(str(application_id)))

    async def find(self, status: ApplicationStatus | None = None) -> list[Application]:
        await _io()
        found = [copy.deepcopy(a) for a in self.docs.values() if status is None or a.status is status]
        return sorted(found, key=lambda a: (a.received_at, str(a.application_id)))

    async def decide(
        self, application_id: uuid.UUID, decide: Callable[[Application], list[Envelope]]
    ) -> Application | None:
        key = str(application_id)
        async with self._writers.of(key):
            await _io()
            if key not in self.docs:
                return None
            application = copy.deepcopy(self.docs[key])
            emitted = decide(application)  # a refusal raises here: nothing is stored
            application.version += 1
            self.docs[key] = copy.deepcopy(application)
            self.events.extend(emitted)
            return application


class FakeAntennaDirectory:
    """Routing's directory as one association's token sees it: its antennas only; another's is refused (403)
    and an unknown one is not found (404), as routing's PATCH answers. `refuse_next` primes one refusal
    (routing's 422 with its field errors); `down` makes routing unreachable."""

    def __init__(self, association: Association, antennas: list[DirectoryAntenna], configured: bool = True) -> None:
        self.association, self.configured, self.down = association, configured, False
        self.found = {a.id: a for a in antennas}
        self.refuse_next: DirectoryRefused | None = None
        self.updates: list[tuple[str, dict[str, Any]]] = []

    async def antennas(self) -> list[DirectoryAntenna] | None:
        if not self.configured or self.down:
            return None
        return sorted((a for a in self.found.values() if a.association is self.association), key=lambda a: a.name)

    async def update(self, antenna_id: str, changes: dict[str, Any]) -> DirectoryAntenna:
        if not self.configured or self.down:
            raise DirectoryUnavailable("down")
        if self.refuse_next is not None:
            refused, self.refuse_next = self.refuse_next, None
            raise refused
        antenna = self.found.get(antenna_id)
        if antenna is None:
            raise DirectoryRefused(404, "Antenne introuvable dans l'annuaire du routage.")
        if antenna.association is not self.association:
            raise DirectoryRefused(403, "Le routage refuse : cette antenne n'appartient pas à l'association.")
        edited = {k: v for k, v in changes.items() if k in EDITABLE}
        self.updates.append((antenna_id, edited))
        self.found[antenna_id] = antenna.model_copy(update=edited)
        return self.found[antenna_id]


def fake_stores(cases: FakeCaseFileStore | None = None) -> CoachingStores:
    return CoachingStores(
        cases=cases or FakeCaseFileStore(),
        volunteers=FakeVolunteerStore(),
        antennas=FakeAntennaCapacityStore(),
        checkpoints=FakeCheckpointStore(),
        audit=FakeAuditStore(),
        applications=FakeApplicationStore(),
    )
