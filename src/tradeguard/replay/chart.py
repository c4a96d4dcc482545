"""A replay as an SVG chart: equity and balance over time, each rule's acting floor, and markers
where the rules halted, closed and resumed.

Plain SVG text: no dependency of the package draws charts, and this one needs lines, text and a
few shapes. The vertical scale fits the equity and balance; a floor far below them (a minimum
equity of 100 on a 100,000 account) is said in the legend rather than squashing the lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from xml.sax.saxutils import escape, quoteattr

from tradeguard.domain.replay import Replay, ReplayedPoint

WIDTH, HEIGHT = 1000, 520
_LEFT, _RIGHT, _TOP, _BOTTOM = 90, 250, 40, 70
_PLOT_W = WIDTH - _LEFT - _RIGHT
_PLOT_H = HEIGHT - _TOP - _BOTTOM
_TICKS = 5
_FLOOR_COLOURS = ("#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
_MARKERS = (
    ("halt", "#d62728", "halted"),
    ("close", "#7f0000", "closed positions"),
    ("resume", "#2ca02c", "resumed"),
)


@dataclass(frozen=True, slots=True)
class _Series:
    name: str
    colour: str
    values: Sequence[Decimal]
    dashes: str = ""
    off_chart: str = ""
    """why the series is not drawn, said under its name in the legend"""


def replay_svg(replayed: Replay, *, title: str) -> str:
    points = replayed.points
    if not points:
        raise ValueError("a chart needs at least one replayed point")
    times = [point.point.taken_at for point in points]
    lines = [
        _Series("equity", "#1f77b4", [point.point.equity for point in points]),
        _Series("balance", "#7f7f7f", [point.point.balance for point in points]),
    ]
    low = min(min(line.values) for line in lines)
    high = max(max(line.values) for line in lines)
    span = high - low or abs(high) / 10 or Decimal(1)
    bottom, top = low - span / 4, high + span / 4
    floors = []
    for index, rule in enumerate(replayed.rule_set.rules):
        values = [point.floors[rule.id] for point in points]
        name = f"{rule.id} acting floor" + (" (shadow)" if rule.shadow else "")
        off_chart = ""
        if max(values) < bottom - span or min(values) > top + span:
            off_chart = f"off the chart: {min(values):,.2f} to {max(values):,.2f}"
        else:
            bottom, top = min(bottom, min(values)), max(top, max(values))
        colour = _FLOOR_COLOURS[index % len(_FLOOR_COLOURS)]
        floors.append(_Series(name, colour, values, dashes="6 4", off_chart=off_chart))
    scale = _Scale(times[0], times[-1], bottom, top)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>',
        f'<clipPath id="plot"><rect x="{_LEFT}" y="{_TOP}" width="{_PLOT_W}" height="{_PLOT_H}"/></clipPath>',
        *_axes(scale),
        '<g clip-path="url(#plot)">',
    ]
    parts += [_polyline(scale, times, series) for series in [*lines, *floors] if not series.off_chart]
    parts += _markers(scale, points)
    parts.append("</g>")
    parts += _legend([*lines, *floors])
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


class _Scale:
    def __init__(self, start: datetime, end: datetime, bottom: Decimal, top: Decimal) -> None:
        self.start, self.end = start, end
        self.seconds = (end - start).total_seconds() or 1.0
        self.bottom, self.top = float(bottom), float(top)
        self.height = (self.top - self.bottom) or 1.0

    def x(self, moment: datetime) -> float:
        return _LEFT + (moment - self.start).total_seconds() / self.seconds * _PLOT_W

    def y(self, value: Decimal | float) -> float:
        return _TOP + (self.top - float(value)) / self.height * _PLOT_H


def _polyline(scale: _Scale, times: Sequence[datetime], series: _Series) -> str:
    coordinates = " ".join(
        f"{scale.x(at):.1f},{scale.y(value):.1f}" for at, value in zip(times, series.values, strict=True)
    )
    return (
        f'<polyline data-series={quoteattr(series.name)} points="{coordinates}" fill="none" '
        f'stroke="{series.colour}" stroke-width="1.5"{_dashed(series)}/>'
    )


def _dashed(series: _Series) -> str:
    return f' stroke-dasharray="{series.dashes}"' if series.dashes else ""


def _markers(scale: _Scale, points: Sequence[ReplayedPoint]) -> list[str]:
    """At the equity of each point that halted, closed or resumed: the halt above it, the close
    below it, so that a point doing both shows both."""
    shapes = []
    for point in points:
        x, y = scale.x(point.point.taken_at), scale.y(point.point.equity)
        did = {
            "halt": point.decision.newly_halted,
            "close": bool(point.closes),
            "resume": point.decision.resumed,
        }
        for kind, colour, _ in _MARKERS:
            if did[kind]:
                shapes.append(_marker(kind, colour, x, y + _MARKER_OFFSETS[kind], point.point.taken_at))
    return shapes


_MARKER_OFFSETS = {"halt": -8, "close": 8, "resume": 0}


def _marker(kind: str, colour: str, x: float, y: float, at: datetime | None = None) -> str:
    """The kind's shape centred on (x, y), titled with its moment on the chart."""
    when = "" if at is None else f"<title>{kind} at {at.isoformat()}</title>"
    if kind == "halt":
        return (
            f'<path class="marker-halt" d="M{x:.1f},{y - 5:.1f} l6,10 h-12 z" fill="{colour}">{when}</path>'
        )
    if kind == "close":
        return (
            f'<path class="marker-close" d="M{x - 5:.1f},{y - 5:.1f} l10,10 m0,-10 l-10,10" '
            f'stroke="{colour}" stroke-width="2.5">{when}</path>'
        )
    return f'<circle class="marker-resume" cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{colour}">{when}</circle>'


