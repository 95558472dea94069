"""Which association fits a case, and why. Pure rules: the reasons travel in CaseRouted for staff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from shared.schemas import Association, Procedure
from shared.schemas.events import Situation

# Second Souffle: the company still exists (before or during a procedure that may save it).
# 60 000 rebonds: after the company is gone (liquidation, court-ordered sale, rétablissement professionnel).
ASSOCIATION_BY_PROCEDURE: dict[Procedure, Association] = {
    Procedure.NONE: Association.SECOND_SOUFFLE,
    Procedure.MANDAT_AD_HOC: Association.SECOND_SOUFFLE,
    Procedure.CONCILIATION: Association.SECOND_SOUFFLE,
    Procedure.SAUVEGARDE: Association.SECOND_SOUFFLE,
    Procedure.REDRESSEMENT_JUDICIAIRE: Association.SECOND_SOUFFLE,
    Procedure.LIQUIDATION_JUDICIAIRE: Association.SOIXANTE_MILLE_REBONDS,
    Procedure.CESSION_A_LA_BARRE: Association.SOIXANTE_MILLE_REBONDS,
    Procedure.RETABLISSEMENT_PROFESSIONNEL: Association.SOIXANTE_MILLE_REBONDS,
}

PROCEDURE_LABELS = {
    Procedure.NONE: "aucune procédure engagée",
    Procedure.MANDAT_AD_HOC: "mandat ad hoc en cours",
    Procedure.CONCILIATION: "conciliation en cours",
    Procedure.SAUVEGARDE: "procédure de sauvegarde",
    Procedure.REDRESSEMENT_JUDICIAIRE: "redressement judiciaire",
    Procedure.LIQUIDATION_JUDICIAIRE: "liquidation judiciaire",
    Procedure.CESSION_A_LA_BARRE: "cession à la barre",
    Procedure.RETABLISSEMENT_PROFESSIONNEL: "rétablissement professionnel",
}

ASSOCIATION_LABELS = {
    Association.SECOND_SOUFFLE: "Second Souffle",
    Association.SOIXANTE_MILLE_REBONDS: "60 000 rebonds",
}


@dataclass(frozen=True)
class RoutingDecision:
    association: Association
    rule: str
    reasons: tuple[str, ...]


def months_between(start: date, end: date) -> int:
    return max(0, (end.year - start.year) * 12 + end.month - start.month - (end.day < start.day))


def decide(situation: Situation, today: date) -> RoutingDecision:
    association = ASSOCIATION_BY_PROCEDURE[situation.procedure]
    label = PROCEDURE_LABELS[situation.procedure]
    if situation.court_decision_date is not None:
        months = months_between(situation.court_decision_date, today)
        # Neutral wording: "prononcée" would be wrong for masculine procedures (redressement, mandat...).
        label = f"{label}, décision du tribunal il y a {months} mois"
    reasons = [f"{label[0].upper()}{label[1:]} → {ASSOCIATION_LABELS[association]}"]
    if situation.procedure is Procedure.REDRESSEMENT_JUDICIAIRE:
        reasons.append("À transmettre à 60 000 rebonds si le redressement se transforme en liquidation.")
    return RoutingDecision(association, f"procedure:{situation.procedure.value}", tuple(reasons))
