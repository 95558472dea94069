"""The coordinators' pages: the board (figures and charts per antenna, volunteers to find), the volunteers
with their load, the waiting list, the association's antennas in routing's directory (routing owns it: the
edit form goes through its API with this association's token, and is audited here with the staff member's
name) and the coverage map. Every figure comes from the service's own computation, the one the JSON API and the
Prometheus gauges show."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from pydantic import Field

from services.coaching.directory import (
    NOT_CONFIGURED,
    AntennaDirectory,
    DirectoryAntenna,
    DirectoryRefused,
    DirectoryUnavailable,
)
from services.coaching.domain.case_file import CaseStep
from services.coaching.domain.volunteers import antenna_belongs_to
from services.coaching.pages import charts
from services.coaching.pages import labels as fr
from services.coaching.pages.space import EXPIRED, Refusal, Space
from shared.http import StrictRequest
from shared.pages import SECURITY_HEADERS, FormState
from shared.schemas import Outcome, VolunteerRole

FOLLOWING = (VolunteerRole.COACH, VolunteerRole.SPONSOR)
ANTENNA_LABELS = {"name": "Nom de l'antenne", "contact": "Contact public", "status": "État"}
ANTENNA_STATUSES = {"ouverte": "Ouverte", "en_ouverture": "En ouverture", "fermee": "Fermée"}
UNAVAILABLE = "L'annuaire du routage ne répond pas : rien n'a été modifié, réessayez dans un instant."


class AntennaEdit(StrictRequest):
    """The fields staff may change, checked as routing's AntennaPatch checks them (routing checks again)."""

    name: str = Field(min_length=1, max_length=200)
    contact: str = Field(min_length=1, max_length=300)
    status: Literal["ouverte", "en_ouverture", "fermee"]


@dataclass
class AntennaForm(FormState):
    """One edit form per antenna on the same page: field ids carry the antenna's id."""

    prefix: str = ""

    def id(self, name: str) -> str:
        return f"antenne-{self.prefix}-{super().id(name)}"

    @classmethod
    def showing(cls, antenna: DirectoryAntenna) -> AntennaForm:
        values = {"name": antenna.name, "contact": antenna.contact, "status": antenna.status}
        return cls(values=values, labels=dict(ANTENNA_LABELS), prefix=antenna.id)


def board_charts(figures: dict[str, dict[str, Any]], committee_days: int, coach_days: int) -> list[charts.Chart]:
    antennas = sorted(figures, key=fr.antenna_name)
    steps = {step.value: fr.STEPS[step] for step in CaseStep}
    by_step = charts.bars(
        "Dossiers ouverts par antenne et par étape",
        [(fr.antenna_name(a), figures[a]["open_cases"]) for a in antennas],
        steps,
    )
    waits = [
        charts.bars(
            fr.WAITS[wait] + " : moyenne en jours, par antenne",
            [
                (fr.antenna_name(a), {"jours": figures[a]["waiting_days"][wait]["mean_days"] or 0})
                for a in antennas
                if figures[a]["waiting_days"][wait]["cases"]
            ],
            {"jours": "Jours"},
            unit=" j",
            markers={f"objectif {target} j": target},
        )
        for wait, target in (("reception_comite", committee_days), ("comite_coach", coach_days))
    ]
    outcomes: Counter[str] = Counter()
    for figure in figures.values():
        outcomes.update(figure["outcomes"])
    ended = charts.bars(
        "Issues des dossiers clos",
        [(fr.OUTCOMES[Outcome(o)], {"dossiers": outcomes[o.value]}) for o in Outcome if outcomes[o.value]],
        {"dossiers": "Dossiers"},
    )
    return [by_step, *waits, ended]


