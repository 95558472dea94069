"""Composition root of intake: the one wiring of the service, its store, the outbox relay and the HTTP API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI

from services.intake.api import routes
from services.intake.pages import FORM_PATHS, page_routes
from services.intake.service import IntakeService, utc_now
from services.intake.settings import IntakeSettings
from services.intake.store import CaseStore, MongoCaseStore, MongoPartnerCredentials, PartnerCredentials
from shared.bootstrap import ServiceRuntime
from shared.http import RateLimiter
from shared.pages import static_files


def build_service(
    settings: IntakeSettings,
    *,
    runtime: ServiceRuntime | None = None,
    store: CaseStore | None = None,
    clock: Callable[[], datetime] | None = None,
) -> IntakeService:
    """The service on the runtime's database, or on the `store` given (the tests' fake)."""
    if store is None:
        if runtime is None:
            raise TypeError("build_service needs the runtime (production) or a store (tests)")
        store = MongoCaseStore(runtime.db, runtime.relay)
    return IntakeService(store, clock=clock or utc_now)


def create_app(
    settings: IntakeSettings | None = None,
    *,
    store: CaseStore | None = None,
    partners: PartnerCredentials | None = None,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    settings = settings or IntakeSettings()
    runtime = ServiceRuntime(settings)
    service = build_service(settings, runtime=runtime, store=store, clock=clock)
    auth = runtime.authenticator(partners=partners or MongoPartnerCredentials(runtime.db))
    # One limiter per kind of client, shared by the JSON route and the form: the limit is per client.
    public_limit = RateLimiter(settings.submissions_per_minute)
    app = runtime.http_app(
        "Relais — intake",
        "Accueil des demandes d'accompagnement : une porte commune à Second Souffle et 60 000 rebonds. "
        "`POST /cases` est public (limité par client) ; un partenaire qui a un compte y ajoute son jeton "
        "(Authorization: Bearer ...), qui seul lui permet ensuite de relire ses orientations.",
        routes(service, auth, public_limit, RateLimiter(settings.partner_submissions_per_minute)),
        page_routes(service, settings, public_limit),
        form_paths=FORM_PATHS,
    )
    app.mount("/static", static_files(), name="static")
    return app
