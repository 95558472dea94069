"""Reading the antenna directory's data files: the default AURA sites (antennas.json), placed on the map.

An adapter called by the composition root (and by `relais coverage`, so that both see the same sites
unless staff have edited routing's copy through the admin API); nothing is read at import.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from services.routing.domain import AntennaEntry
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


def seed_entries(gazetteer: Gazetteer, path: Path = ANTENNAS_FILE) -> list[AntennaEntry]:
    return [AntennaEntry.model_validate(placed(antenna, gazetteer)) for antenna in default_antennas(path)]


@lru_cache(maxsize=2)
def shared_gazetteer(path: Path) -> Gazetteer:
    """One copy per process, shared by the app and its tests (loading takes a noticeable moment)."""
    return Gazetteer.load(path)
