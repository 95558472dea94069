"""What a referring partner learns of a referral: its status changes, without the person's details. Pure.

Events reach this service on five topics, so a CaseRouted can be handled before the CaseReceived that
names the partner, or a CaseClosed before the CommitteeApproved. A status change whose predecessors have
not been seen yet waits in the referral's record (`pending`) and is released after them. A released change
becomes a partner email (if a partner referred the person) and a feed record (if the partner gave a
reference that is safe to publish).
"""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from shared.schemas import (
    CaseReceived,
    Envelope,
    Outcome,
    OutcomeCategory,
    PartnerStatusChanged,
    ReferralStatus,
    ReferrerKind,
)
from shared.schemas.events import PersonalDetails
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
    reference: str | None  # None when absent or withheld (it would carry personal data)
    withheld: bool = False


def status_change(envelope: Envelope) -> StatusChange | None:
    """The referral status an event means, if any (a session is no status a partner follows)."""
    p = envelope.payload
    status: ReferralStatus
    category = None
    if envelope.event_type == "CaseReceived":
        status, day = ReferralStatus.RECEIVED, p["received_at"][:10]
    elif envelope.event_type == "CaseRouted":
        status, day = ReferralStatus.ROUTED, p["routed_at"][:10]
    elif envelope.event_type == "CommitteeApproved":
        status, day = ReferralStatus.ACCEPTED, p["decided_on"]
    elif envelope.event_type == "CaseClosed":
        outcome = Outcome(p["outcome"])
        category = OUTCOME_CATEGORIES[outcome]
        status = ReferralStatus.DECLINED if category is None else ReferralStatus.CLOSED
        day = p["closed_on"]
    else:
        return None
    return StatusChange(event_id=str(envelope.event_id), status=status, occurred_on=day,
                        association=p.get("association"),
                        outcome_category=category.value if category else None)


def partner_of(received: CaseReceived) -> Partner | None:
    referral = received.referral
    if referral.kind is ReferrerKind.SELF:
        return None
    reference = referral.partner_reference
    if reference and not reference_is_safe(reference, received.personal):
        return Partner(referral.kind, None, withheld=True)
    return Partner(referral.kind, reference or None)


def release(pending: list[StatusChange], change: StatusChange,
            released_before: set[ReferralStatus]) -> tuple[list[StatusChange], list[StatusChange]]:
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
        association=change.association,
        outcome_category=change.outcome_category,
        occurred_on=date.fromisoformat(change.occurred_on),
    )


def reference_is_safe(reference: str, personal: PersonalDetails) -> bool:
    """False when the partner's reference contains the person's name, company, email, phone or SIREN.

    The reference is the feed's key and travels as is; a partner who typed a name into it would publish
    that name. Such a referral is withheld from the feed (its partner still gets emails).
    """
    ref = _plain(reference)
    ref_digits = "".join(ch for ch in reference if ch.isdigit())
    words = [personal.first_name, personal.last_name, personal.company_name, personal.email]
    if personal.email:
        words.append(personal.email.split("@", 1)[0])
    for word in words:
        if word and len(_plain(word)) >= 3 and _plain(word) in ref:
            return False
    for number in (personal.phone, personal.siren):
        digits = "".join(ch for ch in (number or "") if ch.isdigit())
        if len(digits) >= 6 and digits[-6:] in ref_digits:
            return False
    return True


def _plain(text: str) -> str:
    """Case- and accent-insensitive, letters and digits only."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if ch.isalnum() and not unicodedata.combining(ch))
