"""Staff authentication of coaching: the shared checks (shared/auth.py), scoped to this instance's association.

Kept as coaching's import point for the staff identity (`Staff(user, association)`) and its dependency;
`python -m services.coaching.auth <user>` prints a token and the entry that accepts it on one instance
(`python -m shared.auth <association> <user>` prints the entry every service accepts).
"""

from __future__ import annotations

import json
import sys

from services.coaching.audit import AuditTrail
from shared.auth import ANONYMOUS, AuditHook, RefusedAccess, Staff, StaffDependency, hash_token, new_token

__all__ = ["ANONYMOUS", "Staff", "StaffAuth", "audit_refusals", "hash_token", "main"]

# The dependency that resolves the staff member of this instance's association (403 for the other's).
StaffAuth = StaffDependency


def audit_refusals(audit: AuditTrail) -> AuditHook:
    """Refusals go into the instance's access audit (the authenticator's budget bounds how many)."""

    async def record(refused: RefusedAccess) -> None:
        await audit.record(refused.who, refused.action, refused.outcome.value, case_id=refused.case_id)

    return record


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].strip():
        print("usage: python -m services.coaching.auth <staff user>", file=sys.stderr)
        return 2
    token = new_token()
    print(f"token (give it to {argv[0]}, store it nowhere else): {token}")
    print(f"settings entry (RELAIS_COACHING_STAFF_TOKENS): {json.dumps({argv[0]: hash_token(token)})}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
