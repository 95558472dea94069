"""Coaching's storage: one Protocol per store (this module), implemented on PyMongo in `store.mongo` and in
memory by the tests' fakes. The events a change causes are stored with it, in the outbox of the document it
changes (case file or antenna)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from services.coaching.audit import AuditEntry
from services.coaching.domain.applications import Application, ApplicationStatus
from services.coaching.domain.case_file import CaseFile
from services.coaching.domain.checkpoint import Checkpoint
from services.coaching.domain.volunteers import AntennaCapacity, Volunteer
from shared.schemas import Envelope, VolunteerRole

R = TypeVar("R")
# What a use case does to a loaded case file: change it, return the envelopes of the events it causes.
CaseDecision = Callable[[CaseFile], "list[Envelope] | Awaitable[list[Envelope]]"]


class CaseFileStore(Protocol):
    async def ensure_indexes(self) -> None: ...

    async def open(self, file: CaseFile) -> bool:
        """Store a new case file with its timeline so far; False when it exists (a redelivered decision)."""

    async def get(self, case_id: uuid.UUID) -> CaseFile | None: ...

    async def change(self, case_id: uuid.UUID, decide: CaseDecision) -> CaseFile | None:
        """Load the file, let `decide` change it, and store its new state, its new timeline entries and the
        events `decide` returned in one versioned write (nothing is written when nothing happened).
        None when the file does not exist; `VersionConflict` when other writers keep winning."""

    async def find(self, *, open_only: bool = True, antenna_id: str | None = None) -> list[CaseFile]: ...

    async def loads(self) -> Counter[str]:
        """How many people each volunteer follows now (volunteer id -> open followed cases naming them)."""


class VolunteerStore(Protocol):
    async def add(self, volunteer: Volunteer) -> bool:
        """False when a volunteer already has this id."""

    async def get(self, volunteer_id: str) -> Volunteer | None: ...

    async def find(self, antenna_id: str | None = None, role: VolunteerRole | None = None) -> list[Volunteer]: ...

    async def change(self, volunteer_id: str, edit: Callable[[Volunteer], None]) -> Volunteer | None:
        """Apply `edit` as one versioned change; None when the volunteer does not exist."""

    async def assigning(self, volunteer_id: str, act: Callable[[Volunteer], Awaitable[R]]) -> R | None:
        """Run `act` (count the volunteer's load, assign them a case) as one versioned change of the
        volunteer, so that two assignments of one volunteer never count the same load; None when the
        volunteer does not exist."""


class AntennaCapacityStore(Protocol):
    async def publish(self, capacity: AntennaCapacity, event: Envelope) -> bool:
        """Store the antenna's free places with their event, unless they are the ones stored; True if stored."""

    async def find(self) -> list[AntennaCapacity]: ...


class CheckpointStore(Protocol):
    async def add(self, checkpoint: Checkpoint) -> bool: ...

    async def mark_recorded(self, checkpoint_id: str, refused: dict[str, str]) -> None: ...

    async def unfinished(self) -> list[Checkpoint]:
        """Checkpoints stored but not yet recorded in every file (a crash came in between)."""


class AuditStore(Protocol):
    async def ensure_indexes(self) -> None: ...

    async def add(self, entry: AuditEntry) -> None: ...

    async def for_case(self, case_id: str, limit: int = 200) -> list[AuditEntry]: ...


class ApplicationStore(Protocol):
    async def add(self, application: Application) -> bool:
        """Store a new application; False when one has this id already (the same form sent twice)."""

    async def get(self, application_id: uuid.UUID) -> Application | None: ...

    async def find(self, status: ApplicationStatus | None = None) -> list[Application]:
        """Applications, the oldest first."""

    async def decide(
        self, application_id: uuid.UUID, decide: Callable[[Application], list[Envelope]]
    ) -> Application | None:
        """Let `decide` answer the application and store it with the events it returns, in one versioned
        write; None when the application does not exist."""


@dataclass
class CoachingStores:
    cases: CaseFileStore
    volunteers: VolunteerStore
    antennas: AntennaCapacityStore
    checkpoints: CheckpointStore
    audit: AuditStore
    applications: ApplicationStore
