"""Each association runs its own accompaniment: cases from intake through routing to the coaching instance of
their association, as separate processes on real Kafka and FerretDB (the stack of `make run`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial

import httpx
import pytest

from ops.stack import Stack
from shared.schemas import Association
from tests.coaching_support import (
    SR,
    SS,
    EventLog,
    StaffClient,
    capacity_is,
    event_log,
    unique_antenna,
)
from tests.conftest import Infra, a_case, wait_for

TODAY = datetime.now(UTC).date()
PROCEDURE = {SS: "redressement_judiciaire", SR: "liquidation_judiciaire"}
OTHER = {SS: SR, SR: SS}


@pytest.fixture
async def log(infra: Infra) -> AsyncIterator[EventLog]:
    async with event_log(infra) as events:
        yield events


async def submit(stack: Stack, association: Association) -> str:
    """A request for help through intake; routing sends it to `association` by its procedure."""
    situation = {
        "procedure": PROCEDURE[association],
        "court_decision_date": str(TODAY - timedelta(days=60)),
        "postal_code": "69003",
        "commune": "Lyon",
        "sector": "commerce",
    }
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            f"{stack.services['intake'].url}/cases",
            json=a_case(situation=situation),
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
    assert response.status_code == 201, response.text
    return response.json()["case_id"]


async def received(
    stack: Stack, staff_of: dict[Association, StaffClient], association: Association, antenna: str
) -> str:
    """A case submitted, opened by its association's instance only, placed at `antenna`."""
    case_id = await submit(stack, association)
    file = await staff_of[association].opened(case_id)
    assert (file["association"], file["stage"]) == (association.value, "attente_comite")
    assert (await staff_of[OTHER[association]].get(f"/cases/{case_id}")).status_code == 404
    await staff_of[association].patch(f"/cases/{case_id}", {"antenna_id": antenna, "sector": "commerce"})
    return case_id


async def test_one_case_per_association_through_committee_coach_sponsor_checkpoint_and_closing(
    stack: Stack, staff_of: dict[Association, StaffClient], log: EventLog
) -> None:
    for association, outcome in ((SS, "creation_entreprise"), (SR, "emploi_salarie")):
        staff, tag = staff_of[association], uuid.uuid4().hex[:6]
        antenna = unique_antenna(association, "lyon")
        coach, sponsor = f"coach-{tag}", f"sponsor-{tag}"
        await staff.volunteer(coach, "coach", antenna)
        await staff.volunteer(sponsor, "parrain", antenna, max_people=3)
        case_id = await received(stack, staff_of, association, antenna)
        case = f"/cases/{case_id}"

        await staff.post(f"{case}/committee-date", {"scheduled_on": str(TODAY)})
        await staff.post(f"{case}/committee-decision", {"decision": "approuve", "reasons": ["Démarche sincère"]})
        suggested = (await staff.get(f"{case}/suggestions", params={"role": "coach"})).json()
        assert suggested["candidates"][0]["volunteer_id"] == coach and suggested["candidates"][0]["same_antenna"]
        await staff.post(f"{case}/assignments", {"role": "coach", "volunteer_id": coach})
        suggested = (await staff.get(f"{case}/suggestions", params={"role": "parrain"})).json()
        assert suggested["candidates"][0]["volunteer_id"] == sponsor
        await staff.post(f"{case}/assignments", {"role": "parrain", "volunteer_id": sponsor})
        await wait_for(partial(capacity_is, log, antenna, (1, 2)), 30, "the antenna's places taken")

        await staff.post(f"{case}/sessions", {"kind": "coaching", "duration_minutes": 60}, expect=201)
        await staff.post(f"{case}/sessions", {"kind": "parrainage", "duration_minutes": 90}, expect=201)
        checkpoint = await staff.post(
            "/checkpoints", {"antenna_id": antenna, "duration_minutes": 120, "present": [case_id]}, expect=201
        )
        closed = await staff.post(f"{case}/closing", {"outcome": outcome})
        assert (closed["stage"], closed["outcome"]) == ("clos", outcome)

        [approved] = await log.wait("CommitteeApproved", case_id)
        assert approved.payload["association"] == association.value
        held = await log.wait("SessionHeld", case_id, count=3)
        assert [e.payload["kind"] for e in held] == ["coaching", "parrainage", "point_etape_collectif"]
        assert held[-1].payload["session_id"] == checkpoint["checkpoint_id"]
        [event] = await log.wait("CaseClosed", case_id)
        assert (event.payload["association"], event.payload["outcome"], event.payload["days_to_coach"]) == (
            association.value,
            outcome,
            0,
        )
        await wait_for(partial(capacity_is, log, antenna, (2, 3)), 30, "the places freed")


