"""What intake collects for routing: commune, NAF code and family, size, distress and APESA consent."""

from __future__ import annotations

import httpx
import pytest

from services.intake.domain import normalise_naf, sector_family
from shared.schemas import SectorFamily
from tests.conftest import a_case


@pytest.mark.parametrize(
    "code, normalised, family",
    [
        ("47.11B", "47.11B", SectorFamily.COMMERCE),
        ("4120a", "41.20A", SectorFamily.CONSTRUCTION),
        ("10.71C", "10.71C", SectorFamily.INDUSTRY),
        ("56.10A", "56.10A", SectorFamily.HOSPITALITY),
        ("62.01Z", "62.01Z", SectorFamily.SERVICES),
        ("01.11Z", "01.11Z", SectorFamily.AGRICULTURE),
        ("49.41A", "49.41A", SectorFamily.TRANSPORT),
    ],
)
def test_naf_codes_give_their_family(code: str, normalised: str, family: SectorFamily) -> None:
    assert normalise_naf(code) == normalised
    assert sector_family(normalised) is family


@pytest.mark.parametrize("code", ["4711", "00.00Z", "47-11B", "ABCDE", "04.11Z"])
def test_not_naf_codes(code: str) -> None:
    assert normalise_naf(code) is None


def situation_with(**fields) -> dict:
    case = a_case()
    case["situation"].update(fields)
    return case


async def error_of(client: httpx.AsyncClient, case: dict) -> dict:
    response = await client.post("/cases", json=case)
    assert response.status_code == 422, response.text
    return response.json()["errors"][0]


async def test_a_wrong_naf_code_is_refused_in_french(intake_client: httpx.AsyncClient) -> None:
    error = await error_of(intake_client, situation_with(naf_code="4711"))
    assert error["field"] == "situation.naf_code"
    assert error["message"] == "Code NAF invalide : quatre chiffres et une lettre, par exemple 47.11B."


async def test_a_family_contradicting_the_naf_code_is_refused(intake_client: httpx.AsyncClient) -> None:
    error = await error_of(intake_client, situation_with(naf_code="47.11B", sector_family="construction"))
    assert error["message"] == "La famille de secteur ne correspond pas au code NAF 47.11B (commerce)."


async def test_apesa_consent_needs_declared_distress(intake_client: httpx.AsyncClient) -> None:
    error = await error_of(intake_client, situation_with(apesa_consent=True))
    assert error["message"] == "Le consentement à APESA ne vaut qu'en cas de détresse déclarée."


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("insee_code", "6938", "Format invalide."),
        ("company_size", "enorme", "Valeur inconnue. Valeurs possibles :"),
        ("acute_distress", "peut-être", "Une valeur booléenne (true ou false) est attendue."),
    ],
)
async def test_bad_routing_fields(
    intake_client: httpx.AsyncClient,
    field: str,
    value: str,
    message: str,
) -> None:
    error = await error_of(intake_client, situation_with(**{field: value}))
    assert error["field"] == f"situation.{field}" and error["message"].startswith(message)


def test_the_submission_carries_the_new_fields_to_the_event() -> None:
    from services.intake.api import CaseSubmission

    case = situation_with(
        insee_code="69383", naf_code="4711b", company_size="1_9", acute_distress=True, apesa_consent=True
    )
    situation = CaseSubmission.model_validate(case).as_request().situation.model_dump(mode="json")
    assert (
        situation
        | {
            "naf_code": "47.11B",
            "sector_family": "commerce",
            "company_size": "1_9",
            "acute_distress": True,
            "apesa_consent": True,
            "insee_code": "69383",
        }
        == situation
    )
