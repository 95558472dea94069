"""Coaching's pages: the staff space of one association (`/espace/...`, signed-in staff only) and its public
volunteer application form (`/benevolat`).

`cases`: sign-in, case files and every step, checkpoints; `coordination`: board, volunteers, waiting list,
antennas, coverage; `volunteering`: applications. `space` holds what they share, `labels` the French words.
"""

from __future__ import annotations

from fastapi import APIRouter

from services.coaching.audit import AuditTrail
from services.coaching.auth import StaffPasswords
from services.coaching.directory import AntennaDirectory, RoutingDirectory
from services.coaching.pages.cases import case_routes
from services.coaching.pages.coordination import coordination_routes
from services.coaching.pages.space import Space
from services.coaching.pages.volunteering import volunteering_routes
from services.coaching.service import CoachingService
from services.coaching.settings import CoachingSettings

# The prefixes under which forms are posted (the JSON API takes JSON only).
FORM_PATHS = ("/espace", "/benevolat")


def page_routes(
    service: CoachingService,
    passwords: StaffPasswords,
    audit: AuditTrail,
    settings: CoachingSettings,
    directory: AntennaDirectory | None = None,
) -> APIRouter:
    """`directory`: routing's antennas (its HTTP API unless the tests give another)."""
    space = Space(service, passwords, audit, settings)
    router = APIRouter(include_in_schema=False)
    router.include_router(case_routes(space))
    router.include_router(volunteering_routes(space))
    router.include_router(
        coordination_routes(
            space,
            directory or RoutingDirectory(settings.routing_url, settings.association, settings.routing_bearer()),
        )
    )
    return router
