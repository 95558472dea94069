"""What a referring partner learns of a referral: its status changes, without the person's details. Pure.

Events reach this service on separate topics, so a CaseRouted can be handled before the CaseReceived that
names the partner, or a CaseClosed before the CommitteeApproved. A status change whose predecessors have
not been seen yet waits in the referral's record (`pending`) and is released after them. A released change
becomes a partner email (if a partner referred the person) and, when the partner referred the person with
its account and gave a reference, a record on the partner's own topic. A referral made without an account
has no feed: its referrer follows it by email. Intake refused any reference that could identify the
person: the contract is trusted here.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from shared.schemas import (
    Association,
    CaseClosed,
    CaseReceived,
    CaseRouted,
    CommitteeApproved,
    Contract,
    OutcomeCategory,
    PartnerStatusChanged,
    ReferralStatus,
    ReferrerKind,
)
from shared.schemas.partner_feed import OUTCOME_CATEGORIES, record_id_for


@dataclass(frozen=True)
class StatusChange:
    event_id: str
    status: ReferralStatus
    occurred_on: str  # ISO date
    association: str | None = None
    outcome_category: str | None = None
    source: str | None = None  # the causing event, kept while pending (for a later dead letter)

    def stored(self, with_source: bool = True) -> dict[str, Any]:
        doc = asdict(self)
        if not with_source:
            doc.pop("source")
        return doc

    @classmethod
    def from_stored(cls, doc: dict[str, Any]) -> StatusChange:
        return cls(**{"source": None, **doc, "status": ReferralStatus(doc["status"])})


@dataclass(frozen=True)
class Partner:
    """Who referred the person, as far as the feed and partner emails need it."""

    kind: ReferrerKind
    reference: str | None
    account: str | None = None  # the partner's account: its records go to its own topic (none without one)

    def stored(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "reference": self.reference, "account": self.account}

    @classmethod
    def from_stored(cls, doc: dict[str, Any] | None) -> Partner | None:
        if not doc:
            return None
        return cls(ReferrerKind(doc["kind"]), doc.get("reference"), doc.get("account"))


# The event each status comes from (a partner notification is about that event).
EVENT_OF_STATUS = {
    ReferralStatus.RECEIVED: "CaseReceived",
    ReferralStatus.ROUTED: "CaseRouted",
    ReferralStatus.ACCEPTED: "CommitteeApproved",
    ReferralStatus.DECLINED: "CaseClosed",
    ReferralStatus.CLOSED: "CaseClosed",
}


@dataclass(frozen=True)
class Progress:
    """A referral after one more status change: what still waits, what is released now, who referred."""

    pending: list[StatusChange]
    released: list[StatusChange]
    partner: Partner | None
    received: bool  # the CaseReceived has been released: the partner is known for good


def advance(referral: dict[str, Any] | None, change: StatusChange, received: CaseReceived | None) -> Progress:
    """Add `change` to a stored referral (None: not stored yet); `received` when the change is the reception."""
    referral = referral or {}
    partner = partner_of(received) if received is not None else Partner.from_stored(referral.get("partner"))
    pending = [StatusChange.from_stored(c) for c in referral.get("pending", [])]
    before = {ReferralStatus(c["status"]) for c in referral.get("history", [])}
    still, released = release(pending, change, before)
    return Progress(still, released, partner, ReferralStatus.RECEIVED in before | {c.status for c in released})


def status_change(event_id: object, payload: Contract) -> StatusChange | None:
    """The referral status an event means, if any (a session is no status a partner follows)."""
    category: OutcomeCategory | None = None
    association: Association | None = None
    if isinstance(payload, CaseReceived):
        status, day = ReferralStatus.RECEIVED, payload.received_at.date()
    elif isinstance(payload, CaseRouted):
        status, day, association = ReferralStatus.ROUTED, payload.routed_at.date(), payload.association
    elif isinstance(payload, CommitteeApproved):
        status, day, association = ReferralStatus.ACCEPTED, payload.decided_on, payload.association
    elif isinstance(payload, CaseClosed):
        category = OUTCOME_CATEGORIES[payload.outcome]
        status = ReferralStatus.DECLINED if category is None else ReferralStatus.CLOSED
        day, association = payload.closed_on, payload.association
    else:
        return None
    return StatusChange(
        event_id=str(event_id),
        status=status,
        occurred_on=day.isoformat(),
        association=association.value if association else None,
        outcome_category=category.value if category else None,
    )


def partner_of(received: CaseReceived) -> Partner | None:
    referral = received.referral
    if referral.kind is ReferrerKind.SELF and referral.partner is None:
        return None
    return Partner(referral.kind, referral.partner_reference or None, referral.partner)


def release(
    pending: list[StatusChange], change: StatusChange, released_before: set[ReferralStatus]
) -> tuple[list[StatusChange], list[StatusChange]]:
    """(still pending, released now) after `change`, in the order the journey implies.

    A status is released once the statuses that must precede it have been: routed after received,
    accepted or declined after routed, closed after routed and, unless the person withdrew, after accepted.
    So a partner reads a referral's story in order even when the five topics are consumed out of order.
    """
    waiting = sorted([*pending, change], key=lambda c: (c.occurred_on, _ORDER[c.status]))
    done = set(released_before)
    released: list[StatusChange] = []
    progress = True
    while progress:
        progress = False
        for candidate in waiting:
            if _requires(candidate) <= done:
                waiting.remove(candidate)
                released.append(candidate)
                done.add(candidate.status)
                progress = True
                break
    return waiting, released


_ORDER = {status: i for i, status in enumerate(ReferralStatus)}


def _requires(change: StatusChange) -> set[ReferralStatus]:
    if change.status is ReferralStatus.RECEIVED:
        return set()
    if change.status is ReferralStatus.ROUTED:
        return {ReferralStatus.RECEIVED}
    if change.status is ReferralStatus.CLOSED and change.outcome_category != OutcomeCategory.WITHDREW.value:
        return {ReferralStatus.ROUTED, ReferralStatus.ACCEPTED}
    return {ReferralStatus.ROUTED}


def feed_record(change: StatusChange, partner: Partner, referral_id: str) -> PartnerStatusChanged | None:
    """The record published for a released change: built field by field from non-personal inputs."""
    if partner.reference is None:
        return None
    return PartnerStatusChanged(
        record_id=record_id_for(uuid.UUID(change.event_id)),
        partner_reference=partner.reference,
        referrer_kind=partner.kind,
        referral_id=referral_id,
        status=change.status,
        association=Association(change.association) if change.association else None,
        outcome_category=OutcomeCategory(change.outcome_category) if change.outcome_category else None,
        occurred_on=date.fromisoformat(change.occurred_on),
    )
