"""An entrepreneur asks for help and a partner refers someone, in a real browser on the running system."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient

from ops.stack import Stack
from services.intake.domain import case_id_for
from tests.browser.harness import Browser

PERSON = {
    "entrepreneur.first_name": "Camille",
    "entrepreneur.last_name": "Rebond",
    "entrepreneur.email": "camille.rebond@example.fr",
    "entrepreneur.phone": "06 11 22 33 44",
    "situation.procedure": "liquidation_judiciaire",
    "situation.court_decision_date": "2026-02-12",
    "company.name": "Boulangerie Rebond",
    "situation.sector": "boulangerie",
    "situation.postal_code": "6900",  # the mistake: four digits
    "situation.commune": "Lyon",
}


def case_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


async def stored_referral_kind(stack: Stack, case_id: str) -> str | None:
    """What intake stored (reading a case back over HTTP is the referring partner's right only)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.ferretdb.url)
    try:
        doc = await client["relais_intake"]["cases"].find_one({"_id": case_id}, {"referral.kind": 1})
    finally:
        await client.close()
    return None if doc is None else str(doc["referral"]["kind"])


async def test_an_entrepreneur_asks_for_help_with_a_mistake_first(stack: Stack, browser: Browser) -> None:
    intake = stack.services["intake"].url
    browser.open(intake + "/")
    assert "Une porte commune" in browser.text()
    browser.check("accueil")

    browser.link("Demander un accompagnement")
    browser.check("formulaire vide")
    browser.fill(PERSON)
    browser.submit()
    assert browser.title.startswith("Erreur : ")
    summary = browser.text("#erreurs")
    assert "Code postal de votre domicile : Format invalide." in summary
    assert "Le consentement est nécessaire pour traiter la demande." in summary
    assert browser.field("entrepreneur.first_name").get_attribute("value") == "Camille"  # kept
    assert browser.field("situation.postal_code").get_attribute("aria-invalid") == "true"
    browser.check("formulaire avec erreurs")

    browser.fill({"situation.postal_code": "69003", "consent": "oui"})
    key = browser.field("cle").get_attribute("value")
    # A double click: both posts carry the form's idempotency key, so both name the same case.
    browser.driver.execute_script(
        "const b = document.querySelector('main form button[type=submit]'); b.click(); b.click();"
    )
    browser.wait(lambda: "/demande/recue/" in browser.url, "the confirmation")
    assert "Votre demande est bien enregistrée" in browser.text()
    browser.check("confirmation")
    case_id = case_of(browser.url)
    assert case_id == str(case_id_for(key))
    browser.driver.refresh()  # a refresh reloads the confirmation (the post was redirected), sends nothing
    assert case_of(browser.url) == case_id and "bien enregistrée" in browser.text()
    assert await stored_referral_kind(stack, case_id) == "self"


async def test_a_partner_refers_someone(stack: Stack, browser: Browser) -> None:
    intake = stack.services["intake"].url
    browser.open(intake + "/orienter")
    browser.fill(
        {
            "referral.kind": "mandataire",
            "referral.organisation": "Étude Dupont, mandataires judiciaires",
            "referral.partner_reference": "LJ-2026-118",
            "referral.contact_email": "suivi@etude-dupont.example",
            **PERSON,
            "situation.postal_code": "38000",
            "situation.commune": "Grenoble",
            "consent": "oui",
        }
    )
    browser.check("orientation remplie")
    browser.submit()
    assert "Votre orientation est enregistrée" in browser.text()
    assert "sans détail personnel" in browser.text()
    browser.check("orientation enregistree")
    assert await stored_referral_kind(stack, case_of(browser.url)) == "mandataire"
