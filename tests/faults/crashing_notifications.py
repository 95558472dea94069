"""The notifications service with an SMTP transport that kills the process at one point of one send.

Started by tests/faults/test_notifications_crash.py instead of `python -m services.notifications`: the
same `create_app`, with the real SMTP transport wrapped. `RELAIS_FAULT_CRASH_AT=<point>:<Message-ID>`:
`before_data` dies once the server accepted the envelope, before phase `donnees` is recorded;
`after_data` dies on the server's 250 to DATA, before `envoye` is recorded.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable
from email.parser import BytesHeaderParser

from services.notifications.app import create_app
from services.notifications.dispatch import Transport
from services.notifications.settings import NotificationsSettings
from services.notifications.smtp import SmtpTransport
from shared.bootstrap import serve

POINTS = ("before_data", "after_data")


class CrashingTransport:
    def __init__(self, inner: Transport, point: str, message_id: str) -> None:
        if point not in POINTS:
            raise ValueError(f"crash point must be one of {POINTS}")
        self.inner, self.point, self.message_id = inner, point, message_id

    async def send(
        self, sender: str, recipient: str, message: bytes, before_data: Callable[[], Awaitable[None]]
    ) -> str:
        chosen = BytesHeaderParser().parsebytes(message)["Message-ID"] == self.message_id

        async def then_before_data() -> None:
            if chosen and self.point == "before_data":
                _die()
            await before_data()

        reply = await self.inner.send(sender, recipient, message, then_before_data)
        if chosen and self.point == "after_data":
            _die()
        return reply


def _die() -> None:
    """As a crash would: no cleanup, no store update."""
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    settings = NotificationsSettings()
    point, message_id = os.environ["RELAIS_FAULT_CRASH_AT"].split(":", 1)
    transport = CrashingTransport(SmtpTransport(settings), point, message_id)
    serve(create_app(settings, transport=transport), settings)


if __name__ == "__main__":
    main()
