"""Steps that span several documents: routing decisions, assignments, checkpoints, capacity, figures.

The service layer between the thin API / handlers and the stores. Each case file change is one atomic
write; what follows it elsewhere (an antenna's free places) is recomputed from the stored state, so a
crash in between is repaired by the next recount (after any change, and every `dashboard_refresh_s`).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from services.coaching.dashboard import Targets, coordination, waiting_list
from services.coaching.domain import CaseFile, Stage, TransitionRefused
from services.coaching.settings import CoachingSettings
from services.coaching.store import CaseFileStore, CheckpointStore
from services.coaching.volunteer_store import AntennaCapacityStore, VolunteerStore
from services.coaching.volunteers import Candidate, Role, Volunteer, free_slots_by_role, rank
from shared.metrics import Metrics
from shared.schemas import CaseRouted, Contract, Envelope, RoutingStatus, SessionKind

log = logging.getLogger("relais.coaching")
ROUTING = "routage"  # the author of timeline entries caused by routing's events


class CaseNotFound(LookupError):
    """No case file with this id in this association's database."""


class VolunteerNotFound(LookupError):
    """No volunteer with this id in this association's database."""


class Accompaniment:
    def __init__(self, settings: CoachingSettings, cases: CaseFileStore, volunteers: VolunteerStore,
                 antennas: AntennaCapacityStore, checkpoints: CheckpointStore, metrics: Metrics,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.association = settings.association
        self.targets = Targets(settings.target_committee_days, settings.target_coach_days)
        self.cases, self.volunteers, self.antennas, self.checkpoints = cases, volunteers, antennas, checkpoints
        self.metrics = metrics
        self.clock = clock
        # Recounts run one at a time, so the last one always reads the latest stored state.
        self._recount = asyncio.Lock()

    def today(self) -> date:
        return self.clock().date()

    async def start(self) -> None:
        """At start-up: indexes, checkpoints a crash interrupted, and a recount of every antenna."""
        await self.cases.ensure_indexes()
        for checkpoint in await self.checkpoints.unfinished():
            await self._record_checkpoint_in_files(checkpoint)
        await self.refresh_capacity()

    # --- routing's decisions -----------------------------------------------------------------------------

    async def case_routed(self, envelope: Envelope, routed: CaseRouted) -> None:
        """Open the cases routed here (not while APESA comes first); follow up the ones of ours routed
        elsewhere; skip all others."""
        case_id = envelope.case_id
        assert case_id is not None
        known = await self.cases.get(case_id)
        if routed.association is self.association:
            if known is None and routed.status is RoutingStatus.APESA_FIRST:
                # Routing keeps the case until staff resume it after APESA's call (a new CaseRouted).
                self.metrics.business.labels("dossier_apesa_d_abord", self.association.value).inc()
            elif known is None:
                file = CaseFile.opened(case_id, routed, self.clock(), correlation_id=str(envelope.correlation_id))
                if await self.cases.insert(file, ROUTING):
                    self.metrics.business.labels("dossier_ouvert", self.association.value).inc()
            else:
                await self.cases.change(case_id, lambda f: f.routed_here_again(routed), ROUTING)
        elif known is not None:
            await self.cases.change(case_id, lambda f: f.routed_elsewhere(routed), ROUTING)
            await self.refresh_capacity()
        else:
            self.metrics.business.labels("dossier_autre_association", self.association.value).inc()

    # --- one case ----------------------------------------------------------------------------------------

    async def find(self, open_only: bool = True, stage: Stage | None = None,
                   antenna_id: str | None = None) -> list[CaseFile]:
        files = await self.cases.find(open_only=open_only, antenna_id=antenna_id)
        return [f for f in files if stage is None or f.stage is stage]

    async def read(self, case_id: uuid.UUID) -> CaseFile:
        file = await self.cases.get(case_id)
        if file is None:
            raise CaseNotFound(str(case_id))
        return file

    async def change(self, case_id: uuid.UUID, step: Callable[[CaseFile], list[Contract]], by: str) -> CaseFile:
        changed = await self.cases.change(case_id, step, by)
        if changed is None:
            raise CaseNotFound(str(case_id))
        return changed[0]

    async def assign(self, case_id: uuid.UUID, role: Role, volunteer_id: str, by: str) -> CaseFile:
        """Staff confirm a volunteer; their load is counted and the case assigned under their lock."""
        async with self.volunteers.lock(volunteer_id):
            volunteer = await self.volunteers.get(volunteer_id)
            if volunteer is None:
                raise VolunteerNotFound(volunteer_id)
            load = (await self.cases.loads())[volunteer_id]
            today = self.today()
            file = await self.change(case_id, lambda f: f.assign(role, volunteer, load, today), by)
        await self.refresh_capacity()
        return file

    async def release(self, case_id: uuid.UUID, role: Role, by: str) -> CaseFile:
        today = self.today()
        file = await self.change(case_id, lambda f: f.release(role, today), by)
        await self.refresh_capacity()
        return file

    async def hold_session(self, case_id: uuid.UUID, kind: SessionKind, held_on: date, duration_minutes: int | None,
                           attended: bool, volunteer_id: str | None, by: str) -> CaseFile:
        if volunteer_id is not None:
            expert = await self.volunteers.get(volunteer_id)
            if expert is None:
                raise VolunteerNotFound(volunteer_id)
            if expert.role is not Role.EXPERT:
                raise TransitionRefused("Ce bénévole n'est pas expert : une consultation se tient avec un expert.")
        return await self.change(case_id, lambda f: f.hold_session(
            kind, held_on, duration_minutes, attended=attended, volunteer_id=volunteer_id), by)

    async def close(self, case_id: uuid.UUID, step: Callable[[CaseFile], list[Contract]], by: str) -> CaseFile:
        """Closing (or a refused consent) frees the volunteers' places: recount."""
        file = await self.change(case_id, step, by)
        await self.refresh_capacity()
        return file

    async def suggestions(self, case_id: uuid.UUID, role: Role) -> tuple[CaseFile, list[Candidate], dict | None]:
        """Volunteers who could follow the case, best first; and its place in the waiting list."""
        file = await self.read(case_id)
        volunteers, loads = await self.volunteers.find(role=role), await self.cases.loads()
        candidates = rank(volunteers, loads, role, file.antenna_id, file.sector, self.today())
        place = next((entry for entry in waiting_list(await self.cases.find(), volunteers, loads, role, self.today())
                      if entry["case_id"] == str(case_id)), None)
        return file, candidates, place

    # --- collective checkpoints --------------------------------------------------------------------------

    async def record_checkpoint(self, antenna_id: str, held_on: date, duration_minutes: int | None,
                                present: list[uuid.UUID], absent: list[uuid.UUID], by: str) -> dict[str, Any]:
        """One meeting, many entrepreneurs: each present one's file records it and emits SessionHeld.

        Every file is checked first (nothing is stored if one cannot take it); the checkpoint is then
        stored before the files, so that a crash half-way is finished at the next start.
        """
        refusals = []
        for case_id in [*present, *absent]:
            file = await self.read(case_id)
            try:
                copy.deepcopy(file).hold_session(SessionKind.CHECKPOINT, held_on, duration_minutes)
            except TransitionRefused as refused:
                refusals.append(f"{case_id} : {refused}")
        if refusals:
            raise TransitionRefused("Point d'étape non enregistré. " + " ; ".join(refusals))
        checkpoint = {"_id": str(uuid.uuid4()), "antenna_id": antenna_id, "held_on": held_on.isoformat(),
                      "duration_minutes": duration_minutes, "present": [str(c) for c in present],
                      "absent": [str(c) for c in absent], "by": by, "at": self.clock(), "status": "en_cours"}
        await self.checkpoints.add(checkpoint)
        refused = await self._record_checkpoint_in_files(checkpoint)
        return {"checkpoint_id": checkpoint["_id"], "antenna_id": antenna_id, "held_on": held_on,
                "present": checkpoint["present"], "absent": checkpoint["absent"], "refused": refused}

    async def _record_checkpoint_in_files(self, checkpoint: dict[str, Any]) -> dict[str, str]:
        held_on = date.fromisoformat(checkpoint["held_on"])
        refused: dict[str, str] = {}
        for case_id, attended in [*((c, True) for c in checkpoint["present"]),
                                  *((c, False) for c in checkpoint["absent"])]:
            try:
                await self.change(uuid.UUID(case_id), lambda f, attended=attended: f.hold_session(
                    SessionKind.CHECKPOINT, held_on, checkpoint["duration_minutes"], attended=attended,
                    session_id=checkpoint["_id"]), checkpoint["by"])
            except (TransitionRefused, CaseNotFound) as exc:  # changed since the check: say so, keep going
                refused[case_id] = str(exc) or "Dossier introuvable."
        await self.checkpoints.mark_recorded(checkpoint["_id"], refused)
        return refused

    # --- volunteers and capacity -------------------------------------------------------------------------

    async def add_volunteer(self, volunteer: Volunteer) -> bool:
        added = await self.volunteers.add(volunteer)
        if added:
            await self.refresh_capacity()
        return added

    async def change_volunteer(self, volunteer_id: str, edit: Callable[[Volunteer], None]) -> Volunteer:
        volunteer = await self.volunteers.change(volunteer_id, edit)
        if volunteer is None:
            raise VolunteerNotFound(volunteer_id)
        await self.refresh_capacity()
        return volunteer

    async def refresh_capacity(self) -> None:
        """Recount every antenna's free places; publish AntennaCapacityChanged where they changed."""
        async with self._recount:
            volunteers, loads, now = await self.volunteers.find(), await self.cases.loads(), self.clock()
            known = {doc["_id"] for doc in await self.antennas.find()}
            for antenna in sorted(known | {v.antenna_id for v in volunteers}):
                free = free_slots_by_role([v for v in volunteers if v.antenna_id == antenna], loads, now.date())
                await self.antennas.publish_if_changed(antenna, free, now)

    # --- coordinators ------------------------------------------------------------------------------------

    async def waiting(self, role: Role, antenna_id: str | None = None) -> list[dict[str, Any]]:
        return waiting_list(await self.cases.find(), await self.volunteers.find(), await self.cases.loads(), role,
                            self.today(), antenna_id)

    async def figures(self, antenna_id: str | None = None) -> dict[str, Any]:
        files = await self.cases.find(open_only=False)
        return coordination(files, await self.volunteers.find(), await self.cases.loads(), self.today(),
                            self.targets, antenna_id)
