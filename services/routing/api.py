"""Routing's HTTP API: the decision taken for a case and its history."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException

from services.routing.store import RoutingStore


def router(store: RoutingStore) -> APIRouter:
    api = APIRouter(tags=["routing"])

    @api.get("/cases/{case_id}", summary="Routing decision and history of a case", responses={404: {}})
    async def get_case(case_id: uuid.UUID) -> dict[str, Any]:
        doc = await store.get(str(case_id))
        if doc is None:
            raise HTTPException(404, "Dossier introuvable.")
        return {"case_id": doc.pop("_id"), **doc}

    return api
