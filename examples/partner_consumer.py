"""How a referring partner follows the people it referred: subscribe to its own Relais status topic.

A partner's account (`relais partners add etude-martin`) gives it an HTTP token, to refer people with, and a
Kafka user, `partner.etude-martin`, that reads its own topic `relais.partner-status.etude-martin.v1`: one JSON
record per status change of each referral it made with its token (received, routed, accepted, declined,
closed), keyed by the reference it gave when referring. It holds no personal data. Delivery is at least once:
deduplicate on `record_id`. Records come in order per reference.

    pip install aiokafka
    python examples/partner_consumer.py --bootstrap 127.0.0.1:9092 --partner etude-martin \
        --password-file .local/run/secrets/kafka-partner.etude-martin.password LJ-2026-0427

The broker authenticates every client (SASL/SCRAM-SHA-512; over TLS with `--ca-file`, as in
docker-compose.yml) and lets the user `partner.etude-martin` read that topic only, in consumer groups named
`partner.etude-martin.*` (README, Security): no partner can read another's topic. Referrals made without
an account (no token) are on no topic: their referrer follows them by email. Only the standard library and
aiokafka: a partner does not need Relais' code.
The JSON Schema of the record is served at GET /asyncapi.json on the notifications service (and committed in
shared/schemas/json/).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.helpers import create_ssl_context


def partner_topic(partner: str) -> str:
    """A partner's own topic: the statuses of the referrals it made with its account."""
    return f"relais.partner-status.{partner}.v1"


def partner_user(partner: str) -> str:
    """The Kafka user of a partner's account; its consumer groups are named after it."""
    return f"partner.{partner}"


STATUS = {
    "recu": "demande reçue",
    "oriente": "orientée",
    "accepte": "accompagnement accepté",
    "refuse": "accompagnement non retenu",
    "clos": "accompagnement terminé",
}
ASSOCIATION = {"second_souffle": "Second Souffle", "60000_rebonds": "60 000 rebonds"}
OUTCOME = {"rebond": "la personne a rebondi", "abandon": "la personne a arrêté", "autre": "autre issue"}


def connection(bootstrap: str, username: str, password: str, ca_file: str | None = None) -> dict[str, Any]:
    """aiokafka's options for a SCRAM-SHA-512 login, over TLS when the CA of the broker is given."""
    return {
        "bootstrap_servers": bootstrap,
        "security_protocol": "SASL_SSL" if ca_file else "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": username,
        "sasl_plain_password": password,
        **({"ssl_context": create_ssl_context(cafile=ca_file)} if ca_file else {}),
    }


async def follow(
    kafka: dict[str, Any],
    partner: str,
    references: set[str] | None,
    on_status: Callable[[dict[str, Any]], None],
    stop: asyncio.Event | None = None,
    group: str | None = None,
) -> None:
    """Call `on_status` once per status change of the given references (all of them if None).

    `kafka` is the connection (`connection(...)`) as the partner's own user; `group` must start with that
    user's name (default: the name itself).
    """
    group = group or f"{partner_user(partner)}.suivi"
    consumer = AIOKafkaConsumer(
        partner_topic(partner), **kafka, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    seen: set[str] = set()
    try:
        while stop is None or not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    status = json.loads(record.value)
                    if status.get("schema_version") != 1:
                        continue  # a newer major version: upgrade this reader
                    if references and status["partner_reference"] not in references:
                        continue
                    if status["record_id"] in seen:
                        continue  # at-least-once delivery: a record may come twice
                    seen.add(status["record_id"])
                    on_status(status)
            if batch:
                await consumer.commit()
    finally:
        await consumer.stop()


def describe(status: dict[str, Any]) -> str:
    text = f"{status['partner_reference']} — {status['occurred_on']} : {STATUS[status['status']]}"
    if status.get("association"):
        text += f" ({ASSOCIATION.get(status['association'], status['association'])})"
    if status.get("outcome_category"):
        text += f", {OUTCOME.get(status['outcome_category'], status['outcome_category'])}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description="Follow your referrals on your Relais status topic.")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap server")
    parser.add_argument("--partner", required=True, help="your partner name (relais partners add <name>)")
    parser.add_argument("--password-file", required=True, help="a file holding your Kafka user's password")
    parser.add_argument("--ca-file", help="the CA certificate of the broker (TLS, SASL_SSL)")
    parser.add_argument(
        "--group",
        help="your consumer group, remembers what you read (default: partner.<name>.suivi; starts so)",
    )
    parser.add_argument("references", nargs="*", help="your references to follow (default: all)")
    args = parser.parse_args()
    with open(args.password_file, encoding="utf-8") as secret:
        password = secret.read().strip()
    kafka = connection(args.bootstrap, partner_user(args.partner), password, args.ca_file)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            follow(
                kafka,
                args.partner,
                set(args.references) or None,
                lambda status: print(describe(status), flush=True),
                group=args.group,
            )
        )


if __name__ == "__main__":
    main()
