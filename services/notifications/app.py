"""Composition root of notifications: flow events in; emails, opt-outs and each partner's status feed out."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.notifications.api import router
from services.notifications.dispatch import Dispatcher, Transport
from services.notifications.handlers import (
    CaseClosedHandler,
    CaseReceivedHandler,
    CaseRoutedHandler,
    CommitteeApprovedHandler,
    SessionHeldHandler,
    VolunteerApplicationDecidedHandler,
    VolunteerAssignedHandler,
)
from services.notifications.metrics import NotificationMetrics
from services.notifications.service import Clock, NotificationsService
from services.notifications.settings import NotificationsSettings
from services.notifications.smtp import SmtpTransport
from services.notifications.store import Stores, create_indexes, mongo_stores
from services.notifications.templates import Renderer
from services.notifications.tokens import Tokens
from shared.bootstrap import ServiceRuntime
from shared.schemas import (
    CaseClosed,
    CaseReceived,
    CaseRouted,
    CommitteeApproved,
    SessionHeld,
    VolunteerApplicationDecided,
    VolunteerAssigned,
    spec_for,
)

# Every event this service consumes, and its handler.
SUBSCRIPTIONS = {
    spec_for(CaseReceived).name: CaseReceivedHandler,
    spec_for(CaseRouted).name: CaseRoutedHandler,
    spec_for(CommitteeApproved).name: CommitteeApprovedHandler,
    spec_for(SessionHeld).name: SessionHeldHandler,
    spec_for(CaseClosed).name: CaseClosedHandler,
    spec_for(VolunteerAssigned).name: VolunteerAssignedHandler,
    spec_for(VolunteerApplicationDecided).name: VolunteerApplicationDecidedHandler,
}


def build_service(
    settings: NotificationsSettings,
    *,
    stores: Stores | None = None,
    transport: Transport | None = None,
    clock: Clock | None = None,
    runtime: ServiceRuntime | None = None,
) -> NotificationsService:
    """The service and, when email is enabled, its dispatcher (`service.dispatcher`), wired once for
    production (Mongo stores from `runtime`) and tests (fakes in `stores`)."""
    if stores is None:
        if runtime is None:
            raise ValueError("the Mongo stores come from the runtime: pass `runtime` or `stores`")
        stores = mongo_stores(runtime.db, runtime.relay)
    clock = clock or (lambda: datetime.now(UTC))
    tokens = Tokens(settings.signing_key())
    metrics = NotificationMetrics(runtime.metrics.registry if runtime is not None else CollectorRegistry())
    dispatcher = None
    if settings.email_enabled:
        dispatcher = Dispatcher(
            stores,
            transport or SmtpTransport(settings),
            Renderer(),
            tokens,
            settings,
            metrics,
            consumer_group=settings.consumer_group or settings.service_name,
            clock=clock,
        )
    return NotificationsService(stores, tokens, metrics, clock, dispatcher)


def create_app(
    settings: NotificationsSettings | None = None,
    *,
    transport: Transport | None = None,
    stores: Stores | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    settings = settings or NotificationsSettings()
    runtime = ServiceRuntime(settings)
    service = build_service(settings, transport=transport, runtime=runtime, stores=stores, clock=clock)
    runtime.on_start(lambda: create_indexes(runtime.db))
    if service.dispatcher is not None:
        runtime.on_start(service.dispatcher.start)
        runtime.on_stop(service.dispatcher.stop)
    for event_type, handler in SUBSCRIPTIONS.items():
        runtime.consumer.on(event_type, handler(service))
    return runtime.http_app(
        "Relais — notifications",
        "E-mails à chaque étape du parcours, désabonnement, et flux de statuts des partenaires. Les notifications "
        "et préférences d'un dossier demandent un jeton du personnel de l'association qui le détient ; le "
        "désabonnement se fait par le lien signé des e-mails.",
        router(service, runtime.authenticator(), settings.kafka_bootstrap, expose_asyncapi=settings.expose_asyncapi),
    )
