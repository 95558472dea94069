"""Volunteer applications on the real FerretDB and Kafka: the public form (urlencoded, CSRF) stores one
application, the staff API accepts it, the volunteer exists and the answer leaves through the outbox."""

from __future__ import annotations

import re
import uuid

from services.coaching.app import create_app
from services.coaching.auth import hash_password
from services.coaching.domain.applications import application_id_for
from shared.schemas import EVENTS, VolunteerApplicationDecided, decode
from tests.coaching_support import SR, coaching_settings, staff, unique_antenna
from tests.conftest import Infra, running
from tests.integration.conftest import Reader


async def test_an_application_from_the_form_is_accepted_and_the_answer_published(infra: Infra, reader: Reader) -> None:
    answers = await reader(EVENTS["VolunteerApplicationDecided"].topic)
    settings = coaching_settings(
        infra, SR, cookie_secure=False, pages_secret="test", staff_passwords={"karim": hash_password("x" * 12)}
    )
    async with running(create_app(settings)) as client:
        page = (await client.get("/benevolat")).text
        csrf = re.search(r'name="csrf" value="([^"]*)"', page)
        key = str(uuid.uuid4())
        assert csrf is not None
        form = {
            "csrf": csrf.group(1),
            "cle": key,
            "display_name": "Bérénice Aidante",
            "role": "parrain",
            "email": "berenice@example.org",
            "consent": "oui",
        }
        for _ in range(2):  # a double click: one application
            sent = await client.post("/benevolat", data=form)
            assert sent.status_code == 303, sent.text
        application_id = application_id_for(key)

        client.headers.update(staff(SR))
        [pending] = (await client.get("/volunteer-applications")).json()["applications"]
        assert pending["application_id"] == str(application_id) and pending["status"] == "en_attente"
        antenna = unique_antenna(SR, "lyon")
        accepted = await client.post(
            f"/volunteer-applications/{application_id}/acceptance", json={"antenna_id": antenna, "max_people": 2}
        )
        assert accepted.status_code == 200, accepted.text
        volunteer_id = accepted.json()["volunteer_id"]
        volunteer = (await client.get(f"/volunteers/{volunteer_id}")).json()
        assert (volunteer["antenna_id"], volunteer["email"], volunteer["free_slots"]) == (
            antenna,
            "berenice@example.org",
            2,
        )
        again = await client.post(f"/volunteer-applications/{application_id}/refusal", json={})
        assert again.status_code == 409 and again.json()["detail"] == "Cette candidature a déjà reçu une réponse."

        [record] = await answers.wait_keyed(application_id)
        event = decode(record.value, key=record.key, expected_type="VolunteerApplicationDecided")
        decided = event.payload_as(VolunteerApplicationDecided)
        assert decided.decision.value == "acceptee" and event.producer == "coaching"
