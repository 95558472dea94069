"""Composition root of coaching: CaseRouted opens case files; staff steps emit events via the outbox."""

from fastapi import FastAPI

from services.coaching.api import router
from services.coaching.handlers import CaseRoutedHandler
from services.coaching.settings import CoachingSettings
from services.coaching.store import CaseFileStore
from shared.runtime import ServiceRuntime


def create_app(settings: CoachingSettings | None = None) -> FastAPI:
    runtime = ServiceRuntime(settings or CoachingSettings())
    store = CaseFileStore(runtime.db, runtime.relay)
    runtime.consumer.on("CaseRouted", CaseRoutedHandler(store))
    return runtime.http_app("Relais — coaching",
                            "Comité d'engagement, séances et clôture de l'accompagnement.", router(store))
