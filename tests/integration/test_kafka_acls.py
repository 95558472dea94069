"""The broker enforces the topology: who may log in, read, write, join a group and create a topic.

Each check uses a service's own principal (as provisioned by the session's `infra`), against the real Kafka.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    GroupCoordinatorNotAvailableError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
)
from prometheus_client import CollectorRegistry, Gauge

from ops.kafka_security import Secrets, provision
from ops.partners import add, can_log_in
from shared.broker import KafkaAccess, dead_letter_topic, ensure_topics
from shared.lag import ConsumerLagMonitor
from shared.schemas import CaseReceived, SessionHeld, new_envelope
from shared.settings import ServiceSettings
from shared.topology import ADMIN, RETIRED_PRINCIPALS, partner_principal, partner_topic
from tests.conftest import Infra, a_case, wait_for
from tests.integration.conftest import Reader

RECEIVED = "relais.case-received.v1"
SESSION_HELD = "relais.session-held.v1"
# Two partners added as `relais partners add` does (principal, topic, ACLs), once for this module.
TAG = uuid.uuid4().hex[:6]
MINE, OTHER = f"etude-{TAG}", f"greffe-{TAG}"


@pytest.fixture(scope="module", autouse=True)
def partners(infra: Infra) -> None:
    for partner in (MINE, OTHER):
        add(infra.admin, Secrets(infra.kafka.secrets.folder), partner)


async def read_from_start(access: KafkaAccess, topic: str, group: str | None = None) -> None:
    """Read a topic from its beginning as `access` (in `group`, or outside any group)."""
    consumer = AIOKafkaConsumer(
        **access.client(),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=10000,
    )
    await consumer.start()
    try:
        if group is None:
            partition = TopicPartition(topic, 0)
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
        else:
            consumer.subscribe([topic])
        for _ in range(20):
            await consumer.getmany(timeout_ms=250)
            if group is not None and consumer.assignment():
                await consumer.commit()
                return
    finally:
        await consumer.stop()


async def test_a_client_without_credentials_or_with_a_wrong_password_is_refused(infra: Infra) -> None:
    anonymous = KafkaAccess(infra.bootstrap, security_protocol="PLAINTEXT")
    producer = AIOKafkaProducer(**anonymous.client(), request_timeout_ms=5000)
    with pytest.raises((KafkaConnectionError, KafkaError, ConnectionError, asyncio.TimeoutError)):
        await asyncio.wait_for(producer.start(), 20)
    await producer.stop()

    routing = infra.access("routing")
    impostor = KafkaAccess(infra.bootstrap, "routing", routing.password + "x", routing.security_protocol)
    producer = AIOKafkaProducer(**impostor.client(), request_timeout_ms=5000)
    with pytest.raises((KafkaError, ConnectionError, asyncio.TimeoutError)):
        await asyncio.wait_for(producer.start(), 20)
    await producer.stop()


async def broker_answer(access: KafkaAccess, topic: str) -> int:
    """The error code the broker gives `access` for the topic's metadata (0: it may see the topic)."""
    admin = AIOKafkaAdminClient(**access.client(), request_timeout_ms=10000)
    await admin.start()
    try:
        return (await admin.describe_topics([topic]))[0]["error_code"]
    finally:
        await admin.close()


async def records_keyed(access: KafkaAccess, topic: str, key: bytes, tries: int = 12) -> list[bytes]:
    """Values keyed `key` that `access` manages to read from the topic's beginning, outside any group."""
    consumer = AIOKafkaConsumer(
        **access.client(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=10000,
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(3)])
        found: list[bytes] = []
        for _ in range(tries):
            batches = await consumer.getmany(timeout_ms=250)
            found += [r.value for records in batches.values() for r in records if r.key == key]
            if found:
                break
        return found
    finally:
        await consumer.stop()


def probe(topic: str) -> tuple[bytes, bytes]:
    """A record every reader of the topic accepts: the session's other tests read these topics from the start."""
    if topic == RECEIVED:
        case = a_case(referral={"kind": "self"})
        envelope = new_envelope(
            CaseReceived(
                situation=case["situation"],
                referral=case["referral"],
                received_at=datetime.now(UTC),
                personal={**case["entrepreneur"], "company_name": None, "siren": None, "message": None},
            ),
            case_id=uuid.uuid4(),
            producer="intake",
        )
        return envelope.key, envelope.encode()
    return f"acl-{uuid.uuid4()}".encode(), b'{"probe": "acl"}'  # not a status record: partners' readers skip it


