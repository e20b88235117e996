"""Small server-side SVG charts for the admin: a step-line chart, horizontal bars, a histogram.

Pure functions: data in, one `<svg>` element out as a `SafeString`. No JavaScript and no chart
library, so nothing is loaded from a CDN and the charts work without scripts (and in a printout).

- Every text is escaped (`format_html`): labels are editor or marketer input (page titles,
  rule descriptions).
- Each chart is an image for assistive technology: `role="img"` with `aria-labelledby`
  pointing to its `<title>` and `<desc>`. The page that shows a chart also shows its numbers in
  a table, because a chart should never be the only way to read them.
- Ids are prefixed with `chart_id`, so several charts on one page stay valid.
- Colours: texts and axes use `currentColor` (they follow the admin's light or dark theme),
  series use a small palette that stays distinguishable for common colour-vision deficiencies,
  and series are told apart by dash patterns too.
- The output is well-formed XML (tested with `xml.etree`): only numeric character references.
"""

import math
from dataclasses import dataclass, field
from datetime import timedelta

from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

__all__ = ["Bar", "Bin", "Series", "bar_chart", "histogram", "nice_ticks", "step_chart"]

PALETTE = ("#1f6fb2", "#c2571a", "#5e3c99", "#2e7d32")
DASHES = ("", "6 3", "2 3", "8 3 2 3")
MARKER_COLOUR = "#b3261e"
FONT_SIZE = 12
LABEL_CHARS = 32  # bar labels longer than this are shortened (the full text is the bar's tooltip)


@dataclass
class Series:
    """One line of a step chart: `points` are (time, value), sorted by time; a value holds from
    its time until the next point's."""

    label: str
    points: list = field(default_factory=list)


@dataclass
class Bar:
    label: str
    value: float
    note: str = ""  # shown after the value, e.g. a conversion rate


@dataclass
class Bin:
    """A histogram bar: the count of values in [low, high)."""

    low: float
    high: float
    count: int


# --- helpers ------------------------------------------------------------------------------------

