"""Notifications, contacts, preferences and referrals in the store; idempotent by construction.

- `notifications`: one document per (event, recipient), id `<event_id>:<recipient>`, with its sending state.
  Every state change after creation is conditional on the attempt number (`claims`), so a process that lost
  its attempt (taken over after its lease) can no longer record anything.
- `unfinished`: the ids of notifications not yet in a final state, written before the notification and
  removed after its final state, so that the dispatcher's periodic look reads these few ids instead of
  every notification ever sent (FerretDB reads the whole collection for a `status` filter).
- `send_claims`: one document per attempt, id `<notification id>#<n>`. Inserting it is how an attempt is
  claimed: an insert on `_id` is the one write FerretDB and MongoDB both make exclusive between processes.
- `contacts`: per case, what the CaseReceived said (names, addresses, `received`), the routings by sequence
  (`routings.<n>`: association and antenna) and the volunteers by role (`volunteers.coach|parrain`: id,
  name, email; only the id once released). Personal data: read only when sending.
- `preferences`: opt-outs per case, recipient and channel.
- `referrals`: per case, the partner's status changes (versioned) and, in its outbox, the partner feed records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from services.notifications.domain import Phase, Recipient, Status
from shared.lookup import find_by_ids
from shared.outbox import WITHOUT_OUTBOX, OutboxRelay, with_outbox_items
from shared.schemas import Envelope
from shared.store import (
    Change,
    Decide,
    apply_event,
    change_versioned,
    insert_many_once,
    insert_once,
    update_by_id,
    update_if,
)

R = TypeVar("R")
# What the API may show of a notification: not the causing event, not the outbox.
HIDDEN = {"source_event": 0, **WITHOUT_OUTBOX}


@dataclass(frozen=True)
class NewNotification:
    id: str
    case_id: str
    event_id: str
    event_type: str
    recipient: Recipient
    template: str
    channel: str
    facts: dict[str, Any]
    source_event: str | None  # the causing event, kept until a final state (dead letter material)

    def document(self, now: datetime) -> dict[str, Any]:
        return {
            "_id": self.id,
            "case_id": self.case_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "recipient": self.recipient.value,
            "template": self.template,
            "channel": self.channel,
            "status": Status.PENDING.value,
            "facts": self.facts,
            "source_event": self.source_event,
            "created_at": now,
            "next_attempt_at": now,
            "claims": 0,
            "failures": 0,
        }


# --- the interfaces the service and the dispatcher use -------------------------------------------------------


class NotificationStore(Protocol):
    async def record(self, items: list[NewNotification], now: datetime) -> list[str]:
        """Create each notification once; a failed one found again is re-armed. Returns the items' ids."""

    async def rearm(self, ids: list[str], now: datetime) -> list[str]:
        """Failed notifications among `ids` go back to be sent (the causing event was replayed)."""

    async def unfinished(self) -> list[str]:
        """Ids of the notifications still to send or being sent."""

    async def unmark(self, nid: str) -> None:
        """After a final state: the periodic look no longer needs to read it."""

    async def by_ids(self, ids: list[str]) -> list[dict[str, Any]]: ...

    async def claim(
        self, doc: dict[str, Any], owner: str, now: datetime, lease_until: datetime
    ) -> dict[str, Any] | None:
        """Take the next attempt of this notification, or None if another process took it first."""

    async def defer(self, doc: dict[str, Any], until: datetime) -> None:
        """Look again later, without an attempt (the case's contact is not known yet)."""

    async def set_phase(self, nid: str, attempt: int, phase: Phase) -> bool: ...

    async def finish(self, nid: str, attempt: int, status: Status, now: datetime, **fields: Any) -> bool:
        """A final state; the causing event is no longer needed (it may hold personal data)."""

    async def retry_later(self, nid: str, attempt: int, at: datetime, failures: int, error: str) -> bool: ...

    async def fail(
        self, nid: str, attempt: int, failures: int, reason: str, now: datetime, dead_letter: dict[str, Any]
    ) -> bool:
        """Failed for good: the state and its dead letter (outbox) in one write."""

    async def for_case(self, case_id: str) -> list[dict[str, Any]]:
        """A case's notifications, oldest first, without their causing event."""


class ContactStore(Protocol):
    async def remember_received(self, case_id: str, contact: dict[str, Any]) -> None: ...

    async def remember_routing(self, case_id: str, routing: dict[str, Any]) -> None:
        """Keep a routing under its sequence: a re-routing never overwrites, an older one never wins."""

    async def remember_volunteer(
        self, cause: Envelope, case_id: str, role: Recipient, volunteer: dict[str, Any]
    ) -> bool:
        """Who follows the case in `role`, once per causing event; False when already applied."""

    async def remember_applicant(self, case_id: str, applicant: dict[str, Any]) -> None:
        """How to answer a volunteer applicant (`case_id`: their application's id)."""

    async def contact(self, case_id: str) -> dict[str, Any] | None: ...


