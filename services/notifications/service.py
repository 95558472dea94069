"""The use cases of notifications: remember contacts, record notifications, follow the referral, opt-outs.

Every step is idempotent (ids from the event), so a redelivered event changes nothing, and a crash
between two steps is repaired by the redelivery. Sending is the dispatcher's job (`dispatch.py`), not the
consumer's: an SMTP outage never holds up Kafka consumption or the partner feed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from services.notifications.dispatch import Dispatcher
from services.notifications.domain import (
    VOLUNTEER_OF_ROLE,
    PlannedNotification,
    Recipient,
    notification_id,
    partner_notification,
    plan,
)
from services.notifications.facts import (
    applicant_record,
    contact_of,
    facts_of,
    following,
    latest_routing,
    routing_of,
    volunteer_record,
)
from services.notifications.metrics import NotificationMetrics
from services.notifications.referrals import (
    EVENT_OF_STATUS,
    Partner,
    StatusChange,
    advance,
    feed_record,
    status_change,
)
from services.notifications.store import NewNotification, Stores
from services.notifications.tokens import Tokens
from shared.outbox import outbox_item
from shared.schemas import (
    Association,
    CaseClosed,
    CaseReceived,
    CaseRouted,
    CommitteeApproved,
    Contract,
    Envelope,
    SessionHeld,
    VolunteerApplicationDecided,
    VolunteerAssigned,
)
from shared.schemas.partner_feed import RECORD_TYPE
from shared.store import Change, applied_in
from shared.topology import partner_topic

log = logging.getLogger("relais.notifications")
Clock = Callable[[], datetime]
Via = Literal["api", "lien"]  # how an opt-out was made: the API, or the link of an email


@dataclass(frozen=True)
class Preference:
    case_id: str
    recipient: Recipient
    channel: str
    opted_out: bool
    via: Via
    updated_at: datetime | None = None


@dataclass(frozen=True)
class _Followed:
    """What one status change did to the referral (the result of its versioned change)."""

    ids: list[str]
    feed_statuses: list[str]
    already: bool = False


class NotificationsService:
    def __init__(
        self,
        stores: Stores,
        tokens: Tokens,
        metrics: NotificationMetrics,
        clock: Clock,
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self.notifications, self.contacts = stores.notifications, stores.contacts
        self.preferences, self.referrals = stores.preferences, stores.referrals
        self.tokens, self.metrics, self.clock = tokens, metrics, clock
        self.dispatcher = dispatcher  # None when email is disabled: notifications are only recorded

    # --- one use case per event ------------------------------------------------------------------------

    async def case_received(self, cause: Envelope, received: CaseReceived) -> None:
        case_id = str(cause.case_id)
        await self.contacts.remember_received(case_id, contact_of(received))
        await self._notify(cause, received, received=received)

    async def case_routed(self, cause: Envelope, routed: CaseRouted) -> None:
        await self.contacts.remember_routing(str(cause.case_id), routing_of(routed))
        await self._notify(cause, routed)

    async def committee_approved(self, cause: Envelope, approved: CommitteeApproved) -> None:
        await self._notify(cause, approved)

    async def session_held(self, cause: Envelope, session: SessionHeld) -> None:
        await self._notify(cause, session)

    async def case_closed(self, cause: Envelope, closed: CaseClosed) -> None:
        await self._notify(cause, closed)

    async def volunteer_assigned(self, cause: Envelope, assigned: VolunteerAssigned) -> None:
        """Remember who follows the person in that role (a released volunteer is forgotten), then tell them."""
        role = VOLUNTEER_OF_ROLE.get(assigned.role)
        if role is None:
            return  # an expert answers one-off questions: never assigned to a case
        await self.contacts.remember_volunteer(cause, str(cause.case_id), role, volunteer_record(assigned))
        await self._notify(cause, assigned)

    async def volunteer_application_decided(self, cause: Envelope, decided: VolunteerApplicationDecided) -> None:
        """Remember how to answer the applicant (their own file: the envelope's case id), then tell them."""
        await self.contacts.remember_applicant(str(cause.case_id), applicant_record(decided))
        await self._notify(cause, decided)

    # --- recording ---------------------------------------------------------------------------------------

    async def _notify(self, cause: Envelope, payload: Contract, received: CaseReceived | None = None) -> None:
        case_id = str(cause.case_id)
        source = cause.encode().decode()
        # Sessions and closings tell the volunteers following the case: read them only then.
        volunteers = (
            following(await self.contacts.contact(case_id)) if isinstance(payload, SessionHeld | CaseClosed) else {}
        )
        ids = await self._record(self._direct(cause, payload, source, volunteers))
        change = status_change(cause.event_id, payload)
        if change is not None:
            ids += await self._follow_referral(case_id, replace(change, source=source), received)
        if ids and self.dispatcher is not None:
            self.dispatcher.submit(ids)  # looked at now, not at the dispatcher's next scan

    def _direct(
        self, cause: Envelope, payload: Contract, source: str, volunteers: Mapping[Recipient, str]
    ) -> list[NewNotification]:
        facts = facts_of(payload)
        return [
            self._new(
                str(cause.case_id),
                str(cause.event_id),
                facts["event_type"],
                item,
                {**facts, "volunteer_id": item.volunteer_id} if item.volunteer_id else facts,
                source,
            )
            for item in plan(payload, volunteers)
        ]

    @staticmethod
    def _new(
        case_id: str,
        event_id: str,
        event_type: str,
        item: PlannedNotification,
        facts: dict[str, Any],
        source: str | None,
    ) -> NewNotification:
        return NewNotification(
            id=notification_id(event_id, item.recipient),
            case_id=case_id,
            event_id=event_id,
            event_type=event_type,
            recipient=item.recipient,
            template=item.template,
            channel=item.channel,
            facts=facts,
            source_event=source,
        )

    async def _record(self, items: list[NewNotification]) -> list[str]:
        return await self.notifications.record(items, self.clock())

    # --- the referral: partner emails and the feed, in the journey's order ---------------------------------

    async def _follow_referral(self, case_id: str, change: StatusChange, received: CaseReceived | None) -> list[str]:
        """Record the referral's status change; release what the partner may now learn (emails, feed)."""

        async def decide(doc: dict[str, Any] | None) -> Change[_Followed]:
            if applied_in(doc, change.event_id):
                return Change({}, result=_Followed([], [], already=True))
            progress = advance(doc, change, received)
            # Recorded before the referral is written: a crash in between is repaired by the redelivery,
            # which finds the referral unchanged and records them again (once: ids from the events).
            ids = await self._record(self._partner_notifications(case_id, progress.released, progress.partner))
            records = [r for c in progress.released if (r := self._feed_record(c, progress.partner, case_id))]
            update = {
                "$set": {
                    "received": progress.received,
                    "partner": progress.partner.stored() if progress.partner else None,
                    "pending": [c.stored() for c in progress.pending],
                },
                "$push": {
                    "history": {"$each": [c.stored(with_source=False) for c in progress.released]},
                    "processed_events": change.event_id,
                },
            }
            return Change(
                update,
                result=_Followed(ids, [status for status, _ in records]),
                outbox_items=[item for _, item in records],
            )

        done = await self.referrals.change(case_id, decide)
        followed = done.result if done is not None and done.result is not None else _Followed([], [])
        if followed.already:
            # Already followed; a replayed dead letter may still need its partner email re-armed.
            return await self.notifications.rearm([notification_id(change.event_id, Recipient.PARTNER)], self.clock())
        for status in followed.feed_statuses:
            self.metrics.feed_records.labels(status).inc()
        return followed.ids

    def _partner_notifications(
        self, case_id: str, released: list[StatusChange], partner: Partner | None
    ) -> list[NewNotification]:
        if partner is None:
            return []
        items = []
        for change in released:
            facts = {
                "event_type": "PartnerStatus",
                "association": change.association,
                "status": change.status.value,
                "outcome_category": change.outcome_category,
                "occurred_on": change.occurred_on,
                "partner_reference": partner.reference,
            }
            items.append(
                self._new(
                    case_id,
                    change.event_id,
                    EVENT_OF_STATUS[change.status],
                    partner_notification(change.status),
                    facts,
                    change.source,
                )
            )
        return items

    def _feed_record(
        self, change: StatusChange, partner: Partner | None, case_id: str
    ) -> tuple[str, dict[str, Any]] | None:
        # Only a partner with an account has a feed (its own topic, read by it alone): a referral made without
        # one is followed by email, never on a topic that others could read.
        if partner is None or partner.account is None:
            return None
        record = feed_record(change, partner, self.tokens.referral_id(case_id))
        if record is None:
            return None
        return change.status.value, outbox_item(
            topic=partner_topic(partner.account),
            key=record.partner_reference,
            value=record.encode().decode(),
            headers=record.headers(),
            event_type=RECORD_TYPE,
            event_id=str(record.record_id),
            created_at=self.clock().timestamp(),
        )

    # --- opting out --------------------------------------------------------------------------------------

    def unsubscribing(self, token: str) -> tuple[str, Recipient] | None:
        """The (case, recipient) an unsubscribe link names, or None for a forged or broken one."""
        return self.tokens.read_unsubscribe(token)

    async def set_preference(
        self, case_id: str, recipient: Recipient, *, channel: str = "email", opted_out: bool = True, via: Via = "api"
    ) -> Preference:
        saved = await self.preferences.set(case_id, recipient, channel, opted_out, via, self.clock())
        return _preference(saved)

    async def set_preference_by_token(
        self, token: str, *, channel: str = "email", opted_out: bool = True
    ) -> Preference | None:
        named = self.unsubscribing(token)
        if named is None:
            return None
        return await self.set_preference(named[0], named[1], channel=channel, opted_out=opted_out, via="lien")

    # --- reads -------------------------------------------------------------------------------------------

    async def holder_of(self, case_id: str) -> Association | None:
        """The association the case is routed to now (the latest routing heard of), if any."""
        association = latest_routing(await self.contacts.contact(case_id)).get("association")
        return Association(association) if association else None

    async def notifications_of(self, case_id: str) -> list[dict[str, Any]]:
        return await self.notifications.for_case(case_id)

    async def preferences_of(self, case_id: str) -> list[Preference]:
        return [_preference(doc) for doc in await self.preferences.for_case(case_id)]


def _preference(doc: dict[str, Any]) -> Preference:
    return Preference(
        case_id=doc["case_id"],
        recipient=Recipient(doc["recipient"]),
        channel=doc["channel"],
        opted_out=bool(doc["opted_out"]),
        via=doc["via"],
        updated_at=doc.get("updated_at"),
    )
