"""Someone applies to volunteer with 60 000 rebonds from the common door, staff accept them, they become a
volunteer and receive the answer by email: real browser, real services, real Kafka, FerretDB and SMTP."""

from __future__ import annotations

import email
import email.policy
import uuid

from ops.stack import Stack
from shared.schemas import Association
from tests.browser.harness import Browser
from tests.browser.test_staff_space import COACHING_NODE, sign_in
from tests.coaching_support import SR, StaffClient, unique_antenna
from tests.conftest import wait_for


async def test_a_volunteer_applies_and_is_accepted(
    stack: Stack, staff_of: dict[Association, StaffClient], browser: Browser, second_browser: Browser
) -> None:
    antenna = unique_antenna(SR, "grenoble")
    await staff_of[SR].volunteer(f"coach-{uuid.uuid4().hex[:6]}", "coach", antenna)  # the antenna exists
    address = f"benevole.{uuid.uuid4().hex[:6]}@example.org"
    applicant = second_browser

    applicant.open(stack.services["intake"].url + "/benevolat")
    applicant.check("choix de l'association")
    applicant.link("Candidater auprès de 60 000 rebonds")
    assert applicant.title.startswith("Devenir bénévole")
    applicant.fill(
        {
            "display_name": "Bérénice Aidante",
            "email": address,
            "role": "parrain",
            "city": "Grenoble",
            "sectors": "commerce, restauration",
            "experience": "Vingt ans à la tête d'une PME de distribution.",
        }
    )
    applicant.submit()
    assert "Votre accord est nécessaire pour étudier votre candidature." in applicant.text("#erreurs")
    applicant.check("candidature sans accord")
    applicant.fill({"consent": "oui"})
    applicant.submit()
    assert "votre candidature est bien envoyée" in applicant.text()
    applicant.check("candidature envoyee")

    base = stack.services[COACHING_NODE[SR]].url
    sign_in(browser, base, SR, "/espace/candidatures")
    assert "Bérénice Aidante — parrain ou marraine" in browser.text()
    accept = browser.form("form[action$='/accepter']")
    browser.fill({"antenna_id": antenna, "max_people": "2"}, accept)
    browser.check("candidature a traiter")
    browser.submit(accept)
    assert "Candidature acceptée" in browser.text()

    browser.open(f"{base}/espace/benevoles?antenne={antenna}")
    assert "Bérénice Aidante" in browser.text() and "Parrain ou marraine" in browser.text()
    browser.check("benevoles de l'antenne")

    mail_dir = stack.mailsink.mail_dir
    assert mail_dir is not None

    def answers() -> list[email.message.EmailMessage]:
        found = []
        for path in mail_dir.glob("*.eml"):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if address in str(message["To"]):
                found.append(message)
        return found

    async def answered() -> list[email.message.EmailMessage] | None:
        return answers() or None

    [welcome] = await wait_for(answered, 60, "the applicant's email")
    assert welcome["Subject"] == "Bienvenue parmi les bénévoles de 60 000 rebonds"
    body = welcome.get_body(("plain",))
    assert body is not None and "à l'antenne de Grenoble" in body.get_content()
