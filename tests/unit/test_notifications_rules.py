"""Notification rules: who must be told what after each event of the flow."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from services.notifications.domain import Recipient, notification_id, plan
from shared.schemas import (
    Association,
    CaseClosed,
    CaseReceived,
    CaseRouted,
    CommitteeApproved,
    Contract,
    Outcome,
    ReferrerKind,
    SessionHeld,
    SessionKind,
    new_envelope,
)

SS = Association.SECOND_SOUFFLE


def received(kind: ReferrerKind) -> CaseReceived:
    return CaseReceived(
        situation={"procedure": "sauvegarde", "postal_code": "69003"},
        referral={"kind": kind, "organisation": None if kind is ReferrerKind.SELF else "CCI Lyon"},
        personal={"first_name": "Jeanne", "last_name": "Martin", "email": "jeanne@example.fr"},
        received_at=datetime.now(UTC),
    )


def planned(payload: Contract) -> list[tuple[Recipient, str]]:
    envelope = new_envelope(payload, case_id=uuid.uuid4(), producer="test")
    return [(p.recipient, p.template) for p in plan(envelope)]


def test_self_referred_entrepreneur_gets_a_receipt_and_no_partner_is_told() -> None:
    assert planned(received(ReferrerKind.SELF)) == [(Recipient.ENTREPRENEUR, "accuse_reception")]


@pytest.mark.parametrize("kind", [k for k in ReferrerKind if k is not ReferrerKind.SELF])
def test_referring_partner_gets_a_receipt(kind: ReferrerKind) -> None:
    assert planned(received(kind)) == [(Recipient.ENTREPRENEUR, "accuse_reception"),
                                       (Recipient.PARTNER, "accuse_reception_partenaire")]


@pytest.mark.parametrize("payload, expected", [
    (CaseRouted(association=SS, rule="procedure:sauvegarde", reasons=["Procédure de sauvegarde → Second Souffle"],
                routed_at=datetime.now(UTC)),
     [(Recipient.ENTREPRENEUR, "orientation"), (Recipient.COORDINATOR, "nouveau_dossier")]),
    (CommitteeApproved(association=SS, decided_on=date(2025, 2, 3)),
     [(Recipient.ENTREPRENEUR, "decision_comite")]),
    (SessionHeld(association=SS, session_id="s1", kind=SessionKind.COACHING, held_on=date(2025, 2, 4), number=1),
     [(Recipient.ENTREPRENEUR, "suivi_seance")]),
    (CaseClosed(association=SS, outcome=Outcome.SALARIED_JOB, closed_on=date(2025, 12, 1), journey_days=300),
     [(Recipient.ENTREPRENEUR, "cloture"), (Recipient.COORDINATOR, "cloture_dossier")]),
], ids=["CaseRouted", "CommitteeApproved", "SessionHeld", "CaseClosed"])
def test_each_event_plans_its_notifications(payload: Contract, expected: list) -> None:
    assert planned(payload) == expected


def test_notification_id_is_stable_per_event_and_recipient() -> None:
    envelope = new_envelope(received(ReferrerKind.CCI), case_id=uuid.uuid4(), producer="test")
    ids = [notification_id(envelope, p) for p in plan(envelope)]
    assert ids == [notification_id(envelope, p) for p in plan(envelope)]
    assert len(set(ids)) == 2 and all(i.startswith(str(envelope.event_id)) for i in ids)
