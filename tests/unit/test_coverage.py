"""`relais coverage`: shares within the hour, per department, the best new site; Bourg-en-Bresse and the Ain."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ops.cli import main
from ops.coverage import CoverageAnalysis, Site, Territory, load_sites, run
from services.routing.directory import shared_gazetteer
from services.routing.settings import RoutingSettings
from services.routing.travel import TravelModel

SETTINGS = RoutingSettings()


def tiny_territory() -> Territory:
    """Three towns on a meridian, 0.5° (55 km) apart, and a far village."""
    return Territory(
        codes=np.array(["A", "B", "C", "D"]),
        names=np.array(["A", "B", "C", "D"]),
        depts=np.array(["01", "01", "03", "03"]),
        population=np.array([1000, 6000, 8000, 50]),
        lat=np.array([45.0, 45.5, 46.0, 47.5]),
        lon=np.array([5.0, 5.0, 5.0, 5.0]),
        dept_names={"01": "Ain", "03": "Allier"},
    )


def test_shares_departments_and_the_best_new_site() -> None:
    analysis = CoverageAnalysis(tiny_territory(), TravelModel(), min_population=5000)
    site = Site("60000_rebonds-a", "60000_rebonds", "A", "ouverte", 45.0, 5.0)
    result = analysis.scope("60000_rebonds", [site])
    assert (result.communes_covered, result.population_covered) == (2, 7000)  # A and B within 55 km·1.25/75
    assert [d["population_share"] for d in result.departments] == [1.0, 0.0]
    assert result.least_served()[0]["name"] == "Allier"
    assert result.best_new_antenna == {
        "code": "C",
        "name": "C",
        "dept": "03",
        "population_gained": 8000,
        "communes_gained": 1,
    }
    closed = analysis.scope("60000_rebonds", [Site("x", "60000_rebonds", "A", "en_ouverture", 45.0, 5.0)])
    assert closed.communes_covered == 0


@pytest.fixture(scope="module")
def gazetteer():
    return shared_gazetteer(SETTINGS.geodata_file)


def test_opening_bourg_en_bresse_raises_the_coverage_of_the_ain(gazetteer) -> None:
    report, _, _ = run(
        SETTINGS.geodata_file, SETTINGS.antennas_file, SETTINGS.travel_model(), open_ids=("bourg-en-bresse",)
    )
    ain = lambda scopes: next(d for d in scopes[0]["departments"] if d["code"] == "01")  # noqa: E731
    before, after = ain(report["baseline"]), ain(report["scopes"])
    assert report["scopes"][0]["scope"] == "60000_rebonds"
    assert after["population_share"] > before["population_share"] + 0.05
    assert after["communes_covered"] > before["communes_covered"]
    assert report["scopes"][0]["communes"] == len(
        [
            p
            for p in gazetteer.current_communes()
            if p.dept in ("01", "03", "07", "15", "26", "38", "42", "43", "63", "69", "73", "74")
        ]
    )


def test_unknown_antennas_are_refused(gazetteer) -> None:
    with pytest.raises(ValueError, match="unknown antenna"):
        load_sites(gazetteer, SETTINGS.antennas_file, open_ids=("paris",))


def test_the_command_prints_json_and_draws_a_map(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "map.png"
    assert main(["coverage", "--format", "json", "--map", str(out), "--open", "bourg-en-bresse"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [s["scope"] for s in report["scopes"]] == ["60000_rebonds", "second_souffle", "ensemble"]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["coverage"]) == 0
    table = capsys.readouterr().out
    assert "Both together" in table and "Best commune for one new antenna" in table
    assert main(["coverage", "--open", "nowhere"]) == 2
