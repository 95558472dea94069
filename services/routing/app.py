"""Composition root of routing: reads its rules and data files, wires the service to its stores, lists its
subscriptions (cases, re-routings and capacity in; CaseRouted out through the outbox) and its API."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI

from services.routing.api import routes
from services.routing.directory import seed_entries, shared_gazetteer
from services.routing.domain import RuleBook, parse_rules
from services.routing.handlers import (
    AntennaCapacityChangedHandler,
    CaseReceivedHandler,
    RerouteRequestedHandler,
)
from services.routing.service import RoutingService, utc_now
from services.routing.settings import RoutingSettings
from services.routing.store import RoutingStores, mongo_stores
from shared.bootstrap import ServiceRuntime
from shared.metrics import Metrics


def load_rules(path: Path) -> RuleBook:
    return parse_rules(tomllib.loads(path.read_text(encoding="utf-8")), path.name)


def build_service(
    settings: RoutingSettings,
    *,
    runtime: ServiceRuntime | None = None,
    stores: RoutingStores | None = None,
    clock: Callable[[], datetime] | None = None,
) -> RoutingService:
    """The service on the runtime's database, or on the `stores` given (the tests' fakes)."""
    if stores is None:
        if runtime is None:
            raise TypeError("build_service needs the runtime (production) or the stores (tests)")
        stores = mongo_stores(runtime.db, runtime.relay)
    gazetteer = shared_gazetteer(settings.geodata_file)
    return RoutingService(
        stores,
        gazetteer=gazetteer,
        model=settings.travel_model(),
        rules=load_rules(settings.rules_file),
        metrics=runtime.metrics if runtime is not None else Metrics(settings.service_name),
        directory=seed_entries(gazetteer, settings.antennas_file),
        clock=clock or utc_now,
    )


def create_app(
    settings: RoutingSettings | None = None,
    *,
    stores: RoutingStores | None = None,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    settings = settings or RoutingSettings()
    runtime = ServiceRuntime(settings)
    service = build_service(settings, runtime=runtime, stores=stores, clock=clock)
    runtime.on_start(service.start)
    runtime.consumer.on("CaseReceived", CaseReceivedHandler(service))
    runtime.consumer.on("RerouteRequested", RerouteRequestedHandler(service))
    runtime.consumer.on("AntennaCapacityChanged", AntennaCapacityChangedHandler(service))
    return runtime.http_app(
        "Relais — routing",
        "Orientation vers l'association qui convient, et l'antenne la plus proche qui a de la place. Toutes les "
        "routes demandent un jeton du personnel d'une association (Authorization: Bearer ...) et ne montrent que "
        "ce que cette association détient : ses dossiers, ses antennes, sa liste d'attente.",
        routes(service, runtime.authenticator()),
    )
