"""The whole system as separate processes (the stack of `make run`) on the session's Kafka and FerretDB."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from ops.stack import SERVICES, Stack, StackConfig, module_of
from shared.schemas import Association
from tests.coaching_support import SR, SS, StaffClient
from tests.conftest import Infra, free_port
from tests.mail import skip_backlog
from tests.otlp import OtlpReceiver

# The development staff tokens of `make run` (docs/coaching.md); the stack holds only their hashes.
DEV_TOKENS = {SS: "dev-second-souffle-claire", SR: "dev-60000-rebonds-karim"}
COACHING_NODE = {SS: "coaching-second_souffle", SR: "coaching-60000_rebonds"}
# The tests submit more cases from one address than a person would: intake's public limit is raised for them.
SUBMISSIONS = {"RELAIS_INTAKE_SUBMISSIONS_PER_MINUTE": "600"}


def dev_staff(association: Association) -> dict[str, str]:
    """The Authorization header of `make run`'s staff member of `association` (routing, notifications)."""
    return {"Authorization": f"Bearer {DEV_TOKENS[association]}"}


@pytest.fixture(scope="session")
def otlp() -> Iterator[OtlpReceiver]:
    """Where the stack's services export their spans: the e2e tests run with tracing on."""
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def stack(infra: Infra, otlp: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    config = StackConfig(
        data_dir=tmp_path_factory.mktemp("stack"),
        kafka_port=infra.kafka.port,
        mongo_port=infra.ferretdb.port,
        smtp_port=free_port(),
        service_ports={name: free_port() for name in SERVICES},
        # Started only by the tests that watch the stack (test_observability.py); never on make run's ports.
        prometheus_port=free_port(),
        alertmanager_port=free_port(),
        scrape_interval_s=1,
        extra_env={
            **{f"RELAIS_{module_of(name).upper()}_OTLP_ENDPOINT": otlp.endpoint for name in SERVICES},
            **SUBMISSIONS,
        },
        secrets_dir=infra.kafka.secrets.folder,
    )
    stack = Stack(config)
    # The session's Kafka and FerretDB stand in for the stack's own; the mail sink is the stack's.
    stack.kafka, stack.ferretdb = infra.kafka, infra.ferretdb
    nodes = [stack.mailsink, *stack.services.values()]
    # Notifications would first email every earlier test's events (shared topics): it starts after them.
    asyncio.run(skip_backlog(infra.admin, "notifications"))
    try:
        stack.mailsink.start()
        stack.start_services()
    except Exception:
        for node in nodes:
            node.stop()
        raise
    yield stack
    for node in nodes:
        node.stop()


@pytest.fixture
async def staff_of(stack: Stack) -> AsyncIterator[dict[Association, StaffClient]]:
    """A staff member of each association, on their own association's coaching instance."""
    clients = {a: httpx.AsyncClient(base_url=stack.services[COACHING_NODE[a]].url, timeout=10) for a in (SS, SR)}
    yield {a: StaffClient(client, a, DEV_TOKENS[a]) for a, client in clients.items()}
    for client in clients.values():
        await client.aclose()
