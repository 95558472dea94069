"""In-memory stores and SMTP transport for notifications' service-layer tests.

Same semantics as the Mongo stores: a notification is created once per id, every later state change is
conditional on its attempt number, a volunteer change is applied once per event, and the referral is
written under its version (a rival writer can be made to win the race).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

from services.notifications.domain import Phase, Recipient, Status
from services.notifications.smtp import SmtpFailure
from services.notifications.store import NewNotification, Stores
from shared.outbox import outbox_items
from shared.schemas import Envelope
from shared.store import Change, Decide, VersionConflict


def _apply(doc: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """The few update operators the services use, on a copy of `doc`."""
    doc = copy.deepcopy(doc)
    for path, value in update.get("$set", {}).items():
        *parents, last = path.split(".")
        target = doc
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = copy.deepcopy(value)
    for path in update.get("$unset", {}):
        doc.pop(path, None)
    for path, value in update.get("$inc", {}).items():
        doc[path] = doc.get(path, 0) + value
    for path, value in update.get("$push", {}).items():
        items = value["$each"] if isinstance(value, dict) and "$each" in value else [value]
        doc.setdefault(path, []).extend(copy.deepcopy(items))
    return doc


class FakeNotificationStore:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.open_ids: set[str] = set()
        self.claims: set[str] = set()
        self.dead_letters: list[dict[str, Any]] = []

    async def record(self, items: list[NewNotification], now: datetime) -> list[str]:
        failed = []
        for item in items:
            self.open_ids.add(item.id)
            if item.id not in self.docs:
                self.docs[item.id] = item.document(now)
            elif self.docs[item.id]["status"] == Status.FAILED.value:
                failed.append(item.id)
        await self.rearm(failed, now)
        return [item.id for item in items]

    async def rearm(self, ids: list[str], now: datetime) -> list[str]:
        rearmed = []
        for nid in ids:
            self.open_ids.add(nid)
            doc = self.docs.get(nid)
            if doc is not None and doc["status"] == Status.FAILED.value:
                doc.update(status=Status.PENDING.value, failures=0, next_attempt_at=now)
                doc.pop("reason", None)
                rearmed.append(nid)
        return rearmed

    async def unfinished(self) -> list[str]:
        return sorted(self.open_ids)

    async def unmark(self, nid: str) -> None:
        self.open_ids.discard(nid)

    async def by_ids(self, ids: list[str]) -> list[dict[str, Any]]:
        return [copy.deepcopy(self.docs[nid]) for nid in ids if nid in self.docs]

    async def claim(
        self, doc: dict[str, Any], owner: str, now: datetime, lease_until: datetime
    ) -> dict[str, Any] | None:
        attempt = doc.get("claims", 0) + 1
        key = f"{doc['_id']}#{attempt}"
        if key in self.claims:
            return None
        self.claims.add(key)
        fields = {
            "status": Status.SENDING.value,
            "phase": Phase.BEFORE_DATA.value,
            "claims": attempt,
            "owner": owner,
            "lease_until": lease_until,
            "composed_at": doc.get("composed_at") or now,
        }
        if not self._update(doc["_id"], attempt - 1, fields):
            return None
        return {**doc, **fields}

    async def defer(self, doc: dict[str, Any], until: datetime) -> None:
        self._update(doc["_id"], doc.get("claims", 0), {"next_attempt_at": until}, status=Status.PENDING)

    async def set_phase(self, nid: str, attempt: int, phase: Phase) -> bool:
        return self._update(nid, attempt, {"phase": phase.value})

    async def finish(self, nid: str, attempt: int, status: Status, now: datetime, **fields: Any) -> bool:
        return self._update(
            nid,
            attempt,
            {"status": status.value, "finished_at": now, **fields},
            unset=("source_event", "lease_until", "owner"),
        )

    async def retry_later(self, nid: str, attempt: int, at: datetime, failures: int, error: str) -> bool:
        return self._update(
            nid,
            attempt,
            {"status": Status.PENDING.value, "next_attempt_at": at, "failures": failures, "last_error": error},
            unset=("lease_until", "owner"),
        )

    async def fail(
        self, nid: str, attempt: int, failures: int, reason: str, now: datetime, dead_letter: dict[str, Any]
    ) -> bool:
        done = self._update(
            nid,
            attempt,
            {"status": Status.FAILED.value, "failures": failures, "reason": reason, "finished_at": now},
            unset=("lease_until", "owner"),
        )
        if done:
            self.dead_letters.append(dead_letter)
        return done

    async def for_case(self, case_id: str) -> list[dict[str, Any]]:
        found = sorted((d for d in self.docs.values() if d["case_id"] == case_id), key=lambda d: d["created_at"])
        return [{"id": d["_id"], **{k: v for k, v in d.items() if k not in ("_id", "source_event")}} for d in found]

    def _update(
        self, nid: str, attempt: int, fields: dict[str, Any], status: Status | None = None, unset: tuple[str, ...] = ()
    ) -> bool:
        doc = self.docs.get(nid)
        if doc is None or doc.get("claims", 0) != attempt or (status is not None and doc["status"] != status.value):
            return False
        doc.update(copy.deepcopy(fields))
        for name in unset:
            doc.pop(name, None)
        return True


class FakeContactStore:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def remember_received(self, case_id: str, contact: dict[str, Any]) -> None:
        self.docs.setdefault(case_id, {}).update(copy.deepcopy(contact), received=True)

    async def remember_routing(self, case_id: str, routing: dict[str, Any]) -> None:
        self.docs.setdefault(case_id, {}).setdefault("routings", {})[str(routing["sequence"])] = copy.deepcopy(routing)

    async def remember_volunteer(
        self, cause: Envelope, case_id: str, role: Recipient, volunteer: dict[str, Any]
    ) -> bool:
        doc = self.docs.setdefault(case_id, {})
        if str(cause.event_id) in doc.get("processed_events", []):
            return False
        doc.setdefault("volunteers", {})[role.value] = copy.deepcopy(volunteer)
        doc.setdefault("processed_events", []).append(str(cause.event_id))
        return True

    async def remember_applicant(self, case_id: str, applicant: dict[str, Any]) -> None:
        self.docs.setdefault(case_id, {})["applicant"] = copy.deepcopy(applicant)

    async def contact(self, case_id: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.docs.get(case_id))


class FakePreferenceStore:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def set(
        self, case_id: str, recipient: Recipient, channel: str, opted_out: bool, via: str, now: datetime
    ) -> dict[str, Any]:
        fields = {
            "case_id": case_id,
            "recipient": recipient.value,
            "channel": channel,
            "opted_out": opted_out,
            "via": via,
            "updated_at": now,
        }
        self.docs[f"{case_id}:{recipient.value}:{channel}"] = fields
        return dict(fields)

    async def opted_out(self, case_id: str, recipient: str, channel: str) -> bool:
        return bool(self.docs.get(f"{case_id}:{recipient}:{channel}", {}).get("opted_out"))

    async def for_case(self, case_id: str) -> list[dict[str, Any]]:
        return [dict(doc) for doc in self.docs.values() if doc["case_id"] == case_id]


class FakeReferralStore:
    """Versioned referrals; `rival_writes_first(write)` makes another writer win the next race."""

    def __init__(self, attempts: int = 5) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.outbox: dict[str, list[dict[str, Any]]] = {}
        self.attempts = attempts
        self.conflicts = 0
        self._rivals: list[Callable[[], Awaitable[Any]]] = []

    def rival_writes_first(self, write: Callable[[], Awaitable[Any]]) -> None:
        self._rivals.append(write)

    async def change(self, case_id: str, decide: Decide[Any]) -> Change[Any] | None:
        for _ in range(self.attempts):
            doc = copy.deepcopy(self.docs.get(case_id))
            decided = decide(doc)
            change = await decided if inspect.isawaitable(decided) else decided
            items = outbox_items(change.emit) + change.outbox_items if change is not None else []
            if change is None or (not change.update and not items):
                return change
            if self._rivals:  # between this writer's read and its write
                await self._rivals.pop(0)()
            version = (doc or {}).get("version", 0)
            if self.docs.get(case_id, {}).get("version", 0) != version:
                self.conflicts += 1
                continue
            update = {op: dict(fields) for op, fields in change.update.items()}
            update.setdefault("$set", {})["version"] = version + 1
            self.docs[case_id] = _apply(doc or {"_id": case_id}, update)
            self.outbox.setdefault(case_id, []).extend(items)
            return change
        raise VersionConflict(case_id)


@dataclass
class FakeStores:
    notifications: FakeNotificationStore = field(default_factory=FakeNotificationStore)
    contacts: FakeContactStore = field(default_factory=FakeContactStore)
    preferences: FakePreferenceStore = field(default_factory=FakePreferenceStore)
    referrals: FakeReferralStore = field(default_factory=FakeReferralStore)

    @property
    def stores(self) -> Stores:
        return Stores(self.notifications, self.contacts, self.preferences, self.referrals)


@dataclass
class FakeTransport:
    """An SMTP server that keeps what it accepts; `refusals` maps an address to the failure it raises."""

    sent: list[tuple[str, bytes]] = field(default_factory=list)
    refusals: dict[str, SmtpFailure] = field(default_factory=dict)

    async def send(
        self, sender: str, recipient: str, message: bytes, before_data: Callable[[], Awaitable[None]]
    ) -> str:
        if recipient in self.refusals:
            raise self.refusals[recipient]
        await before_data()
        self.sent.append((recipient, message))
        return "250"

    def to(self, address: str) -> list[EmailMessage]:
        return [message_from_bytes(raw, policy=default) for rcpt, raw in self.sent if rcpt == address]
