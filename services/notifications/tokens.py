"""Signed, opaque identifiers: unsubscribe links and the partner feed's referral ids.

Both are HMACs under the service's secret with distinct purposes, so neither can be forged or linked back
to a case id by someone who does not hold the secret. Nothing is stored: a token is verified by recomputing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid

from services.notifications.domain import Recipient

_ROLES = list(Recipient)
_MAC_BYTES = 12


class Tokens:
    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def _mac(self, purpose: bytes, data: bytes) -> bytes:
        return hmac.new(self._secret, purpose + b"|" + data, hashlib.sha256).digest()

    def unsubscribe(self, case_id: str, recipient: Recipient) -> str:
        """A URL-safe token naming (case, recipient role); 40 characters."""
        data = uuid.UUID(case_id).bytes + bytes([_ROLES.index(recipient)])
        raw = data + self._mac(b"unsubscribe", data)[:_MAC_BYTES]
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def read_unsubscribe(self, token: str) -> tuple[str, Recipient] | None:
        """The (case id, recipient) a genuine token names, or None for anything else."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) != 17 + _MAC_BYTES or raw[16] >= len(_ROLES):
            return None
        data, mac = raw[:17], raw[17:]
        if not hmac.compare_digest(mac, self._mac(b"unsubscribe", data)[:_MAC_BYTES]):
            return None
        return str(uuid.UUID(bytes=data[:16])), _ROLES[data[16]]

    def referral_id(self, case_id: str) -> str:
        """The partner feed's opaque id of a referral: 20 hex digits, stable per case."""
        return self._mac(b"referral", uuid.UUID(case_id).bytes).hex()[:20]
