"""Horizontal bar charts drawn on the server as SVG (no chart library, no script): the geometry is computed
here, `shared/templates/graphiques.html` draws it, and each chart has a text description and a table beside
it for people who do not see it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

ROW_HEIGHT, BAR_HEIGHT, WIDTH, LABEL_WIDTH, MARGIN = 34, 22, 720, 190, 60
COLOURS = tuple(f"couleur-{i}" for i in range(1, 8))


@dataclass(frozen=True)
class Segment:
    name: str
    value: float
    x: float
    width: float
    css: str


@dataclass(frozen=True)
class Bar:
    label: str
    y: float
    segments: list[Segment]
    total: float
    end: float  # where the bar ends: its total is written after it


@dataclass(frozen=True)
class Marker:
    """A vertical line (a target), with its label."""

    label: str
    x: float


@dataclass(frozen=True)
class Chart:
    title: str
    description: str
    bars: list[Bar]
    legend: list[tuple[str, str]]  # (css class, name)
    markers: list[Marker] = field(default_factory=list)
    unit: str = ""
    width: int = WIDTH
    label_width: int = LABEL_WIDTH

    @property
    def height(self) -> int:
        return max(1, len(self.bars)) * ROW_HEIGHT + 30


def bars(
    title: str,
    rows: Sequence[tuple[str, Mapping[str, float]]],
    names: Mapping[str, str],
    *,
    unit: str = "",
    markers: Mapping[str, float] | None = None,
) -> Chart:
    """One bar per row, stacked by key in the order of `names` (each key keeps its colour across rows)."""
    colours = {key: COLOURS[i % len(COLOURS)] for i, key in enumerate(names)}
    totals = [sum(values.get(k, 0) for k in names) for _, values in rows]
    top = max([*totals, *(markers or {}).values(), 1])
    scale = (WIDTH - LABEL_WIDTH - MARGIN) / top
    drawn = []
    for index, (label, values) in enumerate(rows):
        x, segments = float(LABEL_WIDTH), []
        for key, name in names.items():
            value = values.get(key, 0)
            if value:
                segments.append(Segment(name, value, x, value * scale, colours[key]))
                x += value * scale
        drawn.append(Bar(label, 10 + index * ROW_HEIGHT, segments, totals[index], x))
    described = "; ".join(
        f"{label} : {_number(total)}{unit}"
        + (" (" + ", ".join(f"{s.name} {_number(s.value)}" for s in bar.segments) + ")" if len(names) > 1 else "")
        for (label, _), total, bar in zip(rows, totals, drawn, strict=True)
    )
    used = {s.css for bar in drawn for s in bar.segments}
    return Chart(
        title=title,
        description=described or "Aucune donnée pour l'instant.",
        bars=drawn,
        legend=[(colours[k], name) for k, name in names.items() if colours[k] in used] if len(names) > 1 else [],
        markers=[Marker(label, LABEL_WIDTH + value * scale) for label, value in (markers or {}).items()],
        unit=unit,
    )


def _number(value: float) -> str:
    return f"{value:.1f}".replace(".", ",").removesuffix(",0")
