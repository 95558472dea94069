"""Staff authentication of coaching: the shared token checks (shared/auth.py) scoped to this instance's
association, and the staff pages' sign-in by password.

Tokens are long random strings: a plain SHA-256 is enough to store them. Passwords are chosen by people:
they are stored as scrypt hashes (memory-hard, salted), so that a leaked settings file does not give them
away; failed sign-ins are throttled per client with the same counter as failed tokens.

`python -m services.coaching.auth <user>` prints a token and the entry that accepts it on one instance
(`python -m shared.auth <association> <user>` prints the entry every service accepts);
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

from services.coaching.audit import AuditTrail
from shared.auth import (
    ANONYMOUS,
    AuditHook,
    FailedAttempts,
    RefusedAccess,
    Staff,
    StaffDependency,
    hash_token,
    new_token,
)
from shared.schemas import Association

__all__ = [
    "ANONYMOUS",
    "Staff",
    "StaffAuth",
    "StaffPasswords",
    "audit_refusals",
    "hash_password",
    "hash_token",
    "main",
]

# The dependency that resolves the staff member of this instance's association (403 for the other's).
StaffAuth = StaffDependency

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


class StaffPasswords:
    """The staff pages' sign-in: this association's staff passwords (hashes only), throttled per client."""

    def __init__(self, passwords: dict[str, str], association: Association, failures: FailedAttempts) -> None:
        self.passwords = dict(passwords)
        self.association = association
        self.failures = failures

    def retry_after(self, client: str) -> int | None:
        """Seconds before this client may try again after too many failures, or None."""
        return self.failures.retry_after(client)

    def sign_in(self, client: str, user: str, password: str) -> Staff | None:
        """The staff member whose password this is, or None (as slow for an unknown user as for a known one)."""
        stored = self.passwords.get(user)
        matches = password_matches(stored or _NOBODY, password)
        if stored is not None and matches:
            self.failures.succeeded(client)
            return Staff(user, self.association)
        self.failures.failed(client)
        return None


def audit_refusals(audit: AuditTrail) -> AuditHook:
    """Refusals go into the instance's access audit (the authenticator's budget bounds how many)."""

    async def record(refused: RefusedAccess) -> None:
        await audit.record(refused.who, refused.action, refused.outcome.value, case_id=refused.case_id)

    return record


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--password" and argv[1].strip():
        password = getpass.getpass(f"password for {argv[1]}: ")
        if len(password) < 12 or getpass.getpass("again: ") != password:
            print("passwords differ or are shorter than 12 characters", file=sys.stderr)
            return 2
        print(f"settings entry (RELAIS_COACHING_STAFF_PASSWORDS): {json.dumps({argv[1]: hash_password(password)})}")
        return 0
    if len(argv) != 1 or not argv[0].strip():
        print("usage: python -m services.coaching.auth [--password] <staff user>", file=sys.stderr)
        return 2
    token = new_token()
    print(f"token (give it to {argv[0]}, store it nowhere else): {token}")
    print(f"settings entry (RELAIS_COACHING_STAFF_TOKENS): {json.dumps({argv[0]: hash_token(token)})}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
