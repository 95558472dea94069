"""Staff authentication: bearer tokens of one association's staff, stored only as SHA-256 hashes.

Each coaching instance knows its own association's tokens (setting STAFF_TOKENS), so a token of the
other association is simply unknown here. Tokens are long random strings: a plain SHA-256 is enough
to store them (nothing to brute-force), and the comparison is constant-time.

`python -m services.coaching.auth <user>` prints a new token and the settings entry that accepts it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sys
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.coaching.audit import AuditTrail

ANONYMOUS = "anonyme"


def hash_token(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Staff:
    user: str


BEARER = HTTPBearer(auto_error=False, description="Jeton d'accès du personnel de l'association")


class StaffAuth:
    """FastAPI dependency: the staff member behind the request's bearer token, or 401 (audited)."""

    def __init__(self, tokens: dict[str, str], audit: AuditTrail) -> None:
        self.tokens = dict(tokens)
        self.audit = audit

    def identify(self, token: str) -> str | None:
        presented = hash_token(token)
        user = None
        for candidate, stored in self.tokens.items():  # no early exit: constant time in the token
            if hmac.compare_digest(presented, stored):
                user = candidate
        return user

    async def __call__(
        self, request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
    ) -> Staff:
        user = self.identify(credentials.credentials) if credentials else None
        if user is None:
            route = request.scope.get("route")
            await self.audit.record(
                ANONYMOUS,
                getattr(route, "name", request.url.path),
                "non_authentifie",
                case_id=request.path_params.get("case_id"),
            )
            raise HTTPException(
                401, "Jeton d'accès manquant ou inconnu pour cette association.", headers={"WWW-Authenticate": "Bearer"}
            )
        return Staff(user)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].strip():
        print("usage: python -m services.coaching.auth <staff user>", file=sys.stderr)
        return 2
    token = secrets.token_urlsafe(32)
    print(f"token (give it to {argv[0]}, store it nowhere else): {token}")
    print(f"settings entry (RELAIS_COACHING_STAFF_TOKENS): {json.dumps({argv[0]: hash_token(token)})}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
