"""Every route of every service's OpenAPI, walked: without credentials it is refused (401) unless it is declared
public here; with the credentials of the other association (or of another partner) it shows nothing of the
first one's (403 or 404, or a list without its items). Each app is built by its own `create_app` on the tests'
fakes, with data of Second Souffle (and of the partner `etude-martin`), and runs without its lifespan."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.coaching.app import build_service as build_coaching
from services.coaching.app import create_app as create_coaching
from services.coaching.handlers import CaseRoutedHandler
from services.coaching.settings import CoachingSettings
from services.intake.app import create_app as create_intake
from services.intake.settings import IntakeSettings
from services.notifications.app import SUBSCRIPTIONS
from services.notifications.app import build_service as build_notifications
from services.notifications.app import create_app as create_notifications
from services.notifications.settings import NotificationsSettings
from services.routing.app import build_service as build_routing
from services.routing.app import create_app as create_routing
from services.routing.settings import RoutingSettings
from shared.auth import hash_token
from shared.schemas import Association, CaseReceived, CaseRouted, new_envelope
from shared.settings import ServiceSettings
from tests.conftest import STAFF_HASHES, a_case, staff_headers
from tests.fakes.coaching import fake_stores as coaching_fakes
from tests.fakes.intake import FakeCaseStore, FakePartnerCredentials
from tests.fakes.notifications import FakeStores, FakeTransport
from tests.fakes.routing import fake_stores as routing_fakes

SS, SR = Association.SECOND_SOUFFLE, Association.SOIXANTE_MILLE_REBONDS
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
# Settings pointing nowhere: a request that reached Kafka or MongoDB would fail, not pass.
# No throttling here (tests/unit/test_http_auth.py has it): every forged token must get its own 401.
NOWHERE: dict[str, Any] = {
    "kafka_bootstrap": "127.0.0.1:9",
    "mongo_url": "mongodb://127.0.0.1:9/",
    "staff_tokens": STAFF_HASHES,
    "auth_max_failures": 0,
}
# What anyone may call, per service (besides /health, and /metrics while exposed).
PUBLIC = {
    "intake": {("post", "/cases")},
    "routing": set(),
    "coaching": set(),
    "notifications": {
        ("post", "/preferences"),
        ("get", "/desabonnement/{token}"),
        ("get", "/desabonnement/{token}/confirmer"),
        ("get", "/asyncapi"),
        ("get", "/asyncapi.json"),
    },
}
OPERATIONS = {("get", "/health"), ("get", "/metrics")}
PARTNER, OTHER_PARTNER = "token-etude-martin", "token-cci-lyon"


@dataclass
class Service:
    name: str
    app: FastAPI
    params: dict[str, str]  # path parameters naming Second Souffle's things (or etude-martin's)
    other: dict[str, str]  # the credentials of the other association (or another partner)
    lists: dict[str, Callable[[httpx.Response], bool]]  # collection routes: the other's answer holds none of ours


def case_received(case_id: uuid.UUID, procedure: str = "sauvegarde") -> Any:
    payload = CaseReceived(
        situation={"procedure": procedure, "postal_code": "69003", "commune": "Lyon"},
        referral={"kind": "mandataire", "organisation": "Étude Dupont"},
        personal={"first_name": "Jeanne", "last_name": "Martin", "email": "j@example.fr"},
        received_at=NOW - timedelta(hours=1),
    )
    return new_envelope(payload, case_id=case_id, producer="intake")


def case_routed(case_id: uuid.UUID, cause: Any = None) -> Any:
    routed = CaseRouted(
        association=SS,
        rule="procedure:sauvegarde",
        reasons=["Sauvegarde"],
        routed_at=NOW,
        received_at=NOW - timedelta(hours=1),
        antenna_id="second_souffle-lyon",
    )
    return new_envelope(routed, case_id=case_id, producer="routing", cause=cause)


async def intake() -> Service:
    store, partners = FakeCaseStore(), FakePartnerCredentials()
    await partners.add("etude-martin", hash_token(PARTNER))
    await partners.add("cci-lyon", hash_token(OTHER_PARTNER))
    app = create_intake(IntakeSettings(**NOWHERE), store=store, partners=partners)
    async with client_of(app) as http:
        created = await http.post("/cases", json=a_case(), headers={"Authorization": f"Bearer {PARTNER}"})
    return Service(
        "intake", app, {"case_id": created.json()["case_id"]}, {"Authorization": f"Bearer {OTHER_PARTNER}"}, {}
    )


async def routing() -> Service:
    settings, stores, case_id = RoutingSettings(**NOWHERE), routing_fakes(), uuid.uuid4()
    service = build_routing(settings, stores=stores, clock=lambda: NOW)
    await service.start()
    await service.route_new_case(case_id, case_received(case_id).payload_as(CaseReceived), case_received(case_id))
    app = create_routing(settings, stores=stores, clock=lambda: NOW)

    def no_second_souffle_antenna(response: httpx.Response) -> bool:
        return response.status_code == 200 and all(a["association"] == SR.value for a in response.json())

    return Service(
        "routing",
        app,
        {"case_id": str(case_id), "antenna_id": "second_souffle-lyon", "association": SS.value},
        staff_headers(SR),
        {"/antennas": no_second_souffle_antenna},
    )


async def coaching() -> Service:
    settings, stores, case_id = CoachingSettings(association=SS, **NOWHERE), coaching_fakes(), uuid.uuid4()
    await CaseRoutedHandler(build_coaching(settings, stores=stores, clock=lambda: NOW))(case_routed(case_id))
    app = create_coaching(settings, stores=stores, clock=lambda: NOW)
    return Service(
        "coaching",
        app,
        {"case_id": str(case_id), "volunteer_id": "coach-1", "role": "coach", "application_id": "application-1"},
        staff_headers(SR),
        {},
    )


async def notifications() -> Service:
    settings = NotificationsSettings(secret_key="a-secret-for-the-tests", email_enabled=False, **NOWHERE)
    fakes, case_id = FakeStores(), uuid.uuid4()
    service = build_notifications(settings, stores=fakes.stores, clock=lambda: NOW)
    received = case_received(case_id)
    for event in (received, case_routed(case_id, cause=received)):
        await SUBSCRIPTIONS[event.event_type](service)(event)
    app = create_notifications(settings, stores=fakes.stores, transport=FakeTransport(), clock=lambda: NOW)
    return Service("notifications", app, {"case_id": str(case_id), "token": "not-a-token"}, staff_headers(SR), {})


BUILDERS: dict[str, Callable[[], Awaitable[Service]]] = {
    "intake": intake,
    "routing": routing,
    "coaching": coaching,
    "notifications": notifications,
}


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service")


def operations(app: FastAPI) -> list[tuple[str, str]]:
    return [(method, path) for path, item in app.openapi()["paths"].items() for method in item]


async def call(
    http: httpx.AsyncClient, service: Service, method: str, path: str, headers: dict[str, str]
) -> httpx.Response:
    url = re.sub(r"\{(\w+)\}", lambda m: service.params[m.group(1)], path)
    body: dict[str, Any] | None = {} if method in ("post", "put", "patch") else None
    return await http.request(method.upper(), url, headers=headers, json=body)


@pytest.fixture(params=list(BUILDERS))
async def service(request: pytest.FixtureRequest) -> Service:
    return await BUILDERS[request.param]()


async def test_every_route_but_the_declared_public_ones_refuses_a_request_without_credentials(service: Service) -> None:
    public = PUBLIC[service.name] | OPERATIONS
    found = operations(service.app)
    assert public - OPERATIONS <= set(found), "a declared public route is gone: update PUBLIC"
    async with client_of(service.app) as http:
        for method, path in found:
            spec = service.app.openapi()["paths"][path][method]
            if (method, path) in OPERATIONS:  # /health would wait for the Kafka and MongoDB that are not there
                continue
            if (method, path) in public:  # it may take an optional credential (a partner's, at intake)
                response = await call(http, service, method, path, {})
                assert response.status_code != 401, (method, path, response.text)
                continue
            assert spec.get("security"), f"{method} {path} declares no credential"
            response = await call(http, service, method, path, {})
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            forged = await call(http, service, method, path, {"Authorization": "Bearer forged"})
            assert forged.status_code == 401, (method, path, forged.text)


async def test_the_other_association_or_partner_sees_nothing_of_the_first_one_s(service: Service) -> None:
    public = PUBLIC[service.name] | OPERATIONS
    async with client_of(service.app) as http:
        for method, path in operations(service.app):
            if (method, path) in public:
                continue
            response = await call(http, service, method, path, service.other)
            if path in service.lists:
                assert service.lists[path](response), (method, path, response.text)
            else:
                assert response.status_code in (403, 404), (method, path, response.status_code, response.text)
                assert "Jeanne" not in response.text and 'second_souffle-lyon"' not in response.text


async def test_the_owner_is_served(service: Service) -> None:
    """The same routes answer the first association's staff (or the referring partner): the refusals above
    come from the credentials, not from the data."""
    owner = {"intake": {"Authorization": f"Bearer {PARTNER}"}}.get(service.name, staff_headers(SS))
    reads = {
        "intake": "/cases/{case_id}",
        "routing": "/cases/{case_id}",
        "coaching": "/cases/{case_id}",
        "notifications": "/cases/{case_id}/notifications",
    }
    async with client_of(service.app) as http:
        response = await call(http, service, "get", reads[service.name], owner)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("name", list(BUILDERS))
async def test_docs_metrics_and_the_topic_catalogue_are_served_only_when_the_settings_say_so(name: str) -> None:
    hidden: dict[str, Any] = {"expose_docs": False, "expose_metrics": False, "expose_asyncapi": False}
    shown: dict[str, Any] = {"expose_docs": True, "expose_metrics": True, "expose_asyncapi": True}
    for flags, expected in ((hidden, 404), (shown, 200)):
        app = app_with(name, flags)
        async with client_of(app) as http:
            for path in ("/docs", "/openapi.json", "/metrics", *(("/asyncapi",) if name == "notifications" else ())):
                assert (await http.get(path)).status_code == expected, (name, path, flags)
    defaults = ServiceSettings()
    assert (defaults.expose_docs, defaults.expose_metrics) == (False, True)
    assert NotificationsSettings().expose_asyncapi is True


def app_with(name: str, flags: dict[str, Any]) -> FastAPI:
    base: dict[str, Any] = {k: v for k, v in flags.items() if k != "expose_asyncapi"}
    if name == "intake":
        return create_intake(
            IntakeSettings(**NOWHERE, **base), store=FakeCaseStore(), partners=FakePartnerCredentials()
        )
    if name == "routing":
        return create_routing(RoutingSettings(**NOWHERE, **base), stores=routing_fakes())
    if name == "coaching":
        return create_coaching(CoachingSettings(**NOWHERE, **base), stores=coaching_fakes())
    return create_notifications(
        NotificationsSettings(**NOWHERE, **flags, email_enabled=False), stores=FakeStores().stores
    )
