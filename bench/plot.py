"""A line chart as a standalone SVG file: no plotting library to install for one figure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_WIDTH, _HEIGHT = 720, 420
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 170, 40, 60
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float]]
    dashed: bool = False


def line_chart(
    path: Path,
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    y_line: tuple[float, str] | None = None,
) -> Path:
    """Draw the series against shared axes from zero; `y_line` marks a target such as a latency bound."""
    xs = [x for one in series for x, _ in one.points]
    ys = [y for one in series for _, y in one.points] + ([y_line[0]] if y_line else [])
    x_max, y_max = _nice(max(xs)), _nice(max(ys))
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM

    def at(x: float, y: float) -> tuple[float, float]:
        return _LEFT + x / x_max * plot_w, _TOP + plot_h - y / y_max * plot_h

    def points(*pairs: tuple[float, float]) -> str:
        return " ".join(f"{px:.1f},{py:.1f}" for px, py in (at(x, y) for x, y in pairs))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{_WIDTH}" height="{_HEIGHT}" fill="white"/>',
        f'<text x="{_WIDTH / 2}" y="22" text-anchor="middle" font-size="14">{_escape(title)}</text>',
    ]
    for step in range(6):
        x, y = x_max * step / 5, y_max * step / 5
        parts.append(f'<polyline points="{points((0, y), (x_max, y))}" stroke="#eee" fill="none"/>')
        parts.append(f'<text x="{_LEFT - 8}" y="{at(0, y)[1] + 4:.1f}" text-anchor="end">{_number(y)}</text>')
        parts.append(
            f'<text x="{at(x, 0)[0]:.1f}" y="{_TOP + plot_h + 18}" text-anchor="middle">{_number(x)}</text>'
        )
    parts.append(f'<polyline points="{points((0, y_max), (0, 0), (x_max, 0))}" fill="none" stroke="black"/>')
    parts.append(
        f'<text x="{_LEFT + plot_w / 2}" y="{_HEIGHT - 18}" text-anchor="middle">{_escape(x_label)}</text>'
    )
    parts.append(
        f'<text transform="translate(18,{_TOP + plot_h / 2}) rotate(-90)" text-anchor="middle">'
        f"{_escape(y_label)}</text>"
    )
    if y_line is not None:
        value, label = y_line
        parts.append(
            f'<polyline points="{points((0, value), (x_max, value))}" stroke="#999" '
            'stroke-dasharray="2,3" fill="none"/>'
        )
        parts.append(
            f'<text x="{_LEFT + plot_w + 6}" y="{at(x_max, value)[1] + 4:.1f}" fill="#666">{_escape(label)}</text>'
        )
    for index, one in enumerate(series):
        colour = _COLOURS[index % len(_COLOURS)]
        dash = ' stroke-dasharray="6,4"' if one.dashed else ""
        parts.append(
            f'<polyline points="{points(*sorted(one.points))}" fill="none" stroke="{colour}" '
            f'stroke-width="2"{dash}/>'
        )
        for x, y in one.points:
            cx, cy = at(x, y)
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{colour}"/>')
        legend_x, legend_y = _WIDTH - _RIGHT + 20, _TOP + 16 * index
        parts.append(
            f'<line x1="{legend_x}" y1="{legend_y}" x2="{legend_x + 24}" y2="{legend_y}" '
            f'stroke="{colour}" stroke-width="2"{dash}/>'
        )
        parts.append(f'<text x="{legend_x + 30}" y="{legend_y + 4}">{_escape(one.label)}</text>')
    parts.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n")
    return path


def _nice(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `value`."""
    if value <= 0:
        return 1.0
    power = 10 ** len(str(int(value))) / 10 if value >= 1 else 1.0
    for factor in (1, 2, 2.5, 5, 10):
        if factor * power >= value:
            return factor * power
    return 10 * power


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
