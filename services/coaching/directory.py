"""The association's antennas as routing's directory has them (routing owns the directory): read and edited
over routing's HTTP API with a staff token of this association (setting ROUTING_TOKEN), for the staff pages.

Routing decides: its refusals (403, 404, 422) come back as `DirectoryRefused` with French messages, per field
when routing names one. The token is never logged."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.schemas import Association

log = logging.getLogger("relais.coaching.directory")

# What staff may change of an antenna from the staff pages (routing's AntennaPatch has these and more).
EDITABLE = ("name", "contact", "status")


class DirectoryAntenna(BaseModel):
    """What the staff pages show of an antenna (routing's answer has more: only these fields are read)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    association: Association
    name: str
    city: str | None = None
    status: str
    contact: str
    free_places: int | None = None


class DirectoryUnavailable(Exception):
    """Routing could not be reached, or answered something unexpected: nothing is known to have changed."""


class DirectoryRefused(Exception):
    """Routing refused the change; `errors` maps a field to its French message when routing names one."""

    def __init__(self, status: int, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors or {}


class AntennaDirectory(Protocol):
    @property
    def configured(self) -> bool:
        """Whether this instance holds a credential for the directory."""

    async def antennas(self) -> list[DirectoryAntenna] | None:
        """The association's antennas, or None when the directory cannot be read now."""

    async def update(self, antenna_id: str, changes: dict[str, Any]) -> DirectoryAntenna:
        """Routing's answer to the change; raises DirectoryRefused or DirectoryUnavailable."""


NOT_CONFIGURED = "L'annuaire du routage n'est pas configuré sur cette instance (jeton ROUTING_TOKEN absent)."
_REFUSED = {
    401: "Le routage ne reconnaît pas le jeton de cette instance : rien n'a été modifié (voir ROUTING_TOKEN).",
    403: "Le routage refuse : cette antenne n'appartient pas à l'association.",
    404: "Antenne introuvable dans l'annuaire du routage.",
    422: "Le routage refuse certaines informations : rien n'a été modifié.",
}


def refusal_of(answer: httpx.Response) -> DirectoryRefused:
    """Routing's 4xx as a French refusal: its own message when it gives one, its field errors by field."""
    try:
        body = answer.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    errors = {
        str(e.get("field")): str(e.get("message"))
        for e in body.get("errors") or []
        if isinstance(e, dict) and e.get("field") and e.get("message")
    }
    detail = body.get("detail") if answer.status_code in (403, 422) else None
    message = detail if isinstance(detail, str) and detail else _REFUSED.get(answer.status_code, _REFUSED[422])
    return DirectoryRefused(answer.status_code, message, errors)


class RoutingDirectory:
    def __init__(self, base_url: str, association: Association, token: str | None, timeout_s: float = 3.0) -> None:
        self.base_url, self.association, self.timeout_s = base_url.rstrip("/"), association, timeout_s
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        if not token:
            log.warning("antenna directory not configured: no routing token")

    @property
    def configured(self) -> bool:
        return bool(self._headers)

    async def antennas(self) -> list[DirectoryAntenna] | None:
        if not self.configured:
            return None
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s, headers=self._headers) as client:
                answer = await client.get(f"{self.base_url}/antennas")
            answer.raise_for_status()
            found = [DirectoryAntenna.model_validate(item) for item in answer.json()]
        except (httpx.HTTPError, ValueError, ValidationError) as exc:
            log.warning("antenna directory unavailable", extra={"error": type(exc).__name__})
            return None
        return sorted((a for a in found if a.association is self.association), key=lambda a: a.name)

    async def update(self, antenna_id: str, changes: dict[str, Any]) -> DirectoryAntenna:
        if not self.configured:
            raise DirectoryUnavailable(NOT_CONFIGURED)
        body = {k: v for k, v in changes.items() if k in EDITABLE}
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s, headers=self._headers) as client:
                answer = await client.patch(f"{self.base_url}/antennas/{antenna_id}", json=body)
        except httpx.HTTPError as exc:
            log.warning("antenna directory unavailable", extra={"error": type(exc).__name__})
            raise DirectoryUnavailable(type(exc).__name__) from None
        if answer.status_code in _REFUSED:
            raise refusal_of(answer)
        try:
            answer.raise_for_status()
            return DirectoryAntenna.model_validate(answer.json())
        except (httpx.HTTPError, ValueError, ValidationError) as exc:
            log.warning("antenna directory answered unexpectedly", extra={"status": answer.status_code})
            raise DirectoryUnavailable(type(exc).__name__) from None
