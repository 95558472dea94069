"""French messages: every template renders, dates and places read as French, HTML is escaped."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email import message_from_bytes
from email.policy import default

import pytest

from services.notifications.domain import Recipient
from services.notifications.facts import (
    Address,
    address_of,
    antenna_of,
    facts_of,
    still_unknown,
)
from services.notifications.messages import compose, render_context
from services.notifications.templates import (
    Renderer,
    date_fr,
    de,
    de_lieu,
    duree_fr,
    jour_fr,
    to_html,
)
from services.notifications.tokens import Tokens
from shared.schemas import EVENTS as SPECS
from shared.schemas import CaseRouted, Envelope
from tests.mail import APPLICATION, PERSON, body, flow

RENDERER = Renderer()
CASE_ID = "8d0f0a8e-1234-4f57-9b64-3f0c2a7d5e19"
HOSTILE = {
    "first_name": "Zoé",
    "last_name": '<script>alert("x")</script> & Cie',
    "email": "zoe@example.fr",
    "received": True,
    "referral": {"organisation": "Étude <Martin>", "contact_email": "p@example.fr"},
    "phone": "06 98 76 54 32",
    "volunteers": {"coach": {"volunteer_id": "vol-aurelien", "name": "Aurélien Coach", "email": "c@example.org"}},
}
TEMPLATES = {  # template -> (recipient, event of tests.mail.flow it is about)
    "accuse_reception": (Recipient.ENTREPRENEUR, "received"),
    "accuse_reception_partenaire": (Recipient.PARTNER, "received"),
    "orientation": (Recipient.ENTREPRENEUR, "routed"),
    "orientation_partenaire": (Recipient.PARTNER, "routed"),
    "nouveau_dossier": (Recipient.COORDINATOR, "routed"),
    "decision_comite": (Recipient.ENTREPRENEUR, "approved"),
    "decision_comite_partenaire": (Recipient.PARTNER, "approved"),
    "suivi_seance": (Recipient.ENTREPRENEUR, "session"),
    "seance_coach": (Recipient.COACH, "session"),
    "seance_parrain": (Recipient.SPONSOR, "session"),
    "cloture": (Recipient.ENTREPRENEUR, "closed"),
    "cloture_partenaire": (Recipient.PARTNER, "closed"),
    "cloture_dossier": (Recipient.COORDINATOR, "closed"),
    "fin_accompagnement_coach": (Recipient.COACH, "closed"),
    "fin_accompagnement_parrain": (Recipient.SPONSOR, "closed"),
    "attribution_coach": (Recipient.COACH, "assigned"),
    "attribution_parrain": (Recipient.SPONSOR, "assigned"),
    "candidature_benevole": (Recipient.APPLICANT, "application"),
}
EVENTS = {**flow(), "application": APPLICATION}


def typed(envelope: Envelope):
    return envelope.payload_as(SPECS[envelope.event_type].model)


def render(template: str, contact: dict | None = None, **facts):
    recipient, event = TEMPLATES[template]
    all_facts = {
        **facts_of(typed(EVENTS[event])),
        "status": "clos",
        "outcome_category": "rebond",
        "occurred_on": "2026-03-02",
        "partner_reference": "LJ-2026-0427",
        **facts,
    }
    context = render_context(
        recipient=recipient,
        case_id=CASE_ID,
        facts=all_facts,
        contact=contact or HOSTILE,
        address=Address("Destinataire", "d@example.fr"),
        unsubscribe_url="http://relais.example/desabonnement/TOKEN",
        coordinators={},
    )
    return RENDERER.render(template, context)


def test_there_is_one_template_per_event_and_recipient() -> None:
    assert RENDERER.names() == sorted(TEMPLATES)


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_template_renders_a_french_subject_text_and_html(template: str) -> None:
    rendered = render(template)
    assert rendered.subject and "\n" not in rendered.subject
    assert "Bien cordialement" in rendered.text and "http://relais.example/desabonnement/TOKEN" in rendered.text
    assert '<html lang="fr">' in rendered.html
    assert "<script>" not in rendered.html and "<Martin>" not in rendered.html
    assert "None" not in rendered.text and "{{" not in rendered.text


@pytest.mark.parametrize("template", [t for t, (r, _) in TEMPLATES.items() if r is Recipient.ENTREPRENEUR])
def test_the_entrepreneur_is_greeted_by_name_and_the_html_escapes_it(template: str) -> None:
    rendered = render(template)
    assert 'Bonjour Zoé <script>alert("x")</script> & Cie,' in rendered.text
    assert "Bonjour Zoé &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Cie," in rendered.html


@pytest.mark.parametrize(
    "template", [t for t, (r, _) in TEMPLATES.items() if r in (Recipient.PARTNER, Recipient.COORDINATOR)]
)
def test_partners_and_coordinators_never_read_the_persons_details(template: str) -> None:
    rendered = render(template)
    for value in ("Zoé", "script", "zoe@example.fr"):
        assert value not in rendered.text and value not in rendered.subject


def test_orientation_gives_the_antennas_contact_and_the_reasons() -> None:
    text = render("orientation").text
    assert "orientée vers 60 000 rebonds, antenne de Saint-Étienne." in text
    assert "- Liquidation judiciaire, décision du tribunal il y a 5 mois → 60 000 rebonds" in text
    for value in (
        "12 rue de la République, 42000 Saint-Étienne",
        "04 77 00 00 00",
        "saint-etienne@60000rebonds.example",
    ):
        assert value in text


def test_orientation_without_an_antenna_points_to_the_association() -> None:
    context = render_context(
        recipient=Recipient.ENTREPRENEUR,
        case_id=CASE_ID,
        facts={"association": "second_souffle", "routed_on": "2026-03-02", "reasons": []},
        contact=HOSTILE,
        address=Address("Zoé", "zoe@example.fr"),
        unsubscribe_url="http://u",
        coordinators={"second_souffle": "coordination@second-souffle.example"},
    )
    text = RENDERER.render("orientation", context).text
    assert "L'équipe de Second Souffle vous contactera" in text and "coordination@second-souffle.example" in text


def test_next_session_is_dated_in_french_with_its_time_in_paris() -> None:
    rendered = render("suivi_seance")
    assert rendered.subject == "Votre prochaine séance : jeudi 2 avril 2026 à 14 h 30"
    assert "Merci pour votre séance de coaching du 19 mars 2026 (séance n° 1)." in rendered.text


def test_closing_congratulates_and_gives_the_journey_in_months() -> None:
    assert (
        "Félicitations pour votre nouvel emploi ! Votre accompagnement s'est terminé le 29 janvier 2027, "
        "après 11 mois de parcours." in render("cloture").text
    )


def test_a_declined_case_is_told_gently_and_the_partner_learns_only_the_broad_outcome() -> None:
    text = render("cloture", outcome="refus_comite").text
    assert "estimé ne pas être en mesure de vous accompagner" in text and "Félicitations" not in text
    partner = render("cloture_partenaire").text
    assert "La personne a rebondi" in partner and "emploi" not in partner.split("rebondi")[1].split(".")[0]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026-03-12", "12 mars 2026"),
        ("2026-03-01", "1er mars 2026"),
        (date(2026, 8, 15), "15 août 2026"),
        (datetime(2026, 12, 1, 23, 0, tzinfo=UTC), "1er décembre 2026"),
    ],
)
def test_dates_read_as_french(value: object, expected: str) -> None:
    assert date_fr(value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026-03-12", "jeudi 12 mars 2026"),
        ("2026-03-12T09:00:00+01:00", "jeudi 12 mars 2026 à 9 h"),
        ("2026-07-01T12:05:00Z", "mercredi 1er juillet 2026 à 14 h 05"),  # summer time in Paris
    ],
)
def test_days_and_times_read_as_french(value: str, expected: str) -> None:
    assert jour_fr(value) == expected


@pytest.mark.parametrize(
    "place, expected",
    [
        ("Lyon", "de Lyon"),
        ("Annecy", "d'Annecy"),
        ("Évian-les-Bains", "d'Évian-les-Bains"),
        ("Le Puy-en-Velay", "du Puy-en-Velay"),
        ("Les Ollières", "des Ollières"),
        ("La Talaudière", "de la Talaudière"),
    ],
)
def test_places_take_the_right_preposition(place: str, expected: str) -> None:
    assert de_lieu(place) == expected


def test_names_are_elided_but_never_contracted() -> None:
    assert (de("Éloïse"), de("Jeanne"), de("Le Gall")) == ("d'Éloïse", "de Jeanne", "de Le Gall")


@pytest.mark.parametrize("days, expected", [(1, "1 jour"), (45, "45 jours"), (334, "11 mois"), (540, "18 mois")])
def test_durations(days: int, expected: str) -> None:
    assert duree_fr(days) == expected


def test_html_links_and_lists_are_escaped_too() -> None:
    html = to_html("S", 'Voir https://x.example/a?b=1&c="2"\n- un <item>\n')
    assert '<a href="https://x.example/a?b=1&amp;c=">https://x.example/a?b=1&amp;c=</a>&#34;2&#34;' in html
    assert "<li>un &lt;item&gt;</li>" in html


def test_the_email_carries_both_parts_a_stable_message_id_and_an_unsubscribe_link() -> None:
    rendered = render("accuse_reception")
    moment = datetime(2026, 3, 1, 9, 31, tzinfo=UTC)

    def build() -> bytes:
        return compose(
            rendered=rendered,
            sender="Relais <ne-pas-repondre@relais.example>",
            to=Address("Zoé D'Arcy", "zoe@example.fr"),
            message_id="<e1.entrepreneur@relais.example>",
            composed_at=moment,
            unsubscribe_url="http://relais.example/desabonnement/TOKEN",
        ).as_bytes()

    raw = build()
    assert raw == build(), "a resend must be the very same message"
    parsed = message_from_bytes(raw, policy=default)
    assert parsed["Message-ID"] == "<e1.entrepreneur@relais.example>"
    assert str(parsed["To"]) == "Zoé D'Arcy <zoe@example.fr>"
    assert parsed["Subject"] == "Nous avons bien reçu votre demande"
    assert parsed["List-Unsubscribe"] == "<http://relais.example/desabonnement/TOKEN>"
    assert body(parsed).replace("\r\n", "\n") == rendered.text
    assert body(parsed, "html").replace("\r\n", "\n") == rendered.html
    assert all(ord(ch) < 128 for ch in raw.decode("ascii")), "7-bit clean: no SMTPUTF8 or 8BITMIME needed"


def routed(**antenna: str) -> CaseRouted:
    return CaseRouted(association="60000_rebonds", rule="r", reasons=[], routed_at="2026-03-02T10:00:00Z", **antenna)


def test_the_antenna_is_read_from_routings_declared_fields_and_ignored_when_absent() -> None:
    antenna = antenna_of(typed(EVENTS["routed"]))
    assert antenna is not None
    assert antenna["city"] == "Saint-Étienne" and antenna["email"] == "saint-etienne@60000rebonds.example"
    assert antenna_of(routed()) is None
    assert antenna_of(routed(antenna_id="60000_rebonds-lyon")) == {"id": "60000_rebonds-lyon"}
    assert antenna_of(routed(antenna_name="Lyon", antenna_contact="l@x.fr")) == {
        "name": "Lyon",
        "contact": "l@x.fr",
        "email": "l@x.fr",
    }


def test_a_volunteer_is_reached_only_while_following_and_only_by_the_message_meant_for_them() -> None:
    coach = {"received": True, "volunteers": {"coach": {"volunteer_id": "v1", "name": "Aurélien", "email": "a@x"}}}
    assert address_of(Recipient.COACH, coach, {"volunteer_id": "v1"}, {}) == Address("Aurélien", "a@x")
    assert not still_unknown(Recipient.COACH, coach, {"volunteer_id": "v1"})
    # A message for another coach (whose assignment is not handled yet) waits; so does one before the reception.
    assert address_of(Recipient.COACH, coach, {"volunteer_id": "v2"}, {}) is None
    assert still_unknown(Recipient.COACH, coach, {"volunteer_id": "v2"})
    assert still_unknown(Recipient.COACH, {**coach, "received": False}, {"volunteer_id": "v1"})
    released = {"received": True, "volunteers": {"coach": {"volunteer_id": "v1", "released": True}}}
    assert address_of(Recipient.COACH, released, {"volunteer_id": "v1"}, {}) is None
    assert not still_unknown(Recipient.COACH, released, {"volunteer_id": "v1"}), "released: no address, no wait"


def test_the_assigned_volunteer_learns_who_to_contact_and_nothing_more() -> None:
    rendered = render(
        "attribution_coach",
        {
            **HOSTILE,
            "first_name": "Éloïse",
            "last_name": "Zébulon",
            "email": PERSON["email"],
            "phone": PERSON["phone"],
            "routings": {
                "1": {"sequence": 1, "association": "60000_rebonds", "antenna": antenna_of(typed(EVENTS["routed"]))}
            },
        },
    )
    assert rendered.subject == "Vous accompagnez désormais Éloïse Zébulon"
    assert (
        "60 000 rebonds vous confie l'accompagnement de Éloïse Zébulon en tant que coach, à compter du "
        "13 mars 2026 (antenne de Saint-Étienne)." in rendered.text
    )
    for value in (
        f"- E-mail : {PERSON['email']}",
        f"- Téléphone : {PERSON['phone']}",
        "saint-etienne@60000rebonds.example",
    ):
        assert value in rendered.text
    for value in (PERSON["company_name"], PERSON["siren"], PERSON["message"], "liquidation", "Fromagerie"):
        assert value not in rendered.text
    assert "en tant que parrain ou marraine" in render("attribution_parrain").text


def test_only_the_volunteers_following_the_person_learn_their_email_and_phone() -> None:
    for template in ("accuse_reception_partenaire", "nouveau_dossier", "cloture_dossier"):
        text = render(template, {**HOSTILE, "phone": "06 98 76 54 32"}).text
        assert "zoe@example.fr" not in text and "06 98 76 54 32" not in text


def test_addresses_come_from_the_contacts_and_the_coordinator_falls_back_to_the_association() -> None:
    contact = {"first_name": "Zoé", "last_name": "Arc", "email": "z@x", "referral": {"contact_email": "p@x"}}
    assert address_of(Recipient.ENTREPRENEUR, contact, {}, {}) == Address("Zoé Arc", "z@x")
    partner = address_of(Recipient.PARTNER, contact, {}, {})
    assert partner is not None and partner.email == "p@x"
    assert address_of(Recipient.COACH, contact, {}, {}) is None
    assert address_of(
        Recipient.COORDINATOR, None, {"association": "second_souffle"}, {"second_souffle": "c@ss"}
    ) == Address("Coordination", "c@ss")
    assert address_of(Recipient.ENTREPRENEUR, {"first_name": "A", "last_name": "B", "phone": "06"}, {}, {}) is None


def test_unsubscribe_tokens_name_a_case_and_role_and_cannot_be_forged() -> None:
    tokens = Tokens("secret")
    token = tokens.unsubscribe(CASE_ID, Recipient.PARTNER)
    assert tokens.read_unsubscribe(token) == (CASE_ID, Recipient.PARTNER)
    assert Tokens("other").read_unsubscribe(token) is None
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert tokens.read_unsubscribe(tampered) is None
    assert tokens.read_unsubscribe("not-a-token") is None
    assert CASE_ID.replace("-", "") not in token


def test_referral_ids_are_stable_opaque_and_keyed_by_the_secret() -> None:
    first, again = Tokens("secret").referral_id(CASE_ID), Tokens("secret").referral_id(CASE_ID)
    assert first == again and len(first) == 20 and first not in CASE_ID.replace("-", "")
    assert Tokens("other").referral_id(CASE_ID) != first


def test_routings_own_fields_give_the_antenna_its_city_contact_and_address() -> None:
    antenna = antenna_of(
        routed(
            antenna_id="60000_rebonds-le-puy-en-velay",
            antenna_name="60 000 rebonds Le Puy-en-Velay",
            antenna_contact="Accueil : puy@60000rebonds.example, 04 71 00 00 00",
        )
    )
    assert antenna is not None
    assert antenna["city"] == "Le Puy-en-Velay" and antenna["email"] == "puy@60000rebonds.example"
    context = render_context(
        recipient=Recipient.ENTREPRENEUR,
        case_id=CASE_ID,
        facts={
            "association": "60000_rebonds",
            "routed_on": "2026-03-02",
            "antenna": antenna,
            "reasons": [],
            "routing_status": "apesa_d_abord",
        },
        contact=HOSTILE,
        address=Address("Zoé", "zoe@example.fr"),
        unsubscribe_url="http://u",
        coordinators={},
    )
    text = RENDERER.render("orientation", context).text
    assert "antenne du Puy-en-Velay" in text and "- Accueil : puy@60000rebonds.example, 04 71 00 00 00" in text
    assert "APESA" in text and "Votre demande est conservée" in text


def test_an_accepted_applicant_is_welcomed_at_their_antenna_and_a_declined_one_thanked() -> None:
    applicant = {"applicant": {"name": "Bérénice Aidante", "email": "berenice.aidante@example.org"}}
    welcome = render("candidature_benevole", contact=applicant)
    assert welcome.subject == "Bienvenue parmi les bénévoles de 60 000 rebonds"
    assert "accueillir comme parrain ou marraine, à l'antenne de Saint-Etienne." in welcome.text
    declined = render("candidature_benevole", contact=applicant, decision="refusee", antenna=None)
    assert declined.subject == "Votre candidature de bénévole à 60 000 rebonds"
    assert "ne peut pas y donner suite pour le moment" in declined.text and "antenne de" not in declined.text
