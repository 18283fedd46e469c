"""Server-rendered SVG charts: stacked bars of tokens per day, with axes, labels and a legend.

Output is a Markup string of SVG built from escaped text only (series names are model and
user names, which come from requests). Colours are presentation attributes, not inline
styles, so the dashboard's Content-Security-Policy needs no 'unsafe-inline'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

# Okabe-Ito: distinguishable with the common colour-vision deficiencies; grey for "other".
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
OTHER_COLOUR = "#9AA0A6"
WIDTH, HEIGHT = 760, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 58
LEGEND_ROW, LEGEND_COLS = 20, 3


@dataclass(frozen=True)
class Series:
    name: str
    values: tuple[int, ...]
    colour: str


def colour_for(index: int, name: str) -> str:
    return OTHER_COLOUR if name == "other" else PALETTE[index % len(PALETTE)]


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above `value`."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def short_number(value: float) -> str:
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            text = f"{value / limit:.1f}".rstrip("0").rstrip(".")
            return f"{text}{suffix}"
    return f"{value:g}"


def _text(x: float, y: float, content: str, *, anchor: str = "middle", cls: str = "tick",
          extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" class="{cls}"{extra}>'
            f"{escape(content)}</text>")


def _axes(max_value: float, y_label: str, x_label: str) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = []
    for i in range(5):
        value = max_value * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'class="grid"/>')
        parts.append(_text(LEFT - 6, y + 4, short_number(value), anchor="end"))
    mid = TOP + plot_h / 2
    parts.append(_text(14, mid, y_label, cls="axis-title",
                       extra=f' transform="rotate(-90 14 {mid:.1f})"'))
    parts.append(_text(LEFT + (WIDTH - LEFT - RIGHT) / 2, HEIGHT - 8, x_label,
                       cls="axis-title"))
    parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" '
                 f'y2="{TOP + plot_h}" class="axis"/>')
    return parts


def _bars(days: list[str], series: list[Series], max_value: float) -> list[str]:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    band = plot_w / max(len(days), 1)
    bar = max(band * 0.7, 1.0)
    every = max(1, math.ceil(len(days) / 12))
    parts = []
    for i, day in enumerate(days):
        x = LEFT + band * i + (band - bar) / 2
        base = float(TOP + plot_h)
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            h = plot_h * value / max_value
            base -= h
            parts.append(f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                         f'fill="{s.colour}"><title>{escape(s.name)}, {escape(day)}: '
                         f"{value:,} tokens</title></rect>")
        if (len(days) - 1 - i) % every == 0:  # always label the latest day
            parts.append(_text(x + bar / 2, TOP + plot_h + 16, day[5:]))
    return parts


def _legend(series: list[Series]) -> tuple[list[str], int]:
    parts = []
    col_w = (WIDTH - LEFT - RIGHT) / LEGEND_COLS
    for i, s in enumerate(series):
        row, col = divmod(i, LEGEND_COLS)
        x, y = LEFT + col * col_w, HEIGHT + row * LEGEND_ROW + 4
        label = s.name if len(s.name) <= 40 else s.name[:39] + "…"
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="12" height="12" '
                     f'fill="{s.colour}"/>')
        parts.append(_text(x + 18, y + 11, f"{label} ({short_number(sum(s.values))})",
                           anchor="start", cls="legend"))
    rows = math.ceil(len(series) / LEGEND_COLS)
    return parts, rows * LEGEND_ROW + 8


def stacked_bars(chart_id: str, title: str, days: list[str], series: list[Series], *,
                 y_label: str = "tokens", x_label: str = "day (UTC)") -> Markup:
    """A stacked bar chart: one bar per day, one coloured segment per series."""
    totals = [sum(s.values[i] for s in series) for i in range(len(days))]
    max_value = nice_ceiling(max(totals, default=0))
    legend, legend_h = _legend(series)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
             f'viewBox="0 0 {WIDTH} {HEIGHT + legend_h}" aria-labelledby="{chart_id}-t">',
             f'<title id="{chart_id}-t">{escape(title)}</title>']
    parts += _axes(max_value, y_label, x_label)
    if any(totals):
        parts += _bars(days, series, max_value)
    else:
        parts.append(_text(LEFT + (WIDTH - LEFT - RIGHT) / 2, TOP + 100,
                           "No token usage in this period", cls="empty"))
    parts += legend
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text node above is escaped
