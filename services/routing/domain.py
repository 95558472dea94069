"""Routing rules, pure: which association fits a case, which antenna, and why, in French for staff.

The association rules are data (association_rules.toml, read by the composition root); this module applies
them, then picks the quickest open antenna of that association that has room. No I/O here: the service
gives it the located commune, the antennas with their free places and the travel model. The records at the
end are what routing keeps (its stores read and write them).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from services.routing.geo import Location
from services.routing.travel import TravelModel
from shared.schemas import (
    Association,
    CaseRouted,
    PreviousDecision,
    Procedure,
    ReferrerKind,
    RerouteCause,
    RoutingStatus,
)
from shared.schemas.events import Situation


class AntennaStatus(StrEnum):
    OPEN = "ouverte"
    OPENING = "en_ouverture"
    CLOSED = "fermee"


class Volunteer(StrEnum):
    COACH = "coach"
    SPONSOR = "sponsor"


@dataclass(frozen=True)
class AssociationRule:
    procedure: Procedure
    label: str
    association: Association
    notes: tuple[str, ...] = ()
    handover_watch: bool = False


@dataclass(frozen=True)
class RuleBook:
    first_volunteer: dict[Association, Volunteer]
    rules: dict[Procedure, AssociationRule]
    apesa: dict[str, str]


def parse_rules(data: dict[str, Any], source: str) -> RuleBook:
    """Check the rules as read from `source`: every procedure has exactly one rule, every association its entry."""
    associations = {Association(key): value for key, value in data["associations"].items()}
    rules: dict[Procedure, AssociationRule] = {}
    for raw in data["rules"]:
        rule = AssociationRule(
            Procedure(raw["procedure"]),
            raw["label"],
            Association(raw["association"]),
            tuple(raw.get("notes", ())),
            bool(raw.get("handover_watch", False)),
        )
        if rule.procedure in rules:
            raise ValueError(f"{source}: two rules for {rule.procedure.value}")
        rules[rule.procedure] = rule
    missing = set(Procedure) - set(rules)
    if missing or set(associations) != set(Association):
        raise ValueError(f"{source}: no rule for {sorted(missing)} or an association is missing")
    return RuleBook(
        first_volunteer={a: Volunteer(v["first_volunteer"]) for a, v in associations.items()},
        rules=rules,
        apesa=dict(data["apesa"]),
    )


# --- which association --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoutingDecision:
    association: Association
    rule: str
    reasons: tuple[str, ...]
    handover_watch: bool = False


def months_between(start: date, end: date) -> int:
    return max(0, (end.year - start.year) * 12 + end.month - start.month - (end.day < start.day))


def decide(situation: Situation, today: date, rules: RuleBook) -> RoutingDecision:
    rule = rules.rules[situation.procedure]
    label = rule.label
    if situation.court_decision_date is not None:
        # Neutral wording: "prononcée" would be wrong for masculine procedures (redressement, mandat...).
        label = f"{label}, décision du tribunal il y a {months_between(situation.court_decision_date, today)} mois"
    first = f"{label[0].upper()}{label[1:]} → {rule.association.display_name}"
    return RoutingDecision(
        rule.association, f"procedure:{rule.procedure.value}", (first, *rule.notes), rule.handover_watch
    )


def decide_again(
    situation: Situation, today: date, cause: RerouteCause, requested_by: Association | None, rules: RuleBook
) -> RoutingDecision:
    """A handover or an out-of-scope judgement never sends the case back to the association that let it go."""
    decision = decide(situation, today, rules)
    if requested_by is None or cause not in (RerouteCause.HANDOVER, RerouteCause.OUT_OF_SCOPE):
        return decision
    if cause is RerouteCause.HANDOVER:
        why = f"Transmission demandée par {requested_by.display_name}"
    else:
        why = f"Jugé hors du champ de {requested_by.display_name}"
    if decision.association is requested_by:
        target = requested_by.other
        return RoutingDecision(
            target, f"{cause.value}:{requested_by.value}", (f"{why} → {target.display_name}",), False
        )
    return replace(decision, reasons=(f"{why}.", *decision.reasons))


# --- which antenna ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Antenna:
    id: str
    association: Association
    name: str
    status: AntennaStatus
    contact: str
    lat: float
    lon: float
    free_places: int | None = None  # None: coaching has not reported yet (counted as room)

    @property
    def has_room(self) -> bool:
        return self.free_places is None or self.free_places > 0


@dataclass(frozen=True)
class Placement:
    status: RoutingStatus
    reasons: tuple[str, ...]
    antenna: Antenna | None = None
    minutes: int | None = None
    beyond_one_hour: bool | None = None


def place(
    association: Association, location: Location | None, antennas: list[Antenna], model: TravelModel
) -> Placement:
    """The quickest open antenna with room; beyond one hour if none is nearer; else the waitlist."""
    name = association.display_name
    if location is None:
        return Placement(
            RoutingStatus.LOCATION_UNKNOWN,
            (("Commune inconnue : l'association est choisie selon la situation, l'équipe choisira l'antenne."),),
        )
    timed = sorted(
        (
            (round(model.minutes_between(location.lat, location.lon, a.lat, a.lon)), a.id, a)
            for a in antennas
            if a.association is association and a.status is AntennaStatus.OPEN
        ),
    )
    if not timed:
        return Placement(RoutingStatus.WAITLISTED, (f"Aucune antenne ouverte de {name} → liste d'attente.",))
    reasons: list[str] = []
    if location.flagged:
        reasons.append(
            f"Localisation approchée ({location.label}) : {location.note or 'à préciser'} — à vérifier par l'équipe."
        )
    full = [(m, a) for m, _, a in timed if not a.has_room]
    chosen = next(((m, a) for m, _, a in timed if a.has_room), None)
    if chosen is None:
        nearest_minutes, _, nearest = timed[0]
        reasons.append(
            f"Aucune place libre dans les antennes ouvertes de {name} (la plus proche : "
            f"{nearest.name}, {nearest_minutes} min) → liste d'attente."
        )
        return Placement(RoutingStatus.WAITLISTED, tuple(reasons))
    minutes, antenna = chosen
    for m, a in full:
        if m < minutes:
            reasons.append(f"Antenne {a.name} plus proche ({m} min) mais complète.")
    beyond = minutes > model.one_hour_minutes
    reasons.append(f"Antenne {antenna.name} : environ {minutes} min de trajet depuis {location.label}.")
    if beyond:
        reasons.append(
            "Aucune antenne avec de la place à moins d'une heure : la plus proche est retenue, "
            "au-delà d'une heure de trajet."
        )
    return Placement(RoutingStatus.ORIENTED, tuple(reasons), antenna, minutes, beyond)


# --- the whole decision -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    decision: RoutingDecision
    placement: Placement
    situation: Situation
    location: Location | None
    # What the declared distress changed, in the rules' words: health data, never published (the status
    # `apesa_d_abord` and `priority_callback` say what coaching and notifications need to know).
    care: tuple[str, ...] = field(default=())
    priority_callback: bool = False  # distress declared without consent to APESA: to call back first

    @property
    def status(self) -> RoutingStatus:
        return self.placement.status

    @property
    def reasons(self) -> tuple[str, ...]:
        """The whole rationale, distress included."""
        return (*self.published_reasons, *self.care)

    @property
    def published_reasons(self) -> tuple[str, ...]:
        """What CaseRouted says: the association and the antenna, never the person's health."""
        return (*self.decision.reasons, *self.placement.reasons)


