"""Composition root of coaching, one instance per association (setting ASSOCIATION).

CaseRouted opens this association's case files; staff steps emit events through the outbox; a
background task keeps the coordinators' gauges and the antennas' published free places current.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.coaching.api import cases, volunteers
from services.coaching.audit import AuditTrail
from services.coaching.auth import StaffPasswords, audit_refusals
from services.coaching.gauges import CoordinationGauges
from services.coaching.handlers import CaseRoutedHandler
from services.coaching.pages import FORM_PATHS, page_routes
from services.coaching.service import Clock, CoachingService
from services.coaching.settings import CoachingSettings
from services.coaching.store import CoachingStores
from services.coaching.store.mongo import mongo_stores
from shared.bootstrap import ServiceRuntime
from shared.metrics import Metrics
from shared.pages import static_files
from shared.runtime import BackgroundTask


def build_service(
    settings: CoachingSettings,
    *,
    stores: CoachingStores | None = None,
    runtime: ServiceRuntime | None = None,
    clock: Clock | None = None,
) -> CoachingService:
    """The service on the given stores (the tests' fakes), or on the runtime's MongoDB and outbox relay."""
    if stores is None:
        if runtime is None:
            raise ValueError("build_service needs either stores or a runtime to build them from")
        stores = mongo_stores(runtime.db, runtime.relay)
    metrics = runtime.metrics if runtime is not None else Metrics(settings.service_name)
    return CoachingService(settings, stores, metrics, clock)


def create_app(
    settings: CoachingSettings | None = None, *, stores: CoachingStores | None = None, clock: Clock | None = None
) -> FastAPI:
    settings = settings or CoachingSettings()
    runtime = ServiceRuntime(settings)
    stores = stores or mongo_stores(runtime.db, runtime.relay)
    service = build_service(settings, stores=stores, runtime=runtime, clock=clock)
    audit = AuditTrail(stores.audit, settings.association, service.clock)
    gauges = CoordinationGauges(runtime.metrics.registry, settings.association)
    authenticator = runtime.authenticator(audit=audit_refusals(audit))
    auth = authenticator.staff(settings.association)
    passwords = StaffPasswords(settings.staff_passwords, settings.association, authenticator.failures)

    runtime.consumer.on("CaseRouted", CaseRoutedHandler(service))

    async def refresh() -> None:
        """Certifications and absences end with time: recount, and show the figures as gauges."""
        await service.recount_capacity()
        gauges.show(await service.figures())

    refresher = BackgroundTask("coaching-refresh", refresh, interval_s=settings.dashboard_refresh_s)
    runtime.on_start(stores.audit.ensure_indexes)
    runtime.on_start(service.start)
    runtime.on_start(refresher.start)
    runtime.on_stop(refresher.stop)

    app = runtime.http_app(
        f"Relais — coaching ({settings.association.display_name})",
        "Accompagnement d'une association : consentement, comité d'engagement, bénévoles, séances, points "
        "d'étape collectifs, clôture et transmission. Toutes les routes demandent un jeton du personnel de "
        "l'association (Authorization: Bearer ...) et chaque accès à un dossier est journalisé.",
        cases.router(service, auth, audit),
        volunteers.router(service, auth, audit, gauges),
        page_routes(service, passwords, audit, settings),
        form_paths=FORM_PATHS,
    )
    app.mount("/static", static_files(), name="static")
    return app
