"""The whole flow through the four services running as separate processes on real Kafka and FerretDB."""

from __future__ import annotations

import httpx
import pytest

from ops.stack import SERVICES, Stack, StackConfig
from tests.conftest import Infra, a_case, free_port, wait_for


@pytest.fixture(scope="module")
def stack(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    config = StackConfig(
        data_dir=tmp_path_factory.mktemp("stack"),
        kafka_port=infra.kafka.port,
        mongo_port=infra.ferretdb.port,
        service_ports={name: free_port() for name in SERVICES},
    )
    stack = Stack(config)
    # The session's Kafka and FerretDB stand in for the stack's own.
    stack.kafka, stack.ferretdb = infra.kafka, infra.ferretdb
    try:
        stack.start_services()
    except Exception:
        for node in stack.services.values():
            node.stop()
        raise
    yield stack
    for node in stack.services.values():
        node.stop()


async def get_json(client: httpx.AsyncClient, url: str) -> dict | None:
    response = await client.get(url)
    return response.json() if response.status_code == 200 else None


async def test_a_case_travels_from_intake_to_closing(stack: Stack) -> None:
    urls = {name: node.url for name, node in stack.services.items()}
    async with httpx.AsyncClient(timeout=10) as client:
        submitted = await client.post(f"{urls['intake']}/cases", json=a_case(),
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
            return events if "CaseClosed" in events and len(events) >= 11 else None

        events = await wait_for(all_notified, what="notifications for every event")
        # received: entrepreneur + partner; routed: 2; approved: 1; 4 sessions: 4; closed: 2.
        assert sorted(events) == sorted(["CaseReceived"] * 2 + ["CaseRouted"] * 2 + ["CommitteeApproved"]
                                        + ["SessionHeld"] * 4 + ["CaseClosed"] * 2)

        # A resubmission with the same key returns the same case, and nothing is routed twice.
        again = await client.post(f"{urls['intake']}/cases", json=a_case(),
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
