"""Staff API on volunteers and antennas, and the coordinators' views (waiting list, figures)."""
# No `from __future__ import annotations` here: FastAPI must see the routes' local `Authenticated` type itself.

import uuid
from datetime import date
from typing import Annotated, Literal, Self, TypeAlias

from fastapi import APIRouter, Depends, Query
from pydantic import Field, field_validator, model_validator

from services.coaching.api.guard import AntennaId, Email, Guard, Responses, check_antenna
from services.coaching.api.views import (
    AntennaList,
    AntennaView,
    ApplicationList,
    ApplicationView,
    CoordinationView,
    VolunteerList,
    VolunteerView,
    WaitingEntry,
    WaitingListView,
)
from services.coaching.audit import AuditTrail
from services.coaching.auth import Staff, StaffAuth
from services.coaching.domain.applications import ApplicationStatus
from services.coaching.domain.volunteers import Volunteer
from services.coaching.gauges import CoordinationGauges
from services.coaching.service import CoachingService
from shared.http import StrictRequest
from shared.schemas import VolunteerRole

Sectors = Annotated[list[Annotated[str, Field(min_length=1, max_length=80)]], Field(max_length=20)]
DisplayName = Annotated[str, Field(min_length=1, max_length=120)]
NOT_FOUND: Responses = {404: {"description": "Bénévole introuvable"}}


class VolunteerIn(StrictRequest):
    volunteer_id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,63}$")] | None = None
    display_name: DisplayName
    role: VolunteerRole
    antenna_id: AntennaId
    sectors: Sectors = Field(default_factory=list)
    max_people: int = Field(ge=1, le=30)
    certified_until: date | None = None
    available: bool = True
    unavailable_until: date | None = None
    email: Email | None = Field(None, description="Adresse professionnelle : les notifications d'attribution y vont")


class VolunteerChange(StrictRequest):
    """Only the fields sent change; `null` clears a date or the email."""

    display_name: DisplayName | None = None
    antenna_id: AntennaId | None = None
    sectors: Sectors | None = None
    max_people: int | None = Field(None, ge=1, le=30)
    certified_until: date | None = None
    available: bool | None = None
    unavailable_until: date | None = None
    email: Email | None = None

    @model_validator(mode="after")
    def required_stay_set(self) -> Self:
        for name in ("display_name", "antenna_id", "sectors", "max_people", "available"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"« {name} » ne peut pas être effacé.")
        return self


class ApplicationIn(StrictRequest):
    """Someone offers to volunteer (the public form of `/benevolat`). Personal data, kept in this instance."""

    display_name: DisplayName
    email: Email
    phone: Annotated[str, Field(pattern=r"^\+?[0-9][0-9 .\-]{8,18}[0-9]$")] | None = None
    role: VolunteerRole
    city: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    sectors: Sectors = Field(default_factory=list)
    experience: Annotated[str, Field(max_length=2000)] | None = None
    consent: bool

    @field_validator("consent")
    @classmethod
    def consent_given(cls, value: bool) -> bool:
        if not value:
            raise ValueError("Votre accord est nécessaire pour étudier votre candidature.")
        return value


class AcceptanceIn(StrictRequest):
    """Where and how much the new volunteer helps; a coach's certification is needed to follow anyone."""

    antenna_id: AntennaId
    sectors: Sectors = Field(default_factory=list)
    max_people: int = Field(ge=1, le=30)
    certified_until: date | None = None


APPLICATION_NOT_FOUND: Responses = {404: {"description": "Candidature introuvable"}}


