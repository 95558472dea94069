"""The bench's referring partner, with an account made as `relais partners add` makes one.

Its Kafka user, topic and ACLs (`ops.partners.add`) and its HTTP token (`ops.partners.issue_http_token`,
stored in intake's database): the bench posts its cases with that token, so notifications publishes their
statuses on the partner's own topic, which the bench reads as the partner's own user. That record is each
case's "notified" signal (bench.pipeline); there is no shared partner topic to read instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymongo import AsyncMongoClient

from ops.partners import add, issue_http_token
from ops.stack import Stack
from services.intake.settings import IntakeSettings
from services.intake.store import MongoPartnerCredentials
from shared.broker import KafkaAccess
from shared.topology import partner_principal, partner_topic

NAME = "bench-partner"


@dataclass(frozen=True)
class BenchPartner:
    name: str
    token: str  # for intake: `Authorization: Bearer <token>`
    kafka: KafkaAccess  # its own Kafka user, which reads its topic only, in groups named after itself

    @property
    def topic(self) -> str:
        return partner_topic(self.name)

    def group(self, label: str) -> str:
        return f"{partner_principal(self.name)}.{label}"


async def add_partner(stack: Stack, name: str = NAME) -> BenchPartner:
    add(stack.kafka.access(), stack.kafka.secrets, name)
    mongo: AsyncMongoClient = AsyncMongoClient(stack.ferretdb.url, tz_aware=True)
    try:
        database = mongo[IntakeSettings.model_fields["mongo_db"].default]  # the stack runs intake's default
        token = await issue_http_token(MongoPartnerCredentials(database), name)
    finally:
        await mongo.close()
    return BenchPartner(name, token, stack.kafka.access(partner_principal(name)))
