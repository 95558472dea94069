"""Routing's HTTP API for the associations' staff: decisions and their history, re-routing within the
association, its antennas, its waitlist."""
# No `from __future__ import annotations` here: FastAPI must see the routes' local dependencies itself.

import uuid
from typing import Annotated, Any, Literal, Self, TypeAlias

from fastapi import APIRouter, Depends, HTTPException, Path, Response
from pydantic import BaseModel, Field, model_validator

from services.routing.directory import UnknownCommune
from services.routing.domain import AntennaDetails, AntennaStatus, Rerouting, RoutedCase
from services.routing.service import (
    AntennaView,
    CaseNotRouted,
    NotAwaitingApesa,
    RerouteRaced,
    RoutingService,
)
from shared.auth import Authenticator, Staff
from shared.http import StrictRequest
from shared.schemas import Association, CaseRouted, RerouteCause

ANTENNA_ID = r"^[a-z0-9_]+-[a-z0-9]+(-[a-z0-9]+)*$"
INSEE_CODE = r"^(\d{5}|2[AB]\d{3})$"


class AntennaFields(StrictRequest):
    association: Association
    name: str = Field(min_length=1, max_length=200)
    city: str | None = Field(None, max_length=100)
    insee_code: str = Field(pattern=INSEE_CODE, description="Code INSEE de la commune de l'antenne")
    status: AntennaStatus
    contact: str = Field(min_length=1, max_length=300, description="Contact public de l'antenne")


class AntennaPatch(StrictRequest):
    name: str | None = Field(None, min_length=1, max_length=200)
    city: str | None = Field(None, max_length=100)
    insee_code: str | None = Field(None, pattern=INSEE_CODE)
    status: AntennaStatus | None = None
    contact: str | None = Field(None, min_length=1, max_length=300)

    @model_validator(mode="after")
    def only_the_city_can_be_cleared(self) -> Self:
        cleared = [
            name
            for name in ("name", "insee_code", "status", "contact")
            if name in self.model_fields_set and getattr(self, name) is None
        ]
        if cleared:
            raise ValueError(f"Ce champ ne peut pas être vidé : {', '.join(cleared)}.")
        return self


class RerouteBody(StrictRequest):
    """The holding association's staff route a case again, keeping it: after APESA's call, or once the commune
    is known. A case changes association only through coaching's handover or out-of-scope decision, which
    the holding association's case file records (with the consent asked again) before routing hears of it."""

    reason: Literal[RerouteCause.APESA_RESUMED, RerouteCause.LOCATION_FIXED]
    insee_code: str | None = Field(None, pattern=INSEE_CODE)
    postal_code: str | None = Field(None, pattern=r"^\d{5}$")
    commune: str | None = Field(None, max_length=100)

    @model_validator(mode="after")
    def coherent(self) -> Self:
        if self.reason is RerouteCause.LOCATION_FIXED and not (self.insee_code or self.postal_code):
            raise ValueError("Indiquez le code INSEE ou le code postal de la commune.")
        return self

    def rerouting(self) -> Rerouting:
        fields: dict[str, Any] = self.model_dump(exclude={"reason"}, exclude_none=True, mode="json")
        if "postal_code" in fields and "insee_code" not in fields:
            fields["insee_code"] = None  # the new postal code and name replace a wrong INSEE code
        return Rerouting(self.reason, None, fields)


class WaitlistEntry(BaseModel):
    position: int
    case_id: uuid.UUID


class Waitlist(BaseModel):
    association: Association
    entries: list[WaitlistEntry]


CASE_NOT_FOUND = "Dossier introuvable."
ANTENNA_NOT_FOUND = "Antenne introuvable."


