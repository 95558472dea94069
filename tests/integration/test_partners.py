"""`relais partners`: a partner's principal reads its own feed and nothing else; revoked, it cannot log in."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaProducer
from aiokafka.errors import TopicAuthorizationFailedError

from ops.kafka_security import Secrets
from ops.partners import add, can_log_in, list_partners, revoke
from shared.topology import partner_principal, partner_topic
from tests.conftest import Infra
from tests.integration.test_kafka_acls import broker_answer, records_keyed


async def test_a_partner_reads_only_its_own_feed_until_revoked(infra: Infra) -> None:
    tag = uuid.uuid4().hex[:6]
    mine, other = f"etude-{tag}", f"greffe-{tag}"
    secrets = Secrets(infra.kafka.secrets.folder)
    for partner in (mine, other):
        add(infra.admin, secrets, partner)
    assert {mine, other} <= {p.name for p in list_partners(infra.admin)}
    add(infra.admin, secrets, mine)  # again: nothing changes, the password stays

    producer = AIOKafkaProducer(**infra.admin.client(), acks="all")
    await producer.start()
    try:
        for partner in (mine, other):
            await producer.send_and_wait(partner_topic(partner), b'{"probe": "partner"}', key=partner.encode())
    finally:
        await producer.stop()

    me = infra.access(partner_principal(mine))
    assert await records_keyed(me, partner_topic(mine), mine.encode()) == [b'{"probe": "partner"}']
    for foreign in (partner_topic(other), "relais.case-received.v1"):
        assert await broker_answer(me, foreign) == TopicAuthorizationFailedError.errno, foreign

    revoke(infra.admin, mine)
    assert not can_log_in(me)
    assert mine not in {p.name for p in list_partners(infra.admin)}
    assert can_log_in(infra.access(partner_principal(other)))
