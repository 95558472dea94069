"""Fixtures shared by several unit test files."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.intake.app import create_app
from services.intake.settings import IntakeSettings
from shared.auth import hash_token
from tests.fakes.intake import FakePartnerCredentials

INTAKE_MAX_BYTES = 8192


@pytest.fixture
async def intake_client() -> AsyncIterator[httpx.AsyncClient]:
    """The intake app without store nor broker, for what it refuses before reaching them."""
    # An unreachable store: if validation let a request through, the test would see an error, not a 4xx.
    settings = IntakeSettings(
        max_request_bytes=INTAKE_MAX_BYTES, mongo_url="mongodb://127.0.0.1:9/", kafka_bootstrap="127.0.0.1:9"
    )
    partners = FakePartnerCredentials()
    await partners.add("etude-martin", hash_token("partner-token"))  # a partner account: Bearer partner-token
    app = create_app(settings, partners=partners)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake") as http:
        yield http
