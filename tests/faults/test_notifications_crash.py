"""A notifications process killed in the middle of sending an email: the recipient still gets it once.

The service runs as a real process, started from `tests.faults.crashing_notifications`: the production
`create_app` with an SMTP transport that SIGKILLs the process at a chosen point of one chosen send. The
restarted process is the plain service. The SMTP server in the test counts what arrives, by Message-ID.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from ops.devstack import ServiceNode
from tests.conftest import Infra, free_port, wait_for
from tests.mail import PERSON, flow, publish, skip_backlog, smtp_server

ROOT = Path(__file__).resolve().parents[2]


def service(
    infra: Infra, data_dir: Path, smtp_port: int, db: str, group: str, crash_at: str | None = None, **settings: str
) -> ServiceNode:
    """The notifications process; with `crash_at` (`<point>:<Message-ID>`), the one that dies mid-send."""
    port = free_port()
    env = {
        "RELAIS_NOTIFICATIONS_" + k.upper(): v
        for k, v in {
            "kafka_bootstrap": infra.bootstrap,
            "mongo_url": infra.mongo_url,
            "mongo_db": db,
            "consumer_group": group,
            "http_port": str(port),
            "smtp_port": str(smtp_port),
            "send_lease_s": "1",
            "send_concurrency": "1",
            "dispatch_scan_s": "1",
            "development": "true",  # the development signing key, as under `make run`
            **settings,
        }.items()
    }
    env.update(infra.kafka.secrets.env("RELAIS_NOTIFICATIONS_", "notifications"))  # its own Kafka principal
    module = "services.notifications"
    if crash_at is not None:
        module, env["RELAIS_FAULT_CRASH_AT"] = "tests.faults.crashing_notifications", crash_at
        # `tests` is no installed package: the child (started in its data folder) finds it from the root.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return ServiceNode("notifications", data_dir, module=module, port=port, env=env)


@pytest.mark.parametrize(
    "crash_at, in_doubt, copies",
    [
        ("after_data", "resend", 2),  # the server had it: sent again, same Message-ID, receivers keep one
        ("after_data", "assume_sent", 1),  # the server had it: recorded as sent, nothing more goes out
        ("before_data", "resend", 1),  # the server could not have it: sent once, after the restart
    ],
)
async def test_a_crash_mid_send_still_delivers_the_message_once(
    infra: Infra, tmp_path: Path, crash_at: str, in_doubt: str, copies: int
) -> None:
    email = f"crash+{uuid.uuid4().hex[:8]}@example.fr"
    received = flow(person={**PERSON, "email": email})["received"]
    nid = f"{received.event_id}:entrepreneur"
    message_id = f"<{received.event_id}.entrepreneur@relais.example>"
    db, group = f"relais_notifications_{uuid.uuid4().hex[:8]}", f"notifications-{uuid.uuid4().hex[:8]}"
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongo_url, tz_aware=True)
    notifications = mongo[db]["notifications"]
    await skip_backlog(infra.admin, group)  # the session's earlier events are not this test's
    with smtp_server() as (inbox, smtp_port):
        doomed = service(
            infra, tmp_path / "first", smtp_port, db, group, crash_at=f"{crash_at}:{message_id}", in_doubt=in_doubt
        )
        doomed.start(deadline_s=60)
        restarted = None
        try:
            await publish(infra.admin, received)

            async def killed() -> bool:
                return doomed.proc is not None and doomed.proc.poll() is not None

            await wait_for(killed, timeout=60, what="the service to kill itself mid-send")
            assert doomed.proc is not None and doomed.proc.returncode == -signal.SIGKILL
            at_crash = await notifications.find_one({"_id": nid})
            assert at_crash is not None
            assert at_crash["status"] == "envoi_en_cours"
            assert at_crash["phase"] == ("donnees" if crash_at == "after_data" else "avant_donnees")
            assert len(inbox.by_message_id().get(message_id, [])) == (1 if crash_at == "after_data" else 0)

            restarted = service(infra, tmp_path / "second", smtp_port, db, group, in_doubt=in_doubt)
            restarted.start(deadline_s=60)

            async def settled() -> dict | None:
                doc = await notifications.find_one({"_id": nid})
                assert doc is not None  # seen at the crash
                return doc if doc["status"] == "envoye" else None

            sent = await wait_for(settled, timeout=60, what="the notification taken over and settled")
            partner = f"{received.event_id}:partenaire"
            await wait_for(
                lambda: notifications.find_one({"_id": partner, "status": "envoye"}),
                timeout=30,
                what="the partner's notification sent",
            )
            async with httpx.AsyncClient(timeout=5) as http:
                metrics = (await http.get(f"{restarted.url}/metrics")).text
        finally:
            for node in (doomed, restarted):
                if node is not None:
                    node.stop()
            await mongo.close()

    delivered = inbox.by_message_id()
    copies_received = delivered[message_id]
    assert len(copies_received) == copies
    assert len({c.raw for c in copies_received}) == 1, "a resend is byte for byte the same email"
    assert len(delivered[f"<{received.event_id}.partenaire@relais.example>"]) == 1
    assert sent["claims"] == 2, "one attempt died with its process, the next one settled it"
    if crash_at == "after_data":
        result = "resent_in_doubt" if in_doubt == "resend" else "assumed_sent"
        assert f'relais_notifications_total{{recipient="entrepreneur",result="{result}"}} 1.0' in metrics
        assert sent.get("in_doubt") is (True if in_doubt == "assume_sent" else None)
