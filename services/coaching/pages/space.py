"""What every page of a coaching instance shares: the templates, the staff session, the audited guard of the
API, and turning a form into the API's request model (or its errors, in French, next to their fields)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError

from services.coaching.api.guard import Guard
from services.coaching.audit import AuditTrail
from services.coaching.auth import ANONYMOUS, Staff, StaffPasswords
from services.coaching.service import CoachingService
from services.coaching.settings import CoachingSettings
from shared.http import french_message
from shared.pages import FormData, FormState, Pages, Sessions, field_errors, read_form

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

STAFF_NAV = [
    ("/espace/dossiers", "Dossiers"),
    ("/espace/tableau-de-bord", "Tableau de bord"),
    ("/espace/points-etape", "Points d'étape"),
    ("/espace/benevoles", "Bénévoles"),
    ("/espace/candidatures", "Candidatures"),
    ("/espace/file-attente", "File d'attente"),
    ("/espace/antennes", "Antennes"),
    ("/espace/couverture", "Couverture"),
]
PUBLIC_NAV = [("/benevolat", "Devenir bénévole"), ("/espace/connexion", "Espace du personnel")]
EXPIRED = "Ce formulaire a expiré (page restée ouverte trop longtemps ?) : rien n'a été enregistré, recommencez."


@dataclass(frozen=True)
class Refusal:
    """A step the service refused (404, 409) or a form it could not take (422), shown on the page."""

    status: int
    message: str
    errors: dict[str, str]


class Space:
    def __init__(
        self, service: CoachingService, passwords: StaffPasswords, audit: AuditTrail, settings: CoachingSettings
    ) -> None:
        self.service, self.passwords, self.audit, self.settings = service, passwords, audit, settings
        self.association = settings.association
        self.guard = Guard(audit)
        scope = settings.association.value
        self.sessions = Sessions(
            settings.pages_secret, scope, secure=settings.cookie_secure, ttl_s=int(settings.session_hours * 3600)
        )
        self.pages = Pages(
            settings,
            [TEMPLATES],
            scope=scope,
            site={
                "name": f"Relais · {settings.association.display_name}",
                "association": settings.association.display_name,
                "home": "/",
                "nav": PUBLIC_NAV,
            },
        )

    # --- who is there -----------------------------------------------------------------------------------------

    def staff(self, request: Request) -> Staff | None:
        session = self.sessions.read(request)
        return Staff(session.user, self.association) if session is not None else None

    def to_sign_in(self, request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return self.pages.redirect(request, "/espace/connexion", suite=target)

    async def sign_in(self, client: str, user: str, password: str) -> Staff | None:
        """scrypt takes tens of milliseconds of CPU: off the event loop."""
        staff = await asyncio.to_thread(self.passwords.sign_in, client, user, password)
        await self.audit.record(
            staff.user if staff else ANONYMOUS, "session.login", "ok" if staff else "non_authentifie"
        )
        return staff

    # --- rendering ------------------------------------------------------------------------------------------

    def render(
        self, request: Request, template: str, staff: Staff | None, status: int = 200, **context: Any
    ) -> HTMLResponse:
        site = {**self.pages.site, "nav": STAFF_NAV if staff else PUBLIC_NAV}
        page = self.pages.env.get_template(template).render(
            request=request,
            site=site,
            staff=staff,
            csrf=self.pages.csrf_token(request),
            path=request.url.path,
            **context,
        )
        return self.pages.finish(request, HTMLResponse(page, status_code=status))

    def not_found(self, request: Request, staff: Staff | None, message: str = "Dossier introuvable.") -> HTMLResponse:
        return self.render(request, "introuvable.html", staff, 404, message=message)

    def back(self, request: Request, url: str, **query: str | None) -> Response:
        return self.pages.redirect(request, url, **query)

    # --- forms and steps ------------------------------------------------------------------------------------

    async def form(self, request: Request) -> tuple[FormData, bool]:
        """The posted form, and whether its CSRF token is good."""
        data = await read_form(request)
        return data, self.pages.csrf_valid(request, data)

    @staticmethod
    def parse(model: type[M], data: Mapping[str, Any]) -> M | Refusal:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            return Refusal(422, "Certaines informations sont invalides ou manquantes.", field_errors(exc))

    async def step(self, staff: Staff, action: str, op: Callable[[], Awaitable[T]], **audited: Any) -> T | Refusal:
        """One audited step through the API's own guard: its refusals become a message on the page."""
        try:
            return await self.guard(staff, action, op, **audited)
        except HTTPException as exc:
            return Refusal(exc.status_code, str(exc.detail), {})
        except RequestValidationError as exc:
            return Refusal(422, "Certaines informations sont invalides ou manquantes.", _request_errors(exc))

    @staticmethod
    def state(data: FormData, labels: Mapping[str, str], refusal: Refusal | None = None) -> FormState:
        return FormState.of(data, labels, refusal.errors if refusal else None)


def _request_errors(exc: RequestValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        loc = [str(part) for part in error["loc"] if part not in ("body", "query", "path")]
        errors.setdefault(".".join(loc), french_message(dict(error)))
    return errors
