"""`steve simulate`: read the files, replay the orders (engine.simulation),
and show the result as a rich table, JSON, Markdown (for a pull-request
comment) or a self-contained HTML report."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

import dsl
from engine.decision import Decision, explain
from engine.models import Order
from engine.simulation import OrderConflict, Simulation, WhatIfError, simulate
from .files import InputError, describe_validation, load_catalog, load_network, load_stock, read_text

# (key in the metrics, label, kind): kind says how to print a value and a change
METRICS = [
    ("orders", "Orders", "count"),
    ("routed", "Routed", "count"),
    ("held", "Held", "count"),
    ("errors", "Errors (bad orders)", "count"),
    ("split_rate", "Split-shipment rate", "share"),
    ("shipments_per_order", "Shipments per order", "ratio"),
    ("total_cost", "Total shipping cost", "money"),
    ("mean_cost", "Mean shipping cost", "money"),
    ("mean_distance_km", "Mean distance", "km"),
    ("mean_days", "Mean days", "days"),
    ("units_shipped", "Units shipped", "count"),
    ("store_units", "Units shipped from stores", "count"),
    ("hidden_stock_share", "Stock a single-warehouse view hides", "share"),
]


def value_text(value, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "count":
        return f"{value:,}"
    if kind == "share":
        return f"{value * 100:.1f}%"
    if kind == "money":
        return f"${value:,.2f}"
    if kind == "km":
        return f"{value:,.1f} km"
    if kind == "days":
        return f"{value:.2f}"
    return f"{value:.3f}"


def change_text(delta, kind: str) -> str:
    """A change with its sign; 0 is shown as '='."""
    if delta is None:
        return ""
    if round(delta, 6) == 0:
        return "="
    sign = "+" if delta > 0 else "-"
    size = abs(delta)
    if kind == "count":
        return f"{sign}{size:,}"
    if kind == "share":
        return f"{sign}{size * 100:.1f} pts"
    if kind == "money":
        return f"{sign}${size:,.2f}"
    if kind == "km":
        return f"{sign}{size:,.1f} km"
    if kind == "days":
        return f"{sign}{size:.2f}"
    return f"{sign}{size:.3f}"


def outcome_text(decision: dict) -> str:
    """One decision in a few words: held / error / nodes with carriers and units."""
    status = decision.get("status")
    if status != "routed":
        return status or "?"
    parts = []
    for s in decision.get("shipments", ()):
        units = ", ".join(f"{l['qty']} {l['sku']}" for l in s.get("lines", ()))
        parts.append(f"{s['node']} by {s.get('carrier') or 'pickup'} ({units})")
    return "; ".join(parts)


# ---- reading the orders ---------------------------------------------------------------------

@dataclass
class Skipped:
    line: int
    problem: str

    def to_json(self) -> dict:
        return {"line": self.line, "error": self.problem}


def read_orders(path: str) -> tuple[list[Order], list[Skipped]]:
    """Orders from a JSON-lines file; a line that is not a valid order is
    set aside with its line number instead of stopping the run."""
    numbered, skipped = read_numbered_orders(path)
    return [order for _, order in numbered], skipped


def read_numbered_orders(path: str) -> tuple[list[tuple[int, Order]], list[Skipped]]:
    """read_orders, with each order's line number."""
    orders, skipped = [], []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            document = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as error:
            message = getattr(error, "msg", "nested too deeply")
            skipped.append(Skipped(number, f"not valid JSON: {message}"))
            continue
        if not isinstance(document, dict):
            skipped.append(Skipped(number, f"not an order: a JSON {type(document).__name__} instead of an object"))
            continue
        try:
            orders.append((number, Order.model_validate(document)))
        except ValidationError as error:
            skipped.append(Skipped(number, "not a valid order: " + describe_validation(error)))
    return orders, skipped


# ---- the command ----------------------------------------------------------------------------

