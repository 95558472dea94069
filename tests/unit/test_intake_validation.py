"""Intake refuses bad requests with French messages naming the field, before the store is touched.

The app runs without its lifespan: no Kafka, no database. A request that got past validation would try
the store and fail, so a clean 4xx here also shows that a bad request changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import a_case
from tests.unit.conftest import INTAKE_MAX_BYTES

SUMMARY = "Certaines informations sont invalides ou manquantes."
TOO_BIG = f"Requête trop volumineuse : {INTAKE_MAX_BYTES} octets au plus."


def without(case: dict[str, Any], *path: str) -> dict[str, Any]:
    case = json.loads(json.dumps(case))
    node = case
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return case


def changed(path: str, value: Any) -> dict[str, Any]:
    case = a_case()
    *parents, last = path.split(".")
    node = case
    for part in parents:
        node = node[part]
    node[last] = value
    return case


TOMORROW = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()

INVALID = {
    "consent missing": (without(a_case(), "consent"), "consent", "Ce champ est obligatoire."),
    "consent refused": (a_case(consent=False), "consent", "Le consentement est nécessaire pour traiter la demande."),
    "situation missing": (without(a_case(), "situation"), "situation", "Ce champ est obligatoire."),
    "first name missing": (
        without(a_case(), "entrepreneur", "first_name"),
        "entrepreneur.first_name",
        "Ce champ est obligatoire.",
    ),
    "empty last name": (
        changed("entrepreneur.last_name", "  "),
        "entrepreneur.last_name",
        "Trop court : au moins 1 caractère(s).",
    ),
    "bad email": (changed("entrepreneur.email", "jeanne.martin-at-example"), "entrepreneur.email", "Format invalide."),
    "no contact": (
        changed("entrepreneur", {"first_name": "Jeanne", "last_name": "Martin"}),
        "entrepreneur",
        "Indiquez au moins un moyen de contact : adresse e-mail ou téléphone.",
    ),
    "bad SIREN": (
        changed("company.siren", "732829321"),
        "company.siren",
        "SIREN invalide : 9 chiffres avec une clé de contrôle correcte.",
    ),
    "bad postal code": (changed("situation.postal_code", "6900"), "situation.postal_code", "Format invalide."),
    "court date in the future": (
        changed("situation.court_decision_date", TOMORROW),
        "situation.court_decision_date",
        "La date de la décision du tribunal ne peut pas être dans le futur.",
    ),
    "court date not a date": (
        changed("situation.court_decision_date", "10/03/2025"),
        "situation.court_decision_date",
        "Date invalide : le format attendu est AAAA-MM-JJ.",
    ),
    "partner without organisation": (
        changed("referral", {"kind": "banque"}),
        "referral",
        "Indiquez l'organisme qui oriente la personne.",
    ),
    "unknown referrer": (changed("referral.kind", "voisin"), "referral.kind", None),
    "unknown field": (a_case(nickname="Jeannot"), "nickname", "Champ inconnu."),
    "message too long": (a_case(message="x" * 4001), "message", "Trop long : au plus 4000 caractères."),
    "consent not a boolean": (
        a_case(consent="peut-être"),
        "consent",
        "Une valeur booléenne (true ou false) est attendue.",
    ),
    "not an object": ([a_case()], "body", "Un objet JSON est attendu."),
}


@pytest.mark.parametrize("body, field, message", INVALID.values(), ids=INVALID)
async def test_invalid_field_gets_a_french_message_naming_it(
    intake_client: httpx.AsyncClient, body: Any, field: str, message: str | None
) -> None:
    response = await intake_client.post("/cases", json=body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["detail"] == SUMMARY
    errors = {e["field"]: e["message"] for e in problem["errors"]}
    assert field in errors, problem
    if message is not None:
        assert errors[field] == message


async def test_unknown_procedure_lists_the_allowed_values_in_french(intake_client: httpx.AsyncClient) -> None:
    response = await intake_client.post("/cases", json=changed("situation.procedure", "faillite"))
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "situation.procedure"
    assert error["message"] == (
        "Valeur inconnue. Valeurs possibles : 'aucune', 'mandat_ad_hoc', 'conciliation', 'sauvegarde', "
        "'redressement_judiciaire', 'liquidation_judiciaire', 'cession_a_la_barre' ou 'retablissement_professionnel'."
    )


async def test_every_invalid_field_is_reported_at_once(intake_client: httpx.AsyncClient) -> None:
    body = changed("situation.postal_code", "6900")
    body["entrepreneur"]["email"] = "nope"
    body["consent"] = False
    response = await intake_client.post("/cases", json=body)
    assert {e["field"] for e in response.json()["errors"]} == {"situation.postal_code", "entrepreneur.email", "consent"}


async def test_errors_do_not_echo_what_was_submitted(intake_client: httpx.AsyncClient) -> None:
    body = changed("entrepreneur.email", "zephyrine.secret-at-example")
    body["company"]["siren"] = "123456789"
    response = await intake_client.post("/cases", json=body)
    assert response.status_code == 422
    assert "zephyrine" not in response.text and "123456789" not in response.text


async def test_malformed_json_is_refused(intake_client: httpx.AsyncClient) -> None:
    response = await intake_client.post(
        "/cases", content=b'{"situation": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "body", "message": "Le corps de la requête n'est pas un JSON valide.", "type": "json_invalid"}
    ]


async def test_idempotency_key_too_long(intake_client: httpx.AsyncClient) -> None:
    response = await intake_client.post("/cases", json=a_case(), headers={"Idempotency-Key": "k" * 201})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "idempotency-key"
    assert response.json()["errors"][0]["message"] == "Trop long : au plus 200 caractères."


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_non_json_body_is_refused_with_415(intake_client: httpx.AsyncClient, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await intake_client.post("/cases", content=json.dumps(a_case()).encode(), headers=headers)
    assert response.status_code == 415
    assert response.json() == {"detail": "Le corps de la requête doit être du JSON (Content-Type: application/json)."}


async def test_json_with_charset_is_accepted_as_json(intake_client: httpx.AsyncClient) -> None:
    response = await intake_client.post(
        "/cases",
        content=json.dumps(a_case(consent=False)).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 422  # got past the guard to validation


def oversize() -> bytes:
    return json.dumps(a_case(message="x" * INTAKE_MAX_BYTES)).encode()


async def test_oversize_body_with_content_length_is_refused_with_413(intake_client: httpx.AsyncClient) -> None:
    response = await intake_client.post("/cases", content=oversize(), headers={"Content-Type": "application/json"})
    assert response.request.headers["content-length"] == str(len(oversize()))
    assert response.status_code == 413
    assert response.json() == {"detail": TOO_BIG}


async def chunks(body: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_oversize_chunked_body_is_refused_with_413(intake_client: httpx.AsyncClient) -> None:
    response = await intake_client.post(
        "/cases", content=chunks(oversize()), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413
    assert response.json() == {"detail": TOO_BIG}


async def test_small_chunked_body_reaches_validation(intake_client: httpx.AsyncClient) -> None:
    body = json.dumps(a_case(consent=False)).encode()
    response = await intake_client.post(
        "/cases", content=chunks(body, 100), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "consent"


async def test_invalid_case_id_is_refused(intake_client: httpx.AsyncClient) -> None:
    response = await intake_client.get("/cases/not-a-uuid", headers={"Authorization": "Bearer partner-token"})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "case_id", "message": "Identifiant invalide (UUID attendu).", "type": "uuid_parsing"}
    ]


async def test_unknown_address_and_method_are_french(intake_client: httpx.AsyncClient) -> None:
    missing = await intake_client.get("/nowhere")
    assert (missing.status_code, missing.json()) == (404, {"detail": "Ressource introuvable."})
    wrong = await intake_client.delete("/cases")
    assert (wrong.status_code, wrong.json()) == (405, {"detail": "Méthode non autorisée pour cette adresse."})
