"""Notification rules: who must be told what after each event of the flow."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from services.notifications.domain import (
    Recipient,
    backoff_s,
    message_id,
    notification_id,
    partner_notification,
    plan,
)
from shared.schemas import (
    Association,
    CaseClosed,
    CaseReceived,
    CaseRouted,
    CommitteeApproved,
    Contract,
    Outcome,
    ReferralStatus,
    ReferrerKind,
    SessionHeld,
    SessionKind,
    VolunteerAssigned,
    VolunteerRole,
    new_envelope,
)

SS = Association.SECOND_SOUFFLE
BOTH = {Recipient.COACH: "coach-1", Recipient.SPONSOR: "sponsor-1"}


def received(kind: ReferrerKind) -> CaseReceived:
    return CaseReceived(
        situation={"procedure": "sauvegarde", "postal_code": "69003"},
        referral={"kind": kind, "organisation": None if kind is ReferrerKind.SELF else "CCI Lyon"},
        personal={"first_name": "Jeanne", "last_name": "Martin", "email": "jeanne@example.fr"},
        received_at=datetime.now(UTC),
    )


def planned(payload: Contract, following: dict | None = None) -> list[tuple[Recipient, str]]:
    return [(p.recipient, p.template) for p in plan(payload, following)]


def session(kind: SessionKind, volunteer_id: str | None = None) -> SessionHeld:
    return SessionHeld(
        association=SS, session_id="s1", kind=kind, held_on=date(2025, 2, 4), number=1, volunteer_id=volunteer_id
    )


def assigned(role: VolunteerRole, released: bool = False) -> VolunteerAssigned:
    return VolunteerAssigned(
        association=SS,
        role=role,
        volunteer_id="v-1",
        display_name="Marc Parrain",
        email="marc@example.org",
        assigned_on=date(2025, 2, 5),
        released=released,
    )


@pytest.mark.parametrize("kind", list(ReferrerKind))
def test_the_entrepreneur_gets_a_receipt_whoever_referred_them(kind: ReferrerKind) -> None:
    # The partner's receipt follows the referral (services.notifications.referrals), not this plan.
    assert planned(received(kind)) == [(Recipient.ENTREPRENEUR, "accuse_reception")]


@pytest.mark.parametrize(
    "payload, expected",
    [
        (
            CaseRouted(
                association=SS,
                rule="procedure:sauvegarde",
                reasons=["Procédure de sauvegarde → Second Souffle"],
                routed_at=datetime.now(UTC),
            ),
            [(Recipient.ENTREPRENEUR, "orientation"), (Recipient.COORDINATOR, "nouveau_dossier")],
        ),
        (CommitteeApproved(association=SS, decided_on=date(2025, 2, 3)), [(Recipient.ENTREPRENEUR, "decision_comite")]),
        (session(SessionKind.COACHING), [(Recipient.ENTREPRENEUR, "suivi_seance")]),
        (
            CaseClosed(association=SS, outcome=Outcome.SALARIED_JOB, closed_on=date(2025, 12, 1), journey_days=300),
            [(Recipient.ENTREPRENEUR, "cloture"), (Recipient.COORDINATOR, "cloture_dossier")],
        ),
    ],
    ids=["CaseRouted", "CommitteeApproved", "SessionHeld", "CaseClosed"],
)
def test_each_event_plans_its_notifications(payload: Contract, expected: list) -> None:
    assert planned(payload) == expected


@pytest.mark.parametrize(
    "kind, volunteer, template",
    [
        (SessionKind.COACHING, Recipient.COACH, "seance_coach"),
        (SessionKind.SPONSOR, Recipient.SPONSOR, "seance_parrain"),
    ],
)
def test_the_volunteer_who_led_a_session_hears_of_it(kind: SessionKind, volunteer: Recipient, template: str) -> None:
    assert planned(session(kind), BOTH) == [(Recipient.ENTREPRENEUR, "suivi_seance"), (volunteer, template)]


@pytest.mark.parametrize("kind", [SessionKind.CHECKPOINT, SessionKind.EXPERT])
def test_collective_and_expert_sessions_tell_only_the_entrepreneur(kind: SessionKind) -> None:
    assert planned(session(kind), BOTH) == [(Recipient.ENTREPRENEUR, "suivi_seance")]


def test_the_volunteer_named_as_leading_a_session_hears_of_it_even_before_their_assignment_is_known() -> None:
    [*_, volunteer] = plan(session(SessionKind.COACHING, volunteer_id="coach-9"))
    assert (volunteer.recipient, volunteer.template, volunteer.volunteer_id) == (
        Recipient.COACH,
        "seance_coach",
        "coach-9",
    )
    assert plan(session(SessionKind.COACHING), BOTH)[-1].volunteer_id == "coach-1"


def test_closing_tells_the_known_volunteers_and_no_unknown_one() -> None:
    closed = CaseClosed(association=SS, outcome=Outcome.NEW_BUSINESS, closed_on=date(2025, 12, 1), journey_days=400)
    sponsor_only = {Recipient.SPONSOR: "sponsor-1"}
    assert planned(closed, sponsor_only)[-1] == (Recipient.SPONSOR, "fin_accompagnement_parrain")
    assert (Recipient.COACH, "fin_accompagnement_coach") not in planned(closed, sponsor_only)
    assert [p.volunteer_id for p in plan(closed, BOTH)][-2:] == ["coach-1", "sponsor-1"]


@pytest.mark.parametrize(
    "role, recipient, template",
    [
        (VolunteerRole.COACH, Recipient.COACH, "attribution_coach"),
        (VolunteerRole.SPONSOR, Recipient.SPONSOR, "attribution_parrain"),
    ],
)
def test_an_assigned_volunteer_is_told_who_they_now_follow(
    role: VolunteerRole, recipient: Recipient, template: str
) -> None:
    [told] = plan(assigned(role))
    assert (told.recipient, told.template, told.volunteer_id) == (recipient, template, "v-1")


def test_a_release_or_an_expert_is_told_nothing() -> None:
    assert planned(assigned(VolunteerRole.COACH, released=True)) == []
    assert planned(assigned(VolunteerRole.EXPERT)) == []


@pytest.mark.parametrize(
    "status, template",
    [
        (ReferralStatus.RECEIVED, "accuse_reception_partenaire"),
        (ReferralStatus.ROUTED, "orientation_partenaire"),
        (ReferralStatus.ACCEPTED, "decision_comite_partenaire"),
        (ReferralStatus.DECLINED, "cloture_partenaire"),
        (ReferralStatus.CLOSED, "cloture_partenaire"),
    ],
)
def test_each_referral_status_has_a_partner_message(status: ReferralStatus, template: str) -> None:
    assert partner_notification(status).template == template


def test_notification_and_message_ids_are_stable_and_hold_no_personal_data() -> None:
    envelope = new_envelope(received(ReferrerKind.CCI), case_id=uuid.uuid4(), producer="test")
    ids = [notification_id(envelope.event_id, p.recipient) for p in plan(received(ReferrerKind.CCI))]
    assert ids == [f"{envelope.event_id}:entrepreneur"]
    assert message_id(ids[0], "relais.example") == f"<{envelope.event_id}.entrepreneur@relais.example>"
    assert message_id(ids[0], "relais.example") == message_id(ids[0], "relais.example")


def test_backoff_doubles_up_to_its_ceiling() -> None:
    assert [backoff_s(n, 1000, 5000) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 5, 5]
