"""Composition root of coaching, one instance per association (setting ASSOCIATION).

CaseRouted opens this association's case files; staff steps emit events through the outbox; a
background task keeps the coordinators' gauges and the antennas' published free places current.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import FastAPI

from services.coaching import api, api_volunteers
from services.coaching.accompaniment import Accompaniment
from services.coaching.audit import AuditTrail
from services.coaching.auth import StaffAuth
from services.coaching.gauges import CoordinationGauges
from services.coaching.handlers import CaseRoutedHandler
from services.coaching.settings import CoachingSettings
from services.coaching.store import CaseFileStore, CheckpointStore
from services.coaching.volunteer_store import AntennaCapacityStore, VolunteerStore
from shared.bootstrap import ServiceRuntime
from shared.schemas import Association

log = logging.getLogger("relais.coaching")
NAMES = {Association.SECOND_SOUFFLE: "Second Souffle", Association.SOIXANTE_MILLE_REBONDS: "60 000 rebonds"}


def create_app(settings: CoachingSettings | None = None) -> FastAPI:
    settings = settings or CoachingSettings()
    runtime = ServiceRuntime(settings)
    audit = AuditTrail(runtime.db, settings.association)
    service = Accompaniment(
        settings, CaseFileStore(runtime.db, runtime.relay), VolunteerStore(runtime.db),
        AntennaCapacityStore(runtime.db, runtime.relay, settings.association), CheckpointStore(runtime.db),
        runtime.metrics)
    gauges = CoordinationGauges(runtime.metrics.registry, settings.association)
    auth = StaffAuth(settings.staff_tokens, audit)
    runtime.consumer.on("CaseRouted", CaseRoutedHandler(service))
    runtime.on_start(audit.ensure_indexes)
    runtime.on_start(service.start)

    async def refresh() -> None:
        await service.refresh_capacity()
        gauges.show(await service.figures())

    app = runtime.http_app(
        f"Relais — coaching ({NAMES[settings.association]})",
        "Accompagnement d'une association : consentement, comité d'engagement, bénévoles, séances, points "
        "d'étape collectifs, clôture et transmission. Toutes les routes demandent un jeton du personnel de "
        "l'association (Authorization: Bearer ...) et chaque accès à un dossier est journalisé.",
        api.router(service, auth, audit, settings.coaching_sessions_planned),
        api_volunteers.router(service, auth, audit, gauges),
    )
    _run_in_background(app, refresh, settings.dashboard_refresh_s)
    return app


def _run_in_background(app: FastAPI, job: Callable[[], Awaitable[None]], every_s: float) -> None:
    """Run `job` now and every `every_s` while the app is up (inside the runtime's lifespan)."""
    started = app.router.lifespan_context

    async def loop() -> None:
        while True:
            try:
                await job()
            except Exception as exc:  # noqa: BLE001 - store or broker down: the next round retries
                log.warning("background refresh failed", extra={"error": type(exc).__name__})
            await asyncio.sleep(every_s)

    @contextlib.asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[None]:
        async with started(application):
            task = asyncio.create_task(loop(), name="coaching-refresh")
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app.router.lifespan_context = lifespan