def route(
    decision: RoutingDecision,
    situation: Situation,
    location: Location | None,
    antennas: list[Antenna],
    model: TravelModel,
    rules: RuleBook,
    apesa_done: bool = False,
) -> Route:
    """Acute distress with consent goes to APESA first; the case keeps its association and waits. Without
    consent it is placed as any other, to be called back first."""
    if situation.acute_distress and not apesa_done:
        if situation.apesa_consent:
            return Route(
                decision, Placement(RoutingStatus.APESA_FIRST, ()), situation, location, (rules.apesa["with_consent"],)
            )
        return Route(
            decision,
            place(decision.association, location, antennas, model),
            situation,
            location,
            (rules.apesa["without_consent"],),
            priority_callback=True,
        )
    care = (rules.apesa["resumed"],) if apesa_done and situation.acute_distress else ()
    return Route(decision, place(decision.association, location, antennas, model), situation, location, care)


def waitlist_reason(association: Association, position: int) -> str:
    return f"Liste d'attente de {association.display_name} : position {position}."


def routed_event(
    route_: Route,
    *,
    routed_at: datetime,
    received_at: datetime | None,
    sequence: int = 1,
    waitlist_position: int | None = None,
    previous: PreviousDecision | None = None,
    reroute_reason: RerouteCause | None = None,
) -> CaseRouted:
    """The decision as published; it carries the business's sector so that coaching can match volunteers, and
    nothing of the person's health but what the status and `priority_callback` say."""
    placement, decision, location = route_.placement, route_.decision, route_.location
    reasons = list(route_.published_reasons)
    if waitlist_position is not None:
        reasons.append(waitlist_reason(decision.association, waitlist_position))
    antenna = placement.antenna
    return CaseRouted(
        association=decision.association,
        rule=decision.rule,
        reasons=reasons,
        routed_at=routed_at,
        received_at=received_at,
        sequence=sequence,
        status=placement.status,
        antenna_id=antenna.id if antenna else None,
        antenna_name=antenna.name if antenna else None,
        antenna_contact=antenna.contact if antenna else None,
        travel_minutes=placement.minutes,
        beyond_one_hour=placement.beyond_one_hour,
        waitlist_position=waitlist_position,
        location_flagged=location is None or location.flagged,
        handover_watch=decision.handover_watch,
        previous=previous,
        reroute_reason=reroute_reason,
        sector=route_.situation.sector,
        sector_family=route_.situation.sector_family,
        priority_callback=route_.priority_callback or None,
    )