def _n(value):
    """A coordinate as short text: at most one decimal."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _count(value):
    """A value label: integers without decimals."""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.1f}"
    return str(int(value))


def _shorten(text, limit=LABEL_CHARS):
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def nice_ticks(low, high, count=5, integer=True):
    """Round tick values covering [low, high]: steps of 1, 2, 2.5 or 5 times a power of ten."""
    if high <= low:
        high = low + 1
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    multiples = (1, 2, 5, 10) if integer else (1, 2, 2.5, 5, 10)
    step = next(m * magnitude for m in multiples if raw <= m * magnitude)
    if integer:
        step = max(1, round(step))
    start = math.floor(low / step) * step
    ticks = [start]
    while ticks[-1] < high:
        ticks.append(ticks[-1] + step)
    return ticks


def _svg(chart_id, width, height, title, description, body):
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="inbound-chart" viewBox="0 0 {w} {h}" '
        'width="100%" style="max-width: {w}px; height: auto;" role="img" '
        'aria-labelledby="{id}-title {id}-desc" font-size="{fs}" font-family="inherit">'
        '<title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>{body}</svg>',
        w=width, h=height, id=chart_id, fs=FONT_SIZE, title=title, desc=description, body=body,
    )


def _no_data(chart_id, width, height, title, description):
    body = format_html('<text x="{x}" y="{y}" text-anchor="middle" fill="currentColor">{text}</text>',
                       x=_n(width / 2), y=_n(height / 2), text=gettext("No data yet."))
    return _svg(chart_id, width, height, title, description, body)


def _join(parts):
    return mark_safe("".join(parts))  # noqa: S308 - every part comes from format_html


# --- step chart ---------------------------------------------------------------------------------

def _time_label(value, span):
    return value.strftime("%Y-%m-%d %H:%M" if span < timedelta(days=2) else "%Y-%m-%d")


def step_chart(series, *, chart_id, title, description, x_label, y_label, end=None, marker=None,
               marker_label="", width=640, height=280):
    """A step line per `Series` over time, from the first point to `end` (default: the last).

    `marker` draws a dashed horizontal line at that value (e.g. the MQL threshold), labelled
    `marker_label`. With no points at all, the chart says so.
    """
    series = [s for s in series if s.points]
    if not series:
        return _no_data(chart_id, width, height, title, description)
    left, right, top, bottom = 56, 16, 34, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    start = min(s.points[0][0] for s in series)
    last = max(s.points[-1][0] for s in series)
    end = max(end, last) if end else last
    if end <= start:
        end = start + timedelta(hours=1)
    span = end - start
    values = [value for s in series for _time, value in s.points] + [0]
    if marker is not None:
        values.append(marker)
    ticks = nice_ticks(min(values), max(values))
    low, high = ticks[0], ticks[-1]

    def x_of(moment):
        return left + plot_w * ((moment - start) / span)

    def y_of(value):
        return top + plot_h * (1 - (value - low) / (high - low))

    parts = []
    for tick in ticks:  # grid and y labels
        parts.append(format_html(
            '<line x1="{x1}" x2="{x2}" y1="{y}" y2="{y}" stroke="currentColor" stroke-opacity="0.15"/>'
            '<text x="{tx}" y="{ty}" text-anchor="end" fill="currentColor">{label}</text>',
            x1=left, x2=left + plot_w, y=_n(y_of(tick)), tx=left - 6, ty=_n(y_of(tick) + 4),
            label=_count(tick)))
    parts.append(format_html(
        '<line x1="{l}" x2="{l}" y1="{t}" y2="{b}" stroke="currentColor"/>'
        '<line x1="{l}" x2="{r}" y1="{b}" y2="{b}" stroke="currentColor"/>',
        l=left, r=left + plot_w, t=top, b=top + plot_h))
    for fraction, anchor in ((0, "start"), (0.5, "middle"), (1, "end")):  # x labels
        moment = start + span * fraction
        parts.append(format_html(
            '<text x="{x}" y="{y}" text-anchor="{anchor}" fill="currentColor">{label}</text>',
            x=_n(left + plot_w * fraction), y=top + plot_h + 16, anchor=anchor,
            label=_time_label(moment, span)))
    parts.append(format_html(
        '<text x="{x}" y="{y}" text-anchor="middle" fill="currentColor">{label}</text>'
        '<text transform="translate(14 {cy}) rotate(-90)" text-anchor="middle" fill="currentColor">'
        '{ylabel}</text>',
        x=_n(left + plot_w / 2), y=height - 8, label=x_label, cy=_n(top + plot_h / 2), ylabel=y_label))
    if marker is not None:
        parts.append(format_html(
            '<line x1="{x1}" x2="{x2}" y1="{y}" y2="{y}" stroke="{c}" stroke-width="1.5" '
            'stroke-dasharray="4 4"/><text x="{x2}" y="{ty}" text-anchor="end" fill="{c}">{label}</text>',
            x1=left, x2=left + plot_w, y=_n(y_of(marker)), ty=_n(y_of(marker) - 4), c=MARKER_COLOUR,
            label=marker_label))
    legend_x = left
    for index, line in enumerate(series):
        colour, dash = PALETTE[index % len(PALETTE)], DASHES[index % len(DASHES)]
        commands = [f"M{_n(x_of(line.points[0][0]))} {_n(y_of(line.points[0][1]))}"]
        for moment, value in line.points[1:]:
            commands.append(f"H{_n(x_of(moment))} V{_n(y_of(value))}")
        commands.append(f"H{_n(x_of(end))}")
        parts.append(format_html(
            '<path d="{d}" fill="none" stroke="{c}" stroke-width="2" stroke-dasharray="{dash}">'
            '<title>{label}</title></path>',
            d=" ".join(commands), c=colour, dash=dash or "none", label=line.label))
        parts.append(format_html(
            '<line x1="{x}" x2="{x2}" y1="14" y2="14" stroke="{c}" stroke-width="2" '
            'stroke-dasharray="{dash}"/><text x="{tx}" y="18" fill="currentColor">{label}</text>',
            x=legend_x, x2=legend_x + 20, c=colour, dash=dash or "none", tx=legend_x + 26,
            label=line.label))
        legend_x += 40 + 7 * len(str(line.label))
    return _svg(chart_id, width, height, title, description, _join(parts))


# --- horizontal bars (a funnel) -----------------------------------------------------------------

def bar_chart(bars, *, chart_id, title, description, width=640, row_height=30):
    """One horizontal bar per `Bar`, scaled to the largest value, with the value and note after it.

    Used for the funnel: the steps from top to bottom, each bar's note its conversion rate.
    """
    if not bars or not any(bar.value for bar in bars):
        return _no_data(chart_id, width, max(row_height * 2, 80), title, description)
    label_w, value_w, top = 200, 150, 8
    plot_w = width - label_w - value_w
    height = top * 2 + row_height * len(bars)
    largest = max(bar.value for bar in bars)
    parts = []
    for index, bar in enumerate(bars):
        y = top + index * row_height
        length = plot_w * (bar.value / largest) if largest else 0
        value_text = _count(bar.value) + (f" ({bar.note})" if bar.note else "")
        parts.append(format_html(
            '<g><title>{full}: {value}</title>'
            '<text x="{lx}" y="{ty}" text-anchor="end" fill="currentColor">{label}</text>'
            '<rect x="{bx}" y="{by}" width="{bw}" height="{bh}" fill="{c}"/>'
            '<text x="{vx}" y="{ty}" fill="currentColor">{value}</text></g>',
            full=bar.label, label=_shorten(bar.label), lx=label_w - 8, ty=_n(y + row_height / 2 + 4),
            bx=label_w, by=_n(y + 4), bw=_n(max(length, 1 if bar.value else 0)), bh=row_height - 8,
            c=PALETTE[0], vx=_n(label_w + length + 6), value=value_text))
    return _svg(chart_id, width, height, title, description, _join(parts))


# --- histogram ----------------------------------------------------------------------------------

def histogram(bins, *, chart_id, title, description, x_label, y_label, marker=None, marker_label="",
              width=640, height=260):
    """Vertical bars over contiguous `Bin`s; `marker` draws a dashed vertical line at that value."""
    if not bins or not any(b.count for b in bins):
        return _no_data(chart_id, width, height, title, description)
    left, right, top, bottom = 56, 16, 24, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    low, high = bins[0].low, bins[-1].high
    ticks = nice_ticks(0, max(b.count for b in bins))

    def x_of(value):
        return left + plot_w * (value - low) / (high - low)

    def y_of(count):
        return top + plot_h * (1 - count / ticks[-1])

    parts = []
    for tick in ticks:
        parts.append(format_html(
            '<line x1="{x1}" x2="{x2}" y1="{y}" y2="{y}" stroke="currentColor" stroke-opacity="0.15"/>'
            '<text x="{tx}" y="{ty}" text-anchor="end" fill="currentColor">{label}</text>',
            x1=left, x2=left + plot_w, y=_n(y_of(tick)), tx=left - 6, ty=_n(y_of(tick) + 4),
            label=_count(tick)))
    every = max(1, math.ceil(len(bins) / 10))
    for index, b in enumerate(bins):
        x0, x1 = x_of(b.low), x_of(b.high)
        top_y = y_of(b.count)
        parts.append(format_html(
            '<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{c}">'
            '<title>{lo} – {hi}: {count}</title></rect>',
            x=_n(x0 + 1), y=_n(top_y), w=_n(max(x1 - x0 - 2, 1)), h=_n(top + plot_h - top_y),
            c=PALETTE[0], lo=_count(b.low), hi=_count(b.high - 1 if isinstance(b.high, int) else b.high),
            count=b.count))
        if index % every == 0:
            parts.append(format_html(
                '<text x="{x}" y="{y}" text-anchor="middle" fill="currentColor">{label}</text>',
                x=_n(x0), y=top + plot_h + 16, label=_count(b.low)))
    parts.append(format_html(
        '<text x="{x}" y="{y}" text-anchor="middle" fill="currentColor">{label}</text>',
        x=_n(x_of(high)), y=top + plot_h + 16, label=_count(high)))
    parts.append(format_html(
        '<line x1="{l}" x2="{l}" y1="{t}" y2="{b}" stroke="currentColor"/>'
        '<line x1="{l}" x2="{r}" y1="{b}" y2="{b}" stroke="currentColor"/>'
        '<text x="{cx}" y="{ly}" text-anchor="middle" fill="currentColor">{xlabel}</text>'
        '<text transform="translate(14 {cy}) rotate(-90)" text-anchor="middle" fill="currentColor">'
        '{ylabel}</text>',
        l=left, r=left + plot_w, t=top, b=top + plot_h, cx=_n(left + plot_w / 2), ly=height - 8,
        xlabel=x_label, cy=_n(top + plot_h / 2), ylabel=y_label))
    if marker is not None and low <= marker <= high:
        parts.append(format_html(
            '<line x1="{x}" x2="{x}" y1="{t}" y2="{b}" stroke="{c}" stroke-width="1.5" '
            'stroke-dasharray="4 4"/><text x="{tx}" y="{ty}" fill="{c}">{label}</text>',
            x=_n(x_of(marker)), t=top - 6, b=top + plot_h, c=MARKER_COLOUR, tx=_n(x_of(marker) + 4),
            ty=top + 4, label=marker_label))
    return _svg(chart_id, width, height, title, description, _join(parts))