def coordination_routes(space: Space, directory: AntennaDirectory) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    service = space.service

    @router.get("/espace/tableau-de-bord")
    async def board(request: Request, antenne: str = "") -> Response:
        staff = space.staff(request)
        if staff is None:
            return space.to_sign_in(request)
        found = await space.step(staff, "coordination.read", lambda: service.figures(antenne or None), count=len)
        figures: dict[str, dict[str, Any]] = found if isinstance(found, dict) else {}
        totals = {
            "open": sum(f["open_total"] for f in figures.values()),
            "late_committee": sum(len(f["overdue"]["comite"]) for f in figures.values()),
            "late_coach": sum(len(f["overdue"]["coach"]) for f in figures.values()),
            "needed": {r.value: sum(f["needed"][r.value] for f in figures.values()) for r in FOLLOWING},
            "waiting": {r.value: sum(f["waiting_list"][r.value]["cases"] for f in figures.values()) for r in FOLLOWING},
        }
        return space.render(
            request,
            "tableau.html",
            staff,
            figures=dict(sorted(figures.items(), key=lambda item: fr.antenna_name(item[0]))),
            totals=totals,
            charts=board_charts(figures, service.targets.committee_days, service.targets.coach_days),
            targets=service.targets,
            antenna=antenne,
            antennas=sorted((await service.figures()).keys()) if antenne else sorted(figures),
            today=service.today(),
            fr=fr,
        )

    @router.get("/espace/benevoles")
    async def volunteers(request: Request, antenne: str = "", role: str = "") -> Response:
        staff = space.staff(request)
        if staff is None:
            return space.to_sign_in(request)
        chosen = VolunteerRole(role) if role in {r.value for r in VolunteerRole} else None
        everyone = await service.list_volunteers()
        shown = [
            v
            for v in everyone
            if (not antenne or v.volunteer.antenna_id == antenne) and (chosen is None or v.volunteer.role is chosen)
        ]
        return space.render(
            request,
            "benevoles.html",
            staff,
            volunteers=sorted(
                shown, key=lambda v: (v.volunteer.antenna_id, v.volunteer.role, v.volunteer.display_name)
            ),
            antennas=sorted({v.volunteer.antenna_id for v in everyone}),
            chosen={"antenne": antenne, "role": role},
            roles=fr.options(fr.ROLES),
            fr=fr,
        )

    @router.get("/espace/file-attente")
    async def waiting(request: Request, role: str = "coach", antenne: str = "") -> Response:
        staff = space.staff(request)
        if staff is None:
            return space.to_sign_in(request)
        chosen = VolunteerRole.SPONSOR if role == VolunteerRole.SPONSOR.value else VolunteerRole.COACH
        found = await space.step(
            staff, "waiting_list.read", lambda: service.waiting_list(chosen, antenne or None), count=len
        )
        return space.render(
            request,
            "file_attente.html",
            staff,
            entries=found if isinstance(found, list) else [],
            role=chosen,
            antenna=antenne,
            antennas=sorted({c.antenna_id for c in await service.antenna_capacities()}),
            fr=fr,
        )

    async def show_antennas(
        request: Request, failed: tuple[str, AntennaForm, Refusal] | None = None, status: int = 200
    ) -> Response:
        staff = space.staff(request)
        assert staff is not None
        capacities = {c.antenna_id: c for c in await service.antenna_capacities()}
        found = await directory.antennas()
        forms = {a.id: AntennaForm.showing(a) for a in found or []}
        if failed is not None and failed[0] in forms:
            forms[failed[0]] = failed[1]
        done = request.query_params.get("fait")
        return space.render(
            request,
            "antennes.html",
            staff,
            status,
            directory=found,
            configured=directory.configured,
            not_configured=NOT_CONFIGURED,
            capacities=capacities,
            forms=forms,
            failed=failed,
            general=failed[2].message if failed is not None and failed[0] not in forms else None,
            done=next((a.name for a in found or [] if a.id == done), None),
            statuses=list(ANTENNA_STATUSES.items()),
            fr=fr,
        )

    @router.get("/espace/antennes")
    async def antennas(request: Request) -> Response:
        if space.staff(request) is None:
            return space.to_sign_in(request)
        return await show_antennas(request)

    @router.post("/espace/antennes/{antenna_id}")
    async def edit_antenna(request: Request, antenna_id: str) -> Response:
        staff = space.staff(request)
        if staff is None:
            return space.to_sign_in(request)
        if not antenna_belongs_to(antenna_id, space.association):
            return space.not_found(request, staff, "Antenne introuvable.")
        data, valid = await space.form(request)
        state = AntennaForm(**vars(space.state(data, ANTENNA_LABELS)), prefix=antenna_id)
        if not valid:
            return await show_antennas(request, (antenna_id, state, Refusal(403, EXPIRED, {})), 403)
        body = space.parse(AntennaEdit, {k: v for k in ANTENNA_LABELS if (v := data.text(k)) is not None})
        if isinstance(body, Refusal):
            state.errors = body.errors
            return await show_antennas(request, (antenna_id, state, body), 422)
        try:
            await directory.update(antenna_id, body.model_dump())
        except DirectoryRefused as refused:
            outcome = "introuvable" if refused.status == 404 else "refuse"
            await space.audit.record(staff.user, "antenna.update", outcome, antenna_id=antenna_id)
            errors = {k: v for k, v in refused.errors.items() if k in ANTENNA_LABELS}
            state.errors = errors
            refusal = Refusal(refused.status, refused.message, errors)
            return await show_antennas(request, (antenna_id, state, refusal), refused.status)
        except DirectoryUnavailable:
            await space.audit.record(staff.user, "antenna.update", "indisponible", antenna_id=antenna_id)
            message = UNAVAILABLE if directory.configured else NOT_CONFIGURED
            return await show_antennas(request, (antenna_id, state, Refusal(503, message, {})), 503)
        await space.audit.record(staff.user, "antenna.update", "ok", antenna_id=antenna_id)
        return space.back(request, "/espace/antennes", fait=antenna_id)

    @router.get("/espace/couverture")
    async def coverage(request: Request) -> Response:
        staff = space.staff(request)
        if staff is None:
            return space.to_sign_in(request)
        path = space.settings.coverage_map
        return space.render(request, "couverture.html", staff, available=path.is_file(), map_file=path)

    @router.get("/espace/couverture.png")
    async def coverage_map(request: Request) -> Response:
        staff = space.staff(request)
        path = space.settings.coverage_map
        if staff is None or not path.is_file():
            return Response(status_code=404)
        return FileResponse(path, media_type="image/png", headers=SECURITY_HEADERS)

    return router
