"""Notifications, contacts, preferences and referrals in the store; idempotent by construction.

- `notifications`: one document per (event, recipient), id `<event_id>:<recipient>`, with its sending state.
  Every state change after creation is conditional on the attempt number (`claims`), so a process that lost
  its attempt (taken over after its lease) can no longer record anything.
- `unfinished`: the ids of notifications not yet in a final state, written before the notification and
  removed after its final state, so that the dispatcher's periodic look reads these few ids instead of
  every notification ever sent (FerretDB reads the whole collection for a `status` filter).
- `send_claims`: one document per attempt, id `<notification id>#<n>`. Inserting it is how an attempt is
  claimed: an insert on `_id` is the one write FerretDB and MongoDB both make exclusive between processes.
- `contacts`: per case, what the CaseReceived said (names, addresses) plus the antenna and volunteers the
  later events named. Personal data: read only when sending.
- `preferences`: opt-outs per case, recipient and channel.
- `referrals`: per case, the partner's status changes and, in its outbox, the partner feed records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.notifications.domain import Phase, Recipient, Status
from shared.lookup import find_by_ids
from shared.outbox import OutboxRelay, with_outbox_items
from shared.schemas import CaseReceived
from shared.store import document_lock, update_if

HIDDEN = {"source_event": 0, "outbox": 0, "outbox_count": 0}
DUPLICATE_KEY = 11000


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


class NotificationStore:
    def __init__(self, db: AsyncDatabase, relay: OutboxRelay) -> None:
        self.notifications = db["notifications"]
        self.claims = db["send_claims"]
        self.open_ids = db["unfinished"]
        self._full_look_done = False
        self.contacts = db["contacts"]
        self.preferences = db["preferences"]
        self.referrals = db["referrals"]
        self.relay = relay
        relay.watch(self.notifications)
        relay.watch(self.referrals)

    async def create_indexes(self) -> None:
        await self.notifications.create_index([("case_id", ASCENDING)])
        await self.notifications.create_index([("status", ASCENDING)])
        await self.notifications.create_index([("event_id", ASCENDING)])
        await self.preferences.create_index([("case_id", ASCENDING)])

    # --- contacts ---------------------------------------------------------------------------------------

    async def remember_contact(self, case_id: str, received: CaseReceived) -> None:
        personal, situation = received.personal, received.situation
        fields = {
            "first_name": personal.first_name, "last_name": personal.last_name,
            "email": personal.email, "phone": personal.phone,
            "referral": received.referral.model_dump(mode="json"),
            "situation": {"commune": situation.commune, "postal_code": situation.postal_code},
            "received": True,
        }
        async with document_lock(self.contacts, case_id):
            await self.contacts.update_one({"_id": case_id}, {"$set": fields}, upsert=True)

    async def remember_routing(self, case_id: str, sequence: int, association: str,
                               antenna: dict[str, str] | None) -> None:
        """Keep the latest routing's antenna (a re-routing has a higher sequence; older ones are ignored)."""
        async with document_lock(self.contacts, case_id):
            doc = await self.contacts.find_one({"_id": case_id}, {"routing": 1}) or {}
            if (doc.get("routing") or {}).get("sequence", 0) > sequence:
                return
            routing = {"sequence": sequence, "association": association, "antenna": antenna}
            await self.contacts.update_one({"_id": case_id}, {"$set": {"routing": routing}}, upsert=True)

    async def remember_volunteers(self, case_id: str, volunteers: dict[str, dict[str, str]]) -> None:
        if not volunteers:
            return
        async with document_lock(self.contacts, case_id):
            await self.contacts.update_one(
                {"_id": case_id}, {"$set": {f"volunteers.{role}": v for role, v in volunteers.items()}},
                upsert=True)

    async def contact(self, case_id: str) -> dict[str, Any] | None:
        return await self.contacts.find_one({"_id": case_id})

    # --- notifications: creation ------------------------------------------------------------------------

    async def record(self, items: list[NewNotification]) -> list[str]:
        """Create each notification once. A redelivered event finds them and changes nothing, except that a
        failed one is re-armed: the event coming again is a dead letter being replayed after a fix.

        One unordered insert for all of them (an insert on `_id` is exclusive on FerretDB and MongoDB, so no
        lock is needed); only the ones that already existed are read back, for their status."""
        if not items:
            return []
        now = datetime.now(UTC)
        docs = [{"_id": item.id, "case_id": item.case_id, "event_id": item.event_id, "event_type": item.event_type,
                 "recipient": item.recipient.value, "template": item.template, "channel": item.channel,
                 "status": Status.PENDING.value, "facts": item.facts, "source_event": item.source_event,
                 "created_at": now, "next_attempt_at": now, "claims": 0, "failures": 0} for item in items]
        # Marked unfinished before they exist (a marker left for one that already existed and is final is
        # dropped when the dispatcher, after its next periodic look, reads it).
        await self._mark_unfinished([doc["_id"] for doc in docs])
        existing = await _insert_new(self.notifications, docs)
        if existing:
            failed = [doc["_id"] for doc in await find_by_ids(self.notifications, existing, {"status": 1})
                      if doc["status"] == Status.FAILED.value]
            await self.rearm(failed)
        return [item.id for item in items]

    async def rearm(self, ids: list[str]) -> list[str]:
        """Failed notifications among `ids` go back to be sent (the causing event was replayed)."""
        rearmed = []
        for nid in ids:
            await self._mark_unfinished([nid])
            if await update_if(self.notifications, nid, {"status": Status.FAILED.value}, {
                    "$set": {"status": Status.PENDING.value, "failures": 0, "next_attempt_at": datetime.now(UTC)},
                    "$unset": {"reason": ""}}):
                rearmed.append(nid)
        return rearmed

    async def unmark(self, nid: str) -> None:
        """After a final state (`finish`, `fail`): the periodic look no longer needs to read it."""
        await self.open_ids.delete_one({"_id": nid})

    async def _mark_unfinished(self, ids: list[str]) -> None:
        """One insert for an event's notifications (the markers were a fifth of this service's store time)."""
        now = datetime.now(UTC)
        await _insert_new(self.open_ids, [{"_id": nid, "at": now} for nid in ids])

    # --- notifications: sending -------------------------------------------------------------------------

    async def by_ids(self, ids: list[str]) -> list[dict[str, Any]]:
        return await find_by_ids(self.notifications, ids, {"outbox": 0, "outbox_count": 0})

    async def unfinished(self) -> list[str]:
        """Ids of the notifications still to send or being sent (the dispatcher's periodic safety net), without
        their documents: the dispatcher reads each one when it has room for it, so a backlog of thousands
        costs one read of small documents here, not one lookup per notification.

        The first look after start reads them by status, which also finds those stored before `unfinished`
        existed; later looks read the ids in `unfinished`. An id whose notification turns out to be final
        (the process stopped before unmarking it) is unmarked when the dispatcher reads it.
        """
        if not self._full_look_done:
            ids = [doc["_id"] async for doc in self.notifications.find(
                {"status": {"$in": [Status.PENDING.value, Status.SENDING.value]}}, {"_id": 1})]
            self._full_look_done = True
            return ids
        return [doc["_id"] async for doc in self.open_ids.find({}, {"_id": 1})]

    async def claim(self, doc: dict[str, Any], owner: str, lease_s: float) -> dict[str, Any] | None:
        """Take the next attempt of this notification, or None if another process took it first."""
        attempt = doc.get("claims", 0) + 1
        now = datetime.now(UTC)
        try:
            await self.claims.insert_one({"_id": f"{doc['_id']}#{attempt}", "owner": owner, "at": now})
        except DuplicateKeyError:
            return None
        fields = {"status": Status.SENDING.value, "phase": Phase.BEFORE_DATA.value, "claims": attempt,
                  "owner": owner, "lease_until": now + timedelta(seconds=lease_s),
                  "composed_at": doc.get("composed_at") or now}
        if not await self._update(doc["_id"], attempt - 1, {"$set": fields}):
            return None
        return {**doc, **fields}

    async def defer(self, doc: dict[str, Any], until: datetime) -> None:
        """Look again later, without an attempt (the case's contact is not known yet)."""
        await self._update(doc["_id"], doc.get("claims", 0), {"$set": {"next_attempt_at": until}},
                           status=Status.PENDING)

    async def set_phase(self, nid: str, attempt: int, phase: Phase) -> bool:
        return await self._update(nid, attempt, {"$set": {"phase": phase.value}})

    async def finish(self, nid: str, attempt: int, status: Status, **fields: Any) -> bool:
        """A final state; the causing event is no longer needed (it may hold personal data)."""
        return await self._update(nid, attempt, {
            "$set": {"status": status.value, "finished_at": datetime.now(UTC), **fields},
            "$unset": {"source_event": "", "lease_until": "", "owner": ""}})

    async def retry_later(self, nid: str, attempt: int, at: datetime, failures: int, error: str) -> bool:
        return await self._update(nid, attempt, {
            "$set": {"status": Status.PENDING.value, "next_attempt_at": at, "failures": failures,
                     "last_error": error},
            "$unset": {"lease_until": "", "owner": ""}})

    async def fail(self, nid: str, attempt: int, failures: int, reason: str,
                   dead_letter: dict[str, Any]) -> bool:
        """Failed for good: the state and its dead letter (outbox) in one write."""
        update = with_outbox_items({
            "$set": {"status": Status.FAILED.value, "failures": failures, "reason": reason,
                     "finished_at": datetime.now(UTC)},
            "$unset": {"lease_until": "", "owner": ""}}, [dead_letter])
        done = await self._update(nid, attempt, update)
        if done:
            self.relay.notify(self.notifications, nid)
        return done

    async def _update(self, nid: str, attempt: int, update: dict[str, Any], status: Status | None = None) -> bool:
        expected: dict[str, Any] = {"claims": attempt}
        if status is not None:
            expected["status"] = status.value
        return await update_if(self.notifications, nid, expected, update)

    # --- reading ----------------------------------------------------------------------------------------

    async def get(self, nid: str) -> dict[str, Any] | None:
        return await self.notifications.find_one({"_id": nid}, HIDDEN)

    async def for_case(self, case_id: str) -> list[dict[str, Any]]:
        cursor = self.notifications.find({"case_id": case_id}, HIDDEN).sort("created_at", ASCENDING)
        return [{"id": doc.pop("_id"), **doc} async for doc in cursor]

    # --- preferences ------------------------------------------------------------------------------------

    async def set_preference(self, case_id: str, recipient: Recipient, channel: str, opted_out: bool,
                             via: str) -> dict[str, Any]:
        pref_id = f"{case_id}:{recipient.value}:{channel}"
        fields = {"case_id": case_id, "recipient": recipient.value, "channel": channel, "opted_out": opted_out,
                  "via": via, "updated_at": datetime.now(UTC)}
        async with document_lock(self.preferences, pref_id):
            await self.preferences.update_one({"_id": pref_id}, {"$set": fields}, upsert=True)
        return fields

    async def opted_out(self, case_id: str, recipient: str, channel: str) -> bool:
        doc = await self.preferences.find_one({"_id": f"{case_id}:{recipient}:{channel}"})
        return bool(doc and doc.get("opted_out"))

    async def preferences_for(self, case_id: str) -> list[dict[str, Any]]:
        return await self.preferences.find({"case_id": case_id}, {"_id": 0}).to_list(None)

    # --- referrals --------------------------------------------------------------------------------------

    def referral_lock(self, case_id: str):  # noqa: ANN201 - an async context manager
        """Held around read, decide, write of one referral (this process's writers take turns)."""
        return document_lock(self.referrals, case_id)

    async def referral(self, case_id: str) -> dict[str, Any] | None:
        return await self.referrals.find_one({"_id": case_id}, {"outbox": 0})

    async def save_referral(self, case_id: str, version: int, update: dict[str, Any]) -> bool:
        """Write the referral if it is still at `version` (0: not stored yet); False when another writer won.

        The update must `$set` the next version. With upsert, a stale version collides on `_id` (E11000).
        """
        if not await update_if(self.referrals, case_id, {"version": version}, update, upsert=version == 0,
                               locked=True):
            return False
        self.relay.notify(self.referrals, case_id)
        return True


async def _insert_new(collection: AsyncCollection, docs: list[dict[str, Any]]) -> list[Any]:
    """Insert the documents whose `_id` is new, in one unordered command; return the ids that existed.

    An insert on `_id` is exclusive on FerretDB and MongoDB alike, so no lock is needed."""
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if not errors or any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise
        return [docs[error["index"]]["_id"] for error in errors]
    return []
