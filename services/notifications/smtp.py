"""One email over SMTP, step by step, so that the caller can record "DATA is about to be sent".

The whole transaction is driven here with aiosmtplib (connect, MAIL, RCPT, DATA) rather than with
`send_message`, because the moment the message content leaves is the one that matters after a crash:
before it the server cannot have the message; after it, it may.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiosmtplib import SMTP, SMTPConnectError, SMTPException, SMTPResponseException

from services.notifications.settings import NotificationsSettings


class SmtpFailure(Exception):
    """A message that did not go through. `reason` holds codes and types only (servers echo addresses)."""

    def __init__(
        self,
        reason: str,
        *,
        code: int | None = None,
        permanent: bool = False,
        outage: bool = False,
        in_doubt: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason, self.code = reason, code
        self.permanent, self.outage, self.in_doubt = permanent, outage, in_doubt


class SmtpTransport:
    def __init__(self, settings: NotificationsSettings) -> None:
        self.settings = settings

    def _client(self) -> SMTP:
        s = self.settings
        # No username: no login at all (the password is not sent alone).
        return SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username or None,
            password=s.smtp_password.get_secret_value() if s.smtp_username else None,
            timeout=s.smtp_timeout_s,
            use_tls=s.smtp_tls,
            start_tls=s.smtp_starttls,
        )

    async def send(
        self, sender: str, recipient: str, message: bytes, before_data: Callable[[], Awaitable[None]]
    ) -> str:
        """Send one message; `before_data` runs once the server accepted the envelope. Returns the reply."""
        client = self._client()
        data_started = False
        try:
            try:
                await client.connect()
            except (SMTPConnectError, OSError, TimeoutError) as exc:
                raise SmtpFailure(f"SMTP server unreachable ({type(exc).__name__})", outage=True) from None
            await client.mail(sender)
            await client.rcpt(recipient)
            await before_data()
            data_started = True
            reply = await client.data(message)
            return f"{reply.code}"
        except SMTPResponseException as exc:
            raise SmtpFailure(
                f"SMTP {exc.code} ({type(exc).__name__})", code=exc.code, permanent=exc.code >= 500
            ) from None
        except (SMTPException, OSError, TimeoutError) as exc:
            # No reply: after DATA started, the server may or may not have the message.
            raise SmtpFailure(f"SMTP connection lost ({type(exc).__name__})", in_doubt=data_started) from None
        except ValueError as exc:  # an address that cannot be written in an SMTP command
            raise SmtpFailure(f"address refused by the client ({type(exc).__name__})", permanent=True) from None
        finally:
            await _close(client)


async def _close(client: SMTP) -> None:
    if not client.is_connected:
        return
    try:
        await asyncio.wait_for(client.quit(), timeout=2)
    except Exception:  # noqa: BLE001 - the message is already settled; a failing QUIT changes nothing
        client.close()
