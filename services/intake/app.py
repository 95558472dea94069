"""Composition root of intake: wires the store, the outbox relay and the HTTP API."""

from fastapi import FastAPI

from services.intake.api import router
from services.intake.settings import IntakeSettings
from services.intake.store import CaseStore
from shared.bootstrap import ServiceRuntime


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    runtime = ServiceRuntime(settings or IntakeSettings())
    store = CaseStore(runtime.db, runtime.relay)
    return runtime.http_app(
        "Relais — intake",
        "Accueil des demandes d'accompagnement : une porte commune à Second Souffle et 60 000 rebonds.",
        router(store),
    )
