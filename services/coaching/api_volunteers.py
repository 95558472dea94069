"""Staff API on volunteers and antennas, and the coordinators' views (waiting list, figures)."""

import uuid
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import Field

from services.coaching.accompaniment import Accompaniment
from services.coaching.api_guard import AntennaId, Guard, Strict, check_antenna
from services.coaching.audit import AuditTrail
from services.coaching.auth import Staff, StaffAuth
from services.coaching.domain import TransitionRefused
from services.coaching.gauges import CoordinationGauges
from services.coaching.volunteers import Role, Volunteer

Sectors = Annotated[list[Annotated[str, Field(min_length=1, max_length=80)]], Field(max_length=20)]


class VolunteerIn(Strict):
    volunteer_id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,63}$")] | None = None
    display_name: Annotated[str, Field(min_length=1, max_length=120)]
    role: Role
    antenna_id: AntennaId
    sectors: Sectors = Field(default_factory=list)
    max_people: int = Field(ge=1, le=30)
    certified_until: date | None = None
    available: bool = True
    unavailable_until: date | None = None


class VolunteerChange(Strict):
    """Only the fields sent change."""

    display_name: Annotated[str, Field(min_length=1, max_length=120)] | None = None
    antenna_id: AntennaId | None = None
    sectors: Sectors | None = None
    max_people: int | None = Field(None, ge=1, le=30)
    certified_until: date | None = None
    available: bool | None = None
    unavailable_until: date | None = None


def router(service: Accompaniment, auth: StaffAuth, audit: AuditTrail, gauges: CoordinationGauges) -> APIRouter:
    api = APIRouter()
    guard = Guard(audit)
    Authenticated = Annotated[Staff, Depends(auth)]

    async def shown(volunteer: Volunteer) -> dict[str, Any]:
        load = (await service.cases.loads())[volunteer.volunteer_id]
        doc = volunteer.to_doc()
        del doc["version"]
        return {"volunteer_id": doc.pop("_id"), **doc, "load": load,
                "free_slots": volunteer.free_slots(service.today(), load),
                "unavailable": volunteer.unavailability(service.today())}

    @api.post("/volunteers", status_code=201, tags=["volunteers"], responses={409: {"description": "Identifiant déjà pris"}},
              summary="Register a coach, sponsor or expert of this association")
    async def add(body: VolunteerIn, staff: Authenticated) -> dict[str, Any]:
        check_antenna(body.antenna_id, service.association)
        volunteer = Volunteer(**{**body.model_dump(), "volunteer_id": body.volunteer_id or str(uuid.uuid4())})

        async def register() -> Volunteer:
            if not await service.add_volunteer(volunteer):
                raise TransitionRefused("Un bénévole porte déjà cet identifiant.")
            return volunteer

        return await shown(await guard(staff, "volunteer.add", register, volunteer_id=volunteer.volunteer_id))

    @api.get("/volunteers", tags=["volunteers"], summary="Volunteers with their current load")
    async def list_volunteers(staff: Authenticated, antenna_id: str | None = None,
                              role: Role | None = None) -> dict[str, Any]:
        return {"volunteers": [await shown(v) for v in await service.volunteers.find(antenna_id, role)]}

    @api.get("/volunteers/{volunteer_id}", tags=["volunteers"], responses={404: {"description": "Bénévole introuvable"}},
             summary="One volunteer with their current load")
    async def get_volunteer(volunteer_id: str, staff: Authenticated) -> dict[str, Any]:
        volunteer = await service.volunteers.get(volunteer_id)
        if volunteer is None:
            raise HTTPException(404, "Bénévole introuvable.")
        return await shown(volunteer)

    @api.patch("/volunteers/{volunteer_id}", tags=["volunteers"], responses={404: {"description": "Bénévole introuvable"}},
               summary="Change availability, capacity, certification, antenna or sectors")
    async def change(volunteer_id: str, body: VolunteerChange, staff: Authenticated) -> dict[str, Any]:
        check_antenna(body.antenna_id, service.association)
        changes = body.model_dump(include=body.model_fields_set)

        def edit(volunteer: Volunteer) -> None:
            for name, value in changes.items():
                setattr(volunteer, name, value)

        return await shown(await guard(staff, "volunteer.change", lambda: service.change_volunteer(volunteer_id, edit),
                                       volunteer_id=volunteer_id))

    @api.get("/antennas", tags=["coordination"], summary="Free places per antenna, as last published to routing")
    async def antennas(staff: Authenticated) -> dict[str, Any]:
        return {"antennas": [{"antenna_id": doc.pop("_id"), **doc} for doc in await service.antennas.find()]}

    @api.get("/waiting-list", tags=["coordination"],
             summary="Approved cases waiting for a coach or sponsor, first approved first")
    async def waiting(staff: Authenticated, role: Literal[Role.COACH, Role.SPONSOR] = Query(Role.COACH),
                      antenna_id: str | None = None) -> dict[str, Any]:
        entries = await guard(staff, "waiting_list.read", lambda: service.waiting(role, antenna_id), count=len)
        return {"role": role.value, "cases": entries}

    @api.get("/coordination", tags=["coordination"],
             summary="Per antenna: open cases by step, waiting times, overdue cases, volunteers' load")
    async def coordination(staff: Authenticated, antenna_id: str | None = None) -> dict[str, Any]:
        figures = await guard(staff, "coordination.read", lambda: service.figures(antenna_id), count=len)
        if antenna_id is None:
            gauges.show(figures)
        return {"association": service.association.value, "as_of": service.today(),
                "targets": {"committee_days": service.targets.committee_days,
                            "coach_days": service.targets.coach_days},
                "antennas": figures}

    return api
