"""Server-rendered pages, written once for every service that serves some: templates (Jinja2, escaped),
static files, CSRF tokens, signed session cookies, and forms whose errors come back in French next to
their field with what the person typed.

Pages call the same service methods as the JSON API: this module only turns forms into the API's request
models and their errors into messages. No JavaScript is needed; `static/relais.js` only improves a page.

- CSRF: a random value in an HttpOnly cookie, and in each form its HMAC under the service's secret
  ("signed double submit"): a cross-site form can neither read the cookie nor compute the token.
- Sessions: a signed cookie (user, association, random id, expiry), HttpOnly, SameSite=Lax, Secure unless
  `cookie_secure` is off (plain-http local runs). Cookies are named per instance: a browser sends one
  host's cookies to every port of it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import ValidationError
from starlette.staticfiles import StaticFiles

from shared.french import long_date
from shared.http import french_message
from shared.settings import ServiceSettings

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
PARIS = ZoneInfo("Europe/Paris")
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 400
CSRF_FIELD = "csrf"
R = TypeVar("R", bound=Response)
# Pages load nothing from another site, run no inline script and cannot be framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class PageSettings(ServiceSettings):
    """Settings of a service that serves pages (each service subclasses it with its own prefix)."""

    # Key of the cookies' and forms' signatures. Empty: a random key per process (sessions and open forms
    # do not survive a restart, and instances behind one address would refuse each other's): set it in
    # production, the same for every instance of one service.
    pages_secret: str = ""
    # Cookies only over HTTPS; `false` for plain-http local runs (`make run` sets it).
    cookie_secure: bool = True
    # APESA's national line for entrepreneurs in acute distress, shown on every public page. Default: the
    # free number the Ministry of the Economy opened with APESA in April 2020, as the press reported it
    # (2020–2021); check it with APESA before production.
    apesa_phone: str = "0 805 65 50 50"
    apesa_hours: str = "7 jours sur 7, de 8 h à 20 h"


# --- signatures ---------------------------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """HMAC-SHA256 signatures under one key per purpose, so that a value signed for one use is refused by
    another."""

    def __init__(self, secret: str, purpose: str) -> None:
        root = secret.encode() if secret else secrets.token_bytes(32)
        self._key = hmac.new(root, purpose.encode(), hashlib.sha256).digest()

    def mac(self, value: str) -> str:
        return _b64(hmac.new(self._key, value.encode(), hashlib.sha256).digest())

    def sign(self, value: str) -> str:
        return f"{value}.{self.mac(value)}"

    def unsign(self, signed: str) -> str | None:
        value, _, mac = signed.rpartition(".")
        return value if value and hmac.compare_digest(mac, self.mac(value)) else None


# --- sessions -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    user: str
    sid: str
    expires: int


class Sessions:
    """Signed session cookies of one instance (`scope`: a cookie of another instance is refused)."""

    def __init__(self, secret: str, scope: str, *, secure: bool, ttl_s: int, now: Any = time.time) -> None:
        self.signer = Signer(secret, f"session:{scope}")
        self.scope, self.secure, self.ttl_s, self.now = scope, secure, ttl_s, now
        self.cookie = f"relais_session_{scope}"

    def open(self, response: Response, user: str) -> Session:
        session = Session(user, secrets.token_urlsafe(16), int(self.now()) + self.ttl_s)
        payload = _b64(json.dumps({"u": user, "s": session.sid, "e": session.expires, "a": self.scope}).encode())
        response.set_cookie(
            self.cookie,
            self.signer.sign(payload),
            max_age=self.ttl_s,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )
        return session

    def read(self, request: Request) -> Session | None:
        raw = request.cookies.get(self.cookie)
        payload = self.signer.unsign(raw) if raw else None
        if payload is None:
            return None
        try:
            data = json.loads(_unb64(payload))
        except ValueError:
            return None
        if data.get("a") != self.scope or int(data.get("e", 0)) <= self.now():
            return None
        return Session(str(data["u"]), str(data["s"]), int(data["e"]))

    def close(self, response: Response) -> None:
        response.delete_cookie(self.cookie, path="/", secure=self.secure, httponly=True, samesite="lax")


# --- forms ----------------------------------------------------------------------------------------------------


class FormData:
    """A submitted form: the values as typed (to show again), several values per name when a field repeats."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self.values: dict[str, list[str]] = {}
        for name, value in pairs:
            self.values.setdefault(name, []).append(value)

    def get(self, name: str, default: str = "") -> str:
        found = self.values.get(name)
        return found[0] if found else default

    def getlist(self, name: str) -> list[str]:
        return list(self.values.get(name, []))

    def text(self, name: str) -> str | None:
        """The trimmed value, None when blank (the API models treat a missing optional field as None)."""
        value = self.get(name).strip()
        return value or None

    def checked(self, name: str) -> bool:
        return name in self.values

    def lines(self, name: str) -> list[str]:
        """A textarea holding one item per line (reasons, sectors)."""
        return [line.strip() for line in self.get(name).splitlines() if line.strip()]

    def flat(self) -> dict[str, str]:
        return {name: values[0] for name, values in self.values.items() if values}


