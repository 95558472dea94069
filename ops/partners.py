"""`relais partners add|list|revoke`: a referring partner as a principal of its own, over Kafka and HTTP.

Kafka: `add` creates the partner's topic (`relais.partner-status.<partner>.v1`), its SCRAM user with a new
password (written to the secrets folder, to be handed over out of band) and its two ACLs: READ on its topic,
and its own consumer groups (`partner.<partner>...`). `revoke` deletes the user and every ACL of it; the topic
and its records stay. The partners are the broker's own record: `list` reads them back from the ACLs.

HTTP: `add` then issues the partner's token for intake (`POST /cases` with it carries the partner's name, so
its referrals' statuses go to its topic): the token is printed once, and only its hash is stored, in
intake's database where intake reads it. `revoke` deletes every token of the partner.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ops.kafka_security import Secrets, admin_client, provision, remove_user, wait_authenticated
from services.intake.store import MongoPartnerCredentials, PartnerCredentials
from shared.auth import hash_token, new_token
from shared.broker import KafkaAccess
from shared.topology import PARTNER_PREFIX, partner_principal, partner_rules, partner_topic

T = TypeVar("T")

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")


@dataclass(frozen=True)
class Partner:
    name: str
    principal: str
    topic: str


def check_name(partner: str) -> str:
    if not NAME.fullmatch(partner):
        raise ValueError(f"{partner!r}: 2 to 40 lower-case letters, digits or '-', starting with a letter or digit")
    return partner


def add(admin: KafkaAccess, secrets: Secrets, partner: str, partitions: int = 3) -> Path:
    """Create (or refresh) the partner's topic, user and ACLs; returns the file that holds its password."""
    principal = partner_principal(check_name(partner))
    _create_topic(admin, partner_topic(partner), partitions)
    provision(
        admin,
        {principal: secrets.password(principal)},
        partitions=partitions,
        rules={principal: partner_rules(partner)},
    )
    return secrets.password_file(principal)


def revoke(admin: KafkaAccess, partner: str) -> None:
    remove_user(admin, partner_principal(check_name(partner)))


async def issue_http_token(credentials: PartnerCredentials, partner: str) -> str:
    """A new token for the partner, stored as its hash only: print it once, it cannot be read back."""
    token = new_token()
    await credentials.add(check_name(partner), hash_token(token))
    return token


async def revoke_http_tokens(credentials: PartnerCredentials, partner: str) -> int:
    return await credentials.revoke(check_name(partner))


def with_intake_credentials(mongo_url: str, database: str, use: Callable[[PartnerCredentials], Awaitable[T]]) -> T:
    """Run `use` on intake's partner credentials (from an operator's command line)."""
    import asyncio

    from pymongo import AsyncMongoClient

    async def run() -> T:
        client: AsyncMongoClient = AsyncMongoClient(mongo_url, tz_aware=True, serverSelectionTimeoutMS=10_000)
        try:
            return await use(MongoPartnerCredentials(client[database]))
        finally:
            await client.close()

    return asyncio.run(run())


def list_partners(admin: KafkaAccess) -> list[Partner]:
    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePatternFilter,
        ResourceType,
    )

    client = admin_client(admin, "relais-partners", 30)
    try:
        acls, _ = client.describe_acls(
            ACLFilter(
                None,
                None,
                ACLOperation.READ,
                ACLPermissionType.ALLOW,
                ResourcePatternFilter(ResourceType.TOPIC, None, ACLResourcePatternType.LITERAL),
            )
        )
    finally:
        client.close()
    found = {acl.principal.removeprefix("User:") for acl in acls if acl.principal.startswith(f"User:{PARTNER_PREFIX}")}
    partners = [p.removeprefix(PARTNER_PREFIX) for p in found]
    return [Partner(name, partner_principal(name), partner_topic(name)) for name in sorted(partners)]


def _create_topic(admin: KafkaAccess, topic: str, partitions: int) -> None:
    """With the broker's default replication and minimum in-sync replicas (`default.replication.factor`,
    `min.insync.replicas`), as a cluster is configured (README, Kafka cluster)."""
    client = admin_client(admin, "relais-partners", 30)
    try:
        if topic not in client.list_topics():
            client.create_topics({topic: {"num_partitions": partitions, "replication_factor": -1}}, raise_errors=False)
    finally:
        client.close()


def can_log_in(access: KafkaAccess, timeout_s: float = 5) -> bool:
    try:
        wait_authenticated(access, timeout_s)
        return True
    except Exception:  # noqa: BLE001 - any failure to log in
        return False
