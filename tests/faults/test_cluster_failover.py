"""Nothing lost, nothing twice on a three-broker Kafka cluster that loses a broker, then restarts another.

Every topic has three replicas and a write needs two in sync (`acks=all`), so one broker can die at any
moment: the test SIGKILLs the active controller while cases flow, restarts it once the cluster has moved
its leaders, waits until every partition is fully replicated again, then restarts a second broker as a
rolling upgrade would (controlled shutdown), and checks the effects as the crash-recovery test does.
`make test` runs it with RELAIS_FAULT_CASES (300 by default), `make faults` with 5,000.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ops.devstack import KafkaCluster
from ops.stack import Stack
from tests.conftest import free_port, wait_for
from tests.faults.support import CASES, SEED, outcome, running_stack, submit_all

BROKERS = 3


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with running_stack(
        tmp_path / "stack", kafka_cluster_ports=tuple((free_port(), free_port()) for _ in range(BROKERS))
    ) as stack:
        yield stack


def cluster_of(stack: Stack) -> KafkaCluster:
    assert isinstance(stack.kafka, KafkaCluster)
    return stack.kafka


async def fail_brokers(cluster: KafkaCluster, rng: random.Random, pause: float) -> list[str]:
    """SIGKILL the active controller mid-run and start it again once it is fenced; when every partition is
    back in sync, restart a second broker with SIGTERM (controlled shutdown)."""
    done = []
    timings: dict[str, float] = {}

    async def until(step: str, condition: Callable[[], bool], what: str) -> None:
        started = time.monotonic()

        async def holds() -> bool:
            return await asyncio.to_thread(condition)

        await wait_for(holds, timeout=120, what=what, interval=0.5)
        timings[step] = time.monotonic() - started

    await asyncio.sleep(rng.uniform(0.2, pause))  # a random moment, not a synchronisation
    victim = await asyncio.to_thread(cluster.metadata_leader)
    cluster.node(victim).kill()
    done.append(f"kill:kafka-{victim}(controller)")
    others = {node.node_id for node in cluster.nodes} - {victim}
    # Fenced: the new controller has moved its partitions' leadership to the two others.
    await until("fenced", lambda: cluster.live_brokers() == others, f"kafka-{victim} fenced")
    await asyncio.sleep(rng.uniform(0.2, pause))  # down for a random while, cases still flowing
    started = time.monotonic()
    await asyncio.to_thread(cluster.restart, victim)
    timings["restart"] = time.monotonic() - started
    done.append(f"restart:kafka-{victim}")
    await until("in sync", cluster.fully_replicated, "every partition back in sync")

    second = rng.choice(sorted(others))
    started = time.monotonic()
    await asyncio.to_thread(cluster.node(second).stop)
    await asyncio.to_thread(cluster.restart, second)
    timings["rolling restart"] = time.monotonic() - started
    done.append(f"rolling-restart:kafka-{second}")
    await until("in sync again", cluster.fully_replicated, "every partition back in sync after the second restart")
    print("faults: cluster timings " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()), flush=True)
    return done


@pytest.mark.timeout(600 + CASES // 5)
async def test_every_case_once_through_broker_failures(stack: Stack) -> None:
    cluster = cluster_of(stack)
    # Every partition on the three brokers: the contract's, the dead-letter topics the services created, the
    # consumer offsets.
    partitions = await asyncio.to_thread(cluster.replicas)
    assert {replicas for _, replicas, _ in partitions.values()} == {BROKERS}, partitions
    assert any(name.startswith("relais.dead-letter.") for name in partitions)
    assert any(name.startswith("__consumer_offsets/") for name in partitions)
    assert await asyncio.to_thread(cluster.fully_replicated)
    rng = random.Random(SEED)
    urls = {name: node.url for name, node in stack.services.items()}
    duration = max(90.0, CASES / 100)  # about as long as the faults take here: cases keep coming throughout
    print(f"\nfaults: cluster of {BROKERS} brokers, seed={SEED} cases={CASES} over ~{duration:.0f}s")
    started = time.monotonic()

    submitted, faults = await asyncio.gather(
        submit_all(urls, CASES, rate=CASES / duration),
        fail_brokers(cluster, rng, pause=10),
    )
    print(f"faults: cluster: submitted and faults injected in {time.monotonic() - started:.0f}s")
    assert len(submitted) == CASES

    result = await outcome(stack, submitted, started, label="cluster")
    print(f"faults injected: {', '.join(faults)}")
    print(result.line("cluster"))
    assert (result.lost, result.duplicated, result.stuck, result.dead_letters) == (0, 0, 0, 0)
