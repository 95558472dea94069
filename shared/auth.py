"""Who is calling over HTTP: a staff member of one association, or a referring partner. Checked here, once.

- Staff: bearer tokens, stored only as SHA-256 hashes, grouped by association (setting STAFF_TOKENS, the same
  JSON for every service). A token names one `Staff(user, association)`; each route then decides what that
  association may see (routing and notifications serve both associations, a coaching instance only its own).
- Partners: bearer tokens made by `relais partners add`, stored as hashes where intake reads them
  (`PartnerDirectory`). A partner token names one `Partner(name)`.
- Tokens are long random strings: a plain SHA-256 is enough to store them (nothing to brute-force) and the
  comparison with the configured staff hashes is constant-time.
- Failed attempts: a client whose presented tokens fail `max_failures` times in a window is refused (429)
  until the window ends, without its tokens being checked; the memory kept for this is bounded.
- Refusals are counted (metrics) and reported to an audit hook, at most `audit_per_window` of them per window:
  anonymous traffic cannot grow an audit collection faster than that.

`python -m shared.auth <association> <user>` prints a new staff token and the settings entry that accepts it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Protocol

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Counter

from shared.schemas import Association

log = logging.getLogger("relais.auth")

ANONYMOUS = "anonyme"
TOKEN_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
# Staff user -> token hash, per association: the value of the STAFF_TOKENS setting.
StaffTokens = dict[Association, dict[str, str]]

# The development tokens of `make run` and the end-to-end tests (docs/coaching.md prints them): public, so a
# service refuses to start with any of them unless it runs in development mode.
DEVELOPMENT_STAFF_TOKENS: StaffTokens = {
    Association.SECOND_SOUFFLE: {"claire": "sha256:65b521058aabfbe6b68c47d495b8a3209378481eaab8a12f2bff6667a39dc7c6"},
    Association.SOIXANTE_MILLE_REBONDS: {
        "karim": "sha256:e6480b1a813545a44d856dd09b97ab8ad90c85d444c77154990b29263c4d8d6c"
    },
}


def hash_token(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def check_staff_tokens(tokens: Mapping[Association, Mapping[str, str]]) -> StaffTokens:
    """Hashes only: a plain token in the settings would be a password in the environment."""
    for association, users in tokens.items():
        for user, hashed in users.items():
            if not user.strip() or not TOKEN_HASH.match(hashed):
                raise ValueError(
                    f"staff_tokens[{association.value}][{user!r}] must be 'sha256:<64 hex digits>', never a plain token"
                )
    return {association: dict(users) for association, users in tokens.items()}


def development_tokens_in(tokens: StaffTokens) -> list[str]:
    """The configured staff entries whose hash is a public development token's."""
    public = {hashed for users in DEVELOPMENT_STAFF_TOKENS.values() for hashed in users.values()}
    return [f"{a.value}/{user}" for a, users in tokens.items() for user, hashed in users.items() if hashed in public]


@dataclass(frozen=True)
class Staff:
    """A staff member: their user name within their association."""

    user: str
    association: Association


@dataclass(frozen=True)
class Partner:
    """A referring partner with an account (`relais partners add <name>`)."""

    name: str


class PartnerDirectory(Protocol):
    async def partner_of(self, token_hash: str) -> str | None:
        """The partner a token hash belongs to, or None."""


class Refusal(StrEnum):
    """Why a request was refused (the audit's `outcome`)."""

    MISSING = "non_authentifie"  # no credential, or one nobody issued
    OTHER_ASSOCIATION = "autre_association"  # a valid staff token of the other association
    THROTTLED = "trop_de_tentatives"


@dataclass(frozen=True)
class RefusedAccess:
    """One refused request, as the audit records it: no token, no address, no personal data."""

    who: str  # ANONYMOUS, or the staff user of the other association
    action: str  # the route's name
    outcome: Refusal
    case_id: str | None = None


AuditHook = Callable[[RefusedAccess], Awaitable[None]]


async def log_refusal(refused: RefusedAccess) -> None:
    """The audit of services that keep no audit collection: one log line per audited refusal."""
    log.warning(
        "access refused",
        extra={
            "who": refused.who,
            "action": refused.action,
            "outcome": refused.outcome.value,
            "case_id": refused.case_id,
        },
    )


