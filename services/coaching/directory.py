"""The association's antennas as routing's directory has them (routing owns the directory): read over
routing's HTTP API, for the staff pages only. Editing stays with routing's API."""

from __future__ import annotations

import logging
from typing import Protocol

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.schemas import Association

log = logging.getLogger("relais.coaching.directory")


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


class AntennaDirectory(Protocol):
    async def antennas(self) -> list[DirectoryAntenna] | None:
        """The association's antennas, or None when the directory cannot be read now."""


class RoutingDirectory:
    def __init__(self, base_url: str, association: Association, timeout_s: float = 3.0) -> None:
        self.base_url, self.association, self.timeout_s = base_url.rstrip("/"), association, timeout_s

    async def antennas(self) -> list[DirectoryAntenna] | None:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                answer = await client.get(f"{self.base_url}/antennas")
            answer.raise_for_status()
            found = [DirectoryAntenna.model_validate(item) for item in answer.json()]
        except (httpx.HTTPError, ValueError, ValidationError) as exc:
            log.warning("antenna directory unavailable", extra={"error": type(exc).__name__})
            return None
        return sorted((a for a in found if a.association is self.association), key=lambda a: a.name)
