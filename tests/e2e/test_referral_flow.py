"""The whole flow through the services running as separate processes on real Kafka and FerretDB."""

from __future__ import annotations

import httpx

from ops.stack import Stack
from shared.schemas import Association
from tests.coaching_support import SR, SS, StaffClient, unique_antenna
from tests.conftest import a_case, wait_for
from tests.e2e.conftest import dev_staff

CASE = a_case(
    referral={
        "kind": "mandataire",
        "organisation": "Étude Dupont",
        "partner_reference": "LJ-2026-042",
        "contact_email": "etude.dupont@example.fr",
    }
)


async def get_json(client: httpx.AsyncClient, url: str) -> dict | None:
    """As 60 000 rebonds' staff, who hold the case (routing and notifications serve each association its own)."""
    response = await client.get(url, headers=dev_staff(SR))
    return response.json() if response.status_code == 200 else None


async def test_a_case_travels_from_intake_to_closing(stack: Stack, staff_of: dict[Association, StaffClient]) -> None:
    urls = {name: node.url for name, node in stack.services.items()}
    coaching = staff_of[SR]  # a liquidation goes to 60 000 rebonds
    async with httpx.AsyncClient(timeout=10) as client:
        submitted = await client.post(f"{urls['intake']}/cases", json=CASE, headers={"Idempotency-Key": "e2e-flow-1"})
        assert submitted.status_code == 201, submitted.text
        case_id = submitted.json()["case_id"]

        routed = await wait_for(lambda: get_json(client, f"{urls['routing']}/cases/{case_id}"), what="routing decision")
        assert routed["association"] == "60000_rebonds"
        assert "Liquidation judiciaire" in routed["current"]["reasons"][0]

        file = await coaching.opened(case_id)
        assert file["stage"] == "attente_comite"
        assert (await staff_of[SS].get(f"/cases/{case_id}")).status_code == 404  # not Second Souffle's

        # A session before the committee's approval is refused and changes nothing.
        early = await coaching.post(f"/cases/{case_id}/sessions", {"kind": "coaching"}, expect=409)
        assert "comité" in early["detail"]

        antenna = unique_antenna(SR, "lyon")
        await coaching.volunteer("flow-coach", "coach", antenna)
        await coaching.volunteer("flow-sponsor", "parrain", antenna)
        await coaching.patch(f"/cases/{case_id}", {"antenna_id": antenna})
        await coaching.post(
            f"/cases/{case_id}/committee-decision", {"decision": "approuve", "reasons": ["Démarche sincère"]}
        )
        await coaching.post(f"/cases/{case_id}/assignments", {"role": "coach", "volunteer_id": "flow-coach"})
        await coaching.post(f"/cases/{case_id}/assignments", {"role": "parrain", "volunteer_id": "flow-sponsor"})
        for kind in ("coaching", "coaching", "parrainage"):
            await coaching.post(f"/cases/{case_id}/sessions", {"kind": kind, "duration_minutes": 60}, expect=201)
        await coaching.post("/checkpoints", {"antenna_id": antenna, "present": [case_id]}, expect=201)
        await coaching.post(f"/cases/{case_id}/closing", {"outcome": "emploi_salarie"})
        await coaching.post(f"/cases/{case_id}/closing", {"outcome": "emploi_salarie"}, expect=409)

        timeline = (await coaching.get(f"/cases/{case_id}")).json()["timeline"]
        assert [entry["kind"] for entry in timeline] == [
            "oriente",
            "profil",
            "comite",
            "attribution",
            "attribution",
            "seance",
            "seance",
            "seance",
            "seance",
            "cloture",
        ]

        async def all_notified() -> list | None:
            body = await get_json(client, f"{urls['notifications']}/cases/{case_id}/notifications")
            events = [n["event_type"] for n in (body or {}).get("notifications", [])]
            return events if events.count("CaseClosed") == 5 and len(events) >= 21 else None

        events = await wait_for(all_notified, timeout=30, what="notifications for every event")
        # The entrepreneur hears of every step, the referring partner of each status, the coordinator of
        # the routing and the closing, the coach and the sponsor of their assignment, the sessions they led
        # and the closing (recorded "sans adresse" here: these volunteers gave no email): received 2,
        # routed 3, approved 2, assigned 2, sessions 4 + 2 + 1, closed 5.
        assert sorted(events) == sorted(
            ["CaseReceived"] * 2
            + ["CaseRouted"] * 3
            + ["CommitteeApproved"] * 2
            + ["VolunteerAssigned"] * 2
            + ["SessionHeld"] * 7
            + ["CaseClosed"] * 5
        )

        # ... each ends sent, or "sans adresse" for the volunteers who gave no email ...
        async def all_final() -> list | None:
            body = await get_json(client, f"{urls['notifications']}/cases/{case_id}/notifications")
            items = (body or {}).get("notifications", [])
            return items if all(n["status"] in ("envoye", "sans_adresse") for n in items) else None

        final = await wait_for(all_final, timeout=60, what="every notification in a final state")
        assert {n["recipient"] for n in final if n["status"] == "sans_adresse"} == {"coach", "parrain"}

        # ... and the emails sent land in the local mail sink, one .eml file per message.
        expected = {f"{n['id'].replace(':', '.')}@relais.example.eml" for n in final if n["status"] == "envoye"}

        mail_dir = stack.mailsink.mail_dir
        assert mail_dir is not None

        async def delivered() -> bool:
            return expected <= {path.name for path in mail_dir.glob("*.eml")}

        await wait_for(delivered, timeout=60, what="every email written by the mail sink")

        # A resubmission with the same key returns the same case, and nothing is routed twice.
        again = await client.post(f"{urls['intake']}/cases", json=CASE, headers={"Idempotency-Key": "e2e-flow-1"})
        assert again.status_code == 200 and again.json()["case_id"] == case_id
        routed_again = await get_json(client, f"{urls['routing']}/cases/{case_id}")
        assert routed_again is not None and len(routed_again["history"]) == 1

        for url in urls.values():
            health = await client.get(f"{url}/health")
            assert health.json() == {"status": "ok", "checks": {"kafka": True, "store": True}}
        metrics = (await client.get(f"{urls['routing']}/metrics")).text
        assert 'relais_events_handled_total{event_type="CaseReceived",result="ok"}' in metrics
        assert "faststream_received_messages_total" in metrics
