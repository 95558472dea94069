"""A local SMTP server that accepts every message and keeps it, for `make run` and the tests.

`python -m ops.mailsink --port 1025 --dir .local/run/mail` writes each message to `<dir>/<Message-ID>.eml`
(open them with any mail client). Like a mailbox, it keeps one copy per Message-ID: a resend after a crash
replaces the file with the identical message. In the tests, `MailSink` is used in-process and remembers
every delivery, duplicates included, so that they can be counted.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import re
import signal
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from email.policy import default
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger("relais.mailsink")


@dataclass(frozen=True)
class Delivery:
    message_id: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes

    def message(self) -> Message:
        return message_from_bytes(self.raw, policy=default)


class MailSink:
    """aiosmtpd handler: accepts, records, and optionally writes each message to a folder."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self.deliveries: list[Delivery] = []
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd calls its hooks by these names
        refusal = self.refuse(envelope)
        if refusal:
            return refusal
        raw = envelope.original_content or b""
        message_id = str(message_from_bytes(raw, policy=default).get("Message-ID", "")).strip()
        delivery = Delivery(message_id, envelope.mail_from or "", tuple(envelope.rcpt_tos), raw)
        self.deliveries.append(delivery)
        if self.directory is not None:
            (self.directory / f"{file_stem(message_id, raw)}.eml").write_bytes(raw)
        return "250 Message accepted for delivery"

    def refuse(self, envelope: Envelope) -> str | None:
        """A reply that refuses the message, or None to accept it (tests override this)."""
        return None

    def by_message_id(self) -> dict[str, list[Delivery]]:
        grouped: dict[str, list[Delivery]] = {}
        for delivery in self.deliveries:
            grouped.setdefault(delivery.message_id, []).append(delivery)
        return grouped


def file_stem(message_id: str, raw: bytes) -> str:
    """The Message-ID made safe for a file name (Relais' ids hold an event id and a role, no personal data)."""
    stem = re.sub(r"[^A-Za-z0-9.@_-]", "", message_id)
    return stem or hashlib.sha256(raw).hexdigest()[:24]


async def serve(host: str, port: int, directory: Path) -> None:
    loop = asyncio.get_running_loop()
    sink = MailSink(directory)
    server = await loop.create_server(lambda: SMTP(sink, hostname="relais-mailsink"), host, port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"mailsink: listening on {host}:{port}, writing to {directory}", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ops.mailsink", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", type=Path, default=Path(".local/run/mail"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)  # aiosmtpd logs addresses at INFO
    asyncio.run(serve(args.host, args.port, args.dir.resolve()))


if __name__ == "__main__":
    main()
