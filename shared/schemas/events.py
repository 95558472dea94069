"""Payloads of the five events of the referral flow, and the registry that maps each to its topic.

Personal data (names, contacts, company identifiers, free text) lives only in `CaseReceived.personal`,
a separate sub-model so that it can be encrypted field by field later and left out of every other stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class Contract(BaseModel):
    """Base of every payload: unknown fields are kept so that older readers accept newer writers."""

    model_config = ConfigDict(extra="allow", frozen=True)


class Procedure(StrEnum):
    """Where the company stands, in French insolvency law terms."""

    NONE = "aucune"
    MANDAT_AD_HOC = "mandat_ad_hoc"
    CONCILIATION = "conciliation"
    SAUVEGARDE = "sauvegarde"
    REDRESSEMENT_JUDICIAIRE = "redressement_judiciaire"
    LIQUIDATION_JUDICIAIRE = "liquidation_judiciaire"
    CESSION_A_LA_BARRE = "cession_a_la_barre"
    RETABLISSEMENT_PROFESSIONNEL = "retablissement_professionnel"


class Association(StrEnum):
    SECOND_SOUFFLE = "second_souffle"
    SOIXANTE_MILLE_REBONDS = "60000_rebonds"


class ReferrerKind(StrEnum):
    """Who sent the entrepreneur; `self` when they came on their own."""

    SELF = "self"
    COURT = "tribunal"
    MANDATAIRE = "mandataire"
    CCI = "cci"
    CMA = "cma"
    ACCOUNTANT = "expert_comptable"
    LAWYER = "avocat"
    BANK = "banque"
    URSSAF = "urssaf"
    EMPLOYER_BODY = "organisation_patronale"
    APESA = "apesa"
    OTHER = "autre"


class SessionKind(StrEnum):
    COACHING = "coaching"
    SPONSOR = "parrainage"
    CHECKPOINT = "point_etape_collectif"
    EXPERT = "expertise"


class Outcome(StrEnum):
    SALARIED_JOB = "emploi_salarie"
    NEW_BUSINESS = "creation_entreprise"
    OTHER = "autre"
    WITHDREW = "abandon"
    DECLINED = "refus_comite"


class Situation(Contract):
    """What routing needs: no personal data."""

    procedure: Procedure
    court_decision_date: date | None = None
    postal_code: Annotated[str, Field(pattern=r"^\d{5}$")]
    commune: str | None = None
    sector: str | None = None


class Referral(Contract):
    kind: ReferrerKind
    organisation: str | None = None
    partner_reference: str | None = None
    # Issue 5 (notifications): where the referring partner is told of the referral; a professional contact,
    # confidential like `personal`: it never leaves CaseReceived (not in the partner feed, not in logs).
    contact_email: str | None = None


class PersonalDetails(Contract):
    """Confidential personal data: never copied into keys, headers, logs or other events."""

    first_name: str
    last_name: str
    email: str | None = None
    phone: str | None = None
    company_name: str | None = None
    siren: str | None = None
    message: str | None = None


class CaseReceived(Contract):
    situation: Situation
    referral: Referral
    personal: PersonalDetails
    received_at: datetime


class CaseRouted(Contract):
    association: Association
    rule: str
    reasons: list[str]
    routed_at: datetime
    received_at: datetime | None = None
    sequence: int = 1


class CommitteeApproved(Contract):
    association: Association
    decided_on: date
    reasons: list[str] = []


class SessionHeld(Contract):
    association: Association
    session_id: str
    kind: SessionKind
    held_on: date
    duration_minutes: int | None = None
    number: int


class CaseClosed(Contract):
    association: Association
    outcome: Outcome
    closed_on: date
    journey_days: int
    reasons: list[str] = []


class RerouteReason(StrEnum):
    HANDOVER = "transmission"  # e.g. a redressement turned into a liquidation: Second Souffle -> 60 000 rebonds
    OUT_OF_SCOPE = "hors_champ"  # staff judge the case does not belong with their association


class RerouteRequested(Contract):
    """Coaching staff ask routing to route a case again; routing answers with a new CaseRouted."""

    requested_by: Association
    reason: RerouteReason
    procedure: Procedure | None = None
    court_decision_date: date | None = None
    comment: str | None = None  # staff note for the other association; no personal data


class AntennaCapacityChanged(Contract):
    """Free places of an antenna's volunteers, published by coaching (who owns the volunteers) for routing."""

    association: Association
    antenna_id: str
    coach_slots_free: int
    sponsor_slots_free: int
    as_of: datetime


@dataclass(frozen=True)
class EventSpec:
    """One event type: its payload model, its topic, the schema version writers use, what it is about."""

    name: str
    model: type[Contract]
    topic: str
    version: int = 1
    subject: str = "case"  # the envelope field that identifies it and keys it: case_id or antenna_id

    @property
    def schema_file(self) -> str:
        return f"{self.topic}.json"


def _topic(slug: str, version: int = 1) -> str:
    return f"relais.{slug}.v{version}"


EVENTS: dict[str, EventSpec] = {
    spec.name: spec
    for spec in (
        EventSpec("CaseReceived", CaseReceived, _topic("case-received")),
        EventSpec("CaseRouted", CaseRouted, _topic("case-routed")),
        EventSpec("CommitteeApproved", CommitteeApproved, _topic("committee-approved")),
        EventSpec("SessionHeld", SessionHeld, _topic("session-held")),
        EventSpec("CaseClosed", CaseClosed, _topic("case-closed")),
        EventSpec("RerouteRequested", RerouteRequested, _topic("reroute-requested")),
        EventSpec("AntennaCapacityChanged", AntennaCapacityChanged, _topic("antenna-capacity"),
                  subject="antenna"),
    )
}

_BY_MODEL = {spec.model: spec for spec in EVENTS.values()}


def spec_for(payload: Contract | type[Contract]) -> EventSpec:
    model = payload if isinstance(payload, type) else type(payload)
    return _BY_MODEL[model]
