"""The `steve` command line. Each command reads its files, calls one library
function, and turns library errors into a clean message and exit code."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from dataclasses import replace
from functools import wraps

import click

import dsl
import engine
from .files import InputError, known_ids, load_catalog, load_network, load_stock, read_bytes, read_text

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def clean_errors(command=None, *, input_exit: int = EXIT_FAILED):
    """Library and input errors become `steve: message` and an exit code."""
    if command is None:
        return lambda c: clean_errors(c, input_exit=input_exit)

    @wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except InputError as error:
            click.echo(f"steve: {error}", err=True)
            sys.exit(input_exit)
        except dsl.PlaybookError as error:
            click.echo(dsl.render(error.diagnostics), err=True)
            click.echo(f"steve: the playbook has {dsl.summary(error.diagnostics)}", err=True)
            sys.exit(EXIT_FAILED)
    return wrapper


class Moment(click.ParamType):
    """An ISO-8601 time, 2026-11-25T10:15:00-05:00 (without an offset: in
    the playbook's timezone), within the years orders may have."""
    name = "time"

    def convert(self, value, param, ctx):
        if isinstance(value, dt.datetime):
            return value
        try:
            moment = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            self.fail(f"{value!r} is not an ISO-8601 time like 2026-11-25T10:15:00-05:00", param, ctx)
        if not 1900 <= moment.year <= 9000:
            self.fail(f"{value!r}: a time between the years 1900 and 9000", param, ctx)
        return moment


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="steve-dom", prog_name="steve")
def main():
    """Steve: order routing rules written as playbooks."""


