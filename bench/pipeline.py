"""The pipeline under test: `POST /cases` on intake → CaseReceived → routing → CaseRouted consumed.

Send times are taken just before each POST and keyed by the case id intake returns; arrival times come
from an ArrivalRecorder on the CaseRouted topic (the Kafka key is the case id). Both clocks are this
process's `time.perf_counter()`.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.kafka import ArrivalRecorder
from bench.waiting import wait_until
from shared.schemas import EVENTS, Procedure

ROUTED_TOPIC = EVENTS["CaseRouted"].topic
PROCEDURES = list(Procedure)


def submission(i: int) -> dict[str, Any]:
    """A valid, realistic case; the procedure rotates so that both associations are chosen."""
    procedure = PROCEDURES[i % len(PROCEDURES)]
    return {
        "situation": {"procedure": procedure.value,
                      "court_decision_date": None if procedure is Procedure.NONE else "2026-01-15",
                      "postal_code": "69003", "commune": "Lyon", "sector": "commerce"},
        "entrepreneur": {"first_name": "Jeanne", "last_name": f"Martin-{i}",
                         "email": f"jeanne.martin.{i}@example.fr", "phone": "06 12 34 56 78"},
        "company": {"name": "Boulangerie Martin", "siren": "732829320"},
        "referral": {"kind": "mandataire", "organisation": "Étude Dupont", "partner_reference": f"LJ-{i}"},
        "message": "Je cherche à rebondir après la liquidation de mon entreprise.",
        "consent": True,
    }


@dataclass
class Phase:
    """One batch of submissions and what became of them."""

    name: str
    planned: int
    sent: dict[bytes, float] = field(default_factory=dict)  # case id -> POST start
    http_ms: list[float] = field(default_factory=list)  # duration of each accepted POST
    first_post: float = float("inf")
    last_response: float = 0.0
    http_errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    schedule_lag_max_s: float = 0.0  # open loop: how late a POST started after its planned time
    rate: float | None = None
    concurrency: int | None = None
    routed_complete: bool = False
    cpu_percent: dict[str, float] = field(default_factory=dict)  # per process, from POSTs to last routed
    service_ms: dict[str, float | None] = field(default_factory=dict)  # mean handler/outbox times

    def failed(self, what: str) -> None:
        self.http_errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(what)


class Pipeline:
    def __init__(self, intake_url: str, bootstrap: str, max_connections: int) -> None:
        self.routed = ArrivalRecorder(bootstrap, ROUTED_TOPIC, "pipeline")
        # Idle connections are dropped before uvicorn's 5 s keep-alive timeout closes them under our feet.
        self.client = httpx.AsyncClient(
            base_url=intake_url, timeout=30,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections,
                                keepalive_expiry=2.0),
        )
        self._tag = uuid.uuid4().hex[:8]
        self._numbers = itertools.count()

    async def start(self) -> None:
        await self.routed.start()

    async def stop(self) -> None:
        await self.client.aclose()
        await self.routed.stop()

    async def _submit(self, phase: Phase) -> None:
        i = next(self._numbers)
        body, headers = submission(i), {"Idempotency-Key": f"bench-{self._tag}-{i}"}
        started = time.perf_counter()
        phase.first_post = min(phase.first_post, started)
        try:
            response = await self.client.post("/cases", json=body, headers=headers)
        except httpx.HTTPError as exc:
            phase.failed(type(exc).__name__)
            return
        answered = time.perf_counter()
        phase.last_response = max(phase.last_response, answered)
        if response.status_code != 201:
            phase.failed(f"HTTP {response.status_code}")
            return
        phase.http_ms.append((answered - started) * 1000)
        phase.sent[response.json()["case_id"].encode()] = started

    async def closed_loop(self, name: str, cases: int, concurrency: int) -> Phase:
        """`concurrency` clients, each posting its next case as soon as the previous one is answered."""
        phase = Phase(name, cases, concurrency=concurrency)
        remaining = iter(range(cases))

        async def client() -> None:
            for _ in remaining:
                await self._submit(phase)

        await asyncio.gather(*(client() for _ in range(concurrency)))
        return phase

    async def open_loop(self, name: str, cases: int, rate: float) -> Phase:
        """POSTs started at a fixed rate whatever the answers: latency without self-inflicted queueing."""
        phase = Phase(name, cases, rate=rate)
        start = time.perf_counter()
        tasks = []
        for i in range(cases):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            phase.schedule_lag_max_s = max(phase.schedule_lag_max_s, time.perf_counter() - due)
            tasks.append(asyncio.create_task(self._submit(phase)))
        await asyncio.gather(*tasks)
        return phase

    async def wait_routed(self, phase: Phase, deadline_s: float, stall_s: float = 120.0) -> bool:
        pending = set(phase.sent)
        arrivals = self.routed.arrivals

        def all_routed() -> bool:
            pending.difference_update([key for key in pending if key in arrivals])
            return not pending

        phase.routed_complete = await wait_until(
            all_routed, deadline_s, poll_s=0.05, advanced=lambda: len(pending), stall_s=stall_s,
            progress=lambda: f"{phase.name}: routed {len(phase.sent) - len(pending)}/{len(phase.sent)}",
        )
        if not phase.routed_complete:
            print(f"  ! {phase.name}: gave up with {len(phase.sent) - len(pending)}/{len(phase.sent)} cases "
                  f"routed (nothing new for {stall_s:.0f}s, or {deadline_s:.0f}s in all)", flush=True)
        return phase.routed_complete
