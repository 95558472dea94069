"""One handler for the five events: remember contacts, record notifications, follow the referral.

Every step is idempotent (ids from the event), so a redelivered event changes nothing, and a crash
between two steps is repaired by the redelivery. Sending is the dispatcher's job, not the consumer's:
an SMTP outage never holds up Kafka consumption or the partner feed.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

from services.notifications.context import VOLUNTEER_ROLES, antenna_of, facts_of, volunteer_of
from services.notifications.dispatch import Dispatcher
from services.notifications.domain import Recipient, notification_id, partner_notification, plan
from services.notifications.metrics import NotificationMetrics
from services.notifications.referrals import Partner, StatusChange, feed_record, partner_of, release, status_change
from services.notifications.store import NewNotification, NotificationStore
from services.notifications.tokens import Tokens
from shared.outbox import outbox_item, with_outbox_items
from shared.schemas import PARTNER_FEED_TOPIC, CaseReceived, Envelope, ReferralStatus, ReferrerKind
from shared.schemas.partner_feed import RECORD_TYPE

SUBSCRIBED = ("CaseReceived", "CaseRouted", "CommitteeApproved", "SessionHeld", "CaseClosed")
log = logging.getLogger("relais.notifications")


class ReferralConflict(Exception):
    """Another writer changed the referral first, every time: the consumer retries the event."""


class FlowEventHandler:
    def __init__(self, store: NotificationStore, tokens: Tokens, metrics: NotificationMetrics,
                 dispatcher: Dispatcher | None = None) -> None:
        self.store, self.tokens, self.metrics, self.dispatcher = store, tokens, metrics, dispatcher

    async def __call__(self, envelope: Envelope) -> None:
        case_id = str(envelope.case_id)
        received: CaseReceived | None = None
        if envelope.event_type == "CaseReceived":
            received = envelope.typed()  # type: ignore[assignment]
            await self.store.remember_contact(case_id, received)
        elif envelope.event_type == "CaseRouted":
            p = envelope.payload
            await self.store.remember_routing(case_id, int(p.get("sequence", 1)), p["association"], antenna_of(p))
        volunteers = {role: v for role in VOLUNTEER_ROLES.values()
                      if (v := volunteer_of(envelope.payload, role)) is not None}
        await self.store.remember_volunteers(case_id, volunteers)

        ids = await self.store.record(await self._direct(envelope, case_id))
        ids += await self._follow_referral(envelope, case_id, received)
        if self.dispatcher is not None:
            self.dispatcher.submit(ids)

    async def _direct(self, envelope: Envelope, case_id: str) -> list[NewNotification]:
        contact = await self.store.contact(case_id) or {}
        known = frozenset(recipient for recipient, role in VOLUNTEER_ROLES.items()
                          if (contact.get("volunteers") or {}).get(role))
        facts = facts_of(envelope)
        source = envelope.encode().decode()
        return [NewNotification(
            id=notification_id(envelope.event_id, item.recipient), case_id=case_id,
            event_id=str(envelope.event_id), event_type=envelope.event_type, recipient=item.recipient,
            template=item.template, channel=item.channel, facts=facts, source_event=source)
            for item in plan(envelope, known)]

    async def _follow_referral(self, envelope: Envelope, case_id: str, received: CaseReceived | None) -> list[str]:
        """Record the referral's status change; release what the partner may now learn (emails, feed)."""
        change = status_change(envelope)
        if change is None:
            return []
        change = replace(change, source=envelope.encode().decode())
        for _ in range(5):
            async with self.store.referral_lock(case_id):
                doc = await self.store.referral(case_id) or {}
                if change.event_id in doc.get("processed_events", []):
                    # Already followed; a replayed dead letter may still need its partner email re-armed.
                    return await self.store.rearm([notification_id(change.event_id, Recipient.PARTNER)])
                if received is not None:
                    partner = partner_of(received)
                    if partner and partner.withheld:
                        self.metrics.feed_withheld.inc()
                        log.warning("partner reference withheld from the feed: it contains personal data",
                                    extra={"case_id": case_id})
                else:
                    partner = _stored_partner(doc.get("partner"))
                pending = [StatusChange.from_stored(c) for c in doc.get("pending", [])]
                before = {ReferralStatus(c["status"]) for c in doc.get("history", [])}
                still, released = release(pending, change, before)
                is_received = ReferralStatus.RECEIVED in before | {c.status for c in released}
                ids = await self.store.record(self._partner_notifications(case_id, released, partner))
                records = [(c.status, r) for c in released
                           if (r := self._feed_record(c, partner, case_id)) is not None]
                update = with_outbox_items({
                    "$set": {"received": is_received, "partner": _partner_doc(partner),
                             "pending": [c.stored() for c in still], "version": doc.get("version", 0) + 1},
                    "$push": {"history": {"$each": [c.stored(with_source=False) for c in released]},
                              "processed_events": change.event_id},
                }, [item for _, item in records])
                if await self.store.save_referral(case_id, doc.get("version", 0), update):
                    for status, _ in records:
                        self.metrics.feed_records.labels(status.value).inc()
                    return ids
        raise ReferralConflict(case_id)

    def _partner_notifications(self, case_id: str, released: list[StatusChange],
                               partner: Partner | None) -> list[NewNotification]:
        if partner is None:
            return []
        items = []
        for change in released:
            planned = partner_notification(change.status)
            facts = {"event_type": "PartnerStatus", "association": change.association,
                     "status": change.status.value, "outcome_category": change.outcome_category,
                     "occurred_on": change.occurred_on, "partner_reference": partner.reference}
            items.append(NewNotification(
                id=notification_id(change.event_id, Recipient.PARTNER), case_id=case_id, event_id=change.event_id,
                event_type=_event_type(change), recipient=Recipient.PARTNER, template=planned.template,
                channel=planned.channel, facts=facts, source_event=change.source))
        return items

    def _feed_record(self, change: StatusChange, partner: Partner | None, case_id: str) -> dict | None:
        record = feed_record(change, partner, self.tokens.referral_id(case_id)) if partner else None
        if record is None:
            return None
        return outbox_item(topic=PARTNER_FEED_TOPIC, key=record.partner_reference, value=record.encode().decode(),
                           headers=record.headers(), event_type=RECORD_TYPE, event_id=str(record.record_id),
                           created_at=datetime.now(UTC).timestamp())


_EVENT_OF_STATUS = {"recu": "CaseReceived", "oriente": "CaseRouted", "accepte": "CommitteeApproved",
                    "refuse": "CaseClosed", "clos": "CaseClosed"}


def _event_type(change: StatusChange) -> str:
    return _EVENT_OF_STATUS[change.status.value]


def _partner_doc(partner: Partner | None) -> dict | None:
    if partner is None:
        return None
    return {"kind": partner.kind.value, "reference": partner.reference, "withheld": partner.withheld}


def _stored_partner(doc: dict | None) -> Partner | None:
    if not doc:
        return None
    return Partner(ReferrerKind(doc["kind"]), doc.get("reference"), bool(doc.get("withheld")))
