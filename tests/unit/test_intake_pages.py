"""Intake's public pages on the in-memory store: the form validates with the API's model, keeps what was
typed, shows French errors next to their field, refuses a post without its CSRF token and gives the same
case for the same idempotency key."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from services.intake.app import build_service
from services.intake.pages import page_routes
from services.intake.settings import IntakeSettings
from shared.http import RateLimiter
from shared.pages import static_files
from tests.fakes.intake import FakeCaseStore

NOW = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)


@pytest.fixture
def store() -> FakeCaseStore:
    return FakeCaseStore()


@pytest.fixture
async def client(store: FakeCaseStore) -> AsyncIterator[httpx.AsyncClient]:
    settings = IntakeSettings(pages_secret="test", cookie_secure=False)
    app = FastAPI()
    app.include_router(page_routes(build_service(settings, store=store, clock=lambda: NOW), settings, RateLimiter(0)))
    app.mount("/static", static_files(), name="static")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake") as http:
        yield http


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no hidden field {name}"
    return match.group(1)


async def open_form(client: httpx.AsyncClient, path: str = "/demande") -> dict[str, str]:
    page = await client.get(path)
    assert page.status_code == 200
    assert "Content-Security-Policy" in page.headers
    return {"csrf": hidden(page.text, "csrf"), "cle": hidden(page.text, "cle")}


def filled(**overrides: str | None) -> dict[str, str]:
    form: dict[str, str | None] = {
        "entrepreneur.first_name": "Jeanne",
        "entrepreneur.last_name": "Martin",
        "entrepreneur.email": "jeanne.martin@example.fr",
        "situation.procedure": "liquidation_judiciaire",
        "situation.court_decision_date": "2026-03-10",
        "situation.postal_code": "69003",
        "situation.commune": "Lyon",
        "situation.sector": "boulangerie",
        "consent": "oui",
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


async def test_the_form_carries_a_csrf_token_and_an_idempotency_key(client: httpx.AsyncClient) -> None:
    page = await client.get("/demande")
    assert 'lang="fr"' in page.text and "APESA" in page.text
    assert page.cookies.get("relais_csrf_intake")
    assert uuid.UUID(hidden(page.text, "cle"))


async def test_a_mistake_comes_back_in_french_next_to_its_field_with_what_was_typed(
    client: httpx.AsyncClient, store: FakeCaseStore
) -> None:
    tokens = await open_form(client)
    answer = await client.post("/demande", data={**tokens, **filled(**{"situation.postal_code": "6900"})})
    assert answer.status_code == 422
    assert "Erreur : " in answer.text and "Format invalide." in answer.text
    assert 'aria-invalid="true"' in answer.text and 'value="6900"' in answer.text
    assert 'value="Jeanne"' in answer.text and hidden(answer.text, "cle") == tokens["cle"]
    assert '<a href="#champ-situation-postal-code">Code postal de votre domicile : Format invalide.</a>' in answer.text
    assert not store.cases


async def test_a_missing_contact_and_consent_are_said_where_they_belong(client: httpx.AsyncClient) -> None:
    tokens = await open_form(client)
    answer = await client.post("/demande", data={**tokens, **filled(**{"entrepreneur.email": None, "consent": None})})
    assert answer.status_code == 422
    assert "Indiquez au moins un moyen de contact" in answer.text
    assert "Le consentement est nécessaire pour traiter la demande." in answer.text


async def test_a_valid_request_leads_to_its_confirmation_and_a_second_post_to_the_same_case(
    client: httpx.AsyncClient, store: FakeCaseStore
) -> None:
    tokens = await open_form(client)
    first = await client.post("/demande", data={**tokens, **filled()})
    again = await client.post("/demande", data={**tokens, **filled()})
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    assert len(store.cases) == 1 and len(store.outbox) == 1
    confirmation = await client.get(first.headers["location"])
    assert confirmation.status_code == 200 and "bien enregistrée" in confirmation.text
    assert "Jeanne" not in confirmation.text  # no personal data on a page anyone with the link can open


async def test_a_post_without_its_csrf_token_sends_nothing(client: httpx.AsyncClient, store: FakeCaseStore) -> None:
    tokens = await open_form(client)
    answer = await client.post("/demande", data={"cle": tokens["cle"], **filled(), "csrf": "forged"})
    assert answer.status_code == 403 and "expiré" in answer.text
    assert 'value="Jeanne"' in answer.text
    assert not store.cases


async def test_a_partner_must_say_who_they_are_and_their_referral_is_stored(
    client: httpx.AsyncClient, store: FakeCaseStore
) -> None:
    tokens = await open_form(client, "/orienter")
    answer = await client.post("/orienter", data={**tokens, **filled()})
    assert answer.status_code == 422
    assert "Type d'organisme : Ce champ est obligatoire." in html.unescape(answer.text)
    referral = {"referral.kind": "mandataire", "referral.organisation": "Étude Dupont"}
    sent = await client.post("/orienter", data={**tokens, **filled(), **referral})
    assert sent.status_code == 303
    [event] = store.outbox
    assert event.payload["referral"]["kind"] == "mandataire"


async def test_the_same_key_with_other_answers_asks_to_check_before_a_new_request(
    client: httpx.AsyncClient, store: FakeCaseStore
) -> None:
    tokens = await open_form(client)
    await client.post("/demande", data={**tokens, **filled()})
    changed = await client.post("/demande", data={**tokens, **filled(**{"situation.commune": "Villeurbanne"})})
    assert changed.status_code == 422 and "déjà été envoyée" in changed.text
    assert hidden(changed.text, "cle") != tokens["cle"]
    assert len(store.cases) == 1


async def test_the_static_files_are_served_from_here(client: httpx.AsyncClient) -> None:
    css = await client.get("/static/relais.css")
    assert css.status_code == 200 and "--bleu" in css.text


async def test_the_entrance_is_the_request_form(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert "Une porte commune pour rebondir" in page.text
    assert 'action="/demande"' in page.text and 'name="cle"' in page.text
    assert 'href="/orienter"' in page.text and 'href="/benevolat"' in page.text
