"""Composition root of routing: CaseReceived in, CaseRouted out through the outbox."""

from fastapi import FastAPI

from services.routing.api import router
from services.routing.handlers import CaseReceivedHandler
from services.routing.settings import RoutingSettings
from services.routing.store import RoutingStore
from shared.runtime import ServiceRuntime


def create_app(settings: RoutingSettings | None = None) -> FastAPI:
    runtime = ServiceRuntime(settings or RoutingSettings())
    store = RoutingStore(runtime.db, runtime.relay)
    runtime.consumer.on("CaseReceived", CaseReceivedHandler(store))
    return runtime.http_app("Relais — routing", "Orientation vers l'association qui convient.", router(store))
