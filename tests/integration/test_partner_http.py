"""`relais partners add` issues a partner's HTTP token: intake knows the partner by it, until it is revoked."""

from __future__ import annotations

import uuid

from pymongo import AsyncMongoClient

from ops.partners import issue_http_token, revoke_http_tokens
from services.intake.app import create_app
from services.intake.settings import IntakeSettings
from services.intake.store import MongoPartnerCredentials
from shared.auth import hash_token
from tests.conftest import Infra, a_case, running
from tests.integration.conftest import Reader


async def test_a_partner_token_names_the_partner_on_the_event_until_revoked(
    infra: Infra, mongo: AsyncMongoClient, reader: Reader
) -> None:
    settings = infra.settings(IntakeSettings)
    credentials = MongoPartnerCredentials(mongo[settings.mongo_db])
    partner = f"etude-{uuid.uuid4().hex[:6]}"
    token = await issue_http_token(credentials, partner)
    stored = await mongo[settings.mongo_db]["partner_credentials"].find({}).to_list(None)
    assert [(doc["_id"], doc["partner"]) for doc in stored] == [(hash_token(token), partner)]  # the hash only
    assert token not in str(stored)

    received = await reader("relais.case-received.v1")
    bearer = {"Authorization": f"Bearer {token}"}
    async with running(create_app(settings)) as client:
        response = await client.post("/cases", json=a_case(), headers=bearer)
        assert response.status_code == 201, response.text
        case_id = response.json()["case_id"]
        [record] = await received.wait_keyed(case_id)
        assert f'"partner":"{partner}"' in record.value.decode()
        assert (await client.get(f"/cases/{case_id}", headers=bearer)).status_code == 200

        assert await revoke_http_tokens(credentials, partner) == 1
        assert (await client.post("/cases", json=a_case(), headers=bearer)).status_code == 401
        assert (await client.get(f"/cases/{case_id}", headers=bearer)).status_code == 401
