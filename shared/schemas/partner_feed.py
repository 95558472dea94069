"""A partner's status feed: what a referring partner may know about a case it sent, and nothing more.

Each partner with an account (`relais partners add`) has a topic of its own, `relais.partner-status.<partner>.v1`,
readable by its principal only; the record below is the contract of every such topic. Referrals made
without an account have no feed: their referrer follows them by email.

It is not an event of the flow, so it does not travel in the Envelope: the envelope names a case (or an
antenna) and its key is the case id, an internal identifier that partners must not be able to link to.
A feed record is a small flat record of its own, keyed by the partner's own reference, with a closed list
of fields (`extra="forbid"`): the referral's status, the association and, at closing, a broad category
of the outcome. Names, contacts, company identifiers, free text, the commune and the procedure never
appear; a unit test proves that no input of that kind can change a record.
"""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.schemas.events import Association, Outcome, ReferrerKind

# The address of each partner's topic (AsyncAPI channel parameter style), and its record's schema file.
PARTNER_TOPIC_PATTERN: Final = "relais.partner-status.{partner}.v1"
PARTNER_FEED_SCHEMA_FILE: Final = "partner-status-record.v1.json"
PARTNER_FEED_VERSION: Final = 1
RECORD_TYPE: Final = "PartnerStatusChanged"
# Stable record ids derived from the causing event's id (so a republished record keeps its id).
RECORD_NAMESPACE = uuid.UUID("2d0f6a8e-8c1b-4f57-9b64-3f0c2a7d5e19")


class ReferralStatus(StrEnum):
    RECEIVED = "recu"
    ROUTED = "oriente"
    ACCEPTED = "accepte"
    DECLINED = "refuse"
    CLOSED = "clos"


class OutcomeCategory(StrEnum):
    """Deliberately coarse: a partner knows who the person is, so the exact outcome (a job or a new
    business) would tell a third party about an identifiable person's life."""

    REBOUND = "rebond"  # back to work: a salaried job or a new business
    WITHDREW = "abandon"
    OTHER = "autre"


OUTCOME_CATEGORIES: dict[Outcome, OutcomeCategory | None] = {
    Outcome.SALARIED_JOB: OutcomeCategory.REBOUND,
    Outcome.NEW_BUSINESS: OutcomeCategory.REBOUND,
    Outcome.WITHDREW: OutcomeCategory.WITHDREW,
    Outcome.OTHER: OutcomeCategory.OTHER,
    Outcome.DECLINED: None,  # published as the status `refuse`, not as a closing
}

PartnerReference = Annotated[str, Field(min_length=1, max_length=100)]


class PartnerStatusChanged(BaseModel):
    """One status change of one referral, as published on the referring partner's own topic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    record_type: Literal["PartnerStatusChanged"] = RECORD_TYPE
    schema_version: Literal[1] = PARTNER_FEED_VERSION
    record_id: uuid.UUID = Field(description="Stable id of this status change: deduplicate on it.")
    partner_reference: PartnerReference = Field(description="The partner's own reference, as given at referral.")
    referrer_kind: ReferrerKind = Field(description="The kind of partner who referred the person.")
    referral_id: Annotated[str, Field(pattern=r"^[0-9a-f]{20}$")] = Field(
        description="Opaque id of the referral, stable across its records; not the case id, not derivable "
        "from it without Relais' secret. Tells apart two referrals that share a reference."
    )
    status: ReferralStatus
    association: Association | None = Field(None, description="The association the person was oriented to.")
    outcome_category: OutcomeCategory | None = Field(None, description="Only with status `clos`.")
    occurred_on: date = Field(description="Day of the change (no time of day).")

    @property
    def key(self) -> bytes:
        return self.partner_reference.encode()

    def headers(self) -> dict[str, str]:
        return {
            "record-type": RECORD_TYPE,
            "schema-version": str(PARTNER_FEED_VERSION),
            "record-id": str(self.record_id),
            "content-type": "application/json",
        }

    def encode(self) -> bytes:
        return self.model_dump_json().encode()


def partner_topic(partner: str) -> str:
    """The partner's own topic (`partner` is its account name)."""
    return PARTNER_TOPIC_PATTERN.format(partner=partner)


def record_id_for(event_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(RECORD_NAMESPACE, str(event_id))


def feed_schema() -> dict[str, Any]:
    schema = PartnerStatusChanged.model_json_schema()
    schema["$id"] = f"https://relais.example/schemas/{PARTNER_FEED_SCHEMA_FILE}"
    schema["x-topic"] = PARTNER_TOPIC_PATTERN
    schema["x-schema-version"] = PARTNER_FEED_VERSION
    schema["x-key"] = "partner_reference"
    return schema
