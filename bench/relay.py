"""The baseline: a raw aiokafka consume → produce relay, run as its own process like a service.

`python -m bench.relay BOOTSTRAP SOURCE DESTINATION GROUP` copies every record of SOURCE to DESTINATION
with the producer settings of our services (acks=all, idempotent, linger 2 ms) and commits the source
offsets after the copies are acknowledged (at-least-once, like our consumers). It prints `ready` once
its partitions are assigned and stops on SIGTERM. No database, no decoding: the ceiling Kafka and
aiokafka allow on this machine.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.baseline_login import login


async def relay(bootstrap: str, source: str, destination: str, group: str) -> None:
    kafka = login(bootstrap)
    consumer = AIOKafkaConsumer(
        source,
        **kafka.client(),
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
    )
    producer = AIOKafkaProducer(**kafka.client(), acks="all", enable_idempotence=True, linger_ms=2)
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    await producer.start()
    await consumer.start()
    announced = False
    try:
        while not stopping.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=500)
            if not announced and consumer.assignment():
                print("ready", flush=True)
                announced = True
            acks = [
                await producer.send(destination, record.value, key=record.key)
                for records in batches.values()
                for record in records
            ]
            if acks:
                await asyncio.gather(*acks)
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


if __name__ == "__main__":
    asyncio.run(relay(*sys.argv[1:5]))
