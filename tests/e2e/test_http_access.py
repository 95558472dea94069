"""The running system's HTTP trust boundaries: each association sees only what it holds, and a partner added
with `relais partners add` refers people with its token and follows them on its own topic."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from pymongo import AsyncMongoClient

from examples.partner_consumer import follow
from ops.kafka_security import Secrets
from ops.partners import add, issue_http_token
from ops.stack import Stack
from services.intake.store import MongoPartnerCredentials
from shared.topology import partner_principal
from tests.coaching_support import SR, SS
from tests.conftest import a_case, wait_for
from tests.e2e.conftest import dev_staff


async def test_routing_and_notifications_show_a_case_to_the_association_that_holds_it_only(stack: Stack) -> None:
    urls = {name: node.url for name, node in stack.services.items()}
    async with httpx.AsyncClient(timeout=10) as client:
        submitted = await client.post(f"{urls['intake']}/cases", json=a_case())  # a liquidation: 60 000 rebonds
        assert submitted.status_code == 201, submitted.text
        case_id = submitted.json()["case_id"]
        assert (await client.get(f"{urls['intake']}/cases/{case_id}")).status_code == 401  # public: by email only

        async def routed() -> bool:
            response = await client.get(f"{urls['routing']}/cases/{case_id}", headers=dev_staff(SR))
            return response.status_code == 200

        await wait_for(routed, 30, "the routing decision")

        async def notified_of_routing() -> bool:
            """Until notifications has handled the CaseRouted, it lets either association's staff see the case."""
            response = await client.get(f"{urls['notifications']}/cases/{case_id}/notifications", headers=dev_staff(SR))
            return response.status_code == 200 and any(
                item["event_type"] == "CaseRouted" for item in response.json()["notifications"]
            )

        await wait_for(notified_of_routing, 30, "notifications to handle the routing")
        for path in (f"{urls['routing']}/cases/{case_id}", f"{urls['notifications']}/cases/{case_id}/notifications"):
            assert (await client.get(path)).status_code == 401, path
            assert (await client.get(path, headers=dev_staff(SS))).status_code == 404, path
            assert (await client.get(path, headers=dev_staff(SR))).status_code == 200, path
        other = await client.put(f"{urls['routing']}/antennas/second_souffle-lyon", json={}, headers=dev_staff(SR))
        assert other.status_code == 403
        reroute = await client.post(
            f"{urls['routing']}/cases/{case_id}/reroute", headers=dev_staff(SR), json={"reason": "transmission"}
        )
        assert reroute.status_code == 422  # a case changes association through coaching's handover only
        opt_out = await client.post(
            f"{urls['notifications']}/preferences", json={"case_id": case_id, "recipient": "entrepreneur"}
        )
        assert opt_out.status_code == 422  # only with the signed link of an email
        docs = await client.get(f"{urls['intake']}/docs")
        assert docs.status_code == 200  # exposed under `make run` (development)


async def test_a_partner_added_end_to_end_follows_its_referrals_on_its_own_topic(stack: Stack) -> None:
    partner = f"etude-{uuid.uuid4().hex[:6]}"
    # The operator: `relais partners add <partner>` (Kafka user, topic and ACLs, then the HTTP token).
    add(stack.kafka.access(), Secrets(stack.kafka.secrets.folder), partner)
    mongo: AsyncMongoClient = AsyncMongoClient(stack.ferretdb.url, tz_aware=True)
    try:
        token = await issue_http_token(MongoPartnerCredentials(mongo["relais_intake"]), partner)
    finally:
        await mongo.close()

    reference = f"DOS-{uuid.uuid4().hex[:6].upper()}"
    bearer = {"Authorization": f"Bearer {token}"}
    case = a_case(referral={"kind": "mandataire", "organisation": "Étude", "partner_reference": reference})
    async with httpx.AsyncClient(base_url=stack.services["intake"].url, timeout=10) as intake:
        submitted = await intake.post("/cases", json=case, headers=bearer)
        assert submitted.status_code == 201, submitted.text
        case_id = submitted.json()["case_id"]
        assert (await intake.get(f"/cases/{case_id}", headers=bearer)).status_code == 200
        assert (await intake.get(f"/cases/{case_id}")).status_code == 401

    statuses: list[dict] = []
    done = asyncio.Event()

    def on_status(status: dict) -> None:
        statuses.append(status)
        if status["status"] == "oriente":
            done.set()

    me = stack.kafka.access(partner_principal(partner))
    await asyncio.wait_for(
        follow(me.client(), partner, {reference}, on_status, done),
        timeout=60,
    )
    assert [(s["status"], s["partner_reference"]) for s in statuses] == [("recu", reference), ("oriente", reference)]
