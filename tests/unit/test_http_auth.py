"""The HTTP credentials written once (shared/auth.py) and the request limits (shared/http.py), on a small app."""
# No `from __future__ import annotations` here: FastAPI must see the routes' local dependencies itself.

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI, Request

from shared.auth import (
    ANONYMOUS,
    Authenticator,
    FailedAttempts,
    Partner,
    Refusal,
    RefusedAccess,
    Staff,
    hash_token,
    main,
)
from shared.http import RateLimiter, install_error_handlers
from shared.metrics import Metrics
from shared.schemas import Association
from shared.settings import InsecureSettings, ServiceSettings

SS, SR = Association.SECOND_SOUFFLE, Association.SOIXANTE_MILLE_REBONDS
TOKENS = {SS: {"claire": hash_token("t-claire")}, SR: {"karim": hash_token("t-karim")}}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Partners:
    async def partner_of(self, token_hash: str) -> str | None:
        return "etude-martin" if token_hash == hash_token("t-partner") else None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def audited() -> list[RefusedAccess]:
    return []


@pytest.fixture
def auth(clock: Clock, audited: list[RefusedAccess]) -> Authenticator:
    async def audit(refused: RefusedAccess) -> None:
        audited.append(refused)

    return Authenticator(
        TOKENS,
        partners=Partners(),
        failures=FailedAttempts(3, 60, clock=clock),
        audit=audit,
        audit_per_window=5,
        clock=clock,
    )


@pytest.fixture
async def client(auth: Authenticator) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_error_handlers(app, Metrics("test"))
    limiter = RateLimiter(2)

    @app.get("/any/{case_id}")
    async def any_staff(case_id: str, staff: Annotated[Staff, Depends(auth.staff())]) -> dict:
        return {"user": staff.user, "association": staff.association.value}

    @app.get("/ss")
    async def ss_only(staff: Annotated[Staff, Depends(auth.staff(SS))]) -> dict:
        return {"user": staff.user}

    @app.get("/partner")
    async def partner(who: Annotated[Partner | None, Depends(auth.partner(optional=True))]) -> dict:
        return {"partner": who.name if who else None}

    @app.get("/limited")
    async def limited(request: Request) -> dict:
        limiter.check("client")
        return {}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        yield http


async def test_a_staff_token_names_its_member_and_association(client: httpx.AsyncClient) -> None:
    assert (await client.get("/any/1", headers=bearer("t-karim"))).json() == {
        "user": "karim",
        "association": "60000_rebonds",
    }
    assert (await client.get("/ss", headers=bearer("t-claire"))).json() == {"user": "claire"}


async def test_no_or_an_unknown_credential_is_401_and_the_other_association_403(
    client: httpx.AsyncClient, audited: list[RefusedAccess]
) -> None:
    for headers in ({}, bearer("nope"), {"Authorization": "Basic a2FyaW0="}):
        response = await client.get("/any/c1", headers=headers)
        assert (response.status_code, response.headers["www-authenticate"]) == (401, "Bearer")
        assert response.json() == {"detail": "Jeton d'accès manquant ou inconnu pour cette association."}
    other = await client.get("/ss", headers=bearer("t-karim"))
    assert other.status_code == 403 and "60 000 rebonds" in other.json()["detail"]
    assert audited == [
        *[RefusedAccess(ANONYMOUS, "any_staff", Refusal.MISSING, "c1")] * 3,
        RefusedAccess("karim (60000_rebonds)", "ss_only", Refusal.OTHER_ASSOCIATION),
    ]