def free_places(
    reported: CapacityReport | None,
    reservations: Sequence[Reservation],
    volunteer: Volunteer,
    exclude_case: str | None = None,
) -> int | None:
    """Places coaching last reported for the association's first volunteer, minus the cases routed there
    since that report (the case being decided again does not count against itself)."""
    if reported is None:
        return None
    since = sum(1 for r in reservations if r.case_id != exclude_case and as_aware(r.at) > as_aware(reported.as_of))
    slots = reported.coach_slots_free if volunteer is Volunteer.COACH else reported.sponsor_slots_free
    return slots - since


def as_aware(value: datetime) -> datetime:
    """Dates read back from the store may be naive UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- what routing keeps -------------------------------------------------------------------------------------


class Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class AntennaDetails(Record):
    """What staff edit of an antenna."""

    association: Association
    name: str
    city: str | None = None
    insee_code: str
    status: AntennaStatus
    contact: str


class AntennaEntry(AntennaDetails):
    """An antenna of the directory, placed on the map by its commune's INSEE code."""

    id: str
    lat: float | None = None
    lon: float | None = None
    dept: str | None = None
    updated_at: datetime | None = None


class CapacityReport(Record):
    coach_slots_free: int
    sponsor_slots_free: int
    as_of: datetime


class Reservation(Record):
    """A place held by a case, once per causing event (`key`)."""

    key: str
    case_id: str
    at: datetime


class Capacity(Record):
    """An antenna's latest capacity report and the places held since."""

    antenna_id: str
    reported: CapacityReport | None = None
    reservations: tuple[Reservation, ...] = ()

    def accepts(self, report: CapacityReport) -> bool:
        """Only a newer report replaces the current one (events of one antenna are ordered; replays may be old)."""
        return self.reported is None or as_aware(self.reported.as_of) < as_aware(report.as_of)

    def counted_in(self, report: CapacityReport) -> list[Reservation]:
        """Places held before the report: coaching already counted them."""
        return [r for r in self.reservations if as_aware(r.at) <= as_aware(report.as_of)]

    def free_places(self, volunteer: Volunteer, exclude_case: str | None = None) -> int | None:
        return free_places(self.reported, self.reservations, volunteer, exclude_case)


class RoutedCase(Record):
    """Routing's record of a case: its situation, the current decision and every decision before it."""

    case_id: uuid.UUID
    association: Association
    status: RoutingStatus | None = None
    situation: Situation
    current: CaseRouted
    history: list[CaseRouted]
    location: Location | None = None
    apesa_done: bool = False
    referral_kind: ReferrerKind | None = None
    received_at: datetime | None = None


def reservation_key(case_id: str, cause_id: uuid.UUID) -> str:
    return f"{case_id}/{cause_id}"


@dataclass(frozen=True)
class Rerouting:
    """Why a case is routed again, who asked, and what changed in its situation (procedure, commune...)."""

    cause: RerouteCause
    requested_by: Association | None = None
    changes: dict[str, Any] = field(default_factory=dict)