def _axes(scale: _Scale) -> list[str]:
    parts = [
        f'<line x1="{_LEFT}" y1="{_TOP + _PLOT_H}" x2="{_LEFT + _PLOT_W}" y2="{_TOP + _PLOT_H}" stroke="black"/>',
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + _PLOT_H}" stroke="black"/>',
        f'<text x="{_LEFT + _PLOT_W / 2}" y="{HEIGHT - 18}" text-anchor="middle">time (UTC)</text>',
        f'<text transform="translate(20 {_TOP + _PLOT_H / 2}) rotate(-90)" text-anchor="middle">'
        "equity, balance and floors (account currency)</text>",
    ]
    span_days = scale.seconds / 86_400
    time_format = "%H:%M:%S" if span_days < 0.01 else "%m-%d %H:%M" if span_days < 30 else "%Y-%m-%d"
    for tick in range(_TICKS + 1):
        moment = scale.start + (scale.end - scale.start) * tick / _TICKS
        x = scale.x(moment)
        parts.append(
            f'<line x1="{x:.1f}" y1="{_TOP + _PLOT_H}" x2="{x:.1f}" y2="{_TOP + _PLOT_H + 5}" stroke="black"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{_TOP + _PLOT_H + 20}" text-anchor="middle">{moment:{time_format}}</text>'
        )
        value = scale.bottom + scale.height * tick / _TICKS
        y = scale.y(value)
        parts.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + _PLOT_W}" y2="{y:.1f}" stroke="#e0e0e0"/>'
        )
        parts.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{value:,.2f}</text>')
    return parts


def _legend(all_series: Sequence[_Series]) -> list[str]:
    x = _LEFT + _PLOT_W + 15
    parts = ['<g class="legend">']
    y = _TOP + 10
    for series in all_series:
        parts.append(
            f'<line x1="{x}" y1="{y}" x2="{x + 24}" y2="{y}" stroke="{series.colour}" '
            f'stroke-width="2"{_dashed(series)}/>'
        )
        parts.append(f'<text x="{x + 30}" y="{y + 4}">{escape(series.name)}</text>')
        if series.off_chart:
            y += 15
            parts.append(f'<text x="{x + 30}" y="{y + 4}" font-size="10">{escape(series.off_chart)}</text>')
        y += 20
    for kind, colour, said in _MARKERS:
        parts.append(_marker(kind, colour, x + 12, y))
        parts.append(f'<text x="{x + 30}" y="{y + 4}">{escape(said)}</text>')
        y += 20
    parts.append("</g>")
    return parts
