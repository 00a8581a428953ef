"""The HTML report of `steve simulate --report`: one self-contained file
(inline CSS, inline SVG charts, no scripts, nothing fetched from the
network) with the metrics and their changes, node usage, the cost and
days distributions, and the orders decided differently."""

from __future__ import annotations

import datetime as dt
import math
from html import escape

from engine.simulation import Simulation
from .simulate import (METRICS, Skipped, title, change_text, explanations, node_usage, notes, outcome_text,
                       value_text)

REPORT_LIMIT = 500          # differing orders shown in full; the rest are counted
COLOURS = {"baseline": "#8a94a6", "candidate": "#2f6fde"}

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 76rem;
       padding: 0 1rem; color: #1d2330; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.sub { color: #5b6475; margin-top: 0; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { padding: .3rem .7rem; border-bottom: 1px solid #e3e6ec; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.up { color: #b3261e; } .down { color: #1b7f3b; } .same { color: #8a94a6; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5rem; }
figure { margin: 0; } figcaption { font-weight: 600; margin-bottom: .3rem; }
.legend span { display: inline-block; width: .8rem; height: .8rem; margin: 0 .3rem 0 .8rem; vertical-align: -1px; }
details { margin: .2rem 0 .6rem; } summary { cursor: pointer; color: #2f6fde; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: .8rem; }
pre { background: #f5f7fa; border: 1px solid #e3e6ec; padding: .6rem; overflow-x: auto; font-size: 12px;
      white-space: pre-wrap; margin: 0; }
.pair h4 { margin: .2rem 0; font-size: .85rem; color: #5b6475; }
code { background: #f0f2f6; padding: 0 .25rem; }
"""

# Whether a metric going up is good news (green) or bad news (red); None: neither.
GOOD_WHEN_UP = {"routed": True, "held": False, "errors": False, "split_rate": False,
                "shipments_per_order": False, "total_cost": False, "mean_cost": False,
                "mean_distance_km": False, "mean_days": False}


def render_html(result: Simulation, skipped: list[Skipped] = ()) -> str:
    compare = result.baseline is not None
    c = result.candidate.header()
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
             f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
             f"<title>Steve simulation: {escape(c['name'])}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
             "<h1>Steve simulation</h1>\n", f"<p class=\"sub\">{escape(title(result))}</p>\n"]
    parts += [f"<p>{escape(note)}.</p>\n" for note in notes(result)]
    parts.append(_playbooks(result))
    if skipped:
        parts.append(_skipped(skipped))
    parts.append(_metrics(result))
    parts.append("<h2>Charts</h2>\n")
    if compare:
        parts.append("<p class=\"legend\">" + "".join(
            f"<span style=\"background:{COLOURS[k]}\"></span>{k}" for k in ("baseline", "candidate")) + "</p>\n")
    parts.append("<div class=\"charts\">\n")
    parts.append(_figure("Shipments per node", *_usage_series(result), x_label="node"))
    parts.append(_figure("Shipping cost per routed order", *_cost_series(result), x_label="cost"))
    parts.append(_figure("Days to deliver per routed order", *_days_series(result), x_label="days"))
    parts.append("</div>\n")
    if compare:
        parts.append(_differences(result))
    parts.append(f"<p class=\"sub\">Made by <code>steve simulate</code> on "
                 f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC.</p>\n</body>\n</html>\n")
    return "".join(parts)


def _playbooks(result: Simulation) -> str:
    rows = [("candidate" if result.baseline else "playbook", result.candidate.header())]
    if result.baseline:
        rows.append(("baseline", result.baseline.header()))
    out = ["<table>\n<tr><th>run</th><th>playbook</th><th>file</th><th>version</th><th>nodes</th></tr>\n"]
    for label, h in rows:
        nodes = []
        if h.get("with_nodes"):
            nodes.append("with " + ", ".join(h["with_nodes"]))
        if h.get("without_nodes"):
            nodes.append("without " + ", ".join(h["without_nodes"]))
        out.append(f"<tr><td>{label}</td><td>{escape(h['name'])}</td><td>{escape(h['file'])}</td>"
                   f"<td><code>{escape(h['version'][:19])}…</code></td>"
                   f"<td>{escape('; '.join(nodes) or 'as in the network')}</td></tr>\n")
    out.append("</table>\n")
    return "".join(out)


def _skipped(skipped: list[Skipped]) -> str:
    items = "".join(f"<li>line {s.line}: {escape(s.problem)}</li>\n" for s in skipped[:100])
    more = f"<li>… and {len(skipped) - 100:,} more</li>\n" if len(skipped) > 100 else ""
    return (f"<h2>Skipped lines</h2>\n<p>{len(skipped):,} line(s) of the orders file were not valid orders "
            f"and were left out:</p>\n<ul>\n{items}{more}</ul>\n")


def _metrics(result: Simulation) -> str:
    compare = result.baseline is not None
    head = "<tr><th>metric</th>" + ("<th class=\"num\">baseline</th><th class=\"num\">candidate</th>"
                                    "<th class=\"num\">change</th>" if compare else "<th class=\"num\">value</th>")
    out = ["<h2>Metrics</h2>\n<table>\n", head + "</tr>\n"]
    delta = result.delta or {}
    for key, label, kind in METRICS:
        now = value_text(result.candidate.metrics.get(key), kind)
        row = f"<tr><td>{label}</td>"
        if compare:
            change = delta.get(key)
            row += (f"<td class=\"num\">{value_text(result.baseline.metrics.get(key), kind)}</td>"
                    f"<td class=\"num\">{now}</td>"
                    f"<td class=\"num {_tone(key, change)}\">{escape(change_text(change, kind))}</td>")
        else:
            row += f"<td class=\"num\">{now}</td>"
        out.append(row + "</tr>\n")
    out.append("</table>\n")
    return "".join(out)


def _tone(key: str, change) -> str:
    if not change:
        return "same"
    good = GOOD_WHEN_UP.get(key)
    if good is None:
        return ""
    return "down" if (change > 0) == good else "up"


# ---- chart data -----------------------------------------------------------------------------------

def _series(result: Simulation, values) -> list[tuple[str, list[int]]]:
    """[(run label, counts)]: the baseline first when there is one."""
    runs = [("baseline", result.baseline), ("candidate", result.candidate)] if result.baseline else \
        [("candidate", result.candidate)]
    return [(label, values(run)) for label, run in runs]


def _usage_series(result: Simulation):
    rows = node_usage(result)
    series = [("candidate", [after for _, _, after in rows])]
    if result.baseline is not None:
        series.insert(0, ("baseline", [before for _, before, _ in rows]))
    return [node for node, _, _ in rows], series


def _routed(run) -> list[dict]:
    return [d for d in run.documents if d.get("status") == "routed"]


def _cost_series(result: Simulation):
    runs = [result.candidate] + ([result.baseline] if result.baseline else [])
    highest = max((d["cost"] for run in runs for d in _routed(run)), default=0.0)
    step = _nice_step(highest, 12)
    buckets = max(1, math.floor(highest / step) + 1)
    categories = [f"${i * step:g}–{(i + 1) * step:g}" for i in range(buckets)]

    def counts(run):
        out = [0] * buckets
        for d in _routed(run):
            out[min(buckets - 1, int(d["cost"] // step))] += 1
        return out
    return categories, _series(result, counts)


def _days_series(result: Simulation):
    runs = [result.candidate] + ([result.baseline] if result.baseline else [])
    longest = max((d["days"] for run in runs for d in _routed(run)), default=0)
    categories = [str(day) for day in range(longest + 1)]

    def counts(run):
        out = [0] * (longest + 1)
        for d in _routed(run):
            out[d["days"]] += 1
        return out
    return categories, _series(result, counts)


def _nice_step(highest: float, buckets: int) -> float:
    """A round bucket width (1, 2, 5 × 10^n) giving at most `buckets` buckets."""
    if highest <= 0:
        return 1.0
    raw = highest / buckets
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * power >= raw:
            return float(factor * power)
    return float(10 * power)


# ---- SVG ----------------------------------------------------------------------------------------------

def _figure(title: str, categories: list[str], series: list[tuple[str, list[int]]], x_label: str) -> str:
    return (f"<figure>\n<figcaption>{escape(title)}</figcaption>\n"
            f"{bar_chart(categories, series, title, x_label)}\n</figure>\n")


def bar_chart(categories: list[str], series: list[tuple[str, list[int]]], title: str, x_label: str) -> str:
    """Grouped vertical bars as inline SVG: one group per category, one bar
    per series; each bar has a tooltip with its value."""
    left, top, bottom, height = 48, 10, 70, 220
    group = max(28, 14 * len(series) + 10)
    width = left + 10 + group * max(1, len(categories))
    highest = max((v for _, values in series for v in values), default=0) or 1
    tick = _nice_step(highest, 4)
    scale_top = tick * math.ceil(highest / tick)
    plot = height - top - bottom
    out = [f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'role="img" aria-label="{escape(title)}">']
    value = 0.0
    while value <= scale_top + 1e-9:
        y = top + plot - plot * value / scale_top
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 5}" y2="{y:.1f}" stroke="#e3e6ec"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#5b6475">'
                   f'{value:,.0f}</text>')
        value += tick
    bar = (group - 10) / max(1, len(series))
    for index, category in enumerate(categories):
        x0 = left + 5 + index * group
        for number, (label, values) in enumerate(series):
            count = values[index]
            h = plot * count / scale_top
            colour = COLOURS.get(label, "#2f6fde")
            out.append(f'<rect x="{x0 + number * bar:.1f}" y="{top + plot - h:.1f}" width="{bar - 1:.1f}" '
                       f'height="{h:.1f}" fill="{colour}"><title>{escape(label)}: {escape(category)}: '
                       f'{count:,}</title></rect>')
        cx = x0 + (group - 10) / 2
        out.append(f'<text x="{cx:.1f}" y="{top + plot + 14}" font-size="11" text-anchor="end" fill="#1d2330" '
                   f'transform="rotate(-35 {cx:.1f} {top + plot + 14})">{escape(category)}</text>')
    out.append(f'<text x="{left}" y="{height - 4}" font-size="11" fill="#5b6475">{escape(x_label)}</text>')
    out.append("</svg>")
    return "\n".join(out)


# ---- the orders decided differently ---------------------------------------------------------------

def _differences(result: Simulation) -> str:
    differing = result.differences
    out = [f"<h2>Orders decided differently ({len(differing):,})</h2>\n"]
    if not differing:
        out.append("<p>None: both runs decided every order the same way.</p>\n")
        return "".join(out)
    if len(differing) > REPORT_LIMIT:
        out.append(f"<p>The first {REPORT_LIMIT} are shown (use <code>--json</code> for all of them).</p>\n")
    out.append("<table>\n<tr><th>order</th><th>what changed</th><th>baseline</th><th>candidate</th></tr>\n")
    for d in differing[:REPORT_LIMIT]:
        before, after = explanations(result, d)
        out.append(
            f"<tr id=\"order-{escape(str(d['order_id']))}\"><td><code>{escape(str(d['order_id']))}</code></td>"
            f"<td>{escape('; '.join(d['changes']))}"
            f"<details><summary>both explanations</summary><div class=\"pair\">"
            f"<div><h4>baseline</h4><pre>{escape(before)}</pre></div>"
            f"<div><h4>candidate</h4><pre>{escape(after)}</pre></div></div></details></td>"
            f"<td>{escape(outcome_text(d['baseline']))}</td><td>{escape(outcome_text(d['candidate']))}</td></tr>\n")
    out.append("</table>\n")
    return "".join(out)
