"""One coaching instance per association: its settings, and staff tokens stored only as hashes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from services.coaching.auth import StaffAuth, hash_token, main
from services.coaching.settings import CoachingSettings
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
    monkeypatch.setenv("RELAIS_COACHING_STAFF_TOKENS", json.dumps({"claire": hash_token("secret")}))
    assert CoachingSettings().staff_tokens == {"claire": hash_token("secret")}
    with pytest.raises(ValidationError, match="never a plain token"):
        CoachingSettings(staff_tokens={"claire": "secret"})


def test_a_token_identifies_its_staff_member_only() -> None:
    auth = StaffAuth({"claire": hash_token("token-claire"), "karim": hash_token("token-karim")}, audit=None)  # type: ignore[arg-type]
    assert auth.identify("token-claire") == "claire" and auth.identify("token-karim") == "karim"
    assert auth.identify("token-other") is None and auth.identify("") is None


def test_the_token_command_prints_a_token_and_the_entry_that_accepts_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["claire"]) == 0
    token_line, entry_line = capsys.readouterr().out.splitlines()
    token = token_line.rsplit(" ", 1)[1]
    entry = json.loads(entry_line.split(": ", 1)[1])
    assert CoachingSettings(staff_tokens=entry).staff_tokens["claire"] == hash_token(token)
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
