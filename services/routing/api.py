"""Routing's HTTP API: decisions and their history, staff re-routing, the antenna directory, waitlists."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.routing.directory import UnknownCommune, placed
from services.routing.domain import AntennaStatus, free_places
from services.routing.router import Router, Rerouting
from services.routing.store import RoutingStore
from shared.schemas import Association, Procedure, RerouteCause, RoutingStatus

ANTENNA_ID = r"^[a-z0-9_]+-[a-z0-9]+(-[a-z0-9]+)*$"
INSEE_CODE = r"^(\d{5}|2[AB]\d{3})$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AntennaFields(Strict):
    association: Association
    name: str = Field(min_length=1, max_length=200)
    city: str | None = Field(None, max_length=100)
    insee_code: str = Field(pattern=INSEE_CODE, description="Code INSEE de la commune de l'antenne")
    status: AntennaStatus
    contact: str = Field(min_length=1, max_length=300, description="Contact public de l'antenne")


class AntennaPatch(Strict):
    name: str | None = Field(None, min_length=1, max_length=200)
    city: str | None = Field(None, max_length=100)
    insee_code: str | None = Field(None, pattern=INSEE_CODE)
    status: AntennaStatus | None = None
    contact: str | None = Field(None, min_length=1, max_length=300)


class RerouteBody(Strict):
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

    def changes(self) -> dict[str, Any]:
        fields = self.model_dump(exclude={"reason", "requested_by"}, exclude_none=True, mode="json")
        if "postal_code" in fields and "insee_code" not in fields:
            fields["insee_code"] = None  # the new postal code and name replace a wrong INSEE code
        return fields


def router(store: RoutingStore, routing: Router) -> APIRouter:
    api = APIRouter()

    @api.get("/cases/{case_id}", tags=["routing"], summary="Routing decision and history of a case",
             responses={404: {}})
    async def get_case(case_id: uuid.UUID) -> dict[str, Any]:
        doc = await store.get(str(case_id))
        if doc is None:
            raise HTTPException(404, "Dossier introuvable.")
        return {"case_id": doc.pop("_id"), **doc}

    @api.post("/cases/{case_id}/reroute", tags=["routing"], summary="Route a case again (staff)",
              responses={404: {}, 409: {}, 422: {}})
    async def reroute(case_id: uuid.UUID, body: RerouteBody) -> dict[str, Any]:
        doc = await store.get(str(case_id))
        if doc is None:
            raise HTTPException(404, "Dossier introuvable.")
        if body.reason is RerouteCause.APESA_RESUMED and doc.get("status") != RoutingStatus.APESA_FIRST.value:
            raise HTTPException(409, "Ce dossier n'attend pas le retour d'APESA.")
        routed = await routing.reroute(str(case_id), Rerouting(body.reason, body.requested_by, body.changes()))
        if routed is None:
            raise HTTPException(409, "Une autre réorientation de ce dossier vient d'avoir lieu : rechargez-le.")
        return routed.model_dump(mode="json")

    @api.get("/antennas", tags=["antennas"], summary="The antenna directory with free places")
    async def list_antennas() -> list[dict[str, Any]]:
        capacities = await store.list_capacities()
        return [_antenna_view(doc, capacities.get(doc["_id"]), routing) for doc in await store.list_antennas()]

    @api.get("/antennas/{antenna_id}", tags=["antennas"], summary="One antenna", responses={404: {}})
    async def get_antenna(antenna_id: str) -> dict[str, Any]:
        doc = await store.get_antenna(antenna_id)
        if doc is None:
            raise HTTPException(404, "Antenne introuvable.")
        return _antenna_view(doc, (await store.list_capacities()).get(antenna_id), routing)

    @api.put("/antennas/{antenna_id}", tags=["antennas"], summary="Create or replace an antenna",
             responses={201: {}, 422: {}})
    async def put_antenna(antenna_id: Annotated[str, Path(pattern=ANTENNA_ID, max_length=100)],
                          body: AntennaFields, response: Response) -> dict[str, Any]:
        if not antenna_id.startswith(f"{body.association.value}-"):
            raise HTTPException(422, f"L'identifiant doit commencer par « {body.association.value}- ».")
        doc, created = await store.put_antenna(antenna_id, _placed(body.model_dump(mode="json"), routing))
        if created:
            response.status_code = 201
        await _after_edit(doc, routing)
        return _antenna_view(doc, (await store.list_capacities()).get(antenna_id), routing)

    @api.patch("/antennas/{antenna_id}", tags=["antennas"], summary="Change an antenna's status, contact...",
               responses={404: {}, 422: {}})
    async def patch_antenna(antenna_id: str, body: AntennaPatch) -> dict[str, Any]:
        fields = body.model_dump(mode="json", exclude_unset=True)
        if fields.get("insee_code"):
            fields = _placed(fields, routing)
        doc = await store.patch_antenna(antenna_id, fields)
        if doc is None:
            raise HTTPException(404, "Antenne introuvable.")
        await _after_edit(doc, routing)
        return _antenna_view(doc, (await store.list_capacities()).get(antenna_id), routing)

    @api.get("/waitlists/{association}", tags=["antennas"], summary="Cases waiting for a place, in order")
    async def waitlist(association: Association) -> dict[str, Any]:
        entries = await store.waitlist(association.value)
        return {"association": association.value,
                "entries": [{"position": i + 1, "case_id": case} for i, case in enumerate(entries)]}

    return api


def _placed(fields: dict[str, Any], routing: Router) -> dict[str, Any]:
    try:
        return placed(fields, routing.gazetteer)
    except UnknownCommune:
        raise HTTPException(422, f"Commune inconnue : aucun code INSEE {fields['insee_code']}.") from None


async def _after_edit(doc: dict[str, Any], routing: Router) -> None:
    """An antenna that opens (or reopens) takes the waitlist's first cases if it has room."""
    if doc.get("status") == AntennaStatus.OPEN.value:
        await routing.promote_waitlist(Association(doc["association"]))


def _antenna_view(doc: dict[str, Any], capacity: dict[str, Any] | None, routing: Router) -> dict[str, Any]:
    capacity = capacity or {}
    reported = capacity.get("reported")
    view = {"id": doc["_id"], **{k: v for k, v in doc.items() if k != "_id"}}
    view["reported_capacity"] = reported
    view["free_places"] = free_places(reported, capacity.get("reservations", []),
                                      routing.rules.first_volunteer[Association(doc["association"])])
    view["held_by"] = [r["case_id"] for r in capacity.get("reservations", [])]  # case ids only
    return view