def run(*, playbook: str, against: str | None, network: str, catalog: str, stock: str, orders: str,
        as_json: bool, markdown: bool, report: str | None, with_nodes: tuple, without_nodes: tuple,
        strict: bool, progress: bool | None, show: int, now: dt.datetime | None = None) -> int:
    """The whole command; returns the exit code. Orders without created_at
    are read at `now`, by default the clock when the command starts (one
    reading for every order and both runs)."""
    if now is None:
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    err = Console(stderr=True, highlight=False)
    candidate = dsl.compile(read_text(playbook), _name(playbook))
    baseline = dsl.compile(read_text(against), _name(against)) if against else None
    net, items = load_network(network), load_catalog(catalog)
    units = load_stock(stock, net, items)
    numbered, skipped = read_numbered_orders(orders)
    batch = [order for _, order in numbered]
    for entry in skipped:
        verb = "error" if strict else "warning"
        say(f"steve: {orders}:{entry.line}: {verb}: {entry.problem}" + ("" if strict else " (line skipped)"))
    if skipped and strict:
        say(f"steve: {len(skipped)} malformed line(s) in {orders}; nothing simulated (--strict)")
        return 1
    runs = 1 + (baseline is not None or bool(with_nodes or without_nodes))
    try:
        with _progress(err, progress, len({order.id for order in batch}) * runs) as tick:   # repeats are skipped
            result = simulate(candidate, net, items, units, batch, baseline=baseline,
                              with_nodes=with_nodes, without_nodes=without_nodes, now=now, progress=tick)
    except WhatIfError as error:
        options = {"with_nodes": "--with-node", "without_nodes": "--without-node"}
        raise InputError("; ".join(f"{options[where.split('.')[0]]}: {what}" for where, what in error.problems)) \
            from None
    except OrderConflict as error:
        index, first, order_id = error.conflicts[0]
        more = len(error.conflicts) - 1
        raise InputError(f"{orders}:{numbered[index][0]}: order {order_id} was already given on "
                         f"{orders}:{numbered[first][0]} with different content; an order id names one order "
                         "(an exact repeat is skipped)"
                         + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")) from None
    if report:
        from .report import render_html
        try:
            Path(report).write_text(render_html(result, skipped), encoding="utf-8")
        except OSError as error:
            raise InputError(f"{report}: cannot write the report: {error.strerror}") from None
    if as_json:
        document = result.to_json()
        document["skipped"] = [s.to_json() for s in skipped]
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    elif markdown:
        sys.stdout.write(render_markdown(result, skipped, show))
    else:
        print_text(result, skipped, show, _stdout_console())
    if report:
        say(f"steve: report written to {report}")
    return 0


def say(text: str) -> None:
    """A message for people on stderr (never mixed into --json output)."""
    print(text, file=sys.stderr, flush=True)


def _name(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _stdout_console() -> Console:
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return Console(highlight=False)
    return Console(highlight=False, width=160)


class _progress:
    """A rich progress bar on stderr, only for people watching (stderr is a
    terminal) or when asked for; otherwise nothing."""

    def __init__(self, console: Console, wanted: bool | None, total: int):
        self.show = (console.is_terminal if wanted is None else wanted) and total > 0
        self.console, self.total, self.bar = console, total, None

    def __enter__(self):
        if not self.show:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        self.bar = Progress(TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            console=self.console, transient=True)
        self.bar.start()
        task = self.bar.add_task("orders", total=self.total)
        step = max(1, self.total // 200)

        def tick(done: int) -> None:
            if done % step == 0 or done == self.total:
                self.bar.update(task, completed=done)
        return tick

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False


# ---- text (rich) ------------------------------------------------------------------------------

def title(result: Simulation) -> str:
    c = result.candidate.header()
    text = f"{len(result.orders):,} orders replayed with {c['file']} (\"{c['name']}\")"
    nodes = _node_changes(result)
    if nodes:
        text += f" {nodes}"
    if result.baseline is not None:
        b = result.baseline.header()
        if b["version"] == c["version"]:
            text += ", compared with the same playbook on the network as it is"
        else:
            text += f", compared with {b['file']} (\"{b['name']}\")"
    return text


def _node_changes(result: Simulation) -> str:
    parts = []
    if result.candidate.with_nodes:
        parts.append("with " + ", ".join(result.candidate.with_nodes))
    if result.candidate.without_nodes:
        parts.append("without " + ", ".join(result.candidate.without_nodes))
    return " and ".join(parts)


def notes(result: Simulation) -> list[str]:
    """What was done to the orders before they were replayed, in words:
    exact repeats left out, the time the untimed orders were read at."""
    out = []
    if result.repeats:
        out.append(f"{len(result.repeats):,} repeated order(s) skipped (the same id and the same order as "
                   "an earlier line)")
    if result.now_text():
        both = " in both runs" if result.baseline is not None else ""
        out.append(f"{result.untimed:,} order(s) without created_at read as placed at {result.now_text()}{both} "
                   "(--now sets it)")
    return out


def print_text(result: Simulation, skipped: list[Skipped], show: int, console: Console) -> None:
    console.print(title(result), markup=False)
    if skipped:
        console.print(f"{len(skipped)} malformed line(s) skipped", markup=False)
    for note in notes(result):
        console.print(note, markup=False)
    compare = result.baseline is not None
    table = Table(title="Metrics", title_justify="left")
    table.add_column("metric")
    if compare:
        table.add_column("baseline", justify="right")
    table.add_column("candidate" if compare else "value", justify="right")
    if compare:
        table.add_column("change", justify="right")
    delta = result.delta or {}
    for key, label, kind in METRICS:
        row = [label]
        if compare:
            row.append(value_text(result.baseline.metrics.get(key), kind))
        row.append(value_text(result.candidate.metrics.get(key), kind))
        if compare:
            row.append(change_text(delta.get(key), kind))
        table.add_row(*row)
    console.print(table)
    if node_usage(result):
        console.print(_usage_table(result))
    if not compare:
        return
    differing = result.differences
    if not differing:
        console.print("No order was decided differently.")
        return
    shown = differing if show == 0 else differing[:show]
    more = f" (the first {len(shown)} shown; --show 0 for all)" if len(shown) < len(differing) else ""
    console.print(f"\n{len(differing):,} order(s) decided differently{more}:", markup=False)
    for difference in shown:
        position = difference["position"]
        before = result.baseline.decisions[position]
        after = result.candidate.decisions[position]
        console.print(Text(f"\n{difference['order_id']}: " + "; ".join(difference["changes"]), style="bold"))
        side = Table(show_lines=False, expand=True)
        side.add_column("baseline", ratio=1, overflow="fold")
        side.add_column("candidate", ratio=1, overflow="fold")
        side.add_row(Text(explain(before)), Text(explain(after)))
        console.print(side)


def _usage_table(result: Simulation) -> Table:
    compare = result.baseline is not None
    table = Table(title="Shipments per node", title_justify="left")
    table.add_column("node")
    if compare:
        table.add_column("baseline", justify="right")
    table.add_column("candidate" if compare else "shipments", justify="right")
    if compare:
        table.add_column("change", justify="right")
    for node, before, after in node_usage(result):
        row = [Text(node)]
        if compare:
            row.append(f"{before:,}")
        row.append(f"{after:,}")
        if compare:
            row.append(change_text(after - before, "count"))
        table.add_row(*row)
    return table


def node_usage(result: Simulation) -> list[tuple[str, int, int]]:
    """(node, shipments in the baseline, shipments in the candidate), in
    network order, for every node either run used."""
    after = result.candidate.metrics["node_usage"]
    before = result.baseline.metrics["node_usage"] if result.baseline else {}
    return [(n.id, before.get(n.id, 0), after.get(n.id, 0)) for n in result.candidate.network.nodes
            if n.id in before or n.id in after]


# ---- Markdown ------------------------------------------------------------------------------------

def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(result: Simulation, skipped: list[Skipped], show: int = 20) -> str:
    compare = result.baseline is not None
    out = ["### Steve simulation", "", title(result) + "."]
    if skipped:
        out.append(f"{len(skipped)} malformed line(s) of the orders file were skipped.")
    out += [note + "." for note in notes(result)]
    out.append("")
    if compare:
        out += ["| metric | baseline | candidate | change |", "| --- | ---: | ---: | ---: |"]
    else:
        out += ["| metric | value |", "| --- | ---: |"]
    delta = result.delta or {}
    for key, label, kind in METRICS:
        now = value_text(result.candidate.metrics.get(key), kind)
        if compare:
            was = value_text(result.baseline.metrics.get(key), kind)
            out.append(f"| {label} | {was} | {now} | {change_text(delta.get(key), kind)} |")
        else:
            out.append(f"| {label} | {now} |")
    if compare:
        differing = result.differences
        out.append("")
        if not differing:
            out.append("No order was decided differently.")
        else:
            shown = differing if show == 0 else differing[:show]
            more = f" (the first {len(shown)})" if len(shown) < len(differing) else ""
            out += [f"**{len(differing):,} order(s) decided differently**{more}:", "",
                    "| order | baseline | candidate |", "| --- | --- | --- |"]
            for d in shown:
                out.append(f"| {_cell(str(d['order_id']))} | {_cell(outcome_text(d['baseline']))} | "
                           f"{_cell(outcome_text(d['candidate']))} |")
    out.append("")
    return "\n".join(out)


def explanations(result: Simulation, difference: dict) -> tuple[str, str]:
    position = difference["position"]
    before: Decision = result.baseline.decisions[position]
    after: Decision = result.candidate.decisions[position]
    return explain(before), explain(after)
