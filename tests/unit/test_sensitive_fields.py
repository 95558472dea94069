"""Health data and staff's free text stay where they are needed: off the topics whose readers need none."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from services.coaching.domain.case_file import CaseFile, Stage
from services.notifications.facts import facts_of
from services.routing.app import build_service
from services.routing.settings import RoutingSettings
from shared.schemas import (
    Association,
    CaseReceived,
    CaseRouted,
    Procedure,
    RerouteRequested,
    RoutingStatus,
    new_envelope,
)
from tests.fakes.routing import fake_stores

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
HEALTH_WORDS = ("détresse", "apesa", "psycholog")


def received(**situation: object) -> CaseReceived:
    return CaseReceived(
        situation={"procedure": "liquidation_judiciaire", "postal_code": "69003", "commune": "Lyon", **situation},
        referral={"kind": "self"},
        personal={"first_name": "Jeanne", "last_name": "Martin", "email": "j@example.fr"},
        received_at=NOW - timedelta(hours=1),
    )


async def routed(payload: CaseReceived) -> CaseRouted:
    service = build_service(RoutingSettings(), stores=fake_stores(), clock=lambda: NOW)
    await service.start()
    envelope = new_envelope(payload, case_id=uuid.uuid4(), producer="intake")
    assert envelope.case_id is not None
    decision = await service.route_new_case(envelope.case_id, payload, envelope)
    assert decision is not None
    return decision


def mentions_health(routed: CaseRouted) -> bool:
    return any(word in reason.lower() for reason in routed.reasons for word in HEALTH_WORDS)


async def test_declared_distress_without_consent_is_a_call_back_first_never_a_reason() -> None:
    decision = await routed(received(acute_distress=True, apesa_consent=False))
    assert decision.status is RoutingStatus.ORIENTED and decision.priority_callback is True
    assert not mentions_health(decision)
    assert facts_of(decision)["priority_callback"] is True  # the coordinator's email says "call back first"


async def test_apesa_first_is_said_by_the_status_alone() -> None:
    decision = await routed(received(acute_distress=True, apesa_consent=True))
    assert decision.status is RoutingStatus.APESA_FIRST and not mentions_health(decision)
    plain = await routed(received())
    assert plain.priority_callback is None and not mentions_health(plain)


def test_the_handover_note_stays_in_the_case_file() -> None:
    routed_here = CaseRouted(
        association=Association.SECOND_SOUFFLE,
        rule="procedure:redressement_judiciaire",
        reasons=["Redressement"],
        routed_at=NOW,
        received_at=NOW - timedelta(days=3),
        antenna_id="second_souffle-lyon",
    )
    file = CaseFile.opened(uuid.uuid4(), routed_here, NOW)
    file.stage = Stage.ACCOMPANIED
    [event] = file.request_handover(Procedure.LIQUIDATION_JUDICIAIRE, date(2026, 5, 1), "Suivi à reprendre", NOW.date())
    assert isinstance(event, RerouteRequested) and event.comment is None
    assert file.timeline[-1]["comment"] == "Suivi à reprendre"
