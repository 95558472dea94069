"""Routing rules: which association fits each procedure, and the French reasons staff read."""

from __future__ import annotations

from datetime import date

import pytest

from services.routing.app import load_rules
from services.routing.domain import decide, months_between
from services.routing.settings import RoutingSettings
from shared.schemas import Association, Procedure
from shared.schemas.events import Situation

SS, REBONDS = Association.SECOND_SOUFFLE, Association.SOIXANTE_MILLE_REBONDS

# Second Souffle while the company exists; 60 000 rebonds once it is gone.
EXPECTED = {
    Procedure.NONE: (SS, "Aucune procédure engagée"),
    Procedure.MANDAT_AD_HOC: (SS, "Mandat ad hoc en cours"),
    Procedure.CONCILIATION: (SS, "Conciliation en cours"),
    Procedure.SAUVEGARDE: (SS, "Procédure de sauvegarde"),
    Procedure.REDRESSEMENT_JUDICIAIRE: (SS, "Redressement judiciaire"),
    Procedure.LIQUIDATION_JUDICIAIRE: (REBONDS, "Liquidation judiciaire"),
    Procedure.CESSION_A_LA_BARRE: (REBONDS, "Cession à la barre"),
    Procedure.RETABLISSEMENT_PROFESSIONNEL: (REBONDS, "Rétablissement professionnel"),
}
LABELS = {SS: "Second Souffle", REBONDS: "60 000 rebonds"}
TODAY = date(2025, 10, 20)
RULES = load_rules(RoutingSettings().rules_file)


def situation(procedure: Procedure, decided: date | None = None) -> Situation:
    return Situation(procedure=procedure, court_decision_date=decided, postal_code="69003")


def test_every_procedure_is_covered() -> None:
    assert set(EXPECTED) == set(Procedure)


@pytest.mark.parametrize("procedure", Procedure)
def test_procedure_decides_the_association(procedure: Procedure) -> None:
    association, label = EXPECTED[procedure]
    decision = decide(situation(procedure), TODAY, RULES)
    assert decision.association is association
    assert decision.rule == f"procedure:{procedure.value}"
    assert decision.reasons[0] == f"{label} → {LABELS[association]}"


@pytest.mark.parametrize("procedure", Procedure)
def test_reason_tells_how_long_ago_the_court_decided(procedure: Procedure) -> None:
    association, label = EXPECTED[procedure]
    decision = decide(situation(procedure, date(2025, 3, 10)), TODAY, RULES)
    assert decision.reasons[0] == f"{label}, décision du tribunal il y a 7 mois → {LABELS[association]}"


def test_redressement_carries_the_handover_note() -> None:
    decision = decide(situation(Procedure.REDRESSEMENT_JUDICIAIRE), TODAY, RULES)
    assert decision.reasons[1:] == ("À transmettre à 60 000 rebonds si le redressement se transforme en liquidation.",)


@pytest.mark.parametrize("procedure", [p for p in Procedure if p is not Procedure.REDRESSEMENT_JUDICIAIRE])
def test_other_procedures_have_a_single_reason(procedure: Procedure) -> None:
    assert len(decide(situation(procedure), TODAY, RULES).reasons) == 1


@pytest.mark.parametrize(
    "start, end, months",
    [
        (date(2025, 3, 10), date(2025, 3, 10), 0),
        (date(2025, 3, 10), date(2025, 4, 9), 0),
        (date(2025, 3, 10), date(2025, 4, 10), 1),
        (date(2024, 11, 30), date(2025, 9, 29), 9),
        (date(2024, 11, 30), date(2025, 9, 30), 10),
        (date(2023, 1, 1), date(2025, 1, 1), 24),
        (date(2025, 12, 1), date(2025, 10, 20), 0),  # a date after today never gives negative months
    ],
)
def test_months_between(start: date, end: date, months: int) -> None:
    assert months_between(start, end) == months
