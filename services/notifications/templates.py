"""French messages: one Jinja2 template per event and recipient, rendered as plain text and as HTML.

A template is written once, in plain text (paragraphs, "- " lists, bare links). The HTML part is derived
from that text with every piece escaped, so a name such as `<Zoé & "Léa">` can never become markup, and
the two parts always say the same thing. Dates, durations and places follow French usage
("1er mars 2026", "jeudi 12 mars 2026 à 14 h 30", "l'antenne d'Annecy", "du Puy-en-Velay").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import escape

from shared.french import WEEKDAYS, long_date

TEMPLATE_DIR = Path(__file__).parent / "templates"
PARIS = ZoneInfo("Europe/Paris")

SESSIONS = {
    "coaching": "votre séance de coaching",
    "parrainage": "votre rencontre avec votre parrain ou votre marraine",
    "point_etape_collectif": "le point d'étape collectif",
    "expertise": "votre rendez-vous avec un expert bénévole",
}
OUTCOMES = {
    "emploi_salarie": "Retour à l'emploi salarié",
    "creation_entreprise": "Création ou reprise d'entreprise",
    "autre": "Autre issue",
    "abandon": "Abandon à l'initiative de la personne",
    "refus_comite": "Refus du comité d'engagement",
}
_VOWELS = set("aeiouyàâäéèêëîïôöùûüÿæœAEIOUYÀÂÄÉÈÊËÎÏÔÖÙÛÜŸÆŒ")


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def date_fr(value: Any) -> str:
    """12 mars 2026; the first of the month is "1er"."""
    return long_date(_as_date(value))


def jour_fr(value: Any) -> str:
    """jeudi 12 mars 2026, and "à 14 h 30" when a time of day is known (shown in Paris time)."""
    text = str(value)
    if len(text) <= 10:
        d = _as_date(text)
        return f"{WEEKDAYS[d.weekday()]} {date_fr(d)}"
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(PARIS)
    time = f"{moment.hour} h" + (f" {moment.minute:02d}" if moment.minute else "")
    return f"{WEEKDAYS[moment.weekday()]} {date_fr(moment)} à {time}"


def duree_fr(days: int) -> str:
    """A journey's length: days under two months, months beyond (mois is invariable)."""
    days = int(days)
    if days < 60:
        return "1 jour" if days == 1 else f"{days} jours"
    return f"{round(days / 30.44)} mois"


def de(name: str) -> str:
    """ "de" before a name, elided before a vowel: d'Éloïse, de Jeanne (an h is taken as aspirated)."""
    return ("d'" if name[:1] in _VOWELS else "de ") + name


def de_lieu(place: str) -> str:
    """ "de" before a place name, with the article contracted: du Puy-en-Velay, des Ollières, d'Annecy."""
    for article, contracted in (("Le ", "du "), ("Les ", "des "), ("La ", "de la "), ("L'", "de l'")):
        if place.startswith(article):
            return contracted + place[len(article) :]
    return de(place)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters.update(
        date_fr=date_fr,
        jour_fr=jour_fr,
        duree_fr=duree_fr,
        de=de,
        de_lieu=de_lieu,
        seance=lambda kind: SESSIONS.get(kind, "votre rendez-vous"),
        issue=lambda outcome: OUTCOMES.get(outcome, "Autre issue"),
    )
    return env


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class Renderer:
    def __init__(self) -> None:
        self.env = _environment()

    def names(self) -> list[str]:
        return sorted(name.removesuffix(".j2") for name in self.env.list_templates() if name != "base.j2")

    def render(self, template: str, context: dict[str, Any]) -> Rendered:
        tpl = self.env.get_template(f"{template}.j2")
        subject = " ".join(tpl.render({**context, "part": "subject"}).split())
        text = _tidy(tpl.render({**context, "part": "body"}))
        return Rendered(subject=subject, text=text, html=to_html(subject, text))


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


_URL = re.compile(r"https?://[^\s<>\"]+")


def _inline(line: str) -> str:
    """Escape a line of text; bare links become anchors (their text and address escaped too)."""
    out, last = [], 0
    for match in _URL.finditer(line):
        out.append(str(escape(line[last : match.start()])))
        url = escape(match.group(0))
        out.append(f'<a href="{url}">{url}</a>')
        last = match.end()
    out.append(str(escape(line[last:])))
    return "".join(out)


def to_html(subject: str, text: str) -> str:
    parts = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.splitlines()
        if lines[0] == "--":
            parts.append(
                '<hr><p style="color:#666;font-size:12px">'
                + "<br>\n".join(_inline(line) for line in lines[1:])
                + "</p>"
            )
            continue
        prose = [line for line in lines if not line.startswith("- ")]
        items = [line[2:] for line in lines if line.startswith("- ")]
        if prose:
            parts.append("<p>" + "<br>\n".join(_inline(line) for line in prose) + "</p>")
        if items:
            parts.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in items) + "</ul>")
    body = "\n".join(parts)
    return (
        f'<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8"><title>{escape(subject)}</title></head>\n'
        f'<body style="font-family:Arial,sans-serif;font-size:15px;line-height:1.5;color:#222">\n{body}\n'
        f"</body></html>\n"
    )
