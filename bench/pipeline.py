"""The pipeline under test: `POST /cases` on intake → CaseReceived → routing → CaseRouted, and
notifications recording the case's emails (entrepreneur, coordination, referring partner).

Send times are taken just before each POST and keyed by the case id intake returns; arrival times come
from ArrivalRecorders on the CaseRouted topic (the Kafka key is the case id) and on the bench partner's
own status topic (bench.partner). Each case is referred by that partner, with its HTTP token and the
reference `LJ-<n>`, so notifications publishes the record `oriente` for it on the partner's topic once it
has handled the case's CaseReceived and CaseRouted: by then every notification of the case is recorded
(the handler records them before it writes the record). That record is the case's "notified" signal: no
polling of the store. Both clocks are this process's `time.perf_counter()`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import ConsumerRecord

from bench.kafka import ArrivalRecorder, header
from bench.partner import BenchPartner
from bench.waiting import wait_until
from shared.broker import KafkaAccess
from shared.schemas import EVENTS, Procedure, ReferralStatus

ROUTED_TOPIC = EVENTS["CaseRouted"].topic
PROCEDURES = list(Procedure)
NOTIFIED = ReferralStatus.ROUTED.value  # the feed status that says a case's notifications are recorded
# Notifications recorded per case: entrepreneur (received, routed), coordination (routed), partner (both).
NOTIFICATIONS_PER_CASE = 5


def reference(i: int) -> str:
    """The partner's reference of case `i`: no digits of the bench's phone or SIREN (intake would refuse it)."""
    return f"LJ-{i}"


def feed_key(record: ConsumerRecord) -> bytes | None:
    """`<reference>|<status>` of a partner status record."""
    try:
        status = json.loads(record.value)["status"]
    except (ValueError, KeyError, TypeError):
        return None
    return (record.key or b"") + b"|" + status.encode()


def feed_record_id(record: ConsumerRecord) -> str | None:
    try:
        return str(json.loads(record.value)["record_id"])
    except (ValueError, KeyError, TypeError):
        return None


def submission(i: int) -> dict[str, Any]:
    """A valid, realistic case; the procedure rotates so that both associations are chosen."""
    procedure = PROCEDURES[i % len(PROCEDURES)]
    return {
        "situation": {
            "procedure": procedure.value,
            "court_decision_date": None if procedure is Procedure.NONE else "2026-01-15",
            "postal_code": "69003",
            "commune": "Lyon",
            "sector": "commerce",
        },
        "entrepreneur": {
            "first_name": "Jeanne",
            "last_name": f"Martin-{i}",
            "email": f"jeanne.martin.{i}@example.fr",
            "phone": "06 12 34 56 78",
        },
        "company": {"name": "Boulangerie Martin", "siren": "732829320"},
        "referral": {
            "kind": "mandataire",
            "organisation": "Étude Dupont",
            "partner_reference": reference(i),
            "contact_email": "suivi@etude-dupont.example",
        },
        "message": "Je cherche à rebondir après la liquidation de mon entreprise.",
        "consent": True,
    }


@dataclass
class Phase:
    """One batch of submissions and what became of them."""

    name: str
    planned: int
    sent: dict[bytes, float] = field(default_factory=dict)  # case id -> POST start
    notified_key: dict[bytes, bytes] = field(default_factory=dict)  # case id -> its status key (`LJ-<n>|oriente`)
    http_ms: list[float] = field(default_factory=list)  # duration of each accepted POST
    first_post: float = float("inf")
    last_response: float = 0.0
    http_errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    schedule_lag_max_s: float = 0.0  # open loop: how late a POST started after its planned time
    rate: float | None = None
    concurrency: int | None = None
    routed_complete: bool = False  # every accepted case routed and notified
    cpu_percent: dict[str, float] = field(default_factory=dict)  # per process, from POSTs to last routed
    service_ms: dict[str, float] = field(default_factory=dict)  # mean handler/outbox times
    store_profile: dict[str, Any] = field(default_factory=dict)  # per service: store commands by time
    py_spy: dict[str, Any] = field(default_factory=dict)  # per service: functions by CPU samples

    def failed(self, what: str) -> None:
        self.http_errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(what)


class Pipeline:
    def __init__(self, intake_url: str, kafka: KafkaAccess, partner: BenchPartner, max_connections: int) -> None:
        self.routed = ArrivalRecorder(kafka, ROUTED_TOPIC, "pipeline", identify=header("event-id"))
        # As the partner itself: its own topic, in a group named after it.
        self.feed = ArrivalRecorder(
            partner.kafka,
            partner.topic,
            "feed",
            select=feed_key,
            identify=feed_record_id,
            group=partner.group("bench"),
        )
        self._referrer = {"Authorization": f"Bearer {partner.token}"}  # on the POSTs only, not the scrapes
        # Idle connections are dropped before uvicorn's 5 s keep-alive timeout closes them under our feet.
        self.client = httpx.AsyncClient(
            base_url=intake_url,
            timeout=30,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections, keepalive_expiry=2.0
            ),
        )
        self._tag = uuid.uuid4().hex[:8]
        self._numbers = itertools.count()

    async def start(self) -> None:
        await self.routed.start()
        await self.feed.start()

    async def stop(self) -> None:
        await self.client.aclose()
        await self.routed.stop()
        await self.feed.stop()

    def through_at(self, phase: Phase) -> dict[bytes, float]:
        """Case id -> when the last of its two signals (CaseRouted, the partner's record `oriente`) arrived."""
        routed, notified = self.routed.arrivals, self.feed.arrivals
        done = {}
        for case in phase.sent:
            r, n = routed.get(case), notified.get(phase.notified_key[case])
            if r is not None and n is not None:
                done[case] = max(r, n)
        return done

    def notified_at(self, phase: Phase) -> dict[bytes, float]:
        notified = self.feed.arrivals
        return {case: notified[key] for case, key in phase.notified_key.items() if key in notified}

    async def _submit(self, phase: Phase) -> None:
        i = next(self._numbers)
        body, headers = submission(i), {"Idempotency-Key": f"bench-{self._tag}-{i}", **self._referrer}
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
        case = response.json()["case_id"].encode()
        phase.notified_key[case] = f"{reference(i)}|{NOTIFIED}".encode()
        phase.sent[case] = started

    async def closed_loop(self, phase: Phase) -> None:
        """`phase.concurrency` clients, each posting its next case as soon as the previous one is answered."""
        remaining = iter(range(phase.planned))

        async def client() -> None:
            for _ in remaining:
                await self._submit(phase)

        await asyncio.gather(*(client() for _ in range(phase.concurrency or 1)))

    async def open_loop(self, phase: Phase) -> None:
        """POSTs started at `phase.rate` whatever the answers: latency without self-inflicted queueing."""
        assert phase.rate
        start = time.perf_counter()
        tasks = []
        for i in range(phase.planned):
            due = start + i / phase.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            phase.schedule_lag_max_s = max(phase.schedule_lag_max_s, time.perf_counter() - due)
            tasks.append(asyncio.create_task(self._submit(phase)))
        await asyncio.gather(*tasks)

    def routed_count(self, phase: Phase) -> int:
        return self.routed.arrived(list(phase.sent))

    def notified_count(self, phase: Phase) -> int:
        return self.feed.arrived(list(phase.notified_key.values()))

    async def wait_routed(self, phase: Phase, deadline_s: float, stall_s: float) -> bool:
        """Wait until every accepted case of the phase is routed and notified."""
        pending = set(phase.sent)
        routed, notified = self.routed.arrivals, self.feed.arrivals

        def through() -> bool:
            pending.difference_update(
                [case for case in pending if case in routed and phase.notified_key[case] in notified]
            )
            return not pending

        def progress() -> str:
            return (
                f"{phase.name}: routed {self.routed_count(phase)}, notified {self.notified_count(phase)}"
                f" of {len(phase.sent)}"
            )

        phase.routed_complete = await wait_until(
            through, deadline_s, poll_s=0.05, advanced=lambda: len(pending), stall_s=stall_s, progress=progress
        )
        if not phase.routed_complete:
            print(
                f"  ! {phase.name}: gave up with {progress()} (nothing new for {stall_s:.0f}s, "
                f"or {deadline_s:.0f}s in all)",
                flush=True,
            )
        return phase.routed_complete
