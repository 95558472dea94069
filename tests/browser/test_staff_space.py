"""A coordinator takes a case through the whole journey in the staff pages, and the other association's staff
cannot open it: real browser, real services, real Kafka and FerretDB."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from ops.stack import Stack
from shared.schemas import Association
from tests.browser.harness import Browser
from tests.coaching_support import SR, SS, StaffClient, unique_antenna
from tests.conftest import a_case
from tests.e2e.conftest import dev_staff

TODAY = datetime.now(UTC).date()
PASSWORDS = {SS: ("claire", "mot-de-passe-claire"), SR: ("karim", "mot-de-passe-karim")}  # make run's, docs/pages.md
COACHING_NODE = {SS: "coaching-second_souffle", SR: "coaching-60000_rebonds"}


async def submitted(stack: Stack) -> str:
    """A liquidation: routing gives it to 60 000 rebonds."""
    situation = {
        "procedure": "liquidation_judiciaire",
        "court_decision_date": str(TODAY - timedelta(days=90)),
        "postal_code": "69003",
        "commune": "Lyon",
        "sector": "commerce",
    }
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(
            f"{stack.services['intake'].url}/cases",
            json=a_case(situation=situation),
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
    assert answer.status_code == 201, answer.text
    return answer.json()["case_id"]


def sign_in(browser: Browser, base: str, association: Association, page: str = "/espace/dossiers") -> None:
    user, password = PASSWORDS[association]
    browser.open(base + page)
    assert "/espace/connexion" in browser.url
    browser.fill({"user": user, "password": password})
    browser.submit()


async def test_a_coordinator_takes_a_case_from_committee_to_closing(
    stack: Stack, staff_of: dict[Association, StaffClient], browser: Browser
) -> None:
    staff, tag = staff_of[SR], uuid.uuid4().hex[:6]
    antenna = unique_antenna(SR, "lyon")
    await staff.volunteer(f"coach-{tag}", "coach", antenna, display_name="Anne Coach")
    await staff.volunteer(f"parrain-{tag}", "parrain", antenna, display_name="Paul Parrain")
    case_id, other_id = await submitted(stack), await submitted(stack)
    for case in (case_id, other_id):
        await staff.opened(case)
    # The second person, already followed, joins the collective checkpoint (set up through the API).
    await staff.patch(f"/cases/{other_id}", {"antenna_id": antenna})
    await staff.post(f"/cases/{other_id}/committee-decision", {"decision": "approuve", "reasons": ["Sincère"]})
    await staff.post(f"/cases/{other_id}/assignments", {"role": "coach", "volunteer_id": f"coach-{tag}"})
    base = stack.services[COACHING_NODE[SR]].url

    browser.open(base + "/")
    browser.check("accueil de l'association")
    sign_in(browser, base, SR)
    assert browser.url.endswith("/espace/dossiers")
    assert case_id in browser.driver.page_source
    browser.check("liste des dossiers")

    browser.open(f"{base}/espace/dossiers/{case_id}")
    assert "Pourquoi ce dossier est ici" in browser.text()
    browser.fill({"antenna_id": antenna}, browser.form("#profil form"))
    browser.submit(browser.form("#profil form"))
    assert "Profil du dossier enregistré." in browser.text()
    browser.check("dossier en attente du comite")

    browser.fill({"scheduled_on": str(TODAY)}, browser.form("form[action$='/comite-date']"))
    browser.submit(browser.form("form[action$='/comite-date']"))
    decision = browser.form("form[action$='/comite']")
    browser.fill({"decision": "approuve", "reasons": "Démarche sincère\nProjet de reconversion"}, decision)
    browser.submit(decision)
    assert "Décision du comité enregistrée." in browser.text()
    browser.check("accord du comite et propositions")

    browser.submit(browser.form("#benevoles form[action$='/attribution']"), "Attribuer (coach)")
    assert "Anne Coach suit la personne." in browser.text()
    browser.submit(browser.form("#benevoles form[action$='/attribution']"), "Attribuer (parrain ou marraine)")
    assert "Paul Parrain suit la personne." in browser.text()

    session = browser.form("#seances form")
    browser.fill(
        {
            "kind": "coaching",
            "duration_minutes": "60",
            "next_session_at": f"{TODAY + timedelta(days=7)}T14:00",
            "next_session_place": "Visioconférence",
        },
        session,
    )
    browser.submit(session)
    assert "Séance enregistrée." in browser.text()
    assert "1 séance de coaching sur 7 prévues" in browser.text()
    browser.check("coach parrain et premiere seance")

    browser.open(f"{base}/espace/points-etape?antenne={antenna}")
    checkpoint = browser.form("main form[method='post']")
    browser.fill(
        {f"presence.{case_id}": "present", f"presence.{other_id}": "absent", "duration_minutes": "120"}, checkpoint
    )
    browser.check("point d'etape")
    browser.submit(checkpoint)
    assert "Point d'étape enregistré : 1 présent, 1 absent." in browser.text()

    browser.open(f"{base}/espace/dossiers/{case_id}")
    closing = browser.form("#cloture form")
    browser.fill({"outcome": "emploi_salarie", "reasons": "CDI signé"}, closing)
    browser.submit(closing)
    assert "Dossier clos." in browser.text()
    assert "Clos" in browser.text(".badge")
    timeline = browser.text(".chronologie")
    for step in (
        "Comité d'engagement du",
        "Anne Coach, coach, attribué(e)",
        "Point d'étape collectif",
        "Séance de coaching",
        "retour à l'emploi salarié",
    ):
        assert step in timeline
    browser.check("dossier clos avec sa chronologie")

    # The coordinators' pages, with this antenna's figures.
    browser.open(f"{base}/espace/tableau-de-bord")
    assert "Bénévoles à trouver, par antenne" in browser.text()
    browser.check("tableau de bord")
    for page, name in (
        (f"/espace/benevoles?antenne={antenna}", "benevoles"),
        ("/espace/file-attente?role=parrain", "file d'attente"),
        ("/espace/couverture", "couverture"),
        ("/espace/antennes", "antennes"),
    ):
        browser.open(base + page)
        browser.check(name)
    assert "60000_rebonds-lyon" in browser.text()  # routing's directory, read over its API

    # The coordinator changes the contact of an antenna in routing's directory (one of this test's own).
    await edits_an_antenna(stack, browser, base)

    audit = (await staff.get(f"/cases/{case_id}/audit")).json()["entries"]
    assert {"case.committee_decision", "case.assign", "case.session", "case.closing"} <= {
        e["action"] for e in audit if e["who"] == "karim"
    }


async def edits_an_antenna(stack: Stack, browser: Browser, base: str) -> None:
    antenna = unique_antenna(SR, "villeurbanne")
    routing = stack.services["routing"].url
    async with httpx.AsyncClient(timeout=10, headers=dev_staff(SR)) as client:
        created = await client.put(
            f"{routing}/antennas/{antenna}",
            json={
                "association": SR.value,
                "name": f"Villeurbanne {antenna[-6:]}",
                "city": "Villeurbanne",
                "insee_code": "69266",
                "status": "en_ouverture",
                "contact": "villeurbanne@60000rebonds.example",
            },
        )
        assert created.status_code in (200, 201), created.text
        browser.open(f"{base}/espace/antennes")
        edit = browser.form(f"form[action='/espace/antennes/{antenna}']")
        browser.fill({"contact": " "}, edit)
        browser.submit(edit)
        assert browser.title.startswith("Erreur : ")
        assert "Contact public : Ce champ est obligatoire." in browser.text(".resume-erreurs")
        browser.check("antenne refusee")
        edit = browser.form(f"form[action='/espace/antennes/{antenna}']")
        browser.fill({"contact": "04 72 00 00 00", "status": "ouverte"}, edit)
        browser.submit(edit)
        assert "modifiée dans l'annuaire du routage" in browser.text()
        assert "04 72 00 00 00" in browser.text("table")
        browser.check("antenne modifiee")
        stored = (await client.get(f"{routing}/antennas/{antenna}")).json()
    assert (stored["contact"], stored["status"]) == ("04 72 00 00 00", "ouverte")


async def test_the_other_associations_staff_cannot_open_the_case(
    stack: Stack, staff_of: dict[Association, StaffClient], browser: Browser
) -> None:
    case_id = await submitted(stack)
    await staff_of[SR].opened(case_id)
    second_souffle = stack.services[COACHING_NODE[SS]].url

    # 60 000 rebonds' password is unknown to Second Souffle's instance.
    browser.open(second_souffle + "/espace/connexion")
    browser.fill({"user": PASSWORDS[SR][0], "password": PASSWORDS[SR][1]})
    browser.submit()
    assert "Identifiant ou mot de passe incorrect." in browser.text()
    browser.check("connexion refusee")

    # Second Souffle's own staff member does not find 60 000 rebonds' case.
    sign_in(browser, second_souffle, SS, f"/espace/dossiers/{case_id}")
    assert browser.title.startswith("Introuvable")
    assert "Dossier introuvable." in browser.text()
    browser.check("dossier de l'autre association introuvable")
    browser.open(second_souffle + "/espace/dossiers?clos=oui")
    assert case_id not in browser.driver.page_source
