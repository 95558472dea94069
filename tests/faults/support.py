"""What every fault test shares: the stack on free ports, the submitting client, and the proof.

Like Kafka's own transaction tests: submit N unique cases, inject faults during the run, then check from
the services' databases and topics that the set of effects equals the set of inputs with no duplicates.
`make faults` runs with 5,000 cases; `make test` with RELAIS_FAULT_CASES (300 by default).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from ops.dlq import dead_letter_topics, read_all
from ops.stack import COACHING, SERVICES, Stack, StackConfig, module_of
from shared.broker import KafkaAccess
from tests.conftest import a_case, free_port, wait_for
from tests.integration.conftest import TopicReader

CASES = int(os.environ.get("RELAIS_FAULT_CASES", "300"))
SEED = int(os.environ.get("RELAIS_FAULT_SEED", random.randrange(1_000_000)))
# Consumers, named as their stack process and their consumer group (coaching runs once per association).
CONSUMER_GROUPS = ("routing", *COACHING, "notifications")
# Every case of `a_case()` is a liquidation: 60 000 rebonds' coaching opens it.
COACHING_DB = "relais_coaching_60000_rebonds"


@contextmanager
def running_stack(data_dir: Path, **config: Any) -> Iterator[Stack]:
    """The whole system on free ports, with short retry backoffs so that a restart is noticed quickly."""
    stack = Stack(
        StackConfig(
            data_dir=data_dir,
            kafka_port=free_port(),
            controller_port=free_port(),
            mongo_port=free_port(),
            smtp_port=free_port(),
            service_ports={name: free_port() for name in SERVICES},
            extra_env={
                **{
                    f"RELAIS_{module.upper()}_{key}": value
                    for module in {module_of(name) for name in SERVICES}
                    for key, value in {
                        "RETRY_BACKOFF_MS": "50",
                        "RETRY_BACKOFF_MAX_MS": "1000",
                        "OUTBOX_SCAN_INTERVAL_S": "10",
                    }.items()
                },
                # Thousands of cases from one address: intake's per-client limit is off for this load.
                "RELAIS_INTAKE_SUBMISSIONS_PER_MINUTE": "0",
            },
            **config,
        )
    )
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


async def submit_all(urls: dict[str, str], count: int, rate: float) -> dict[str, str]:
    """POST every case, retrying as a real client would (same Idempotency-Key) until accepted."""
    ids: dict[str, str] = {}
    semaphore = asyncio.Semaphore(16)

    async def submit(client: httpx.AsyncClient, i: int) -> None:
        key = f"fault-{SEED}-{i}"
        case = a_case(referral={"kind": "self"} if i % 2 else a_case()["referral"])
        async with semaphore:
            for _attempt in range(600):
                try:
                    response = await client.post(f"{urls['intake']}/cases", json=case, headers={"Idempotency-Key": key})
                    if response.status_code in (200, 201):
                        ids[key] = response.json()["case_id"]
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)  # client retry pacing, not synchronisation
        raise AssertionError(f"case {i} never accepted")

    async with httpx.AsyncClient(timeout=10) as client:
        tasks = []
        for i in range(count):
            tasks.append(asyncio.create_task(submit(client, i)))
            await asyncio.sleep(1 / rate)  # open-loop arrival rate, spreads the cases over the faults
        await asyncio.gather(*tasks)
    return ids


async def consumer_lag(access: KafkaAccess) -> dict[str, int]:
    admin = AIOKafkaAdminClient(**access.client())
    reader = AIOKafkaConsumer(**access.client())
    await admin.start()
    await reader.start()
    try:
        lag = {}
        for group in CONSUMER_GROUPS:
            committed = await admin.list_consumer_group_offsets(group)
            ends = await reader.end_offsets(list(committed))
            lag[group] = sum(max(0, ends[tp] - meta.offset) for tp, meta in committed.items())
        return lag
    finally:
        await reader.stop()
        await admin.close()


async def routed_event_ids(access: KafkaAccess) -> Counter:
    """Distinct CaseRouted event ids per case on the topic (republished copies count once)."""
    reader = TopicReader(access, "relais.case-routed.v1")
    await reader.start()
    try:
        await reader.drain(timeout=60)
    finally:
        await reader.stop()
    seen: dict[str, set[str]] = {}
    for r in reader.records:
        seen.setdefault(r.key.decode(), set()).add(dict(r.headers)["event-id"].decode())
    return Counter({case: len(ids) for case, ids in seen.items()})


async def outbox_behind(mongo_url: str) -> int:
    """Events stored in an outbox but not yet published, across every service database."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
    try:
        behind = 0
        for db_name, collection in (
            ("relais_intake", "cases"),
            ("relais_routing", "routes"),
            *((f"relais_coaching_{a}", "case_files") for a in COACHING.values()),
        ):
            db = client[db_name]
            published = {d["_id"]: d["published"] async for d in db["outbox_progress"].find({})}
            async for doc in db[collection].find({"outbox_count": {"$gt": 0}}, {"outbox_count": 1}):
                behind += doc["outbox_count"] - published.get(f"{collection}:{doc['_id']}", 0)
        return behind
    finally:
        await client.close()


