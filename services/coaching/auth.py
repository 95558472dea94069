"""Staff authentication: bearer tokens for the API, passwords for the pages, of one association's staff.

Each coaching instance knows its own association's staff (settings STAFF_TOKENS, STAFF_PASSWORDS), so a
token or a password of the other association is simply unknown here. Tokens are long random strings: a
plain SHA-256 is enough to store them (nothing to brute-force). Passwords are chosen by people: they are
stored as scrypt hashes (memory-hard, salted), so that a leaked settings file does not give them away.
Comparisons are constant-time.

`python -m services.coaching.auth <user>` prints a new token and the settings entry that accepts it;
`python -m services.coaching.auth --password <user>` asks for a password and prints its entry.
"""

from __future__ import annotations

import base64
import getpass
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


# scrypt's cost: 16 MiB of memory and a few tens of milliseconds per attempt.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + 2**20, dklen=32)


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def password_matches(stored: str, password: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        computed = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(computed, _unb64(digest))


# Checked when the user is unknown, so that an unknown name takes as long as a wrong password.
_NOBODY = hash_password(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Staff:
    user: str


BEARER = HTTPBearer(auto_error=False, description="Jeton d'accès du personnel de l'association")


class StaffAuth:
    """FastAPI dependency: the staff member behind the request's bearer token, or 401 (audited)."""

    def __init__(self, tokens: dict[str, str], audit: AuditTrail, passwords: dict[str, str] | None = None) -> None:
        self.tokens = dict(tokens)
        self.passwords = dict(passwords or {})
        self.audit = audit

    def sign_in(self, user: str, password: str) -> Staff | None:
        """The staff member whose password this is, or None (as slow for an unknown user as for a known one)."""
        stored = self.passwords.get(user)
        matches = password_matches(stored or _NOBODY, password)
        return Staff(user) if stored is not None and matches else None

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
    if argv[:1] == ["--password"] and len(argv) == 2 and argv[1].strip():
        password = getpass.getpass(f"password of {argv[1]}: ")
        if len(password) < 12 or password != getpass.getpass("again: "):
            print("passwords differ or are shorter than 12 characters", file=sys.stderr)
            return 2
        print(f"settings entry (RELAIS_COACHING_STAFF_PASSWORDS): {json.dumps({argv[1]: hash_password(password)})}")
        return 0
    if len(argv) != 1 or not argv[0].strip() or argv[0].startswith("-"):
        print("usage: python -m services.coaching.auth [--password] <staff user>", file=sys.stderr)
        return 2
    token = secrets.token_urlsafe(32)
    print(f"token (give it to {argv[0]}, store it nowhere else): {token}")
    print(f"settings entry (RELAIS_COACHING_STAFF_TOKENS): {json.dumps({argv[0]: hash_token(token)})}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
