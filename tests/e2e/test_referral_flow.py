"""The whole flow through the four services running as separate processes on real Kafka and FerretDB."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from ops.stack import SERVICES, Stack, StackConfig
from tests.conftest import Infra, a_case, free_port, wait_for
from tests.mail import skip_backlog


@pytest.fixture(scope="module")
def stack(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    config = StackConfig(
        data_dir=tmp_path_factory.mktemp("stack"),
        kafka_port=infra.kafka.port,
        mongo_port=infra.ferretdb.port,
        smtp_port=free_port(),
        service_ports={name: free_port() for name in SERVICES},
    )
    stack = Stack(config)
    # The session's Kafka and FerretDB stand in for the stack's own; the mail sink is the stack's.
    stack.kafka, stack.ferretdb = infra.kafka, infra.ferretdb
    nodes = [stack.mailsink, *stack.services.values()]
    # Notifications would first email every earlier test's events (shared topics): it starts after them.
    asyncio.run(skip_backlog(infra.bootstrap, "notifications"))
    try:
        stack.mailsink.start()
        stack.start_services()
    except Exception:
        for node in nodes:
            node.stop()
        raise
    yield stack
    for node in nodes:
        node.stop()


CASE = a_case(referral={"kind": "mandataire", "organisation": "Étude Dupont", "partner_reference": "LJ-2026-042",
                        "contact_email": "etude.dupont@example.fr"})


async def get_json(client: httpx.AsyncClient, url: str) -> dict | None:
    response = await client.get(url)
    return response.json() if response.status_code == 200 else None


async def test_a_case_travels_from_intake_to_closing(stack: Stack) -> None:
    urls = {name: node.url for name, node in stack.services.items()}
    async with httpx.AsyncClient(timeout=10) as client:
        submitted = await client.post(f"{urls['intake']}/cases", json=CASE,
                                      headers={"Idempotency-Key": "e2e-flow-1"})
        assert submitted.status_code == 201, submitted.text
        case_id = submitted.json()["case_id"]

        routed = await wait_for(lambda: get_json(client, f"{urls['routing']}/cases/{case_id}"),
                                what="routing decision")
        assert routed["association"] == "60000_rebonds"
        assert "Liquidation judiciaire" in routed["current"]["reasons"][0]

        async def opened() -> dict | None:
            return await get_json(client, f"{urls['coaching']}/cases/{case_id}")

        file = await wait_for(opened, what="case file opened in coaching")
        assert file["stage"] == "attente_comite"

        # A session before the committee's approval is refused and changes nothing.
        early = await client.post(f"{urls['coaching']}/cases/{case_id}/sessions", json={"kind": "coaching"})
        assert early.status_code == 409
        assert "comité" in early.json()["detail"]

        approved = await client.post(f"{urls['coaching']}/cases/{case_id}/committee-decision",
                                     json={"decision": "approuve", "reasons": ["Démarche sincère"]})
        assert approved.status_code == 200, approved.text
        for kind in ("coaching", "coaching", "point_etape_collectif", "parrainage"):
            held = await client.post(f"{urls['coaching']}/cases/{case_id}/sessions",
                                     json={"kind": kind, "duration_minutes": 60})
            assert held.status_code == 201, held.text
        closed = await client.post(f"{urls['coaching']}/cases/{case_id}/closing",
                                   json={"outcome": "emploi_salarie"})
        assert closed.status_code == 200, closed.text
        twice = await client.post(f"{urls['coaching']}/cases/{case_id}/closing",
                                  json={"outcome": "emploi_salarie"})
        assert twice.status_code == 409

        timeline = (await get_json(client, f"{urls['coaching']}/cases/{case_id}"))["timeline"]
        assert [entry["kind"] for entry in timeline] == ["oriente", "comite", "seance", "seance", "seance",
                                                         "seance", "cloture"]

        async def all_notified() -> list | None:
            body = await get_json(client, f"{urls['notifications']}/cases/{case_id}/notifications")
            events = [n["event_type"] for n in (body or {}).get("notifications", [])]
            return events if events.count("CaseClosed") == 3 and len(events) >= 14 else None

        events = await wait_for(all_notified, timeout=30, what="notifications for every event")
        # The entrepreneur hears of every step, the referring partner of each status, the coordinator of
        # the routing and the closing: received 2, routed 3, approved 2, 4 sessions 4, closed 3.
        assert sorted(events) == sorted(["CaseReceived"] * 2 + ["CaseRouted"] * 3 + ["CommitteeApproved"] * 2
                                        + ["SessionHeld"] * 4 + ["CaseClosed"] * 3)

        # ... and the emails land in the local mail sink, one .eml file per message.
        body = await get_json(client, f"{urls['notifications']}/cases/{case_id}/notifications")
        expected = {f"{n['id'].replace(':', '.')}@relais.example.eml" for n in body["notifications"]}

        async def delivered() -> bool:
            return expected <= {path.name for path in stack.mailsink.mail_dir.glob("*.eml")}

        await wait_for(delivered, timeout=60, what="every email written by the mail sink")

        # A resubmission with the same key returns the same case, and nothing is routed twice.
        again = await client.post(f"{urls['intake']}/cases", json=CASE,
                                  headers={"Idempotency-Key": "e2e-flow-1"})
        assert again.status_code == 200 and again.json()["case_id"] == case_id
        routed = await get_json(client, f"{urls['routing']}/cases/{case_id}")
        assert len(routed["history"]) == 1

        for url in urls.values():
            health = await client.get(f"{url}/health")
            assert health.json() == {"status": "ok", "checks": {"kafka": True, "store": True}}
        metrics = (await client.get(f"{urls['routing']}/metrics")).text
        assert 'relais_events_handled_total{event_type="CaseReceived",result="ok"}' in metrics
        assert "faststream_received_messages_total" in metrics