async def test_declined_cases_are_closed_and_oriented(
    stack: Stack, staff_of: dict[Association, StaffClient], log: EventLog
) -> None:
    to_apesa = await received(stack, staff_of, SR, unique_antenna(SR, "grenoble"))
    declined = await staff_of[SR].post(
        f"/cases/{to_apesa}/committee-decision",
        {"decision": "refuse", "reasons": ["Détresse aiguë"], "orientation": "apesa"},
    )
    assert (declined["stage"], declined["outcome"], declined["oriented_to"]) == ("clos", "refus_comite", "apesa")
    [closed] = await log.wait("CaseClosed", to_apesa)
    assert (closed.payload["outcome"], closed.payload["oriented_to"]) == ("refus_comite", "apesa")

    elsewhere = await received(stack, staff_of, SS, unique_antenna(SS, "lyon"))
    await staff_of[SS].post(
        f"/cases/{elsewhere}/committee-decision",
        {"decision": "refuse", "reasons": ["Entreprise déjà liquidée"], "orientation": "autre_association"},
    )
    [reroute] = await log.wait("RerouteRequested", elsewhere)
    assert (reroute.payload["requested_by"], reroute.payload["reason"]) == ("second_souffle", "hors_champ")
    assert (await log.wait("CaseClosed", elsewhere))[0].payload["oriented_to"] == "60000_rebonds"
    # Routing sends it on: 60 000 rebonds receives it, consent to be asked again; Second Souffle notes it.
    arrived = await staff_of[SR].opened(elsewhere)
    assert (arrived["stage"], arrived["history"]["previous_association"]) == ("attente_consentement", "second_souffle")

    async def noted() -> bool:
        return (await staff_of[SS].get(f"/cases/{elsewhere}")).json()["timeline"][-1]["kind"] == "reoriente"

    await wait_for(noted, 30, "the reorientation noted by Second Souffle")


async def test_a_liquidation_hands_the_case_over_to_60000_rebonds_which_asks_consent_again(
    stack: Stack, staff_of: dict[Association, StaffClient], log: EventLog
) -> None:
    ss, sr = staff_of[SS], staff_of[SR]
    antenna, sponsor = unique_antenna(SS, "lyon"), f"sponsor-{uuid.uuid4().hex[:6]}"
    await ss.volunteer(sponsor, "parrain", antenna, max_people=1)
    case_id = await received(stack, staff_of, SS, antenna)
    case = f"/cases/{case_id}"
    await ss.post(f"{case}/committee-decision", {"decision": "approuve"})
    await ss.post(f"{case}/assignments", {"role": "parrain", "volunteer_id": sponsor})
    await ss.post(f"{case}/sessions", {"kind": "parrainage"}, expect=201)

    requested = await ss.post(
        f"{case}/handover",
        {"procedure": "liquidation_judiciaire", "court_decision_date": str(TODAY - timedelta(days=2))},
    )
    assert requested["stage"] == "transmission_demandee"
    [reroute] = await log.wait("RerouteRequested", case_id)
    assert (reroute.payload["reason"], reroute.payload["procedure"]) == ("transmission", "liquidation_judiciaire")

    # Routing answers the request: a new decision (sequence 2) gives the case to 60 000 rebonds.
    arrived = await sr.opened(case_id)
    assert (arrived["stage"], arrived["routing_sequence"]) == ("attente_consentement", 2)
    assert arrived["history"] == {"case_id": case_id, "previous_association": "second_souffle"}
    [_, rerouted] = await log.wait("CaseRouted", case_id, count=2)
    assert (rerouted.payload["reroute_reason"], rerouted.payload["previous"]["association"]) == (
        "transmission",
        "second_souffle",
    )

    async def handed_over() -> bool:
        return (await ss.get(case)).json()["stage"] == "transmis"

    await wait_for(handed_over, 30, "Second Souffle's file handed over")
    await wait_for(lambda: capacity_is(log, antenna, (0, 1)), 30, "the sponsor's place freed")
    refused = await sr.post(f"{case}/committee-decision", {"decision": "approuve"}, expect=409)
    assert refused["detail"] == "Le consentement de l'entrepreneur doit être recueilli à nouveau avant le comité."
    await sr.post(f"{case}/consent", {"given": True})
    await sr.post(f"{case}/committee-decision", {"decision": "approuve"})
    approvals = await log.wait("CommitteeApproved", case_id, count=2)
    assert [e.payload["association"] for e in approvals] == ["second_souffle", "60000_rebonds"]


