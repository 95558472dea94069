"""The coverage map (`relais coverage --map FILE.png`): every AURA commune as a dot coloured by the minutes to
the nearest open antenna, antennas as squares, the best new site as a ring. Pillow only, no tiles."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ops.coverage import OPEN, CoverageAnalysis, Site

BANDS = ((30, (26, 150, 65)), (45, (166, 217, 106)), (60, (253, 174, 97)), (float("inf"), (215, 25, 28)))
ASSOCIATION_COLOURS = {"60000_rebonds": (33, 102, 172), "second_souffle": (118, 42, 131)}


def draw_map(
    analysis: CoverageAnalysis,
    sites: list[Site],
    scope: str,
    best: dict[str, Any] | None,
    title: str,
    out: Path,
    width: int = 1100,
) -> Path:
    t = analysis.territory
    chosen = [s for s in sites if s.status == OPEN and (scope == "ensemble" or s.association == scope)]
    minutes = analysis.minutes_to_nearest(chosen)
    lat0 = np.radians(t.lat.mean())
    x_raw, y_raw = t.lon * np.cos(lat0), t.lat
    margin, legend = 40, 220
    scale = (width - 2 * margin - legend) / (x_raw.max() - x_raw.min())
    height = int((y_raw.max() - y_raw.min()) * scale + 2 * margin + 40)

    def project(lat: float | np.ndarray, lon: float | np.ndarray) -> tuple[Any, Any]:
        return (margin + (lon * np.cos(lat0) - x_raw.min()) * scale, margin + 40 + (y_raw.max() - lat) * scale)

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    xs, ys = project(t.lat, t.lon)
    radius = np.clip(np.sqrt(t.population) / 40, 1.5, 9)
    for i in np.argsort(-t.population):  # small towns drawn last stay visible
        colour = next(c for limit, c in BANDS if minutes[i] <= limit)
        r = radius[i]
        draw.ellipse((xs[i] - r, ys[i] - r, xs[i] + r, ys[i] + r), fill=colour)
    labelled: list[tuple[float, float]] = []
    for site in sites:
        x, y = project(site.lat, site.lon)
        shift = 14 * sum(1 for lx_, ly_ in labelled if abs(lx_ - x) < 1 and abs(ly_ - y) < 1)
        labelled.append((x, y))
        colour = ASSOCIATION_COLOURS.get(site.association, (0, 0, 0))
        if site.status == OPEN:
            draw.rectangle((x - 6, y - 6, x + 6, y + 6), fill=colour, outline="black")
        else:
            draw.rectangle((x - 6, y - 6, x + 6, y + 6), outline=colour, width=2)
        draw.text((x + 9, y - 6 + shift), _ascii(site.name), fill="black", font=font)
    if best is not None:
        i = int(np.flatnonzero(t.codes == best["code"])[0])
        draw.ellipse((xs[i] - 14, ys[i] - 14, xs[i] + 14, ys[i] + 14), outline="black", width=3)
        draw.text((xs[i] + 16, ys[i] + 4), _ascii(f"best new site: {best['name']}"), fill="black", font=font)
    draw.text((margin, 12), _ascii(title), fill="black", font=font)
    lx = width - legend + 10
    draw.text((lx, margin + 40), "minutes to the nearest", fill="black", font=font)
    draw.text((lx, margin + 54), "open antenna", fill="black", font=font)
    labels = ("up to 30", "30 to 45", "45 to 60", "over 60 (beyond the hour)")
    for k, ((_, colour), label) in enumerate(zip(BANDS, labels, strict=True)):
        y = margin + 80 + 20 * k
        draw.ellipse((lx, y, lx + 12, y + 12), fill=colour)
        draw.text((lx + 20, y), label, fill="black", font=font)
    y = margin + 170
    for association, colour in ASSOCIATION_COLOURS.items():
        draw.rectangle((lx, y, lx + 12, y + 12), fill=colour, outline="black")
        draw.text((lx + 20, y), f"{association} open", fill="black", font=font)
        y += 20
    draw.rectangle((lx, y, lx + 12, y + 12), outline="black", width=2)
    draw.text((lx + 20, y), "opening / closed", fill="black", font=font)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
    return out


def _ascii(text: str) -> str:
    """Pillow's built-in font has no accented letters."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
