"""One coaching instance per association: its settings, and staff tokens stored only as hashes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from services.coaching.auth import hash_token, main
from services.coaching.settings import CoachingSettings
from shared.auth import Authenticator, Staff
from shared.schemas import Association
from tests.unit.test_compose import environment


def test_the_association_picks_database_and_consumer_group(monkeypatch: pytest.MonkeyPatch) -> None:
    default = CoachingSettings()
    assert (default.association, default.mongo_db, default.consumer_group) == (
        Association.SECOND_SOUFFLE,
        "relais_coaching_second_souffle",
        "coaching-second_souffle",
    )
    monkeypatch.setenv("RELAIS_COACHING_ASSOCIATION", "60000_rebonds")
    other = CoachingSettings()
    assert (other.mongo_db, other.consumer_group) == ("relais_coaching_60000_rebonds", "coaching-60000_rebonds")
    explicit = CoachingSettings(mongo_db="custom", consumer_group="group")
    assert (explicit.mongo_db, explicit.consumer_group) == ("custom", "group")


def test_staff_tokens_come_from_json_and_must_be_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="never a plain token"):
        CoachingSettings(staff_tokens={"claire": "secret"})
    # A flat {user: hash} is this instance's association's staff; the shared form names the association.
    monkeypatch.setenv("RELAIS_COACHING_STAFF_TOKENS", json.dumps({"claire": hash_token("secret")}))
    assert CoachingSettings().staff_tokens == {Association.SECOND_SOUFFLE: {"claire": hash_token("secret")}}
    shared = {"second_souffle": {"claire": hash_token("a")}, "60000_rebonds": {"karim": hash_token("b")}}
    monkeypatch.setenv("RELAIS_COACHING_STAFF_TOKENS", json.dumps(shared))
    assert CoachingSettings().staff_tokens[Association.SOIXANTE_MILLE_REBONDS] == {"karim": hash_token("b")}


def test_a_token_identifies_its_staff_member_only() -> None:
    auth = Authenticator(
        {
            Association.SECOND_SOUFFLE: {"claire": hash_token("token-claire")},
            Association.SOIXANTE_MILLE_REBONDS: {"karim": hash_token("token-karim")},
        }
    )
    assert auth.identify_staff("token-claire") == Staff("claire", Association.SECOND_SOUFFLE)
    assert auth.identify_staff("token-karim") == Staff("karim", Association.SOIXANTE_MILLE_REBONDS)
    assert auth.identify_staff("token-other") is None and auth.identify_staff("") is None


def test_the_token_command_prints_a_token_and_the_entry_that_accepts_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["claire"]) == 0
    token_line, entry_line = capsys.readouterr().out.splitlines()
    token = token_line.rsplit(" ", 1)[1]
    entry = json.loads(entry_line.split(": ", 1)[1])
    assert CoachingSettings(staff_tokens=entry).staff_tokens[Association.SECOND_SOUFFLE]["claire"] == hash_token(token)
    assert main([]) == 2


def test_compose_runs_one_coaching_instance_per_association(monkeypatch: pytest.MonkeyPatch) -> None:
    compose = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())
    instances = [
        s for s in compose["services"].values() if s.get("command", [])[:3] == ["python", "-m", "services.coaching"]
    ]
    loaded = []
    for service in instances:
        for key in [k for k in os.environ if k.startswith("RELAIS_COACHING_")]:
            monkeypatch.delenv(key)
        for key, value in environment(service).items():  # compose's ${...:-default} resolved
            monkeypatch.setenv(key, value)
        loaded.append(CoachingSettings())
    assert sorted(s.association.value for s in loaded) == ["60000_rebonds", "second_souffle"]
    assert (
        len({s.http_port for s in loaded})
        == len({s.mongo_db for s in loaded})
        == len({s.consumer_group for s in loaded})
        == 2
    )
