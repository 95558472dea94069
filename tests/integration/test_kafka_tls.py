"""The broker configuration of docker-compose.yml, run here: SCRAM over TLS (SASL_SSL) with the generated CA.

No Docker engine runs the suite; this starts the same `kafka_properties` with the TLS material
`relais compose-secrets` makes (keytool), provisions it, and runs a service principal over TLS.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from ops.devstack import KafkaNode
from ops.kafka_security import make_tls
from shared.broker import KafkaAccess
from tests.conftest import free_port


@pytest.fixture(scope="module")
def tls_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaNode]:
    folder = tmp_path_factory.mktemp("tls")
    kafka = KafkaNode(
        "kafka",
        folder / "kafka",
        port=free_port(),
        controller_port=free_port(),
        secrets_dir=folder / "secrets",
        tls=make_tls(folder / "secrets"),
    )
    try:
        kafka.start()
        kafka.provision()
        yield kafka
    finally:
        kafka.stop()


async def test_a_service_principal_writes_its_topic_over_tls(tls_kafka: KafkaNode) -> None:
    intake = tls_kafka.access("intake")
    assert intake.security_protocol == "SASL_SSL"
    producer = AIOKafkaProducer(**intake.client(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait("relais.case-received.v1", b"{}", key=b"tls")
    finally:
        await producer.stop()


async def test_a_client_that_does_not_trust_the_ca_is_refused(tls_kafka: KafkaNode, tmp_path: Path) -> None:
    other_ca = make_tls(tmp_path / "other").ca_pem
    stranger = KafkaAccess(
        tls_kafka.bootstrap, "intake", tls_kafka.access("intake").password, "SASL_SSL", str(other_ca)
    )
    producer = AIOKafkaProducer(**stranger.client(), request_timeout_ms=5000)
    with pytest.raises((KafkaConnectionError, asyncio.TimeoutError)):
        await asyncio.wait_for(producer.start(), 20)
    await producer.stop()
