"""Volunteer applications on in-memory stores: one application per form, staff accept (the applicant becomes a
volunteer) or decline, and either answer leaves as one VolunteerApplicationDecided; through the service and
through the public and staff pages."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.coaching.app import build_service
from services.coaching.audit import AuditTrail
from services.coaching.auth import StaffPasswords, hash_password
from services.coaching.domain.applications import Application, ApplicationStatus, application_id_for
from services.coaching.domain.case_file import TransitionRefused
from services.coaching.domain.volunteers import Volunteer
from services.coaching.pages import page_routes
from services.coaching.service import ApplicationKeyReused, CoachingService
from services.coaching.settings import CoachingSettings
from services.coaching.store import CoachingStores
from shared.auth import FailedAttempts
from shared.schemas import Association, VolunteerApplicationDecided, VolunteerRole
from tests.fakes.coaching import fake_stores

SR = Association.SOIXANTE_MILLE_REBONDS
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LYON = "60000_rebonds-lyon"
SETTINGS = CoachingSettings(
    association=SR, staff_passwords={"karim": hash_password("mot-de-passe")}, pages_secret="s", cookie_secure=False
)


@pytest.fixture
def stores() -> CoachingStores:
    return fake_stores()


@pytest.fixture
def service(stores: CoachingStores) -> CoachingService:
    return build_service(SETTINGS, stores=stores, clock=lambda: NOW)


def application(key: str = "form-1", **fields: Any) -> Application:
    values = {
        "display_name": "Bérénice Aidante",
        "email": "berenice@example.org",
        "role": VolunteerRole.SPONSOR,
        "sectors": ["commerce"],
        "city": "Lyon",
        **fields,
    }
    return Application(application_id=application_id_for(key), received_at=NOW, **values)


def decided(stores: CoachingStores) -> list[VolunteerApplicationDecided]:
    return [e.payload_as(VolunteerApplicationDecided) for e in stores.applications.events]  # type: ignore[attr-defined]


async def test_the_same_form_sent_twice_is_one_application(service: CoachingService, stores) -> None:
    first, created = await service.apply(application())
    again, created_again = await service.apply(application())
    assert created and not created_again and again.application_id == first.application_id
    assert len(await service.find_applications(ApplicationStatus.PENDING)) == 1
    with pytest.raises(ApplicationKeyReused):
        await service.apply(application(city="Grenoble"))


async def test_an_accepted_applicant_becomes_a_volunteer_and_is_told(service: CoachingService, stores) -> None:
    pending, _ = await service.apply(application())
    accepted = await service.accept_application(
        pending.application_id, "karim", antenna_id=LYON, sectors=["commerce"], max_people=2
    )
    assert (accepted.status, accepted.decided_by, accepted.decided_on) == (
        ApplicationStatus.ACCEPTED,
        "karim",
        NOW.date(),
    )
    volunteer = await service.volunteer(accepted.volunteer_key)
    assert (volunteer.volunteer.antenna_id, volunteer.volunteer.email, volunteer.free_slots) == (
        LYON,
        "berenice@example.org",
        2,
    )
    [event] = stores.applications.events
    assert event.case_id == pending.application_id and event.producer == "coaching"
    [answer] = decided(stores)
    assert (answer.decision, answer.antenna_id, answer.volunteer_id) == ("acceptee", LYON, accepted.volunteer_key)
    with pytest.raises(TransitionRefused, match="déjà reçu une réponse"):
        await service.decline_application(pending.application_id, "karim")
    assert len(stores.applications.events) == 1


async def test_a_retried_acceptance_finds_the_volunteer_stored_before_a_crash(service, stores) -> None:
    pending, _ = await service.apply(application(role=VolunteerRole.COACH))
    # The first attempt stored the volunteer, then the process died before answering the application.
    await stores.volunteers.add(
        Volunteer(pending.volunteer_key, "Bérénice Aidante", VolunteerRole.COACH, LYON, [], 2, date(2027, 1, 1))
    )
    accepted = await service.accept_application(
        pending.application_id, "karim", antenna_id=LYON, sectors=[], max_people=2, certified_until=date(2027, 1, 1)
    )
    assert accepted.status is ApplicationStatus.ACCEPTED and len(decided(stores)) == 1


async def test_a_declined_applicant_is_told_and_stays_no_volunteer(service: CoachingService, stores) -> None:
    pending, _ = await service.apply(application())
    await service.decline_application(pending.application_id, "karim")
    [answer] = decided(stores)
    assert answer.decision == "refusee" and answer.antenna_id is None
    assert await service.list_volunteers() == []


# --- the pages ---------------------------------------------------------------------------------------------------


@pytest.fixture
async def client(service: CoachingService, stores: CoachingStores) -> AsyncIterator[httpx.AsyncClient]:
    audit = AuditTrail(stores.audit, SR, lambda: NOW)
    app = FastAPI()
    app.include_router(
        page_routes(
            service, StaffPasswords(SETTINGS.staff_passwords, SETTINGS.association, FailedAttempts()), audit, SETTINGS
        )
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://coaching") as http:
        yield http


def field(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match
    return match.group(1)


async def test_someone_applies_on_the_public_form_and_staff_accept(client: httpx.AsyncClient, service) -> None:
    page = (await client.get("/benevolat")).text
    form = {
        "csrf": field(page, "csrf"),
        "cle": field(page, "cle"),
        "display_name": "Bérénice Aidante",
        "email": "pas-une-adresse",
        "role": "parrain",
        "sectors": "commerce, bâtiment",
    }
    wrong = await client.post("/benevolat", data=form)
    assert wrong.status_code == 422
    text = html.unescape(wrong.text)
    assert "Adresse e-mail : Adresse e-mail invalide." in text
    assert "Votre accord est nécessaire pour étudier votre candidature." in text
    sent = await client.post("/benevolat", data={**form, "email": "berenice@example.org", "consent": "oui"})
    assert sent.status_code == 303 and sent.headers["location"] == "/benevolat/merci"
    [pending] = await service.find_applications(ApplicationStatus.PENDING)
    assert pending.sectors == ["commerce", "bâtiment"]

    sign_in = (await client.get("/espace/connexion")).text
    await client.post(
        "/espace/connexion", data={"csrf": field(sign_in, "csrf"), "user": "karim", "password": "mot-de-passe"}
    )
    listing = await client.get("/espace/candidatures")
    assert "Bérénice Aidante — parrain ou marraine" in html.unescape(listing.text)
    url = f"/espace/candidatures/{pending.application_id}/accepter"
    token = field(listing.text, "csrf")
    other = await client.post(url, data={"csrf": token, "antenna_id": "second_souffle-lyon", "max_people": "2"})
    assert other.status_code == 422 and "n'est pas une antenne de 60000_rebonds" in html.unescape(other.text)
    done = await client.post(url, data={"csrf": token, "antenna_id": LYON, "max_people": "2", "sectors": "commerce"})
    assert done.status_code == 303
    assert (await service.application(pending.application_id)).status is ApplicationStatus.ACCEPTED
    unknown = await client.post(f"/espace/candidatures/{uuid.uuid4()}/refuser", data={"csrf": token})
    assert unknown.status_code == 404 and "Candidature introuvable." in unknown.text
