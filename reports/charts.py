"""Horizontal bar charts as plain geometry, drawn as inline SVG by a template (no JavaScript)."""

MAX_BARS = 40
ROW_HEIGHT = 22
LABEL_WIDTH = 260
BAR_WIDTH = 420
VALUE_WIDTH = 80


def bar_chart(pairs, percent=False, max_bars=MAX_BARS):
    """Geometry of a bar chart of (label, value) pairs; the longest bar is the largest value (or 100%)."""
    pairs = [(str(label), float(value or 0)) for label, value in pairs]
    shown = pairs[:max_bars]
    top = 100.0 if percent else max([v for _l, v in shown] + [0.0])
    bars = []
    for index, (label, value) in enumerate(shown):
        width = 0 if not top else round(BAR_WIDTH * min(value, top) / top, 1)
        text = f"{value:.1f}%" if percent else f"{value:,.0f}".replace(",", ".")
        bars.append({"y": index * ROW_HEIGHT, "label": _shorten(label), "title": label, "width": width, "text": text})
    return {
        "bars": bars,
        "height": max(1, len(bars)) * ROW_HEIGHT,
        "width": LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH,
        "label_width": LABEL_WIDTH,
        "bar_width": BAR_WIDTH,
        "row_height": ROW_HEIGHT,
        "left_out": len(pairs) - len(shown),
    }


def report_chart(report, frame):
    """The report's chart over its DataFrame, or None when the report has none or no rows."""
    if report.chart is None or frame.empty:
        return None
    keys = [k for k in report.chart.label_keys if k in frame.columns]
    pairs = []
    for record in frame[[*keys, report.chart.value_key]].itertuples(index=False, name=None):
        *labels, value = record
        pairs.append((" · ".join(str(v) for v in labels if v not in (None, "")), value))
    return bar_chart(pairs, percent=report.chart.percent)


def _shorten(label, limit=40):
    return label if len(label) <= limit else label[: limit - 1] + "…"
