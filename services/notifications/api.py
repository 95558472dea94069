"""Notifications' HTTP API: what was planned for a case (no contact details)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter

from services.notifications.store import NotificationStore


def router(store: NotificationStore) -> APIRouter:
    api = APIRouter(tags=["notifications"])

    @api.get("/cases/{case_id}/notifications", summary="Notifications recorded for a case")
    async def notifications(case_id: uuid.UUID) -> dict[str, Any]:
        return {"case_id": str(case_id), "notifications": await store.for_case(str(case_id))}

    return api