class PreferenceStore(Protocol):
    async def set(
        self, case_id: str, recipient: Recipient, channel: str, opted_out: bool, via: str, now: datetime
    ) -> dict[str, Any]: ...

    async def opted_out(self, case_id: str, recipient: str, channel: str) -> bool: ...

    async def for_case(self, case_id: str) -> list[dict[str, Any]]: ...


class ReferralStore(Protocol):
    async def change(self, case_id: str, decide: Decide[R]) -> Change[R] | None:
        """Read the referral (None: not stored yet), decide, write under its version; retried on conflict."""


@dataclass(frozen=True)
class Stores:
    notifications: NotificationStore
    contacts: ContactStore
    preferences: PreferenceStore
    referrals: ReferralStore


# --- MongoDB (FerretDB locally) -------------------------------------------------------------------------------


def mongo_stores(db: AsyncDatabase, relay: OutboxRelay) -> Stores:
    return Stores(
        MongoNotificationStore(db, relay),
        MongoContactStore(db),
        MongoPreferenceStore(db),
        MongoReferralStore(db, relay),
    )


async def create_indexes(db: AsyncDatabase) -> None:
    await db["notifications"].create_index([("case_id", ASCENDING)])
    await db["notifications"].create_index([("status", ASCENDING)])
    await db["notifications"].create_index([("event_id", ASCENDING)])
    await db["preferences"].create_index([("case_id", ASCENDING)])


class MongoNotificationStore:
    def __init__(self, db: AsyncDatabase, relay: OutboxRelay) -> None:
        self.notifications = db["notifications"]
        self.claims = db["send_claims"]
        self.open_ids = db["unfinished"]
        self.relay = relay
        self._full_look_done = False
        relay.watch(self.notifications)

    async def record(self, items: list[NewNotification], now: datetime) -> list[str]:
        """One unordered insert for all of them (an insert on `_id` is exclusive on FerretDB and MongoDB);
        only the ones that already existed are read back, for their status."""
        if not items:
            return []
        docs = [item.document(now) for item in items]
        # Marked unfinished before they exist (a marker left for one that already existed and is final is
        # dropped when the dispatcher, after its next periodic look, reads it).
        await insert_many_once(self.open_ids, [{"_id": doc["_id"], "at": now} for doc in docs])
        existing = await insert_many_once(self.notifications, docs)
        if existing:
            failed = [
                doc["_id"]
                for doc in await find_by_ids(self.notifications, existing, {"status": 1})
                if doc["status"] == Status.FAILED.value
            ]
            await self.rearm(failed, now)
        return [item.id for item in items]

    async def rearm(self, ids: list[str], now: datetime) -> list[str]:
        rearmed = []
        for nid in ids:
            await insert_once(self.open_ids, {"_id": nid, "at": now})
            if await update_if(
                self.notifications,
                nid,
                {"status": Status.FAILED.value},
                {
                    "$set": {"status": Status.PENDING.value, "failures": 0, "next_attempt_at": now},
                    "$unset": {"reason": ""},
                },
            ):
                rearmed.append(nid)
        return rearmed

    async def unmark(self, nid: str) -> None:
        await self.open_ids.delete_one({"_id": nid})

    async def by_ids(self, ids: list[str]) -> list[dict[str, Any]]:
        return await find_by_ids(self.notifications, ids, dict(WITHOUT_OUTBOX))

    async def unfinished(self) -> list[str]:
        """Ids only: the dispatcher reads each one when it has room for it, so a backlog of thousands
        costs one read of small documents here, not one lookup per notification.

        The first look after start reads them by status, which also finds those whose marker was lost;
        later looks read the ids in `unfinished`. An id whose notification turns out to be final (the
        process stopped before unmarking it) is unmarked when the dispatcher reads it.
        """
        if not self._full_look_done:
            ids = [
                doc["_id"]
                async for doc in self.notifications.find(
                    {"status": {"$in": [Status.PENDING.value, Status.SENDING.value]}}, {"_id": 1}
                )
            ]
            self._full_look_done = True
            return ids
        return [doc["_id"] async for doc in self.open_ids.find({}, {"_id": 1})]

    async def claim(
        self, doc: dict[str, Any], owner: str, now: datetime, lease_until: datetime
    ) -> dict[str, Any] | None:
        attempt = doc.get("claims", 0) + 1
        if not await insert_once(self.claims, {"_id": f"{doc['_id']}#{attempt}", "owner": owner, "at": now}):
            return None
        fields = {
            "status": Status.SENDING.value,
            "phase": Phase.BEFORE_DATA.value,
            "claims": attempt,
            "owner": owner,
            "lease_until": lease_until,
            "composed_at": doc.get("composed_at") or now,
        }
        if not await self._update(doc["_id"], attempt - 1, {"$set": fields}):
            return None
        return {**doc, **fields}

    async def defer(self, doc: dict[str, Any], until: datetime) -> None:
        await self._update(
            doc["_id"], doc.get("claims", 0), {"$set": {"next_attempt_at": until}}, status=Status.PENDING
        )

    async def set_phase(self, nid: str, attempt: int, phase: Phase) -> bool:
        return await self._update(nid, attempt, {"$set": {"phase": phase.value}})

    async def finish(self, nid: str, attempt: int, status: Status, now: datetime, **fields: Any) -> bool:
        return await self._update(
            nid,
            attempt,
            {
                "$set": {"status": status.value, "finished_at": now, **fields},
                "$unset": {"source_event": "", "lease_until": "", "owner": ""},
            },
        )

    async def retry_later(self, nid: str, attempt: int, at: datetime, failures: int, error: str) -> bool:
        return await self._update(
            nid,
            attempt,
            {
                "$set": {
                    "status": Status.PENDING.value,
                    "next_attempt_at": at,
                    "failures": failures,
                    "last_error": error,
                },
                "$unset": {"lease_until": "", "owner": ""},
            },
        )

    async def fail(
        self, nid: str, attempt: int, failures: int, reason: str, now: datetime, dead_letter: dict[str, Any]
    ) -> bool:
        update = with_outbox_items(
            {
                "$set": {"status": Status.FAILED.value, "failures": failures, "reason": reason, "finished_at": now},
                "$unset": {"lease_until": "", "owner": ""},
            },
            [dead_letter],
        )
        done = await self._update(nid, attempt, update)
        if done:
            self.relay.notify(self.notifications, nid)
        return done

    async def _update(self, nid: str, attempt: int, update: dict[str, Any], status: Status | None = None) -> bool:
        expected: dict[str, Any] = {"claims": attempt}
        if status is not None:
            expected["status"] = status.value
        return await update_if(self.notifications, nid, expected, update)

    async def for_case(self, case_id: str) -> list[dict[str, Any]]:
        cursor = self.notifications.find({"case_id": case_id}, HIDDEN).sort("created_at", ASCENDING)
        return [{"id": doc.pop("_id"), **doc} async for doc in cursor]


class MongoContactStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.contacts = db["contacts"]

    async def remember_received(self, case_id: str, contact: dict[str, Any]) -> None:
        await update_by_id(self.contacts, case_id, {"$set": {**contact, "received": True}}, upsert=True)

    async def remember_routing(self, case_id: str, routing: dict[str, Any]) -> None:
        await update_by_id(self.contacts, case_id, {"$set": {f"routings.{routing['sequence']}": routing}}, upsert=True)

    async def remember_volunteer(
        self, cause: Envelope, case_id: str, role: Recipient, volunteer: dict[str, Any]
    ) -> bool:
        return await apply_event(self.contacts, case_id, cause, {"$set": {f"volunteers.{role.value}": volunteer}})

    async def remember_applicant(self, case_id: str, applicant: dict[str, Any]) -> None:
        await update_by_id(self.contacts, case_id, {"$set": {"applicant": applicant}}, upsert=True)

    async def contact(self, case_id: str) -> dict[str, Any] | None:
        return await self.contacts.find_one({"_id": case_id})


class MongoPreferenceStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.preferences = db["preferences"]

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
        await update_by_id(self.preferences, f"{case_id}:{recipient.value}:{channel}", {"$set": fields}, upsert=True)
        return fields

    async def opted_out(self, case_id: str, recipient: str, channel: str) -> bool:
        doc = await self.preferences.find_one({"_id": f"{case_id}:{recipient}:{channel}"}, {"opted_out": 1})
        return bool(doc and doc.get("opted_out"))

    async def for_case(self, case_id: str) -> list[dict[str, Any]]:
        return await self.preferences.find({"case_id": case_id}, {"_id": 0}).to_list(None)


class MongoReferralStore:
    def __init__(self, db: AsyncDatabase, relay: OutboxRelay) -> None:
        self.referrals = db["referrals"]
        self.relay = relay
        relay.watch(self.referrals)

    async def change(self, case_id: str, decide: Decide[R]) -> Change[R] | None:
        return await change_versioned(
            self.referrals,
            case_id,
            decide,
            projection=dict(WITHOUT_OUTBOX),
            create=True,
            on_emitted=lambda: self.relay.notify(self.referrals, case_id),
        )