def router(service: CoachingService, auth: StaffAuth, audit: AuditTrail, gauges: CoordinationGauges) -> APIRouter:
    api = APIRouter()
    guard = Guard(audit)
    Authenticated: TypeAlias = Annotated[Staff, Depends(auth)]

    @api.post(
        "/volunteers",
        status_code=201,
        response_model=VolunteerView,
        tags=["volunteers"],
        responses={409: {"description": "Identifiant déjà pris"}},
        summary="Register a coach, sponsor or expert of this association",
    )
    async def add(body: VolunteerIn, staff: Authenticated) -> VolunteerView:
        check_antenna(body.antenna_id, service.association)
        volunteer = Volunteer(**{**body.model_dump(), "volunteer_id": body.volunteer_id or str(uuid.uuid4())})
        return VolunteerView.of(
            await guard(
                staff, "volunteer.add", lambda: service.add_volunteer(volunteer), volunteer_id=volunteer.volunteer_id
            )
        )

    @api.get(
        "/volunteers", response_model=VolunteerList, tags=["volunteers"], summary="Volunteers with their current load"
    )
    async def list_volunteers(
        staff: Authenticated, antenna_id: str | None = None, role: VolunteerRole | None = None
    ) -> VolunteerList:
        return VolunteerList(volunteers=[VolunteerView.of(s) for s in await service.list_volunteers(antenna_id, role)])

    @api.get(
        "/volunteers/{volunteer_id}",
        response_model=VolunteerView,
        tags=["volunteers"],
        responses=NOT_FOUND,
        summary="One volunteer with their current load",
    )
    async def get_volunteer(volunteer_id: str, staff: Authenticated) -> VolunteerView:
        return VolunteerView.of(
            await guard(staff, "volunteer.read", lambda: service.volunteer(volunteer_id), volunteer_id=volunteer_id)
        )

    @api.patch(
        "/volunteers/{volunteer_id}",
        response_model=VolunteerView,
        tags=["volunteers"],
        responses=NOT_FOUND,
        summary="Change availability, capacity, certification, antenna, sectors or email",
    )
    async def change(volunteer_id: str, body: VolunteerChange, staff: Authenticated) -> VolunteerView:
        check_antenna(body.antenna_id, service.association)
        changes = body.model_dump(include=body.model_fields_set)
        return VolunteerView.of(
            await guard(
                staff,
                "volunteer.change",
                lambda: service.change_volunteer(volunteer_id, changes),
                volunteer_id=volunteer_id,
            )
        )

    @api.get(
        "/volunteer-applications",
        response_model=ApplicationList,
        tags=["volunteers"],
        summary="People who applied to volunteer, the oldest first (pending ones unless status says otherwise)",
    )
    async def applications(
        staff: Authenticated, status: ApplicationStatus | None = ApplicationStatus.PENDING
    ) -> ApplicationList:
        found = await guard(staff, "application.list", lambda: service.find_applications(status), count=len)
        return ApplicationList(applications=[ApplicationView.of(a) for a in found])

    @api.post(
        "/volunteer-applications/{application_id}/acceptance",
        response_model=ApplicationView,
        tags=["volunteers"],
        responses={**APPLICATION_NOT_FOUND, 409: {"description": "Candidature déjà traitée"}},
        summary="Accept an application: the applicant becomes a volunteer and is told (VolunteerApplicationDecided)",
    )
    async def accept(application_id: uuid.UUID, body: AcceptanceIn, staff: Authenticated) -> ApplicationView:
        check_antenna(body.antenna_id, service.association)
        accepted = await guard(
            staff,
            "application.accept",
            lambda: service.accept_application(
                application_id,
                staff.user,
                antenna_id=body.antenna_id,
                sectors=body.sectors,
                max_people=body.max_people,
                certified_until=body.certified_until,
            ),
        )
        return ApplicationView.of(accepted)

    @api.post(
        "/volunteer-applications/{application_id}/refusal",
        response_model=ApplicationView,
        tags=["volunteers"],
        responses={**APPLICATION_NOT_FOUND, 409: {"description": "Candidature déjà traitée"}},
        summary="Decline an application: the applicant is told (VolunteerApplicationDecided)",
    )
    async def decline(application_id: uuid.UUID, staff: Authenticated) -> ApplicationView:
        declined = await guard(
            staff, "application.decline", lambda: service.decline_application(application_id, staff.user)
        )
        return ApplicationView.of(declined)

    @api.get(
        "/antennas",
        response_model=AntennaList,
        tags=["coordination"],
        summary="Free places per antenna, as last published to routing",
    )
    async def antennas(staff: Authenticated) -> AntennaList:
        return AntennaList(antennas=[AntennaView.of(c) for c in await service.antenna_capacities()])

    @api.get(
        "/waiting-list",
        response_model=WaitingListView,
        tags=["coordination"],
        summary="Approved cases waiting for a coach or sponsor, first approved first",
    )
    async def waiting(
        staff: Authenticated,
        role: Annotated[Literal[VolunteerRole.COACH, VolunteerRole.SPONSOR], Query()] = VolunteerRole.COACH,
        antenna_id: str | None = None,
    ) -> WaitingListView:
        entries = await guard(staff, "waiting_list.read", lambda: service.waiting_list(role, antenna_id), count=len)
        return WaitingListView(role=role, cases=[WaitingEntry(**e) for e in entries])

    @api.get(
        "/coordination",
        response_model=CoordinationView,
        tags=["coordination"],
        summary="Per antenna: open cases by step, waiting times, overdue cases, volunteers' load",
    )
    async def coordination(staff: Authenticated, antenna_id: str | None = None) -> CoordinationView:
        figures = await guard(staff, "coordination.read", lambda: service.figures(antenna_id), count=len)
        if antenna_id is None:
            gauges.show(figures)
        return CoordinationView.of(
            service.association, service.today(), service.targets.committee_days, service.targets.coach_days, figures
        )

    return api