def routes(service: RoutingService, auth: Authenticator) -> APIRouter:
    """Every route needs a staff token; staff see and change only what their association holds: its cases
    (a case held by the other association is "introuvable"), its antennas and its waitlist."""
    api = APIRouter()
    Authenticated: TypeAlias = Annotated[Staff, Depends(auth.staff())]

    async def held_case(case_id: uuid.UUID, staff: Authenticated) -> RoutedCase:
        case = await service.case(case_id)
        if case is None or case.association is not staff.association:
            raise HTTPException(404, CASE_NOT_FOUND)
        return case

    def own_antenna(antenna_id: str, staff: Authenticated) -> str:
        if not antenna_id.startswith(f"{staff.association.value}-"):
            raise HTTPException(404, ANTENNA_NOT_FOUND)
        return antenna_id

    def writable_antenna(
        antenna_id: Annotated[str, Path(pattern=ANTENNA_ID, max_length=100)], staff: Authenticated
    ) -> str:
        if not antenna_id.startswith(f"{staff.association.value}-"):
            raise HTTPException(403, f"Le personnel de {staff.association.display_name} n'édite que ses antennes.")
        return antenna_id

    HeldCase: TypeAlias = Annotated[RoutedCase, Depends(held_case)]
    OwnAntenna: TypeAlias = Annotated[str, Depends(own_antenna)]
    WritableAntenna: TypeAlias = Annotated[str, Depends(writable_antenna)]

    @api.get(
        "/cases/{case_id}",
        tags=["routing"],
        response_model=RoutedCase,
        summary="Routing decision and history of a case this association holds",
        responses={404: {}},
    )
    async def get_case(case: HeldCase) -> RoutedCase:
        return case

    @api.post(
        "/cases/{case_id}/reroute",
        tags=["routing"],
        response_model=CaseRouted,
        summary="Route a case again within its association: after APESA, or with its commune corrected",
        responses={404: {}, 409: {}, 422: {}},
    )
    async def reroute(case: HeldCase, body: RerouteBody) -> CaseRouted:
        try:
            return await service.reroute_by_staff(case.case_id, body.rerouting())
        except CaseNotRouted:
            raise HTTPException(404, CASE_NOT_FOUND) from None
        except NotAwaitingApesa:
            raise HTTPException(409, "Ce dossier n'attend pas le retour d'APESA.") from None
        except RerouteRaced:
            raise HTTPException(
                409, "Une autre réorientation de ce dossier vient d'avoir lieu : rechargez-le."
            ) from None

    @api.get(
        "/antennas",
        tags=["antennas"],
        response_model=list[AntennaView],
        summary="The association's antennas with their free places",
    )
    async def list_antennas(staff: Authenticated) -> list[AntennaView]:
        return await service.antennas(staff.association)

    @api.get(
        "/antennas/{antenna_id}",
        tags=["antennas"],
        response_model=AntennaView,
        summary="One antenna of the association",
        responses={404: {}},
    )
    async def get_antenna(antenna_id: OwnAntenna) -> AntennaView:
        antenna = await service.antenna(antenna_id)
        if antenna is None:
            raise HTTPException(404, ANTENNA_NOT_FOUND)
        return antenna

    @api.put(
        "/antennas/{antenna_id}",
        tags=["antennas"],
        response_model=AntennaView,
        summary="Create or replace an antenna of the association",
        responses={201: {}, 403: {}, 422: {}},
    )
    async def put_antenna(antenna_id: WritableAntenna, body: AntennaFields, response: Response) -> AntennaView:
        if not antenna_id.startswith(f"{body.association.value}-"):
            raise HTTPException(422, f"L'identifiant doit commencer par « {body.association.value}- ».")
        try:
            antenna, created = await service.put_antenna(antenna_id, AntennaDetails(**dict(body)))
        except UnknownCommune:
            raise HTTPException(422, f"Commune inconnue : aucun code INSEE {body.insee_code}.") from None
        if created:
            response.status_code = 201
        return antenna

    @api.patch(
        "/antennas/{antenna_id}",
        tags=["antennas"],
        response_model=AntennaView,
        summary="Change the status, contact... of an antenna of the association",
        responses={404: {}, 422: {}},
    )
    async def patch_antenna(antenna_id: OwnAntenna, body: AntennaPatch) -> AntennaView:
        try:
            antenna = await service.patch_antenna(antenna_id, body.model_dump(mode="json", exclude_unset=True))
        except UnknownCommune:
            raise HTTPException(422, f"Commune inconnue : aucun code INSEE {body.insee_code}.") from None
        if antenna is None:
            raise HTTPException(404, ANTENNA_NOT_FOUND)
        return antenna

    @api.get(
        "/waitlists/{association}",
        tags=["antennas"],
        response_model=Waitlist,
        summary="The association's cases waiting for a place, in order",
        responses={403: {}},
    )
    async def waitlist(association: Association, staff: Authenticated) -> Waitlist:
        if association is not staff.association:
            raise HTTPException(403, f"Seul le personnel de {association.display_name} voit sa liste d'attente.")
        entries = await service.waitlist(association)
        return Waitlist(
            association=association,
            entries=[WaitlistEntry(position=i + 1, case_id=uuid.UUID(case)) for i, case in enumerate(entries)],
        )

    return api
