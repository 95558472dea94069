"""Routing rules, pure: which association fits a case, which antenna, and why, in French for staff.

The association rules are data (association_rules.toml); this module applies them, then picks the quickest
open antenna of that association that has room. No I/O here: the handlers give it the located commune,
the antennas with their free places and the travel model.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path

from services.routing.geo import Location
from services.routing.travel import TravelModel
from shared.schemas import (
    Association,
    CaseRouted,
    PreviousDecision,
    Procedure,
    RerouteCause,
    RoutingStatus,
)
from shared.schemas.events import Situation

RULES_FILE = Path(__file__).with_name("association_rules.toml")


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
    labels: dict[Association, str]
    first_volunteer: dict[Association, Volunteer]
    rules: dict[Procedure, AssociationRule]
    apesa: dict[str, str]


def load_rules(path: Path = RULES_FILE) -> RuleBook:
    """Read and check the rules: every procedure has exactly one rule, every association a label."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    associations = {Association(key): value for key, value in data["associations"].items()}
    rules: dict[Procedure, AssociationRule] = {}
    for raw in data["rules"]:
        rule = AssociationRule(Procedure(raw["procedure"]), raw["label"], Association(raw["association"]),
                               tuple(raw.get("notes", ())), bool(raw.get("handover_watch", False)))
        if rule.procedure in rules:
            raise ValueError(f"{path.name}: two rules for {rule.procedure.value}")
        rules[rule.procedure] = rule
    missing = set(Procedure) - set(rules)
    if missing or set(associations) != set(Association):
        raise ValueError(f"{path.name}: no rule for {sorted(missing)} or an association is missing")
    return RuleBook(
        labels={a: v["label"] for a, v in associations.items()},
        first_volunteer={a: Volunteer(v["first_volunteer"]) for a, v in associations.items()},
        rules=rules,
        apesa=dict(data["apesa"]),
    )


RULES = load_rules()
ASSOCIATION_LABELS = RULES.labels


def other(association: Association) -> Association:
    return next(a for a in Association if a is not association)


# --- which association --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RoutingDecision:
    association: Association
    rule: str
    reasons: tuple[str, ...]
    handover_watch: bool = False


def months_between(start: date, end: date) -> int:
    return max(0, (end.year - start.year) * 12 + end.month - start.month - (end.day < start.day))


def decide(situation: Situation, today: date, rules: RuleBook = RULES) -> RoutingDecision:
    rule = rules.rules[situation.procedure]
    label = rule.label
    if situation.court_decision_date is not None:
        # Neutral wording: "prononcée" would be wrong for masculine procedures (redressement, mandat...).
        label = f"{label}, décision du tribunal il y a {months_between(situation.court_decision_date, today)} mois"
    first = f"{label[0].upper()}{label[1:]} → {rules.labels[rule.association]}"
    return RoutingDecision(rule.association, f"procedure:{rule.procedure.value}", (first, *rule.notes),
                           rule.handover_watch)


def decide_again(situation: Situation, today: date, cause: RerouteCause, requested_by: Association | None,
                 rules: RuleBook = RULES) -> RoutingDecision:
    """A handover or an out-of-scope judgement never sends the case back to the association that let it go."""
    decision = decide(situation, today, rules)
    if requested_by is None or cause not in (RerouteCause.HANDOVER, RerouteCause.OUT_OF_SCOPE):
        return decision
    if cause is RerouteCause.HANDOVER:
        why = f"Transmission demandée par {rules.labels[requested_by]}"
    else:
        why = f"Jugé hors du champ de {rules.labels[requested_by]}"
    if decision.association is requested_by:
        target = other(requested_by)
        return RoutingDecision(target, f"{cause.value}:{requested_by.value}",
                               (f"{why} → {rules.labels[target]}",), False)
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


