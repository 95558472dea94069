"""Composition root of notifications: flow events in; emails, opt-outs and the partner feed out."""

from fastapi import FastAPI

from services.notifications.api import router
from services.notifications.dispatch import Dispatcher
from services.notifications.handlers import SUBSCRIBED, FlowEventHandler
from services.notifications.metrics import NotificationMetrics
from services.notifications.settings import NotificationsSettings
from services.notifications.smtp import SmtpTransport
from services.notifications.store import NotificationStore
from services.notifications.templates import Renderer
from services.notifications.tokens import Tokens
from shared.broker import ensure_topics
from shared.bootstrap import ServiceRuntime
from shared.schemas import PARTNER_FEED_TOPIC


def create_app(settings: NotificationsSettings | None = None) -> FastAPI:
    settings = settings or NotificationsSettings()
    runtime = ServiceRuntime(settings)
    store = NotificationStore(runtime.db, runtime.relay)
    tokens = Tokens(settings.secret_key.get_secret_value())
    metrics = NotificationMetrics(runtime.metrics.registry)
    runtime.on_start(store.create_indexes)
    runtime.on_start(lambda: ensure_topics(settings, [PARTNER_FEED_TOPIC]))
    dispatcher = None
    if settings.email_enabled:
        dispatcher = Dispatcher(store, SmtpTransport(settings), Renderer(), tokens, settings, metrics,
                                consumer_group=runtime.consumer.group_id)
        runtime.on_start(dispatcher.start)
        runtime.on_stop(dispatcher.stop)
    handler = FlowEventHandler(store, tokens, metrics, dispatcher)
    for event_type in SUBSCRIBED:
        runtime.consumer.on(event_type, handler)
    app = runtime.http_app("Relais — notifications",
                           "E-mails à chaque étape du parcours, désabonnement, et flux de statuts des partenaires.",
                           router(store, tokens, settings.kafka_bootstrap))
    app.state.dispatcher = dispatcher
    return app