@main.command()
@click.argument("playbooks", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--network", type=click.Path(), help="Also check node and carrier ids against this network.")
@click.option("--format", "style", type=click.Choice(["text", "json", "github"]), default="text",
              show_default=True, help="How to print the problems.")
@clean_errors(input_exit=EXIT_USAGE)
def check(playbooks, network, style):
    """Check playbooks and report every problem (exit 1 on errors)."""
    known = known_ids(network) if network else None
    everything, failed = [], False
    for path in playbooks:
        name = "<stdin>" if path == "-" else path
        diagnostics = dsl.check(read_bytes(path), name, known)
        failed = failed or any(d.severity == "error" for d in diagnostics)
        everything.extend(diagnostics)
        if style == "text":
            if diagnostics:
                click.echo(dsl.render(diagnostics))
            click.echo(f"{name}: " + ("ok" if not diagnostics else dsl.summary(diagnostics)))
    if style == "json":
        click.echo(json.dumps({"ok": not failed, "diagnostics": [d.to_json() for d in everything]},
                              indent=2))
    elif style == "github" and everything:
        click.echo(dsl.render(everything, "github"))
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


@main.command()
@click.argument("playbooks", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--check", "check_only", is_flag=True, help="Only report files that would change (exit 1).")
@clean_errors
def fmt(playbooks, check_only):
    """Rewrite playbooks in canonical layout, comments kept."""
    from dsl.formatter import format_playbook

    changed = []
    for path in playbooks:
        text = read_text(path)
        formatted = format_playbook(text, "<stdin>" if path == "-" else path)
        if path == "-":
            if check_only:
                changed += ["<stdin>"] if formatted != text else []
            else:
                click.echo(formatted, nl=False)
            continue
        if formatted != text:
            changed.append(path)
            if not check_only:
                with open(path, "w", encoding="utf-8", newline="") as handle:
                    handle.write(formatted)
    for path in changed:
        click.echo(f"{'would reformat' if check_only else 'reformatted'} {path}", err=True)
    sys.exit(EXIT_FAILED if check_only and changed else EXIT_OK)


@main.command()
@click.argument("order", type=click.Path(allow_dash=True))
@click.option("--playbook", required=True, type=click.Path(), help="The playbook (.playbook).")
@click.option("--network", required=True, type=click.Path(), help="Network: nodes and carriers (JSON/YAML).")
@click.option("--catalog", required=True, type=click.Path(), help="Catalog of items with aliases (JSON/YAML).")
@click.option("--stock", required=True, type=click.Path(), help="Stock CSV: node,sku,on_hand.")
@click.option("--explain", is_flag=True, help="Print the decision for people instead of JSON.")
@click.option("--with-node", "with_nodes", multiple=True, help="Treat this shadow/off node as live (what-if).")
@click.option("--matcher", type=click.Choice(engine.MATCHERS), default="compiled", show_default=True,
              help="Rule matcher: compiled (fastest), python (the reference interpreter) or durable "
                   "(durable_rules); same decisions.")
@clean_errors
def route(order, playbook, network, catalog, stock, explain, with_nodes, matcher):
    """Route one order (a JSON file, or - for stdin) and print the decision."""
    the_network = load_network(network)
    text, name = read_text(playbook), _name(playbook)
    rulebook = dsl.compile(text, name)
    # what `steve check --network` finds only with the network (a node or carrier it does
    # not have, another currency) is told on stderr, as warnings: the order is still routed
    # (a playbook written for a larger network routes as far as it can on this one)
    _warn_network_problems(text, name, the_network)
    document = _order_document(order)
    items = load_catalog(catalog)
    decision = engine.route(rulebook, the_network, items, load_stock(stock, the_network, items),
                            document, live_nodes=with_nodes, matcher=engine.matcher_named(matcher))
    click.echo(engine.explain(decision) if explain else decision.dumps())
    sys.exit(EXIT_FAILED if decision.status == "error" else EXIT_OK)


@main.command("test")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--format", "style", type=click.Choice(["text", "github"]), default="text", show_default=True,
              help="github also prints ::error annotations on the failing cases.")
def test_command(files, style):
    """Run playbook test cases (YAML); exit 1 on failures, 2 on a broken test file."""
    from .cases import run_files

    sys.exit(run_files(files, style, click.echo))


@main.command()
@click.option("--playbook", required=True, type=click.Path(), help="The playbook to try (the candidate).")
@click.option("--against", type=click.Path(), help="Compare with this playbook (the baseline).")
@click.option("--network", required=True, type=click.Path(), help="Network: nodes and carriers (JSON/YAML).")
@click.option("--catalog", required=True, type=click.Path(), help="Catalog of items with aliases (JSON/YAML).")
@click.option("--stock", required=True, type=click.Path(), help="Stock CSV: node,sku,on_hand.")
@click.option("--orders", required=True, type=click.Path(allow_dash=True), help="Orders, one JSON object a line.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--markdown", is_flag=True, help="Print a summary for a pull-request comment.")
@click.option("--report", type=click.Path(dir_okay=False), help="Also write a self-contained HTML report.")
@click.option("--with-node", "with_nodes", multiple=True, help="Treat this shadow or off node as live.")
@click.option("--without-node", "without_nodes", multiple=True, help="Treat this node as off.")
@click.option("--strict", is_flag=True, help="Fail (exit 1) on a malformed orders line instead of skipping it.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr [default: when a terminal].")
@click.option("--show", default=20, show_default=True, type=click.IntRange(0),
              help="Differing orders shown in full (0: all).")
@click.option("--now", type=Moment(), metavar="ISO-8601",
              help="Read orders without created_at as placed at this time [default: when the command starts].")
@clean_errors
def simulate(**options):
    """Replay orders in time order with reservations and print the metrics;
    with --against or node what-ifs, the changes and the orders decided differently."""
    from .simulate import run

    if options["as_json"] and options["markdown"]:
        raise click.UsageError("--json and --markdown cannot be used together")
    sys.exit(run(**options))


@main.command()
@click.option("--db", default="steve.db", show_default=True, type=click.Path(), help="The SQLite database file.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (all share the database file).")
@click.option("--token", envvar="STEVE_TOKEN", help="Bearer token required for writes (or STEVE_TOKEN).")
@click.option("--max-body", default=1_000_000, show_default=True, type=int, help="Largest request body, bytes.")
@click.option("--demo", is_flag=True, help="Load the bundled demo into an empty database.")
@click.option("--matcher", type=click.Choice(engine.MATCHERS), default="compiled", show_default=True,
              help="Rule matcher: compiled (fastest), python (the reference interpreter) or durable "
                   "(durable_rules); same decisions.")
@clean_errors
def serve(db, host, port, workers, token, max_body, demo, matcher):
    """Run the HTTP service."""
    from server.run import serve as run_server

    os.environ["STEVE_MATCHER"] = matcher
    run_server(db=db, host=host, port=port, workers=workers, token=token, max_body=max_body, demo=demo,
               say=lambda text: click.echo(text, err=True))


def _warn_network_problems(text: str, name: str, network) -> None:
    alone = {(d.line, d.column, d.message) for d in dsl.check(text, name)}
    found = [replace(d, severity="warning") for d in dsl.check(text, name, dsl.KnownIds.of(network))
             if (d.line, d.column, d.message) not in alone]
    if found:
        click.echo(dsl.render(found) + f"\n{name}: checked against the network: "
                   f"{len(found)} warning{'s' * (len(found) > 1)}", err=True)


def _order_document(path: str):
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}:{error.lineno}:{error.colno}: the order is not valid JSON: {error.msg}") from None


def _name(path: str) -> str:
    """Playbooks are cited by file name in traces (seed.playbook:15)."""
    return path.replace("\\", "/").rsplit("/", 1)[-1]


if __name__ == "__main__":   # pragma: no cover
    main()
