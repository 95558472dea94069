"""A consumer that timestamps the arrival of each key on a topic (the benchmark's stopwatch end)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from bench.waiting import BenchError, wait_until
from shared.broker import KafkaAccess


class ArrivalRecorder:
    """Reads a topic from the earliest offset in a group of its own; notes when each key first arrives.

    Times come from `time.perf_counter()` taken when a fetched batch is handed over, so they compare with
    the send times the benchmark takes in the same process.

    `group` is the prefix of its consumer group (a principal may join only groups named after itself).
    `select(record)` gives the key a record counts for (None: not counted; default: the Kafka key) and
    `identify(record)` the id of what it carries (an event id): `ids` keeps the distinct ids per key,
    so a key that got two different ids reveals a duplicated effect, while a republished copy does not.
    """

    def __init__(
        self,
        kafka: KafkaAccess,
        topic: str,
        label: str,
        select: Callable[[ConsumerRecord], bytes | None] | None = None,
        identify: Callable[[ConsumerRecord], str | None] | None = None,
        group: str | None = None,
    ) -> None:
        self.topic = topic
        self.arrivals: dict[bytes, float] = {}
        self.ids: dict[bytes, set[str]] = {}
        self.records = 0
        self._select = select or (lambda record: record.key)
        self._identify = identify
        self._consumer = AIOKafkaConsumer(
            topic,
            **kafka.client(),
            group_id=f"{group or 'bench'}-{label}-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
        )
        self._task: asyncio.Task | None = None

    async def start(self, deadline_s: float = 60) -> None:
        await self._consumer.start()
        self._task = task = asyncio.create_task(self._run(), name=f"arrivals-{self.topic}")
        assigned = await wait_until(lambda: bool(self._consumer.assignment()) or task.done(), deadline_s)
        if not assigned or task.done():
            failure = task.done() and not task.cancelled() and task.exception()
            await self.stop()
            raise BenchError(
                f"no partition of {self.topic} assigned after {deadline_s:.0f}s"
                if not assigned
                else f"the consumer of {self.topic} failed: {failure!r}"
            )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    def arrived(self, keys: list[bytes]) -> int:
        return sum(1 for key in keys if key in self.arrivals)

    async def _run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=100, max_records=1000)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    self.records += 1
                    key = self._select(record)
                    if key is None:
                        continue
                    self.arrivals.setdefault(key, now)
                    if self._identify is not None and (found := self._identify(record)) is not None:
                        self.ids.setdefault(key, set()).add(found)

    def duplicated(self, keys: list[bytes]) -> int:
        """Keys among `keys` that carried more than one distinct id."""
        return sum(1 for key in keys if len(self.ids.get(key, ())) > 1)


def header(name: str) -> Callable[[ConsumerRecord], str | None]:
    """`identify` by a record header (e.g. `event-id`)."""

    def read(record: ConsumerRecord) -> str | None:
        for key, value in record.headers or ():
            if key == name:
                return value.decode(errors="replace")
        return None

    return read
