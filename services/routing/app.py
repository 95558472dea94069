"""Composition root of routing: cases, re-routings and capacity in; CaseRouted out through the outbox."""

from fastapi import FastAPI

from services.routing.api import router
from services.routing.directory import seed_documents, shared_gazetteer
from services.routing.domain import load_rules
from services.routing.handlers import (
    AntennaCapacityChangedHandler,
    CaseReceivedHandler,
    RerouteRequestedHandler,
)
from services.routing.router import Router
from services.routing.settings import RoutingSettings
from services.routing.store import RoutingStore
from shared.bootstrap import ServiceRuntime
from shared.schemas import Association


def create_app(settings: RoutingSettings | None = None) -> FastAPI:
    settings = settings or RoutingSettings()
    runtime = ServiceRuntime(settings)
    store = RoutingStore(runtime.db, runtime.relay)
    gazetteer = shared_gazetteer(settings.geodata_file)
    routing = Router(store, gazetteer, settings.travel_model(), load_rules(settings.rules_file), runtime.metrics)

    async def seed_directory() -> None:
        await store.seed_directory(seed_documents(gazetteer, settings.antennas_file))

    async def show_waitlists() -> None:
        """The waitlist gauge holds the stored sizes from the start, not only after a first change."""
        for association in Association:
            size = len(await store.waitlist(association.value))
            routing.metrics.waitlist_size.labels(association.value).set(size)

    runtime.on_start(seed_directory)
    runtime.on_start(show_waitlists)
    runtime.consumer.on("CaseReceived", CaseReceivedHandler(routing))
    runtime.consumer.on("RerouteRequested", RerouteRequestedHandler(routing))
    runtime.consumer.on("AntennaCapacityChanged", AntennaCapacityChangedHandler(routing))
    return runtime.http_app("Relais — routing",
                            "Orientation vers l'association qui convient, et l'antenne la plus proche qui a "
                            "de la place.", router(store, routing))