async def read_form(request: Request) -> FormData:
    """The urlencoded body of a form post (the only encoding our forms use; no upload)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != FORM_TYPE:
        return FormData()
    body = (await request.body()).decode("utf-8", errors="replace")
    return FormData(parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FIELDS))


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{"situation.postal_code": "69003"} -> {"situation": {"postal_code": "69003"}}."""
    nested: dict[str, Any] = {}
    for name, value in flat.items():
        parts = name.split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def field_errors(exc: ValidationError) -> dict[str, str]:
    """Field name (dotted, as the form names it) -> its first French message; "" for the whole form."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"] if not isinstance(part, int))
        errors.setdefault(name, french_message(dict(error)))
    return errors


@dataclass
class FormState:
    """What a template needs to show a form: the values typed, the errors, the labels (for the summary)."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    multi: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, form: FormData, labels: Mapping[str, str], errors: Mapping[str, str] | None = None) -> FormState:
        values = {k: v for k, v in form.flat().items() if k != CSRF_FIELD}
        return cls(values, dict(errors or {}), dict(labels), {k: v for k, v in form.values.items() if len(v) > 1})

    def value(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def checked(self, name: str, value: str | None = None) -> bool:
        if value is None:
            return name in self.values
        return value in self.multi.get(name, []) or self.values.get(name) == value

    def error(self, name: str) -> str | None:
        return self.errors.get(name)

    def id(self, name: str) -> str:
        return "champ-" + name.replace(".", "-").replace("_", "-")

    def label(self, name: str) -> str:
        return self.labels.get(name, "Formulaire")

    def summary(self) -> list[tuple[str, str, str]]:
        """(anchor, label, message) of each error, in the order of the form's labels."""
        order = {name: i for i, name in enumerate(self.labels)}
        names = sorted(self.errors, key=lambda n: order.get(n, len(order)))
        return [(self.id(n) if n in self.labels else "erreurs", self.label(n), self.errors[n]) for n in names]


# --- rendering --------------------------------------------------------------------------------------------------


def date_fr(value: Any) -> str:
    """12 mars 2026 (1er for the first of the month); '' for nothing."""
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00")) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        value = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(PARIS).date()
    return long_date(value)


def datetime_fr(value: Any) -> str:
    """12 mars 2026 à 14 h 05 (Paris time)."""
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        return date_fr(value)
    moment = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(PARIS)  # stored times are UTC
    return f"{date_fr(moment.date())} à {moment.hour} h {moment.minute:02d}"


def number_fr(value: Any) -> str:
    """1.5 -> '1,5'; 2.0 -> '2'; None -> '—'."""
    if value is None:
        return "—"
    return f"{value:.1f}".replace(".", ",").removesuffix(",0") if isinstance(value, float) else str(value)


def _static_version() -> str:
    """Changes with the static files, so that browsers fetch new ones after a deployment."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.glob("*")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


class Pages:
    """Templates of one service (its own folder first, then the shared one) and the page-side security."""

    def __init__(
        self,
        settings: PageSettings,
        template_dirs: Iterable[Path],
        *,
        scope: str,
        site: Mapping[str, Any],
    ) -> None:
        self.settings = settings
        self.csrf_signer = Signer(settings.pages_secret, f"csrf:{scope}")
        self.csrf_cookie = f"relais_csrf_{scope}"
        self.site = {
            "apesa_phone": settings.apesa_phone,
            "apesa_tel": "".join(ch for ch in settings.apesa_phone if ch.isdigit() or ch == "+"),
            "apesa_hours": settings.apesa_hours,
            "static_version": _static_version(),
            **site,
        }
        self.env = Environment(
            loader=ChoiceLoader([FileSystemLoader([str(d) for d in template_dirs]), FileSystemLoader(str(TEMPLATES))]),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(date_fr=date_fr, datetime_fr=datetime_fr, nombre=number_fr)

    # CSRF ------------------------------------------------------------------------------------------------

    def _csrf_value(self, request: Request) -> str:
        value = request.cookies.get(self.csrf_cookie)
        if value and 20 <= len(value) <= 64:
            return value
        fresh = getattr(request.state, "csrf_fresh", None)
        if fresh is None:
            fresh = request.state.csrf_fresh = secrets.token_urlsafe(24)
        return str(fresh)

    def csrf_token(self, request: Request) -> str:
        return self.csrf_signer.mac(self._csrf_value(request))

    def csrf_valid(self, request: Request, form: FormData) -> bool:
        cookie = request.cookies.get(self.csrf_cookie)
        token = form.get(CSRF_FIELD)
        return bool(cookie and token) and hmac.compare_digest(token, self.csrf_signer.mac(str(cookie)))

    # responses -------------------------------------------------------------------------------------------

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        page = self.env.get_template(template).render(
            request=request, site=self.site, csrf=self.csrf_token(request), path=request.url.path, **context
        )
        response = HTMLResponse(page, status_code=status)
        return self.finish(request, response)

    def redirect(self, request: Request, url: str, **query: str | None) -> RedirectResponse:
        """303 See Other: a refresh after a form post reloads the page, never posts again."""
        params = {k: v for k, v in query.items() if v is not None}
        response = RedirectResponse(url + (f"?{urlencode(params)}" if params else ""), status_code=303)
        return self.finish(request, response)

    def finish(self, request: Request, response: R) -> R:
        response.headers.update(SECURITY_HEADERS)
        fresh = getattr(request.state, "csrf_fresh", None)
        if fresh is not None:
            response.set_cookie(
                self.csrf_cookie, fresh, path="/", secure=self.settings.cookie_secure, httponly=True, samesite="lax"
            )
        return response


def static_files() -> StaticFiles:
    """The shared stylesheet, script and images, served at /static by each service with pages."""
    return StaticFiles(directory=STATIC)


def idempotency_key() -> str:
    """A fresh key for a form: a double click or a refresh sends it twice, and the service answers once."""
    return str(uuid.uuid4())