class Window:
    """A bounded map client -> (window start, count); the least recently seen client is forgotten first."""

    def __init__(self, window_s: float, max_clients: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s, self.max_clients, self.clock = window_s, max_clients, clock
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def count(self, client: str) -> tuple[float, int]:
        now = self.clock()
        started, count = self._seen.get(client, (now, 0))
        if now - started >= self.window_s:
            started, count = now, 0
        return started, count

    def add(self, client: str) -> int:
        started, count = self.count(client)
        self._seen[client] = (started, count + 1)
        self._seen.move_to_end(client)
        while len(self._seen) > self.max_clients:
            self._seen.popitem(last=False)
        return count + 1

    def forget(self, client: str) -> None:
        self._seen.pop(client, None)

    def remaining_s(self, client: str) -> float:
        started, _ = self.count(client)
        return max(0.0, self.window_s - (self.clock() - started))

    def __len__(self) -> int:
        return len(self._seen)


class FailedAttempts:
    """Per client, the presented credentials that failed in the current window; bounded memory."""

    def __init__(
        self,
        max_failures: int = 10,
        window_s: float = 300,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self._window = Window(window_s, max_clients, clock)

    @property
    def window_s(self) -> float:
        return self._window.window_s

    def retry_after(self, client: str) -> int | None:
        """Seconds before this client may try again, or None when it may try now."""
        if self.max_failures <= 0 or self._window.count(client)[1] < self.max_failures:
            return None
        return max(1, math.ceil(self._window.remaining_s(client)))

    def failed(self, client: str) -> int:
        return self._window.add(client)

    def succeeded(self, client: str) -> None:
        self._window.forget(client)

    def __len__(self) -> int:
        return len(self._window)


class AuditBudget:
    """At most `per_window` refusals audited per window, whoever sends them; the rest are only counted."""

    def __init__(self, per_window: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_window = per_window
        self._window = Window(window_s, 1, clock)

    def take(self) -> bool:
        if self._window.count("all")[1] >= self.per_window:
            return False
        self._window.add("all")
        return True


def client_of(request: Request) -> str:
    """The peer address (behind a proxy, the one uvicorn's proxy headers give); kept in memory only."""
    return request.client.host if request.client is not None else "inconnu"


def _action(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "name", request.url.path))


STAFF_BEARER = HTTPBearer(
    auto_error=False, scheme_name="personnel", description="Jeton d'accès d'un membre du personnel d'une association"
)
PARTNER_BEARER = HTTPBearer(
    auto_error=False, scheme_name="partenaire", description="Jeton d'accès d'un partenaire (relais partners add)"
)
Credentials = HTTPAuthorizationCredentials | None
UNAUTHENTICATED = "Jeton d'accès manquant ou inconnu pour cette association."
PARTNER_UNAUTHENTICATED = "Jeton d'accès de partenaire manquant ou inconnu."


class Authenticator:
    """The credential checks of one service: staff of either association and, at intake, partners.

    `staff(association)` and `partner()` are FastAPI dependencies (the same object on every call, so that
    FastAPI resolves each once per request); `staff_from_token` is the same check for a sign-in form.
    """

    def __init__(
        self,
        staff_tokens: StaffTokens,
        *,
        partners: PartnerDirectory | None = None,
        failures: FailedAttempts | None = None,
        audit: AuditHook = log_refusal,
        audit_per_window: int = 100,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.staff_tokens = [
            (Staff(user, association), hashed)
            for association, users in check_staff_tokens(staff_tokens).items()
            for user, hashed in users.items()
        ]
        self.partners = partners
        self.failures = failures if failures is not None else FailedAttempts(clock=clock)
        self.audit = audit
        self.budget = AuditBudget(audit_per_window, self.failures.window_s, clock)
        self.refusals = Counter(
            "relais_http_refusals",
            "Requests refused for their credentials, by reason",
            ["reason"],
            registry=registry if registry is not None else CollectorRegistry(),
        )
        self._staff: dict[Association | None, StaffDependency] = {}
        self._partner: dict[bool, PartnerDependency] = {}

    # --- the checks ---------------------------------------------------------------------------------------

    def identify_staff(self, token: str) -> Staff | None:
        presented = hash_token(token)
        found = None
        for staff, stored in self.staff_tokens:  # no early exit: constant time in the token
            if hmac.compare_digest(presented, stored):
                found = staff
        return found

    async def identify_partner(self, token: str) -> Partner | None:
        if self.partners is None:
            return None
        name = await self.partners.partner_of(hash_token(token))
        return Partner(name) if name else None

    async def staff_from_token(
        self, request: Request, token: str | None, association: Association | None = None
    ) -> Staff:
        """The staff member behind `token`, or an HTTPException (401, 403 or 429), audited and throttled."""
        client = client_of(request)
        self._throttle(client)
        staff = self.identify_staff(token) if token else None
        if staff is None:
            if token:
                self.failures.failed(client)
            await self.refuse(request, Refusal.MISSING)
            raise HTTPException(401, UNAUTHENTICATED, headers={"WWW-Authenticate": "Bearer"})
        self.failures.succeeded(client)
        if association is not None and staff.association is not association:
            await self.refuse(request, Refusal.OTHER_ASSOCIATION, who=f"{staff.user} ({staff.association.value})")
            raise HTTPException(
                403,
                f"Ce jeton est celui du personnel de {staff.association.display_name} : cette adresse ne sert "
                f"que {association.display_name}.",
            )
        return staff

    async def partner_from_token(self, request: Request, token: str | None) -> Partner:
        client = client_of(request)
        self._throttle(client)
        partner = await self.identify_partner(token) if token else None
        if partner is None:
            if token:
                self.failures.failed(client)
            await self.refuse(request, Refusal.MISSING)
            raise HTTPException(401, PARTNER_UNAUTHENTICATED, headers={"WWW-Authenticate": "Bearer"})
        self.failures.succeeded(client)
        return partner

    def _throttle(self, client: str) -> None:
        wait = self.failures.retry_after(client)
        if wait is not None:
            self.refusals.labels(Refusal.THROTTLED.value).inc()
            raise HTTPException(
                429,
                f"Trop de tentatives avec un jeton d'accès invalide : réessayez dans {wait} secondes.",
                headers={"Retry-After": str(wait)},
            )

    async def refuse(self, request: Request, outcome: Refusal, who: str = ANONYMOUS) -> None:
        """Count a refusal, and audit it while the window's budget lasts."""
        self.refusals.labels(outcome.value).inc()
        if self.budget.take():
            case_id = request.path_params.get("case_id")
            await self.audit(RefusedAccess(who, _action(request), outcome, str(case_id) if case_id else None))

    # --- FastAPI dependencies -----------------------------------------------------------------------------

    def staff(self, association: Association | None = None) -> StaffDependency:
        """A staff member of `association` (403 for the other's), or of either when None."""
        if association not in self._staff:
            self._staff[association] = StaffDependency(self, association)
        return self._staff[association]

    def partner(self, optional: bool = False) -> PartnerDependency:
        """A partner; with `optional`, None when the request carries no credential at all."""
        if optional not in self._partner:
            self._partner[optional] = PartnerDependency(self, optional)
        return self._partner[optional]


class StaffDependency:
    def __init__(self, auth: Authenticator, association: Association | None) -> None:
        self.auth, self.association = auth, association

    async def __call__(self, request: Request, credentials: Annotated[Credentials, Depends(STAFF_BEARER)]) -> Staff:
        return await self.auth.staff_from_token(
            request, credentials.credentials if credentials else None, self.association
        )


class PartnerDependency:
    def __init__(self, auth: Authenticator, optional: bool) -> None:
        self.auth, self.optional = auth, optional

    async def __call__(
        self, request: Request, credentials: Annotated[Credentials, Depends(PARTNER_BEARER)]
    ) -> Partner | None:
        if credentials is None and self.optional and "authorization" not in request.headers:
            return None
        return await self.auth.partner_from_token(request, credentials.credentials if credentials else None)


def staff_entry(association: Association, user: str, token: str) -> dict[str, Any]:
    return {association.value: {user: hash_token(token)}}


def main(argv: list[str]) -> int:
    usage = "usage: python -m shared.auth <association: second_souffle | 60000_rebonds> <staff user>"
    if len(argv) != 2 or argv[0] not in {a.value for a in Association} or not argv[1].strip():
        print(usage, file=sys.stderr)
        return 2
    association, user = Association(argv[0]), argv[1].strip()
    token = new_token()
    print(f"token (give it to {user}, store it nowhere else): {token}")
    entry = json.dumps(staff_entry(association, user, token))
    print(f"settings entry (merge into RELAIS_<SERVICE>_STAFF_TOKENS): {entry}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