async def test_failed_attempts_are_throttled_per_client_until_the_window_ends(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    for _ in range(3):
        assert (await client.get("/ss", headers=bearer("guess"))).status_code == 401
    blocked = await client.get("/ss", headers=bearer("t-claire"))  # even a good token waits
    assert blocked.status_code == 429 and blocked.headers["retry-after"] == "60"
    assert blocked.json()["detail"].startswith("Trop de tentatives")
    clock.now += 61
    assert (await client.get("/ss", headers=bearer("t-claire"))).status_code == 200


async def test_missing_credentials_are_not_failed_logins(client: httpx.AsyncClient) -> None:
    for _ in range(10):
        assert (await client.get("/ss")).status_code == 401
    assert (await client.get("/ss", headers=bearer("t-claire"))).status_code == 200


async def test_refusals_reach_the_audit_within_the_window_s_budget_only(
    client: httpx.AsyncClient, audited: list[RefusedAccess], clock: Clock
) -> None:
    for _ in range(50):
        await client.get("/any/c2")
    assert len(audited) == 5  # the rest are counted only
    clock.now += 61
    await client.get("/any/c2")
    assert len(audited) == 6


def test_the_memory_of_failed_attempts_is_bounded(clock: Clock) -> None:
    failures = FailedAttempts(3, 60, max_clients=100, clock=clock)
    for n in range(10_000):
        failures.failed(f"10.0.{n // 256}.{n % 256}")
    assert len(failures) == 100
    limiter = RateLimiter(5, max_clients=100, clock=clock)
    for n in range(10_000):
        limiter.hit(f"client-{n}")
    assert len(limiter) == 100


async def test_a_partner_token_names_the_partner_and_none_is_anonymous(client: httpx.AsyncClient) -> None:
    assert (await client.get("/partner")).json() == {"partner": None}
    assert (await client.get("/partner", headers=bearer("t-partner"))).json() == {"partner": "etude-martin"}
    wrong = await client.get("/partner", headers=bearer("t-claire"))
    assert (wrong.status_code, wrong.json()["detail"]) == (401, "Jeton d'accès de partenaire manquant ou inconnu.")


async def test_the_rate_limit_answers_429_in_french_with_retry_after(client: httpx.AsyncClient) -> None:
    assert [(await client.get("/limited")).status_code for _ in range(2)] == [200, 200]
    refused = await client.get("/limited")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "30"
    assert refused.json() == {
        "detail": "Trop de demandes envoyées en peu de temps depuis votre connexion : réessayez dans 30 secondes."
    }


def test_a_service_refuses_the_development_tokens_unless_in_development_mode() -> None:
    from shared.auth import DEVELOPMENT_STAFF_TOKENS

    ServiceSettings(staff_tokens=TOKENS).refuse_insecure_defaults()
    with pytest.raises(InsecureSettings, match="development tokens"):
        ServiceSettings(staff_tokens=DEVELOPMENT_STAFF_TOKENS).refuse_insecure_defaults()
    ServiceSettings(staff_tokens=DEVELOPMENT_STAFF_TOKENS, development=True).refuse_insecure_defaults()


def test_the_token_command_prints_a_token_and_the_entry_every_service_accepts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    assert main(["60000_rebonds", "karim"]) == 0
    token_line, entry_line = capsys.readouterr().out.splitlines()
    entry = json.loads(entry_line.split(": ", 1)[1])
    settings = ServiceSettings(staff_tokens=entry)
    assert Authenticator(settings.staff_tokens).identify_staff(token_line.rsplit(" ", 1)[1]) == Staff("karim", SR)
    assert main(["elsewhere", "karim"]) == 2


def test_notifications_refuse_the_default_signing_key_unless_in_development_mode(tmp_path: Path) -> None:
    from services.notifications.settings import NotificationsSettings

    with pytest.raises(InsecureSettings, match="secret_key"):
        NotificationsSettings().refuse_insecure_defaults()
    NotificationsSettings(development=True).refuse_insecure_defaults()
    key = tmp_path / "key"
    key.write_text("a-long-random-signing-key\n")
    from_file = NotificationsSettings(secret_key_file=str(key))
    from_file.refuse_insecure_defaults()
    assert from_file.signing_key() == "a-long-random-signing-key"


def test_a_service_process_exits_before_serving_with_default_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    from services.notifications.settings import NotificationsSettings
    from shared.bootstrap import serve

    with pytest.raises(SystemExit) as exited:
        serve(FastAPI(), NotificationsSettings())
    assert exited.value.code == 2 and "refuses to start with default secrets" in capsys.readouterr().err
