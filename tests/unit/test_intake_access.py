"""Intake's door: public and rate limited, a partner's token names its referrals, a reference that could
identify the person is refused, and the event carries only what its readers need. On fakes, no lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.intake.app import create_app
from services.intake.domain import reference_is_safe
from services.intake.settings import IntakeSettings
from shared.auth import hash_token
from shared.schemas import CaseReceived
from shared.schemas.events import PersonalDetails
from tests.conftest import a_case
from tests.fakes.intake import FakeCaseStore, FakePartnerCredentials

PARTNER = {"Authorization": "Bearer token-etude-martin"}
OTHER_PARTNER = {"Authorization": "Bearer token-cci-lyon"}


@pytest.fixture
def store() -> FakeCaseStore:
    return FakeCaseStore()


@pytest.fixture
async def client(store: FakeCaseStore) -> AsyncIterator[httpx.AsyncClient]:
    partners = FakePartnerCredentials()
    await partners.add("etude-martin", hash_token("token-etude-martin"))
    await partners.add("cci-lyon", hash_token("token-cci-lyon"))
    nowhere = IntakeSettings(
        mongo_url="mongodb://127.0.0.1:9/",
        kafka_bootstrap="127.0.0.1:9",
        submissions_per_minute=3,
        partner_submissions_per_minute=5,
    )
    app = create_app(nowhere, store=store, partners=partners)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake") as http:
        yield http


def received(store: FakeCaseStore) -> CaseReceived:
    return store.outbox[-1].payload_as(CaseReceived)


async def test_a_partner_token_is_how_a_referral_carries_the_partner(
    client: httpx.AsyncClient, store: FakeCaseStore
) -> None:
    by_partner = await client.post("/cases", json=a_case(), headers=PARTNER)
    assert by_partner.status_code == 201
    assert received(store).referral.partner == "etude-martin"
    public = await client.post("/cases", json=a_case())
    assert public.status_code == 201 and received(store).referral.partner is None
    # The request cannot name a partner itself: the field is unknown to the request model.
    forged = a_case(referral={"kind": "mandataire", "organisation": "X", "partner": "etude-martin"})
    assert (await client.post("/cases", json=forged)).status_code == 422


async def test_an_unknown_partner_token_is_refused_not_taken_as_public(
    client: httpx.AsyncClient, store: FakeCaseStore
) -> None:
    response = await client.post("/cases", json=a_case(), headers={"Authorization": "Bearer guessed"})
    assert response.status_code == 401 and store.outbox == []


async def test_a_partner_gives_its_own_reference(client: httpx.AsyncClient) -> None:
    case = a_case(referral={"kind": "mandataire", "organisation": "Étude Martin"})
    response = await client.post("/cases", json=case, headers=PARTNER)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "referral.partner_reference",
            "type": "value_error",
            "message": "Indiquez votre référence de dossier.",
        }
    ]


async def test_only_the_referring_partner_reads_the_case_and_never_the_declared_distress(
    client: httpx.AsyncClient,
) -> None:
    case = a_case()
    case["situation"] |= {"acute_distress": True, "apesa_consent": True}
    case_id = (await client.post("/cases", json=case, headers=PARTNER)).json()["case_id"]
    view = await client.get(f"/cases/{case_id}", headers=PARTNER)
    assert view.status_code == 200
    assert view.json()["situation"]["acute_distress"] is None and view.json()["situation"]["apesa_consent"] is None
    assert (await client.get(f"/cases/{case_id}", headers=OTHER_PARTNER)).status_code == 404
    assert (await client.get(f"/cases/{case_id}")).status_code == 401
    public_id = (await client.post("/cases", json=a_case())).json()["case_id"]
    assert (await client.get(f"/cases/{public_id}", headers=PARTNER)).status_code == 404


async def test_the_public_route_is_rate_limited_per_client_in_french(client: httpx.AsyncClient) -> None:
    statuses = [(await client.post("/cases", json=a_case())).status_code for _ in range(3)]
    refused = await client.post("/cases", json=a_case())
    assert statuses == [201] * 3 and refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert refused.json()["detail"].startswith("Trop de demandes envoyées en peu de temps")
    # A partner has its own allowance, counted per partner.
    assert (await client.post("/cases", json=a_case(), headers=PARTNER)).status_code == 201


@pytest.mark.parametrize(
    "path,value",
    [
        (("entrepreneur", "first_name"), "Jeanne\x00"),
        (("entrepreneur", "last_name"), "Martin\nBcc: x@example.org"),
        (("company", "name"), "Boulangerie\u202eniraM"),
        (("referral", "organisation"), "Étude\tDupont"),
        (("situation", "commune"), "Ly\ron"),
    ],
)
async def test_control_characters_in_single_line_fields_get_a_french_422(
    client: httpx.AsyncClient, path: tuple[str, str], value: str
) -> None:
    case = a_case()
    case[path[0]] = {**case[path[0]], path[1]: value}
    response = await client.post("/cases", json=case)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == ".".join(path) and error["message"].startswith("Caractère de contrôle")


async def test_the_message_keeps_its_line_breaks(client: httpx.AsyncClient, store: FakeCaseStore) -> None:
    response = await client.post("/cases", json=a_case(message="Bonjour,\n\nJe cherche à rebondir."))
    assert response.status_code == 201


@pytest.mark.parametrize(
    "reference",
    ["MARTIN-2026", "dossier jeanne", "RG 24/01234", "2024J00123", "boulangerie martin", "732829320-A", "0612345678"],
)
async def test_a_reference_that_could_identify_the_person_is_refused(client: httpx.AsyncClient, reference: str) -> None:
    case = a_case(referral={"kind": "mandataire", "organisation": "Étude Dupont", "partner_reference": reference})
    response = await client.post("/cases", json=case)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "referral" and "numéro de procédure" in error["message"]


async def test_the_event_carries_how_to_reach_the_person_and_nothing_else(
    client: httpx.AsyncClient, store: FakeCaseStore
) -> None:
    response = await client.post("/cases", json=a_case())
    personal = received(store).personal
    assert (personal.first_name, personal.email) == ("Jeanne", "jeanne.martin@example.fr")
    assert (personal.company_name, personal.siren, personal.message) == (None, None, None)
    kept = store.personal[next(iter(store.cases))]
    assert kept.message == "Je cherche à rebondir après la liquidation." and kept.siren == "732829320"
    assert response.status_code == 201


def test_the_reference_rule_sees_through_case_accents_and_separators() -> None:
    person = PersonalDetails(
        first_name="Éloïse", last_name="Zébulon", email="e.z@x.fr", phone="06 98 76 54 32", siren="732 829 320"
    )
    for reference in (
        "ZEBULON-42",
        "dossier eloise",
        "RG 0698765432",
        "732829320/2026",
        "x-E.Z@X.FR",
        "N° RG 24/01234",
        "PCL 2024 0123",
        "Portalis B7F-X",
    ):
        assert not reference_is_safe(reference, person), reference
    for reference in ("LJ-2026-0427", "LJ-2026-042", "MJ/2026/17", "dossier 4521"):
        assert reference_is_safe(reference, person), reference


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.text(alphabet="abcdefghijklmnopqrstuvwxyzéèêëàâîïôöûüçœ", min_size=3, max_size=20),
    prefix=st.sampled_from(["", "LJ-", "dossier "]),
    field=st.sampled_from(["first_name", "last_name"]),
)
def test_a_reference_holding_the_person_s_name_is_never_safe(name: str, prefix: str, field: str) -> None:
    person = PersonalDetails(**{"first_name": "Anne", "last_name": "Durand", field: name})
    assert not reference_is_safe(f"{prefix}{name.upper()}-2026", person)
