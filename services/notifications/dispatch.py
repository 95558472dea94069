"""Sends recorded notifications, each exactly once as far as SMTP allows. See docs/notifications.md.

The service records notifications and hands their ids over; this loop claims each one (an attempt
number made exclusive by an insert), sends it, and records the result under that attempt number:

1. claim: `envoi_en_cours`, phase `avant_donnees`, a lease (`send_lease_s`);
2. after the server accepted sender and recipient: phase `donnees`, then DATA;
3. on the server's 250: `envoye`.

A process that dies leaves `envoi_en_cours` behind; once its lease has passed, any instance takes it over.
Phase `avant_donnees`: the server cannot have the message, it is simply sent. Phase `donnees`: the server
may have it; `in_doubt=resend` sends the identical message again (same Message-ID and Date, receivers
keep one), `in_doubt=assume_sent` records it as sent.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from services.notifications.domain import (
    Phase,
    Recipient,
    Status,
    backoff_s,
    message_id,
)
from services.notifications.facts import Address, address_of, still_unknown
from services.notifications.messages import compose, envelope_sender, render_context
from services.notifications.metrics import NotificationMetrics
from services.notifications.settings import NotificationsSettings
from services.notifications.smtp import SmtpFailure
from services.notifications.store import Stores
from services.notifications.templates import Renderer
from services.notifications.tokens import Tokens
from shared.broker import dead_letter_headers, dead_letter_topic
from shared.outbox import outbox_item, scan_pause
from shared.runtime import BackgroundTask
from shared.schemas import EVENTS, Envelope

log = logging.getLogger("relais.notifications.dispatch")
CONTACT_RECHECK_S = 2.0
INFLIGHT_PER_SLOT = 8  # notifications taken in hand per concurrent send: enough to keep the slots busy


class Transport(Protocol):
    async def send(
        self, sender: str, recipient: str, message: bytes, before_data: Callable[[], Awaitable[None]]
    ) -> str:
        """Send one message; `before_data` runs once the server accepted the envelope, right before DATA.
        Returns the server's reply; raises `SmtpFailure`."""


