"""Coaching's use cases, one association per instance: load, decide (domain), store, emit.

The one place where events are wrapped in envelopes. Each case file change is one versioned write carrying
its events; what follows it elsewhere (an antenna's free places) is recounted from the stored state, so a
crash in between is repaired by the next recount (after any change, and periodically).
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from services.coaching.domain.applications import Application, ApplicationStatus
from services.coaching.domain.case_file import CaseFile, Decision, Orientation, Stage, TransitionRefused
from services.coaching.domain.checkpoint import Checkpoint
from services.coaching.domain.figures import Targets, coordination, waiting_list
from services.coaching.domain.volunteers import AntennaCapacity, Candidate, Volunteer, free_slots_by_role, rank
from services.coaching.settings import CoachingSettings
from services.coaching.store import CoachingStores
from shared.metrics import Metrics
from shared.schemas import (
    AntennaCapacityChanged,
    CaseRouted,
    Contract,
    Envelope,
    Outcome,
    Procedure,
    RoutingStatus,
    SectorFamily,
    SessionKind,
    VolunteerRole,
    new_envelope,
)

PRODUCER = "coaching"
ROUTING = "routage"  # the author of timeline entries caused by routing's events

Rule = Callable[[CaseFile], "list[Contract] | Awaitable[list[Contract]]"]
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def _checkpoint_session(checkpoint: Checkpoint, attended: bool) -> Rule:
    """The checkpoint as one entrepreneur's session, present or absent (bound here, not to a loop variable)."""
    return lambda file: file.hold_session(
        SessionKind.CHECKPOINT,
        checkpoint.held_on,
        checkpoint.duration_minutes,
        attended=attended,
        session_id=checkpoint.checkpoint_id,
    )


class CaseNotFound(LookupError):
    """No case file with this id in this association's database."""


class VolunteerNotFound(LookupError):
    """No volunteer with this id in this association's database."""


class ApplicationNotFound(LookupError):
    """No volunteer application with this id in this association's database."""


class ApplicationKeyReused(ValueError):
    """The form's key already named an application with other answers."""


@dataclass(frozen=True)
class Suggestions:
    """Volunteers who could follow a case, best first, and the case's place in the waiting list."""

    file: CaseFile
    role: VolunteerRole
    candidates: list[Candidate]
    waiting: dict[str, Any] | None


@dataclass(frozen=True)
class VolunteerStatus:
    """A volunteer with what they can take on today."""

    volunteer: Volunteer
    load: int
    free_slots: int
    unavailable: str | None


@dataclass(frozen=True)
class SessionReport:
    """What staff record of one session of one case."""

    kind: SessionKind
    held_on: date | None = None
    duration_minutes: int | None = None
    attended: bool = True
    volunteer_id: str | None = None  # the expert of a consultation
    next_session_at: datetime | None = None
    next_session_place: str | None = None