async def test_with_every_coach_full_the_case_waits_in_a_visible_queue(
    stack: Stack, staff_of: dict[Association, StaffClient], log: EventLog
) -> None:
    sr = staff_of[SR]
    antenna, coach = unique_antenna(SR, "annecy"), f"coach-{uuid.uuid4().hex[:6]}"
    await sr.volunteer(coach, "coach", antenna, max_people=1)
    first = await received(stack, staff_of, SR, antenna)
    second = await received(stack, staff_of, SR, antenna)
    for case_id in (first, second):
        await sr.post(f"/cases/{case_id}/committee-decision", {"decision": "approuve"})
    await sr.post(f"/cases/{first}/assignments", {"role": "coach", "volunteer_id": coach})
    await wait_for(lambda: capacity_is(log, antenna, (0, 0)), 30, "the antenna full")

    suggested = (await sr.get(f"/cases/{second}/suggestions")).json()
    assert not any(c["same_antenna"] for c in suggested["candidates"])  # other tests' antennas may have room
    assert suggested["waiting_list"]["position"] == 1 and suggested["waiting_list"]["blocked"]
    assert suggested["message"].startswith(f"Aucun bénévole (coach) disponible à l'antenne {antenna} : ")
    queue = (await sr.get("/waiting-list", params={"antenna_id": antenna})).json()["cases"]
    assert [(q["case_id"], q["blocked"]) for q in queue] == [(second, True)]
    full = await sr.post(f"/cases/{second}/assignments", {"role": "coach", "volunteer_id": coach}, expect=409)
    assert full["detail"] == "Ce bénévole suit déjà 1 personne(s) pour 1 au plus : il est complet."
    figures = (await sr.get("/coordination", params={"antenna_id": antenna})).json()["antennas"][antenna]
    assert figures["waiting_list"]["coach"] == {"cases": 1, "blocked": 1}

    await sr.post(f"/cases/{first}/closing", {"outcome": "autre"})
    await wait_for(lambda: capacity_is(log, antenna, (1, 0)), 30, "the place freed")
    await sr.post(f"/cases/{second}/assignments", {"role": "coach", "volunteer_id": coach})
    assert (await sr.get("/waiting-list", params={"antenna_id": antenna})).json()["cases"] == []


async def test_staff_of_one_association_can_neither_read_nor_change_the_other_s_cases(
    stack: Stack, staff_of: dict[Association, StaffClient]
) -> None:
    ss, sr = staff_of[SS], staff_of[SR]
    case_id = await received(stack, staff_of, SR, unique_antenna(SR, "valence"))
    with_ss_token = {"Authorization": ss.headers["Authorization"]}
    for request in (
        sr.client.get(f"/cases/{case_id}", headers=with_ss_token),
        sr.client.get("/cases", headers=with_ss_token),
        sr.client.post(f"/cases/{case_id}/committee-decision", json={"decision": "approuve"}, headers=with_ss_token),
        ss.client.get("/volunteers", headers=sr.headers),
    ):
        response = await request
        assert (response.status_code, response.json()["detail"]) == (
            401,
            "Jeton d'accès manquant ou inconnu pour cette association.",
        )
    assert (await ss.get(f"/cases/{case_id}")).status_code == 404  # Second Souffle's database lacks it
    assert (await sr.get(f"/cases/{case_id}")).json()["stage"] == "attente_comite"  # unchanged
    assert all(
        a.startswith("second_souffle")
        for a in (await ss.get("/coordination")).json()["antennas"]
        if a != "sans_antenne"
    )

    trail = (await sr.get(f"/cases/{case_id}/audit")).json()["entries"]
    assert {e["who"] for e in trail} == {"karim", "anonyme"}
    assert {e["outcome"] for e in trail if e["who"] == "anonyme"} == {"non_authentifie"}
