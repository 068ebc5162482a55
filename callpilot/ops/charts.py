"""Small server-side SVG charts for the dashboard (the machine may be offline: no chart library, no CDN)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 560, 200
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 14, 28


@dataclass(frozen=True)
class Series:
    """One named row of values; None is a gap (no data that day)."""

    name: str
    values: Sequence[float | None]
    color: str


def _frame(labels: Sequence[str], top_value: float, fmt: str) -> list[str]:
    """Axes, four horizontal grid lines with their values, and the x labels."""
    inner_h = HEIGHT - TOP - BOTTOM
    parts = []
    for n in range(5):
        y = TOP + inner_h * (1 - n / 4)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{fmt.format(top_value * n / 4)}</text>')
    step = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    for i, label in enumerate(labels):
        x = LEFT + step * (i + 0.5)
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle">{escape(label)}</text>')
    return parts


def _svg(title: str, parts: list[str], series: Sequence[Series]) -> str:
    legend = "".join(
        f'<tspan fill="{s.color}">&#9632;</tspan> {escape(s.name)} ' for s in series
    )
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT + 16}" role="img" aria-label="{escape(title)}">'
        f'<text x="{LEFT}" y="{HEIGHT + 12}">{legend}</text>{"".join(parts)}</svg>'
    )


def stacked_bars(title: str, labels: Sequence[str], series: Sequence[Series]) -> str:
    """Counts per label, stacked; each bar carries its total on top and a tooltip per segment."""
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(labels))]
    top_value = max(4.0, float(max(totals, default=0)))
    inner_h = HEIGHT - TOP - BOTTOM
    step = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    parts = _frame(labels, top_value, "{:.0f}")
    for i, label in enumerate(labels):
        x, y = LEFT + step * i + step * 0.2, float(TOP + inner_h)
        for s in series:
            value = float(s.values[i] or 0)
            h = inner_h * value / top_value
            y -= h
            if value:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.6:.1f}" height="{h:.1f}" fill="{s.color}">'
                    f"<title>{escape(label)}: {value:g} {escape(s.name)}</title></rect>"
                )
        parts.append(f'<text x="{x + step * 0.3:.1f}" y="{y - 3:.1f}" text-anchor="middle" class="total">'
                     f"{totals[i]:g}</text>")
    return _svg(title, parts, series)


def rate_lines(title: str, labels: Sequence[str], series: Sequence[Series]) -> str:
    """Rates (0..1) per label as lines with dots; a None breaks the line."""
    inner_h = HEIGHT - TOP - BOTTOM
    step = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    parts = _frame(labels, 1.0, "{:.0%}")
    for s in series:
        points: list[str] = []
        for i, value in enumerate(s.values):
            if value is None:
                if len(points) > 1:
                    parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{s.color}"/>')
                points = []
                continue
            x, y = LEFT + step * (i + 0.5), TOP + inner_h * (1 - value)
            points.append(f"{x:.1f},{y:.1f}")
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{s.color}">'
                         f"<title>{escape(labels[i])}: {escape(s.name)} {value:.0%}</title></circle>")
        if len(points) > 1:
            parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{s.color}"/>')
    return _svg(title, parts, series)
