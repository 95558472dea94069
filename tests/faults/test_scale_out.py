"""Two routing instances in one consumer group share the partitions; killing one hands them to the other."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

from ops.devstack import ServiceNode
from ops.stack import service_env
from shared.schemas import CaseReceived, Envelope, new_envelope
from tests.conftest import Infra, a_case, free_port, wait_for
from tests.integration.conftest import TopicReader

BATCH = 60


def received(case_id: uuid.UUID) -> Envelope:
    case = a_case()
    payload = CaseReceived(
        situation=case["situation"],
        referral=case["referral"],
        received_at=datetime.now(UTC),
        personal={**case["entrepreneur"], "company_name": None, "siren": None, "message": None},
    )
    return new_envelope(payload, case_id=case_id, producer="test")


async def handled(node: ServiceNode) -> float:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{node.url}/metrics")).text
    for line in text.splitlines():
        if line.startswith('relais_events_handled_total{event_type="CaseReceived",result="ok"}'):
            return float(line.split()[-1])
    return 0.0


async def test_partitions_are_shared_and_taken_over(infra: Infra, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    extra = {"RELAIS_ROUTING_CONSUMER_GROUP": f"routing-scale-{tag}", "RELAIS_ROUTING_MONGO_DB": f"scale_{tag}"}
    nodes = []
    for i in range(2):
        port = free_port()
        nodes.append(
            ServiceNode(
                f"routing-{i}",
                tmp_path / f"routing-{i}",
                module="services.routing",
                port=port,
                env=service_env("routing", port, infra.bootstrap, infra.mongo_url, extra, secrets=infra.kafka.secrets),
            )
        )
    producer = AIOKafkaProducer(**infra.admin.client(), acks="all", enable_idempotence=True)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongo_url)
    routed = TopicReader(infra.admin, "relais.case-routed.v1")
    try:
        for node in nodes:
            node.spawn()
        for node in nodes:
            node.wait_ready(60)
        await producer.start()
        await routed.start()
        routes = mongo[f"scale_{tag}"]["routes"]
        case_ids = [uuid.uuid4() for _ in range(2 * BATCH)]

        async def publish(ids: list[uuid.UUID]) -> None:
            for case_id in ids:
                envelope = received(case_id)
                await producer.send(
                    envelope.spec.topic,
                    envelope.encode(),
                    key=envelope.key,
                    headers=[(k, v.encode()) for k, v in envelope.headers().items()],
                )
            await producer.flush()

        async def routed_count(ids: list[uuid.UUID]) -> bool:
            return await routes.count_documents({"_id": {"$in": [str(c) for c in ids]}}) == len(ids)

        # Both members got partitions: each instance routes part of the first batch.
        await publish(case_ids[:BATCH])
        await wait_for(lambda: routed_count(case_ids[:BATCH]), 60, "first batch routed")
        shares = [await handled(node) for node in nodes]
        assert all(share > 0 for share in shares), f"one instance did all the work: {shares}"

        # A crash hands the dead member's partitions to the survivor once its session expires.
        nodes[0].kill()
        await publish(case_ids[BATCH:])
        await wait_for(lambda: routed_count(case_ids), 90, "second batch routed by the survivor")

        histories = [len(d["history"]) async for d in routes.find({"_id": {"$in": [str(c) for c in case_ids]}})]
        assert histories == [1] * len(case_ids)

        async def all_published() -> bool:
            await routed.poll()
            return all(routed.keyed(c) for c in case_ids)

        await wait_for(all_published, 60, "a CaseRouted for every case")
        assert all(len({dict(r.headers)["event-id"] for r in routed.keyed(c)}) == 1 for c in case_ids)
    finally:
        for node in nodes:
            node.stop()
        await routed.stop()
        await producer.stop()
        await mongo.close()
