"""Baseline throughput: N small records through a baseline process on the pipeline's broker.

Three baselines: the raw relay (bench.relay: consume → produce), the minimal stage (bench.minimal_stage:
consume → one upsert per record in FerretDB → produce) and the minimal batched stage (`--batched`: consume
→ one insert_many per batch → produce). Measured end to end like the pipeline: from the first record
produced to topic A to the last one consumed from topic B.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.baseline_login import login_env
from bench.kafka import ArrivalRecorder
from bench.resources import ResourceSampler, cpu_percent
from bench.waiting import BenchError, wait_until
from ops.devstack import ROOT
from shared.broker import KafkaAccess


@dataclass
class BaselineResult:
    messages: int
    received: int
    message_bytes: int
    seconds: float
    produce_seconds: float
    cpu_percent: dict[str, float] = field(default_factory=dict)

    @property
    def msgs_per_s(self) -> float:
        return self.received / self.seconds if self.seconds > 0 else 0.0

    @property
    def produce_msgs_per_s(self) -> float:
        return self.messages / self.produce_seconds if self.produce_seconds > 0 else 0.0


async def create_topics(kafka: KafkaAccess, names: list[str], partitions: int, deadline_s: float = 30) -> None:
    """Create the topics and wait until every partition has a leader (clients fail noisily before)."""
    admin = AIOKafkaAdminClient(**kafka.client(), request_timeout_ms=15000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names])
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            described = await admin.describe_topics(names)
            leaders = [p["leader"] for t in described for p in t["partitions"]]
            if len(leaders) == partitions * len(names) and all(leader >= 0 for leader in leaders):
                return
            await asyncio.sleep(0.1)
        raise BenchError(f"topics {names} have no leader after {deadline_s:.0f}s")
    finally:
        await admin.close()


async def start_relay(
    module: str, args: list[str], kafka: KafkaAccess, deadline_s: float = 60
) -> asyncio.subprocess.Process:
    """Start `python -m <module> <args>`; return once it printed `ready` (its partitions are assigned)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
        cwd=ROOT,
        env={**os.environ, **login_env(kafka)},
    )
    assert proc.stdout is not None  # stdout=PIPE
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), deadline_s)
    except TimeoutError:
        line = b""
    if line.strip() != b"ready":
        await stop_relay(proc)
        raise BenchError(
            f"the baseline {module} did not get its partitions within {deadline_s:.0f}s (exit code {proc.returncode})"
        )
    return proc


async def stop_relay(proc: asyncio.subprocess.Process, deadline_s: float = 10) -> None:
    if proc.returncode is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), deadline_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()


async def run_baseline(
    kafka: KafkaAccess,
    messages: int,
    message_bytes: int,
    partitions: int,
    resources: ResourceSampler,
    deadline_s: float,
    mongo_url: str | None = None,
    batched: bool = False,
) -> BaselineResult:
    """The raw relay, or the minimal stage when `mongo_url` is given (its writes go there), batched or not."""
    tag = uuid.uuid4().hex[:8]
    name = "relay" if mongo_url is None else "minimal-batched-stage" if batched else "minimal-stage"
    source, destination = f"bench.{name}-in.{tag}", f"bench.{name}-out.{tag}"
    await create_topics(kafka, [source, destination], partitions)
    received = ArrivalRecorder(kafka, destination, "baseline")
    await received.start()
    relay = None
    producer = AIOKafkaProducer(**kafka.client(), acks="all", enable_idempotence=True, linger_ms=2)
    group = f"bench-{name}-{tag}"
    module, args = (
        ("bench.relay", [kafka.bootstrap, source, destination, group])
        if mongo_url is None
        else (
            "bench.minimal_stage",
            [*(["--batched"] if batched else []), kafka.bootstrap, mongo_url, source, destination, group],
        )
    )
    try:
        relay = await start_relay(module, args, kafka)
        resources.track(f"baseline-{name}", relay.pid)
        await producer.start()
        value = os.urandom(message_bytes // 2).hex().encode()[:message_bytes]
        keys = [str(uuid.uuid4()).encode() for _ in range(messages)]
        print(f"  producing {messages} records of {message_bytes} bytes to {source} …", flush=True)
        cpu_before = resources.cpu_snapshot()
        started = time.perf_counter()
        acks = [await producer.send(source, value, key=key) for key in keys]
        await asyncio.gather(*acks)
        produced = time.perf_counter()
        complete = await wait_until(
            lambda: len(received.arrivals) >= messages,
            deadline_s,
            progress=lambda: f"relayed {len(received.arrivals)}/{messages}",
            advanced=lambda: len(received.arrivals),
            stall_s=60,
        )
        if not complete:
            print(f"  ! gave up with {len(received.arrivals)}/{messages} relayed", flush=True)
        cpu = cpu_percent(cpu_before, resources.cpu_snapshot())
        last = max(received.arrivals.values(), default=started)
        return BaselineResult(messages, received.arrived(keys), message_bytes, last - started, produced - started, cpu)
    finally:
        await producer.stop()
        if relay is not None:
            await stop_relay(relay)
        await received.stop()
