"""Test fixtures: one real Kafka and one real FerretDB per test session, on free ports.

They start only when a test asks for `infra` (integration and end-to-end tests), in a temporary folder,
so that the suite never touches a running `make run`.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI

from ops.devstack import FerretNode, KafkaNode
from shared.auth import hash_token
from shared.broker import KafkaAccess
from shared.schemas import Association, Envelope
from shared.settings import ServiceSettings

T = TypeVar("T")
S = TypeVar("S", bound=ServiceSettings)


# Test-only staff tokens, one staff member per association; services are given only their hashes.
STAFF_TOKENS = {
    Association.SECOND_SOUFFLE: ("claire", "test-token-second-souffle-claire"),
    Association.SOIXANTE_MILLE_REBONDS: ("karim", "test-token-60000-rebonds-karim"),
}
STAFF_HASHES = {a.value: {user: hash_token(token)} for a, (user, token) in STAFF_TOKENS.items()}


def staff_headers(association: Association) -> dict[str, str]:
    """The Authorization header of the test staff member of `association`."""
    return {"Authorization": f"Bearer {STAFF_TOKENS[association][1]}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Infra:
    kafka: KafkaNode
    ferretdb: FerretNode

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap

    @property
    def mongo_url(self) -> str:
        return self.ferretdb.url

    @property
    def admin(self) -> KafkaAccess:
        """The tests' own clients (they play every producer and read every topic) use the super user."""
        return self.kafka.access()

    def access(self, principal: str) -> KafkaAccess:
        return self.kafka.access(principal)

    def settings(self, cls: type[S], **overrides: Any) -> S:
        """Settings of a service on the test infrastructure, with its own database and consumer group, and
        its own Kafka principal (the one `make run` gives it); in development mode, with the test staff."""
        tag = uuid.uuid4().hex[:8]
        base = cls()
        values = {
            "development": True,
            "staff_tokens": STAFF_HASHES,
            "kafka_bootstrap": self.bootstrap,
            "mongo_url": self.mongo_url,
            "mongo_db": f"{base.mongo_db}_{tag}",
            "consumer_group": f"{base.service_name}-{tag}",
            "retry_backoff_ms": 20,
            **overrides,
        }
        principal = principal_of(cls(**values))
        access = self.access(principal)
        return cls(
            **{
                "kafka_username": access.username,
                "kafka_password": access.password,
                "kafka_security_protocol": access.security_protocol,
                **values,
            }
        )


def principal_of(settings: ServiceSettings) -> str:
    """A service's Kafka principal: its name, and the association for a coaching instance."""
    association = getattr(settings, "association", None)
    return f"{settings.service_name}-{association.value}" if association is not None else settings.service_name


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    data = tmp_path_factory.mktemp("infra")
    kafka = KafkaNode("kafka", data / "kafka", port=free_port(), controller_port=free_port())
    ferretdb = FerretNode("ferretdb", data / "ferretdb", port=free_port())
    ferretdb.start()
    try:
        kafka.start()
        kafka.provision()
    except Exception:
        kafka.stop()
        ferretdb.stop()
        raise
    yield Infra(kafka, ferretdb)
    kafka.stop()
    ferretdb.stop()


async def wait_for(
    probe: Callable[[], Awaitable[T | None]],
    timeout: float = 60,  # noqa: ASYNC109 - on expiry it names what was awaited and its last probe (asyncio.timeout would not)
    what: str = "condition",
    interval: float = 0.05,
) -> T:
    """Poll an async probe until it returns a truthy value; fail with `what` after the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@asynccontextmanager
async def running(app: FastAPI, headers: dict[str, str] | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """Run a service in-process (its lifespan starts the broker and relay) with an HTTP client on it (sending
    `headers` with every request, e.g. `staff_headers(association)`)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service", headers=headers) as client:
            yield client


def a_case(**overrides: Any) -> dict[str, Any]:
    """A valid submission; override parts with keyword arguments."""
    case = {
        "situation": {
            "procedure": "liquidation_judiciaire",
            "court_decision_date": "2026-03-10",
            "postal_code": "69003",
            "commune": "Lyon",
            "sector": "commerce",
        },
        "entrepreneur": {
            "first_name": "Jeanne",
            "last_name": "Martin",
            "email": "jeanne.martin@example.fr",
            "phone": "06 12 34 56 78",
        },
        "company": {"name": "Boulangerie Martin", "siren": "732829320"},
        "referral": {"kind": "mandataire", "organisation": "Étude Dupont", "partner_reference": "LJ-2026-042"},
        "message": "Je cherche à rebondir après la liquidation.",
        "consent": True,
    }
    case.update(overrides)
    return case


def case_id_of(envelope: Envelope) -> uuid.UUID:
    """The case an event is about (an event keyed by antenna has none)."""
    assert envelope.case_id is not None, f"{envelope.event_type} is not about a case"
    return envelope.case_id
