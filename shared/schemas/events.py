"""Payloads of the events of the referral flow, and the registry that maps each to its topic.

The contract is closed: a payload with a field its model does not declare is invalid (dead-lettered), so
a reader can only ever act on what the schema says. Evolving it: add optional fields, deploy the readers
first, then the writers; anything else is a new schema version (`EventSpec.version`) or a new topic.

Personal data (names, contacts, company identifiers, free text) lives only in `CaseReceived.personal`,
a separate sub-model so that it can be encrypted field by field and left out of every other stream; the
exceptions are a volunteer's professional contact in `VolunteerAssigned`, which the volunteer gave so
that the association can reach them, and an applicant's name and email in `VolunteerApplicationDecided`,
given to be answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class Contract(BaseModel):
    """Base of every payload and of its parts: undeclared fields are refused (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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

    @property
    def display_name(self) -> str:
        """The name people read (pages, emails, reports)."""
        return ASSOCIATION_NAMES[self]

    @property
    def other(self) -> Association:
        """The partner association: where a handover or an out-of-scope case goes."""
        return Association.SOIXANTE_MILLE_REBONDS if self is Association.SECOND_SOUFFLE else Association.SECOND_SOUFFLE


ASSOCIATION_NAMES: dict[Association, str] = {
    Association.SECOND_SOUFFLE: "Second Souffle",
    Association.SOIXANTE_MILLE_REBONDS: "60 000 rebonds",
}


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


# --- what intake collects for routing, and what routing decides ---------------------------------------------


class SectorFamily(StrEnum):
    """Broad family of a NAF code (its division), enough to see who the associations serve."""

    AGRICULTURE = "agriculture"
    INDUSTRY = "industrie"
    CONSTRUCTION = "construction"
    COMMERCE = "commerce"
    TRANSPORT = "transport"
    HOSPITALITY = "hebergement_restauration"
    SERVICES = "services"


class CompanySize(StrEnum):
    """Employees, in INSEE's bands (TPE up to 9, PME up to 249)."""

    NONE = "sans_salarie"
    MICRO = "1_9"
    SMALL = "10_49"
    MEDIUM = "50_249"
    LARGE = "250_plus"


class RoutingStatus(StrEnum):
    ORIENTED = "oriente"  # an antenna was chosen
    WAITLISTED = "liste_attente"  # no antenna of the association has room
    APESA_FIRST = "apesa_d_abord"  # acute distress: APESA first, the case waits to be resumed
    LOCATION_UNKNOWN = "localisation_a_verifier"  # association chosen, staff must place the person


class RerouteCause(StrEnum):
    """Why a case was routed again (the causes of RerouteRequested, plus routing's own)."""

    HANDOVER = "transmission"
    OUT_OF_SCOPE = "hors_champ"
    APESA_RESUMED = "reprise_apres_apesa"
    LOCATION_FIXED = "localisation_corrigee"
    PLACE_FREED = "place_liberee"


class VolunteerRole(StrEnum):
    COACH = "coach"
    SPONSOR = "parrain"
    EXPERT = "expert"


class PreviousDecision(Contract):
    """The decision a re-routing replaces (the full history stays in routing)."""

    sequence: int
    association: Association
    rule: str
    status: RoutingStatus | None = None
    antenna_id: str | None = None
    routed_at: datetime | None = None


class Situation(Contract):
    """What routing needs: no personal data."""

    procedure: Procedure
    court_decision_date: date | None = None
    postal_code: Annotated[str, Field(pattern=r"^\d{5}$")]
    commune: str | None = None
    sector: str | None = None
    # --- what routing needs to serve the territory: all optional ---
    insee_code: Annotated[str, Field(pattern=r"^(\d{5}|2[AB]\d{3})$")] | None = None
    naf_code: Annotated[str, Field(pattern=r"^\d{2}\.?\d{2}[A-Z]$")] | None = None
    sector_family: SectorFamily | None = None
    company_size: CompanySize | None = None
    acute_distress: bool | None = None  # the person says they are in acute psychological distress
    apesa_consent: bool | None = None  # ... and agrees to be called back by APESA


class Referral(Contract):
    kind: ReferrerKind
    organisation: str | None = None
    # The partner's own file number; intake refuses one that could identify the person (a name, a court
    # file number), so it can key the partner's status feed.
    partner_reference: str | None = None
    # Where the referring partner is told of the referral (notifications); a professional contact,
    # confidential like `personal`: it never leaves CaseReceived (not in the partner feed, not in logs).
    contact_email: str | None = None
    # The partner account that referred the person (`relais partners add <name>`), set by intake from the
    # partner's credential, never from the request: its status feed is `relais.partner-status.<name>.v1`.
    partner: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,39}$")] | None = None