class Dispatcher:
    def __init__(
        self,
        stores: Stores,
        transport: Transport,
        renderer: Renderer,
        tokens: Tokens,
        settings: NotificationsSettings,
        metrics: NotificationMetrics,
        consumer_group: str,
        clock: Callable[[], datetime],
    ) -> None:
        self.notifications, self.contacts, self.preferences = stores.notifications, stores.contacts, stores.preferences
        self.transport, self.renderer, self.tokens = transport, renderer, tokens
        self.settings, self.metrics, self.clock = settings, metrics, clock
        self.consumer_group = consumer_group
        self.owner = uuid.uuid4().hex
        self._hints: set[str] = set()
        self._timers: list[tuple[float, str]] = []  # (monotonic time, notification id): retries due later
        self._inflight: dict[str, asyncio.Task] = {}
        self._max_inflight = INFLIGHT_PER_SLOT * settings.send_concurrency
        self._slots = asyncio.Semaphore(settings.send_concurrency)
        self._pause_until = 0.0  # after an SMTP outage nothing is attempted before this
        self._outages = 0
        self._next_scan = 0.0
        self._task = BackgroundTask(
            "notification-dispatcher", self._step, interval_s=settings.dispatch_scan_s, backoff_s=0.4, backoff_max_s=5.0
        )

    # --- lifecycle -------------------------------------------------------------------------------------

    def submit(self, ids: list[str]) -> None:
        """Notifications just recorded: look at them now (the periodic scan would find them later)."""
        self._hints.update(ids)
        self._task.wake()

    async def start(self) -> None:
        await self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
        if self._inflight:  # let sends finish; a send cut here is taken over after its lease
            await asyncio.wait(list(self._inflight.values()), timeout=self.settings.smtp_timeout_s)
            for task in self._inflight.values():
                task.cancel()

    async def _step(self) -> float:
        """Take in hand what is due, then say how long to wait (a submit or a finishing send wakes it)."""
        await self._cycle()
        now = time.monotonic()
        # Without room, due timers wait too: a finishing send wakes the loop.
        until = min([self._next_scan, *(t for t, _ in self._timers[:1] if self._room())])
        if self._pause_until > now:
            until = max(until, self._pause_until)
        return max(0.01, until - now)

    async def _cycle(self) -> None:
        now = time.monotonic()
        if now < self._pause_until:
            return
        # At most `_max_inflight` notifications are held in memory at once; the others stay ids in `_hints`
        # until a send finishes (a backlog of recorded emails must not grow the process).
        room = self._room()
        ids = set(itertools.islice(self._hints, room))
        self._hints.difference_update(ids)
        while self._timers and self._timers[0][0] <= now and len(ids) < room:
            ids.add(heapq.heappop(self._timers)[1])
        if now >= self._next_scan:
            # The safety net reads ids only; they join the hints and are read whole when there is room.
            self._hints.update(ids)
            self._hints.update(await self.notifications.unfinished())
            ids = set()
            self._next_scan = time.monotonic() + scan_pause(self.settings.dispatch_scan_s, time.monotonic() - now)
        docs = await self.notifications.by_ids(sorted(ids)) if ids else []
        wall = self.clock()
        for doc in docs:
            if doc["_id"] in self._inflight:
                continue
            when = _due_at(doc)
            if when is None:
                await self.notifications.unmark(doc["_id"])  # final already: nothing left to look at
                continue
            if when > wall:
                self._later(doc["_id"], when)
            elif self._room():
                self._inflight[doc["_id"]] = asyncio.create_task(self._attempt(doc))
            else:
                self._hints.add(doc["_id"])
        if self._hints and self._room():
            self._task.wake()  # more to take in hand now

    def _room(self) -> int:
        return max(0, self._max_inflight - len(self._inflight))

    def _later(self, nid: str, when: datetime) -> None:
        delay = max(0.0, (when - self.clock()).total_seconds())
        heapq.heappush(self._timers, (time.monotonic() + delay, nid))
        self._task.wake()

    async def _attempt(self, doc: dict[str, Any]) -> None:
        try:
            async with self._slots:
                await self._send(doc)
        except Exception as exc:  # noqa: BLE001 - the store failed mid-way: the lease lets it be taken over
            log.warning(
                "notification attempt interrupted", extra={"notification_id": doc["_id"], "error": type(exc).__name__}
            )
            self._later(doc["_id"], self.clock() + timedelta(seconds=self.settings.send_lease_s))
        finally:
            self._inflight.pop(doc["_id"], None)
            if self._hints or self._timers:
                self._task.wake()  # room for the next ones

    # --- one notification ------------------------------------------------------------------------------

    async def _send(self, doc: dict[str, Any]) -> None:
        nid, case_id = doc["_id"], doc["case_id"]
        recipient = Recipient(doc["recipient"])
        now = self.clock()
        contact = await self.contacts.contact(case_id)
        waited = now - _aware(doc["created_at"])
        if still_unknown(recipient, contact, doc.get("facts") or {}) and waited < timedelta(
            seconds=self.settings.contact_wait_s
        ):
            # The event naming the address (another topic) is not handled yet: look again shortly.
            when = now + timedelta(seconds=CONTACT_RECHECK_S)
            await self.notifications.defer(doc, when)
            self._later(nid, when)
            return
        in_doubt = doc["status"] == Status.SENDING.value and doc.get("phase") == Phase.DATA.value
        claimed = await self.notifications.claim(
            doc, self.owner, now, now + timedelta(seconds=self.settings.send_lease_s)
        )
        if claimed is None:
            return
        attempt = claimed["claims"]
        if in_doubt and self.settings.in_doubt == "assume_sent":
            await self._finish(claimed, attempt, Status.SENT, "assumed_sent", in_doubt=True)
            return
        if await self.preferences.opted_out(case_id, recipient.value, doc["channel"]):
            await self._finish(claimed, attempt, Status.OPTED_OUT, "opted_out")
            return
        address = address_of(recipient, contact, doc.get("facts") or {}, self.settings.coordinators)
        if address is None:
            await self._finish(claimed, attempt, Status.NO_ADDRESS, "no_address")
            return
        mid = message_id(nid, self.settings.message_id_domain)
        try:
            message = self._message(claimed, recipient, contact, address, mid)
        except Exception as exc:  # noqa: BLE001 - a template that cannot render will never render
            await self._fail(claimed, attempt, doc.get("failures", 0) + 1, f"rendering failed ({type(exc).__name__})")
            return

        async def before_data() -> None:
            if not await self.notifications.set_phase(nid, attempt, Phase.DATA):
                raise SmtpFailure("attempt taken over by another instance")

        try:
            reply = await self.transport.send(
                envelope_sender(self.settings.sender), address.email, message, before_data
            )
        except SmtpFailure as failure:
            await self._failed(claimed, attempt, failure)
            return
        self._outages = 0
        if in_doubt:
            self.metrics.count(recipient.value, "resent_in_doubt")
        await self._finish(
            claimed, attempt, Status.SENT, "sent", smtp_reply=reply, message_id=mid, resent_in_doubt=in_doubt
        )

    def _message(
        self, doc: dict[str, Any], recipient: Recipient, contact: dict[str, Any] | None, address: Address, mid: str
    ) -> bytes:
        url = (
            f"{self.settings.public_url.rstrip('/')}/desabonnement/{self.tokens.unsubscribe(doc['case_id'], recipient)}"
        )
        context = render_context(
            recipient=recipient,
            case_id=doc["case_id"],
            facts=doc.get("facts") or {},
            contact=contact,
            address=address,
            unsubscribe_url=url,
            coordinators=self.settings.coordinators,
        )
        rendered = self.renderer.render(doc["template"], context)
        return compose(
            rendered=rendered,
            sender=self.settings.sender,
            to=address,
            message_id=mid,
            composed_at=_aware(doc["composed_at"]),
            unsubscribe_url=url,
        ).as_bytes()

    async def _finish(self, doc: dict[str, Any], attempt: int, status: Status, result: str, **fields: Any) -> None:
        if await self.notifications.finish(doc["_id"], attempt, status, self.clock(), **fields):
            self.metrics.count(doc["recipient"], result)
            await self.notifications.unmark(doc["_id"])

    async def _failed(self, doc: dict[str, Any], attempt: int, failure: SmtpFailure) -> None:
        now = self.clock()
        if failure.outage:
            # Nobody answered: an outage, not this message's fault. Pause sending, keep the attempt count.
            self._outages += 1
            delay = backoff_s(self._outages, self.settings.send_backoff_ms, self.settings.send_backoff_max_ms)
            self._pause_until = time.monotonic() + delay
            if await self.notifications.retry_later(
                doc["_id"], attempt, now + timedelta(seconds=delay), doc.get("failures", 0), failure.reason
            ):
                self.metrics.count(doc["recipient"], "retried")
                self._later(doc["_id"], now + timedelta(seconds=delay))
            log.warning("SMTP server unreachable, sending paused", extra={"retry_in_s": delay})
            return
        if failure.in_doubt and self.settings.in_doubt == "assume_sent":
            await self._finish(doc, attempt, Status.SENT, "assumed_sent", in_doubt=True)
            return
        failures = doc.get("failures", 0) + 1
        if failure.permanent or failures >= self.settings.send_max_attempts:
            await self._fail(doc, attempt, failures, f"{failure.reason} after {failures} attempt(s)")
            return
        delay = backoff_s(failures, self.settings.send_backoff_ms, self.settings.send_backoff_max_ms)
        if await self.notifications.retry_later(
            doc["_id"], attempt, now + timedelta(seconds=delay), failures, failure.reason
        ):
            self.metrics.count(doc["recipient"], "retried")
            self._later(doc["_id"], now + timedelta(seconds=delay))

    async def _fail(self, doc: dict[str, Any], attempt: int, failures: int, reason: str) -> None:
        if await self.notifications.fail(
            doc["_id"], attempt, failures, reason, self.clock(), self._dead_letter(doc, reason)
        ):
            self.metrics.count(doc["recipient"], "failed")
            log.error(
                "notification failed and dead-lettered",
                extra={
                    "notification_id": doc["_id"],
                    "reason": reason,
                    "dead_letter_topic": dead_letter_topic(self.consumer_group),
                },
            )
            await self.notifications.unmark(doc["_id"])

    def _dead_letter(self, doc: dict[str, Any], reason: str) -> dict[str, Any]:
        """The causing event, as the consumer would dead-letter it: replaying it re-arms the notification."""
        source = doc.get("source_event")
        spec = EVENTS[doc["event_type"]]
        original = Envelope.model_validate_json(source).headers() if source else {}
        headers = dead_letter_headers(
            original, reason=reason, kind="smtp", consumer_group=self.consumer_group, source_topic=spec.topic
        )
        headers["dlq-notification-id"] = doc["_id"]
        return outbox_item(
            topic=dead_letter_topic(self.consumer_group),
            key=doc["case_id"],
            value=source or "",
            headers=headers,
            event_type="NotificationFailed",
            event_id=doc["_id"],
            created_at=self.clock().timestamp(),
        )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _due_at(doc: dict[str, Any]) -> datetime | None:
    """When a notification should be looked at: its next attempt, or its lease's end if being sent."""
    if doc["status"] == Status.PENDING.value:
        return _aware(doc["next_attempt_at"])
    if doc["status"] == Status.SENDING.value:
        return _aware(doc["lease_until"])
    return None
