"""Composition root of notifications: every flow event in, notifications recorded once."""

from fastapi import FastAPI

from services.notifications.api import router
from services.notifications.handlers import SUBSCRIBED, FlowEventHandler
from services.notifications.settings import NotificationsSettings
from services.notifications.store import NotificationStore
from shared.runtime import ServiceRuntime


def create_app(settings: NotificationsSettings | None = None) -> FastAPI:
    runtime = ServiceRuntime(settings or NotificationsSettings())
    store = NotificationStore(runtime.db)
    runtime.on_start(store.create_indexes)
    handler = FlowEventHandler(store)
    for event_type in SUBSCRIBED:
        runtime.consumer.on(event_type, handler)
    return runtime.http_app("Relais — notifications", "Messages à envoyer à chaque étape du parcours.",
                            router(store))
