"""The words staff read: stages, steps, outcomes, roles, and each timeline entry as a French sentence."""

from __future__ import annotations

from typing import Any

from services.coaching.domain.case_file import CaseStep, Decision, Orientation, Stage
from shared.pages import date_fr, datetime_fr
from shared.schemas import Association, Outcome, Procedure, SectorFamily, SessionKind, VolunteerRole

STAGES = {
    Stage.AWAITING_CONSENT: "Consentement à recueillir",
    Stage.AWAITING_COMMITTEE: "En attente du comité",
    Stage.ACCOMPANIED: "Accompagnement",
    Stage.HANDOVER_REQUESTED: "Transmission demandée",
    Stage.HANDED_OVER: "Transmis à l'autre association",
    Stage.CLOSED: "Clos",
}
STEPS = {
    CaseStep.AWAITING_CONSENT: "Consentement à recueillir",
    CaseStep.AWAITING_COMMITTEE: "En attente du comité",
    CaseStep.COMMITTEE_SCHEDULED: "Comité programmé",
    CaseStep.AWAITING_COACH: "En attente d'un coach",
    CaseStep.WITH_COACH: "Coaching",
    CaseStep.WITH_SPONSOR: "Parrainage",
    CaseStep.HANDOVER_REQUESTED: "Transmission demandée",
}
OUTCOMES = {
    Outcome.SALARIED_JOB: "Retour à l'emploi salarié",
    Outcome.NEW_BUSINESS: "Création ou reprise d'entreprise",
    Outcome.OTHER: "Autre issue",
    Outcome.WITHDREW: "Abandon",
    Outcome.DECLINED: "Refus du comité",
}
ROLES = {VolunteerRole.COACH: "Coach", VolunteerRole.SPONSOR: "Parrain ou marraine", VolunteerRole.EXPERT: "Expert"}
ROLES_PLURAL = {VolunteerRole.COACH: "coachs", VolunteerRole.SPONSOR: "parrains ou marraines"}
SESSIONS = {
    SessionKind.COACHING: "Séance de coaching",
    SessionKind.SPONSOR: "Rencontre de parrainage",
    SessionKind.CHECKPOINT: "Point d'étape collectif",
    SessionKind.EXPERT: "Consultation d'un expert",
}
DECISIONS = {Decision.APPROVED: "Accord", Decision.DEFERRED: "Ajournement", Decision.DECLINED: "Refus"}
ORIENTATIONS = {Orientation.OTHER_ASSOCIATION: "Vers l'autre association", Orientation.APESA: "Vers APESA"}
HANDOVER_PROCEDURES = {
    Procedure.LIQUIDATION_JUDICIAIRE: "Liquidation judiciaire",
    Procedure.CESSION_A_LA_BARRE: "Cession à la barre",
}
FAMILIES = {
    SectorFamily.COMMERCE: "Commerce",
    SectorFamily.CONSTRUCTION: "Bâtiment et travaux publics",
    SectorFamily.SERVICES: "Services",
    SectorFamily.HOSPITALITY: "Hôtellerie, restauration",
    SectorFamily.TRANSPORT: "Transport",
    SectorFamily.INDUSTRY: "Industrie",
    SectorFamily.AGRICULTURE: "Agriculture",
}
WAITS = {"reception_comite": "De l'arrivée à la décision du comité", "comite_coach": "De l'accord du comité au coach"}


def antenna_name(antenna_id: str | None) -> str:
    """'60000_rebonds-saint-etienne' -> 'Saint-Etienne' (the directory's own name is on the antennas page)."""
    if not antenna_id or antenna_id == "sans_antenne":
        return "Sans antenne"
    city = antenna_id.split("-", 1)[1] if "-" in antenna_id else antenna_id
    return "-".join(part.capitalize() for part in city.split("-"))


def reference(case_id: object) -> str:
    return str(case_id)[:8].upper()


def association_name(value: str | None) -> str:
    try:
        return Association(value).display_name if value else ""
    except ValueError:
        return str(value)