def place(association: Association, location: Location | None, antennas: list[Antenna], model: TravelModel,
          rules: RuleBook = RULES) -> Placement:
    """The quickest open antenna with room; beyond one hour if none is nearer; else the waitlist."""
    name = rules.labels[association]
    if location is None:
        return Placement(RoutingStatus.LOCATION_UNKNOWN,
                         ("Commune inconnue : l'association est choisie selon la situation, "
                          "l'équipe choisira l'antenne.",))
    timed = sorted(
        ((round(model.minutes_between(location.lat, location.lon, a.lat, a.lon)), a.id, a) for a in antennas
         if a.association is association and a.status is AntennaStatus.OPEN),
    )
    if not timed:
        return Placement(RoutingStatus.WAITLISTED, (f"Aucune antenne ouverte de {name} → liste d'attente.",))
    reasons: list[str] = []
    if location.flagged:
        reasons.append(f"Localisation approchée ({location.label}) : {location.note or 'à préciser'} "
                       "— à vérifier par l'équipe.")
    full = [(m, a) for m, _, a in timed if not a.has_room]
    chosen = next(((m, a) for m, _, a in timed if a.has_room), None)
    if chosen is None:
        nearest_minutes, _, nearest = timed[0]
        reasons.append(f"Aucune place libre dans les antennes ouvertes de {name} (la plus proche : "
                       f"{nearest.name}, {nearest_minutes} min) → liste d'attente.")
        return Placement(RoutingStatus.WAITLISTED, tuple(reasons))
    minutes, antenna = chosen
    for m, a in full:
        if m < minutes:
            reasons.append(f"Antenne {a.name} plus proche ({m} min) mais complète.")
    beyond = minutes > model.one_hour_minutes
    reasons.append(f"Antenne {antenna.name} : environ {minutes} min de trajet depuis {location.label}.")
    if beyond:
        reasons.append("Aucune antenne avec de la place à moins d'une heure : la plus proche est retenue, "
                       "au-delà d'une heure de trajet.")
    return Placement(RoutingStatus.ORIENTED, tuple(reasons), antenna, minutes, beyond)


# --- the whole decision -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    decision: RoutingDecision
    placement: Placement
    location: Location | None
    extra_reasons: tuple[str, ...] = field(default=())

    @property
    def status(self) -> RoutingStatus:
        return self.placement.status

    @property
    def reasons(self) -> tuple[str, ...]:
        return (*self.decision.reasons, *self.extra_reasons, *self.placement.reasons)


def route(decision: RoutingDecision, situation: Situation, location: Location | None, antennas: list[Antenna],
          model: TravelModel, rules: RuleBook = RULES, apesa_done: bool = False) -> Route:
    """Acute distress with consent goes to APESA first; the case keeps its association and waits."""
    if situation.acute_distress and not apesa_done:
        if situation.apesa_consent:
            return Route(decision, Placement(RoutingStatus.APESA_FIRST, (rules.apesa["with_consent"],)), location)
        return Route(decision, place(decision.association, location, antennas, model, rules), location,
                     (rules.apesa["without_consent"],))
    extra = (rules.apesa["resumed"],) if apesa_done and situation.acute_distress else ()
    return Route(decision, place(decision.association, location, antennas, model, rules), location, extra)


def waitlist_reason(association: Association, position: int, rules: RuleBook = RULES) -> str:
    return f"Liste d'attente de {rules.labels[association]} : position {position}."


def routed_event(route_: Route, *, routed_at: datetime, received_at: datetime | None, sequence: int = 1,
                 waitlist_position: int | None = None,
                 previous: PreviousDecision | None = None, reroute_reason: RerouteCause | None = None,
                 rules: RuleBook = RULES) -> CaseRouted:
    placement, decision, location = route_.placement, route_.decision, route_.location
    reasons = list(route_.reasons)
    if waitlist_position is not None:
        reasons.append(waitlist_reason(decision.association, waitlist_position, rules))
    antenna = placement.antenna
    return CaseRouted(
        association=decision.association, rule=decision.rule, reasons=reasons, routed_at=routed_at,
        received_at=received_at, sequence=sequence, status=placement.status,
        antenna_id=antenna.id if antenna else None, antenna_name=antenna.name if antenna else None,
        antenna_contact=antenna.contact if antenna else None, travel_minutes=placement.minutes,
        beyond_one_hour=placement.beyond_one_hour, waitlist_position=waitlist_position,
        location_flagged=location is None or location.flagged, handover_watch=decision.handover_watch,
        previous=previous, reroute_reason=reroute_reason,
    )


def free_places(reported: dict | None, reservations: list[dict], volunteer: Volunteer,
                exclude_case: str | None = None) -> int | None:
    """Places coaching last reported for the association's first volunteer, minus the cases routed there
    since that report (the case being decided again does not count against itself)."""
    if reported is None:
        return None
    as_of = reported["as_of"]
    since = sum(1 for r in reservations
                if r["case_id"] != exclude_case and as_aware(r["at"]) > as_aware(as_of))
    slots = reported["coach_slots_free" if volunteer is Volunteer.COACH else "sponsor_slots_free"]
    return slots - since


def as_aware(value: datetime) -> datetime:
    """Dates read back from the store may be naive UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
