"""Coaching's staff pages on in-memory stores: sign-in with a scrypt-hashed password, a signed session cookie
bound to the association, CSRF on every form, and the case file's steps run through the API's own service
calls (the same refusals, the same audit)."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.coaching.app import build_service
from services.coaching.audit import AuditTrail
from services.coaching.auth import StaffPasswords, hash_password
from services.coaching.directory import DirectoryAntenna, DirectoryRefused
from services.coaching.domain.case_file import Decision, Stage
from services.coaching.domain.volunteers import Volunteer
from services.coaching.pages import page_routes
from services.coaching.service import CoachingService
from services.coaching.settings import CoachingSettings
from services.coaching.store import CoachingStores
from shared.auth import DEVELOPMENT_STAFF_TOKENS, FailedAttempts, hash_token
from shared.pages import static_files
from shared.schemas import Association, CaseRouted, VolunteerRole, new_envelope
from tests.fakes.coaching import FakeAntennaDirectory, fake_stores

SR, SS = Association.SOIXANTE_MILLE_REBONDS, Association.SECOND_SOUFFLE
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TODAY = NOW.date()
LYON = "60000_rebonds-lyon"
PASSWORD = "mot-de-passe-de-test"


def settings_of(association: Association) -> CoachingSettings:
    return CoachingSettings(
        association=association,
        staff_passwords={"karim": hash_password(PASSWORD)},
        pages_secret="one-secret-for-both",  # the same secret: only the scope keeps the cookies apart
        cookie_secure=False,
    )


@pytest.fixture
def stores() -> CoachingStores:
    return fake_stores()


@pytest.fixture
def service(stores: CoachingStores) -> CoachingService:
    return build_service(settings_of(SR), stores=stores, clock=lambda: NOW)


def app_of(service: CoachingService, stores: CoachingStores, association: Association) -> FastAPI:
    settings = settings_of(association)
    audit = AuditTrail(stores.audit, association, lambda: NOW)
    app = FastAPI()
    app.include_router(
        page_routes(
            service, StaffPasswords(settings.staff_passwords, settings.association, FailedAttempts()), audit, settings
        )
    )
    app.mount("/static", static_files(), name="static")
    return app


@pytest.fixture
async def client(service: CoachingService, stores: CoachingStores) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_of(service, stores, SR))
    async with httpx.AsyncClient(transport=transport, base_url="http://coaching") as http:
        yield http


async def a_case(service: CoachingService) -> uuid.UUID:
    case_id = uuid.uuid4()
    routed = CaseRouted(
        association=SR,
        rule="procedure:liquidation_judiciaire",
        reasons=["Liquidation judiciaire : 60 000 rebonds accompagne après la liquidation."],
        routed_at=NOW - timedelta(hours=1),
        received_at=NOW - timedelta(days=20),
        antenna_id=LYON,
        sector="commerce",
    )
    envelope = new_envelope(routed, case_id=case_id, producer="routing")
    await service.case_routed(case_id, routed, envelope.correlation_id)
    return case_id


def csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]*)"', page)
    assert match
    return match.group(1)


async def signed_in(client: httpx.AsyncClient) -> str:
    page = await client.get("/espace/connexion")
    answer = await client.post(
        "/espace/connexion", data={"csrf": csrf(page.text), "user": "karim", "password": PASSWORD, "suite": ""}
    )
    assert answer.status_code == 303, answer.text
    return csrf((await client.get("/espace/dossiers")).text)


async def test_the_space_asks_to_sign_in_and_refuses_a_wrong_password(client: httpx.AsyncClient, stores) -> None:
    answer = await client.get("/espace/dossiers?antenne=x")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/espace/connexion?suite=%2Fespace%2Fdossiers%3Fantenne%3Dx"
    page = await client.get("/espace/connexion")
    wrong = await client.post(
        "/espace/connexion", data={"csrf": csrf(page.text), "user": "karim", "password": "mauvais"}
    )
    assert wrong.status_code == 401 and "Identifiant ou mot de passe incorrect." in wrong.text
    assert "relais_session_60000_rebonds" not in wrong.cookies
    assert [(e.who, e.action, e.outcome) for e in stores.audit.entries] == [
        ("anonyme", "session.login", "non_authentifie")
    ]


async def test_a_session_cookie_is_httponly_samesite_and_named_for_the_association(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/espace/connexion")
    answer = await client.post(
        "/espace/connexion", data={"csrf": csrf(page.text), "user": "karim", "password": PASSWORD}
    )
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("relais_session_60000_rebonds=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=28800" in cookie
    assert answer.headers["location"] == "/espace/dossiers"


async def test_the_other_associations_instance_refuses_this_session(service, stores, client) -> None:
    await signed_in(client)
    other = httpx.AsyncClient(transport=httpx.ASGITransport(app=app_of(service, stores, SS)), base_url="http://ss")
    async with other:
        cookie = client.cookies.get("relais_session_60000_rebonds")
        other.cookies.set("relais_session_second_souffle", cookie)  # the same signed value, under its name
        assert (await other.get("/espace/dossiers")).status_code == 303


async def test_the_list_marks_overdue_cases_and_filters_by_step(client, service) -> None:
    case_id = await a_case(service)
    await signed_in(client)
    page = await client.get("/espace/dossiers")
    assert str(case_id) in page.text and "En retard : comité, 20 j" in page.text
    filtered = await client.get("/espace/dossiers?etape=coaching")
    assert str(case_id) not in filtered.text


async def test_a_case_goes_through_committee_coach_session_and_closing(client, service, stores) -> None:
    case_id = await a_case(service)
    await stores.volunteers.add(
        Volunteer("coach-1", "Anne Coach", VolunteerRole.COACH, LYON, ["commerce"], 3, TODAY + timedelta(days=300))
    )
    token = await signed_in(client)
    url = f"/espace/dossiers/{case_id}"
    page = await client.get(url)
    assert "Liquidation judiciaire : 60 000 rebonds accompagne" in html.unescape(page.text)
    assert "Coordonnées de la personne : à venir." in html.unescape(page.text)

    refused = await client.post(f"{url}/comite", data={"csrf": token, "decision": "refuse"})
    assert refused.status_code == 422
    assert "Indiquez au moins un motif pour un refus ou un ajournement." in html.unescape(refused.text)

    for action, form in (
        ("comite-date", {"scheduled_on": str(TODAY)}),
        ("comite", {"decision": "approuve", "reasons": "Démarche sincère"}),
        ("attribution", {"role": "coach", "volunteer_id": "coach-1"}),
        (
            "seance",
            {
                "kind": "coaching",
                "duration_minutes": "60",
                "attended": "oui",
                "next_session_at": "2026-03-09T14:00",
                "next_session_place": "Visioconférence",
            },
        ),
    ):
        done = await client.post(f"{url}/{action}", data={"csrf": token, **form})
        assert done.status_code == 303, (action, done.text)
        assert done.headers["location"].startswith(f"{url}?fait={action}")
    page = await client.get(f"{url}?fait=seance")
    text = html.unescape(page.text)
    assert "Séance enregistrée." in text and "Anne Coach" in text
    assert "Prochain rendez-vous : 9 mars 2026 à 14 h 00, Visioconférence." in text

    twice = await client.post(f"{url}/attribution", data={"csrf": token, "role": "coach", "volunteer_id": "coach-1"})
    assert twice.status_code == 409 and "Ce coach suit déjà ce dossier." in html.unescape(twice.text)

    closed = await client.post(f"{url}/cloture", data={"csrf": token, "outcome": "emploi_salarie"})
    assert closed.status_code == 303
    assert (await service.case(case_id)).stage is Stage.CLOSED
    actions = [e.action for e in stores.audit.entries if e.case_id == str(case_id) and e.outcome == "ok"]
    assert {"case.committee_date", "case.committee_decision", "case.assign", "case.session", "case.closing"} <= set(
        actions
    )
    emitted = [e.event_type for e in stores.cases.events]
    assert emitted == ["CommitteeApproved", "VolunteerAssigned", "SessionHeld", "CaseClosed"]


async def test_a_step_without_its_csrf_token_changes_nothing(client, service) -> None:
    case_id = await a_case(service)
    await signed_in(client)
    answer = await client.post(f"/espace/dossiers/{case_id}/comite-date", data={"scheduled_on": str(TODAY)})
    assert answer.status_code == 403 and "expiré" in answer.text
    assert (await service.case(case_id)).committee_on is None


async def test_an_unknown_case_is_not_found(client) -> None:
    await signed_in(client)
    assert (await client.get(f"/espace/dossiers/{uuid.uuid4()}")).status_code == 404
    assert (await client.get("/espace/dossiers/pas-un-uuid")).status_code == 404


async def test_signing_out_ends_the_session(client) -> None:
    token = await signed_in(client)
    out = await client.post("/espace/deconnexion", data={"csrf": token})
    assert out.status_code == 303 and "relais_session_60000_rebonds=" in out.headers["set-cookie"]
    assert (await client.get("/espace/dossiers")).status_code == 303


def lyon_antenna(association: Association = SR, antenna_id: str = LYON) -> DirectoryAntenna:
    return DirectoryAntenna(
        id=antenna_id,
        association=association,
        name="60 000 rebonds Lyon",
        status="ouverte",
        contact="lyon@60000rebonds.example",
    )


def app_with(service: CoachingService, stores: CoachingStores, directory: FakeAntennaDirectory) -> FastAPI:
    settings = settings_of(SR)
    app = FastAPI()
    app.include_router(
        page_routes(
            service,
            StaffPasswords(settings.staff_passwords, settings.association, FailedAttempts()),
            AuditTrail(stores.audit, SR, lambda: NOW),
            settings,
            directory=directory,
        )
    )
    return app


@pytest.fixture
def directory() -> FakeAntennaDirectory:
    return FakeAntennaDirectory(SR, [lyon_antenna()])


@pytest.fixture
async def staff_client(service, stores, directory) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_with(service, stores, directory))
    async with httpx.AsyncClient(transport=transport, base_url="http://coaching") as http:
        yield http


def antenna_audit(stores: Any) -> list[tuple[str, str, str | None]]:
    return [(e.who, e.outcome, e.antenna_id) for e in stores.audit.entries if e.action == "antenna.update"]


async def test_staff_edit_an_antenna_of_the_directory(staff_client, directory, stores) -> None:
    token = await signed_in(staff_client)
    page = html.unescape((await staff_client.get("/espace/antennes")).text)
    assert f'action="/espace/antennes/{LYON}"' in page and 'value="lyon@60000rebonds.example"' in page
    form = {"csrf": token, "name": "60 000 rebonds Lyon", "contact": "accueil-lyon@60000rebonds.example"}
    answer = await staff_client.post(f"/espace/antennes/{LYON}", data={**form, "status": "en_ouverture"})
    assert answer.status_code == 303 and answer.headers["location"] == f"/espace/antennes?fait={LYON}"
    assert directory.updates == [
        (
            LYON,
            {"name": "60 000 rebonds Lyon", "contact": "accueil-lyon@60000rebonds.example", "status": "en_ouverture"},
        )
    ]
    page = html.unescape((await staff_client.get(answer.headers["location"])).text)
    assert "Antenne « 60 000 rebonds Lyon » modifiée" in page and "accueil-lyon@60000rebonds.example" in page
    assert antenna_audit(stores) == [("karim", "ok", LYON)]


async def test_routings_refusal_is_shown_next_to_its_field_with_what_was_typed(staff_client, directory, stores) -> None:
    token = await signed_in(staff_client)
    directory.refuse_next = DirectoryRefused(
        422, "Certaines informations sont invalides ou manquantes.", {"contact": "Contact refusé par le routage."}
    )
    form = {"csrf": token, "name": "Lyon centre", "contact": "quelque chose", "status": "ouverte"}
    answer = await staff_client.post(f"/espace/antennes/{LYON}", data=form)
    page = html.unescape(answer.text)
    assert answer.status_code == 422 and "<title>Erreur : " in page
    field = f"antenne-{LYON}-champ-contact"
    assert (
        f'<p class="erreur" id="{field}-erreur"><span class="sr">Erreur : </span>Contact refusé par le routage.' in page
    )
    assert 'value="quelque chose"' in page and 'value="Lyon centre"' in page
    assert f'href="#{field}"' in page  # the summary links to the field
    assert directory.updates == [] and antenna_audit(stores) == [("karim", "refuse", LYON)]

    # The page's own check (routing's rules) before anything is sent: a cleared contact.
    blank = await staff_client.post(f"/espace/antennes/{LYON}", data={**form, "contact": " "})
    assert blank.status_code == 422 and f'id="{field}-erreur"' in blank.text and directory.updates == []


async def test_routings_404_and_403_are_said_in_french(staff_client, directory, stores) -> None:
    token = await signed_in(staff_client)
    form = {"csrf": token, "name": "Lyon", "contact": "lyon@60000rebonds.example", "status": "ouverte"}
    directory.refuse_next = DirectoryRefused(404, "Antenne introuvable dans l'annuaire du routage.")
    gone = await staff_client.post(f"/espace/antennes/{LYON}", data=form)
    assert gone.status_code == 404 and "Antenne introuvable dans l'annuaire du routage." in html.unescape(gone.text)
    other = await staff_client.post("/espace/antennes/second_souffle-paris", data=form)
    assert other.status_code == 404 and directory.updates == []  # never sent with this association's token
    directory.down = True
    down = await staff_client.post(f"/espace/antennes/{LYON}", data=form)
    assert down.status_code == 503 and "ne répond pas" in html.unescape(down.text)
    assert [o for _, o, _ in antenna_audit(stores)] == ["introuvable", "indisponible"]


async def test_an_antenna_edit_without_its_csrf_token_changes_nothing(staff_client, directory, stores) -> None:
    await signed_in(staff_client)
    form = {"name": "Lyon", "contact": "pirate@example.org", "status": "fermee"}
    answer = await staff_client.post(f"/espace/antennes/{LYON}", data=form)
    assert answer.status_code == 403 and "expiré" in answer.text and 'value="pirate@example.org"' in answer.text
    assert directory.updates == [] and antenna_audit(stores) == []
    assert directory.found[LYON].contact == "lyon@60000rebonds.example"


async def test_without_a_routing_token_the_antennas_page_says_so(service, stores) -> None:
    unconfigured = FakeAntennaDirectory(SR, [lyon_antenna()], configured=False)
    transport = httpx.ASGITransport(app=app_with(service, stores, unconfigured))
    async with httpx.AsyncClient(transport=transport, base_url="http://coaching") as client:
        await signed_in(client)
        page = await client.get("/espace/antennes")
        assert page.status_code == 200 and "n'est pas configuré" in html.unescape(page.text)
        assert '<form class="formulaire"' not in page.text


def test_the_routing_token_is_a_secret_read_from_its_file(tmp_path) -> None:
    secret = tmp_path / "routing.token"
    secret.write_text("un-jeton-du-personnel\n")
    settings = CoachingSettings(association=SR, routing_token_file=str(secret))
    assert settings.routing_bearer() == "un-jeton-du-personnel"
    assert "un-jeton" not in repr(CoachingSettings(association=SR, routing_token="un-jeton-du-personnel"))
    assert CoachingSettings(association=SR).routing_bearer() is None
    assert CoachingSettings(association=SR, routing_token_file=str(tmp_path / "absent")).routing_bearer() is None
    public = CoachingSettings(association=SR, routing_token="dev-60000-rebonds-karim")
    assert public.insecure_defaults() == ["routing_token: a development token"]


async def test_the_coordination_pages_show_the_services_figures(service, stores) -> None:
    case_id = await a_case(service)
    await service.decide_committee(case_id, Decision.APPROVED, [], "karim", decided_on=TODAY)
    await stores.volunteers.add(
        Volunteer("coach-1", "Anne Coach", VolunteerRole.COACH, LYON, ["commerce"], 1, TODAY - timedelta(days=1))
    )
    app = app_with(service, stores, FakeAntennaDirectory(SR, [lyon_antenna()]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://coaching") as client:
        await signed_in(client)
        board = html.unescape((await client.get("/espace/tableau-de-bord")).text)
        assert "Dossiers ouverts par antenne et par étape" in board and "<svg" in board
        assert "Lyon : 1 (En attente d'un coach 1)" in board  # the chart's text description
        volunteers = html.unescape((await client.get("/espace/benevoles")).text)
        assert "Anne Coach" in volunteers and "La certification de ce coach a expiré le 01/03/2026." in volunteers
        waiting = html.unescape((await client.get("/espace/file-attente?role=coach")).text)
        assert str(case_id) in waiting and "Bloqué" in waiting
        antennas = html.unescape((await client.get("/espace/antennes")).text)
        assert "lyon@60000rebonds.example" in antennas and "Modifier une antenne" in antennas
        coverage = await client.get("/espace/couverture")
        assert coverage.status_code == 200
        assert (await client.get("/espace/couverture.png")).status_code in (200, 404)


def test_make_run_gives_each_instance_its_associations_development_token_for_routing(tmp_path) -> None:
    from ops.stack import COACHING, Stack, StackConfig

    stack = Stack(StackConfig(data_dir=tmp_path, service_ports={**StackConfig().service_ports, "routing": 18002}))
    for name, association in COACHING.items():
        env = stack.services[name].env
        settings = CoachingSettings(
            association=association, routing_token=env["RELAIS_COACHING_ROUTING_TOKEN"], development=True
        )
        token = settings.routing_bearer()
        assert token is not None and hash_token(token) in DEVELOPMENT_STAFF_TOKENS[Association(association)].values()
        assert env["RELAIS_COACHING_ROUTING_URL"] == "http://127.0.0.1:18002"


async def test_the_root_is_the_staff_sign_in_then_the_space(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert 'action="/espace/connexion"' in page.text and 'href="/benevolat"' in page.text
    await signed_in(client)
    answer = await client.get("/", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].endswith("/espace/dossiers")