class Effects:
    """What the services did, read back from their databases: the proof, not their logs."""

    def __init__(self) -> None:
        self.histories: dict[str, int] = {}  # routing decisions per case
        self.timelines: dict[str, int] = {}  # "oriente" entries in 60 000 rebonds' case file
        self.notifications: Counter = Counter()  # (case, event type, recipient) -> notifications

    @staticmethod
    async def enough(client: AsyncMongoClient, cases: int, notifications: int) -> bool:
        """Cheap first check (collection statistics): reading every document each poll would itself keep
        FerretDB busy at 5,000 cases."""
        counts = [
            await client[db][coll].estimated_document_count()
            for db, coll in (
                ("relais_routing", "routes"),
                (COACHING_DB, "case_files"),
                ("relais_notifications", "notifications"),
            )
        ]
        return counts[0] >= cases and counts[1] >= cases and counts[2] >= notifications

    async def read(self, client: AsyncMongoClient) -> None:
        routes, files, notes = (
            client["relais_routing"]["routes"],
            client[COACHING_DB]["case_files"],
            client["relais_notifications"]["notifications"],
        )
        self.histories = {d["_id"]: len(d["history"]) async for d in routes.find({}, {"history": 1})}
        self.timelines = {
            d["_id"]: sum(e["kind"] == "oriente" for e in d["timeline"]) async for d in files.find({}, {"timeline": 1})
        }
        self.notifications = Counter()
        async for n in notes.find({}, {"case_id": 1, "event_type": 1, "recipient": 1}):
            self.notifications[(n["case_id"], n["event_type"], n["recipient"])] += 1

    def missing(self, case_ids: set[str], expected: set[tuple]) -> list[tuple]:
        return (
            [(c, "routing") for c in case_ids - self.histories.keys()]
            + [(c, "coaching") for c in case_ids - self.timelines.keys()]
            + [(c, f"{event}/{recipient}") for c, event, recipient in expected - self.notifications.keys()]
        )

    def missing_by_kind(self, case_ids: set[str], expected: set[tuple]) -> dict[str, int]:
        return dict(Counter(kind for _, kind in self.missing(case_ids, expected)))


def expected_notifications(submitted: dict[str, str]) -> set[tuple]:
    """(case, event type, recipient) of every email the submitted cases must cause, exactly once each."""
    case_ids = set(submitted.values())
    expected = {(c, "CaseReceived", "entrepreneur") for c in case_ids}
    expected |= {(c, "CaseRouted", r) for c in case_ids for r in ("entrepreneur", "coordination")}
    expected |= {(submitted[k], "CaseReceived", "partenaire") for k in submitted if int(k.rsplit("-", 1)[1]) % 2 == 0}
    return expected


@dataclass
class Outcome:
    cases: int
    lost: int
    duplicated: int
    stuck: int
    dead_letters: int

    def line(self, label: str = "") -> str:
        """The summary line `make faults` shows (it keeps the lines starting with `faults`)."""
        return (
            f"faults: {label + ' ' if label else ''}cases={self.cases} lost={self.lost} "
            f"duplicated={self.duplicated} stuck={self.stuck} dead_letters={self.dead_letters}"
        )


async def outcome(stack: Stack, submitted: dict[str, str], started: float, label: str = "") -> Outcome:
    """Wait until every effect of the submitted cases is stored, then count what was lost, what happened
    twice, what is stuck in an outbox or behind a consumer group, and what was dead-lettered."""
    prefix = f"faults: {label + ': ' if label else ''}"
    case_ids = set(submitted.values())
    assert len(case_ids) == len(submitted), "two submissions got the same case id"
    expected = expected_notifications(submitted)
    seen = Effects()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.ferretdb.url)
    try:
        last_report = [time.monotonic()]

        async def settled() -> bool:
            if not await Effects.enough(client, len(case_ids), len(expected)):
                if time.monotonic() - last_report[0] > 30:
                    last_report[0] = time.monotonic()
                    print(f"{prefix}{time.monotonic() - started:.0f}s, not all effects stored yet", flush=True)
                return False
            await seen.read(client)
            missing = seen.missing(case_ids, expected)
            if missing and time.monotonic() - last_report[0] > 30:  # progress, for a slow run's log
                last_report[0] = time.monotonic()
                print(
                    f"{prefix}{time.monotonic() - started:.0f}s, missing {seen.missing_by_kind(case_ids, expected)}"
                    f", e.g. {missing[0]}",
                    flush=True,
                )
            return not missing

        try:
            await wait_for(
                settled, timeout=max(480, len(case_ids) / 5), what="every case routed, opened and notified", interval=2
            )
            print(f"{prefix}settled after {time.monotonic() - started:.0f}s")
        except AssertionError:
            print(f"{prefix}never settled, missing {seen.missing_by_kind(case_ids, expected)}")
    finally:
        await client.close()

    missing = seen.missing(case_ids, expected)
    duplicated = sum(1 for n in seen.histories.values() if n != 1) + sum(1 for n in seen.timelines.values() if n != 1)
    routed_ids = await routed_event_ids(stack.kafka.access())
    duplicated += sum(1 for case in case_ids if routed_ids[case] != 1)
    duplicated += sum(1 for n in seen.notifications.values() if n != 1)

    stuck = await outbox_behind(stack.ferretdb.url)
    last_lag: dict[str, int] = {}

    async def zero_lag() -> bool:
        last_lag.update(await consumer_lag(stack.kafka.access()))
        return not any(last_lag.values())

    try:
        await wait_for(zero_lag, timeout=180, what="consumer lag to reach 0", interval=0.5)
    except AssertionError:
        print(f"{prefix}consumer lag still {last_lag}")
        stuck += sum(last_lag.values())
    dead = await read_all(stack.kafka.access(), await dead_letter_topics(stack.kafka.access()))
    if missing:
        print(f"{prefix}missing {seen.missing_by_kind(case_ids, expected)}, e.g. {missing[:5]}")
    return Outcome(len(case_ids), len(missing), duplicated, stuck, len(dead))