class CoachingService:
    def __init__(
        self, settings: CoachingSettings, stores: CoachingStores, metrics: Metrics, clock: Clock | None = None
    ) -> None:
        self.association = settings.association
        self.targets = Targets(settings.target_committee_days, settings.target_coach_days)
        self.sessions_planned = settings.coaching_sessions_planned
        self.cases, self.volunteers = stores.cases, stores.volunteers
        self.antennas, self.checkpoints = stores.antennas, stores.checkpoints
        self.applications = stores.applications
        self.metrics = metrics
        self.clock = clock or utc_now
        # Recounts run one at a time, so that the last one always reads the latest stored state and an
        # older recount never publishes after a newer one.
        self._recount = asyncio.Lock()

    def today(self) -> date:
        return self.clock().date()

    async def start(self) -> None:
        """At start-up: indexes, checkpoints a crash interrupted, and a recount of every antenna."""
        await self.cases.ensure_indexes()
        for checkpoint in await self.checkpoints.unfinished():
            await self._record_checkpoint_in_files(checkpoint)
        await self.recount_capacity()

    # --- routing's decisions -------------------------------------------------------------------------------

    async def case_routed(self, case_id: uuid.UUID, routed: CaseRouted, correlation_id: uuid.UUID) -> None:
        """Open the cases routed here (not while APESA comes first); follow up the ones of ours routed
        elsewhere; skip all others."""
        known = await self.cases.get(case_id)
        if routed.association is self.association:
            if known is None and routed.status is RoutingStatus.APESA_FIRST:
                # Routing keeps the case until staff resume it after APESA's call (a new CaseRouted).
                self._count("dossier_apesa_d_abord")
            elif known is None:
                file = CaseFile.opened(case_id, routed, self.clock(), correlation_id=str(correlation_id))
                self._stamp(file, ROUTING)
                if await self.cases.open(file):
                    self._count("dossier_ouvert")
            else:
                await self._change(case_id, lambda f: f.routed_here_again(routed), ROUTING)
        elif known is not None:
            await self._change(case_id, lambda f: f.routed_elsewhere(routed), ROUTING)
            await self.recount_capacity()  # its volunteers' places are free again
        else:
            self._count("dossier_autre_association")

    # --- one case ----------------------------------------------------------------------------------------------

    async def find_cases(
        self, open_only: bool = True, stage: Stage | None = None, antenna_id: str | None = None
    ) -> list[CaseFile]:
        files = await self.cases.find(open_only=open_only, antenna_id=antenna_id)
        return [f for f in files if stage is None or f.stage is stage]

    async def case(self, case_id: uuid.UUID) -> CaseFile:
        file = await self.cases.get(case_id)
        if file is None:
            raise CaseNotFound(str(case_id))
        return file

    async def set_profile(
        self,
        case_id: uuid.UUID,
        by: str,
        *,
        antenna_id: str | None = None,
        sector: str | None = None,
        sector_family: SectorFamily | None = None,
    ) -> CaseFile:
        return await self._change(case_id, lambda f: f.set_profile(antenna_id, sector, sector_family), by)

    async def record_consent(self, case_id: uuid.UUID, given: bool, by: str, on: date | None = None) -> CaseFile:
        on = on or self.today()
        return await self._change(case_id, lambda f: f.record_consent(given, on), by)

    async def schedule_committee(self, case_id: uuid.UUID, on: date, by: str) -> CaseFile:
        return await self._change(case_id, lambda f: f.schedule_committee(on), by)

    async def decide_committee(
        self,
        case_id: uuid.UUID,
        decision: Decision,
        reasons: list[str],
        by: str,
        *,
        orientation: Orientation | None = None,
        decided_on: date | None = None,
    ) -> CaseFile:
        on = decided_on or self.today()
        return await self._change(case_id, lambda f: f.decide(decision, on, reasons, orientation), by)

    async def suggestions(self, case_id: uuid.UUID, role: VolunteerRole) -> Suggestions:
        file = await self.case(case_id)
        volunteers, loads, today = await self.volunteers.find(role=role), await self.cases.loads(), self.today()
        candidates = rank(volunteers, loads, role, file.antenna_id, file.sector, today, file.sector_family)
        place = next(
            (
                entry
                for entry in waiting_list(await self.cases.find(), volunteers, loads, role, today)
                if entry["case_id"] == str(case_id)
            ),
            None,
        )
        return Suggestions(file, role, candidates, place)

    async def assign(self, case_id: uuid.UUID, role: VolunteerRole, volunteer_id: str, by: str) -> CaseFile:
        """Staff confirm a volunteer: their load is counted and the case assigned within one versioned change
        of the volunteer, so that two cases never take the volunteer's last place together."""
        today = self.today()

        async def take_on(volunteer: Volunteer) -> CaseFile:
            load = (await self.cases.loads())[volunteer.volunteer_id]
            return await self._change(case_id, lambda f: f.assign(role, volunteer, load, today), by)

        file = await self.volunteers.assigning(volunteer_id, take_on)
        if file is None:
            raise VolunteerNotFound(volunteer_id)
        await self.recount_capacity()
        return file

    async def release(self, case_id: uuid.UUID, role: VolunteerRole, by: str) -> CaseFile:
        today = self.today()

        async def release(file: CaseFile) -> list[Contract]:
            current = file.assigned(role)
            volunteer = await self.volunteers.get(current) if current else None
            if current is not None and volunteer is None:
                raise VolunteerNotFound(current)
            return file.release(role, volunteer, today)

        file = await self._change(case_id, release, by)
        await self.recount_capacity()
        return file

    async def hold_session(self, case_id: uuid.UUID, session: SessionReport, by: str) -> CaseFile:
        if session.volunteer_id is not None:
            expert = await self.volunteers.get(session.volunteer_id)
            if expert is None:
                raise VolunteerNotFound(session.volunteer_id)
            if expert.role is not VolunteerRole.EXPERT:
                raise TransitionRefused("Ce bénévole n'est pas expert : une consultation se tient avec un expert.")
        held_on = session.held_on or self.today()
        return await self._change(
            case_id,
            lambda f: f.hold_session(
                session.kind,
                held_on,
                session.duration_minutes,
                attended=session.attended,
                volunteer_id=session.volunteer_id,
                next_session_at=session.next_session_at,
                next_session_place=session.next_session_place,
            ),
            by,
        )

    async def close(
        self, case_id: uuid.UUID, outcome: Outcome, reasons: list[str], by: str, closed_on: date | None = None
    ) -> CaseFile:
        """Closing frees the volunteers' places: recount."""
        on = closed_on or self.today()
        file = await self._change(case_id, lambda f: f.close(outcome, on, reasons), by)
        await self.recount_capacity()
        return file

    async def request_handover(
        self, case_id: uuid.UUID, procedure: Procedure, court_decision_date: date | None, comment: str | None, by: str
    ) -> CaseFile:
        today = self.today()
        return await self._change(
            case_id, lambda f: f.request_handover(procedure, court_decision_date, comment, today), by
        )

    # --- collective checkpoints --------------------------------------------------------------------------------

    async def record_checkpoint(
        self,
        antenna_id: str,
        held_on: date | None,
        duration_minutes: int | None,
        present: list[uuid.UUID],
        absent: list[uuid.UUID],
        by: str,
    ) -> Checkpoint:
        """One meeting, many entrepreneurs: each present one's file records it and emits SessionHeld.

        Every file is checked first (nothing is stored if one cannot take it); the checkpoint is then
        stored before the files, so that a crash half-way is finished at the next start.
        """
        held_on = held_on or self.today()
        refusals = []
        for case_id in [*present, *absent]:
            file = await self.case(case_id)
            try:
                copy.deepcopy(file).hold_session(SessionKind.CHECKPOINT, held_on, duration_minutes)
            except TransitionRefused as refused:
                refusals.append(f"{case_id} : {refused}")
        if refusals:
            raise TransitionRefused("Point d'étape non enregistré. " + " ; ".join(refusals))
        checkpoint = Checkpoint(
            checkpoint_id=str(uuid.uuid4()),
            antenna_id=antenna_id,
            held_on=held_on,
            duration_minutes=duration_minutes,
            present=list(present),
            absent=list(absent),
            by=by,
            at=self.clock(),
        )
        await self.checkpoints.add(checkpoint)
        await self._record_checkpoint_in_files(checkpoint)
        return checkpoint

    async def _record_checkpoint_in_files(self, checkpoint: Checkpoint) -> None:
        refused: dict[str, str] = {}
        for case_id, attended in checkpoint.attendance():
            try:
                await self._change(case_id, _checkpoint_session(checkpoint, attended), checkpoint.by)
            except (TransitionRefused, CaseNotFound) as exc:  # changed since the check: say so, keep going
                refused[str(case_id)] = str(exc) if isinstance(exc, TransitionRefused) else "Dossier introuvable."
        await self.checkpoints.mark_recorded(checkpoint.checkpoint_id, refused)
        checkpoint.refused = refused

    # --- volunteers and capacity -------------------------------------------------------------------------------

    async def add_volunteer(self, volunteer: Volunteer) -> VolunteerStatus:
        if not await self.volunteers.add(volunteer):
            raise TransitionRefused("Un bénévole porte déjà cet identifiant.")
        await self.recount_capacity()
        return await self._status(volunteer)

    async def volunteer(self, volunteer_id: str) -> VolunteerStatus:
        volunteer = await self.volunteers.get(volunteer_id)
        if volunteer is None:
            raise VolunteerNotFound(volunteer_id)
        return await self._status(volunteer)

    async def list_volunteers(
        self, antenna_id: str | None = None, role: VolunteerRole | None = None
    ) -> list[VolunteerStatus]:
        volunteers, loads = await self.volunteers.find(antenna_id, role), await self.cases.loads()
        return [self._status_with(v, loads.get(v.volunteer_id, 0)) for v in volunteers]

    async def change_volunteer(self, volunteer_id: str, changes: Mapping[str, Any]) -> VolunteerStatus:
        """Set the given fields (availability, capacity, certification, antenna, sectors, contact)."""

        def edit(volunteer: Volunteer) -> None:
            for name, value in changes.items():
                setattr(volunteer, name, value)

        volunteer = await self.volunteers.change(volunteer_id, edit)
        if volunteer is None:
            raise VolunteerNotFound(volunteer_id)
        await self.recount_capacity()
        return await self._status(volunteer)

    async def recount_capacity(self) -> list[AntennaCapacity]:
        """Recount every antenna's free places; publish AntennaCapacityChanged where they changed (returned)."""
        published = []
        async with self._recount:
            volunteers, loads, now = await self.volunteers.find(), await self.cases.loads(), self.clock()
            known = {capacity.antenna_id for capacity in await self.antennas.find()}
            for antenna in sorted(known | {v.antenna_id for v in volunteers}):
                free = free_slots_by_role([v for v in volunteers if v.antenna_id == antenna], loads, now.date())
                capacity = AntennaCapacity(antenna, free[VolunteerRole.COACH], free[VolunteerRole.SPONSOR], now)
                event = new_envelope(
                    AntennaCapacityChanged(
                        association=self.association,
                        antenna_id=antenna,
                        coach_slots_free=capacity.coach_slots_free,
                        sponsor_slots_free=capacity.sponsor_slots_free,
                        as_of=now,
                    ),
                    antenna_id=antenna,
                    producer=PRODUCER,
                )
                if await self.antennas.publish(capacity, event):
                    published.append(capacity)
        return published

    async def antenna_capacities(self) -> list[AntennaCapacity]:
        return await self.antennas.find()

    # --- volunteer applications --------------------------------------------------------------------------------

    async def apply(self, application: Application) -> tuple[Application, bool]:
        """Store an application once per form (its id comes from the form's key); True if it is new."""
        if await self.applications.add(application):
            self._count("candidature_recue")
            return application, True
        existing = await self.applications.get(application.application_id)
        if existing is None:
            raise ApplicationNotFound(str(application.application_id))
        if existing.fingerprint != application.fingerprint:
            raise ApplicationKeyReused(str(application.application_id))
        return existing, False

    async def find_applications(self, status: ApplicationStatus | None = None) -> list[Application]:
        return await self.applications.find(status)

    async def application(self, application_id: uuid.UUID) -> Application:
        found = await self.applications.get(application_id)
        if found is None:
            raise ApplicationNotFound(str(application_id))
        return found

    async def accept_application(
        self,
        application_id: uuid.UUID,
        by: str,
        *,
        antenna_id: str,
        sectors: list[str],
        max_people: int,
        certified_until: date | None = None,
    ) -> Application:
        """The applicant becomes a volunteer of the antenna staff chose; they are told (through the outbox).

        The volunteer is stored first under an id derived from the application, then the application is
        answered with its event: a retry after a crash in between finds the volunteer and answers."""
        application = await self.application(application_id)
        if application.status is not ApplicationStatus.PENDING:
            raise TransitionRefused("Cette candidature a déjà reçu une réponse.")
        volunteer = Volunteer(
            volunteer_id=application.volunteer_key,
            display_name=application.display_name,
            role=application.role,
            antenna_id=antenna_id,
            sectors=sectors,
            max_people=max_people,
            certified_until=certified_until,
            email=application.email,
        )
        await self.volunteers.add(volunteer)
        today = self.today()
        decided = await self.applications.decide(
            application_id,
            lambda a: [self._application_envelope(a, a.accept(volunteer, self.association, today, by))],
        )
        if decided is None:
            raise ApplicationNotFound(str(application_id))
        await self.recount_capacity()
        return decided

    async def decline_application(self, application_id: uuid.UUID, by: str) -> Application:
        today = self.today()
        decided = await self.applications.decide(
            application_id, lambda a: [self._application_envelope(a, a.decline(self.association, today, by))]
        )
        if decided is None:
            raise ApplicationNotFound(str(application_id))
        return decided

    def _application_envelope(self, application: Application, payload: Contract) -> Envelope:
        return new_envelope(payload, case_id=application.application_id, producer=PRODUCER)

    # --- coordinators ------------------------------------------------------------------------------------------

    async def waiting_list(self, role: VolunteerRole, antenna_id: str | None = None) -> list[dict[str, Any]]:
        return waiting_list(
            await self.cases.find(),
            await self.volunteers.find(),
            await self.cases.loads(),
            role,
            self.today(),
            antenna_id,
        )

    async def figures(self, antenna_id: str | None = None) -> dict[str, dict[str, Any]]:
        files = await self.cases.find(open_only=False)
        return coordination(
            files, await self.volunteers.find(), await self.cases.loads(), self.today(), self.targets, antenna_id
        )

    # --- internals ---------------------------------------------------------------------------------------------

    async def _change(self, case_id: uuid.UUID, rule: Rule, by: str) -> CaseFile:
        """Apply one domain rule to one case file: its events leave with the change, in one write."""

        async def decide(file: CaseFile) -> list[Envelope]:
            events = rule(file)
            if inspect.isawaitable(events):
                events = await events
            self._stamp(file, by)
            return [self._envelope(file, event) for event in events]

        changed = await self.cases.change(case_id, decide)
        if changed is None:
            raise CaseNotFound(str(case_id))
        return changed

    def _envelope(self, file: CaseFile, payload: Contract) -> Envelope:
        """A case's events are keyed by its id and share the correlation id of its routing."""
        correlation = uuid.UUID(file.correlation_id) if file.correlation_id else None
        return new_envelope(payload, case_id=file.case_id, producer=PRODUCER, correlation_id=correlation)

    def _stamp(self, file: CaseFile, by: str) -> None:
        """Date and sign the timeline entries the rule added (routing's entries keep routing's time)."""
        now = self.clock()
        for entry in file.new_entries:
            entry["at"] = entry.get("at") or now
            entry["by"] = by

    async def _status(self, volunteer: Volunteer) -> VolunteerStatus:
        return self._status_with(volunteer, (await self.cases.loads())[volunteer.volunteer_id])

    def _status_with(self, volunteer: Volunteer, load: int) -> VolunteerStatus:
        today = self.today()
        return VolunteerStatus(volunteer, load, volunteer.free_slots(today, load), volunteer.unavailability(today))

    def _count(self, step: str) -> None:
        self.metrics.business.labels(step, self.association.value).inc()
