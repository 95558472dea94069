"""The antenna directory's data: the default AURA sites (antennas.json) placed on the map.

Routing seeds its database with them on first start; `relais coverage` reads them too, so that both
see the same sites unless staff have edited routing's copy through the admin API.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from services.routing.geo import Gazetteer

ANTENNAS_FILE = Path(__file__).with_name("antennas.json")


class UnknownCommune(ValueError):
    """An antenna must stand in a commune of the data set."""


def default_antennas(path: Path = ANTENNAS_FILE) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))["antennas"]


def placed(fields: dict[str, Any], gazetteer: Gazetteer) -> dict[str, Any]:
    """The antenna's fields with the position of its commune (town hall)."""
    place = gazetteer.communes.get(fields["insee_code"])
    if place is None:
        raise UnknownCommune(fields["insee_code"])
    return {**fields, "lat": place.lat, "lon": place.lon, "dept": place.dept}


def seed_documents(gazetteer: Gazetteer, path: Path = ANTENNAS_FILE) -> list[dict[str, Any]]:
    return [{"_id": a["id"], **placed({k: v for k, v in a.items() if k != "id"}, gazetteer)}
            for a in default_antennas(path)]


@lru_cache(maxsize=2)
def shared_gazetteer(path: Path) -> Gazetteer:
    """One copy per process (about half a second to load), shared by the app and its tests."""
    return Gazetteer.load(path)