class PersonalDetails(Contract):
    """Confidential personal data: never copied into keys, headers, logs or other events. On CaseReceived,
    intake sends only how to reach the person; the company and the person's message stay in intake."""

    first_name: str
    last_name: str
    email: str | None = None
    phone: str | None = None
    company_name: str | None = Field(default=None, description="Never on a topic: stays in intake")
    siren: str | None = Field(default=None, description="Never on a topic: stays in intake")
    message: str | None = Field(default=None, description="Never on a topic: stays in intake")


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
    # --- where, how far, with room or not; all optional ---
    status: RoutingStatus | None = None
    antenna_id: str | None = None
    antenna_name: str | None = None
    antenna_contact: str | None = None  # the antenna's public contact, never the entrepreneur's
    travel_minutes: int | None = None
    beyond_one_hour: bool | None = None
    waitlist_position: int | None = None
    location_flagged: bool | None = None  # commune unknown or placed approximately: staff to check
    handover_watch: bool | None = None  # to hand over to 60 000 rebonds if it turns into a liquidation
    previous: PreviousDecision | None = None
    reroute_reason: RerouteCause | None = None
    # What intake collected about the business, for coaching's matching of volunteers (no personal data).
    sector: str | None = None
    sector_family: SectorFamily | None = None
    # To be called back first: the person declared acute distress and declined APESA. The distress itself is
    # never in `reasons` (health data): routing keeps it, the holding association's staff read it there.
    priority_callback: bool | None = None


class CommitteeApproved(Contract):
    association: Association
    decided_on: date
    # No longer written: the committee's reasons stay in the association's case file (its one reader,
    # notifications, needs none). Kept declared so that events already on the topic stay valid.
    reasons: list[str] = Field(default=[], description="Deprecated: always empty (kept in the case file)")


class SessionHeld(Contract):
    association: Association
    session_id: str
    kind: SessionKind
    held_on: date
    duration_minutes: int | None = None
    number: int
    volunteer_id: str | None = None  # who led it (coaching's id; the contact is in VolunteerAssigned)
    next_session_at: datetime | None = None  # when the next meeting was agreed
    next_session_place: str | None = None  # where (a public place or "visioconférence"; no home address)


class VolunteerAssigned(Contract):
    """A coach or sponsor now follows the case (or stops: `released`). Carries how notifications reaches
    them: the volunteer's own professional contact, kept by the association's coaching instance."""

    association: Association
    role: VolunteerRole
    volunteer_id: str
    display_name: str
    email: str | None = None
    assigned_on: date
    released: bool = False


class ApplicationDecision(StrEnum):
    ACCEPTED = "acceptee"
    DECLINED = "refusee"


class VolunteerApplicationDecided(Contract):
    """An association's staff accepted or declined someone who applied to volunteer with it.

    Keyed by the application's id (the envelope's `case_id`: an application is the applicant's own file).
    Carries how notifications answers the applicant: the name and email they gave for that answer."""

    association: Association
    role: VolunteerRole
    display_name: str
    email: str
    decision: ApplicationDecision
    decided_on: date
    antenna_id: str | None = None  # where an accepted volunteer joins
    volunteer_id: str | None = None  # the volunteer an accepted application became


class CaseClosed(Contract):
    association: Association
    outcome: Outcome
    closed_on: date
    journey_days: int  # reception -> closing
    # No longer written: the staff's reasons stay in the case file (notifications, the reader, needs none).
    reasons: list[str] = Field(default=[], description="Deprecated: always empty (kept in the case file)")
    # The journey's stages, and where a declined case was oriented.
    days_to_committee: int | None = None  # reception -> committee decision
    days_to_coach: int | None = None  # committee approval -> coach assigned
    accompaniment_days: int | None = None  # committee approval -> closing
    oriented_to: str | None = None  # a declined case sent on: the other association's value, or "apesa"


class RerouteReason(StrEnum):
    HANDOVER = "transmission"  # e.g. a redressement turned into a liquidation: Second Souffle -> 60 000 rebonds
    OUT_OF_SCOPE = "hors_champ"  # staff judge the case does not belong with their association


class RerouteRequested(Contract):
    """Coaching staff ask routing to route a case again; routing answers with a new CaseRouted."""

    requested_by: Association
    reason: RerouteReason
    procedure: Procedure | None = None
    court_decision_date: date | None = None
    # No longer written: the staff's note stays in the handing-over association's case file (routing, the one
    # reader, has no use for free text). Kept declared so that events already on the topic stay valid.
    comment: str | None = Field(default=None, description="Deprecated: always empty (kept in the case file)")


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
        EventSpec("VolunteerAssigned", VolunteerAssigned, _topic("volunteer-assigned")),
        EventSpec("RerouteRequested", RerouteRequested, _topic("reroute-requested")),
        EventSpec("AntennaCapacityChanged", AntennaCapacityChanged, _topic("antenna-capacity"), subject="antenna"),
        EventSpec("VolunteerApplicationDecided", VolunteerApplicationDecided, _topic("volunteer-application-decided")),
    )
}

_BY_MODEL = {spec.model: spec for spec in EVENTS.values()}


def spec_for(payload: Contract | type[Contract]) -> EventSpec:
    model = payload if isinstance(payload, type) else type(payload)
    return _BY_MODEL[model]
