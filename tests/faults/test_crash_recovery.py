"""Nothing lost, nothing twice: cases submitted while services are SIGKILLed and Kafka and FerretDB restart.

Like Kafka's own transaction tests: submit N unique cases, inject faults during the run, then check that
the set of effects equals the set of inputs with no duplicates. `make faults` runs it with 5,000 cases;
`make test` with RELAIS_FAULT_CASES (300 by default).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.stack import SERVICES, Stack
from tests.faults.support import CASES, SEED, outcome, running_stack, submit_all

# Killed a second time: the consumers every case goes through (Second Souffle's coaching only skips them).
BUSY_CONSUMERS = ("routing", "coaching-60000_rebonds", "notifications")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with running_stack(tmp_path / "stack") as stack:
        yield stack


async def inject_faults(stack: Stack, rng: random.Random, pause: float) -> list[str]:
    """SIGKILL and restart each service (twice for the busy consumers), restart Kafka once and FerretDB once."""
    steps = [f"kill:{name}" for name in SERVICES] + [f"kill:{name}" for name in BUSY_CONSUMERS]
    steps += ["restart:kafka", "restart:ferretdb"]
    rng.shuffle(steps)
    done = []
    for step in steps:
        await asyncio.sleep(rng.uniform(0.2, pause))  # a random moment, not a synchronisation
        action, target = step.split(":")
        if action == "kill":
            service = stack.services[target]
            service.kill()
            await asyncio.to_thread(service.start, 90)
        else:
            node = stack.kafka if target == "kafka" else stack.ferretdb
            await asyncio.to_thread(node.stop)
            await asyncio.to_thread(node.start)
        done.append(step)
    return done


@pytest.mark.timeout(900 + CASES // 5)  # five service processes restarted one by one on a small machine
async def test_every_case_once_through_crashes_and_restarts(stack: Stack) -> None:
    rng = random.Random(SEED)
    urls = {name: node.url for name, node in stack.services.items()}
    duration = max(30.0, CASES / 100)
    print(f"\nfaults: seed={SEED} cases={CASES} over ~{duration:.0f}s")
    started = time.monotonic()

    submitted, faults = await asyncio.gather(
        submit_all(urls, CASES, rate=CASES / duration),
        inject_faults(stack, rng, pause=duration / 10),
    )
    print(f"faults: submitted and faults injected in {time.monotonic() - started:.0f}s")
    assert len(submitted) == CASES

    result = await outcome(stack, submitted, started)
    print(f"faults injected: {', '.join(faults)}")
    print(result.line())
    assert (result.lost, result.duplicated, result.stuck, result.dead_letters) == (0, 0, 0, 0)
