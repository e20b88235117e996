
"""The SVG helpers: well-formed XML, accessible, escaped labels, sensible with no data."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from django.utils import translation
from django.utils.safestring import SafeString

from inbound.charts import Bar, Bin, Series, bar_chart, histogram, nice_ticks, step_chart

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script> & =cmd|\' "quoted"'
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def parse(svg):
    assert isinstance(svg, SafeString)
    root = ET.fromstring(str(svg))
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    return root


def texts(root):
    return [element.text for element in root.iter() if element.text]


def step():
    return step_chart(
        [Series("Total", [(T0, 10), (T0 + timedelta(days=1), 25), (T0 + timedelta(days=3), 5)]),
         Series("Fit", [(T0, 10)])],
        chart_id="c1", title="Score", description="desc", x_label="Time", y_label="Points",
        end=T0 + timedelta(days=4), marker=20, marker_label="MQL 20")


def test_step_chart_is_valid_svg_with_a_step_path_per_series():
    root = parse(step())
    paths = root.findall(f".//{SVG}path")
    assert len(paths) == 2
    total = paths[0].get("d")
    assert total.startswith("M") and "H" in total and "V" in total  # horizontal, then vertical
    assert total.count("V") == 2  # two changes after the first point
    assert {"Score", "desc", "Time", "Points", "MQL 20", "2025-03-01", "2025-03-05"} <= set(texts(root))


def test_step_chart_marks_the_threshold_and_ticks_cover_it():
    root = parse(step())
    dashed = [line for line in root.iter(f"{SVG}line") if line.get("stroke-dasharray") == "4 4"]
    assert len(dashed) == 1
    assert "25" in texts(root) or "30" in texts(root)  # the top tick covers the highest value


def test_hostile_labels_are_escaped_everywhere():
    charts = [
        step_chart([Series(HOSTILE, [(T0, 1)])], chart_id='x"><script>', title=HOSTILE, description=HOSTILE,
                   x_label=HOSTILE, y_label=HOSTILE, marker=1, marker_label=HOSTILE),
        bar_chart([Bar(HOSTILE, 3, note=HOSTILE)], chart_id="b", title=HOSTILE, description=HOSTILE),
        histogram([Bin(0, 10, 2)], chart_id="h", title=HOSTILE, description=HOSTILE, x_label=HOSTILE,
                  y_label=HOSTILE, marker=5, marker_label=HOSTILE),
    ]
    for svg in charts:
        assert "<script>" not in str(svg)
        root = parse(svg)
        assert not root.findall(f".//{SVG}script") and not root.findall(".//script")
        assert any(HOSTILE in text for text in texts(root))  # shown as text, intact


def test_bar_chart_scales_bars_and_shortens_long_labels():
    long_label = "A very long page title that goes on and on and on"
    root = parse(bar_chart([Bar("Visitors", 200), Bar("Submissions", 50, "25 %"), Bar(long_label, 0)],
                           chart_id="f", title="Funnel", description="d"))
    widths = [float(rect.get("width")) for rect in root.iter(f"{SVG}rect")]
    assert widths[0] == 4 * widths[1] and widths[2] == 0
    assert "50 (25 %)" in texts(root)
    assert any(text.endswith("…") for text in texts(root))
    assert any(long_label in text for text in texts(root))  # full label in the tooltip


def test_histogram_has_a_bar_per_bin_and_the_marker():
    bins = [Bin(-10, 0, 1), Bin(0, 10, 4), Bin(10, 20, 0), Bin(20, 30, 2)]
    root = parse(histogram(bins, chart_id="h", title="Scores", description="d", x_label="Score",
                           y_label="Leads", marker=20, marker_label="MQL 20"))
    rects = list(root.iter(f"{SVG}rect"))
    assert len(rects) == 4
    heights = [float(rect.get("height")) for rect in rects]
    assert heights[1] == 4 * heights[0] and heights[2] == 0
    assert "MQL 20" in texts(root) and "-10" in texts(root) and "30" in texts(root)


@translation.override("en")  # asserts on the English texts
def test_empty_data_gives_a_valid_chart_that_says_so():
    for svg in (step_chart([], chart_id="e1", title="t", description="d", x_label="x", y_label="y"),
                step_chart([Series("Total", [])], chart_id="e2", title="t", description="d", x_label="x",
                           y_label="y"),
                bar_chart([], chart_id="e3", title="t", description="d"),
                bar_chart([Bar("Visitors", 0)], chart_id="e4", title="t", description="d"),
                histogram([], chart_id="e5", title="t", description="d", x_label="x", y_label="y")):
        assert "No data yet." in texts(parse(svg))


def test_single_point_and_nice_ticks():
    parse(step_chart([Series("Total", [(T0, 0)])], chart_id="s", title="t", description="d", x_label="x",
                     y_label="y"))
    assert nice_ticks(0, 95) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(-7, 3) == [-8, -6, -4, -2, 0, 2, 4]
    assert nice_ticks(0, 0) == [0, 1]