@pytest.mark.parametrize(
    "principal, topic, rightful",
    [
        ("routing", partner_topic(MINE), partner_principal(MINE)),  # routing consumes cases, not partners' news
        (partner_principal(MINE), partner_topic(OTHER), partner_principal(OTHER)),  # another partner's referrals
        (partner_principal(MINE), RECEIVED, "routing"),  # the personal data of every request for help
        (partner_principal(MINE), dead_letter_topic("notifications"), ADMIN),  # dead letters: the original bytes
    ],
)
async def test_a_principal_cannot_read_a_topic_it_does_not_consume(
    infra: Infra, principal: str, topic: str, rightful: str
) -> None:
    await ensure_topics(ServiceSettings(), [topic], access=infra.admin)
    key, value = probe(topic)
    producer = AIOKafkaProducer(**infra.admin.client(), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()
    assert await broker_answer(infra.access(principal), topic) == TopicAuthorizationFailedError.errno
    assert await records_keyed(infra.access(principal), topic, key, tries=8) == []
    assert await records_keyed(infra.access(rightful), topic, key) == [value]  # the same read, allowed


async def test_a_producer_does_not_read_back_its_own_topic(infra: Infra, reader: Reader) -> None:
    """Intake may see that case-received exists (it writes it), but not read what is in it."""
    with pytest.raises(TopicAuthorizationFailedError):
        await asyncio.wait_for(records_keyed(infra.access("intake"), RECEIVED, b"any", tries=40), 30)


async def test_a_service_cannot_forge_an_event_of_a_topic_it_does_not_produce(infra: Infra, reader: Reader) -> None:
    """Notifications reads SessionHeld; a SessionHeld it wrote would be believed by every consumer."""
    forged = new_envelope(
        SessionHeld.model_validate(
            {
                "association": "60000_rebonds",
                "session_id": "s-forged",
                "kind": "coaching",
                "held_on": datetime.now(UTC).date(),
                "duration_minutes": 60,
                "number": 1,
            }
        ),
        case_id=uuid.uuid4(),
        producer="coaching",
    )
    producer = AIOKafkaProducer(**infra.access("notifications").client(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await asyncio.wait_for(producer.send_and_wait(SESSION_HELD, forged.encode(), key=forged.key), 30)
        # The same principal still writes what it owns, a partner's own topic included.
        await producer.send_and_wait(partner_topic(MINE), b'{"probe": "acl"}', key=b"acl-test")
    finally:
        await producer.stop()
    held = await reader(SESSION_HELD)
    assert await held.all_keyed(forged.key) == []


async def test_a_principal_cannot_join_another_services_consumer_group(infra: Infra, reader: Reader) -> None:
    with pytest.raises(GroupAuthorizationFailedError):
        await asyncio.wait_for(read_from_start(infra.access("routing"), RECEIVED, group="notifications"), 30)
    # Its own groups, test-tagged or not, are fine.
    await asyncio.wait_for(
        read_from_start(infra.access("routing"), RECEIVED, group=f"routing-acl-{uuid.uuid4().hex[:6]}"), 30
    )


async def test_a_service_creates_only_its_own_dead_letter_topics(infra: Infra) -> None:
    settings = ServiceSettings(kafka_bootstrap=infra.bootstrap)
    tag = uuid.uuid4().hex[:6]
    await ensure_topics(settings, [dead_letter_topic(f"routing-{tag}")], access=infra.access("routing"))
    for topic in (dead_letter_topic(f"notifications-{tag}"), f"relais.anything-{tag}.v1"):
        with pytest.raises(TopicAuthorizationFailedError):
            await ensure_topics(settings, [topic], access=infra.access("routing"))


async def test_the_lag_monitor_measures_its_own_groups_only(infra: Infra, reader: Reader) -> None:
    """End offsets of the topics it reads and the committed offsets of its own group: nobody else's."""
    routing = infra.access("routing")
    topics = ["relais.case-received.v1", "relais.reroute-requested.v1", "relais.antenna-capacity.v1"]
    admin = AIOKafkaAdminClient(**routing.client(), request_timeout_ms=10000)
    consumer = AIOKafkaConsumer(**routing.client(), enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        gauge = Gauge("acl_test_lag", "lag", ["group", "topic", "partition"], registry=CollectorRegistry())

        async def measured(group: str) -> dict | None:
            try:  # a fresh broker has no offsets topic yet: its coordinator comes a moment later
                return await ConsumerLagMonitor(routing, group, topics, gauge).measure(admin, consumer)
            except GroupCoordinatorNotAvailableError:
                return None

        lags = await wait_for(lambda: measured(f"routing-lag-{uuid.uuid4().hex[:6]}"), 30, "the lag of routing")
        assert {topic for topic, _ in lags} == set(topics)
        with pytest.raises(GroupAuthorizationFailedError):
            await wait_for(lambda: measured("notifications"), 30, "the lag of notifications' group")
    finally:
        await consumer.stop()
        await admin.close()


async def test_provisioning_deletes_the_retired_shared_partners_principal(infra: Infra) -> None:
    """A broker provisioned before the shared feed was retired still has the `partners` user: the topology's
    provisioning deletes it, so a password handed out for the old shared feed opens nothing."""
    [retired] = RETIRED_PRINCIPALS
    password = f"old-{uuid.uuid4().hex}"
    old = KafkaAccess(infra.bootstrap, retired, password, infra.admin.security_protocol)
    provision(infra.admin, {retired: password}, rules={retired: []})  # as an older release left it
    assert can_log_in(old, timeout_s=30)
    provision(infra.admin, {})  # the topology's provisioning: no user to upsert, the retired ones deleted

    async def refused() -> bool:
        return not await asyncio.to_thread(can_log_in, old)

    assert await wait_for(refused, 30, "the retired principal's credential deleted")