def describe(entry: dict[str, Any], names: dict[str, str]) -> str:
    """One timeline entry as staff read it; `names` gives volunteers' names by id."""
    kind = entry.get("kind")

    def who(volunteer_id: Any) -> str:
        return names.get(str(volunteer_id), str(volunteer_id)) if volunteer_id else "—"

    if kind == "oriente":
        where = f", antenne {antenna_name(entry['antenna_id'])}" if entry.get("antenna_id") else ", sans antenne"
        came = entry.get("previous_association")
        origin = f" (venant de {association_name(came)})" if came else ""
        return f"Orienté vers {association_name(entry.get('association'))}{where}{origin}."
    if kind == "transmis":
        return f"Transmis à {association_name(entry.get('to'))} par le routage."
    if kind == "reoriente":
        return f"Le routage a orienté ce dossier clos vers {association_name(entry.get('to'))}."
    if kind == "profil":
        parts = []
        if entry.get("antenna_id"):
            parts.append(f"antenne {antenna_name(entry['antenna_id'])}")
        if entry.get("sector"):
            parts.append(f"activité « {entry['sector']} »")
        if entry.get("sector_family"):
            parts.append(f"secteur {FAMILIES.get(entry['sector_family'], entry['sector_family'])}")
        return "Profil complété : " + ", ".join(parts) + "."
    if kind == "consentement":
        given = "donné" if entry.get("given") else "refusé"
        return f"Consentement {given} le {date_fr(entry.get('on'))}."
    if kind == "comite_programme":
        return f"Comité d'engagement programmé le {date_fr(entry.get('scheduled_on'))}."
    if kind == "comite":
        decision = DECISIONS[Decision(entry["decision"])]
        text = f"Comité d'engagement du {date_fr(entry.get('decided_on'))} : {decision.lower()}"
        if entry.get("orientation"):
            text += f", orientation {ORIENTATIONS[Orientation(entry['orientation'])].lower()}"
        reasons = entry.get("reasons") or []
        return text + (f" ({' ; '.join(reasons)})." if reasons else ".")
    if kind in ("attribution", "liberation"):
        role = ROLES.get(VolunteerRole(entry["role"]), entry["role"]).lower()
        verb = "attribué(e)" if kind == "attribution" else "libéré(e)"
        return f"{who(entry.get('volunteer_id'))}, {role}, {verb} le {date_fr(entry.get('on'))}."
    if kind in ("seance", "absence"):
        session = SESSIONS.get(SessionKind(entry["session_kind"]), entry["session_kind"])
        text = f"{session} du {date_fr(entry.get('held_on'))}"
        if entry.get("duration_minutes"):
            text += f", {entry['duration_minutes']} min"
        if entry.get("volunteer_id"):
            text += f", avec {who(entry['volunteer_id'])}"
        text += " : absence de la personne." if kind == "absence" else f" (n° {entry.get('number')})."
        if entry.get("next_session_at"):
            place = f", {entry['next_session_place']}" if entry.get("next_session_place") else ""
            text += f" Prochain rendez-vous : {datetime_fr(entry['next_session_at'])}{place}."
        return text
    if kind == "transmission_demandee":
        procedure = HANDOVER_PROCEDURES.get(Procedure(entry["procedure"]), entry["procedure"])
        return f"Transmission demandée à {association_name(entry.get('to'))} ({procedure.lower()})."
    if kind == "cloture":
        outcome = OUTCOMES.get(Outcome(entry["outcome"]), entry["outcome"])
        days = entry.get("journey_days")
        return f"Dossier clos le {date_fr(entry.get('closed_on'))} : {outcome.lower()} ({days} jours)."
    return str(kind)


def options(labels: dict[Any, str], only: Any = None) -> list[tuple[str, str]]:
    """(value, label) pairs for a list or radio buttons (`only`: the values to offer, in that order)."""
    keys = list(only) if only is not None else list(labels)
    return [(str(getattr(key, "value", key)), labels[key]) for key in keys]
