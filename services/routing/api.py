"""Routing's HTTP API: decisions and their history, staff re-routing, the antenna directory, waitlists."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response
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
from shared.http import StrictRequest
from shared.schemas import Association, CaseRouted, Procedure, RerouteCause

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
    def only_the_city_can_be_cleared(self) -> AntennaPatch:
        cleared = [
            name
            for name in ("name", "insee_code", "status", "contact")
            if name in self.model_fields_set and getattr(self, name) is None
        ]
        if cleared:
            raise ValueError(f"Ce champ ne peut pas être vidé : {', '.join(cleared)}.")
        return self


class RerouteBody(StrictRequest):
    """Staff route a case again: after APESA's call, once the commune is known, or by judgement."""

    reason: RerouteCause
    requested_by: Association | None = None
    procedure: Procedure | None = None
    court_decision_date: date | None = None
    insee_code: str | None = Field(None, pattern=INSEE_CODE)
    postal_code: str | None = Field(None, pattern=r"^\d{5}$")
    commune: str | None = Field(None, max_length=100)

    @model_validator(mode="after")
    def coherent(self) -> RerouteBody:
        if self.reason is RerouteCause.PLACE_FREED:
            raise ValueError("Ce motif est réservé à la liste d'attente.")
        if self.reason is RerouteCause.LOCATION_FIXED and not (self.insee_code or self.postal_code):
            raise ValueError("Indiquez le code INSEE ou le code postal de la commune.")
        if self.reason in (RerouteCause.HANDOVER, RerouteCause.OUT_OF_SCOPE) and self.requested_by is None:
            raise ValueError("Indiquez l'association qui demande la nouvelle orientation.")
        return self

    def rerouting(self) -> Rerouting:
        fields: dict[str, Any] = self.model_dump(exclude={"reason", "requested_by"}, exclude_none=True, mode="json")
        if "postal_code" in fields and "insee_code" not in fields:
            fields["insee_code"] = None  # the new postal code and name replace a wrong INSEE code
        return Rerouting(self.reason, self.requested_by, fields)


class WaitlistEntry(BaseModel):
    position: int
    case_id: uuid.UUID


class Waitlist(BaseModel):
    association: Association
    entries: list[WaitlistEntry]


def routes(service: RoutingService) -> APIRouter:
    api = APIRouter()

    @api.get(
        "/cases/{case_id}",
        tags=["routing"],
        response_model=RoutedCase,
        summary="Routing decision and history of a case",
        responses={404: {}},
    )
    async def get_case(case_id: uuid.UUID) -> RoutedCase:
        case = await service.case(case_id)
        if case is None:
            raise HTTPException(404, "Dossier introuvable.")
        return case

    @api.post(
        "/cases/{case_id}/reroute",
        tags=["routing"],
        response_model=CaseRouted,
        summary="Route a case again (staff)",
        responses={404: {}, 409: {}, 422: {}},
    )
    async def reroute(case_id: uuid.UUID, body: RerouteBody) -> CaseRouted:
        try:
            return await service.reroute_by_staff(case_id, body.rerouting())
        except CaseNotRouted:
            raise HTTPException(404, "Dossier introuvable.") from None
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
        summary="The antenna directory with free places",
    )
    async def list_antennas() -> list[AntennaView]:
        return await service.antennas()

    @api.get(
        "/antennas/{antenna_id}",
        tags=["antennas"],
        response_model=AntennaView,
        summary="One antenna",
        responses={404: {}},
    )
    async def get_antenna(antenna_id: str) -> AntennaView:
        antenna = await service.antenna(antenna_id)
        if antenna is None:
            raise HTTPException(404, "Antenne introuvable.")
        return antenna

    @api.put(
        "/antennas/{antenna_id}",
        tags=["antennas"],
        response_model=AntennaView,
        summary="Create or replace an antenna",
        responses={201: {}, 422: {}},
    )
    async def put_antenna(
        antenna_id: Annotated[str, Path(pattern=ANTENNA_ID, max_length=100)], body: AntennaFields, response: Response
    ) -> AntennaView:
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
        summary="Change an antenna's status, contact...",
        responses={404: {}, 422: {}},
    )
    async def patch_antenna(antenna_id: str, body: AntennaPatch) -> AntennaView:
        try:
            antenna = await service.patch_antenna(antenna_id, body.model_dump(mode="json", exclude_unset=True))
        except UnknownCommune:
            raise HTTPException(422, f"Commune inconnue : aucun code INSEE {body.insee_code}.") from None
        if antenna is None:
            raise HTTPException(404, "Antenne introuvable.")
        return antenna

    @api.get(
        "/waitlists/{association}",
        tags=["antennas"],
        response_model=Waitlist,
        summary="Cases waiting for a place, in order",
    )
    async def waitlist(association: Association) -> Waitlist:
        entries = await service.waitlist(association)
        return Waitlist(
            association=association,
            entries=[WaitlistEntry(position=i + 1, case_id=uuid.UUID(case)) for i, case in enumerate(entries)],
        )

    return api
