"""The replay phase: a second routing process, in a consumer group of its own, re-reads every CaseReceived
of the run from the start of the topic, against the same routing database, until its lag is 0.

What it measures is catching up on events that are already applied: after an outage that lost committed
offsets, an offset reset, a backfill, or a new consumer group, routing re-reads cases it has routed and
must recognise each one (its dedup check against the stored route) without routing it again. That is
the replay a running system actually does; a replay into an empty database would measure first-time
routing without intake instead, and would publish a second CaseRouted per case to the notifications
still running beside it (so it is not offered). The replay must publish no new CaseRouted: the bench
counts the distinct CaseRouted event ids before and after (`new_case_routed_ids`, expected 0).

`replay_events_per_s` is timed between the first and the last move of the group's committed offsets,
polled every 100 ms (the process's start-up and group join are reported apart, in
`seconds_from_start`): committed offsets move a batch at a time, so the rate is (offsets committed
between those two observations) / (time between them).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench import store_timing
from bench.kafka import ArrivalRecorder
from bench.resources import ResourceSampler, cpu_percent
from bench.waiting import BenchError, wait_until
from ops.devstack import ServiceNode
from ops.stack import Stack, service_env
from shared.broker import KafkaAccess
from shared.schemas import EVENTS

RECEIVED_TOPIC = EVENTS["CaseReceived"].topic
POLL_S = 0.1


@dataclass
class ReplayResult:
    group: str
    events: int = 0  # CaseReceived records on the topic when the replay finished
    lag_zero: bool = False
    seconds_from_start: float | None = None  # process spawned → lag 0
    first_commit_s: float | None = None  # process spawned → first committed offset seen
    timed_events: int = 0  # offsets committed between the first and the last observed move
    timed_seconds: float | None = None
    case_routed_records: int = 0  # records published on the CaseRouted topic meanwhile (by either routing)
    new_case_routed_ids: int = 0  # distinct CaseRouted event ids that were not there before
    cpu_percent: dict[str, float] = field(default_factory=dict)
    store_profile: dict[str, Any] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float | None:
        if not self.lag_zero or not self.timed_seconds or self.timed_events <= 0:
            return None
        return self.timed_events / self.timed_seconds

    def as_dict(self) -> dict[str, Any]:
        rate = self.events_per_s
        return {
            "consumer_group": self.group,
            "topic": RECEIVED_TOPIC,
            "events": self.events,
            "lag_zero": self.lag_zero,
            "events_per_s": round(rate, 1) if rate else None,
            "timed_events": self.timed_events,
            "timed_seconds": round(self.timed_seconds, 3) if self.timed_seconds else None,
            "seconds_from_start": _round(self.seconds_from_start),
            "first_commit_after_s": _round(self.first_commit_s),
            "case_routed_records": self.case_routed_records,
            "new_case_routed_ids": self.new_case_routed_ids,
            "cpu_percent_by_process": self.cpu_percent,
            "store_profile": self.store_profile,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def partitions_of(admin: AIOKafkaAdminClient, topic: str) -> list[TopicPartition]:
    described = await admin.describe_topics([topic])
    found = sorted(p["partition"] for t in described if t["topic"] == topic for p in t["partitions"])
    if not found:
        raise BenchError(f"topic {topic} has no partitions")
    return [TopicPartition(topic, p) for p in found]


async def records_on(reader: AIOKafkaConsumer, partitions: list[TopicPartition]) -> int:
    begins = await reader.beginning_offsets(partitions)
    ends = await reader.end_offsets(partitions)
    return sum(ends[tp] - begins[tp] for tp in partitions)


class GroupProgress:
    """Polls the group's committed offsets and the topic's end offsets; notes when the commits move."""

    def __init__(self, kafka: KafkaAccess, group: str, topic: str) -> None:
        self.group, self.topic = group, topic
        self.admin = AIOKafkaAdminClient(**kafka.client(), request_timeout_ms=5000)
        self.reader = AIOKafkaConsumer(**kafka.client(), enable_auto_commit=False)
        self.partitions: list[TopicPartition] = []
        self.committed = 0  # offsets committed by the group, above the topic's beginning
        self.total = 0  # records on the topic
        self.first_move: tuple[float, int] | None = None  # (time, committed) at the first observed commit
        self.last_move: tuple[float, int] | None = None
        self.failure: BaseException | None = None
        self._task: asyncio.Task | None = None

    @property
    def lag(self) -> int:
        return self.total - self.committed

    async def start(self) -> None:
        await self.admin.start()
        await self.reader.start()
        self.partitions = await partitions_of(self.admin, self.topic)
        await self.poll()
        self._task = asyncio.create_task(self._run(), name=f"progress-{self.group}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.reader.stop()
        await self.admin.close()

    async def poll(self) -> None:
        begins = await self.reader.beginning_offsets(self.partitions)
        ends = await self.reader.end_offsets(self.partitions)
        offsets = await self.admin.list_consumer_group_offsets(self.group, partitions=self.partitions)
        now = time.perf_counter()
        done = 0
        for tp in self.partitions:
            meta = offsets.get(tp)
            done += max(meta.offset if meta is not None else -1, begins[tp]) - begins[tp]
        self.total = sum(ends[tp] - begins[tp] for tp in self.partitions)
        if done != self.committed:
            if self.first_move is None:
                self.first_move = (now, done)
            self.last_move = (now, done)
        self.committed = done

    async def _run(self) -> None:
        try:
            while True:
                await asyncio.sleep(POLL_S)
                await self.poll()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported by the waiting side
            self.failure = exc


async def run_replay(
    stack: Stack,
    routed: ArrivalRecorder,
    *,
    port: int,
    tag: str,
    extra_env: dict[str, str],
    resources: ResourceSampler,
    profile_dir: Path,
    deadline_s: float,
    stall_s: float,
) -> ReplayResult:
    """Start routing in group `routing-replay-<tag>` on the run's database; wait until its lag is 0.

    `routed` is the bench's CaseRouted recorder: the distinct event ids it holds before and after the
    replay (once it has read every record on the topic) tell whether the replay routed a case again.
    """
    group = f"routing-replay-{tag}"
    result = ReplayResult(group)
    progress = GroupProgress(stack.kafka.access(), group, RECEIVED_TOPIC)
    await progress.start()
    routed_partitions = await partitions_of(progress.admin, routed.topic)
    routed_before = await records_on(progress.reader, routed_partitions)
    env = service_env(
        "routing",
        port,
        stack.kafka.bootstrap,
        stack.ferretdb.url,
        {**extra_env, "RELAIS_ROUTING_CONSUMER_GROUP": group},
        secrets=stack.kafka.secrets,
    )
    node = ServiceNode(
        "routing-replay", stack.config.data_dir / "services", module="services.routing", port=port, env=env
    )
    stack.services[node.name] = node  # stopped with the stack if anything below fails
    try:
        if not await wait_until(lambda: routed.records >= routed_before, 60):
            raise BenchError("the bench's CaseRouted consumer is behind the topic before the replay")
        ids_before = sum(len(ids) for ids in routed.ids.values())
        print(f"  {progress.total} CaseReceived on {RECEIVED_TOPIC}; starting routing in group {group} …", flush=True)
        cpu_before = resources.cpu_snapshot()
        started = time.perf_counter()
        node.spawn()
        resources.track(node.name, node.pid)
        await asyncio.to_thread(node.wait_ready, 60)

        def finished() -> bool:
            if progress.failure is not None:
                raise BenchError(f"reading the replay group's offsets failed: {progress.failure!r}")
            if node.proc is not None and node.proc.poll() is not None:
                raise BenchError(
                    f"the replaying routing exited with code {node.proc.returncode} (log: {node.log_path})"
                )
            return progress.total > 0 and progress.lag == 0

        result.lag_zero = await wait_until(
            finished,
            deadline_s,
            poll_s=POLL_S / 2,
            advanced=lambda: progress.committed,
            stall_s=stall_s,
            progress=lambda: f"replay: {progress.committed}/{progress.total} committed",
        )
        done_at, done_wall = time.perf_counter(), time.time()
        result.cpu_percent = cpu_percent(cpu_before, resources.cpu_snapshot())
        result.events = progress.total
        result.seconds_from_start = done_at - started
        if progress.first_move is not None and progress.last_move is not None:
            result.first_commit_s = progress.first_move[0] - started
            result.timed_events = progress.last_move[1] - progress.first_move[1]
            result.timed_seconds = progress.last_move[0] - progress.first_move[0]
        if not result.lag_zero:
            print(f"  ! replay: gave up with {progress.committed}/{progress.total} committed", flush=True)
        if extra_env.get("RELAIS_BENCH_PROFILE_DIR"):
            # The store sums are written every 2 s: wait for one written after the lag reached 0.
            profile = profile_dir / f"{node.pid}.json"
            await wait_until(lambda: profile.exists() and profile.stat().st_mtime >= done_wall, 10)
            result.store_profile = store_timing.top(
                {}, store_timing.snapshot(profile_dir, {"routing-replay": node.pid})
            )
        await asyncio.to_thread(node.stop)  # its outbox relay publishes nothing more
        routed_after = await records_on(progress.reader, routed_partitions)
        result.case_routed_records = routed_after - routed_before
        if not await wait_until(lambda: routed.records >= routed_after, 60):
            raise BenchError("the bench's CaseRouted consumer did not read the replay's records")
        result.new_case_routed_ids = sum(len(ids) for ids in routed.ids.values()) - ids_before
        return result
    finally:
        await progress.stop()
        await asyncio.to_thread(node.stop)
        stack.services.pop(node.name, None)
